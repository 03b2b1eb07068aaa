"""gx.psgd_kron against psgd-jax 0.2.9's ``kron`` (float64, same probes, 12 steps).

psgd-jax imports ``optax._src.clipping``, which optax 0.2.8 no longer has (quirk P1): the
module is aliased to ``optax.transforms._clipping`` before the import; nothing else of
the reference is touched. psgd-jax always draws from ``PRNGKey(5318008)`` (quirk P5); to
compare other keys its ``PRNGKey`` call is redirected while it is traced.
"""

from __future__ import annotations

import contextlib
import os
import sys
import unittest.mock

import jax
import jax.numpy as jnp
import numpy as np
import optax.transforms._clipping
import pytest

import gradxform as gx
from reference import grad_fn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharding_scripts"))
from check_kronecker import run_sharding_check

sys.modules.setdefault("optax._src.clipping", optax.transforms._clipping)
from psgd_jax import kron as reference  # noqa: E402

STEPS = 12
# With this seed the 1% balancing draw fires within the 12 steps (checked below).
BALANCING_SEED = 7


# Compile time dominates these short runs (the fit is a large graph); both sides of every
# comparison are compiled alike.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _fast_jit(fn, *args):
    return jax.jit(fn).lower(*args).compile(FAST_COMPILE)(*args)


def run(tx, params, steps):
    """``steps`` updates of ``tx`` from ``params``, scanned under jit; the trajectory."""

    def step(carry, _):
        p, s = carry
        u, s = tx.update(grad_fn(p), s, p)
        p = jax.tree.map(lambda a, b: a + b, p, u)
        return (p, s), p

    def trajectory(params):
        return jax.lax.scan(step, (params, tx.init(params)), None, length=steps)[1]

    return _fast_jit(trajectory, params)


def _params(dtype=jnp.float64, small=False):
    rng = np.random.default_rng(2)
    arr = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype=dtype)
    if small:
        return {"w": arr(8, 5), "layers": arr(3, 4, 3), "s": arr()}
    return {
        "dense": {"w": arr(8, 5), "b": arr(5)},  # w: 8 > max_size_triangular=6
        "conv": (arr(2, 3, 2), arr()),
        "head": [arr(3, 4, 3), {"scale": arr(1, 3)}],
    }


def _reference_seed(seed):
    """psgd-jax with ``PRNGKey(seed)`` in place of its fixed key, while it is traced."""
    original = jax.random.PRNGKey

    def seeded(_):
        return original(seed)

    return unittest.mock.patch.object(jax.random, "PRNGKey", seeded)


def _balances(seed, steps):
    """The calls at which the 1% balancing draw fires, from the spec's random stream."""
    fired = []
    for c in range(steps):
        _, sub = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), c))
        _, s1 = jax.random.split(sub)
        if jax.random.uniform(s1) < 0.01:
            fired.append(c)
    return fired


CASES = {
    # The defaults (annealed-probability schedule, the reference's key).
    "defaults": (dict(learning_rate=0.05), None, None),
    # An int seed, a periodic fit, one diagonal axis per leaf, diagonal above size 6, vectors
    # triangular, fit on raw gradients, no momentum, masked decay, a scheduled lr.
    "diagonal_mix": (
        dict(
            learning_rate=lambda c: 0.05 / (1 + 0.1 * c),
            preconditioner_update_probability=0.5,
            memory_save_mode="one_diag",
            max_size_triangular=6,
            min_ndim_triangular=1,
            b1=0.0,
            momentum_into_precond_update=False,
            weight_decay=0.1,
            weight_decay_mask={
                "dense": {"w": True, "b": False},
                "conv": (True, False),
                "head": [True, {"scale": False}],
            },
        ),
        15,
        15,
    ),
    # A typed key whose stream balances the factors, a scanned stack of 3 layers mapped
    # with lax.map, a probability schedule, other scales and rates (a smaller tree).
    "typed_key_scanned": (
        dict(
            learning_rate=0.03,
            b1=0.5,
            preconditioner_lr=0.3,
            preconditioner_init_scale=0.5,
            preconditioner_update_probability=lambda n: jnp.where(n < 6, 1.0, 0.34),
            scanned_layers={"w": False, "layers": True, "s": False},
            lax_map_scanned_layers=True,
            lax_map_batch_size=2,
        ),
        jax.random.key(BALANCING_SEED),
        BALANCING_SEED,
    ),
    # Diagonal factors only, vmapped scanned layers, explicit matmul precisions.
    "all_diag_vmap": (
        dict(
            learning_rate=0.05,
            memory_save_mode="all_diag",
            scanned_layers={"w": False, "layers": True, "s": False},
            precond_update_precision="float32",
            precond_grads_precision="highest",
        ),
        None,
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_psgd_jax(name, capsys):
    kwargs, key, seed = CASES[name]
    params = _params(small="scanned_layers" in kwargs)
    with _reference_seed(seed) if seed is not None else contextlib.nullcontext():
        expected = run(reference.kron(**kwargs), params, STEPS)
    got = run(gx.psgd_kron(**kwargs, key=key), params, STEPS)
    capsys.readouterr()  # the reference prints its state sizes
    for a, e, p in zip(jax.tree.leaves(got), jax.tree.leaves(expected), jax.tree.leaves(params)):
        assert a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-9 * float(jnp.max(jnp.abs(e))))
        assert float(jnp.max(jnp.abs(e[-1] - p))) > 1e-2


def test_balancing_seed_balances():
    """The typed-key case runs a balancing of the factors (a 1% draw per fit)."""
    assert 3 in _balances(BALANCING_SEED, STEPS)


def test_float32_params_get_float32_updates(capsys):
    """Quirk P3: under x64 psgd-jax returns float64 updates for float32 params."""
    params = {
        "w": jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4) / 7,
        "s": jnp.array(0.5, jnp.float32),
    }
    grads = grad_fn(params)
    theirs = reference.kron()
    their_updates, _ = _fast_jit(theirs.update, grads, theirs.init(params))
    capsys.readouterr()
    assert their_updates["w"].dtype == jnp.float64
    tx = gx.psgd_kron()
    ours, _ = _fast_jit(tx.update, grads, tx.init(params))
    assert {u.dtype for u in jax.tree.leaves(ours)} == {jnp.dtype(jnp.float32)}
    for a, e in zip(jax.tree.leaves(ours), jax.tree.leaves(their_updates)):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-8)


