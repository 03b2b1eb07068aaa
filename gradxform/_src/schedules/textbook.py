"""Textbook decays that optax does not name: 1/sqrt(t), inverse power, step factors."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import jax
import jax.numpy as jnp

from gradxform._src import base, validate
from gradxform._src.schedules.decay import as_float, broadcast_float, check_steps


def square_root_schedule(init_value: jax.typing.ArrayLike) -> base.Schedule:
    """``s(t) = init_value / sqrt(t + 1)``.

    The ``O(1/sqrt(t))`` step size of online convex optimisation (Zinkevich, ICML 2003).

    Args:
        init_value: the value at step 0; finite.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Examples:
        >>> s = gx.schedules.square_root_schedule(1.0)
        >>> print(s(jnp.array([0, 3, 15])))
        [1.   0.5  0.25]
    """
    validate.finite("init_value", init_value)

    def schedule(count):
        return as_float(init_value * jnp.power(as_float(count) + 1, -0.5))

    return schedule


def inverse_power_decay(
    init_value: jax.typing.ArrayLike, beta: jax.typing.ArrayLike, power: jax.typing.ArrayLike = 0.5
) -> base.Schedule:
    """``s(t) = init_value * (beta * t + 1) ** -power``.

    Robbins & Monro (1951); Bottou, "Stochastic gradient descent tricks" (2012), uses
    ``power=1``.

    Args:
        init_value: the value at step 0; finite.
        beta: the rate at which ``t`` counts; ``>= 0`` (0 gives the constant ``init_value``).
        power: the decay exponent; ``>= 0`` (default 0.5).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Examples:
        >>> s = gx.schedules.inverse_power_decay(1.0, beta=1.0, power=1.0)
        >>> print(s(jnp.array([0, 1, 3])))
        [1.   0.5  0.25]
    """
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
    """``s(t) = max(min_value, init_value * factor ** t)``.

    MXNet's ``FactorScheduler`` with a step of 1.

    Args:
        init_value: the value at step 0; finite.
        factor: the factor per step; positive.
        min_value: the floor of the value; ``>= 0`` (default 0).

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Examples:
        >>> s = gx.schedules.factor_schedule(1.0, factor=0.5, min_value=0.2)
        >>> print(np.asarray(s(jnp.arange(4))).round(4))
        [1.   0.5  0.25 0.2 ]
    """
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
    ``MultiFactorScheduler``).

    Args:
        init_value: the value before the first milestone; finite.
        milestones: the steps at which the value is multiplied by ``factor``; strictly
            increasing ints ``>= 0``.
        factor: the factor per milestone; positive.

    Returns:
        A schedule ``t -> s(t)``, a float array of ``t``'s shape.

    Raises:
        ValueError: for milestones that are negative or not strictly increasing.

    Examples:
        >>> s = gx.schedules.multi_factor_schedule(1.0, milestones=[2, 4], factor=0.5)
        >>> print(s(jnp.arange(6)))
        [1.   1.   0.5  0.5  0.25 0.25]
    """
    validate.finite("init_value", init_value)
    validate.positive("factor", factor)
    milestones = tuple(milestones)
    for m in milestones:
        check_steps("milestones", m)
    if any(b <= a for a, b in itertools.pairwise(milestones)):
        raise ValueError(f"milestones must be strictly increasing, got {milestones!r}")

    def schedule(count):
        passed = jnp.zeros(jnp.shape(count), jnp.int32)
        for m in milestones:
            passed = passed + (jnp.asarray(count) >= m).astype(jnp.int32)
        return broadcast_float(init_value, count) * jnp.power(factor, passed)

    return schedule
