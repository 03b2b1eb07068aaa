"""Schedules joined end to end: warmup + decay, and warm restarts (SGDR)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp

from gradxform._src import base
from gradxform._src.schedules.decay import (
    as_float,
    check_steps,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
)


def join_schedules(schedules: Sequence[base.Schedule], boundaries: Sequence[int]) -> base.Schedule:
    """Runs ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at 0.

    With ``b_0 = 0``: ``s(t) = s_i(t - b_i)`` for ``b_i <= t < b_{i+1}``. ``boundaries``
    has one entry fewer than ``schedules`` and should be increasing.

    Args:
        schedules: the schedules to run one after the other; a non-empty sequence of
            callables ``t -> value``. Each sees the steps since its own start.
        boundaries: the steps at which the next schedule takes over; a sequence of
            ``len(schedules) - 1`` ints, increasing.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: if ``schedules`` is empty or ``boundaries`` has the wrong length.
        TypeError: if an entry of ``schedules`` is not callable.

    Examples:
        >>> hold = gx.schedules.constant_schedule(1.0)
        >>> ramp = gx.schedules.linear_schedule(1.0, 0.0, transition_steps=4)
        >>> s = gx.schedules.join_schedules([hold, ramp], boundaries=[3])
        >>> print(s(jnp.arange(8)))
        [1.   1.   1.   1.   0.75 0.5  0.25 0.  ]
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("schedules must not be empty")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have len(schedules) - 1 = {len(schedules) - 1} entries, "
            f"got {len(boundaries)}"
        )
    for s in schedules:
        if not callable(s):
            raise TypeError(f"schedules must be callables, got {type(s).__name__}")

    def schedule(count):
        value = schedules[0](count)
        for boundary, s in zip(boundaries, schedules[1:]):
            value = jnp.where(count < boundary, value, s(count - boundary))
        return as_float(value)

    return schedule


def warmup_constant_schedule(
    init_value: jax.typing.ArrayLike, peak_value: jax.typing.ArrayLike, warmup_steps: int
) -> base.Schedule:
    """Linear warmup, then constant: ``s(t) = I + (P - I) * min(t, W) / W``.

    Args:
        init_value: ``I``, the value at step 0; finite.
        peak_value: ``P``, the value reached at step ``warmup_steps`` and kept after; finite.
        warmup_steps: ``W``, the number of warmup steps; an int (``<= 0`` gives the constant
            ``init_value``, as ``linear_schedule``).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Examples:
        >>> s = gx.schedules.warmup_constant_schedule(0.0, 1.0, warmup_steps=4)
        >>> print(s(jnp.arange(6)))
        [0.   0.25 0.5  0.75 1.   1.  ]
    """
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_cosine_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    decay_steps: int,
    end_value: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 1.0,
) -> base.Schedule:
    """Linear warmup, then cosine decay (Loshchilov & Hutter, arXiv:1608.03983).

    ``s(t) = I + (P - I) * t / W`` for ``t < W``; after, with ``c = min(t - W, D - W)``::

        s(t) = P * ((1 - a) * (0.5 * (1 + cos(pi * c / (D - W)))) ** exponent + a)

    where ``a = end_value / peak_value`` (0 when ``peak_value == 0``), ``W = warmup_steps``
    and ``D = decay_steps`` counts the warmup too: the decay ends at ``t = D``.

    Args:
        init_value: ``I``, the value at step 0; finite.
        peak_value: ``P``, the value at the end of the warmup; finite.
        warmup_steps: ``W``, the number of warmup steps; an int ``>= 0``.
        decay_steps: ``D``, the total length of warmup and decay; an int ``> warmup_steps``
            (as in optax, it includes the warmup).
        end_value: the value from step ``decay_steps`` on; finite (default 0).
        exponent: the power of the cosine factor; finite (default 1).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: if ``decay_steps <= warmup_steps``, ``warmup_steps < 0`` or a value is not
            finite.

    Examples:
        >>> s = gx.schedules.warmup_cosine_decay_schedule(
        ...     0.0, peak_value=1.0, warmup_steps=10, decay_steps=110, end_value=0.1)
        >>> print(np.asarray(s(jnp.array([0, 5, 10, 60, 110]))).round(4))
        [0.   0.5  1.   0.55 0.1 ]
    """
    check_steps("warmup_steps", warmup_steps)
    if decay_steps - warmup_steps <= 0:
        raise ValueError(
            f"decay_steps must exceed warmup_steps (it includes the warmup), got "
            f"decay_steps={decay_steps!r}, warmup_steps={warmup_steps!r}"
        )
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def warmup_exponential_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: jax.typing.ArrayLike | None = None,
) -> base.Schedule:
    """Linear warmup, then exponential decay.

    From ``init_value`` to ``peak_value`` over ``warmup_steps``, then
    ``exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
    staircase, end_value)`` evaluated at ``t - warmup_steps``.

    Args:
        init_value: the value at step 0; finite.
        peak_value: the value at the end of the warmup, where the decay starts; finite.
        warmup_steps: the number of warmup steps; an int ``>= 0``.
        transition_steps: the steps per multiplication by ``decay_rate``; an int (``<= 0``
            holds ``peak_value`` after the warmup).
        decay_rate: the factor per ``transition_steps``; finite and non-zero.
        transition_begin: steps ``peak_value`` is held after the warmup before the decay; an
            int ``>= 0`` (default 0).
        staircase: if True the decay drops in steps (default False).
        end_value: floor (``decay_rate < 1``) or ceiling (otherwise) of the decay; None
            (default) for none.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: as ``exponential_decay``, or for ``warmup_steps < 0``.

    Examples:
        >>> s = gx.schedules.warmup_exponential_decay_schedule(
        ...     0.0, peak_value=1.0, warmup_steps=2, transition_steps=2, decay_rate=0.5)
        >>> print(s(jnp.array([0, 1, 2, 4, 6])))
        [0.   0.5  1.   0.5  0.25]
    """
    check_steps("warmup_steps", warmup_steps)
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            exponential_decay(
                peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
            ),
        ],
        [warmup_steps],
    )


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> base.Schedule:
    """SGD with warm restarts (Loshchilov & Hutter, SGDR, arXiv:1608.03983).

    One ``warmup_cosine_decay_schedule(**kwargs)`` cycle per dict in ``cosine_kwargs``, each
    lasting its ``decay_steps``; the cycles are joined end to end, and the last one holds its
    final value.

    Args:
        cosine_kwargs: one dict of ``warmup_cosine_decay_schedule`` keyword arguments per
            cycle; each must hold ``decay_steps``, and there must be at least one.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: if there is no cycle or a cycle lacks ``decay_steps``.

    Examples:
        >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=3)
        >>> s = gx.schedules.sgdr_schedule([cycle, cycle])
        >>> print(np.asarray(s(jnp.arange(7))).round(4))
        [0.  1.  0.5 0.  1.  0.5 0. ]
    """
    schedules, boundaries, step = [], [], 0
    for kwargs in cosine_kwargs:
        if "decay_steps" not in kwargs:
            raise ValueError(f"cosine_kwargs: every cycle needs decay_steps, got {kwargs!r}")
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    if not schedules:
        raise ValueError("cosine_kwargs must hold at least one cycle")
    return join_schedules(schedules, boundaries[:-1])
