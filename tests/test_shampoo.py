"""gx.shampoo and its primitives against precondition-opt 0.3.0 and optax 0.2.8.

Trajectories are compared in float64 with the reference's ``distributed_shampoo`` (its
non-sharded path) on a nested tree with matrices larger than the block size, a 3-D leaf,
a vector, a 1 x 1 matrix and a scalar. Two changes make the reference run here, neither
touching its maths: ``jax.tree_map``/``tree_flatten``/``tree_unflatten`` (gone from jax)
are aliased to ``jax.tree_util`` (quirk S2), and its initial statistics and
preconditioners are built in float64 instead of float32, without which it cannot take a
float64 step (quirk S1, tested below). The sharded checks run in a subprocess
(``sharding_scripts/check_kronecker_sharding.py``).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from reference import loss, run

for _name in ("tree_map", "tree_flatten", "tree_unflatten"):
    if not hasattr(jax, _name):  # quirk S2: removed from jax, still used by the reference
        setattr(jax, _name, getattr(jax.tree_util, _name))

from precondition import distributed_shampoo as ds  # noqa: E402

STEPS = 10


def _params(dtype=jnp.float64):
    rng = np.random.default_rng(0)
    arr = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype)
    return {
        "net": {"w": arr(9, 6), "conv": arr(2, 5, 3)},
        "bias": arr(5),
        "head": [arr(1, 1), arr()],
    }


def _reference(**kwargs):
    """precondition-opt's Shampoo with gradxform's argument spellings, float64 state."""
    kwargs = dict(kwargs)
    kwargs["graft_type"] = ds.GraftingType[kwargs.pop("graft_type", "sgd").upper()]
    kind = kwargs.pop("preconditioner_type", kwargs.pop("precondtioner_type", "all"))
    kwargs["precondtioner_type"] = ds.PreconditionerType[kind.upper()]
    tx = ds.distributed_shampoo(**kwargs)
    eps = kwargs.get("matrix_epsilon", 1e-6)

    def init(params):
        state = tx.init(params)

        def promote(stats):  # quirk S1: the reference starts these in float32
            dtypes = {jnp.promote_types(x.dtype, jnp.float32) for x in jax.tree.leaves(params)}
            (dtype,) = dtypes
            return stats._replace(
                statistics=[eps * jnp.eye(s.shape[0], dtype=dtype) for s in stats.statistics],
                preconditioners=[jnp.eye(s.shape[0], dtype=dtype) for s in stats.preconditioners],
            )

        is_stats = lambda x: isinstance(x, ds.ParameterStats)
        return state._replace(stats=jax.tree.map(promote, state.stats, is_leaf=is_stats))

    return optax.GradientTransformation(init, tx.update)


def _assert_close(actual, expected, rtol):
    """Every step's leaf within ``rtol`` of the reference, relative to its largest entry."""
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype
        assert a.shape == e.shape
        scale = np.max(np.abs(e), axis=tuple(range(1, e.ndim)), keepdims=True)
        worst = np.max(np.abs(a - e) / scale)
        assert worst <= rtol, f"relative difference {worst:.3g} > {rtol}"


# Option combinations of the spec, folded into few cases (each compiles both optimizers).
CASES = {
    "sgd_graft_nesterov_merged": dict(start_preconditioning_step=3),
    "adagrad_stale_roots_coupled_decay": dict(
        graft_type="adagrad",
        preconditioning_compute_steps=3,
        statistics_compute_steps=2,
        nesterov=False,
        moving_average_for_momentum=True,
        weight_decay=1e-2,
        beta2=0.9,
        start_preconditioning_step=2,
        learning_rate=lambda c: 0.1 / (1.0 + c),
    ),
    # "input" skips vectors here: the reference cannot precondition them (see below).
    "rmsprop_normalized_eigh_unmerged_input": dict(
        graft_type="rmsprop_normalized",
        clip_by_scaled_gradient_norm=0.5,
        eigh=True,
        best_effort_shape_interpretation=False,
        preconditioner_type="input",
        skip_preconditioning_rank_lt=2,
        weight_decay=1e-2,
        decoupled_weight_decay=True,
        decoupled_learning_rate=False,
        start_preconditioning_step=1,
    ),
    "sqrt_n_output_summed_absolute_eps": dict(
        graft_type="sqrt_n",
        learning_rate=0.02,
        beta2=1.0,
        preconditioner_type="output",
        best_effort_shape_interpretation=False,
        relative_matrix_epsilon=False,
        matrix_epsilon=1e-3,
        skip_preconditioning_dim_size_gt=8,
        exponent_override=4,
        start_preconditioning_step=0,
    ),
}


