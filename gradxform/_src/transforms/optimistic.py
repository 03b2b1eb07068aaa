"""Optimistic gradient: extrapolating with the previous gradient (for min-max games)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, validate


class ScaleByOptimisticGradientState(NamedTuple):
    """The state of ``scale_by_optimistic_gradient`` (optax's fields).

    Attributes:
        is_initial_step: bool scalar, True until the first update (no previous gradient).
        previous_gradient: ``g_{t-1}``, a tree like the params, in their dtypes.
    """

    is_initial_step: jax.Array
    previous_gradient: Any


def scale_by_optimistic_gradient(
    alpha: jax.typing.ArrayLike = 1.0, beta: jax.typing.ArrayLike = 1.0
) -> base.GradientTransformation:
    """The optimistic gradient step (Mokhtari et al. 2020, "A Unified Analysis of
    Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems").

    ``u_t <- (alpha + beta) g_t - beta g_{t-1}``, with ``g_0`` taken as ``g_1`` (so the
    first update is ``alpha g_1``). ``alpha=1, beta=1`` is Popov's / Daskalakis et al.'s
    optimistic GD ``2 g_t - g_{t-1}``.

    Args:
      alpha: the weight of the current gradient, finite; default 1.
      beta: the weight of the gradient change ``g_t - g_{t-1}``, finite; default 1.

    Returns:
      The ``GradientTransformation``; its state is
      ``ScaleByOptimisticGradientState(is_initial_step, previous_gradient)``.
    """
    validate.finite("alpha", alpha)
    validate.finite("beta", beta)

    def init(params):
        base.check_float_leaves(params, "scale_by_optimistic_gradient")
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(True), previous_gradient=tree_ops.zeros_like(params)
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.previous_gradient, "previous gradient")
        first = state.is_initial_step

        def step(g, prev):
            prev = jnp.where(first, g, prev)
            return (alpha + beta) * g - beta * prev

        out = jax.tree.map(step, updates, state.previous_gradient)
        # Kept in the dtype it was initialised with, so that the state's dtypes are fixed.
        previous = tree_ops.cast_like(updates, state.previous_gradient)
        return out, ScaleByOptimisticGradientState(
            is_initial_step=jnp.zeros_like(state.is_initial_step), previous_gradient=previous
        )

    return base.GradientTransformation(init, update)
