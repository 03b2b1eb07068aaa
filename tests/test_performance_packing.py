"""``pack``: params held as stacks between steps change nothing but the layout.

Every optimizer here runs on packed params (``grouped`` reading and writing the stacks)
and is compared with optax's ungrouped optimizer on the plain tree over 30 float64
steps; the tree has several leaves per shape (small ``group_size``, so stacks split with
remainders), a leaf too large to stack and scalars.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from paired import compiled_call
from reference import assert_trees_close, grad_fn, loss, nested_params, run
from test_performance_grouping import CASES, many_leaves

SMALL = dict(group_size=2, max_stack_size=16)


def packed_run(tx, params, steps: int, packed_updates: bool = False):
    """The trajectory (as trees) of ``grouped(tx)`` on ``pack(params)``; gradients are
    taken on the unpacked tree and passed as a tree (or packed, with ``packed_updates``)."""

    def run(params):
        packed = gx.pack(params, **SMALL)
        state = tx.init(packed)

        def step(carry, _):
            p, s = carry
            g = grad_fn(p.unpack())
            if packed_updates:
                g = gx.pack(g, **SMALL)
            u, s = tx.update(g, s, p)
            assert isinstance(u, gx.Packed)
            p = gx.apply_updates(p, u)
            return (p, s), p.unpack()

        return jax.lax.scan(step, (packed, state), None, length=steps)[1]

    return compiled_call(run, params)


def optax_run(tx, params, steps: int):
    return compiled_call(lambda p: run(tx, p, steps), params)


def test_pack_round_trip_is_exact():
    params = {**many_leaves(), "i": jnp.arange(3), "h": jnp.ones((2, 2), jnp.float32)}
    packed = gx.pack(params, **SMALL)
    # (3,4) x5 -> 2+2+1, (4,) x5 -> 2+2+1, () x5 -> 2+2+1, big alone, int (3,) alone,
    # float32 (2,2) alone: dtypes are not mixed in a stack.
    assert len(packed.stacks) == 12
    back = packed.unpack()
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
        assert a.dtype == b.dtype
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert "18 leaves in 12 stacks" in repr(packed)
    leaves = jax.tree.leaves(params)
    for stack, group in zip(packed.stacks, packed.groups):
        # A leaf alone is stored as it is (no stack axis); others gain a leading axis.
        expected = (
            leaves[group[0]].shape if len(group) == 1 else (len(group), *leaves[group[0]].shape)
        )
        assert stack.shape == expected
    # The grouping is part of the tree structure: another packing is another structure.
    assert jax.tree.structure(gx.pack(params)) != jax.tree.structure(packed)


def test_pack_rejects_bad_sizes_and_empty_trees():
    for bad, error in ((0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="group_size"):
            gx.pack({"a": jnp.ones(2)}, group_size=bad)
    with pytest.raises(ValueError, match="max_stack_size"):
        gx.pack({"a": jnp.ones(2)}, max_stack_size=0)
    with pytest.raises(ValueError, match="at least one"):
        gx.pack({})


@pytest.mark.parametrize("name", sorted(CASES))
def test_packed_params_match_optax(name):
    build = CASES[name]
    ours = packed_run(gx.grouped(build(gx), **SMALL), many_leaves(), steps=30)
    theirs = optax_run(build(optax), many_leaves(), steps=30)
    assert_trees_close(ours, theirs)
    moved = max(
        float(jnp.max(jnp.abs(a[-1] - b)))
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(many_leaves()))
    )
    assert moved > 1e-3


def test_packed_updates_and_split_members_match_optax():
    # Gradients already packed; clipping (whole-tree norm on the stacks) then LAMB
    # (vmapped), and a chain that must fall back to the plain tree.
    ref = optax.chain(optax.clip_by_global_norm(0.5), optax.lamb(0.05))
    theirs = optax_run(ref, many_leaves(), steps=20)
    for tx in (
        gx.grouped(gx.clip_by_global_norm(0.5), gx.lamb(0.05), **SMALL),
        gx.grouped(gx.chain(gx.clip_by_global_norm(0.5), gx.lamb(0.05)), **SMALL),
    ):
        assert_trees_close(packed_run(tx, many_leaves(), 20, packed_updates=True), theirs)


def test_state_is_the_grouped_state():
    params = many_leaves()
    tx = gx.grouped(gx.adam(0.05), **SMALL)
    from_tree, from_packed = tx.init(params), tx.init(gx.pack(params, **SMALL))
    assert jax.tree.structure(from_tree) == jax.tree.structure(from_packed)
    for a, b in zip(jax.tree.leaves(from_tree), jax.tree.leaves(from_packed)):
        assert a.shape == b.shape
        assert a.dtype == b.dtype


def test_mismatched_packings_are_refused():
    params = many_leaves()
    tx = gx.grouped(gx.adam(0.05), **SMALL)
    packed = gx.pack(params, **SMALL)
    state = tx.init(packed)
    with pytest.raises(ValueError, match="share one grouping"):
        tx.update(gx.pack(params, group_size=3, max_stack_size=16), state, packed)
    other = {**params, "extra": jnp.ones(2)}
    with pytest.raises(ValueError, match="tree structure"):
        tx.update(other, state, packed)


def test_masks_around_grouped_refuse_packed_params():
    # A mask or label tree cannot be laid over stacks: the refusal says to move it inside.
    params = {"a": jnp.ones(3), "b": jnp.ones(3)}
    packed, grads = gx.pack(params), jax.tree.map(jnp.ones_like, params)
    mask, labels = {"a": True, "b": False}, {"a": "x", "b": "y"}
    outside = [
        gx.masked(gx.grouped(gx.adam(0.1)), mask),
        gx.multi_transform({"x": gx.grouped(gx.adam(0.1)), "y": gx.sgd(0.1)}, labels),
    ]
    for tx in outside:
        with pytest.raises(TypeError, match=r"inside gx\.grouped"):
            tx.init(packed)
    after = gx.chain(gx.grouped(gx.adam(0.1)), gx.masked(gx.scale(2.0), mask))
    with pytest.raises(TypeError, match="masked got packed"):
        after.update(grads, after.init(params), packed)
    # Inside grouped the mask sees the tree: Adam on "a" only, as optax masks it.
    inside = gx.grouped(gx.masked(gx.adam(0.1), mask))
    updates, _ = inside.update(grads, inside.init(packed), packed)
    ref = optax.masked(optax.adam(0.1), mask)
    expected, _ = ref.update(grads, ref.init(params), params)
    assert_trees_close(updates.unpack(), expected, rtol=1e-6, atol=1e-7)


def test_gradient_with_respect_to_packed_params_is_packed():
    params = nested_params()
    packed = gx.pack(params, **SMALL)
    g = jax.grad(lambda p: loss(p.unpack()))(packed)
    assert isinstance(g, gx.Packed)
    assert g.groups == packed.groups
    assert_trees_close(g.unpack(), grad_fn(params), rtol=1e-14, atol=0)


def test_donated_packed_step_updates_in_place():
    params = jax.tree.map(lambda x: x.astype(jnp.float32), many_leaves())
    tx = gx.grouped(gx.adam(1e-2))
    step = jax.jit(
        lambda p, s, g: (lambda u, s: (gx.apply_updates(p, u), s))(*tx.update(g, s, p)),
        donate_argnums=(0, 1),
    )
    packed = gx.pack(jax.tree.map(jnp.copy, params))  # a leaf alone is not copied by pack
    state = tx.init(packed)
    grads = grad_fn(params)
    compiled = step.lower(packed, state, grads).compile()
    # Every output aliases a donated input: params and state are updated in place.
    n_out = len(jax.tree.leaves((packed, state)))
    assert compiled.as_text().count("may-alias") + compiled.as_text().count("must-alias") >= n_out
    new, _ = compiled(packed, state, grads)
    assert packed.stacks[0].is_deleted()
    ref_tx = optax.adam(1e-2)
    ref, _ = ref_tx.update(grads, ref_tx.init(params), params)
    assert_trees_close(new.unpack(), optax.apply_updates(params, ref), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("master", [False, True])
def test_train_step_with_packed_params_follows_optax(master):
    kw = {"master_dtype": jnp.float64} if master else {}
    step = gx.train_step(loss, gx.lamb, pack=True, learning_rate=0.05, weight_decay=0.01, **kw)
    state = step.init(nested_params())
    assert isinstance(state.params, gx.Packed)
    assert isinstance(state.opt_state, gx.GroupedState)
    ref_tx = optax.lamb(0.05, weight_decay=0.01)
    ref = nested_params()
    ref_state = ref_tx.init(ref)
    for _ in range(5):
        state, value = step(state)
        expected = loss(ref)
        updates, ref_state = ref_tx.update(grad_fn(ref), ref_state, ref)
        ref = optax.apply_updates(ref, updates)
        np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert_trees_close(state.params.unpack(), ref, rtol=1e-9, atol=1e-12)
    if master:
        assert_trees_close(state.master.unpack(), ref, rtol=1e-9, atol=1e-12)


def test_master_copy_of_the_same_dtype_is_its_own_buffer():
    # Params and master are donated together; sharing one buffer would be refused.
    params = jax.tree.map(lambda x: x.astype(jnp.float32), nested_params())
    step = gx.train_step(loss, gx.adam, master_dtype=jnp.float32, learning_rate=1e-2)
    state = step.init(jax.tree.map(jnp.copy, params))
    state, _ = step(state)
    ref_tx = optax.adam(1e-2)
    updates, _ = ref_tx.update(grad_fn(params), ref_tx.init(params), params)
    assert_trees_close(state.master, optax.apply_updates(params, updates), rtol=1e-6, atol=1e-7)
