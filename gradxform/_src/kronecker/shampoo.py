"""Shampoo: Kronecker-factored AdaGrad with grafting, as Google's distributed Shampoo.

Gupta, Koren and Singer 2018, "Shampoo: Preconditioned Stochastic Tensor Optimization";
Anil et al. 2020, "Scalable Second Order Optimization for Deep Learning" (blocking,
grafting, the coupled Newton roots, stale preconditioners). Reproduces precondition-opt
0.3.0's ``distributed_shampoo`` (its non-sharded path) to float64 round-off.

The factors of every leaf are kept stacked by (exponent, dtype), zero-padded to the
largest factor of the stack as the reference pads them, so the inverse roots of all
factors with one exponent are one batched computation (one compiled solver), and with
``shard_roots_over`` each device of a mesh axis computes and stores its share of them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.kronecker import grafting, refresh, roots, statistics
from gradxform._src.kronecker.blocking import BlockLayout, block_layout

PRECONDITIONER_TYPES = ("all", "input", "output")


class ShampooState(NamedTuple):
    """Shampoo's state.

    Attributes:
      count: int32 scalar, the number of earlier updates.
      statistics: one ``(k, n, n)`` stack of factor statistics per (exponent, dtype)
        group, in the order the factors first appear in the tree; a factor smaller than
        ``n`` fills the leading block of its entry, the rest is zero.
      preconditioners: the inverse roots of ``statistics``, same layout.
      diagonal_statistics: the grafting accumulator (a tree like the params) for the
        AdaGrad and RMSProp graft types, else ``()``.
      momentum: the momentum of the grafted Shampoo update, like the params.
      graft_momentum: the momentum of the graft update, like the params.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    statistics: tuple
    preconditioners: tuple
    diagonal_statistics: Any
    momentum: Any
    graft_momentum: Any


@dataclasses.dataclass(frozen=True)
class _Leaf:
    layout: BlockLayout
    axes: tuple[bool, ...]  # preconditioned axes of the merged shape
    slots: tuple[tuple[int, int, int], ...]  # (group, index, size) per block and axis
    preconditioned: bool


@dataclasses.dataclass(frozen=True)
class _Group:
    exponent: int
    dtype: Any
    sizes: tuple[int, ...]  # of the factors, then of the padding entries (full size)

    @property
    def size(self) -> int:
        return max(self.sizes)

    @property
    def count(self) -> int:
        return len(self.sizes)

    def masks(self) -> np.ndarray:
        """``(k, n)``: 1 on each entry's own rows and columns, 0 on its padding."""
        return (np.arange(self.size)[None, :] < np.asarray(self.sizes)[:, None]).astype(np.float64)


