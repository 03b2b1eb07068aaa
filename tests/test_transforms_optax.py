"""sgd, adam, their moment primitives, and the primitives and combinators (clipping, scaling,
noise, accumulation, conditions, structure, hyperparameter injection, monitoring) against optax.

Each case is built twice from the same arguments, once from gradxform and once from
optax, and run for 100 steps in float64 on the nested mixed-shape tree (rel err 1e-9).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from paired import assert_same_trajectory, compiled_call, trajectories
from reference import assert_trees_close, grad_fn, nested_params, run
from transform_cases import COMBINATORS, PRIMITIVES, SGD_ADAM_AND_MOMENTS


@pytest.mark.parametrize("name", sorted(SGD_ADAM_AND_MOMENTS))
def test_sgd_adam_and_moments_match_optax(name):
    build = SGD_ADAM_AND_MOMENTS[name]
    assert_same_trajectory(build(gx), build(optax))


def test_bias_correction_primitive_equals_debiased_ema():
    ours = gx.chain(gx.ema(0.9, debias=False), gx.bias_correction(0.9), gx.scale(-0.05))
    assert_same_trajectory(ours, optax.chain(optax.ema(0.9), optax.scale(-0.05)))


def test_textbook_momentum_forms():
    assert_same_trajectory(gx.momentum(0.02, 0.9), optax.sgd(0.02, momentum=0.9))
    assert_same_trajectory(
        gx.ema_momentum(0.05, 0.8),
        optax.chain(optax.ema(0.8, debias=False), optax.scale(-0.05)),
    )


def test_learning_rate_none_still_descends():
    # optax's scale_by_learning_rate(None) is the identity and climbs; ours flips the sign.
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, -0.25])}
    ours, _ = gx.scale_by_learning_rate().update(grads, (), params)
    theirs, _ = optax.scale_by_learning_rate(1.0).update(grads, optax.EmptyState(), params)
    assert float(ours["w"][0]) == float(theirs["w"][0]) == -0.5
    assert float(ours["w"][1]) == float(theirs["w"][1]) == 0.25


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitive_matches_optax(name):
    build = PRIMITIVES[name]
    assert_same_trajectory(build(gx), build(optax))


@pytest.mark.parametrize("name", sorted(COMBINATORS))
def test_combinator_matches_optax(name):
    build = COMBINATORS[name]
    assert_same_trajectory(build(gx), build(optax))


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_matches_optax(reset_state):
    def build(m):
        return m.lookahead(m.adam(0.05), sync_period=4, slow_step_size=0.5, reset_state=reset_state)

    # The optimizers see (fast, slow) as a plain pair; gradients are taken at the fast one.
    start = tuple(gx.LookaheadParams.init_synced(nested_params()))
    ours, theirs = trajectories(
        _as_pair(build(gx), gx.LookaheadParams),
        _as_pair(build(optax), optax.LookaheadParams),
        start,
        grads=lambda p: grad_fn(p[0]),
    )
    assert_trees_close(ours, theirs)
    # Every 4th step the fast weights equal the slow ones; in between they differ.
    gaps = jax.tree.map(
        lambda f, s: np.abs(np.asarray(f - s)).max(axis=tuple(range(1, f.ndim))), *ours
    )
    gaps = np.max(np.stack(jax.tree.leaves(gaps)), axis=0)
    assert np.all(gaps[3::4] < 1e-12)
    assert np.all(gaps[0::4] > 1e-6)


def _as_pair(tx, params_type):
    """``tx`` on a plain ``(fast, slow)`` tuple instead of its own params type."""

    def update(updates, state, params=None, **extra):
        out, state = tx.update(updates, state, params_type(*params), **extra)
        return tuple(out), state

    return gx.GradientTransformation(lambda p: tx.init(params_type(*p)), update)


def test_optax_and_gradxform_transformations_chain_both_ways():
    reference = optax.chain(
        optax.clip_by_global_norm(2.0), optax.scale_by_adam(), optax.scale(-0.05)
    )
    gx_outer = gx.chain(optax.clip_by_global_norm(2.0), gx.scale_by_adam(), optax.scale(-0.05))
    optax_outer = optax.chain(gx.clip_by_global_norm(2.0), optax.scale_by_adam(), gx.scale(-0.05))
    # Wrappers take foreign transformations too.
    gx_wrapper = gx.MultiSteps(optax.adam(0.1), 2).gradient_transformation()
    optax_wrapper = optax.MultiSteps(optax.adam(0.1), 2).gradient_transformation()
    runs = compiled_call(
        lambda p: [
            run(t, p) for t in (gx_outer, optax_outer, reference, gx_wrapper, optax_wrapper)
        ],
        nested_params(),
    )
    assert_trees_close(runs[0], runs[2])
    assert_trees_close(runs[1], runs[2])
    assert_trees_close(runs[3], runs[4])


def test_monitor_records_what_optax_records():
    # optax's monitor state changes structure after init (its scan would fail), so the
    # measurements are compared step by step, eagerly.
    def build(m):
        return m.chain(
            m.sgd(0.02, momentum=0.9),
            m.monitor(
                {
                    "norm": optax.tree.norm,
                    "clipped": m.measure_with_ema(lambda u: optax.tree.norm(u) > 0.9, 0.9),
                }
            ),
            m.clip_by_global_norm(0.3),
        )

    def six_steps(tx, p):
        s, seen = tx.init(p), []
        for _ in range(6):  # unrolled: optax's state changes structure after init
            u, s = tx.update(grad_fn(p), s, p)
            p = jax.tree.map(lambda a, b: a + b, p, u)
            seen.append((p, s[1].measurements))
        return seen

    ours, theirs = compiled_call(
        lambda p: (six_steps(build(gx), p), six_steps(build(optax), p)), nested_params()
    )
    assert_trees_close(ours, theirs)
    # Two of six steps were under the threshold: the debiased average is strictly between.
    assert 0.1 < float(ours[-1][1]["clipped"]) < 0.9


def test_inject_hyperparams_hand_edit_matches_optax():
    def build(m):
        return m.inject_hyperparams(m.adam)(learning_rate=0.1, b2=0.99)

    def six_steps(tx, p):
        s = tx.init(p)
        for step in range(6):
            if step == 3:
                s.hyperparams["learning_rate"] = 0.01
                s.hyperparams["b2"] = jnp.asarray(0.9)
            u, s = tx.update(grad_fn(p), s, p)
            p = jax.tree.map(lambda a, b: a + b, p, u)
        return p, s.hyperparams

    (p, ours), (q, theirs) = compiled_call(
        lambda p: (six_steps(build(gx), p), six_steps(build(optax), p)), nested_params()
    )
    assert_trees_close(p, q)
    assert_trees_close(ours, theirs)
    assert float(ours["learning_rate"]) == 0.01


def test_per_example_clipping_matches_optax():
    rng = np.random.default_rng(1)
    grads = {
        "a": jnp.asarray(rng.normal(size=(6, 3))),
        "b": [jnp.asarray(rng.normal(size=(6, 2, 2)))],
    }

    def all_clips(m, grads):
        return [
            (
                m.per_example_global_norm_clip(grads, c),
                m.per_example_layer_norm_clip(grads, c, True),
                m.per_example_layer_norm_clip(grads, c, False),
            )
            for c in (0.0, 1.5, 3.0, np.inf)
        ]

    assert_trees_close(*compiled_call(lambda g: (all_clips(gx, g), all_clips(optax, g)), grads))
    # 3 of 6 examples have a global norm above the median, so 3 are clipped.
    norms = np.sqrt(
        sum(
            np.sum(np.asarray(g) ** 2, axis=tuple(range(1, g.ndim))) for g in jax.tree.leaves(grads)
        )
    )
    _, clipped = gx.per_example_global_norm_clip(grads, float(np.median(norms)))
    assert int(clipped) == 3


@pytest.mark.parametrize(("shape", "axis"), [((4, 3), None), ((2, 3, 4, 5), None), ((3, 4), 1)])
def test_unitwise_norm_matches_optax(shape, axis):
    x = jnp.asarray(np.random.default_rng(2).normal(size=shape))
    np.testing.assert_allclose(
        gx.unitwise_norm(x, axis), optax.transforms._clipping.unitwise_norm(x, axis), rtol=1e-12
    )


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_tree_vdot_matches_optax(dtype):
    """``gx.tree.vdot`` sums ``conj(x) * y`` per leaf (no ravel); optax ravels and dots."""
    rng = np.random.default_rng(3)

    def tree():
        def leaf(*shape):
            x = rng.normal(size=shape)
            if jnp.issubdtype(dtype, jnp.complexfloating):
                x = x + 1j * rng.normal(size=shape)
            return jnp.asarray(x, dtype)

        return {"m": leaf(4, 3), "s": leaf(), "v": [leaf(5), leaf(2, 1, 3)]}

    x, y = tree(), tree()
    ours, theirs = gx.tree.vdot(x, y), optax.tree.vdot(x, y)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    assert abs(complex(ours)) > 1.0