def _compare(kwargs, params):
    """``STEPS`` steps of both inside ``lax.scan`` under ``jit``, every step compared."""
    ours = jax.jit(lambda p: run(gx.shampoo(**kwargs), p, STEPS))(params)
    theirs = jax.jit(lambda p: run(_reference(**kwargs), p, STEPS))(params)
    _assert_close(ours, theirs, rtol=1e-8)
    moved = max(
        float(jnp.max(jnp.abs(a[-1] - p)))
        for a, p in zip(jax.tree.leaves(ours), jax.tree.leaves(params))
    )
    assert moved > 1e-2


@pytest.mark.parametrize("case", CASES)
def test_matches_distributed_shampoo_float64(case):
    # Merging stops at 12 so that the matrices stay matrices (4096 would make them vectors).
    kwargs = dict(learning_rate=0.1, block_size=4, merge_small_dims_block_size=12) | CASES[case]
    _compare(kwargs, _params())


def test_other_graft_types_match_distributed_shampoo_float64():
    """The remaining graft types, on leaves that are all only grafted (no roots to compile)."""
    for graft_type in ("none", "rmsprop", "adagrad_normalized"):
        kwargs = dict(
            learning_rate=0.1, block_size=4, graft_type=graft_type, skip_preconditioning_rank_lt=9
        )
        _compare(kwargs, _params())


def test_reference_float64_state_bug_s1_and_one_by_one_bug_s3():
    """Where precondition-opt 0.3.0 fails, gradxform takes the step."""
    params = {"w": jnp.ones((3, 2)), "v": jnp.ones((1,))}
    grads = jax.tree.map(lambda x: 0.1 * x, params)
    reference = ds.distributed_shampoo(learning_rate=0.1, block_size=4)
    with pytest.raises(TypeError, match="branches"):  # S1: float32 init, float64 roots
        reference.update(grads, reference.init(params), params)
    only_vectors = {"v": jnp.ones((1,)), "s": jnp.ones(())}
    reference = _reference(learning_rate=0.1, block_size=4)
    with pytest.raises(UnboundLocalError):  # S3: every factor 1 x 1
        reference.update(only_vectors, reference.init(only_vectors), only_vectors)
    vector = {"v": jnp.ones((3,))}
    reference = _reference(learning_rate=0.1, block_size=4, precondtioner_type="input")
    with pytest.raises(AssertionError):  # "input" on a vector: one factor, two slots
        reference.update(vector, reference.init(vector), vector)
    tx = gx.shampoo(learning_rate=0.1, block_size=4, start_preconditioning_step=0)
    updates, _ = jax.jit(tx.update)(only_vectors, tx.init(only_vectors), only_vectors)
    # The 1 x 1 root is positive and grafting restores the gradient's norm: the update is
    # -lr (1 + beta1) g (Nesterov) for the factored vector and the grafted scalar alike.
    np.testing.assert_allclose(np.asarray(updates["v"]), [-0.19], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(updates["s"]), -0.19, rtol=1e-12)


def test_state_dtypes_and_update_dtypes_under_scan():
    for dtype in (jnp.float32, jnp.bfloat16):
        params = _params(dtype)
        tx = gx.shampoo(
            learning_rate=0.1, block_size=4, graft_type="rmsprop", start_preconditioning_step=1
        )
        state = tx.init(params)

        def steps(carry, _, tx=tx):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return (gx.apply_updates(p, u), s), u

        (_, final), updates = jax.eval_shape(
            lambda p, s: jax.lax.scan(steps, (p, s), None, length=2), params, state
        )
        want = jax.tree.map(lambda x: (x.shape, x.dtype), state)
        assert jax.tree.map(lambda x: (x.shape, x.dtype), final) == want
        assert {s.dtype for s in final.statistics} == {jnp.dtype(jnp.float32)}
        assert all(u.dtype == dtype for u in jax.tree.leaves(updates))
        assert all(m.dtype == dtype for m in jax.tree.leaves(final.momentum))


