"""Normalising the whole update to a fixed norm."""

from __future__ import annotations

import jax

from gradxform._src import base, numerics, validate


def normalize_by_update_norm(
    scale_factor: jax.typing.ArrayLike = 1.0, eps: jax.typing.ArrayLike = 1e-6
) -> base.GradientTransformation:
    """Divides every update by the norm of the whole update tree:
    ``u <- scale_factor * u / (||u|| + eps)``, ``||u||`` the global 2-norm (computed in at
    least float32), so the step has norm ``scale_factor`` (up to ``eps``).

    Args:
      scale_factor: The norm of the normalised update (default 1.0; any finite value,
        a negative one flips the direction).
      eps: Added to the norm so a zero update stays zero (default 1e-6, ``>= 0``).

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState()``).
    """
    validate.finite("scale_factor", scale_factor)
    validate.non_negative("eps", eps)

    def update(updates, state, params=None, **extra):
        del params, extra
        wide = jax.tree.map(numerics.upcast, updates)
        factor = scale_factor / (numerics.global_norm(wide) + eps)
        out = jax.tree.map(lambda g, w: (w * factor).astype(g.dtype), updates, wide)
        return out, state

    return base.GradientTransformation(base.init_empty_state, update)
