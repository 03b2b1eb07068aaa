"""``grouped``: stacking same-shape leaves changes nothing but the layout.

Every grouped optimizer is compared with optax's ungrouped one over 30 float64 steps, on
a tree with several leaves per shape (small ``group_size`` so stacks split, with
remainders), a leaf too large to stack and a scalar.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from gradxform._src import grouping
from paired import assert_same_trajectory


def many_leaves(seed: int = 0):
    rng = np.random.default_rng(seed)
    arr = lambda *s: jnp.asarray(rng.normal(size=s))
    tree: dict[str, Any] = {
        f"layer{i}": {"w": arr(3, 4), "b": arr(4), "s": arr()} for i in range(5)
    }
    tree["big"] = arr(6, 5)  # 30 elements: above max_stack_size below, stays alone
    return tree


def grouped(*txs):
    return gx.grouped(*txs, group_size=2, max_stack_size=16)


def schedule(m):
    # One function for both libraries: only the optimizer is under test here.
    del m
    return lambda count: 0.05 * jnp.minimum(1.0, (count + 1) / 5.0) * 0.99**count


CASES = {
    "adam": lambda m: m.adam(0.05),
    "adamw": lambda m: m.adamw(0.05, weight_decay=0.1),
    "sgd_momentum": lambda m: m.sgd(0.02, momentum=0.9, nesterov=True),
    "lamb": lambda m: m.lamb(0.05, weight_decay=0.01),
    "lion": lambda m: m.lion(0.01, weight_decay=0.01),
    "adafactor": lambda m: m.adafactor(0.05, min_dim_size_to_factor=3),
    "clip_adamw_schedule": lambda m: m.chain(
        m.clip_by_global_norm(1.0), m.adamw(schedule(m), weight_decay=0.01)
    ),
    "adamw_rank_mask": lambda m: m.adamw(
        0.05, weight_decay=0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grouped_matches_optax(name):
    build = CASES[name]
    assert_same_trajectory(grouped(build(gx)), build(optax), steps=30, params=many_leaves())


def test_global_then_per_leaf_members_are_split():
    # As one member, clipping then LAMB is neither separable nor stack-invariant and
    # falls back to the plain tree; as two members each keeps its own mode.
    ours = grouped(gx.clip_by_global_norm(0.5), gx.lamb(0.05))
    ref = optax.chain(optax.clip_by_global_norm(0.5), optax.lamb(0.05))
    assert_same_trajectory(ours, ref, steps=30, params=many_leaves())
    whole = grouped(gx.chain(gx.clip_by_global_norm(0.5), gx.lamb(0.05)))
    assert_same_trajectory(whole, ref, steps=30, params=many_leaves())


def test_modes_follow_the_maths():
    leaves = jax.tree.leaves(many_leaves())
    plan = grouping.plan_stacks(leaves, 16, 2)
    reps = grouping._representatives(plan)
    mode = lambda tx: grouping._classify(tx, reps, {})
    assert mode(gx.adam(0.1)) == grouping.VMAPPED
    assert mode(gx.lamb(0.1)) == grouping.VMAPPED  # per-leaf trust ratios
    assert mode(gx.adafactor(0.1)) == grouping.VMAPPED  # factored, per-leaf shapes
    assert mode(gx.clip_by_global_norm(1.0)) == grouping.STACKED
    assert mode(gx.chain(gx.clip_by_global_norm(1.0), gx.lamb(0.1))) == grouping.LEAVES
    # A path-keyed mask cannot be mapped onto stacks: the member falls back.
    assert mode(gx.adamw(0.1, mask={"a": True})) == grouping.LEAVES


def _custom(update):
    return gx.GradientTransformation(lambda params: gx.EmptyState(), update)


def test_members_refusing_the_traced_tree_run_on_the_plain_tree_other_errors_raise():
    params = {"a": jnp.array([1.0, -3.0]), "b": jnp.array([2.0, 0.5])}

    def value_branch(updates, state, params=None):
        # Python control flow on a value: no abstract trace, so no stacks.
        total = sum(float(jnp.sum(u)) for u in jax.tree.leaves(updates))
        return jax.tree.map(lambda u: -u if total > 0 else u, updates), state

    tx = grouped(_custom(value_branch))
    updates, _ = tx.update(params, tx.init(params), params)
    for k in params:
        np.testing.assert_array_equal(np.asarray(updates[k]), -np.asarray(params[k]))

    def broken_when_traced(updates, state, params=None):
        if isinstance(jax.tree.leaves(updates)[0], jax.core.Tracer):
            raise RuntimeError("not traceable")
        return updates, state

    with pytest.raises(RuntimeError, match="not traceable") as caught:
        grouped(_custom(broken_when_traced)).init(params)
    assert any("grouped" in note for note in caught.value.__notes__)


def test_masks_go_outside():
    params = many_leaves()
    mask = jax.tree.map(lambda x: x.ndim == 2, params)
    assert_same_trajectory(
        gx.masked(grouped(gx.adam(0.05)), mask),
        optax.masked(optax.adam(0.05), mask),
        steps=20,
        params=params,
    )


def test_state_is_stacked_and_minimal():
    params = many_leaves()
    state = grouped(gx.adam(0.05)).init(params)
    shapes = sorted(x.shape for x in jax.tree.leaves(state))
    # 5 (3,4) leaves in stacks of 2 -> (2,3,4),(2,3,4) and one alone, times mu and nu.
    assert shapes.count((2, 3, 4)) == 4
    assert shapes.count((3, 4)) == 2
    param_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
    is_count = lambda x: jnp.issubdtype(x.dtype, jnp.integer)
    counters = [x for x in jax.tree.leaves(state) if is_count(x)]
    moments = sum(x.nbytes for x in jax.tree.leaves(state) if not is_count(x))
    assert moments == 2 * param_bytes
    # Step counters are stored once, not once per stack.
    plain = [x for x in jax.tree.leaves(gx.adam(0.05).init(params)) if is_count(x)]
    assert [c.shape for c in counters] == [c.shape for c in plain] == [()] * len(plain)


def test_updates_without_params_and_bad_state():
    tx = grouped(gx.adam(0.05))
    params = many_leaves()
    state = tx.init(params)
    updates, _ = tx.update(params, state)
    ref, _ = optax.adam(0.05).update(params, optax.adam(0.05).init(params))
    np.testing.assert_allclose(
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(updates)]),
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(ref)]),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="GroupedState"):
        tx.update(params, gx.adam(0.05).init(params))
    with pytest.raises(ValueError, match="group_size"):
        gx.grouped(gx.adam(0.1), group_size=0)
