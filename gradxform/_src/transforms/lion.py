"""Lion: the sign of an interpolation between the gradient and its momentum."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.transforms.accumulation import _dtype

_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
    count: jax.Array  # int32 scalar
    mu: Any


def scale_by_lion(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    mu_dtype: Any = None,
    *,
    mode: str = "hard",
    smooth_beta: float = 1.0,
) -> base.GradientTransformation:
    """Lion's scaling (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    ``c = b1 m + (1 - b1) g``; ``u <- sign(c)``; then ``m <- b2 m + (1 - b2) g``.
    ``mode="smooth"`` uses ``tanh(smooth_beta * c)`` and ``mode="refined"`` keeps ``c``
    where ``|c| < 1`` and ``sign(c)`` elsewhere. Defaults ``b1=0.9, b2=0.99``;
    ``mu_dtype`` is the dtype of ``m``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.one_of("mode", mode, _MODES)
    validate.finite("smooth_beta", smooth_beta)
    mu_dtype = _dtype(mu_dtype)

    def direction(g, m):
        c = (1.0 - b1) * g + b1 * m
        if mode == "hard":
            return jnp.sign(c)
        if mode == "smooth":
            return jnp.tanh(smooth_beta * c)
        return jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))

    def init(params):
        base.check_float_leaves(params, "scale_by_lion")
        return ScaleByLionState(
            count=jnp.zeros([], jnp.int32), mu=tree_ops.zeros_like(params, dtype=mu_dtype)
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "momentum")
        out = jax.tree.map(direction, updates, state.mu)
        mu = tree_ops.cast_like(tree_ops.update_moment(updates, state.mu, b2, 1), state.mu)
        return out, ScaleByLionState(count=numerics.safe_increment(state.count), mu=mu)

    return base.GradientTransformation(init, update)
