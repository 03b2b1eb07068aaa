"""Weight decay added to the updates (decoupled when placed after the preconditioner)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base, numerics, validate
from gradxform._src.counting import shared_step
from gradxform._src.partition import masked


class WeightDecayScheduleState(NamedTuple):
    count: jax.Array  # int32 scalar


def add_decayed_weights(
    weight_decay: base.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[base.Params], Any] | None = None,
    *,
    shared_count: bool = False,
) -> base.GradientTransformation:
    """``u <- u + wd * p``; ``wd`` may be a schedule of the step, ``mask`` selects leaves.

    Placed before an adaptive preconditioner it is L2 regularisation; placed after it
    (times the learning rate) it is decoupled weight decay, Loshchilov & Hutter (2019),
    "Decoupled Weight Decay Regularization". A schedule sees the number of earlier
    updates, counted here or, with ``shared_count=True``, by an enclosing ``with_count``.
    A constant ``wd = 0`` leaves the updates untouched (no ``0 * p`` pass, and a
    non-finite parameter does not turn its update into NaN).
    """
    scheduled = callable(weight_decay)
    if not scheduled:
        validate.finite("weight_decay", weight_decay)
    skip = not scheduled and not isinstance(weight_decay, jax.core.Tracer) and (
        np.ndim(weight_decay) == 0 and float(weight_decay) == 0.0
    )

    def init(params):
        base.check_float_leaves(params, "add_decayed_weights")
        if scheduled and not shared_count:
            return WeightDecayScheduleState(count=jnp.zeros([], jnp.int32))
        return base.EmptyState()

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(g, state, params)")
        if skip:
            return updates, state
        if scheduled and shared_count:
            wd = weight_decay(shared_step(extra, "add_decayed_weights") - 1)
        elif scheduled:
            wd = weight_decay(state.count)
            state = WeightDecayScheduleState(count=numerics.safe_increment(state.count))
        else:
            wd = weight_decay
        updates = jax.tree.map(
            lambda g, p: None if g is None else g + wd * p,
            updates,
            params,
            is_leaf=lambda x: x is None,
        )
        return updates, state

    tx = base.GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)
