"""Gradient centralisation."""

from __future__ import annotations

import jax.numpy as jnp

from gradxform._src import base


def centralize() -> base.GradientTransformation:
    """Subtracts from each leaf of rank ``>= 2`` its mean over all axes but the first:
    ``u <- u - mean_{axes 1..}(u)``; 0-d and 1-d leaves pass unchanged.
    Yong et al. (2020), "Gradient Centralization: A New Optimization Technique for
    Deep Neural Networks".

    Takes no arguments.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``).
    """

    def subtract_mean(u):
        if jnp.ndim(u) > 1:
            return u - jnp.mean(u, axis=tuple(range(1, jnp.ndim(u))), keepdims=True)
        return u

    return base.elementwise(subtract_mean)
