"""Scaling the whole update tree to unit norm."""

from __future__ import annotations

import jax

from gradxform._src import base, numerics

NormalizeState = base.EmptyState


def normalize() -> base.GradientTransformation:
    """``u <- u / ||u||``, ``||u||`` the 2-norm of the whole tree (computed in at least
    float32); each leaf keeps its dtype. A zero update gives NaN, as in optax (SAM's
    adversarial step is undefined there); ``normalize_by_update_norm`` adds an ``eps``.

    Returns:
      A stateless ``GradientTransformation`` (state ``NormalizeState()``, an empty state).
    """

    def init(params):
        del params
        return NormalizeState()

    def update(updates, state, params=None, **extra):
        del params, extra
        wide = jax.tree.map(numerics.upcast, updates)
        norm = numerics.global_norm(wide)
        return jax.tree.map(lambda g, w: (w / norm).astype(g.dtype), updates, wide), state

    return base.GradientTransformation(init, update)