BAD = [
    ("learning_rate", -0.1),
    ("block_size", 0),
    ("block_size", 2.5),
    ("beta1", 1.0),
    ("beta2", 1.5),
    ("diagonal_epsilon", -1e-10),
    ("matrix_epsilon", -1e-6),
    ("weight_decay", -0.1),
    ("start_preconditioning_step", -1),
    ("preconditioning_compute_steps", 0),
    ("statistics_compute_steps", 0),
    ("exponent_override", -2),
    ("graft_type", "adam"),
    ("preconditioner_type", "both"),
    ("clip_by_scaled_gradient_norm", 0.0),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_bad_hyperparameters_raise_value_error_naming_them(name, value):
    kwargs = {"learning_rate": 0.1, name: value}
    with pytest.raises(ValueError, match=name):
        gx.shampoo(**kwargs)


def test_shard_roots_over_must_name_a_mesh_axis():
    mesh = jax.make_mesh((1,), ("blocks",))
    gx.shampoo(learning_rate=0.1, shard_roots_over=(mesh, "blocks"))
    with pytest.raises(ValueError, match="shard_roots_over"):
        gx.shampoo(learning_rate=0.1, shard_roots_over=(mesh, "data"))


def test_schedule_accepted_unchecked_and_weight_decay_needs_params():
    gx.shampoo(learning_rate=lambda c: -1.0)
    gx.shampoo(learning_rate=0.1, beta2=1.0)  # summed statistics are valid
    tx = gx.shampoo(learning_rate=0.1, weight_decay=0.1)
    params = {"w": jnp.ones((2, 2))}
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))


# --- primitives ---


def test_blocking_matches_reference_partitioner_and_round_trips():
    for shape in [(1, 2, 512, 1, 2048, 1, 3, 4), (1, 2, 768, 1, 2048), (), (1, 1), (5, 1)]:
        assert list(gx.merge_small_dims(shape, 1024)) == list(ds.merge_small_dims(shape, 1024))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(7, 10, 3)))
    layout = gx.block_layout(x.shape, 4)
    ours = layout.split(x)
    theirs = ds.BlockPartitioner(x, 4).partition(x)
    assert len(ours) == len(theirs) == layout.num_blocks == 6
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(layout.merge(ours)), np.asarray(x))
    merged = gx.block_layout((2, 3, 50), 8, merge_small_dims_block_size=8)
    assert merged.merged_shape == (6, 50)
    assert merged.split_sizes[1] == (8,) * 6 + (2,)


def _spd(n, seed=0, rank=None):
    g = np.random.default_rng(seed).normal(size=(n, rank or n))
    return jnp.asarray(g @ g.T)


def test_power_iteration_and_inverse_root_match_optax():
    assert inspect.signature(gx.power_iteration).parameters.keys() == (
        inspect.signature(optax.power_iteration).parameters.keys()
    )
    for name in ("power_iteration", "matrix_inverse_pth_root"):
        ours = inspect.signature(getattr(gx, name)).parameters
        theirs = inspect.signature(getattr(optax, name)).parameters
        assert [(k, v.default, v.kind) for k, v in ours.items()] == [
            (k, v.default, v.kind) for k, v in theirs.items()
        ]
    for dtype, exponents in ((jnp.float32, (4,)), (jnp.float64, (2,))):
        a = _spd(6).astype(dtype)
        eig, vec = gx.power_iteration(a)
        eig_o, vec_o = optax.power_iteration(a)
        np.testing.assert_allclose(eig, eig_o, rtol=1e-6)
        np.testing.assert_allclose(vec, vec_o, rtol=1e-5, atol=1e-6)
        for p in exponents:
            root, error = gx.matrix_inverse_pth_root(a, p)
            root_o, error_o = optax.matrix_inverse_pth_root(a, p)
            assert root.dtype == root_o.dtype == dtype
            np.testing.assert_allclose(root, root_o, rtol=1e-5 if dtype == jnp.float32 else 1e-12)
            np.testing.assert_allclose(error, error_o, rtol=1e-3, atol=1e-7)
    # A callable matrix with a pytree start vector, as optax accepts.
    a = _spd(4)
    mvp = lambda v: {"x": a @ v["x"]}
    eig, _ = gx.power_iteration(mvp, v0={"x": jnp.ones(4)})
    np.testing.assert_allclose(eig, np.linalg.eigvalsh(np.asarray(a))[-1], rtol=1e-6)


def test_inverse_root_is_right_where_optax_rounds_the_exponent():
    """optax 0.2.8 computes the matrix power by ``2^round(log2 p)``: p = 3 gives A^(-1/2)."""
    a = _spd(5)
    w, v = np.linalg.eigh(np.asarray(a))
    ridge = 1e-6 * w[-1]
    exact = (v * (w + ridge) ** (-1 / 3)) @ v.T
    ours, _ = gx.matrix_inverse_pth_root(a, 3)
    np.testing.assert_allclose(ours, exact, rtol=1e-5, atol=1e-8)
    theirs, _ = optax.matrix_inverse_pth_root(a, 3)
    assert np.max(np.abs(np.asarray(theirs) - exact)) > 1e-2 * np.max(np.abs(exact))


