"""The frontier optimizers against optax.contrib 0.2.8: 100 steps on the nested mixed-shape
pytree in float64, rel 1e-9 (one jit per comparison, as in test_optimizers_optax)."""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib as oc
import pytest

import gradxform as gx
from gradxform import contrib as gxc
from paired import assert_bf16_params_keep_f32_moments, assert_same_trajectory, compiled_call
from reference import assert_trees_close, grad_fn, loss, max_gap, nested_params

STEPS = 100


def dims_3d(module):
    """Muon on the rank-3 leaf too, as (fan_in=2) x (fan_out=3*2); rank < 2 to Adam."""

    def dims(params):
        def leaf(x):
            if x.ndim == 3:
                return module.MuonDimensionNumbers(0, (1, 2))
            return module.MuonDimensionNumbers() if x.ndim == 2 else None

        return jax.tree.map(leaf, params)

    return dims


# optax's warmup_constant_schedule returns float32 for an int32 count even under x64, so
# the warmup options are compared against optax's construction with a float64 schedule.
WARMUP = gx.schedules.warmup_constant_schedule(0.0, 0.1, 10)

# The same non-default options for both libraries' muon.
MUON_OPTIONS: dict[str, Any] = {
    "beta": 0.9,
    "weight_decay": 0.1,
    "nesterov": False,
    "adaptive": True,
    "adam_b1": 0.8,
    "adam_weight_decay": 0.01,
    "adam_learning_rate": 0.01,
    "consistent_rms": 0.2,
}