def _preconditioned_axes(rank: int, preconditioner_type: str) -> tuple[bool, ...]:
    if preconditioner_type == "all" or rank <= 1:
        return (True,) * rank
    if preconditioner_type == "input":
        return (True,) * (rank - 1) + (False,)
    return (False,) * (rank - 1) + (True,)


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def shampoo(
    learning_rate: base.ScalarOrSchedule,
    block_size: int = 128,
    beta1: float = 0.9,
    beta2: float = 0.999,
    diagonal_epsilon: float = 1e-10,
    matrix_epsilon: float = 1e-6,
    weight_decay: float = 0.0,
    start_preconditioning_step: int = 5,
    preconditioning_compute_steps: int = 1,
    statistics_compute_steps: int = 1,
    best_effort_shape_interpretation: bool = True,
    graft_type: str = "sgd",
    nesterov: bool = True,
    exponent_override: int = 0,
    *,
    inverse_failure_threshold: float = 0.1,
    moving_average_for_momentum: bool = False,
    skip_preconditioning_dim_size_gt: int = 4096,
    clip_by_scaled_gradient_norm: float | None = None,
    precision: lax.Precision = lax.Precision.HIGHEST,
    tensordot_precision: lax.Precision | None = None,
    relative_matrix_epsilon: bool = True,
    merge_small_dims_block_size: int = 4096,
    preconditioner_type: str = "all",
    skip_preconditioning_rank_lt: int = 1,
    decoupled_learning_rate: bool = True,
    decoupled_weight_decay: bool = False,
    eigh: bool = False,
    shard_roots_over: tuple[Mesh, str | tuple[str, ...]] | None = None,
) -> base.GradientTransformation:
    """Shampoo with grafting (distributed Shampoo, precondition-opt 0.3.0).

    With ``c`` the number of earlier updates and ``lr = learning_rate(c)``, per leaf:

    1. Layout: reshape to ``merge_small_dims(shape, merge_small_dims_block_size)`` (if
       ``best_effort_shape_interpretation``) and cut every axis into blocks of
       ``block_size``. A leaf is preconditioned unless ``ndim <
       skip_preconditioning_rank_lt`` or a dimension is ``> skip_preconditioning_dim_size_gt``.
    2. Statistics, when ``c % statistics_compute_steps == 0``: for every block ``G`` and
       preconditioned axis ``i``, ``L <- beta2 L + w G_(i) G_(i)^T`` (``w = 1 - beta2``,
       or 1 for ``beta2 = 1``); ``L_0 = matrix_epsilon I``.
    3. Roots, when ``c % preconditioning_compute_steps == 0``: ``P = (L + eps I)^(-1/p)``
       with ``p = exponent_override`` or twice the number of preconditioned axes,
       ``eps = matrix_epsilon lambda_max(L)`` (or ``matrix_epsilon`` without
       ``relative_matrix_epsilon``), by ``robust_matrix_inverse_pth_root`` (coupled
       Newton, retried with a 10x larger ridge while its error exceeds 0.05) or
       ``matrix_inverse_pth_root_eigh`` (``eigh=True``), in float64 under x64. A root
       with error ``>= inverse_failure_threshold`` or NaN keeps the previous ``P``.
    4. Graft ``a = graft_step(graft_type, g, D)`` (``grafting.graft_step``), times ``lr``
       unless ``decoupled_learning_rate``.
    5. ``s = pg |a| / (|pg| + 1e-25)`` with ``pg`` = each block of ``g`` multiplied by its
       ``P`` along each preconditioned axis (``pg = a`` for a leaf not preconditioned;
       ``s = pg`` for ``graft_type="none"``).
    6. With coupled decay, ``s += weight_decay p`` and ``a += weight_decay p``;
       ``w = 1 - beta1`` if ``moving_average_for_momentum`` else 1;
       ``M_s <- beta1 M_s + w s``, ``M_a <- beta1 M_a + w a``; from step
       ``start_preconditioning_step`` on (0-based ``c``) Shampoo, before it the graft:
       ``(x, M) = (s, M_s)`` if ``c >= start_preconditioning_step`` else ``(a, M_a)``;
       ``o = w x + beta1 M`` if ``nesterov`` else ``M``; decoupled decay adds
       ``lr weight_decay p``; ``update = -lr o`` (``-o`` without
       ``decoupled_learning_rate``).

    Statistics and roots are kept in ``promote_types(param dtype, float32)``; the graft
    accumulator and both momenta in the param dtype; updates in the gradients' dtype.

    Args:
      learning_rate: the step size (``>= 0``) or a schedule of the step count.
      block_size: the longest block along any axis (integer ``>= 1``). Default 128.
      beta1: momentum in ``[0, 1)``. Default 0.9.
      beta2: decay of the statistics and the RMSProp graft, in ``[0, 1]`` (1: sums).
        Default 0.999.
      diagonal_epsilon: added to ``sqrt(D)`` in the AdaGrad/RMSProp grafts (``>= 0``).
        Default 1e-10.
      matrix_epsilon: the factors' ridge and initial value (``>= 0``). Default 1e-6.
      weight_decay: L2 weight decay (``>= 0``); needs ``params`` when nonzero. Default 0.
      start_preconditioning_step: the first 0-based step that uses Shampoo (integer
        ``>= 0``). Default 5.
      preconditioning_compute_steps: refresh the roots every this many steps (integer
        ``>= 1``). Default 1.
      statistics_compute_steps: update the statistics every this many steps (integer
        ``>= 1``). Default 1.
      best_effort_shape_interpretation: merge small dimensions first. Default True.
      graft_type: one of ``"none"``, ``"sgd"`` (default), ``"adagrad"``, ``"rmsprop"``,
        ``"rmsprop_normalized"``, ``"sqrt_n"``, ``"adagrad_normalized"``.
      nesterov: Nesterov momentum. Default True.
      exponent_override: ``p`` of the roots for every factor (integer ``>= 0``); 0
        (default) for twice the number of preconditioned axes.
      inverse_failure_threshold: roots with a larger error are rejected (``>= 0``).
        Default 0.1.
      moving_average_for_momentum: weight new updates by ``1 - beta1`` in the momenta.
        Default False.
      skip_preconditioning_dim_size_gt: leaves with a longer dimension are only grafted
        (integer ``>= 0``). Default 4096.
      clip_by_scaled_gradient_norm: RMSProp-graft clipping threshold (``> 0``) or ``None``
        (default, no clipping).
      precision: XLA precision of the root computations. Default
        ``lax.Precision.HIGHEST``.
      tensordot_precision: XLA precision of the statistics' contractions; ``None``
        (default) for XLA's default.
      relative_matrix_epsilon: scale the ridge by the factor's largest eigenvalue.
        Default True.
      merge_small_dims_block_size: the largest merged dimension (integer ``>= 1``).
        Default 4096.
      preconditioner_type: ``"all"`` (default) axes, ``"input"`` (all but the last) or
        ``"output"`` (only the last) of leaves of rank ``>= 2``.
      skip_preconditioning_rank_lt: leaves of lower rank are only grafted (integer
        ``>= 0``). Default 1.
      decoupled_learning_rate: apply ``lr`` after the momentum (else to the graft).
        Default True.
      decoupled_weight_decay: add ``lr weight_decay p`` after the momentum. Default False.
      eigh: compute the roots by an eigendecomposition instead of Newton's iteration.
        Default False.
      shard_roots_over: ``(mesh, axis_name)`` (or ``(mesh, (name, ...))`` for several
        axes at once), or ``None`` (default). The stacks of factors and roots are padded with
        identities to a multiple of the axis size and sharded over it, so each device
        keeps, and computes under ``jax.shard_map``, the roots of its share of the
        blocks, as distributed Shampoo does; the numbers do not change. The roots are
        gathered where the gradient is preconditioned. Recommended with sharded params:
        left alone, XLA may split each factor's matrix across devices and pay a
        collective in every Newton and power iteration.

    Returns:
      A ``GradientTransformation`` with state ``ShampooState``.

    Examples:
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]])}
      >>> opt = gx.shampoo(0.1)
      >>> state = opt.init(params)
      >>> for _ in range(3):
      ...     grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
      ...     updates, state = opt.update(grads, state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> print(np.asarray(params["w"]).round(3))
      [[-0.108  0.217]
       [-0.054 -0.325]]
    """
    validate.non_negative("learning_rate", learning_rate)
    _check_int("block_size", block_size, 1)
    validate.decay("beta1", beta1)
    validate.unit_interval("beta2", beta2)
    for name, value in (
        ("diagonal_epsilon", diagonal_epsilon),
        ("matrix_epsilon", matrix_epsilon),
        ("weight_decay", weight_decay),
        ("inverse_failure_threshold", inverse_failure_threshold),
    ):
        validate.non_negative(name, value)
    _check_int("start_preconditioning_step", start_preconditioning_step, 0)
    _check_int("preconditioning_compute_steps", preconditioning_compute_steps, 1)
    _check_int("statistics_compute_steps", statistics_compute_steps, 1)
    _check_int("exponent_override", exponent_override, 0)
    _check_int("merge_small_dims_block_size", merge_small_dims_block_size, 1)
    _check_int("skip_preconditioning_dim_size_gt", skip_preconditioning_dim_size_gt, 0)
    _check_int("skip_preconditioning_rank_lt", skip_preconditioning_rank_lt, 0)
    validate.one_of("graft_type", graft_type, grafting.GRAFT_TYPES)
    validate.one_of("preconditioner_type", preconditioner_type, PRECONDITIONER_TYPES)
    if clip_by_scaled_gradient_norm is not None:
        validate.positive("clip_by_scaled_gradient_norm", clip_by_scaled_gradient_norm)
    shards = 1
    if shard_roots_over is not None:
        mesh, axis = shard_roots_over
        names = axis if isinstance(axis, tuple) else (axis,)
        if not isinstance(mesh, Mesh) or not names or any(a not in mesh.shape for a in names):
            raise ValueError(
                "shard_roots_over must be (mesh, axis_name) with axis_name an axis of the "
                f"mesh or a tuple of them, got {shard_roots_over!r}"
            )
        shards = math.prod(mesh.shape[a] for a in names)
    diagonal = grafting.has_diagonal_statistics(graft_type)

    def plan(leaves) -> tuple[list[_Leaf], list[_Group]]:
        keys: dict = {}  # (exponent, dtype) -> factor sizes, groups in order of appearance
        out = []
        for x in leaves:
            shape = tuple(x.shape)
            layout = block_layout(
                shape,
                block_size,
                merge_small_dims_block_size if best_effort_shape_interpretation else None,
            )
            axes = _preconditioned_axes(len(layout.merged_shape), preconditioner_type)
            skip = len(shape) < skip_preconditioning_rank_lt or any(
                d > skip_preconditioning_dim_size_gt for d in shape
            )
            if skip:
                out.append(_Leaf(layout, axes, (), False))
                continue
            exponent = exponent_override or 2 * sum(axes)
            dtype = jnp.promote_types(x.dtype, jnp.float32)
            slots = []
            members = keys.setdefault((exponent, dtype), [])
            group = list(keys).index((exponent, dtype))
            for block_shape in layout.block_shapes:
                for i, keep in enumerate(axes):
                    if keep:
                        slots.append((group, len(members), block_shape[i]))
                        members.append(block_shape[i])
            out.append(_Leaf(layout, axes, tuple(slots), True))
        groups = []
        for (exponent, dtype), sizes in keys.items():
            padding = (max(sizes),) * (math.ceil(len(sizes) / shards) * shards - len(sizes))
            groups.append(_Group(exponent, dtype, tuple(sizes) + padding))
        return out, groups

    def place(stack, spec=None):
        if shard_roots_over is None:
            return stack
        spec = P(axis) if spec is None else spec
        return lax.with_sharding_constraint(stack, NamedSharding(mesh, spec))

    def eye_stack(group, scale=1.0):
        masks = group.masks()
        eyes = scale * masks[:, :, None] * np.eye(group.size)[None]
        return place(jnp.asarray(eyes, group.dtype))

    def init(params):
        base.check_float_leaves(params, "shampoo")
        _, groups = plan(jax.tree.leaves(params))
        zeros = lambda: tree_ops.zeros_like(params)
        return ShampooState(
            count=jnp.zeros([], jnp.int32),
            statistics=tuple(eye_stack(g, matrix_epsilon) for g in groups),
            preconditioners=tuple(eye_stack(g) for g in groups),
            diagonal_statistics=zeros() if diagonal else (),
            momentum=zeros(),
            graft_momentum=zeros(),
        )

    def new_statistics(grads, leaves, groups, old):
        grams = [[] for _ in groups]
        for g, leaf in zip(grads, leaves):
            if leaf.preconditioned:
                g = g.astype(jnp.promote_types(g.dtype, jnp.float32))
                blocks = statistics.block_grams(leaf.layout, g, leaf.axes, tensordot_precision)
                for (group, _, n), gram in zip(leaf.slots, blocks):
                    pad = groups[group].size - n
                    grams[group].append(jnp.pad(gram, ((0, pad), (0, pad))))
        out = []
        for stack, new in zip(old, grams):
            fresh = statistics.accumulate(stack[: len(new)], jnp.stack(new), beta2)
            out.append(place(jnp.concatenate([fresh, stack[len(new) :]])))
        return tuple(out)

    def roots_of(group):
        solve = functools.partial(
            roots.matrix_inverse_pth_root_eigh if eigh else roots.robust_matrix_inverse_pth_root,
            p=group.exponent,
            ridge_epsilon=matrix_epsilon,
            relative_epsilon=relative_matrix_epsilon,
            precision=precision,
        )
        batched = jax.vmap(lambda m, n: solve(m, size=n))
        if shard_roots_over is not None:
            # Each device solves its own slice; nothing is communicated, so the varying-axis
            # check (which rejects the solvers' while loops started from constants) is off.
            batched = jax.shard_map(
                batched,
                mesh=mesh,
                in_specs=(P(axis), P(axis)),
                out_specs=(P(axis), P(axis)),
                check_vma=False,
            )
        return lambda stack: batched(stack, place(jnp.asarray(group.sizes, jnp.int32)))

    def new_roots(groups, stats, old):
        out = []
        for group, stack, previous in zip(groups, stats, old):
            root, error = roots_of(group)(stack)
            failed = jnp.isnan(error) | (error >= inverse_failure_threshold)
            out.append(place(jnp.where(failed[:, None, None], previous, root)))
        return tuple(out)

    def precondition(g, leaf, stacks):
        mats = [stacks[group][index, :n, :n] for group, index, n in leaf.slots]
        per_block = sum(leaf.axes)
        out = []
        for b, block in enumerate(leaf.layout.split(g)):
            own = iter(mats[b * per_block : (b + 1) * per_block])
            for keep in leaf.axes:
                if keep:
                    block = jnp.tensordot(block, next(own), axes=[[0], [0]])
                else:
                    block = jnp.moveaxis(block, 0, -1)
            out.append(block)
        return leaf.layout.merge(out)

    def transform(g, p, leaf, stacks, d, m_s, m_a, count, lr):
        dtype = jnp.promote_types(g.dtype, jnp.float32)
        g = g.astype(dtype)
        p = None if p is None else p.astype(dtype)
        d = None if d is None else d.astype(dtype)
        a, new_d = grafting.graft_step(
            graft_type, g, d, beta2, diagonal_epsilon, clip_by_scaled_gradient_norm
        )
        if not decoupled_learning_rate:
            a = a * lr
        pg = precondition(g, leaf, stacks) if leaf.preconditioned else a
        s = pg if graft_type == "none" else grafting.graft_norm(pg, a)
        if weight_decay != 0 and not decoupled_weight_decay:
            s = s + weight_decay * p
            a = a + weight_decay * p
        w = (1.0 - beta1) if moving_average_for_momentum else 1.0
        new_m_s = m_s.astype(dtype) * beta1 + w * s
        new_m_a = m_a.astype(dtype) * beta1 + w * a
        run = count >= start_preconditioning_step
        out = jnp.where(run, new_m_s, new_m_a)
        if nesterov:
            out = w * jnp.where(run, s, a) + beta1 * out
        if weight_decay != 0 and decoupled_weight_decay:
            out = out + lr * weight_decay * p
        out = -1.0 * (lr if decoupled_learning_rate else 1.0) * out
        return out, new_d, new_m_s.astype(m_s.dtype), new_m_a.astype(m_a.dtype)

    def update(updates, state, params=None, **extra):
        del extra
        base.check_same_structure(updates, state.momentum, "params")
        if weight_decay != 0 and params is None:
            raise ValueError("shampoo with weight_decay != 0 needs params in update")
        grads, treedef = jax.tree.flatten(updates)
        leaves, groups = plan(grads)
        got = [(s.shape, s.dtype) for s in state.statistics]
        want = [((g.count, g.size, g.size), jnp.dtype(g.dtype)) for g in groups]
        if got != want:
            raise ValueError(
                "shampoo: the updates' shapes or dtypes do not match the state's factors "
                f"(state {got}, updates need {want})"
            )
        count = state.count
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        stats = state.statistics
        if groups:
            stats = refresh.refresh_every(
                count,
                statistics_compute_steps,
                lambda: new_statistics(grads, leaves, groups, state.statistics),
                state.statistics,
            )
        roots_now = refresh.refresh_every(
            count,
            preconditioning_compute_steps,
            lambda: new_roots(groups, stats, state.preconditioners),
            state.preconditioners,
        )
        # One all-gather per stack, rather than one per root picked out of a sharded stack.
        gathered = tuple(place(stack, P()) for stack in roots_now)
        none = [None] * len(grads)
        flat_params = none if params is None else treedef.flatten_up_to(params)
        flat_d = treedef.flatten_up_to(state.diagonal_statistics) if diagonal else none
        results = [
            transform(g, p, leaf, gathered, d, m_s, m_a, count, lr)
            for g, p, leaf, d, m_s, m_a in zip(
                grads,
                flat_params,
                leaves,
                flat_d,
                treedef.flatten_up_to(state.momentum),
                treedef.flatten_up_to(state.graft_momentum),
            )
        ]
        new_updates = [out.astype(g.dtype) for (out, _, _, _), g in zip(results, grads)]
        new_d = ()
        if diagonal:
            new_d = treedef.unflatten(
                [nd.astype(d.dtype) for (_, nd, _, _), d in zip(results, flat_d)]
            )
        new_state = ShampooState(
            count=numerics.safe_int32_increment(count),
            statistics=stats,
            preconditioners=roots_now,
            diagonal_statistics=new_d,
            momentum=treedef.unflatten([r[2] for r in results]),
            graft_momentum=treedef.unflatten([r[3] for r in results]),
        )
        return treedef.unflatten(new_updates), new_state

    return base.GradientTransformation(init, update)
