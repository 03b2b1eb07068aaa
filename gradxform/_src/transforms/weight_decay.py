"""Weight decay added to the updates (decoupled when placed after the preconditioner)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base, numerics, validate
from gradxform._src.partition import masked


class WeightDecaySchedule(NamedTuple):
    """``add_decayed_weights``'s state with a scheduled decay (optax's name).

    Attributes:
        count: int32 scalar, the number of updates made so far.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def add_decayed_weights(
    weight_decay: base.ScalarOrSchedule = 0.0,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """``u <- u + wd * p``; ``wd`` may be a schedule of the step, ``mask`` selects leaves.

    Placed before an adaptive preconditioner it is L2 regularisation; placed after it
    (times the learning rate) it is decoupled weight decay, Loshchilov & Hutter (2019),
    "Decoupled Weight Decay Regularization".

    Args:
      weight_decay: A finite constant, or a schedule that sees the number of earlier
        updates (then the state is ``WeightDecaySchedule(count)``, as optax's). A
        constant 0 leaves the updates untouched (no ``0 * p`` pass, and a non-finite
        parameter does not turn its update into NaN). Default 0.
      mask: A tree of bools (or a function of the params giving one) selecting the
        leaves to decay; None (default) decays every leaf.

    Returns:
      The ``GradientTransformation``; ``update`` needs ``params``. Its state is
      ``EmptyState`` for a constant decay, ``WeightDecaySchedule(count)`` for a schedule
      (inside ``MaskedState(inner_state)`` when ``mask`` is given).
    """
    scheduled = callable(weight_decay)
    if not scheduled:
        validate.finite("weight_decay", weight_decay)
    skip = (  # a known scalar zero
        not callable(weight_decay)
        and not isinstance(weight_decay, jax.core.Tracer)
        and np.ndim(weight_decay) == 0
        and not np.any(weight_decay)
    )

    def init(params):
        base.check_float_leaves(params, "add_decayed_weights")
        if scheduled:
            return WeightDecaySchedule(count=jnp.zeros([], jnp.int32))
        return base.EmptyState()

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(g, state, params)")
        if skip:
            return updates, state
        if scheduled:
            wd = weight_decay(state.count)
            state = WeightDecaySchedule(count=numerics.safe_increment(state.count))
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
