"""The optimizers against optax 0.2.8 (and torch, and float64 numpy where optax is
wrong or fails): 100 steps on the nested mixed-shape pytree in float64, rel 1e-9.

Each optax comparison compiles both trajectories in one cheaply optimised XLA program
(``paired.assert_same_trajectory``).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import gradxform as gx
from optimizer_cases import OPTIMIZERS
from paired import (
    assert_bf16_params_keep_f32_moments,
    assert_same_trajectory,
    compiled_call,
    fast_jit,
)
from reference import assert_trees_close, grad_fn, loss, max_gap, nested_params, run

STEPS = 100
jit_grad = fast_jit(grad_fn)


def matrices(params):
    """A mask of the leaves of rank >= 2."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def non_scalars(params):
    return jax.tree.map(lambda x: x.ndim > 0, params)


# Adafactor's non-default options, written once for both libraries' builders.
ADAFACTOR_FACTORED: dict[str, Any] = {
    "min_dim_size_to_factor": 2,
    "momentum": 0.9,
    "dtype_momentum": jnp.float64,
    "weight_decay_rate": 0.01,
    "weight_decay_mask": matrices,
}
ADAFACTOR_PLAIN: dict[str, Any] = {
    "decay_rate": 0.5,
    "multiply_by_parameter_scale": False,
    "clipping_threshold": None,
    "eps": 1e-20,
    "factored": False,
}

