"""Params held as a few stacks between steps: ``pack`` and ``Packed``.

``grouped`` stacks leaves inside every step and unstacks the updates again, so a step
still takes and returns one buffer per leaf; on CPU each buffer costs a few
microseconds of dispatch and a kernel of its own, whatever the optimizer does. Packing
keeps the params themselves stacked: ``S_g = stack([x_i for i in group g])`` for leaves
of equal shape and dtype, ``group_size`` at a time, each leaf above ``max_stack_size``
elements alone and unstacked. A ``grouped`` optimizer then reads and writes the stacks
directly, and the model sees its tree through ``unpack()``: under ``jit`` its slices fuse
into their consumers, and the gradient taken with respect to the ``Packed`` value is a
``Packed`` value of the same grouping.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import validate


class StackPlan(NamedTuple):
    """Which leaves share a stack, and each leaf's shape and dtype.

    Attributes:
      groups: A tuple of tuples of leaf indices (``jax.tree.leaves`` order), one per
        stack; a group of one is a leaf left alone, unstacked.
      avals: One ``jax.ShapeDtypeStruct`` per leaf.
    """

    groups: tuple
    avals: tuple


def plan_stacks(leaves: list, max_stack_size: int, group_size: int) -> StackPlan:
    """Leaves of equal shape and dtype, ``group_size`` to a stack, in order; a leaf of more
    than ``max_stack_size`` elements alone."""
    buckets: dict = {}
    for i, x in enumerate(leaves):
        shape, dtype = tuple(np.shape(x)), np.dtype(jnp.result_type(x))
        key = (shape, dtype) if int(np.prod(shape)) <= max_stack_size else ("alone", i)
        buckets.setdefault(key, []).append(i)
    groups = tuple(
        tuple(idx[k : k + group_size])
        for idx in buckets.values()
        for k in range(0, len(idx), group_size)
    )
    avals = tuple(jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)) for x in leaves)
    return StackPlan(groups, avals)


def stack_leaves(leaves: list, plan: StackPlan) -> list:
    """One array per group of ``plan``: its leaves stacked, or the leaf of a group of one."""
    # A leaf alone is passed as it is: no stack axis, so no copy and no reshape that
    # could stand between a donated buffer and its in-place update.
    return [
        jnp.stack([leaves[i] for i in idx]) if len(idx) > 1 else leaves[idx[0]]
        for idx in plan.groups
    ]


def unstack_leaves(stacks: list, plan: StackPlan) -> list:
    """The leaves again, in order: ``stack_leaves``'s inverse."""
    out: list = [None] * len(plan.avals)
    for g, idx in enumerate(plan.groups):
        if len(idx) == 1:
            out[idx[0]] = stacks[g]
            continue
        for row, i in enumerate(idx):
            out[i] = stacks[g][row]
    return out


@jax.tree_util.register_pytree_with_keys_class
class Packed:
    """A tree of arrays held as stacks of same-shape, same-dtype leaves (see ``pack``).

    A pytree whose children are the stacks: ``jax.jit`` takes and donates it, ``grad``
    with respect to it gives a ``Packed`` gradient, ``jax.tree.map`` maps over the stacks
    (element-wise maths only: a per-leaf statistic would see a whole stack). ``stacks[g]``
    holds the leaves ``groups[g]`` (indices in ``jax.tree.leaves`` order) along a new
    leading axis, or the one leaf itself, unstacked, when the group has one member.

    Build one with ``pack``; the constructor does not check its arguments.

    Attributes:
      stacks: A tuple of arrays, one per group: the group's leaves stacked along a new
        leading axis, or the leaf itself when the group has one member.
      treedef: The ``PyTreeDef`` of the packed tree.
      groups: A tuple of tuples of leaf indices (``jax.tree.leaves`` order), one per
        stack.
    """

    __slots__ = ("groups", "stacks", "treedef")

    def __init__(self, stacks, treedef, groups: tuple):
        self.stacks = tuple(stacks)
        self.treedef = treedef
        self.groups = groups

    def tree_flatten_with_keys(self):
        keys = [jax.tree_util.SequenceKey(g) for g in range(len(self.stacks))]
        return list(zip(keys, self.stacks)), (self.treedef, self.groups)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children, *aux)

    def unpack(self):
        """The tree, leaf ``i`` being row ``r`` of the stack holding it (a slice)."""
        return jax.tree.unflatten(self.treedef, unstack_leaves(list(self.stacks), plan_of(self)))

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(np.shape(s))) for s in self.stacks)
        return f"Packed({self.treedef.num_leaves} leaves in {len(self.stacks)} stacks: {shapes})"


def plan_of(packed: Packed) -> StackPlan:
    """The grouping of ``packed`` with each leaf's shape and dtype, read off its stacks
    (so a ``Packed`` value mapped to another dtype reports the new one)."""
    avals: list = [None] * packed.treedef.num_leaves
    for s, idx in zip(packed.stacks, packed.groups):
        shape = np.shape(s)[1:] if len(idx) > 1 else np.shape(s)
        for i in idx:
            avals[i] = jax.ShapeDtypeStruct(shape, jnp.result_type(s))
    return StackPlan(packed.groups, tuple(avals))


def pack(tree: Any, group_size: int = 16, max_stack_size: int = 1 << 15) -> Packed:
    """``tree`` as stacks ``S_g = stack_i(x_i)`` of equal-shape, equal-dtype leaves.

    At most ``group_size`` leaves per stack, in tree order; leaves of more than
    ``max_stack_size`` elements stay alone and unstacked (not copied: donating the
    ``Packed`` value donates such a leaf's buffer). The defaults are ``grouped``'s,
    so ``grouped(tx).init(pack(params))`` and ``grouped(tx).init(params)`` build the same
    state. ``pack(tree).unpack()`` equals ``tree``.

    Args:
      tree: A pytree with at least one array leaf (else ``ValueError``).
      group_size: The most leaves in one stack, an int ``>= 1`` (``TypeError`` for a
        non-int, ``ValueError`` below 1); default 16.
      max_stack_size: Leaves of more than this many elements stay alone, an int ``>= 1``
        (``TypeError`` for a non-int, ``ValueError`` below 1); default ``2**15``.

    Returns:
      A ``Packed`` value holding ``tree``'s leaves.
    """
    validate.positive_int("group_size", group_size)
    validate.positive_int("max_stack_size", max_stack_size)
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:
        raise ValueError("pack needs a tree with at least one array leaf")
    plan = plan_stacks(leaves, max_stack_size, group_size)
    return Packed(stack_leaves(leaves, plan), treedef, plan.groups)
