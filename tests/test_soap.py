"""gx.soap against pytorch-optimizer 4.1.0's SOAP (torch, CPU, float64).

The test tree avoids the reference's basis ambiguity (quirk O5): every factor's null
space at the first eigh has dimension at most one, where eigh's basis is unique up to a
sign, which SOAP's update does not see. A vector of 3 with ``precondition_1d`` would have
a 2-dimensional null space and a LAPACK-specific trajectory.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from pytorch_optimizer.optimizer.soap import SOAP

import gradxform as gx
from reference import grad_fn, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharding_scripts"))
from check_kronecker import run_sharding_check

STEPS = 12


def _params(dtype=jnp.float64, merged=False):
    rng = np.random.default_rng(1)
    arr = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype=dtype)
    return {
        "dense": {"w": arr(8, 5), "b": arr(7)},  # w: axis 0 is above max_precond_dim=6
        # (2, 3, 2) would merge into a 6 x 6 factor of rank 2 (quirk O5).
        "conv": (arr(3, 2, 6) if merged else arr(2, 3, 2), arr()),
        # pytorch-optimizer's merge_dims fails on vectors up to max_precond_dim (quirk O1).
        "head": [arr(5, 4), {"gate": arr(9 if merged else 2)}],
    }


def _torch_trajectory(params, steps, lr, **kw):
    leaves, treedef = jax.tree.flatten(params)
    tensors = [torch.tensor(np.asarray(x), requires_grad=True) for x in leaves]
    opt = SOAP(tensors, lr=lr(0), **kw)
    out = []
    for count in range(steps):
        opt.param_groups[0]["lr"] = lr(count)
        current = treedef.unflatten([jnp.asarray(t.detach().numpy()) for t in tensors])
        for t, g in zip(tensors, jax.tree.leaves(grad_fn(current))):
            t.grad = torch.tensor(np.asarray(g))
        opt.step()
        out.append([t.detach().numpy().copy() for t in tensors])
    return treedef.unflatten([np.stack(xs) for xs in zip(*out)])


CASES = {
    # Eigenbasis from the first eigh only: round-off level agreement.
    "fixed_basis": (
        dict(eps=1e-4, precondition_frequency=100, max_precond_dim=6, weight_decay=0.1),
        dict(eps=1e-4, precondition_frequency=100, max_precondition_dim=6, weight_decay=0.1),
        0.05,
        1e-7,
    ),
    # QR refresh every 3 calls (float32 QR in both), vectors preconditioned, normalised
    # directions, a separate shampoo_beta, no bias correction, a learning-rate schedule.
    "refreshed": (
        dict(
            eps=1e-4,
            precondition_frequency=3,
            max_precond_dim=6,
            precondition_1d=True,
            normalize_grads=True,
            shampoo_beta=0.9,
            b1=0.8,
            correct_bias=False,
            weight_decay=0.0,
        ),
        dict(
            eps=1e-4,
            precondition_frequency=3,
            max_precondition_dim=6,
            precondition_1d=True,
            normalize_gradient=True,
            shampoo_beta=0.9,
            betas=(0.8, 0.95),
            correct_bias=False,
            weight_decay=0.0,
        ),
        lambda count: 0.05 / (1.0 + 0.1 * count),
        1e-5,
    ),
    # Merged axes: (3, 2, 6) -> (6, 6); (8, 5) and (5, 4) stay (pytorch-optimizer makes
    # the first [1, 8, 5], an extra 1 x 1 factor that changes nothing).
    "merged": (
        dict(
            eps=1e-4,
            precondition_frequency=4,
            max_precond_dim=6,
            merge_dims=True,
            weight_decay=0.05,
        ),
        dict(
            eps=1e-4,
            precondition_frequency=4,
            max_precondition_dim=6,
            merge_dims=True,
            weight_decay=0.05,
        ),
        0.05,
        1e-5,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_pytorch_optimizer(name):
    ours_kw, theirs_kw, lr, rtol = CASES[name]
    params = _params(merged="merge_dims" in ours_kw)
    schedule = lr if callable(lr) else (lambda count: lr)
    expected = _torch_trajectory(params, STEPS, schedule, **theirs_kw)
    # reference.run scans the steps under jit.
    got = run(gx.soap(learning_rate=lr, **ours_kw), params, STEPS)
    for a, e, p in zip(jax.tree.leaves(got), jax.tree.leaves(expected), jax.tree.leaves(params)):
        # Relative to each leaf's scale: entries that cross zero have no relative error.
        np.testing.assert_allclose(np.asarray(a), e, rtol=rtol, atol=rtol * np.max(np.abs(e)))
        # The first step is a no-op (quirk O2); the trajectory then moves.
        np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(p))
        assert np.max(np.abs(e[-1] - np.asarray(p))) > 0.05


def test_merge_dims_merges_a_square_matrix_into_one_axis():
    """Quirk O1: pytorch-optimizer cannot reshape a (1, 2) or (5, 5) leaf with merge_dims;
    gx merges it into one axis and moves it as the reference moves the flat vector."""
    flat = {"v": jnp.array([0.7, -1.3])}
    for shape in [(1, 2), (5, 5)]:
        param = torch.zeros(shape, requires_grad=True)
        param.grad = torch.ones(shape)
        with pytest.raises(RuntimeError, match="shape"):
            SOAP([param], merge_dims=True).step()
    kw = dict(eps=1e-4, precondition_frequency=3, weight_decay=0.0)
    expected = _torch_trajectory(flat, 6, lambda count: 0.1, precondition_1d=True, **kw)
    tx = gx.soap(learning_rate=0.1, merge_dims=True, **kw)
    got = run(tx, {"v": flat["v"].reshape(1, 2)}, 6)
    assert tx.init({"v": jnp.zeros((5, 5))})[0].factors["v"][0].shape == (25, 25)
    np.testing.assert_allclose(got["v"].reshape(6, 2), expected["v"], rtol=1e-5, atol=1e-7)
    assert np.max(np.abs(expected["v"][-1] - np.asarray(flat["v"]))) > 0.05


def test_decay_is_applied_after_the_step():
    """Quirk O3: ``p <- (p - s u)(1 - lr wd)``, checked on one leaf in closed form."""
    lr, wd = 0.1, 0.5
    p = jnp.array([2.0, -1.0])
    g = jnp.array([1.0, 3.0])
    tx = gx.soap(learning_rate=lr, weight_decay=wd, b1=0.5, b2=0.5, eps=0.0)
    state = tx.init(p)
    zero, state = tx.update(g, state, p)
    np.testing.assert_array_equal(zero, 0.0)
    u, _ = tx.update(g, state, p)
    # No factor on a vector: plain Adam with t = 1, so s u = lr sign(g).
    np.testing.assert_allclose(p + u, (p - lr * jnp.sign(g)) * (1 - lr * wd), rtol=1e-12)


def test_dtypes_are_stable():
    params = {
        "w": jnp.arange(20.0, dtype=jnp.float32).reshape(5, 4),
        "h": jnp.arange(20.0, dtype=jnp.bfloat16).reshape(4, 5),
        "b": jnp.ones(2, jnp.bfloat16),
        "s": jnp.ones((), jnp.float32),
    }
    tx = gx.soap(precondition_frequency=2, max_precond_dim=6, precondition_1d=True)
    state = tx.init(params)
    grads = grad_fn(params)
    # Compiled at optimisation level 0: only types and finiteness are checked here.
    fast = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    step = jax.jit(tx.update).lower(grads, state, params).compile(fast)
    dtypes = jax.tree.map(lambda x: x.dtype, state)
    for _ in range(3):  # the compiled step refuses a state whose dtypes drifted
        updates, state = step(grads, state, params)
        assert jax.tree.map(lambda x: x.dtype, state) == dtypes
        assert jax.tree.map(lambda x: x.dtype, updates) == jax.tree.map(lambda x: x.dtype, params)
        assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
    # Moments in the params' dtypes, factors and bases in at least float32.
    assert state[0].nu["h"].dtype == jnp.bfloat16
    assert state[0].factors["h"][0].dtype == jnp.float32


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(b1=1.0), "b1"),
        (dict(b2=-0.1), "b2"),
        (dict(shampoo_beta=1.5), "shampoo_beta"),
        (dict(eps=-1e-8), "eps"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(precondition_frequency=0), "precondition_frequency"),
        (dict(max_precond_dim=0), "max_precond_dim"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gx.soap(**kwargs)


def test_schedule_is_accepted_and_params_required_for_decay():
    tx = gx.soap(learning_rate=lambda count: -1.0)  # schedules are not range-checked
    p = jnp.ones((2, 2))
    with pytest.raises(ValueError, match="params"):
        tx.update(p, tx.init(p))


def test_sharded_params_give_the_single_device_result():
    """8 host devices, float32 params over an Auto ("data", "model") mesh (a subprocess)."""
    result = run_sharding_check("soap")
    assert result["w_shard_shape"] == [2, 3]
    assert result["param_dtypes"] == ["float32"]
    assert result["moved"] > 0.1
    assert result["diff"] < 1e-5, result