# name -> (gradxform builder, optax builder). One case per optimizer, then one per option.
CASES = {
    "adagrad": (lambda: gx.adagrad(0.1), lambda: optax.adagrad(0.1)),
    "adagrad_options": (
        lambda: gx.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-4),
        lambda: optax.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-4),
    ),
    "rmsprop": (lambda: gx.rmsprop(0.01), lambda: optax.rmsprop(0.01)),
    "rmsprop_centered": (
        lambda: gx.rmsprop(0.01, centered=True),
        lambda: optax.rmsprop(0.01, centered=True),
    ),
    "rmsprop_momentum": (
        lambda: gx.rmsprop(0.005, momentum=0.9),
        lambda: optax.rmsprop(0.005, momentum=0.9),
    ),
    "rmsprop_nesterov": (
        lambda: gx.rmsprop(0.005, momentum=0.9, nesterov=True),
        lambda: optax.rmsprop(0.005, momentum=0.9, nesterov=True),
    ),
    "rmsprop_eps_outside_sqrt": (
        lambda: gx.rmsprop(0.01, eps=1e-3, eps_in_sqrt=False),
        lambda: optax.rmsprop(0.01, eps=1e-3, eps_in_sqrt=False),
    ),
    "rmsprop_bias_correction": (
        lambda: gx.rmsprop(0.01, decay=0.95, bias_correction=True),
        lambda: optax.rmsprop(0.01, decay=0.95, bias_correction=True),
    ),
    "rmsprop_initial_scale": (
        lambda: gx.rmsprop(0.01, initial_scale=1.0),
        lambda: optax.rmsprop(0.01, initial_scale=1.0),
    ),
    "rmsprop_centered_all_options": (
        lambda: gx.rmsprop(0.005, 0.95, 1e-6, 0.5, False, True, 0.8, True, True),
        lambda: optax.rmsprop(0.005, 0.95, 1e-6, 0.5, False, True, 0.8, True, True),
    ),
    "adadelta": (lambda: gx.adadelta(), lambda: optax.adadelta(learning_rate=1.0)),
    "adadelta_weight_decay": (
        lambda: gx.adadelta(0.5, rho=0.8, eps=1e-4, weight_decay=0.1),
        lambda: optax.adadelta(0.5, rho=0.8, eps=1e-4, weight_decay=0.1),
    ),
    "amsgrad": (lambda: gx.amsgrad(0.05, b2=0.9), lambda: optax.amsgrad(0.05, b2=0.9)),
    "amsgrad_no_bias_correction": (
        lambda: gx.amsgrad(0.05, b2=0.9, bias_correction_mu=False, bias_correction_nu=False),
        lambda: optax.amsgrad(0.05, b2=0.9, bias_correction_mu=False, bias_correction_nu=False),
    ),
    "adamax": (lambda: gx.adamax(0.05), lambda: optax.adamax(0.05)),
    "adamaxw": (
        lambda: gx.adamaxw(0.05, weight_decay=0.1),
        lambda: optax.adamaxw(0.05, weight_decay=0.1),
    ),
    "nadam": (lambda: gx.nadam(0.05, b1=0.8), lambda: optax.nadam(0.05, b1=0.8)),
    "nadamw": (
        lambda: gx.nadamw(0.05, weight_decay=0.1),
        lambda: optax.nadamw(0.05, weight_decay=0.1),
    ),
    "radam": (lambda: gx.radam(0.05), lambda: optax.radam(0.05)),
    "radam_nesterov_threshold": (
        lambda: gx.radam(0.05, b2=0.99, threshold=20.0, nesterov=True),
        lambda: optax.radam(0.05, b2=0.99, threshold=20.0, nesterov=True),
    ),
    "yogi": (lambda: gx.yogi(0.05), lambda: optax.yogi(0.05)),
    "adabelief": (lambda: gx.adabelief(0.05), lambda: optax.adabelief(0.05)),
    "adabelief_nesterov": (
        lambda: gx.adabelief(0.05, nesterov=True),
        lambda: optax.adabelief(0.05, nesterov=True),
    ),
    "lamb": (lambda: gx.lamb(0.01), lambda: optax.lamb(0.01)),
    "lamb_masked_weight_decay": (
        lambda: gx.lamb(0.01, weight_decay=0.1, mask=matrices),
        lambda: optax.lamb(0.01, weight_decay=0.1, mask=matrices),
    ),
    "lars": (
        lambda: gx.lars(0.5, trust_coefficient=0.1),
        lambda: optax.lars(0.5, trust_coefficient=0.1),
    ),
    "lars_options": (
        lambda: gx.lars(0.5, 0.1, non_scalars, 0.1, 1e-3, matrices, 0.8, True),
        lambda: optax.lars(0.5, 0.1, non_scalars, 0.1, 1e-3, matrices, 0.8, True),
    ),
    "fromage": (lambda: gx.fromage(0.01), lambda: optax.fromage(0.01)),
    "fromage_schedule": (
        lambda: gx.fromage(lambda c: 0.02 / (1.0 + c)),
        lambda: optax.fromage(lambda c: 0.02 / (1.0 + c)),
    ),
    "novograd": (lambda: gx.novograd(0.01), lambda: optax.novograd(0.01)),
    "novograd_weight_decay": (
        lambda: gx.novograd(0.01, b2=0.5, eps_root=1e-8, weight_decay=0.1),
        lambda: optax.novograd(0.01, b2=0.5, eps_root=1e-8, weight_decay=0.1),
    ),
    "lion": (lambda: gx.lion(0.003), lambda: optax.lion(0.003)),
    "lion_masked_weight_decay": (
        lambda: gx.lion(0.003, 0.8, 0.9, weight_decay=0.1, mask=matrices),
        lambda: optax.lion(0.003, 0.8, 0.9, weight_decay=0.1, mask=matrices),
    ),
    "sign_sgd": (lambda: gx.sign_sgd(0.01), lambda: optax.sign_sgd(0.01)),
    "signum": (lambda: gx.signum(0.01, beta=0.8), lambda: optax.signum(0.01, beta=0.8)),
    "adafactor": (lambda: gx.adafactor(0.05), lambda: optax.adafactor(0.05)),
    # The momentum in float64: its default float32 storage turns 1-ulp float64 differences
    # (from how XLA fuses each program) into float32 rounding flips of ~1e-8.
    "adafactor_factored": (
        lambda: gx.adafactor(0.05, **ADAFACTOR_FACTORED),
        lambda: optax.adafactor(0.05, **ADAFACTOR_FACTORED),
    ),
    "adafactor_plain": (
        lambda: gx.adafactor(None, **ADAFACTOR_PLAIN),
        lambda: optax.adafactor(None, **ADAFACTOR_PLAIN),
    ),
    "adan": (lambda: gx.adan(0.05), lambda: optax.adan(0.05)),
    "adan_weight_decay": (
        lambda: gx.adan(0.05, 0.9, 0.8, 0.95, 1e-6, 0.0, 0.1),
        lambda: optax.adan(0.05, 0.9, 0.8, 0.95, 1e-6, 0.0, 0.1),
    ),
    "optimistic_gradient_descent": (
        lambda: gx.optimistic_gradient_descent(0.01),
        lambda: optax.optimistic_gradient_descent(0.01),
    ),
    "optimistic_gradient_descent_alpha_beta": (
        lambda: gx.optimistic_gradient_descent(0.01, alpha=0.5, beta=2.0),
        lambda: optax.optimistic_gradient_descent(0.01, alpha=0.5, beta=2.0),
    ),
    "optimistic_adam_v2": (
        lambda: gx.optimistic_adam_v2(0.01, alpha=0.7, beta=0.5, nesterov=False),
        lambda: optax.optimistic_adam_v2(0.01, alpha=0.7, beta=0.5, nesterov=False),
    ),
    "noisy_sgd": (
        lambda: gx.noisy_sgd(0.01, eta=0.1, key=jax.random.key(3)),
        lambda: optax.noisy_sgd(0.01, eta=0.1, key=jax.random.key(3)),
    ),
    "sm3_without_scalars": (lambda: gx.sm3(0.1), lambda: optax.sm3(0.1)),
    "scale_by_param_block_norm": (
        lambda: gx.chain(gx.scale_by_param_block_norm(), gx.scale(-0.01)),
        lambda: optax.chain(optax.scale_by_param_block_norm(), optax.scale(-0.01)),
    ),
    "scale_by_lion_smooth": (
        lambda: gx.chain(gx.scale_by_lion(mode="smooth", smooth_beta=3.0), gx.scale(-0.01)),
        lambda: optax.chain(
            optax.scale_by_lion(mode="smooth", smooth_beta=3.0), optax.scale(-0.01)
        ),
    ),
    "scale_by_lion_refined": (
        lambda: gx.chain(gx.scale_by_lion(mode="refined"), gx.scale(-0.01)),
        lambda: optax.chain(optax.scale_by_lion(mode="refined"), optax.scale(-0.01)),
    ),
    "scale_by_yogi_options": (
        lambda: gx.chain(gx.scale_by_yogi(0.8, 0.99, 1e-4, 1e-6, 0.5), gx.scale(-0.01)),
        lambda: optax.chain(optax.scale_by_yogi(0.8, 0.99, 1e-4, 1e-6, 0.5), optax.scale(-0.01)),
    ),
}


