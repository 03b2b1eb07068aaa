"""DoG and DoWG: step sizes from the distance travelled over the gradients seen."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, validate
from gradxform._src.dtypes import lowest_dtype


def _scalar_dtype(params: Any) -> Any:
    """The params' lowest dtype, at least float32: the running sums of squared norms
    would lose every late gradient in half precision."""
    return jnp.promote_types(lowest_dtype(params), jnp.float32)


def _step(lr: jax.Array, updates: Any) -> Any:
    """``lr * g`` in each leaf's dtype."""
    return jax.tree.map(lambda g: (lr * g).astype(g.dtype), updates)


class DoGState(NamedTuple):
    """The state of ``scale_by_dog``; the scalars are in the params' lowest dtype
    (at least float32).

    Attributes:
        is_init_step: bool scalar, True until the first update.
        init_params: ``x_0``, the params at ``init``, a tree like the params.
        max_dist: ``r_bar``, the largest distance ``||x_t - x_0||`` seen so far (scalar).
        sum_sq_norm_grads: ``G``, the running sum of squared gradient norms (scalar).
    """

    is_init_step: jax.Array
    init_params: Any
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


def scale_by_dog(
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], jax.typing.ArrayLike],
    eps: jax.typing.ArrayLike = 1e-8,
) -> base.GradientTransformation:
    """DoG's step size (Ivgi et al. 2023, "DoG is SGD's Best Friend: A Parameter-Free
    Dynamic Step Size Schedule"): ``u = eta_t g``.

    ``r_bar <- max(r_bar, ||x - x_0||)``; ``G <- G + ||g||^2``;
    ``eta_t = r_bar / sqrt(G + eps)``. Norms are over the whole tree.

    Args:
      init_step: ``(tag, value)`` with ``value >= 0``. ``("distance", r)``: ``r_bar_0 = r``;
        ``("heuristic", a)``: ``r_bar_0 = a (1 + ||x_0||)`` (``init`` needs the real
        params); ``("learning_rate", eta)``: the first step is ``eta g`` and
        ``r_bar_0 = 0``.
      eps: added to ``G``, ``>= 0``; default 1e-8.

    Returns:
      A ``GradientTransformation`` with state ``DoGState``; ``update`` needs ``params``.
    """
    if not (isinstance(init_step, tuple) and len(init_step) == 2):
        raise ValueError(f"init_step must be a pair (tag, value), got {init_step!r}")
    kind, value = init_step
    validate.one_of("init_step[0]", kind, ("distance", "learning_rate", "heuristic"))
    validate.non_negative("init_step[1]", value)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "scale_by_dog")
        dtype = _scalar_dtype(params)
        if kind == "distance":
            r0 = value
        elif kind == "heuristic":
            r0 = value * (1 + tree_ops.norm(params))
        else:
            r0 = 0.0
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=params,
            max_dist=jnp.asarray(r0, dtype),
            sum_sq_norm_grads=jnp.zeros([], dtype),
        )

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs(
            "scale_by_dog", updates, params, state.init_params, "initial params"
        )
        dtype = state.max_dist.dtype
        dist = tree_ops.norm(tree_ops.sub(state.init_params, params)).astype(dtype)
        max_dist = jnp.maximum(state.max_dist, dist)
        sum_sq = state.sum_sq_norm_grads + tree_ops.norm(updates, squared=True).astype(dtype)
        lr = max_dist / jnp.sqrt(sum_sq + eps)
        if kind == "learning_rate":
            lr = jnp.where(state.is_init_step, value, lr)
        return _step(lr, updates), DoGState(
            is_init_step=jnp.asarray(False),
            init_params=state.init_params,
            max_dist=max_dist,
            sum_sq_norm_grads=sum_sq,
        )

    return base.GradientTransformation(init, update)


class DoWGState(NamedTuple):
    """The state of ``scale_by_dowg``; the scalars are in the params' lowest dtype
    (at least float32).

    Attributes:
        init_params: ``x_0``, the params at ``init``, a tree like the params.
        weighted_sq_norm_grads: ``v``, the running sum of ``r_bar^2 ||g||^2`` (scalar).
        estim_sq_dist: ``r_bar^2``, the largest squared distance from ``x_0`` (scalar).
    """

    init_params: Any
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


def scale_by_dowg(
    init_estim_sq_dist: jax.typing.ArrayLike | None = None,
    eps: jax.typing.ArrayLike = 1e-4,
) -> base.GradientTransformation:
    """DoWG's step size (Khaled et al. 2023, "DoWG Unleashed: An Efficient Universal
    Parameter-Free Gradient Descent Method"): ``u = eta_t g``.

    ``r_bar^2 <- max(r_bar^2, ||x - x_0||^2)``; ``v <- v + r_bar^2 ||g||^2``;
    ``eta_t = r_bar^2 / (sqrt(v) + eps)``.

    Args:
      init_estim_sq_dist: ``r_bar_0^2``, ``>= 0``; default ``None`` takes ``eps``.
      eps: added to ``sqrt(v)``, ``>= 0``; default 1e-4.

    Returns:
      A ``GradientTransformation`` with state ``DoWGState``; ``update`` needs ``params``.
    """
    validate.non_negative("init_estim_sq_dist", init_estim_sq_dist)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "scale_by_dowg")
        dtype = _scalar_dtype(params)
        r0 = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(
            init_params=params,
            weighted_sq_norm_grads=jnp.zeros([], dtype),
            estim_sq_dist=jnp.asarray(r0, dtype),
        )

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs(
            "scale_by_dowg", updates, params, state.init_params, "initial params"
        )
        dtype = state.estim_sq_dist.dtype
        sq_dist = tree_ops.norm(tree_ops.sub(state.init_params, params), squared=True)
        estim = jnp.maximum(state.estim_sq_dist, sq_dist.astype(dtype))
        step_sq = tree_ops.norm(updates, squared=True).astype(dtype)
        weighted = estim * step_sq + state.weighted_sq_norm_grads
        lr = estim / (jnp.sqrt(weighted) + eps)
        return _step(lr, updates), state._replace(
            weighted_sq_norm_grads=weighted, estim_sq_dist=estim
        )

    return base.GradientTransformation(init, update)
