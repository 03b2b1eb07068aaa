"""Multiplying updates by a constant, a schedule or a learning rate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, validate


class ScaleByScheduleState(NamedTuple):
    """The state of ``scale_by_schedule`` (and of a scheduled ``scale_by_learning_rate``).

    Attributes:
        count: int32 scalar, the number of updates made so far.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def scale(step_size: jax.typing.ArrayLike) -> base.GradientTransformation:
    """``u <- step_size * u``.

    Args:
      step_size: the finite factor (a scalar or an array that broadcasts against every
        leaf).

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``).
    """
    validate.finite("step_size", step_size)
    return base.elementwise(lambda u: jnp.multiply(step_size, u))


def scale_by_schedule(step_size_fn: base.Schedule) -> base.GradientTransformation:
    """``u <- s(t) * u`` with ``t`` the number of earlier updates (0 on the first).

    ``s(t)`` is cast to each update's dtype, so float32 updates stay float32.

    Args:
      step_size_fn: The schedule ``s``, a callable of the int32 step count.

    Returns:
      The ``GradientTransformation``; its state is ``ScaleByScheduleState(count)``.
    """
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn must be callable, got {type(step_size_fn).__name__}")

    def init(params):
        base.check_float_leaves(params, "scale_by_schedule")
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        del params, extra
        step_size = step_size_fn(state.count)
        updates = jax.tree.map(lambda u: jnp.array(step_size, dtype=u.dtype) * u, updates)
        return updates, ScaleByScheduleState(count=numerics.safe_increment(state.count))

    return base.GradientTransformation(init, update)


def scale_by_learning_rate(
    learning_rate: base.ScalarOrSchedule | None = None,
    *,
    flip_sign: bool = True,
) -> base.GradientTransformation:
    """``u <- -lr * u`` (``+lr * u`` with ``flip_sign=False``); ``lr`` may be a schedule.

    Args:
      learning_rate: A constant ``>= 0``, a schedule of the step count (then the state is
        ``ScaleByScheduleState(count)``, as optax's), or None (default): no scaling,
        ``u <- -u``; the sign still flips, so the result still descends. (optax returns
        the identity for ``None``, which climbs.)
      flip_sign: Negate the step, so that adding it descends (default True).

    Returns:
      The ``GradientTransformation``; its state is ``EmptyState`` for a constant or
      ``None``, ``ScaleByScheduleState(count)`` for a schedule.
    """
    sign = -1 if flip_sign else 1
    if learning_rate is None:
        return scale(sign)
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    validate.non_negative("learning_rate", learning_rate)
    return scale(sign * learning_rate)