def _params_for(name):
    params = nested_params()
    if name.startswith("sm3"):
        # optax's SM3 raises on 0-d leaves; the full tree is tested against numpy below.
        del params["conv"]
    return params


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax(name):
    ours, theirs = CASES[name]
    assert_same_trajectory(ours(), theirs(), params=_params_for(name))


# --- where optax is wrong or fails --------------------------------------------------------


def test_adadelta_default_descends_where_optax_default_climbs():
    params = nested_params()

    @fast_jit
    def losses(p):
        final = lambda traj: loss(jax.tree.map(lambda x: x[-1], traj))
        return loss(p), final(run(gx.adadelta(), p, STEPS)), final(run(optax.adadelta(), p, STEPS))

    start, ours, optax_default = map(float, losses(params))
    assert ours < start - 1.0, (start, ours)
    assert optax_default > start + 1.0, (start, optax_default)


def _sm3_numpy(params, steps, lr, b1, eps=1e-8):
    """SM3-II (Anil et al. 2019, algorithm 2) in float64 numpy with explicit covers.

    A rank >= 2 tensor is covered by its slices along each axis (one accumulator per
    axis index); a vector or scalar by one set per element, i.e. AdaGrad.
    """
    leaves, treedef = jax.tree.flatten(params)
    x = [np.array(p, dtype=np.float64) for p in leaves]
    acc = [[np.zeros(n) for n in p.shape] if p.ndim >= 2 else np.zeros(p.shape) for p in x]
    mom = [np.zeros(p.shape) for p in x]
    out = []
    for _ in range(steps):
        grads = [np.asarray(g) for g in jax.tree.leaves(jit_grad(jax.tree.unflatten(treedef, x)))]
        for k, g in enumerate(grads):
            if x[k].ndim < 2:
                nu = acc[k] + g**2
                acc[k] = nu
            else:
                nu = np.empty(g.shape)
                for idx in np.ndindex(g.shape):
                    nu[idx] = g[idx] ** 2 + min(acc[k][r][i] for r, i in enumerate(idx))
                for r in range(g.ndim):
                    cells = list(np.ndindex(g.shape))
                    slices = [[nu[i] for i in cells if i[r] == j] for j in range(g.shape[r])]
                    acc[k][r] = np.array([max(s) for s in slices])
            precond = np.where(nu > 0, g / np.sqrt(nu + eps), 0.0)
            mom[k] = b1 * mom[k] + (1 - b1) * precond
            x[k] = x[k] - lr * mom[k]
        out.append([v.copy() for v in x])
    return jax.tree.unflatten(treedef, [np.stack([o[k] for o in out]) for k in range(len(x))])


