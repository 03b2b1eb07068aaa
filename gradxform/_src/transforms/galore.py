"""GaLore: an optimizer run on low-rank projections of the matrix gradients."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, validate
from gradxform._src.transforms.adam import scale_by_adam


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the rows and which the columns of GaLore's matrix;
    together they must name every axis of the leaf.

    Attributes:
        reduction_axis: the axis or axes of the rows (contracted in the layer). Default 0.
        output_axis: the axis or axes of the columns. Default 1.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """The state of ``scale_by_galore``.

    Attributes:
        count: int32 scalar, the number of earlier updates.
        base_optimizer_state: the base optimizer's state over the projected gradients.
        projector: per leaf, the ``(m, r)`` or ``(n, r)`` orthonormal basis, an empty
            ``(0, 0)`` array for leaves that are not projected.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    base_optimizer_state: Any
    projector: Any


def _is_dims(x) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _axes(axes, ndim) -> tuple[int, ...]:
    return tuple(a % ndim for a in ((axes,) if isinstance(axes, int) else axes))


def _matrix_view(shape: tuple[int, ...], dims: GaLoreDimensionNumbers):
    """``(to_matrix, from_matrix, m, n)`` for a leaf of ``shape``: the reduction axes
    transposed first and each group merged into one axis (``m`` rows, ``n`` columns),
    and back."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"GaLore projects leaves of rank >= 2, got shape {shape}")
    rows, cols = _axes(dims.reduction_axis, ndim), _axes(dims.output_axis, ndim)
    if set(rows) & set(cols) or len(set(rows) | set(cols)) != ndim:
        raise ValueError(
            f"weight_dimension_numbers {dims} must split the axes of shape {shape} into "
            "disjoint reduction and output axes that cover them all"
        )
    order = rows + cols
    inverse = tuple(sorted(range(ndim), key=lambda i: order[i]))
    m = math.prod(shape[a] for a in rows)
    n = math.prod(shape[a] for a in cols)
    ordered = tuple(shape[a] for a in order)
    return (
        lambda x: x.transpose(order).reshape(m, n),
        lambda y: y.reshape(ordered).transpose(inverse),
        m,
        n,
    )


def scale_by_galore(
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: base.GradientTransformation | None = None,
    weight_dimension_numbers: Any = None,
) -> base.GradientTransformation:
    """GaLore (Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient
    Low-Rank Projection").

    Each projected leaf is viewed as an ``m x n`` matrix ``G``. Every ``update_proj_gap``
    steps (from step 0) the projector is refreshed from ``G``'s SVD ``U S V^T``:
    ``P = U[:, :r]`` if ``m >= n`` (``R = P^T G``), else ``P = V[:, :r]`` (``R = G P``),
    ``r = min(rank, m, n)``. ``base_optimizer`` (default ``scale_by_adam()``) maps the
    ``R``s to ``N``s, and the update is ``scale P N`` (or ``scale N P^T``) in ``G``'s
    shape and dtype. Other leaves go through ``base_optimizer`` unprojected. As in optax
    the SVD is taken in float32, whatever the gradient's precision. ``update`` passes no
    params to ``base_optimizer`` (its inputs are not param-shaped).

    Args:
      rank: the projection rank ``r``, an int ``>= 1``; default 128.
      update_proj_gap: steps between projector refreshes, an int ``>= 1``; default 200.
      scale: multiplier on the projected-back update (finite); default 1.
      base_optimizer: the transformation run on the projected gradients; default
        ``scale_by_adam()``.
      weight_dimension_numbers: which leaves are projected and how: ``None`` (every 2-d
        leaf, rows = axis 0), one ``GaLoreDimensionNumbers`` (every leaf of rank >= 2),
        a tree of them with ``None`` for unprojected leaves, or a function of the params
        returning such a tree.

    Returns:
      A ``GradientTransformation`` with state ``GaLoreState``.
    """
    validate.positive_int("rank", rank)
    validate.positive_int("update_proj_gap", update_proj_gap)
    validate.finite("scale", scale)
    inner = base.as_transformation(scale_by_adam() if base_optimizer is None else base_optimizer)

    def dims_of(tree):
        spec = weight_dimension_numbers
        if spec is None:
            return jax.tree.map(lambda x: GaLoreDimensionNumbers() if x.ndim == 2 else None, tree)
        if isinstance(spec, GaLoreDimensionNumbers):
            return jax.tree.map(lambda x: spec if x.ndim >= 2 else None, tree)
        return spec(tree) if callable(spec) else spec

    def layout(shape, dims):
        to_matrix, from_matrix, m, n = _matrix_view(shape, dims)
        return to_matrix, from_matrix, m, n, min(rank, m, n), m >= n

    def init(params):
        base.check_float_leaves(params, "scale_by_galore")
        if not jax.tree.leaves(params):
            return GaLoreState(jnp.zeros([], jnp.int32), inner.init(params), params)

        def shapes(p, dims):
            if dims is None:
                return jnp.zeros((0, 0), p.dtype), jnp.zeros_like(p)
            _, _, m, n, r, left = layout(p.shape, dims)
            if left:
                return jnp.zeros((m, r), p.dtype), jnp.zeros((r, n), p.dtype)
            return jnp.zeros((n, r), p.dtype), jnp.zeros((m, r), p.dtype)

        pairs = jax.tree.map(shapes, params, dims_of(params), is_leaf=_is_dims)
        projectors, proxies = _unzip(params, pairs)
        return GaLoreState(jnp.zeros([], jnp.int32), inner.init(proxies), projectors)

    def update(updates, state, params=None, **extra):
        del params
        refresh = state.count % update_proj_gap == 0
        dims = dims_of(updates)

        def project(g, projector, d):
            if d is None:
                return g, projector
            to_matrix, _, _, _, r, left = layout(g.shape, d)
            gm = to_matrix(g)

            def fresh():
                u, _, vh = jnp.linalg.svd(gm.astype(jnp.float32), full_matrices=False)
                basis = u[:, :r] if left else vh[:r, :].T
                return basis.astype(g.dtype)

            projector = jax.lax.cond(refresh, fresh, lambda: projector)
            return (projector.T @ gm if left else gm @ projector), projector

        pairs = jax.tree.map(project, updates, state.projector, dims, is_leaf=_is_dims)
        low_rank, projectors = _unzip(updates, pairs)
        low_rank_updates, inner_state = inner.update(
            low_rank, state.base_optimizer_state, None, **extra
        )

        def back(n_upd, projector, g, d):
            if d is None:
                return n_upd
            _, from_matrix, _, _, _, left = layout(g.shape, d)
            full = projector @ n_upd if left else n_upd @ projector.T
            return (scale * from_matrix(full)).astype(g.dtype)

        out = jax.tree.map(back, low_rank_updates, projectors, updates, dims, is_leaf=_is_dims)
        return out, GaLoreState(numerics.safe_increment(state.count), inner_state, projectors)

    return base.GradientTransformation(init, update)


def _unzip(tree, pairs) -> tuple[Any, Any]:
    """A tree of pairs (shaped like ``tree``) as a pair of trees."""
    return jax.tree.transpose(jax.tree.structure(tree), jax.tree.structure((0, 0)), pairs)
