"""Textbook decays that optax does not name: 1/sqrt(t), inverse power, step factors."""

from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp

from gradxform._src import base, validate
from gradxform._src.schedules.decay import as_float, broadcast_float, check_steps


def square_root_schedule(init_value: jax.typing.ArrayLike) -> base.Schedule:
    """``s(t) = init_value / sqrt(t + 1)``: the ``O(1/sqrt(t))`` step size of online convex
    optimisation (Zinkevich, ICML 2003)."""
    validate.finite("init_value", init_value)

    def schedule(count):
        return as_float(init_value * jnp.power(as_float(count) + 1, -0.5))

    return schedule


def inverse_power_decay(
    init_value: jax.typing.ArrayLike, beta: jax.typing.ArrayLike, power: jax.typing.ArrayLike = 0.5
) -> base.Schedule:
    """``s(t) = init_value * (beta * t + 1) ** -power`` (Robbins & Monro, 1951; Bottou,
    "Stochastic gradient descent tricks", 2012, uses ``power=1``)."""
    validate.finite("init_value", init_value)
    validate.non_negative("beta", beta)
    validate.non_negative("power", power)

    def schedule(count):
        return as_float(init_value * jnp.power(beta * as_float(count) + 1, -power))

    return schedule


def factor_schedule(
    init_value: jax.typing.ArrayLike,
    factor: jax.typing.ArrayLike,
    min_value: jax.typing.ArrayLike = 0.0,
) -> base.Schedule:
    """``s(t) = max(min_value, init_value * factor ** t)`` (MXNet's ``FactorScheduler`` with a
    step of 1)."""
    validate.finite("init_value", init_value)
    validate.positive("factor", factor)
    validate.non_negative("min_value", min_value)

    def schedule(count):
        return as_float(jnp.maximum(min_value, init_value * jnp.power(factor, as_float(count))))

    return schedule


def multi_factor_schedule(
    init_value: jax.typing.ArrayLike, milestones: Iterable[int], factor: jax.typing.ArrayLike
) -> base.Schedule:
    """``s(t) = init_value * factor ** n(t)``, ``n(t) = #{m in milestones : t >= m}``.

    The value is multiplied by ``factor`` at each milestone (MXNet's
    ``MultiFactorScheduler``); milestones must be strictly increasing ints ``>= 0``.
    """
    validate.finite("init_value", init_value)
    validate.positive("factor", factor)
    milestones = tuple(milestones)
    for m in milestones:
        check_steps("milestones", m)
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise ValueError(f"milestones must be strictly increasing, got {milestones!r}")

    def schedule(count):
        passed = jnp.zeros(jnp.shape(count), jnp.int32)
        for m in milestones:
            passed = passed + (jnp.asarray(count) >= m).astype(jnp.int32)
        return broadcast_float(init_value, count) * jnp.power(factor, passed)

    return schedule