def test_sm3_matches_numpy_reference_on_a_tree_with_scalar_leaves():
    """optax's sm3 raises IndexError on 0-d leaves, so a float64 NumPy SM3 is the reference."""
    params = nested_params()
    assert any(np.ndim(p) == 0 for p in jax.tree.leaves(params))
    ours = run(gx.sm3(0.1, momentum=0.8), params, STEPS)
    assert_trees_close(ours, _sm3_numpy(params, STEPS, 0.1, 0.8), rtol=1e-9, atol=1e-12)
    theirs = optax.sm3(0.1)
    with pytest.raises(IndexError):
        jax.jit(theirs.update)(jit_grad(params), theirs.init(params), params)


@pytest.mark.parametrize("b2", [np.float64(1.0), "jax", 0.5])
def test_scale_by_sm3_b2_as_an_array_matches_optax_with_a_float(b2):
    """b2 given as a NumPy or JAX scalar (or injected) still means plain sums at 1."""
    value = 1.0 if isinstance(b2, str) else float(b2)
    ours_b2 = jnp.asarray(value) if isinstance(b2, str) else b2
    params = {"w": jnp.arange(6.0).reshape(2, 3) / 7, "b": jnp.array([0.3, -0.2])}
    grads = [jax.tree.map(lambda p, k=k: jnp.sin(p * (k + 1)) + 0.1, params) for k in range(3)]
    ours, theirs = gx.scale_by_sm3(b2=ours_b2), optax.scale_by_sm3(b2=value)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for g in grads:
        u_ours, s_ours = jax.jit(ours.update)(g, s_ours, params)
        u_theirs, s_theirs = theirs.update(g, s_theirs, params)
        assert_trees_close(u_ours, u_theirs, rtol=1e-6, atol=1e-9)


def test_sm3_with_an_empty_axis_keeps_the_other_covers_at_zero():
    params = {"empty": jnp.zeros((2, 0, 2)), "w": jnp.ones((2, 3))}
    grads = {"empty": jnp.zeros((2, 0, 2)), "w": jnp.full((2, 3), 2.0)}
    tx = gx.sm3(0.1)
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["empty"].shape == (2, 0, 2)
    covers = state[0].mu["empty"]  # chain(scale_by_sm3, scale_by_learning_rate)
    assert [c.shape for c in covers] == [(2,), (0,), (2,)]
    for cover in covers:
        np.testing.assert_array_equal(np.asarray(cover), 0.0)
    # The non-empty leaf, by hand: nu = g^2 = 4, u = -lr (1 - b1) g / sqrt(nu + eps).
    np.testing.assert_allclose(updates["w"], -0.1 * 0.1 * 2.0 / np.sqrt(4.0 + 1e-8), rtol=1e-12)


