"""Keeping only the direction of each coordinate."""

from __future__ import annotations

import jax.numpy as jnp

from gradxform._src import base


def scale_by_sign() -> base.GradientTransformation:
    """``u <- sign(u)`` element-wise (0 stays 0). Bernstein et al. (2018), "signSGD:
    Compressed Optimisation for Non-Convex Problems".

    Takes no arguments.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``).
    """
    return base.elementwise(jnp.sign)
