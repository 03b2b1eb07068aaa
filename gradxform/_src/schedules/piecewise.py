"""Piecewise schedules: constant jumps, linear/cosine interpolation, and one-cycle."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform._src import base, validate
from gradxform._src.schedules.decay import as_float, broadcast_float


def _boundaries_and_scales(boundaries_and_scales):
    """The ``{step: scale}`` dict as sorted tuples, checked."""
    if not boundaries_and_scales:
        return (), ()
    items = sorted(boundaries_and_scales.items())
    for step, scale in items:
        if isinstance(step, bool) or not hasattr(step, "__index__") or step < 0:
            raise ValueError(
                f"boundaries_and_scales: every boundary must be an int >= 0, got {step!r}"
            )
        validate.non_negative(f"boundaries_and_scales[{step}]", scale)
    boundaries, scales = zip(*items)
    return tuple(int(b) for b in boundaries), tuple(scales)


def piecewise_constant_schedule(
    init_value: jax.typing.ArrayLike,
    boundaries_and_scales: dict[int, float] | None = None,
) -> base.Schedule:
    """``s(t) = init_value * prod_{b_i <= t} f_i`` for ``{b_i: f_i}`` in ``boundaries_and_scales``.

    The value is multiplied by ``f_i`` from step ``b_i`` on.

    Args:
        init_value: the value before the first boundary; finite.
        boundaries_and_scales: ``{step: scale}``; steps are ints ``>= 0``, scales ``>= 0``.
            None or empty (default) gives the constant ``init_value``.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: for a negative or non-integer boundary, a negative scale or a non-finite
            ``init_value``.

    Examples:
        >>> s = gx.schedules.piecewise_constant_schedule(1.0, {3: 0.1, 6: 0.5})
        >>> print(np.asarray(s(jnp.arange(8))).round(4))
        [1.   1.   1.   0.1  0.1  0.1  0.05 0.05]
    """
    validate.finite("init_value", init_value)
    boundaries, scales = _boundaries_and_scales(boundaries_and_scales)

    def schedule(count):
        value = broadcast_float(init_value, count)
        for boundary, scale in zip(boundaries, scales):
            value = jnp.where(count >= boundary, value * scale, value)
        return value

    return schedule


def _linear(start, end, pct):
    return (end - start) * pct + start


def _cosine(start, end, pct):
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: jax.typing.ArrayLike,
    boundaries_and_scales: dict[int, float] | None = None,
) -> base.Schedule:
    """Interpolates between the accumulated values ``v_0 = init_value, v_i = v_{i-1} * f_i``.

    With boundaries ``b_0 = 0 < b_1 < ... < b_n`` (from ``{b_i: f_i}``), on
    ``b_{i-1} <= t < b_i`` and ``p = (t - b_{i-1}) / max(b_i - b_{i-1}, 1)``::

        linear:  s(t) = v_{i-1} + (v_i - v_{i-1}) * p
        cosine:  s(t) = v_i + (v_{i-1} - v_i) / 2 * (1 + cos(pi * p))

    and ``s(t) = v_n`` for ``t >= b_n``. Note that the values, not the scales, are
    interpolated: ``{4: 0.1, 8: 0.01}`` from 1 goes 1 -> 0.1 -> 0.001.

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"``.
        init_value: ``v_0``, the value at step 0; finite.
        boundaries_and_scales: ``{b_i: f_i}``; steps are ints ``>= 0``, scales ``>= 0``.
            None or empty (default) gives the constant ``init_value``.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: for another ``interpolate_type``, a negative boundary or scale, or a
            non-finite ``init_value``.

    Examples:
        >>> s = gx.schedules.piecewise_interpolate_schedule("linear", 1.0, {4: 0.5, 8: 0.5})
        >>> print(s(jnp.arange(0, 10, 2)))
        [1.    0.75  0.5   0.375 0.25 ]
    """
    validate.one_of("interpolate_type", interpolate_type, ("linear", "cosine"))
    interpolate = _linear if interpolate_type == "linear" else _cosine
    validate.finite("init_value", init_value)
    boundaries, scales = _boundaries_and_scales(boundaries_and_scales)

    def schedule(count):
        values = [init_value]
        for scale in scales:
            values.append(values[-1] * scale)
        bounds = (0, *boundaries)
        count = as_float(count)  # int32 / int would be float32 even under x64
        result = broadcast_float(values[-1], count)
        for i in range(len(boundaries)):
            lo, hi = bounds[i], bounds[i + 1]
            pct = (count - lo) / max(hi - lo, 1)
            inside = jnp.logical_and(lo <= count, count < hi)
            result = jnp.where(inside, interpolate(values[i], values[i + 1], pct), result)
        return result

    return schedule


def _check_onecycle(
    transition_steps: int, pct_start: float, div_factor: float, final_div_factor: float
) -> None:
    if transition_steps <= 0:
        raise ValueError(f"transition_steps must be positive, got {transition_steps!r}")
    validate.unit_interval("pct_start", pct_start)
    validate.positive("div_factor", div_factor)
    validate.positive("final_div_factor", final_div_factor)


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: jax.typing.ArrayLike,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> base.Schedule:
    """Three linear phases (Smith & Topin, Super-Convergence, arXiv:1708.07120).

    With ``N = transition_steps``, ``v0 = peak_value / div_factor``: linear from ``v0`` to
    ``peak_value`` over ``[0, int(pct_start N)]``, back to ``v0`` by ``int(pct_final N)``,
    then to ``v0 / final_div_factor`` by ``N``, constant after. It is
    ``piecewise_interpolate_schedule("linear", v0, {int(pct_start N): div_factor,
    int(pct_final N): 1 / div_factor, N: 1 / final_div_factor})``.

    Args:
        transition_steps: ``N``, the length of the cycle; positive.
        peak_value: the highest value, reached at step ``int(pct_start N)``.
        pct_start: the fraction of the cycle spent rising; in ``[0, 1]`` (default 0.3).
        pct_final: the fraction of the cycle at which the value is back at ``v0``; in
            ``[pct_start, 1]`` (default 0.85).
        div_factor: ``peak_value / v0``; positive (default 25).
        final_div_factor: ``v0`` divided by the final value; positive (default 1e4).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: for a hyperparameter outside its range.

    Examples:
        >>> s = gx.schedules.linear_onecycle_schedule(10, peak_value=1.0)
        >>> print(np.asarray(s(jnp.array([0, 3, 8, 10]))).round(4))
        [0.04 1.   0.04 0.  ]
    """
    _check_onecycle(transition_steps, pct_start, div_factor, final_div_factor)
    validate.in_range("pct_final", pct_final, pct_start, 1.0)
    return piecewise_interpolate_schedule(
        "linear",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(pct_final * transition_steps): 1.0 / div_factor,
            transition_steps: 1.0 / final_div_factor,
        },
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: jax.typing.ArrayLike,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> base.Schedule:
    """Cosine one-cycle (Smith & Topin, Super-Convergence, arXiv:1708.07120).

    With ``N = transition_steps``, ``v0 = peak_value / div_factor``: cosine from ``v0`` up to
    ``peak_value`` over ``[0, int(pct_start N)]``, then cosine down to
    ``v0 / final_div_factor`` at ``N``, constant after. It is
    ``piecewise_interpolate_schedule("cosine", v0, {int(pct_start N): div_factor,
    N: 1 / (div_factor * final_div_factor)})``.

    Args:
        transition_steps: as in ``linear_onecycle_schedule``.
        peak_value: as in ``linear_onecycle_schedule``.
        pct_start: as in ``linear_onecycle_schedule`` (default 0.3).
        div_factor: as in ``linear_onecycle_schedule`` (default 25).
        final_div_factor: as in ``linear_onecycle_schedule`` (default 1e4).

    Returns:
        A schedule, as ``linear_onecycle_schedule``; ``ValueError`` likewise.

    Examples:
        >>> s = gx.schedules.cosine_onecycle_schedule(10, peak_value=1.0)
        >>> print(np.asarray(s(jnp.array([0, 3, 10]))).round(6))
        [4.e-02 1.e+00 4.e-06]
    """
    _check_onecycle(transition_steps, pct_start, div_factor, final_div_factor)
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(transition_steps): 1.0 / (div_factor * final_div_factor),
        },
    )
