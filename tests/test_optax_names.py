"""optax's remaining public names and state access by name, checked against optax."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from paired import assert_same_trajectory
from reference import assert_trees_close, nested_params


def test_namespaces_are_attributes():
    for name in ("projections", "torch_optim", "schedules", "tree"):
        assert getattr(gx, name).__name__ == f"gradxform.{name}"


def test_gradient_transformation_extra_args_is_the_one_type():
    tx = gx.with_extra_args_support(optax.scale(2.0))  # optax's update takes no **extra
    assert isinstance(tx, gx.GradientTransformationExtraArgs)
    out, _ = tx.update({"a": jnp.ones(2)}, tx.init({"a": jnp.ones(2)}), loss=1.0)
    np.testing.assert_array_equal(out["a"], 2.0)
    assert gx.init_empty_state({"a": 1.0}) == gx.EmptyState()


def test_stateful_schedule_protocol():
    class Halving:
        def init(self):
            return jnp.asarray(1.0)

        def update(self, state, **extra):
            return state / 2

        def __call__(self, state, **extra):
            return state

    assert isinstance(Halving(), gx.StatefulSchedule)
    assert not isinstance(lambda t: t, gx.StatefulSchedule)
    assert isinstance(Halving(), optax.schedules.StatefulSchedule)  # both read it the same way


def test_optimistic_adam_matches_optax():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ours, theirs = gx.optimistic_adam(1e-2, 0.5), optax.optimistic_adam(1e-2, 0.5)
    assert_same_trajectory(ours, theirs, steps=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="schedule"):
            gx.optimistic_adam(lambda t: 1e-2)


def test_normalize_by_update_norm_matches_optax():
    make = lambda m: m.normalize_by_update_norm(scale_factor=0.3, eps=1e-3)
    assert_same_trajectory(make(gx), make(optax), steps=30)


def test_distance_over_gradients_matches_optax():
    make = lambda m: m.scale_by_distance_over_gradients(global_scale=0.5)
    # No scalar leaf: optax's shape-(1,) gradient sum would turn its update into shape (1,).
    params = {"w": jnp.asarray([[0.5, -1.0], [2.0, 0.3]]), "b": jnp.asarray([0.1, -0.2])}
    assert_same_trajectory(make(gx), make(optax), steps=30, params=params)
    updates, _ = make(gx).update(*(lambda p: (p, make(gx).init(p)))(jnp.ones(())), jnp.ones(()))
    assert updates.shape == ()


def test_target_updates_match_optax():
    new, old = nested_params(seed=1), nested_params(seed=2)
    assert_trees_close(
        gx.incremental_update(new, old, 0.3), optax.incremental_update(new, old, 0.3)
    )
    for step in (0, 1, 5, 6):
        assert_trees_close(
            gx.periodic_update(new, old, jnp.asarray(step), 3),
            optax.periodic_update(new, old, jnp.asarray(step), 3),
        )


def test_scale_gradient_matches_optax():
    x = jnp.asarray([0.5, -1.0, 2.0])

    def grad_through(f, scale):
        return jax.grad(lambda y: jnp.sum(jnp.sin(f({"y": y**2}, scale)["y"])))(x)

    for scale in (2.5, 0.0, 1.0, jnp.asarray(-0.5)):
        np.testing.assert_allclose(
            grad_through(gx.scale_gradient, scale),
            grad_through(optax.scale_gradient, scale),
            rtol=1e-12,
        )
    np.testing.assert_array_equal(gx.scale_gradient({"y": x}, 3.0)["y"], x)


def test_nnls_matches_optax():
    rng = np.random.default_rng(0)
    a, b = jnp.asarray(rng.normal(size=(7, 4))), jnp.asarray(rng.normal(size=(7, 2)))
    assert_trees_close(gx.nnls(a, b, 40), optax.nnls(a, b, 40))
    assert_trees_close(gx.nnls(a, b[:, 0], 40, L=50.0), optax.nnls(a, b[:, 0], 40, L=50.0))


def test_tree_helpers_match_optax():
    tree = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.arange(4.0, dtype=jnp.float32)}
    for handler in ("promote", "highest", "lowest"):
        assert gx.tree.dtype(tree, handler) == optax.tree.dtype(tree, handler)
    with pytest.raises(ValueError, match="expected every leaf to be bfloat16"):
        gx.tree.dtype(tree)
    assert gx.tree.dtype({"a": jnp.ones(2, jnp.float16)}) == jnp.float16
    mixed = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float16)}
    with pytest.raises(ValueError, match="Cannot compare dtype"):
        optax.tree.dtype(mixed, "highest")
    with pytest.raises(ValueError, match="not ordered: neither promotes to the other"):
        gx.tree.dtype(mixed, "highest")
    x = nested_params()
    for assoc in (False, True):
        np.testing.assert_allclose(
            gx.tree.sum(x, associative_reduction=assoc), optax.tree.sum(x), rtol=1e-12
        )
    keys = {"k": jax.random.key(3), "x": jnp.ones(2)}
    assert_trees_close(
        gx.tree.unwrap_random_key_data(keys), optax.tree.unwrap_random_key_data(keys)
    )
    y = {"a": None, "b": jnp.ones(2)}
    assert gx.tree.add_scale(None, 1.0, y) is None
    assert_trees_close(gx.tree.add_scale(y, 2.0, y), optax.tree.add_scale(y, 2.0, y))


def _paths(found):
    return [tuple(str(k) for k in path) for path, _ in found]


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.adam(1e-3),
        lambda m: m.chain(m.clip_by_global_norm(1.0), m.adamw(1e-3)),
        lambda m: m.masked(m.adam(1e-3), {"w": True, "b": False}),
        lambda m: m.inject_hyperparams(m.adam)(learning_rate=1e-3),
    ],
    ids=["adam", "chain", "masked", "inject"],
)
def test_state_by_name_matches_optax(make):
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    ours, theirs = make(gx).init(params), make(optax).init(params)
    for key in ("mu", "nu", "count", "ScaleByAdamState"):
        assert _paths(gx.tree.get_all_with_path(ours, key)) == _paths(
            optax.tree.get_all_with_path(theirs, key)
        ), key
    leaves = jax.tree.leaves  # each library masks with its own MaskedNode class
    assert_trees_close(leaves(gx.tree.get(ours, "nu")), leaves(optax.tree.get(theirs, "nu")))
    new_mu = jax.tree.map(lambda x: x + 1, leaves(gx.tree.get(ours, "mu")))
    assert_trees_close(
        gx.tree.get(gx.tree.set(ours, mu=new_mu), "mu"),
        optax.tree.get(optax.tree.set(theirs, mu=new_mu), "mu"),
    )
    with pytest.raises(KeyError):
        gx.tree.set(ours, not_a_field=1)
    plus = gx.tree.map_params(make(gx), lambda v: v + 1, ours)
    theirs_plus = optax.tree.map_params(make(optax), lambda v: v + 1, theirs)
    assert_trees_close(leaves(plus), leaves(theirs_plus))


@pytest.mark.parametrize("name", ["scale_by_zoom_linesearch", "scale_by_backtracking_linesearch"])
def test_linesearch_takes_a_learning_rate_set_by_name(name):
    """A plain float written with tree.set (optax's way to restart a line search)."""

    def f(p):
        return jnp.sum((p - 1.0) ** 2 + 0.1 * p**4)

    def step(m):
        tx = (
            getattr(m, name)(max_linesearch_steps=8)
            if "zoom" in name
            else getattr(m, name)(max_backtracking_steps=8)
        )
        params = jnp.asarray([0.0, 0.5, 2.0])
        state = m.tree.set(tx.init(params), learning_rate=0.3)
        value, grad = jax.value_and_grad(f)(params)
        updates, state = jax.jit(
            lambda g, s: tx.update(-g, s, params, value=value, grad=g, value_fn=f)
        )(grad, state)
        return updates, state.learning_rate

    (ours, lr), (theirs, their_lr) = step(gx), step(optax)
    assert_trees_close(ours, theirs)
    assert lr.dtype == jnp.float64
    assert float(lr) == pytest.approx(float(their_lr), rel=1e-12)


# optax 0.2.8's public top-level names gradxform does not carry, each with its reason.
NOT_CARRIED = {
    # Loss functions and their namespace: gradxform is about optimizers, not objectives.
    **dict.fromkeys(
        [
            "losses",
            "convex_kl_divergence",
            "cosine_distance",
            "cosine_similarity",
            "ctc_loss",
            "ctc_loss_with_forward_probs",
            "generalized_kl_divergence",
            "hinge_loss",
            "huber_loss",
            "kl_divergence",
            "l2_loss",
            "log_cosh",
            "ntxent",
            "safe_softmax_cross_entropy",
            "sigmoid_binary_cross_entropy",
            "sigmoid_focal_loss",
            "smooth_labels",
            "softmax_cross_entropy",
            "softmax_cross_entropy_with_integer_labels",
            "squared_error",
        ],
        "a loss, not an optimizer",
    ),
    # optax's deprecated aliases of EmptyState for stateless transformations.
    **dict.fromkeys(
        [
            "AdaptiveGradClipState",
            "AddDecayedWeightsState",
            "ClipByGlobalNormState",
            "ClipState",
            "NonNegativeParamsState",
            "ScaleByTrustRatioState",
            "ScaleState",
        ],
        "optax's deprecated alias of EmptyState",
    ),
    # One public path per name: these are optax's deprecated top-level copies.
    "tree_utils": "optax's deprecated name of optax.tree: gradxform.tree",
    "update_moment": "deprecated top-level copy: gradxform.tree.update_moment",
    "update_infinity_moment": "deprecated top-level copy: gradxform.tree.update_infinity_moment",
    "update_moment_per_elem_norm": "deprecated top-level copy: in gradxform.tree",
    "transforms": "optax's private-module mirror: every transformation is at the top level",
    # Outside an optimizer library's scope.
    "assignment": "the Hungarian algorithm (linear assignment), not an optimizer",
    "perturbations": "stochastic smoothing of non-differentiable functions",
    "experimental": "optax's experimental namespace",
    "second_order": "Hessian-vector and Fisher diagonal utilities; not carried yet",
}


def test_every_optax_public_name_is_carried_or_listed_with_a_reason():
    missing = {n for n in dir(optax) if not n.startswith("_") and not hasattr(gx, n)}
    assert missing == set(NOT_CARRIED), (missing - set(NOT_CARRIED), set(NOT_CARRIED) - missing)
    for name in ("tree", "schedules", "projections", "contrib", "microbatching"):
        ours, theirs = getattr(gx, name), getattr(optax, name)
        missing = {n for n in dir(theirs) if not n.startswith("_") and not hasattr(ours, n)}
        assert missing <= TREE_AND_SCHEDULES_ELSEWHERE.get(name, set()), (name, missing)


# Names optax repeats inside a namespace that gradxform keeps at one path only.
TREE_AND_SCHEDULES_ELSEWHERE = {
    # inject_hyperparams and its states live at the top level in both libraries.
    "schedules": {
        "InjectHyperparamsState",
        "InjectStatefulHyperparamsState",
        "Schedule",
        "StatefulSchedule",
        "WrappedSchedule",
        "inject_hyperparams",
        "inject_stateful_hyperparams",
    },
    # Random trees (batch_shape, random_like, split_key_like): not carried yet.
    "tree": {"batch_shape", "random_like", "split_key_like"},
}


def test_named_types_are_optax_s():
    assert gx.MaskedState._fields == optax.MaskedState._fields
    tx = gx.masked(gx.scale(2.0), {"a": True, "b": False})
    assert isinstance(tx.init({"a": jnp.ones(2), "b": jnp.ones(1)}), gx.MaskedState)
