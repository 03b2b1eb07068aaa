"""Projections against optax.projections, closed forms and scipy; the ``projected``
combinator against an optax projected loop, scipy's NNLS and a closed-form box optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
from jax.flatten_util import ravel_pytree

import gradxform as gx
from gradxform import projections as P
from paired import compiled_call, fast_jit
from reference import assert_trees_close, nested_params


def tree_like(params, value):
    return jax.tree.map(lambda x: jnp.full_like(x, value), params)


def direction():
    return nested_params(seed=5)


X = nested_params()

# name: (function name, args after the tree); every case is a meaningful projection of X
# (the l1/l2 cases are given a point outside and one inside the set).
CASES = {
    "non_negative": ("projection_non_negative", ()),
    "box_trees": ("projection_box", (tree_like(X, -0.5), tree_like(X, 0.3))),
    "simplex": ("projection_simplex", ()),
    "simplex_scale": ("projection_simplex", (3.0,)),
    "l1_sphere": ("projection_l1_sphere", (2.0,)),
    "l1_ball_outside": ("projection_l1_ball", (2.0,)),
    "l1_ball_inside": ("projection_l1_ball", (100.0,)),
    "l2_sphere": ("projection_l2_sphere", (1.5,)),
    "l2_ball_outside": ("projection_l2_ball", (1.5,)),
    "l2_ball_inside": ("projection_l2_ball", (100.0,)),
    "linf_ball": ("projection_linf_ball", (0.4,)),
    "vector": ("projection_vector", (direction(),)),
    "hyperplane": ("projection_hyperplane", (direction(), 0.7)),
    "halfspace_outside": ("projection_halfspace", (direction(), -3.0)),
    "halfspace_inside": ("projection_halfspace", (direction(), 100.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_on_pytrees(name):
    fn_name, args = CASES[name]
    ours, theirs = compiled_call(
        lambda x: (getattr(P, fn_name)(x, *args), getattr(optax.projections, fn_name)(x, *args)),
        X,
    )
    assert_trees_close(ours, theirs, rtol=1e-12, atol=1e-14)
    moved = "inside" not in name
    assert moved == (not gx.tree.allclose(ours, X, rtol=0, atol=1e-12)), "case is vacuous"


def test_box_and_hypercube_with_scalar_bounds_on_pytrees():
    """optax's projection_box/projection_hypercube fail here; the projection is a clip."""
    leaves = jax.tree.leaves(X)
    clip = lambda lo, hi: [np.clip(np.asarray(x), lo, hi) for x in leaves]
    cases = [
        (P.projection_box(X, -0.5, 0.3), clip(-0.5, 0.3)),
        (P.projection_box(X, jnp.asarray(-0.5), 0.3), clip(-0.5, 0.3)),
        (P.projection_hypercube(X), clip(0.0, 1.0)),
        (P.projection_hypercube(X, 0.25), clip(0.0, 0.25)),
        (P.projection_linf_ball(X, 0.25), clip(-0.25, 0.25)),
    ]
    for ours, expected in cases:
        for a, e in zip(jax.tree.leaves(ours), expected):
            np.testing.assert_array_equal(a, e)
    with pytest.raises((TypeError, ValueError)):
        optax.projections.projection_box(X, -0.5, 0.3)
    with pytest.raises((TypeError, ValueError)):
        optax.projections.projection_hypercube(X)


def test_box_bounds_as_a_prefix_tree():
    lower = {"dense": -0.1, "conv": -0.2, "head": -0.3}
    out = P.projection_box(X, lower, 0.5)
    for key, lo in lower.items():
        for a, x in zip(jax.tree.leaves(out[key]), jax.tree.leaves(X[key])):
            np.testing.assert_array_equal(a, np.clip(np.asarray(x), lo, 0.5))


def _threshold(values, scale):
    """``tau`` with ``sum max(v - tau, 0) = scale``, by scipy's root finder."""
    return scipy.optimize.brentq(
        lambda t: np.maximum(values - t, 0).sum() - scale,
        values.min() - scale,
        values.max(),
        xtol=1e-15,
    )


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_simplex_and_l1_against_root_finding(scale):
    flat = np.asarray(ravel_pytree(X)[0])
    tau = _threshold(flat, scale)
    ours = ravel_pytree(P.projection_simplex(X, scale))[0]
    np.testing.assert_allclose(ours, np.maximum(flat - tau, 0), atol=1e-12)
    tau = _threshold(np.abs(flat), scale)
    ours = ravel_pytree(P.projection_l1_ball(X, scale))[0]
    np.testing.assert_allclose(ours, np.sign(flat) * np.maximum(np.abs(flat) - tau, 0), atol=1e-12)


