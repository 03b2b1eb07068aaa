"""Monotone schedules: constant, polynomial (and linear), exponential and cosine decay.

Every schedule maps a step count ``t`` (an int, or an int/float array of any shape, traced
or not) to a floating value of the same shape: float32 with JAX's default precision,
float64 with ``jax_enable_x64``. Each one is jittable and vmappable over ``t``.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp

from gradxform._src import base, validate

_log = logging.getLogger("gradxform")


def as_float(x: jax.typing.ArrayLike) -> jax.Array:
    """``x`` as an array of a floating dtype (integers become the default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def broadcast_float(value: jax.typing.ArrayLike, count: jax.typing.ArrayLike) -> jax.Array:
    """``value`` as a float array broadcast to the shape of ``count``."""
    v = as_float(value)
    return jnp.broadcast_to(v, jnp.broadcast_shapes(jnp.shape(count), v.shape))


def check_steps(name: str, value, minimum: int = 0) -> None:
    """Raises unless ``value`` is an int ``>= minimum`` (step counts are static)."""
    if isinstance(value, bool) or (not isinstance(value, int) and not hasattr(value, "__index__")):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def constant_schedule(value: jax.typing.ArrayLike) -> base.Schedule:
    """``s(t) = value`` for every ``t``.

    The value is broadcast to the shape of ``t``, so ``s(jnp.arange(n))`` has ``n`` entries.

    Args:
        value: the constant, a finite number or array (broadcast against ``t``).

    Returns:
        A schedule ``t -> value``, a float array of ``t``'s shape (float32 by default).

    Raises:
        ValueError: if ``value`` is not finite.

    Examples:
        >>> s = gx.schedules.constant_schedule(0.5)
        >>> print(s(jnp.arange(3)))
        [0.5 0.5 0.5]
    """
    validate.finite("value", value)

    def schedule(count):
        return broadcast_float(value, count)

    return schedule


def polynomial_schedule(
    init_value: jax.typing.ArrayLike,
    end_value: jax.typing.ArrayLike,
    power: jax.typing.ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> base.Schedule:
    """Polynomial transition from ``init_value`` (I) to ``end_value`` (E).

    With ``B = transition_begin``, ``T = transition_steps``, ``P = power`` and
    ``c = clip(t - B, 0, T)``::

        s(t) = (I - E) * (1 - c / T) ** P + E

    so ``s = I`` for ``t <= B`` and ``s = E`` for ``t >= B + T``. As in optax,
    ``transition_steps <= 0`` disables the transition: ``s(t) = I``.

    Args:
        init_value: ``I``, the value up to step ``transition_begin``; finite.
        end_value: ``E``, the value from step ``transition_begin + transition_steps`` on;
            finite.
        power: ``P``, the exponent of the polynomial; finite (1 is linear, above 1 falls fast
            at first, below 1 falls slowly at first).
        transition_steps: ``T``, the number of steps the transition lasts; an int, ``<= 0``
            gives the constant ``init_value``.
        transition_begin: ``B``, the number of steps ``init_value`` is held before the
            transition starts; an int ``>= 0`` (default 0).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape (float32 by default).

    Raises:
        ValueError: for a non-finite value or a negative ``transition_begin`` (optax silently
            uses 0).
        TypeError: if ``transition_begin`` is not an int.

    Examples:
        >>> s = gx.schedules.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
        >>> print(s(jnp.arange(6)))
        [1.     0.5625 0.25   0.0625 0.     0.    ]
    """
    validate.finite("init_value", init_value)
    validate.finite("end_value", end_value)
    validate.finite("power", power)
    check_steps("transition_begin", transition_begin)
    if transition_steps <= 0:
        _log.info("polynomial_schedule: transition_steps <= 0 gives the constant init_value")
        return constant_schedule(init_value)

    def schedule(count):
        # A float count first: an int32 count divided by an int would give float32 under x64.
        c = jnp.clip(as_float(count) - transition_begin, 0, transition_steps)
        # (T - c) / T rather than 1 - c / T: XLA turns the division into a multiplication by
        # 1/T under jit, and 1 - c * (1/T) leaves ~1e-17 at c = T, which ** 0.5 makes 4e-9.
        frac = (transition_steps - c) / transition_steps
        return as_float((init_value - end_value) * frac**power + end_value)

    return schedule


def linear_schedule(
    init_value: jax.typing.ArrayLike,
    end_value: jax.typing.ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> base.Schedule:
    """Linear transition: ``polynomial_schedule`` with ``power=1``::

        s(t) = I + (E - I) * clip(t - B, 0, T) / T

    Args:
        init_value: ``I``, the value up to step ``transition_begin``; finite.
        end_value: ``E``, the value from step ``transition_begin + transition_steps`` on;
            finite.
        transition_steps: ``T``, the number of steps of the ramp; an int, ``<= 0`` gives the
            constant ``init_value`` (as in optax).
        transition_begin: ``B``, the number of steps ``init_value`` is held before the ramp;
            an int ``>= 0`` (default 0).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape (float32 by default).

    Raises:
        ValueError: for a non-finite value or a negative ``transition_begin``.

    Examples:
        >>> s = gx.schedules.linear_schedule(1.0, 0.0, transition_steps=4)
        >>> print(s(jnp.arange(6)))
        [1.   0.75 0.5  0.25 0.   0.  ]
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(
    init_value: jax.typing.ArrayLike,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: jax.typing.ArrayLike | None = None,
) -> base.Schedule:
    """Exponential decay: ``s(t) = I * r ** p`` for ``t > B``, ``I`` before.

    ``p = (t - B) / T``, floored when ``staircase``; ``r = decay_rate``. With
    ``end_value`` the result is clipped at it: from below when ``r < 1``, from above
    otherwise. As in optax, ``transition_steps <= 0`` gives the constant ``I``.

    Args:
        init_value: ``I``, the value up to step ``transition_begin``; finite.
        transition_steps: ``T``, the number of steps over which the value is multiplied by
            ``decay_rate`` once; an int, ``<= 0`` gives the constant ``init_value``.
        decay_rate: ``r``, the factor per ``transition_steps``; finite and non-zero (below 1
            decays, above 1 grows).
        transition_begin: ``B``, the number of steps ``init_value`` is held before the decay
            starts; an int ``>= 0`` (default 0).
        staircase: if True, ``p`` is floored, so the value drops in steps every
            ``transition_steps`` steps (default False: a smooth decay).
        end_value: the bound the value is clipped at (a floor when ``decay_rate < 1``, a
            ceiling otherwise); finite, or None (default) for no bound.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape (float32 by default).

    Raises:
        ValueError: for ``decay_rate == 0``, a non-finite value or a negative
            ``transition_begin`` (optax documents both as invalid but silently returns a
            constant / uses 0).

    Examples:
        >>> s = gx.schedules.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
        >>> print(s(jnp.array([0, 10, 20, 30])))
        [1.    0.5   0.25  0.125]
        >>> stairs = gx.schedules.exponential_decay(1.0, 10, 0.5, staircase=True)
        >>> print(stairs(jnp.array([9, 10, 19, 20])))
        [1.   0.5  0.5  0.25]
    """
    validate.finite("init_value", init_value)
    validate.finite("decay_rate", decay_rate)
    if decay_rate == 0:
        raise ValueError("decay_rate must not be zero, got 0")
    check_steps("transition_begin", transition_begin)
    if end_value is not None:
        validate.finite("end_value", end_value)
    if transition_steps <= 0:
        _log.info("exponential_decay: transition_steps <= 0 gives the constant init_value")
        return constant_schedule(init_value)
    clip = jnp.maximum if decay_rate < 1.0 else jnp.minimum

    def schedule(count):
        shifted = as_float(count) - transition_begin
        p = shifted / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(shifted <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is not None:
            value = clip(value, end_value)
        return as_float(value)

    return schedule


def cosine_decay_schedule(
    init_value: jax.typing.ArrayLike,
    decay_steps: int,
    alpha: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 1.0,
) -> base.Schedule:
    """Cosine decay (Loshchilov & Hutter, SGDR, ICLR 2017, arXiv:1608.03983).

    With ``T = decay_steps``, ``c = min(t, T)``::

        s(t) = I * ((1 - alpha) * (0.5 * (1 + cos(pi * c / T))) ** exponent + alpha)

    so the value ends at ``alpha * I`` and stays there (clamped past ``T``).

    Args:
        init_value: ``I``, the value at step 0; finite.
        decay_steps: ``T``, the number of steps of the decay; an int ``>= 1``.
        alpha: the final value as a fraction of ``init_value``; finite, usually in
            ``[0, 1]`` (default 0: decay to zero).
        exponent: the power of the cosine factor; finite (default 1, the plain cosine).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape (float32 by default).

    Raises:
        ValueError: for a non-finite value or ``decay_steps < 1``.
        TypeError: if ``decay_steps`` is not an int.

    Examples:
        >>> s = gx.schedules.cosine_decay_schedule(1.0, decay_steps=100, alpha=0.1)
        >>> print(np.asarray(s(jnp.array([0, 50, 100, 200]))).round(4))
        [1.   0.55 0.1  0.1 ]
    """
    validate.finite("init_value", init_value)
    check_steps("decay_steps", decay_steps, minimum=1)
    validate.finite("alpha", alpha)
    validate.finite("exponent", exponent)
    steps = float(decay_steps)  # a float, so a large int never overflows int32 under jit

    def schedule(count):
        c = jnp.minimum(as_float(count), steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * c / steps))
        return as_float(init_value * ((1 - alpha) * cosine**exponent + alpha))

    return schedule
