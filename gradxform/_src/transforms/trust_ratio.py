"""The layer-wise trust ratio of LARS and LAMB."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, validate


def scale_by_trust_ratio(
    min_norm: jax.typing.ArrayLike = 0.0,
    trust_coefficient: jax.typing.ArrayLike = 1.0,
    eps: jax.typing.ArrayLike = 0.0,
) -> base.GradientTransformation:
    """Scales each leaf by its trust ratio ``||p|| / ||u||`` (LARS, LAMB).

    With ``P = max(||p||, min_norm)`` and ``U = max(||u||, min_norm)`` per leaf:
    ``u <- u * trust_coefficient * P / (U + eps)``, or ``u <- u`` when ``P = 0`` or
    ``U = 0``.
    You et al. (2017), "Large Batch Training of Convolutional Networks".

    Args:
      min_norm: lower bound on both norms, ``>= 0``; default 0.
      trust_coefficient: the factor ``trust_coefficient``, ``>= 0``; default 1.
      eps: added to the update norm in the denominator, ``>= 0``; default 0.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``); ``update`` needs
      ``params``.
    """
    validate.non_negative("min_norm", min_norm)
    validate.non_negative("trust_coefficient", trust_coefficient)
    validate.non_negative("eps", eps)

    def scale_leaf(u, p):
        param_norm = numerics.safe_norm(p, min_norm)
        update_norm = numerics.safe_norm(u, min_norm)
        ratio = trust_coefficient * param_norm / (update_norm + eps)
        # A zero norm would freeze the leaf for good (p = 0) or divide by zero (u = 0).
        zero = jnp.logical_or(param_norm == 0.0, update_norm == 0.0)
        return u * jnp.where(zero, jnp.array(1.0, dtype=jnp.asarray(p).dtype), ratio)

    def scale_tree(updates, params):
        base.check_update_inputs("scale_by_trust_ratio", updates, params, params, "params")
        return jax.tree.map(scale_leaf, updates, params)

    return base.stateless(scale_tree)
