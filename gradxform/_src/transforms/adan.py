"""Adan: Nesterov momentum estimated from gradient differences."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate


class ScaleByAdanState(NamedTuple):
    """The state of ``scale_by_adan`` (optax's layout: the moments, the previous gradient,
    then the step count).

    Attributes:
        m: the average of gradients ``m``, a tree like the params, in their dtypes.
        v: the average of gradient differences ``v``, a tree like the params, in their
            dtypes.
        n: the average of squared look-ahead gradients ``n``, a tree like the params, in
            their dtypes.
        g: the previous gradient ``g_prev`` (zeros before the first update), a tree like
            the params, in their dtypes.
        t: int32 scalar, the number of updates made so far.
    """

    m: Any
    v: Any
    n: Any
    g: Any
    t: jax.Array


def scale_by_adan(
    b1: jax.typing.ArrayLike = 0.98,
    b2: jax.typing.ArrayLike = 0.92,
    b3: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
) -> base.GradientTransformation:
    """Adan's scaling (Xie et al. 2024, "Adan: Adaptive Nesterov Momentum Algorithm for
    Faster Optimizing Deep Models"), with bias correction.

    ``d = g - g_prev`` (0 on the first step);
    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) d``;
    ``n <- b3 n + (1 - b3) (g + (1 - b2) d)^2``;
    ``u <- (m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps)`` with each ``x_hat``
    divided by ``1 - b^t`` of its own decay, ``t`` counting this update. (The ``b`` here
    weight the *old* value, so the paper's ``beta_k`` is ``1 - b_k``.) The squares are
    ``|.|^2`` for complex leaves.

    Args:
        b1: decay of the gradient average ``m``, in ``[0, 1)``. Default 0.98.
        b2: decay of the gradient-difference average ``v``, in ``[0, 1)``; ``1 - b2`` also
            weights ``d`` in the look-ahead gradient and ``v_hat`` in the step.
            Default 0.92.
        b3: decay of the squared look-ahead average ``n``, in ``[0, 1)``. Default 0.99.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to ``n_hat`` inside the square root, ``>= 0``. Default 0.0.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``ScaleByAdanState(m, v, n, g, t)``.
    """
    validate.adam(b1, b2, eps, eps_root)
    validate.decay("b3", b3)

    def init(params):
        base.check_float_leaves(params, "scale_by_adan")
        zeros = lambda: tree_ops.zeros_like(params)
        return ScaleByAdanState(
            m=zeros(), v=zeros(), n=zeros(), g=zeros(), t=jnp.zeros([], jnp.int32)
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.g, "previous gradient")
        incoming = updates  # the output takes its dtypes
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        g = updates
        diff = tree_ops.where(state.t == 0, tree_ops.zeros_like(g), tree_ops.sub(g, state.g))
        m = tree_ops.update_moment(g, state.m, b1, 1)
        v = tree_ops.update_moment(diff, state.v, b2, 1)
        look_ahead = tree_ops.add_scale(g, 1 - b2, diff)
        n = tree_ops.update_moment_per_elem_norm(look_ahead, state.n, b3, 2)
        count = numerics.safe_increment(state.t)
        m_hat = tree_ops.bias_correction(m, b1, count)
        v_hat = tree_ops.bias_correction(v, b2, count)
        n_hat = tree_ops.bias_correction(n, b3, count)
        out = tree_ops.div(
            tree_ops.add_scale(m_hat, 1 - b2, v_hat),
            jax.tree.map(lambda x: jnp.sqrt(x + eps_root) + eps, n_hat),
        )
        m, v, n, g = tree_ops.cast_like((m, v, n, g), (state.m, state.v, state.n, state.g))
        new_state = ScaleByAdanState(m=m, v=v, n=n, g=g, t=count)
        return tree_ops.cast_like(out, incoming), new_state

    return base.GradientTransformation(init, update)
