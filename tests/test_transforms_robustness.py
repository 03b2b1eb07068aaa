"""Primitives and combinators beyond plain trajectories.

Bad steps (NaN, Inf, huge gradients) leave params and state exactly unchanged and the
next good step continues as if the bad one never happened (checked against optax run
on the good steps only); float32 stays float32 and the state keeps its structure, shapes
and dtypes; ``vmap`` and ``grad`` through ``update`` agree with optax and with finite
differences; bad hyperparameters and mismatched trees raise errors naming the culprit.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from paired import compiled_call, fast_jit
from reference import assert_trees_close, grad_fn, loss, nested_params
from transform_cases import COMBINATORS, PRIMITIVES

CASES = {**PRIMITIVES, **COMBINATORS}


def random_grads(steps, seed=1, dtype=jnp.float64):
    """A fixed sequence of gradient trees, independent of the params."""
    return [nested_params(dtype, seed=seed + k) for k in range(steps)]


def poisoned(grads, value):
    """``grads`` with one element of one leaf (``conv[1]``, 0-d) replaced by ``value``."""
    leaves, treedef = jax.tree.flatten(grads)
    leaves[1] = leaves[1].reshape(-1).at[0].set(value).reshape(leaves[1].shape)
    return jax.tree.unflatten(treedef, leaves)


def assert_bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype
        assert x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def drive(tx, grads_seq, params=None):
    """Feeds a gradient sequence through one compiled step; returns each (params, state)."""

    @fast_jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s

    p = nested_params() if params is None else params
    s = tx.init(p)
    out = []
    for g in grads_seq:
        p, s = step(p, s, g)
        out.append((p, s))
    return out


# --- non-finite steps ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_apply_if_finite_skips_a_bad_step_exactly_and_recovers(bad):
    g = random_grads(4)
    seq = [g[0], g[1], poisoned(g[2], bad), g[2], g[3]]
    ours = drive(gx.apply_if_finite(gx.adam(0.1), 2), seq)
    (p1, s1), (p2, s2) = ours[1], ours[2]
    assert_bitwise_equal(p2, p1)
    assert_bitwise_equal(s2.inner_state, s1.inner_state)
    assert (int(s2.notfinite_count), bool(s2.last_finite), int(s2.total_notfinite)) == (1, False, 1)
    # The good steps alone, through plain optax adam.
    good_only = drive(optax.adam(0.1), [g[0], g[1], g[2], g[3]])
    p_end, s_end = ours[-1]
    assert_trees_close(p_end, good_only[-1][0], rtol=1e-12)
    assert (int(s_end.notfinite_count), bool(s_end.last_finite), int(s_end.total_notfinite)) == (
        0,
        True,
        1,
    )
    # The state's types never changed.
    assert jax.tree.map(jnp.result_type, s2) == jax.tree.map(jnp.result_type, s1)


def test_apply_if_finite_gives_up_after_max_consecutive_errors_like_optax():
    g = random_grads(2)
    bad = poisoned(g[1], np.nan)
    seq = [g[0], bad, bad, bad, g[1]]
    ours = drive(gx.apply_if_finite(gx.adam(0.1), 2), seq)
    theirs = drive(optax.apply_if_finite(optax.adam(0.1), 2), seq)
    for (p, s), (q, t) in zip(ours, theirs):
        assert_trees_close(p, q)  # NaN where optax has NaN
        assert (int(s.notfinite_count), bool(s.last_finite), int(s.total_notfinite)) == (
            int(t.notfinite_count),
            bool(t.last_finite),
            int(t.total_notfinite),
        )
    assert_bitwise_equal(ours[2][0], ours[0][0])  # two rejections
    assert np.isnan(np.asarray(ours[3][0]["conv"][1]))  # the third is applied


def test_zero_nans_leaves_params_unchanged_on_an_all_nan_step():
    g = random_grads(2)
    all_nan = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), g[0])
    ours = drive(gx.chain(gx.zero_nans(), gx.sgd(0.1)), [g[0], all_nan, g[1]])
    assert_bitwise_equal(ours[1][0], ours[0][0])
    assert all(bool(f) for f in jax.tree.leaves(ours[1][1][0].found_nan))
    assert not any(bool(f) for f in jax.tree.leaves(ours[2][1][0].found_nan))
    assert_trees_close(ours[2][0], drive(optax.sgd(0.1), [g[0], g[1]])[-1][0], rtol=1e-12)


def test_zero_nans_zeroes_only_the_nans_like_optax():
    g = random_grads(3)
    seq = [poisoned(g[0], np.nan), g[1], poisoned(g[2], np.inf)]
    ours = drive(gx.chain(gx.zero_nans(), gx.adam(0.1)), seq)
    theirs = drive(optax.chain(optax.zero_nans(), optax.adam(0.1)), seq)
    for (p, s), (q, t) in zip(ours, theirs):
        assert_trees_close(p, q)
        assert_trees_close(s[0].found_nan, t[0].found_nan)
    # Inf is not a NaN: it passes (and Adam turns it into a NaN step, as in optax).
    assert [bool(ours[k][1][0].found_nan["conv"][1]) for k in range(3)] == [True, False, False]
    assert not np.isfinite(np.asarray(ours[2][0]["conv"][1]))


@pytest.mark.parametrize(
    ("make_skip", "bad"),
    [
        (lambda m: m.skip_not_finite, np.nan),
        (lambda m: m.skip_not_finite, np.inf),
        (lambda m: functools.partial(m.skip_large_updates, max_squared_norm=1e6), 1e4),
    ],
    ids=["not_finite_nan", "not_finite_inf", "large"],
)
def test_multi_steps_skips_a_bad_mini_step_exactly(make_skip, bad):
    def build(m, skip=True):
        skip_fn = make_skip(m) if skip else None
        return m.MultiSteps(
            m.adam(0.1), 2, should_skip_update_fn=skip_fn, accumulator_dtype=jnp.float64
        )

    g = random_grads(4)
    seq = [g[0], poisoned(g[1], bad), g[1], g[2], g[3]]
    ours = drive(build(gx), seq)
    (p0, s0), (p1, s1) = ours[0], ours[1]
    assert_bitwise_equal(p1, p0)
    assert_bitwise_equal(s1._replace(skip_state=()), s0._replace(skip_state=()))
    assert bool(s1.skip_state["should_skip"])
    # The same sequence through optax's MultiSteps, and the good steps alone.
    theirs = drive(build(optax), seq)
    good_only = drive(build(optax, skip=False), [g[0], g[1], g[2], g[3]])
    for (p, s), (q, t) in zip(ours, theirs):
        assert_trees_close(p, q)
        # Same values; gradxform keeps its counts int32 whatever the x64 setting.
        assert jax.tree.map(float, s.skip_state) == jax.tree.map(float, t.skip_state)
    assert_trees_close(ours[-1][0], good_only[-1][0], rtol=1e-12)
    assert int(ours[-1][1].gradient_step) == 2


# --- float32, stable state, vmap, grad ---------------------------------------------


def _steps(tx, p, n=3):
    s = tx.init(p)
    out = []
    for _ in range(n):
        u, s = tx.update(grad_fn(p), s, p)
        p = jax.tree.map(lambda a, b: a + b, p, u)
        out.append((p, u, s))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_stays_float32_and_state_keeps_its_types(name):
    # Dtypes and shapes are fixed at trace time: eval_shape checks them without compiling.
    tx = CASES[name](gx)
    p32 = nested_params(jnp.float32)
    initial = jax.eval_shape(tx.init, p32)
    for p, u, s in jax.eval_shape(lambda p: _steps(tx, p), p32):
        assert {x.dtype for x in jax.tree.leaves((p, u))} == {jnp.dtype(jnp.float32)}
        assert jax.tree.structure(s) == jax.tree.structure(initial)
        assert jax.tree.leaves(s) == jax.tree.leaves(initial)  # shapes and dtypes


@pytest.mark.parametrize("hyperparam_dtype", [None, np.dtype("float32"), jnp.float16])
def test_injected_hyperparams_keep_their_dtype_without_params(hyperparam_dtype):
    tx = gx.inject_hyperparams(gx.sgd, hyperparam_dtype=hyperparam_dtype)(
        learning_rate=lambda c: 0.1 / (1 + c), momentum=0.9
    )
    p32 = nested_params(jnp.float32)
    want = jnp.dtype(jnp.float32 if hyperparam_dtype is None else hyperparam_dtype)
    state = tx.init(p32)
    assert {v.dtype for v in state.hyperparams.values()} == {want}
    # optax re-derives the dtype from update's params, the default float when absent.
    _, after = jax.eval_shape(lambda g, s: tx.update(g, s), p32, state)
    assert {v.dtype for v in after.hyperparams.values()} == {want}


# Those whose batching or differentiation is not plain element-wise arithmetic:
# selects, conds, per-leaf norms, random keys, unrolled schedules.
TRANSFORM_CASES = [
    "clip_by_global_norm",
    "adaptive_grad_clip",
    "scale_by_trust_ratio_options",
    "add_noise",
    "zero_nans",
    "keep_params_nonnegative",
    "multi_steps",
    "apply_if_finite",
    "inject_schedule",
    "conditionally_mask",
]


@pytest.mark.parametrize("name", TRANSFORM_CASES)
def test_vmap_and_grad_through_update_match_optax(name):
    batch = [nested_params(seed=s) for s in (0, 5)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batch)
    g1, g2 = random_grads(2, seed=11)
    weights = nested_params(seed=21)

    def final_params(module, p):
        return _steps(CASES[name](module), p)[-1][0]

    def objective(module, g, p):
        tx = CASES[name](module)
        s = tx.init(p)
        _, s = tx.update(g1, s, p)
        _, s = tx.update(g1, s, p)
        u, s = tx.update(g, s, p)  # the third step: accumulators emit, masks let it through
        return sum(jnp.vdot(w, x) for w, x in zip(jax.tree.leaves(weights), jax.tree.leaves(u)))

    def both(stacked, batch, g, p):
        ours_vmap = jax.vmap(functools.partial(final_params, gx))(stacked)
        theirs_vmap = [final_params(optax, q) for q in batch]
        ours_grad = jax.grad(functools.partial(objective, gx), argnums=(0, 1))(g, p)
        theirs_grad = jax.grad(functools.partial(objective, optax), argnums=(0, 1))(g, p)
        return ours_vmap, theirs_vmap, ours_grad, theirs_grad

    ours_vmap, theirs_vmap, ours_grad, theirs_grad = compiled_call(
        both, stacked, batch, g2, nested_params()
    )
    assert_trees_close(ours_vmap, jax.tree.map(lambda *xs: jnp.stack(xs), *theirs_vmap))
    assert_trees_close(ours_grad, theirs_grad)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(ours_grad)) > 0


def test_meta_gradient_through_injected_hyperparams_matches_finite_differences():
    def final_loss(lr, max_norm):
        tx = gx.chain(
            gx.clip_by_global_norm(max_norm),
            gx.inject_hyperparams(gx.sgd)(learning_rate=0.1, momentum=0.5),
        )
        p = nested_params()
        s = tx.init(p)
        s[1].hyperparams["learning_rate"] = lr
        for _ in range(4):
            u, s = tx.update(grad_fn(p), s, p)
            p = gx.apply_updates(p, u)
        return loss(p)

    lr, max_norm, h = 0.05, 3.0, 1e-6
    grads = fast_jit(jax.grad(final_loss, argnums=(0, 1)))(lr, max_norm)
    f = fast_jit(final_loss)
    fd_lr = (f(lr + h, max_norm) - f(lr - h, max_norm)) / (2 * h)
    fd_norm = (f(lr, max_norm + h) - f(lr, max_norm - h)) / (2 * h)
    np.testing.assert_allclose(grads, (fd_lr, fd_norm), rtol=1e-6)
    assert abs(float(grads[0])) > 1e-3
    assert abs(float(grads[1])) > 1e-3


# --- validation ---------------------------------------------------------------------


def _sgd():
    return gx.sgd(0.1)


BAD_HYPERPARAMETERS = [
    ("max_delta", lambda: gx.clip(-1.0)),
    ("max_norm", lambda: gx.clip_by_global_norm(0.0)),
    ("threshold", lambda: gx.clip_by_block_rms(-2.0)),
    ("clipping", lambda: gx.adaptive_grad_clip(0.0)),
    ("eps", lambda: gx.adaptive_grad_clip(0.1, eps=-1e-3)),
    ("l2_norm_clip", lambda: gx.per_example_global_norm_clip({"a": jnp.ones((2, 3))}, -1.0)),
    ("global_l2_norm_clip", lambda: gx.per_example_layer_norm_clip({"a": jnp.ones((2, 3))}, -1.0)),
    ("initial_accumulator_value", lambda: gx.scale_by_rss(-0.1)),
    ("eps", lambda: gx.scale_by_rss(eps=float("nan"))),
    ("decay", lambda: gx.scale_by_stddev(decay=1.0)),
    ("eps", lambda: gx.scale_by_stddev(eps=-1.0)),
    ("initial_scale", lambda: gx.scale_by_stddev(initial_scale=-1.0)),
    ("min_norm", lambda: gx.scale_by_trust_ratio(min_norm=-1.0)),
    ("trust_coefficient", lambda: gx.scale_by_trust_ratio(trust_coefficient=-0.5)),
    ("eps", lambda: gx.scale_by_trust_ratio(eps=-1.0)),
    ("eta", lambda: gx.add_noise(-0.1, 0.55, 0)),
    ("gamma", lambda: gx.add_noise(0.1, float("inf"), 0)),
    ("k", lambda: gx.apply_every(0)),
    ("every_k_schedule", lambda: gx.MultiSteps(_sgd(), 0)),
    ("sync_period", lambda: gx.lookahead(_sgd(), 0, 0.5)),
    ("slow_step_size", lambda: gx.lookahead(_sgd(), 5, 1.5)),
    ("max_consecutive_errors", lambda: gx.apply_if_finite(_sgd(), -1)),
    ("decay", lambda: gx.measure_with_ema(gx.tree.norm, 1.0)),
    ("max_squared_norm", lambda: gx.skip_large_updates({"a": jnp.ones(2)}, 0, None, -1.0)),
    ("static_args", lambda: gx.inject_hyperparams(gx.adam, static_args="nope")),
    ("b1", lambda: gx.inject_hyperparams(gx.adam)(learning_rate=0.1, b1=1.5)),
    ("learning_rate", lambda: gx.inject_hyperparams(gx.sgd)(learning_rate=lambda c: -1.0 + 0 * c)),
]


@pytest.mark.parametrize(
    ("argument", "build"),
    BAD_HYPERPARAMETERS,
    ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_HYPERPARAMETERS)],
)
def test_bad_hyperparameter_raises_value_error_naming_it(argument, build):
    with pytest.raises(ValueError, match=argument):
        build()


@pytest.mark.parametrize(
    ("argument", "build"),
    # Each call passes a wrongly typed argument on purpose.
    [
        ("every_k_schedule", lambda: gx.MultiSteps(_sgd(), 2.5)),  # type: ignore[arg-type]
        ("k", lambda: gx.apply_every(True)),
        ("sync_period", lambda: gx.lookahead(_sgd(), 1.5, 0.5)),  # type: ignore[arg-type]
        ("max_consecutive_errors", lambda: gx.apply_if_finite(_sgd(), 2.0)),  # type: ignore[arg-type]
        ("should_transform_fn", lambda: gx.conditionally_mask(_sgd(), 3)),  # type: ignore[arg-type]
        ("measure", lambda: gx.snapshot("x", 3)),  # type: ignore[arg-type]
    ],
)
def test_wrongly_typed_hyperparameter_raises_type_error_naming_it(argument, build):
    with pytest.raises(TypeError, match=argument):
        build()


def test_schedules_and_traced_values_are_accepted_unchecked():
    """What cannot be checked when the transformation is built (a schedule, a traced value)
    is accepted and used as optax uses it."""
    grads = [{"a": jnp.array([1.0, -2.0, 0.5])}, {"a": jnp.array([3.0, 0.0, -1.0])}]
    params = {"a": jnp.zeros(3)}
    # Accumulation length from a schedule: the mean of two gradients every second step.
    ours = gx.MultiSteps(_sgd(), lambda step: 2)
    theirs = optax.MultiSteps(optax.sgd(0.1), lambda step: 2)
    state_ours, state_theirs = ours.init(params), theirs.init(params)
    for g in grads:
        u_ours, state_ours = ours.update(g, state_ours, params)
        u_theirs, state_theirs = theirs.update(g, state_theirs, params)
        assert_trees_close(u_ours, u_theirs, rtol=1e-12)
    np.testing.assert_allclose(u_ours["a"], -0.1 * np.array([2.0, -1.0, -0.25]), rtol=1e-12)
    # A traced clipping threshold goes unchecked: -1 scales by -1 / norm, as in optax.
    clip = jax.jit(
        lambda c, tx: tx(c).update({"a": jnp.ones(3)}, tx(c).init(params))[0]["a"], static_argnums=1
    )
    np.testing.assert_allclose(
        clip(-1.0, gx.clip_by_global_norm), -np.ones(3) / np.sqrt(3), rtol=1e-12
    )
    np.testing.assert_allclose(
        clip(-1.0, gx.clip_by_global_norm), clip(-1.0, optax.clip_by_global_norm), rtol=1e-12
    )
    # A learning-rate schedule inside inject_hyperparams: 0.1, then 0.05.
    tx = gx.inject_hyperparams(gx.sgd)(learning_rate=lambda c: 0.1 / (1 + c))
    state = tx.init(params)
    for g, lr in zip(grads, (0.1, 0.05)):
        u, state = tx.update(g, state, params)
        np.testing.assert_allclose(u["a"], -lr * g["a"], rtol=1e-12)


# --- tree structure mismatch --------------------------------------------------------

NEEDS_MATCHING_TREES = {
    "scale_by_rss": lambda: gx.scale_by_rss(),
    "scale_by_stddev": lambda: gx.scale_by_stddev(),
    "zero_nans": lambda: gx.zero_nans(),
    "apply_every": lambda: gx.apply_every(2),
    "multi_steps": lambda: gx.MultiSteps(gx.adam(0.1), 2).gradient_transformation(),
    "adaptive_grad_clip": lambda: gx.adaptive_grad_clip(0.1),
    "scale_by_trust_ratio": lambda: gx.scale_by_trust_ratio(),
    "keep_params_nonnegative": lambda: gx.keep_params_nonnegative(),
}


@pytest.mark.parametrize("name", sorted(NEEDS_MATCHING_TREES))
def test_tree_mismatch_names_both_structures(name):
    tx = NEEDS_MATCHING_TREES[name]()
    params = nested_params()
    state = tx.init(params)
    wrong = {k: v for k, v in params.items() if k != "head"}
    with pytest.raises(ValueError, match="tree structure does not match") as info:
        tx.update(wrong, state, params)
    message = str(info.value)
    assert str(jax.tree.structure(wrong)) in message
    assert str(jax.tree.structure(params)) in message


def test_lookahead_mismatch_names_both_structures():
    tx = gx.lookahead(gx.sgd(0.1), 2, 0.5)
    params = gx.LookaheadParams.init_synced(nested_params())
    state = tx.init(params)
    wrong = nested_params()["dense"]
    with pytest.raises(ValueError, match="tree structure does not match the fast params") as info:
        tx.update(wrong, state, params)
    assert str(jax.tree.structure(wrong)) in str(info.value)
    assert str(jax.tree.structure(params.fast)) in str(info.value)