def test_dtypes_are_stable():
    params = {
        "w": jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4),
        "h": jnp.arange(12.0, dtype=jnp.bfloat16).reshape(4, 3),
        "s": jnp.ones((), jnp.bfloat16),
    }
    tx = gx.psgd_kron(preconditioner_update_probability=0.5, weight_decay=0.1)
    state = tx.init(params)
    dtypes = jax.tree.map(lambda x: x.dtype, state)
    grads = grad_fn(params)
    step = jax.jit(tx.update).lower(grads, state, params).compile(FAST_COMPILE)
    for _ in range(3):
        updates, state = step(grads, state, params)
        assert jax.tree.map(lambda x: x.dtype, state) == dtypes
        assert jax.tree.map(lambda x: x.dtype, updates) == jax.tree.map(lambda x: x.dtype, params)
    # Factors in at least float32.
    assert {x.dtype for x in jax.tree.leaves(state[0].factors)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(b1=1.0), "b1"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(preconditioner_update_probability=0.0), "preconditioner_update_probability"),
        (dict(preconditioner_update_probability=1.5), "preconditioner_update_probability"),
        (dict(memory_save_mode="some_diag"), "memory_save_mode"),
        (dict(preconditioner_lr=-0.1), "preconditioner_lr"),
        (dict(preconditioner_init_scale=0.0), "preconditioner_init_scale"),
        (dict(max_size_triangular=-1), "max_size_triangular"),
        (dict(min_ndim_triangular=-1), "min_ndim_triangular"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gx.psgd_kron(**kwargs)


def test_schedules_are_accepted_unchecked(capsys):
    """Out-of-range schedules (a negative rate, a probability above 1) are not checked when
    the optimizer is built; they are used as psgd-jax uses them."""
    kwargs = dict(learning_rate=lambda c: -1.0, preconditioner_update_probability=lambda n: 2.0)
    params = {"w": jnp.arange(12.0).reshape(3, 4) / 7, "s": jnp.array(0.5)}
    grads = grad_fn(params)
    theirs = reference.kron(**kwargs)
    expected, _ = _fast_jit(theirs.update, grads, theirs.init(params))
    tx = gx.psgd_kron(**kwargs)
    got, _ = _fast_jit(tx.update, grads, tx.init(params))
    capsys.readouterr()
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-12)
    # A rate of -1 ascends: the preconditioned step points along the gradient.
    pairs = zip(jax.tree.leaves(got), jax.tree.leaves(grads))
    assert sum(float(jnp.vdot(u, g)) for u, g in pairs) > 0


def test_sharded_params_give_the_single_device_result():
    """8 host devices, float32 params over an Auto ("data", "model") mesh (a subprocess)."""
    result = run_sharding_check("psgd_kron")
    assert result["w_shard_shape"] == [2, 3]
    assert result["param_dtypes"] == ["float32"]
    assert result["moved"] > 0.1
    assert result["diff"] < 1e-5, result