def _torch_trajectory(make_optimizer, params, steps=STEPS):
    """torch.optim on the same loss, fed jax's gradient at torch's own current params."""
    leaves, treedef = jax.tree.flatten(params)
    tensors = [torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=True) for x in leaves]
    optimizer = make_optimizer(tensors)
    out = []
    for _ in range(steps):
        current = jax.tree.unflatten(treedef, [jnp.asarray(t.detach().numpy()) for t in tensors])
        for t, g in zip(tensors, jax.tree.leaves(jit_grad(current))):
            t.grad = torch.tensor(np.asarray(g))
        optimizer.step()
        out.append([t.detach().numpy().copy() for t in tensors])
    return jax.tree.unflatten(treedef, [np.stack([o[k] for o in out]) for k in range(len(leaves))])


@pytest.mark.parametrize(
    "kwargs", [{}, {"eta_minus": 0.3, "eta_plus": 1.5, "min_step_size": 1e-3, "max_step_size": 0.2}]
)
def test_rprop_matches_torch(kwargs):
    params = nested_params()
    lr = 0.05
    etas = (kwargs.get("eta_minus", 0.5), kwargs.get("eta_plus", 1.2))
    sizes = (kwargs.get("min_step_size", 1e-6), kwargs.get("max_step_size", 50.0))
    theirs = _torch_trajectory(
        lambda ts: torch.optim.Rprop(ts, lr=lr, etas=etas, step_sizes=sizes), params
    )
    assert_trees_close(run(gx.rprop(lr, **kwargs), params, STEPS), theirs)


def test_optax_rprop_lags_one_step():
    """optax 0.2.8 returns the previous step's update: its first update is all zeros."""
    params = nested_params()
    g = jit_grad(params)

    @fast_jit
    def first_updates(g, p):
        first = lambda tx: tx.update(g, tx.init(p), p)[0]
        return first(gx.rprop(0.05)), first(optax.rprop(0.05))

    ours, theirs = first_updates(g, params)
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree.leaves(theirs))
    assert_trees_close(ours, jax.tree.map(lambda x: -0.05 * jnp.sign(x), g))


def test_amsgrad_max_raw_nu_matches_torch():
    # b2 = 0.9 lets the raw second moment fall, so that the running maximum binds.
    params = nested_params()
    theirs = _torch_trajectory(
        lambda ts: torch.optim.Adam(ts, lr=0.05, betas=(0.9, 0.9), amsgrad=True), params
    )
    ours = run(gx.amsgrad(0.05, b2=0.9, max_raw_nu=True), params, STEPS)
    assert_trees_close(ours, theirs)
    # ... and the two maxima really differ on this run.
    default = run(gx.amsgrad(0.05, b2=0.9), params, STEPS)
    assert max_gap(ours, default) > 1e-6


# --- dtypes ---------------------------------------------------------------------------

# name -> (builder with float32 moments, accessor of the float32 moment trees in the state)
MU_DTYPE_CASES = {
    "amsgrad": (lambda: gx.amsgrad(1e-2, mu_dtype=jnp.float32), lambda s: s[0].mu),
    "nadam": (lambda: gx.nadam(1e-2, mu_dtype=jnp.float32), None),
    "lion": (lambda: gx.lion(1e-3, mu_dtype=jnp.float32), lambda s: s[0].mu),
    "signum": (lambda: gx.signum(1e-2, accumulator_dtype=jnp.float32), lambda s: s[0].ema),
    "adafactor_momentum": (lambda: gx.adafactor(1e-2, momentum=0.9), lambda s: s[4].ema),
    "novograd": (
        lambda: gx.chain(gx.scale_by_novograd(mu_dtype=jnp.float32), gx.scale(-1e-2)),
        lambda s: s[0].mu,
    ),
    "optimistic_adam_v2": (lambda: gx.optimistic_adam_v2(1e-2, mu_dtype=jnp.float32), None),
}


