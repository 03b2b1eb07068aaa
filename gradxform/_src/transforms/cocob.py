"""COCOB: the learning rate replaced by a coin-betting wager per coordinate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate


class COCOBState(NamedTuple):
    """The state of ``scale_by_cocob``; every field is shaped like the params, in their
    dtypes.

    Attributes:
        init_particles: ``x_0``, the params at ``init``.
        cumulative_gradients: ``C = -sum g``, the negated gradient sum.
        scale: ``L = max |g|``, the largest gradient magnitude seen (starts at ``eps``).
        subgradients: ``G = sum |g|``, the sum of gradient magnitudes.
        reward: ``R``, the wealth won so far.
    """

    init_particles: Any
    cumulative_gradients: Any
    scale: Any
    subgradients: Any
    reward: Any


def scale_by_cocob(
    alpha: jax.typing.ArrayLike = 100.0, eps: jax.typing.ArrayLike = 1e-8
) -> base.GradientTransformation:
    """COCOB-Backprop's step (Orabona & Tommasi 2017, "Training Deep Networks without
    Learning Rates Through Coin Betting", Algorithm 2), as a displacement ``x_new - x``.

    Per coordinate, with ``g`` the incoming update:
    ``L <- max(L, |g|)``; ``G <- G + |g|``; ``R <- max(R - g (x - x_0), 0)``;
    ``C <- C - g``; ``x_new = x_0 + C (L + R) / (L max(G + L, alpha L))``;
    returns ``u = x_new - x``.

    Args:
      alpha: bound on the fraction of the wealth bet early on, ``> 0``; default 100.
      eps: initial ``L``, keeping the first division finite, ``> 0``; default 1e-8.

    Returns:
      A ``GradientTransformation`` with state ``COCOBState``; ``update`` needs
      ``params``. Real parameters only.
    """
    validate.positive("alpha", alpha)
    validate.positive("eps", eps)

    def init(params):
        base.check_real_float_leaves(params, "scale_by_cocob")
        return COCOBState(
            init_particles=params,
            cumulative_gradients=tree_ops.zeros_like(params),
            scale=tree_ops.full_like(params, eps),
            subgradients=tree_ops.zeros_like(params),
            reward=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs(
            "scale_by_cocob", updates, params, state.init_particles, "initial params"
        )
        up = numerics.upcast

        def leaf(g, x, x0, c, lo, gs, r):
            g, x, x0, c, lo, gs, r = map(up, (g, x, x0, c, lo, gs, r))
            lo = jnp.maximum(lo, jnp.abs(g))
            gs = gs + jnp.abs(g)
            r = jnp.maximum(r - g * (x - x0), 0)
            c = c - g
            new_x = x0 + c / (lo * jnp.maximum(gs + lo, alpha * lo)) * (lo + r)
            return new_x - x, c, lo, gs, r

        out = jax.tree.map(
            leaf,
            updates,
            params,
            state.init_particles,
            state.cumulative_gradients,
            state.scale,
            state.subgradients,
            state.reward,
        )
        treedef = jax.tree.structure(updates)
        u, c, lo, gs, r = jax.tree.transpose(treedef, jax.tree.structure((0,) * 5), out)
        new_state = COCOBState(
            state.init_particles,
            *tree_ops.cast_like(
                (c, lo, gs, r),
                (state.cumulative_gradients, state.scale, state.subgradients, state.reward),
            ),
        )
        return tree_ops.cast_like(u, updates), new_state

    return base.GradientTransformation(init, update)
