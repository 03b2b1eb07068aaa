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
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def constant_schedule(value: jax.typing.ArrayLike) -> base.Schedule:
    """``s(t) = value`` for every ``t``.

    The value is broadcast to the shape of ``t``, so ``s(jnp.arange(n))`` has ``n`` entries.
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

    Raises ``ValueError`` for a negative ``transition_begin`` (optax silently uses 0).
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

    Raises ``ValueError`` for ``decay_rate == 0`` or a negative ``transition_begin`` (optax
    documents both as invalid but silently returns a constant / uses 0).
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