def test_shampoo_roots_match_reference_solvers():
    for n, rank, p in ((6, 3, 4), (1, 1, 2)):
        a = _spd(n, seed=n, rank=rank) + 1e-6 * jnp.eye(n)
        root, error = gx.robust_matrix_inverse_pth_root(a, p)
        if n > 1:  # the reference's 1 x 1 branch is its bug S3
            root_r, metrics = ds.matrix_inverse_pth_root(a, p)
            np.testing.assert_allclose(root, root_r, rtol=1e-12, atol=0)
            assert error == metrics.inverse_pth_root_errors
        root, _ = gx.matrix_inverse_pth_root_eigh(a, p)
        root_r, _ = ds.matrix_inverse_pth_root_eigh(a, p)
        np.testing.assert_allclose(root, root_r, rtol=1e-10, atol=1e-12)
        eig, vec = gx.largest_eigenvalue(a)
        vec_r, eig_r = ds.power_iteration(a)
        assert float(eig) == float(eig_r)
        np.testing.assert_array_equal(np.asarray(vec), np.asarray(vec_r))
    # A factor zero-padded into a larger stack entry, as Shampoo stores it.
    padded = jnp.pad(_spd(3, seed=3, rank=2), ((0, 2), (0, 2)))
    for ours, theirs in (
        (gx.robust_matrix_inverse_pth_root, ds.matrix_inverse_pth_root),
        (gx.matrix_inverse_pth_root_eigh, ds.matrix_inverse_pth_root_eigh),
    ):
        root, _ = jax.vmap(lambda m, n, ours=ours: ours(m, 4, size=n))(
            padded[None], jnp.asarray([3])
        )
        root_r, _ = theirs(padded, 4, padding_start=3)
        np.testing.assert_allclose(root[0], root_r, rtol=1e-12, atol=1e-300)
        assert not np.any(np.asarray(root[0, 3:]))


def test_statistics_graft_and_refresh_against_closed_forms():
    g = jnp.asarray(np.random.default_rng(2).normal(size=(3, 4, 2)))
    np.testing.assert_allclose(
        gx.axis_gram(g, 1), np.einsum("aib,ajb->ij", np.asarray(g), np.asarray(g)), rtol=1e-12
    )
    old = jnp.eye(4)
    np.testing.assert_allclose(gx.accumulate_statistic(old, 2 * old, 0.9), 1.1 * old)
    np.testing.assert_allclose(gx.accumulate_statistic(old, 2 * old, 1.0), 3 * old)
    tx = gx.chain(gx.graft(gx.scale(3.0), gx.scale_by_sign()), gx.scale(-1.0))
    u, _ = tx.update({"g": g}, tx.init({"g": g}))
    s = np.sign(np.asarray(g))
    expected = -s * 3 * np.linalg.norm(np.asarray(g)) / (np.linalg.norm(s) + 1e-25)
    np.testing.assert_allclose(u["g"], expected, rtol=1e-12)
    counts = jnp.arange(7)
    picked = jax.vmap(lambda c: gx.refresh_every(c, 3, lambda: c * 10, -1))(counts)
    np.testing.assert_array_equal(picked, [0, -1, -1, 30, -1, -1, 60])


# --- sharding: 8 host devices in a subprocess ---

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
def test_sharded_params_and_sharded_roots_match_single_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        "--xla_force_host_platform_device_count=8"
        # Compile time dominates; all runs compared are compiled alike.
        " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    script = os.path.join(HERE, "sharding_scripts", "check_kronecker_sharding.py")
    proc = subprocess.run(
        [sys.executable, script], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("SUMMARY ")]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    summary = json.loads(lines[-1][len("SUMMARY ") :])
    # float32, 4 steps: partitioned reductions change the summation order only.
    assert summary["auto_mesh_max_rel_diff"] < 5e-5
    assert summary["sharded_roots_max_rel_diff"] < 5e-5
    assert summary["roots_sharded_over"] == 8
    # Each device keeps an eighth of the factor and root stacks (padded to multiples of 8).
    factors = summary["factor_bytes_per_device"]
    assert factors["sharded"] < factors["single_device"] / 4