def test_simplex_derivative():
    x = jnp.asarray(np.random.default_rng(1).normal(size=7))
    h = 1e-6

    def jacobians(x):
        # Central differences at a point where the support does not change.
        shifts = h * jnp.eye(7)
        fd = jax.vmap(
            lambda e: (P.projection_simplex(x + e) - P.projection_simplex(x - e)) / (2 * h)
        )
        return (
            jax.jacobian(P.projection_simplex)(x),
            jax.jacobian(optax.projections.projection_simplex)(x),
            fd(shifts).T,
        )

    jac, optax_jac, fd = compiled_call(jacobians, x)
    np.testing.assert_allclose(jac, optax_jac, atol=1e-14)
    np.testing.assert_allclose(jac, fd, atol=1e-8)
    assert 0 < np.count_nonzero(np.diag(jac)) < 7


def test_vmap_over_a_batch_of_points():
    xs = jnp.asarray(
        np.random.default_rng(2).normal(size=(5, 4)) * np.array([[0.1], [1], [3], [0.2], [2]])
    )
    ours, theirs = compiled_call(
        lambda xs: (
            jax.vmap(lambda x: P.projection_l1_ball(x, 1.0))(xs),
            jax.vmap(lambda x: optax.projections.projection_l1_ball(x, 1.0))(xs),
        ),
        xs,
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-14)
    assert np.all(np.abs(ours).sum(axis=1) <= 1.0 + 1e-12)
    assert np.any(np.abs(xs).sum(axis=1) < 1.0)
    assert np.any(np.abs(xs).sum(axis=1) > 1.0)


# ------------------------------------------------------------------------------------------
# projected(tx, projection)
# ------------------------------------------------------------------------------------------


def test_projected_adam_matches_optax_loop_on_simplex():
    def fn(p):
        return sum(
            jnp.sum((x - 0.3 * i) ** 2 + jnp.sin(2 * x)) for i, x in enumerate(jax.tree.leaves(p))
        )

    params = P.projection_simplex(X)
    ours = gx.projected(gx.adam(0.05), P.projection_simplex)
    theirs = optax.adam(0.05)

    def run_ours(p, state):
        def body(c, _):
            p, s = c
            u, s = ours.update(jax.grad(fn)(p), s, p)
            p = gx.apply_updates(p, u)
            return (p, s), p

        return jax.lax.scan(body, (p, state), None, length=50)[1]

    def run_theirs(p, state):
        def body(c, _):
            p, s = c
            u, s = theirs.update(jax.grad(fn)(p), s, p)
            p = optax.projections.projection_simplex(optax.apply_updates(p, u))
            return (p, s), p

        return jax.lax.scan(body, (p, state), None, length=50)[1]

    a, b = compiled_call(
        lambda p: (run_ours(p, ours.init(p)), run_theirs(p, theirs.init(p))), params
    )
    assert_trees_close(a, b, rtol=1e-9, atol=1e-12)
    final = jax.tree.map(lambda x: x[-1], a)
    np.testing.assert_allclose(gx.tree.sum(final), 1.0, atol=1e-12)
    assert float(fn(final)) < float(fn(params)) - 0.1


def test_projected_gradient_descent_solves_nnls():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(30, 6))
    b = rng.normal(size=30)
    solution, _ = scipy.optimize.nnls(a, b)
    assert 0 < np.count_nonzero(solution) < 6  # some constraints are active

    def fn(p):
        x = jnp.concatenate([p["first"], p["rest"]])
        return 0.5 * jnp.sum((jnp.asarray(a) @ x - b) ** 2)

    lr = 1.0 / np.linalg.norm(a, 2) ** 2
    opt = gx.projected(gx.sgd(lr), P.projection_non_negative)
    p0 = {"first": jnp.ones(2), "rest": jnp.ones(4)}

    def body(c, _):
        p, s = c
        u, s = opt.update(jax.grad(fn)(p), s, p)
        return (gx.apply_updates(p, u), s), None

    (p, _), _ = fast_jit(lambda: jax.lax.scan(body, (p0, opt.init(p0)), None, length=3000))()
    np.testing.assert_allclose(np.concatenate([p["first"], p["rest"]]), solution, atol=1e-9)


def test_projected_box_with_scalar_bounds_reaches_clipped_optimum():
    target = nested_params(seed=7)
    fn = lambda p: sum(
        jnp.sum((x - t) ** 2) for x, t in zip(jax.tree.leaves(p), jax.tree.leaves(target))
    )
    opt = gx.projected(gx.sgd(0.25), lambda p: P.projection_box(p, -0.5, 0.5))
    p = tree_like(target, 0.0)
    state = opt.init(p)
    step = fast_jit(lambda p, s: opt.update(jax.grad(fn)(p), s, p))
    for _ in range(60):
        u, state = step(p, state)
        p = gx.apply_updates(p, u)
    for a, t in zip(jax.tree.leaves(p), jax.tree.leaves(target)):
        np.testing.assert_allclose(a, np.clip(np.asarray(t), -0.5, 0.5), atol=1e-12)


def test_projected_needs_params():
    opt = gx.projected(gx.sgd(0.1), P.projection_non_negative)
    with pytest.raises(ValueError, match="params"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))
