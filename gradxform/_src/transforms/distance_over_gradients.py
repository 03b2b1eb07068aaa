"""Layer-wise DoG: a distance-over-gradients step size for each parameter leaf."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate


class ScaleByDistanceOverGradientsState(NamedTuple):
    """The state of ``scale_by_distance_over_gradients``.

    Attributes:
        max_dist: per leaf, ``r_bar``, the largest distance from ``x_0`` seen so far (a
            scalar in ``param_dtype``).
        grad_sum_of_squares: per leaf, ``G``, the running sum of squared gradient norms
            (shape ``(1,)``, as optax keeps it, in ``param_dtype``).
        init_params: ``x_0``, the params at ``init``, a tree like the params in
            ``param_dtype``.
    """

    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Any


def scale_by_distance_over_gradients(
    reps_rel: jax.typing.ArrayLike = 1e-6,
    eps: jax.typing.ArrayLike = 1e-8,
    param_dtype: Any = jnp.float32,
    global_scale: jax.typing.ArrayLike = 1.0,
) -> base.GradientTransformation:
    """Layer-wise DoG, LDoG (Ivgi et al. 2023, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule"): ``u_i = eta_i g_i`` for each leaf ``i``.

    ``r_bar_i <- max(r_bar_i, ||x_i - x_0i||)`` (``r_bar_i = reps_rel (1 + ||x_0i||)`` at
    ``init``); ``G_i <- G_i + ||g_i||^2``;
    ``eta_i = global_scale r_bar_i / sqrt(G_i + eps)``. Norms are per leaf, computed in
    at least float32; each update keeps its leaf's shape and dtype.

    Args:
      reps_rel: relative initial distance, ``>= 0``; default 1e-6 (the paper suggests
        1e-4 with batch normalisation).
      eps: added to ``G_i``, ``>= 0``; default 1e-8.
      param_dtype: dtype in which ``x_0`` is stored; default float32.
      global_scale: multiplier on every step (finite; -1 gives the descent direction);
        default 1.

    Returns:
      A ``GradientTransformation`` with state ``ScaleByDistanceOverGradientsState``;
      ``update`` needs ``params``.
    """
    validate.non_negative("reps_rel", reps_rel)
    validate.non_negative("eps", eps)
    validate.finite("global_scale", global_scale)

    def l2(x, y=0.0):
        return jnp.sqrt(jnp.sum(numerics.abs_sq(numerics.upcast(x) - y)))

    def init(params):
        base.check_float_leaves(params, "scale_by_distance_over_gradients")
        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(lambda x: reps_rel * (1 + l2(x)), params),
            grad_sum_of_squares=jax.tree.map(
                lambda x: jnp.zeros(1, numerics.upcast(jnp.real(x)).dtype), params
            ),
            init_params=tree_ops.cast(params, param_dtype),
        )

    def update(updates, state, params=None, **extra):
        del extra
        if params is None:
            raise ValueError(
                "scale_by_distance_over_gradients needs params: call update(updates, state, params)"
            )
        base.check_same_structure(updates, state.max_dist, "params")
        max_dist = jax.tree.map(
            lambda d, x, x0: jnp.maximum(d, l2(x, x0)).astype(d.dtype),
            state.max_dist,
            params,
            state.init_params,
        )
        sums = jax.tree.map(
            lambda s, g: (s + jnp.sum(numerics.abs_sq(numerics.upcast(g)))).astype(s.dtype),
            state.grad_sum_of_squares,
            updates,
        )
        out = jax.tree.map(
            lambda g, d, s: (global_scale * d / jnp.sqrt(s[0] + eps) * g).astype(g.dtype),
            updates,
            max_dist,
            sums,
        )
        return out, ScaleByDistanceOverGradientsState(max_dist, sums, state.init_params)

    return base.GradientTransformation(init, update)
