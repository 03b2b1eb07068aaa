"""Multiplying updates by a constant, a schedule or a learning rate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, validate
from gradxform._src.counting import shared_step


class ScaleByScheduleState(NamedTuple):
    count: jax.Array  # int32 scalar: the number of updates made so far


def scale(step_size: jax.typing.ArrayLike) -> base.GradientTransformation:
    """``u <- step_size * u``."""
    validate.finite("step_size", step_size)
    return base.elementwise(lambda u: step_size * u)


def scale_by_schedule(
    step_size_fn: base.Schedule, *, shared_count: bool = False
) -> base.GradientTransformation:
    """``u <- s(t) * u`` with ``t`` the number of earlier updates (0 on the first).

    ``s(t)`` is cast to each update's dtype, so float32 updates stay float32.
    ``shared_count=True``: ``t`` is one less than the step of an enclosing
    ``with_count``, and there is no state.
    """
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn must be callable, got {type(step_size_fn).__name__}")

    def init(params):
        base.check_float_leaves(params, "scale_by_schedule")
        if shared_count:
            return base.EmptyState()
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        del params
        if shared_count:
            earlier = shared_step(extra, "scale_by_schedule") - 1
        else:
            earlier = state.count
        step_size = step_size_fn(earlier)
        updates = jax.tree.map(lambda u: jnp.array(step_size, dtype=u.dtype) * u, updates)
        if shared_count:
            return updates, state
        return updates, ScaleByScheduleState(count=numerics.safe_increment(state.count))

    return base.GradientTransformation(init, update)


def scale_by_learning_rate(
    learning_rate: base.ScalarOrSchedule | None = None,
    *,
    flip_sign: bool = True,
    shared_count: bool = False,
) -> base.GradientTransformation:
    """``u <- -lr * u`` (``+lr * u`` with ``flip_sign=False``); ``lr`` may be a schedule.

    ``learning_rate=None`` means no scaling, ``u <- -u``: the sign still flips, so the
    result still descends. (optax returns the identity for ``None``, which climbs.)
    ``shared_count=True``: a schedule reads the step of an enclosing ``with_count``.
    """
    sign = -1 if flip_sign else 1
    if learning_rate is None:
        return scale(sign)
    if callable(learning_rate):
        return scale_by_schedule(
            lambda count: sign * learning_rate(count), shared_count=shared_count
        )
    validate.non_negative("learning_rate", learning_rate)
    return scale(sign * learning_rate)
