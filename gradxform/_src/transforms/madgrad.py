"""MADGRAD: momentumised, adaptive, dual-averaged gradient steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate


class MadgradState(NamedTuple):
    """The state of ``scale_by_madgrad``; the trees are like the params, in their dtypes.

    Attributes:
        count: int32 scalar, the number of steps taken.
        grad_sum_sq: ``S``, the ``lambda``-weighted sum of squared gradients.
        s: the ``lambda``-weighted sum of gradients.
        x0: the params at ``init``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    grad_sum_sq: Any
    s: Any
    x0: Any


def scale_by_madgrad(
    learning_rate: base.ScalarOrSchedule,
    momentum: float = 0.9,
    eps: float = 1e-6,
) -> base.GradientTransformation:
    """MADGRAD's step (Defazio & Jelassi 2021, "Adaptivity without Compromise: A
    Momentumized, Adaptive, Dual Averaged Gradient Method for Stochastic Optimization"),
    the learning rate included, as a displacement ``x_new - x``.

    With ``k`` the 0-based step and ``lambda_k = (lr_k + eps) sqrt(k + 1)``:
    ``S <- S + lambda_k g^2``; ``s <- s + lambda_k g``;
    ``z = x_0 - s / (S^(1/3) + eps)``; ``x_new = momentum x + (1 - momentum) z``.
    ``sqrt(k + 1)`` is taken in the learning rate's precision (optax 0.2.8 takes it in
    float32, so its float64 runs differ from this by about 1e-8 relative).

    Args:
      learning_rate: ``lr`` (a number or a schedule of the step), ``>= 0``.
      momentum: weight of the current iterate, in ``[0, 1)``; default 0.9.
      eps: added to ``lr`` and to ``S^(1/3)``, ``>= 0``; default 1e-6.

    Returns:
      A ``GradientTransformation`` with state ``MadgradState``; ``update`` needs
      ``params``. Real parameters only.
    """
    if not callable(learning_rate):
        validate.non_negative("learning_rate", learning_rate)
    validate.decay("momentum", momentum)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_real_float_leaves(params, "scale_by_madgrad")
        return MadgradState(
            count=jnp.zeros([], jnp.int32),
            grad_sum_sq=tree_ops.zeros_like(params),
            s=tree_ops.zeros_like(params),
            x0=params,
        )

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs("scale_by_madgrad", updates, params, state.x0, "initial params")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        lr = numerics.upcast(jnp.asarray(lr))
        lamb = (lr + eps) * jnp.sqrt(state.count.astype(lr.dtype) + 1)
        up = numerics.upcast

        def leaf(g, x, x0, sq, s):
            g, x, x0, sq, s = map(up, (g, x, x0, sq, s))
            sq = sq + lamb * g**2
            s = s + lamb * g
            z = x0 - s / (jnp.cbrt(sq) + eps)
            return (1 - momentum) * z + momentum * x - x, sq, s

        out = jax.tree.map(leaf, updates, params, state.x0, state.grad_sum_sq, state.s)
        treedef = jax.tree.structure(updates)
        u, sq, s = jax.tree.transpose(treedef, jax.tree.structure((0,) * 3), out)
        sq, s = tree_ops.cast_like((sq, s), (state.grad_sum_sq, state.s))
        return tree_ops.cast_like(u, updates), MadgradState(
            count=numerics.safe_increment(state.count), grad_sum_sq=sq, s=s, x0=state.x0
        )

    return base.GradientTransformation(init, update)
