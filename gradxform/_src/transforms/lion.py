"""Lion: the sign of an interpolation between the gradient and its momentum."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype

_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
    """The state of ``scale_by_lion`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the momentum ``m``, a tree like the params (in ``mu_dtype`` when given, else
            the params' dtypes).
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
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
    where ``|c| < 1`` and ``sign(c)`` elsewhere.

    Args:
      b1: weight of the momentum in the interpolation ``c``, in ``[0, 1)``; default 0.9.
      b2: decay of the momentum ``m``, in ``[0, 1)``; default 0.99.
      mu_dtype: storage dtype of ``m`` (default None: the params').
      mode: ``"hard"`` (default, the paper's sign), ``"smooth"`` or ``"refined"``, as
        above; any other value raises ``ValueError``.
      smooth_beta: the sharpness of ``tanh`` in ``"smooth"`` mode, finite; default 1.

    Returns:
      The ``GradientTransformation``; its state is ``ScaleByLionState(count, mu)``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.one_of("mode", mode, _MODES)
    validate.finite("smooth_beta", smooth_beta)
    mu_dtype = canonicalize_dtype(mu_dtype)

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