@pytest.mark.parametrize("name", sorted(MU_DTYPE_CASES))
def test_bf16_params_with_f32_moments(name):
    build, moments = MU_DTYPE_CASES[name]
    assert_bf16_params_keep_f32_moments(build(), moments)


# --- hyperparameter checks -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "build"),
    [
        ("b1", lambda: gx.amsgrad(0.1, b1=1.0)),
        ("eps", lambda: gx.adamax(0.1, eps=-1.0)),
        ("b2", lambda: gx.radam(0.1, b2=1.5)),
        ("learning_rate", lambda: gx.yogi(-0.1)),
        ("b2", lambda: gx.lion(0.1, b2=-0.1)),
        ("eta_minus", lambda: gx.rprop(0.1, eta_minus=1.5)),
        ("eta_plus", lambda: gx.rprop(0.1, eta_plus=0.9)),
        ("min_step_size", lambda: gx.rprop(0.1, min_step_size=1.0, max_step_size=0.5)),
        ("b3", lambda: gx.adan(0.1, b3=1.0)),
        ("momentum", lambda: gx.sm3(0.1, momentum=1.0)),
        ("rho", lambda: gx.adadelta(rho=2.0)),
        ("b2", lambda: gx.novograd(0.1, b2=1.0)),
        ("mode", lambda: gx.scale_by_lion(mode="soft")),
        ("min_norm", lambda: gx.fromage(0.1, min_norm=-1.0)),
        ("momentum", lambda: gx.lars(0.1, momentum=-0.5)),
        ("momentum", lambda: gx.adafactor(momentum=1.0)),
        ("clipping_threshold", lambda: gx.adafactor(clipping_threshold=0.0)),
        ("beta", lambda: gx.signum(0.1, beta=1.0)),
    ],
)
def test_rejects_out_of_range_hyperparameters(argument, build):
    with pytest.raises(ValueError, match="^" + re.escape(f"{argument} must ")):
        build()


# --- extreme magnitudes --------------------------------------------------------------

ADAPTIVE = [
    "adabelief", "adadelta", "adafactor", "adamax", "ademamix", "adan", "adopt", "amsgrad",
    "novograd", "prodigy", "radam", "simplified_ademamix", "sm3", "yogi",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(jnp.float16, 1e-3), (jnp.float32, 1e30)],
    ids=["float16_small", "float32_huge"],
)
def test_state_and_updates_stay_finite(dtype, scale):
    """float16 squares of 1e-3 underflow and float32 squares of 1e30 overflow: the
    catalogue's adaptive optimizers compute in at least float32 and saturate their moments,
    so finite gradients give finite updates and state (all in one compiled program)."""

    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 2)), dtype),
        "b": jnp.asarray(rng.normal(size=(4,)), dtype),
        "s": jnp.asarray(rng.normal(), dtype),
    }
    grads = jax.tree.map(
        lambda x: jnp.asarray(scale * rng.normal(size=(3, *x.shape)), dtype), params
    )

    def run_all(params, grads):
        out = {}
        for name in ADAPTIVE:
            tx = OPTIMIZERS[name]()

            def step(carry, g, tx=tx):
                p, state = carry
                u, state = tx.update(g, state, p)
                return (gx.apply_updates(p, u), state), u

            (_, state), u = jax.lax.scan(step, (params, tx.init(params)), grads)
            out[name] = (u, state)
        return out

    results = compiled_call(run_all, params, grads)
    bad = [
        name
        for name, tree in results.items()
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.floating)
        and not np.all(np.isfinite(np.asarray(x, np.float32)))
    ]
    assert not bad, sorted(set(bad))
