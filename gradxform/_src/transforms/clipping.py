"""Bounding the size of updates: element-wise, per block, globally, relative to params.

Complex updates are clipped by their modulus (``|u|^2 = re^2 + im^2``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate

_NO_PARAMS = "{} needs params: call update(updates, state, params)"


def clip(max_delta: jax.typing.ArrayLike) -> base.GradientTransformation:
    """Element-wise clipping: ``u <- min(max(u, -max_delta), max_delta)``.

    Args:
      max_delta: the largest absolute value an update entry keeps, ``>= 0``.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``).
    """
    validate.non_negative("max_delta", max_delta)
    return base.elementwise(lambda u: jnp.clip(u, jnp.negative(max_delta), max_delta))


def clip_by_block_rms(threshold: jax.typing.ArrayLike) -> base.GradientTransformation:
    """Clips each leaf (a "block": a weight vector or matrix) to an RMS of at most ``threshold``.

    ``u <- u / max(1, rms(u) / threshold)`` with ``rms(u) = sqrt(mean(|u|^2))`` per leaf.

    Args:
      threshold: the largest RMS a leaf of the update keeps, ``> 0``.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``).
    """
    validate.positive("threshold", threshold)

    def clip_block(u):
        denom = jnp.maximum(1.0, jnp.sqrt(jnp.mean(numerics.abs_sq(u))) / threshold)
        return u / denom

    return base.elementwise(clip_block)


def clip_by_global_norm(max_norm: jax.typing.ArrayLike) -> base.GradientTransformation:
    """Rescales the whole update tree to a global L2 norm of at most ``max_norm``.

    ``u <- u`` if ``||u|| < max_norm``, else ``u <- (u / ||u||) * max_norm``, where
    ``||u|| = sqrt(sum_i sum |u_i|^2)`` over every leaf.
    Pascanu et al. (2013), "On the difficulty of training recurrent neural networks".

    Args:
      max_norm: the largest global L2 norm the update tree keeps, ``> 0``.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``).

    Examples:
      >>> tx = gx.clip_by_global_norm(1.0)
      >>> grads = {"w": jnp.array([3.0, 4.0])}
      >>> updates, _ = tx.update(grads, tx.init(grads))
      >>> print(np.asarray(updates["w"]).round(4))
      [0.6 0.8]
    """
    validate.positive("max_norm", max_norm)

    def clip_tree(updates, params):
        del params
        g_norm = tree_ops.norm(updates)
        keep = jnp.squeeze(g_norm < max_norm)
        # A select of the two branches (not ``u * min(1, max_norm / ||u||)``) keeps the
        # gradient of ``update`` w.r.t. the updates exactly the identity when unclipped.
        # The clipped branch multiplies by one scalar (optax divides, then multiplies:
        # the two differ by an ulp): an element-wise product is cheap enough for XLA to
        # fuse into every consumer, where a division would be written out as a full
        # array and read back by each of them.
        return jax.tree.map(
            lambda u: jax.lax.select(keep, u, u * (max_norm / g_norm).astype(u.dtype)), updates
        )

    return base.stateless(clip_tree)


def _check_batch_dim(grads: Any, name: str) -> None:
    leaves = jax.tree.leaves(grads)
    if not leaves:
        raise ValueError(f"{name} needs at least one gradient leaf")
    batch = leaves[0].shape[0] if leaves[0].ndim else None
    if batch is None or any(g.ndim < 1 or g.shape[0] != batch for g in leaves):
        raise ValueError(
            f"{name} expects every gradient leaf to carry the same batch dimension on axis 0; "
            f"got shapes {jax.tree.map(jnp.shape, grads)}"
        )


def per_example_global_norm_clip(
    grads: Any, l2_norm_clip: jax.typing.ArrayLike
) -> tuple[Any, jax.Array]:
    """Clips each example's gradient to a global norm ``C``, then sums over the batch.

    Every leaf has a leading batch axis ``b``. With ``n_b = ||g_b||`` the global norm of
    example ``b``: ``sum_b min(1, C / n_b) g_b`` (a zero norm counts as unclipped).
    Abadi et al. (2016), "Deep Learning with Differential Privacy".

    Args:
      grads: a tree of per-example gradients; every leaf has the same batch size on
        axis 0 (at least one leaf).
      l2_norm_clip: ``C``, the largest global L2 norm an example's gradient keeps, ``>= 0``.

    Returns:
      The pair ``(clipped_sum, number_of_examples_clipped)``, a tree like one example's
      gradient and an integer scalar.
    """
    validate.non_negative("l2_norm_clip", l2_norm_clip)
    _check_batch_dim(grads, "per_example_global_norm_clip")
    norms = jax.vmap(tree_ops.norm)(grads)
    multipliers = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
    num_clipped = jnp.sum(multipliers < 1.0)
    clipped_sum = jax.tree.map(lambda g: jnp.tensordot(multipliers, g, axes=1), grads)
    return clipped_sum, num_clipped


def per_example_layer_norm_clip(
    grads: Any, global_l2_norm_clip: jax.typing.ArrayLike, uniform: bool = True
) -> tuple[Any, Any]:
    """``per_example_global_norm_clip`` applied to each of the ``K`` leaves separately.

    Leaf ``i`` gets the clip norm ``C / sqrt(K)`` (``uniform``) or ``C sqrt(D_i / D)``
    with ``D_i`` its per-example size and ``D`` the total.
    McMahan et al. (2018), "Learning Differentially Private Recurrent Language Models".

    Args:
      grads: a tree of per-example gradients; every leaf has the same batch size on
        axis 0 (at least one leaf).
      global_l2_norm_clip: ``C``, the overall clip norm shared among the leaves, ``>= 0``.
      uniform: ``True`` (default) splits ``C`` evenly over the leaves; ``False`` in
        proportion to the square root of each leaf's per-example size.

    Returns:
      The pair ``(clipped_sums, numbers_clipped)``, two trees with the structure of
      ``grads``: each leaf's batch-summed clipped gradient and its count of clipped
      examples.
    """
    validate.non_negative("global_l2_norm_clip", global_l2_norm_clip)
    _check_batch_dim(grads, "per_example_layer_norm_clip")
    if uniform:
        num_layers = len(jax.tree.leaves(grads))
        clips = jax.tree.map(lambda _: global_l2_norm_clip * (1.0 / num_layers) ** 0.5, grads)
    else:
        total = sum(g[0].size for g in jax.tree.leaves(grads))
        clips = jax.tree.map(lambda g: global_l2_norm_clip * (g[0].size / total) ** 0.5, grads)
    pairs = jax.tree.map(per_example_global_norm_clip, grads, clips)
    return jax.tree.transpose(jax.tree.structure(grads), jax.tree.structure((0, 0)), pairs)


def unitwise_norm(x: jax.typing.ArrayLike, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    """The L2 norm of each "unit" of ``x``, broadcast back to ``x``'s shape.

    ``axis`` names the reduced axes; by default they follow layer conventions: the whole
    array for 0-d and 1-d (and squeezable) arrays, axis 0 for rank 2 and 3 (``IO``,
    multi-head ``HIO``), axes ``(0, 1, 2)`` for rank 4 (``HWIO``), ``(0, 1, 2, 3)`` for 5.

    Args:
      x: the array whose unit norms are taken.
      axis: the reduced axis or axes; default ``None`` picks them by rank as above
        (ranks above 5 then raise ``ValueError``).

    Returns:
      An array shaped like ``x``, each entry the L2 norm of its unit.
    """
    x = jnp.asarray(x)
    if axis is not None:
        axes = axis
    elif jnp.squeeze(x).ndim <= 1:
        axes = None
    elif x.ndim in (2, 3):
        axes = 0
    elif x.ndim in (4, 5):
        axes = tuple(range(x.ndim - 1))
    else:
        raise ValueError(
            f"unitwise_norm: no default unit for shape {x.shape}; pass axis= to name the "
            "reduced axes"
        )
    squared = jnp.sum(numerics.abs_sq(x), axis=axes, keepdims=True)
    return jnp.broadcast_to(jnp.sqrt(squared), x.shape)


def unitwise_clip(
    g_norm: jax.typing.ArrayLike,
    max_norm: jax.typing.ArrayLike,
    grad: jax.typing.ArrayLike,
    div_eps: jax.typing.ArrayLike = 1e-6,
) -> jax.Array:
    """``g`` where ``||g|| < max_norm``, else ``g * max_norm / max(||g||, div_eps)``.

    Args:
      g_norm: ``||g||``, the unit norms (as ``unitwise_norm`` gives them), shaped like
        ``grad``.
      max_norm: the largest norm each unit keeps, shaped like ``grad``.
      grad: ``g``, the array clipped.
      div_eps: lower bound on the divisor ``||g||``; default 1e-6.

    Raises ``ValueError`` when the three shapes differ.

    Returns:
      The clipped array, shaped like ``grad``.
    """
    shapes = {jnp.shape(g_norm), jnp.shape(max_norm), jnp.shape(grad)}
    if len(shapes) != 1:
        raise ValueError(f"unitwise_clip: shapes must match, got {sorted(shapes)}")
    clipped = grad * (max_norm / jnp.maximum(g_norm, div_eps))
    return jnp.where(jnp.less(g_norm, max_norm), grad, clipped)


def adaptive_grad_clip(
    clipping: jax.typing.ArrayLike,
    eps: jax.typing.ArrayLike = 1e-3,
    axis: int | tuple[int, ...] | None = None,
) -> base.GradientTransformation:
    """Adaptive gradient clipping, unit-wise relative to the parameters.

    For each unit (see ``unitwise_norm``): with ``m = clipping * max(||p||, eps)``,
    ``u <- u`` if ``||u|| < m``, else ``u <- u * m / max(||u||, 1e-6)``.
    Brock et al. (2021), "High-Performance Large-Scale Image Recognition Without
    Normalization".

    Args:
      clipping: the largest ratio of a unit's update norm to its parameter norm, ``> 0``.
      eps: lower bound on a unit's parameter norm, ``>= 0``; default 1e-3.
      axis: the axes that make a unit, as in ``unitwise_norm``; default ``None``.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``); ``update`` needs
      ``params``.
    """
    validate.positive("clipping", clipping)
    validate.non_negative("eps", eps)

    def clip_tree(updates, params):
        if params is None:
            raise ValueError(_NO_PARAMS.format("adaptive_grad_clip"))
        base.check_same_structure(updates, params, "params")

        def clip_leaf(u, p):
            max_norm = clipping * jnp.maximum(unitwise_norm(p, axis), eps)
            return unitwise_clip(unitwise_norm(u, axis), max_norm, u)

        return jax.tree.map(clip_leaf, updates, params)

    return base.stateless(clip_tree)
