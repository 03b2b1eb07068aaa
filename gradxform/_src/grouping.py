"""Updating many leaves as a few stacked arrays: ``grouped(tx)``.

A compiled step pays per leaf: on CPU every output buffer is one kernel launch (a few
microseconds), and compile time grows with the number of distinct kernels. ``grouped``
stacks the leaves that share a shape and dtype into one array per group,
``S_g = stack([x_i for i in group g])`` of shape ``(n_g, *shape)``, keeps the wrapped
transformation's state in that stacked layout, and unstacks only the outgoing updates.
Dispatch and compile cost then grow with the number of distinct shapes, not of leaves.

Each member transformation runs in the first mode that is exact for it, decided by
reading its jaxpr (``leaf_separability``) on a small representative tree:

- ``"vmapped"``: leaf-separable maths (element-wise, or per-leaf reductions such as
  trust ratios, block RMS, factored moments) runs under ``jax.vmap`` over the stacked
  axis, so it sees each leaf with its own shape;
- ``"stacked"``: maths whose only coupling between leaves is a whole-tree reduction
  (global-norm clipping) runs directly on the stacks, which leaves such a reduction
  unchanged (``sum_i ||u_i||^2 = sum_g ||S_g||^2``), provided it also traces to the same
  program on stacks as on leaves (no decision taken on a leaf's rank or shape);
- ``"leaves"``: anything else runs on the ordinary tree, unstacked (always exact). So
  does a member that refuses the small tree it is traced on to be classified, with a
  ``ValueError`` (a mask or labels built for the user's tree, a check on a leaf's rank)
  or a ``jax.errors.ConcretizationTypeError`` (Python control flow on values); any other
  error raised there is raised by ``init`` or ``update``, with a note saying where.

Contract: a grouped transformation must treat every leaf alike. A mask, label or
anything keyed on a leaf's path inside it cannot be seen by the analysis; apply masks
outside instead, ``masked(grouped(tx), mask)`` or ``multi_transform`` over grouped
members. Leaves larger than ``max_stack_size`` elements stay alone (stacking them would
copy more than it saves). Updates must have the params' shapes and dtypes.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.extend import core as jex_core

from gradxform._src import base, leaf_separability, validate
from gradxform._src.packing import (
    Packed,
    StackPlan,
    plan_of,
    plan_stacks,
    stack_leaves,
    unstack_leaves,
)

_KEY = "gradxform.grouped/"

STACKED, VMAPPED, LEAVES = "stacked", "vmapped", "leaves"


class GroupedState(NamedTuple):
    """One state per member, in the layout of the member's mode: ``stacked``, its own
    state over the dict of stacks; ``leaves``, its state over the plain tree;
    ``vmapped``, ``(shared, per_group)`` with ``per_group[g]`` the per-leaf arrays of
    group ``g`` (leading stack axis) and ``shared`` the leaf-independent ones (a step
    count), stored once.

    Attributes:
      inner: The tuple of the members' states, one per transformation, in order.
    """

    inner: tuple


def _stack_dict(stacks) -> dict:
    return {f"{_KEY}{g:06d}": s for g, s in enumerate(stacks)}


def _stack_dict_of(stacks, gs) -> dict:
    return {f"{_KEY}{g:06d}": stacks[g] for g in gs}


# --- classification -------------------------------------------------------------


def _owners(state: Any, tree_def) -> list:
    """For each leaf of ``state``: the index of the tree leaf it belongs to, or -1 when
    it is shared (it is not inside a subtree shaped like the tree)."""
    n = tree_def.num_leaves

    def is_tree(node) -> bool:
        return jax.tree.structure(node) == tree_def

    def mark(node):
        return jax.tree.unflatten(tree_def, list(range(n))) if is_tree(node) else -1

    return jax.tree.leaves(jax.tree.map(mark, state, is_leaf=is_tree))


def _signature(jaxpr) -> list:
    """The primitive sequence of a jaxpr with its literal operands, nested calls inlined."""
    sig = []
    for eqn in jaxpr.eqns:
        lits = tuple(
            repr(np.asarray(v.val).tolist()) for v in eqn.invars if isinstance(v, jex_core.Literal)
        )
        sig.append((eqn.primitive.name, lits))
        for p in eqn.params.values():
            inner = getattr(p, "jaxpr", p)
            if isinstance(inner, jex_core.Jaxpr):
                sig.extend(_signature(inner))
    return sig


# The errors by which a member refuses a tree that is not the user's: ``ValueError`` (a
# mask, labels or other argument shaped for the user's tree, a check on a leaf's rank)
# and ``ConcretizationTypeError`` (Python control flow on values, which an abstract trace
# cannot follow). Such a member runs on the plain tree; any other error is raised.
_REFUSALS = (ValueError, jax.errors.ConcretizationTypeError)


def _trace_update(tx, tree: dict, extra: dict):
    """``(state, jaxpr of update)`` for ``tx`` on ``tree``, or ``None`` when ``tx``
    refuses it with one of ``_REFUSALS``."""

    def f(u, s, p):
        return tx.update(u, s, p, **extra)

    try:
        state = jax.eval_shape(tx.init, tree)
        return state, jax.make_jaxpr(f)(tree, state, tree)
    except _REFUSALS:
        return None
    except Exception as e:
        e.add_note(
            "grouped: raised while tracing a member on a representative tree of stacked "
            "leaves, to choose how the member runs on stacks"
        )
        raise


def _classify(tx, reps: list, extra: dict) -> str:
    """The exact mode for ``tx`` given representative leaf avals (two per group)."""
    tree = {f"{_KEY}{k:06d}": a for k, a in enumerate(reps)}
    tree_def = jax.tree.structure(tree)
    traced = _trace_update(tx, tree, extra)
    if traced is None:
        return LEAVES
    state, closed = traced
    state_leaves = jax.tree.leaves(state)
    owners = _owners(state, tree_def)
    if len(owners) != len(state_leaves):
        return LEAVES
    n = len(reps)

    def state_input(leaf, owner):
        if owner < 0:
            if leaf.shape == ():
                return leaf_separability.uniform()
            return leaf_separability.non_uniform()
        if leaf.shape == reps[owner].shape:
            return leaf_separability.element(owner)
        return leaf_separability.opaque(owner)

    inputs = (
        [leaf_separability.element(k) for k in range(n)]
        + [state_input(s, o) for s, o in zip(state_leaves, owners)]
        + [leaf_separability.element(k) for k in range(n)]
    )
    if len(inputs) != len(closed.jaxpr.invars):
        return LEAVES
    outs = leaf_separability.analyse(closed, inputs, n)
    out_owners = list(range(n)) + [None if o < 0 else o for o in owners]
    if len(outs) != len(out_owners):
        return LEAVES
    if all(leaf_separability.separable(v, o) for v, o in zip(outs, out_owners)):
        return VMAPPED
    if not all(leaf_separability.stack_invariant(v, o) for v, o in zip(outs, out_owners)):
        return LEAVES
    per_leaf_shapes_match = all(
        o < 0 or s.shape == reps[o].shape for s, o in zip(state_leaves, owners)
    )
    if not per_leaf_shapes_match:
        return LEAVES
    # The program must not depend on the leaves' ranks: the same member traced on
    # stacks of one (rank + 1) must give the same sequence of primitives and literals.
    stacks = {k: jax.ShapeDtypeStruct((1, *a.shape), a.dtype) for k, a in tree.items()}
    traced_stacked = _trace_update(tx, stacks, extra)
    if traced_stacked is None or _signature(traced_stacked[1].jaxpr) != _signature(closed.jaxpr):
        return LEAVES
    return STACKED


def _representatives(plan: StackPlan) -> list:
    reps: list = []
    for idx in plan.groups:
        reps.extend(plan.avals[i] for i in idx[:2])
    return reps


# --- the vmapped mode -------------------------------------------------------------
#
# One ``vmap`` over the row axis per distinct stack size: the member sees, in each
# mapped instance, a tree holding row ``r`` of every stack of that size, so it is traced
# once per size, not once per stack. Leaves alone (size 1) are not mapped at all.


def _buckets(plan: StackPlan) -> dict:
    """Stack size -> the indices of the stacks of that size."""
    out: dict = {}
    for g, idx in enumerate(plan.groups):
        out.setdefault(len(idx), []).append(g)
    return out


def _row_tree(plan: StackPlan, gs: list) -> dict:
    return {f"{_KEY}{g:06d}": plan.avals[plan.groups[g][0]] for g in gs}


def _row_axes(tx, row_tree: dict):
    state = jax.eval_shape(tx.init, row_tree)
    per_leaf = [o >= 0 for o in _owners(state, jax.tree.structure(row_tree))]
    treedef = jax.tree.structure(state)
    return treedef, per_leaf, jax.tree.unflatten(treedef, [0 if p else None for p in per_leaf])


def _vmapped_init(tx, stacks: list, plan: StackPlan):
    shared, per_bucket = None, []
    for size, gs in _buckets(plan).items():
        treedef, per_leaf, axes = _row_axes(tx, _row_tree(plan, gs))
        init = tx.init if size == 1 else jax.vmap(tx.init, out_axes=axes)
        state = init(_stack_dict_of(stacks, gs))
        leaves = treedef.flatten_up_to(state)
        per_bucket.append(tuple(x for x, p in zip(leaves, per_leaf) if p))
        if shared is None:
            shared = tuple(x for x, p in zip(leaves, per_leaf) if not p)
    return (shared or (), tuple(per_bucket))


def _vmapped_update(tx, data, stacks, p_stacks, plan: StackPlan, extra: dict):
    shared, per_bucket = data
    out_stacks, new_buckets, new_shared = list(stacks), [], None
    for b, (size, gs) in enumerate(_buckets(plan).items()):
        treedef, per_leaf, axes = _row_axes(tx, _row_tree(plan, gs))
        it_shared, it_bucket = iter(shared), iter(per_bucket[b])
        state = treedef.unflatten([next(it_bucket) if p else next(it_shared) for p in per_leaf])
        ups = _stack_dict_of(stacks, gs)
        ps = None if p_stacks is None else _stack_dict_of(p_stacks, gs)

        def one(u, s, p):
            return tx.update(u, s, p, **extra)

        if size > 1:
            one = jax.vmap(one, in_axes=(0, axes, None if ps is None else 0), out_axes=(0, axes))
        out, state = one(ups, state, ps)
        for g in gs:
            out_stacks[g] = out[f"{_KEY}{g:06d}"]
        leaves = treedef.flatten_up_to(state)
        new_buckets.append(tuple(x for x, p in zip(leaves, per_leaf) if p))
        if new_shared is None:
            # Separability guarantees every size computes the same shared state.
            new_shared = tuple(x for x, p in zip(leaves, per_leaf) if not p)
    return out_stacks, (new_shared or (), tuple(new_buckets))


# --- the wrapper ------------------------------------------------------------------


def grouped(
    *transformations: Any, group_size: int = 16, max_stack_size: int = 1 << 15
) -> base.GradientTransformation:
    """``chain(*transformations)`` run on stacks of same-shape, same-dtype leaves.

    Leaves ``x_i`` of equal shape and dtype, each of at most ``max_stack_size`` elements,
    are stacked ``group_size`` at a time, ``S_g = stack_i(x_i)``; each transformation runs
    on the stacks in the mode that is exact for it (``vmap`` over the stack axis for
    leaf-separable maths, directly on the stacks for whole-tree reductions, on the plain
    tree otherwise; see the module docstring) and the updates are unstacked,
    ``u_i = S'_g[row_i]``. Results equal the ungrouped chain's up to floating-point
    summation order. With several transformations each is classified on its own, so
    ``grouped(clip_by_global_norm(1.0), lamb(1e-3))`` keeps LAMB's trust ratios per leaf.

    Params (and updates) may also arrive already stacked, as a ``Packed`` value (``pack``):
    the stacks are then used as they are, in the ``Packed`` value's own grouping, and the
    updates come back as a ``Packed`` value of that grouping, ready for
    ``apply_updates(packed_params, updates)``; nothing is stacked or unstacked but the
    updates when they arrive as a tree. Initialise and update with the same grouping
    (``pack``'s defaults are these).

    ``group_size`` bounds a stack: on CPU, stacks of up to 16 leaves fuse into the
    kernels that consume them and all stacks of one shape compile to one kernel; a
    larger stack is a separate copy whose compile time grows with its size. The state is a
    ``GroupedState``, a layout of its own (not interchangeable with the ungrouped
    chain's). The transformations must treat every leaf alike: apply masks outside,
    ``masked(grouped(tx), mask)``.

    Args:
      *transformations: The members, chained in order; at least one (else
        ``ValueError``).
      group_size: The most leaves in one stack, an int ``>= 1`` (``TypeError`` for a
        non-int, ``ValueError`` below 1); default 16.
      max_stack_size: Leaves of more than this many elements are never stacked, an int
        ``>= 1`` (``TypeError`` for a non-int, ``ValueError`` below 1); default ``2**15``.

    Returns:
      A ``GradientTransformation`` whose state is a ``GroupedState``; its updates have
      the structure of the updates it receives (a tree, or a ``Packed`` value).

    Examples:
      >>> params = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([3.0, 4.0])}
      >>> opt = gx.grouped(gx.clip_by_global_norm(1.0), gx.sgd(learning_rate=1.0))
      >>> state = opt.init(params)
      >>> updates, state = opt.update(params, state, params)
      >>> print(np.asarray(updates["b"]).round(4))
      [-0.5477 -0.7303]
    """
    if not transformations:
        raise ValueError("grouped needs at least one transformation")
    members = tuple(base.as_transformation(t) for t in transformations)
    validate.positive_int("group_size", group_size)
    validate.positive_int("max_stack_size", max_stack_size)

    @functools.lru_cache(maxsize=64)
    def modes_for(reps_key: tuple) -> tuple:
        reps = [jax.ShapeDtypeStruct(s, d) for s, d in reps_key]
        return tuple(_classify(m, reps, {}) for m in members)

    def modes_of(plan: StackPlan) -> tuple:
        reps = _representatives(plan)
        return modes_for(tuple((a.shape, a.dtype) for a in reps))

    def init(params):
        if isinstance(params, Packed):
            plan, stacks = plan_of(params), list(params.stacks)
            tree = None
        else:
            leaves = jax.tree.leaves(params)
            plan = plan_stacks(leaves, max_stack_size, group_size)
            stacks, tree = stack_leaves(leaves, plan), params
        states = []
        for member, mode in zip(members, modes_of(plan)):
            if mode == STACKED:
                states.append(member.init(_stack_dict(stacks)))
            elif mode == VMAPPED:
                states.append(_vmapped_init(member, stacks, plan))
            else:
                if tree is None:
                    tree = params.unpack()
                states.append(member.init(tree))
        return GroupedState(inner=tuple(states))

    def arrange(updates, params):
        """``(plan, treedef, update stacks, param stacks or None, packed output)``."""
        packed = next((x for x in (params, updates) if isinstance(x, Packed)), None)
        if packed is None:
            leaves, treedef = jax.tree.flatten(updates)
            plan = plan_stacks(leaves, max_stack_size, group_size)
            p_stacks = None if params is None else stack_leaves(treedef.flatten_up_to(params), plan)
            return plan, treedef, stack_leaves(leaves, plan), p_stacks, None
        plan = plan_of(packed)

        def stacks_of(tree) -> list:
            if isinstance(tree, Packed):
                if (tree.treedef, tree.groups) != (packed.treedef, packed.groups):
                    raise ValueError("grouped: packed updates and params must share one grouping")
                return list(tree.stacks)
            leaves, treedef = jax.tree.flatten(tree)
            if treedef != packed.treedef:
                raise ValueError(
                    f"grouped: the tree structure {treedef} differs from the packed value's "
                    f"{packed.treedef}"
                )
            return stack_leaves(leaves, plan)

        p_stacks = None if params is None else stacks_of(params)
        return plan, packed.treedef, stacks_of(updates), p_stacks, packed

    def update(updates, state, params=None, **extra):
        if not isinstance(state, GroupedState) or len(state.inner) != len(members):
            raise ValueError(
                f"grouped expects the GroupedState made by its init, got {type(state).__name__}"
            )
        # Stacks nobody reads (params, for most members) are dropped by XLA.
        plan, treedef, stacks, p_stacks, packed = arrange(updates, params)
        # Unpacked only for a member that runs on the tree: 1000 traced slices otherwise.
        tree_params = None if isinstance(params, Packed) else params
        leaves_now, new_states = None, []
        for member, mode, data in zip(members, modes_of(plan), state.inner):
            if mode == LEAVES:
                if leaves_now is None:
                    leaves_now = unstack_leaves(stacks, plan)
                if tree_params is None and params is not None:
                    tree_params = params.unpack()
                out, data = member.update(treedef.unflatten(leaves_now), data, tree_params, **extra)
                leaves_now, stacks = treedef.flatten_up_to(out), None
            else:
                if stacks is None:
                    stacks = stack_leaves(leaves_now, plan)
                if mode == STACKED:
                    keyed = _stack_dict(stacks)
                    out, data = member.update(
                        keyed, data, None if p_stacks is None else _stack_dict(p_stacks), **extra
                    )
                    stacks = [out[k] for k in keyed]
                else:
                    stacks, data = _vmapped_update(member, data, stacks, p_stacks, plan, extra)
                leaves_now = None
            new_states.append(data)
        if packed is not None:
            if stacks is None:
                stacks = stack_leaves(leaves_now, plan)
            return Packed(stacks, treedef, plan.groups), GroupedState(tuple(new_states))
        if leaves_now is None:
            leaves_now = unstack_leaves(stacks, plan)
        return treedef.unflatten(leaves_now), GroupedState(tuple(new_states))

    return base.GradientTransformation(init, update)