CASES = {
    "muon": (lambda: gxc.muon(0.02), lambda: oc.muon(0.02)),
    "muon_options": (
        lambda: gxc.muon(0.02, "dion", **MUON_OPTIONS),
        lambda: oc.muon(0.02, "dion", **MUON_OPTIONS),
    ),
    "muon_spectral": (
        lambda: gxc.muon(0.02, preconditioning="spectral"),
        lambda: oc.muon(0.02, preconditioning="spectral"),
    ),
    "muon_aol": (
        lambda: gxc.muon(0.02, preconditioning="aol"),
        lambda: oc.muon(0.02, preconditioning="aol"),
    ),
    "muon_schatten": (
        lambda: gxc.muon(0.02, preconditioning="schatten"),
        lambda: oc.muon(0.02, preconditioning="schatten"),
    ),
    "muon_dimension_numbers": (
        lambda: gxc.muon(0.02, muon_weight_dimension_numbers=dims_3d(gxc)),
        lambda: oc.muon(0.02, muon_weight_dimension_numbers=dims_3d(oc)),
    ),
    "schedule_free_sgd": (lambda: gxc.schedule_free_sgd(0.1), lambda: oc.schedule_free_sgd(0.1)),
    "schedule_free_sgd_warmup_weight_decay": (
        lambda: gxc.schedule_free_sgd(0.1, warmup_steps=10, b1=0.8, weight_decay=0.1),
        lambda: oc.schedule_free(
            optax.chain(optax.add_decayed_weights(0.1), optax.sgd(WARMUP)), WARMUP, b1=0.8
        ),
    ),
    "schedule_free_adamw": (
        lambda: gxc.schedule_free_adamw(0.05),
        lambda: oc.schedule_free_adamw(0.05),
    ),
    "schedule_free_adamw_options": (
        lambda: gxc.schedule_free_adamw(0.05, None, 0.8, 0.99, 1e-6, 0.1, 1.0),
        lambda: oc.schedule_free_adamw(0.05, None, 0.8, 0.99, 1e-6, 0.1, 1.0),
    ),
    "schedule_free_adamw_warmup": (
        lambda: gxc.schedule_free_adamw(0.1, warmup_steps=10),
        lambda: oc.schedule_free(
            optax.chain(
                optax.scale_by_rms(0.999, 1e-8, eps_in_sqrt=False, bias_correction=True),
                optax.add_decayed_weights(0.0),
                optax.scale_by_learning_rate(WARMUP),
            ),
            WARMUP,
        ),
    ),
    "prodigy": (lambda: gxc.prodigy(), lambda: oc.prodigy()),
    "prodigy_options": (
        lambda: gxc.prodigy(0.5, (0.8, 0.99), 0.9, 1e-6, 1e-5, 2.0, 0.1, True),
        lambda: oc.prodigy(0.5, (0.8, 0.99), 0.9, 1e-6, 1e-5, 2.0, 0.1, True),
    ),
    "prodigy_schedule": (
        lambda: gxc.prodigy(lambda c: 1.0 / (1.0 + 0.01 * c)),
        lambda: oc.prodigy(lambda c: 1.0 / (1.0 + 0.01 * c)),
    ),
    "adopt": (lambda: gxc.adopt(0.05), lambda: oc.adopt(0.05)),
    "adopt_options": (
        lambda: gxc.adopt(0.05, b2=0.99, nesterov=True, use_clipping=False),
        lambda: oc.adopt(0.05, b2=0.99, nesterov=True, use_clipping=False),
    ),
    "ademamix": (lambda: gxc.ademamix(0.02), lambda: oc.ademamix(0.02)),
    "ademamix_schedules_weight_decay": (
        lambda: gxc.ademamix(
            0.02, b3=lambda c: 0.9 + 0.0009 * c, alpha=lambda c: 0.05 * c, weight_decay=0.1
        ),
        lambda: oc.ademamix(
            0.02, b3=lambda c: 0.9 + 0.0009 * c, alpha=lambda c: 0.05 * c, weight_decay=0.1
        ),
    ),
    "simplified_ademamix": (
        lambda: gxc.simplified_ademamix(0.005, alpha=2.0, weight_decay=0.1),
        lambda: oc.simplified_ademamix(0.005, alpha=2.0, weight_decay=0.1),
    ),
    "sophia": (
        lambda: gxc.sophia(0.02, update_interval=3),
        lambda: oc.sophia(0.02, update_interval=3),
    ),
    "sophia_options": (
        lambda: gxc.sophia(0.02, 0.9, 0.95, gamma=0.1, clip_threshold=0.5, update_interval=1),
        lambda: oc.sophia(0.02, 0.9, 0.95, gamma=0.1, clip_threshold=0.5, update_interval=1),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_contrib(name):
    ours, theirs = CASES[name]
    if name.startswith("sophia"):
        assert_same_trajectory(ours(), theirs(), extra=lambda p: {"obj_fn": loss})
    else:
        assert_same_trajectory(ours(), theirs())


def test_optax_warmup_schedule_is_float32_under_x64():
    """Why the warmup cases above pass optax a float64 schedule."""
    count = jnp.asarray(1, jnp.int32)
    assert optax.warmup_constant_schedule(0.0, 0.1, 10)(count).dtype == jnp.float32
    assert WARMUP(count).dtype == jnp.float64


def test_schedule_free_eval_params_matches_optax():
    params = nested_params()

    def final(tx, eval_params):
        def step(carry, _):
            p, s = carry
            u, s = tx.update(grad_fn(p), s, p)
            return (jax.tree.map(jnp.add, p, u), s), None

        (p, s), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=20)
        return p, eval_params(s, p)

    (p_ours, x_ours), (_, x_theirs) = compiled_call(
        lambda: (
            final(gxc.schedule_free_adamw(0.05), gxc.schedule_free_eval_params),
            final(oc.schedule_free_adamw(0.05), oc.schedule_free_eval_params),
        )
    )
    assert_trees_close(x_ours, x_theirs)
    assert max_gap(x_ours, p_ours) > 1e-4  # the average is not the iterate
    with pytest.raises(ValueError, match="needs a ScheduleFreeState, got"):
        gxc.schedule_free_eval_params(gx.adam(0.1).init(params), params)


def test_prodigy_keeps_its_estimate_through_zero_gradients():
    """optax 0.2.8 takes 0 / 0 for d at a zero gradient, and every later update is NaN."""
    params = nested_params()
    zeros = jax.tree.map(jnp.zeros_like, params)

    def two_steps(tx):
        u, s = tx.update(zeros, tx.init(params), params)
        return u, tx.update(grad_fn(params), s, params)[0]

    (ours_0, ours_1), (theirs_0, _) = compiled_call(
        lambda: (two_steps(gxc.prodigy()), two_steps(oc.prodigy()))
    )
    assert all(np.all(np.asarray(u) == 0.0) for u in jax.tree.leaves(ours_0))
    assert all(np.all(np.isfinite(np.asarray(u))) for u in jax.tree.leaves(ours_1))
    assert max_gap(ours_1, zeros) > 0
    assert all(np.all(np.isnan(np.asarray(u))) for u in jax.tree.leaves(theirs_0))


def test_scale_by_muon_without_dimension_numbers_takes_every_leaf_as_a_matrix():
    """optax's scale_by_muon needs dimension numbers for a dict of matrices; here None works."""
    rng = np.random.default_rng(1)
    params = {"a": jnp.asarray(rng.normal(size=(3, 4))), "b": jnp.asarray(rng.normal(size=(5, 2)))}
    dims = {"a": oc.MuonDimensionNumbers(), "b": oc.MuonDimensionNumbers()}
    ours = gx.chain(gxc.scale_by_muon(), gx.scale(-0.02))
    theirs = optax.chain(oc.scale_by_muon(weight_dimension_numbers=dims), optax.scale(-0.02))
    assert_same_trajectory(ours, theirs, params=params)


def test_orthogonalize_keeps_singular_vectors_and_flattens_singular_values():
    """Closed form: NS maps x = U S V^T to U f(S) V^T, f(s) in about [0.7, 1.2] (Jordan et
    al. 2024), for the matrix and for its transpose alike."""
    coeffs = jnp.asarray((3.4445, -4.7750, 2.0315))
    for shape in [(4, 7), (7, 4)]:
        x = np.random.default_rng(2).normal(size=shape)
        o = np.asarray(gxc.orthogonalize_via_newton_schulz(jnp.asarray(x), coeffs))
        u, _, vt = np.linalg.svd(x, full_matrices=False)
        core = u.T @ o @ vt.T
        np.testing.assert_allclose(core - np.diag(np.diag(core)), 0.0, atol=1e-10)
        assert np.all(np.diag(core) > 0.6), np.diag(core)
        assert np.all(np.diag(core) < 1.25), np.diag(core)


# name -> (builder with float32 moments, accessor of the float32 moment tree)
MU_DTYPE_CASES = {
    "adopt": (lambda: gxc.adopt(1e-2, mu_dtype=jnp.float32), lambda s: s[0].mu),
    "ademamix": (lambda: gxc.ademamix(1e-2, mu_dtype=jnp.float32), lambda s: s[0].m2),
    "muon": (lambda: gxc.muon(1e-2, mu_dtype=jnp.float32), None),
    "schedule_free_adamw": (
        lambda: gxc.schedule_free_adamw(1e-2, state_dtype=jnp.float32),
        lambda s: s.z,
    ),
}


@pytest.mark.parametrize("name", sorted(MU_DTYPE_CASES))
def test_bf16_params_with_f32_moments(name):
    build, moments = MU_DTYPE_CASES[name]
    assert_bf16_params_keep_f32_moments(build(), moments)


@pytest.mark.parametrize(
    ("argument", "build"),
    [
        ("beta", lambda: gxc.muon(0.1, beta=1.0)),
        ("ns_coeffs", lambda: gxc.muon(0.1, ns_coeffs="fast")),
        ("preconditioning", lambda: gxc.muon(0.1, preconditioning="qr")),
        ("adam_b2", lambda: gxc.muon(0.1, adam_b2=1.0)),
        ("warmup_steps", lambda: gxc.schedule_free_sgd(0.1, warmup_steps=0)),
        ("betas[1]", lambda: gxc.prodigy(betas=(0.9, 1.0))),
        ("estim_lr0", lambda: gxc.prodigy(estim_lr0=0.0)),
        ("b2", lambda: gxc.adopt(0.1, b2=1.0)),
        ("b3", lambda: gxc.ademamix(0.1, b3=1.5)),
        ("b1", lambda: gxc.schedule_free_sgd(0.1, b1=0.0)),
        ("gamma", lambda: gxc.sophia(0.1, gamma=0.0)),
    ],
)
def test_rejects_out_of_range_hyperparameters(argument, build):
    with pytest.raises(ValueError, match="^" + re.escape(f"{argument} must ")):
        build()


@pytest.mark.parametrize(("every", "printed_steps"), [(0, []), (2, [2, 4])])
def test_sophia_prints_its_win_rate_every_n_steps_and_never_for_0(capfd, every, printed_steps):
    """optax documents 0 as off; n prints on the steps t (1-based) divisible by n."""
    tx = gxc.sophia(0.1, clip_threshold=0.5, verbose=True, print_win_rate_every_n_steps=every)
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    state = tx.init(params)
    obj = lambda p: jnp.sum(p["w"] ** 2)
    for step in range(1, 5):
        _, state = tx.update(jax.grad(obj)(params), state, params, obj_fn=obj)
        jax.effects_barrier()
        out = capfd.readouterr().out
        assert ("win rate" in out) == (step in printed_steps), (step, out)
    with pytest.raises((ValueError, TypeError)):
        gxc.sophia(0.1, print_win_rate_every_n_steps=-1)
