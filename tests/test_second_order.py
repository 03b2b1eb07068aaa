"""Line searches, L-BFGS and Polyak against optax over full solves; Newton against closed
forms and scipy; L-BFGS against scipy's L-BFGS-B; all in float64 under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
from jax.flatten_util import ravel_pytree

import gradxform as gx
from paired import compiled_call, fast_jit
from reference import assert_trees_close, loss, nested_params, run


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def barrier(params):
    """Defined only inside the unit l2 ball, so large trial steps return NaN."""
    sq = sum(jnp.sum(x**2) for x in jax.tree.leaves(params))
    return sq - jnp.log1p(-sq)


def small_params():
    return {"a": jnp.array([0.3, -0.2, 0.25]), "b": (jnp.array(0.4),)}


def solve(opt, from_state, fn, params, steps):
    """``steps`` iterations of ``opt`` on ``fn``, reusing the search's last evaluation;
    returns the trajectory of params and the line-search step counts."""
    value_and_grad = from_state(fn)

    def body(carry, _):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        u, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=fn)
        p = jax.tree.map(lambda a, b: a + b, p, u)
        return (p, state), p

    (_, _), traj = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
    return traj


def assert_same_solve(build, fn=loss, params=None, steps=30, fresh_grad=False):
    """Both libraries' full solves (compiled as one program) agree to 1e-9 and move."""
    params = nested_params() if params is None else params
    if fresh_grad:
        ours_vg = theirs_vg = lambda f: lambda p, state: jax.value_and_grad(f)(p)
    else:
        ours_vg, theirs_vg = gx.value_and_grad_from_state, optax.value_and_grad_from_state
    ours, theirs = compiled_call(
        lambda p: (
            solve(build(gx), ours_vg, fn, p, steps),
            solve(build(optax), theirs_vg, fn, p, steps),
        ),
        params,
    )
    assert_trees_close(ours, theirs)
    final = jax.tree.map(lambda x: x[-1], ours)
    assert float(fn(final)) < float(fn(params)) - 1e-3
    return final


# ------------------------------------------------------------------------------------------
# Parity with optax over full solves
# ------------------------------------------------------------------------------------------


def convex(params):
    return sum(
        jnp.sum(jnp.cosh(x) + 0.5 * (i + 1) * x**2) for i, x in enumerate(jax.tree.leaves(params))
    )


_RNG = np.random.default_rng(0)
_A = jnp.asarray(_RNG.normal(size=(6, 4)) + 1j * _RNG.normal(size=(6, 4)))
_Y = jnp.asarray(_RNG.normal(size=6) + 1j * _RNG.normal(size=6))


def complex_fn(params):
    z = params["z"]
    return jnp.sum(jnp.abs(_A @ z - _Y) ** 2) + 0.1 * jnp.sum(jnp.abs(z) ** 4)


# A two-leaf tree: a pytree, but cheaper to compile than the six-leaf ``nested_params``.
TWO = {"w": jnp.linspace(-1.5, 2.0, 7), "b": (jnp.asarray(0.7),)}

# name: (build, objective, params (None: the nested tree), recompute the gradient each step)
SOLVES = {
    "backtracking": (
        lambda m: m.chain(m.sgd(1.0), m.scale_by_backtracking_linesearch(15)),
        loss,
        TWO,
        True,
    ),
    "backtracking_store_grad": (
        lambda m: m.chain(m.sgd(1.0), m.scale_by_backtracking_linesearch(15, store_grad=True)),
        loss,
        TWO,
        False,
    ),
    "backtracking_options": (
        lambda m: m.chain(
            m.sgd(1.0),
            m.scale_by_backtracking_linesearch(
                10,
                slope_rtol=0.3,
                decrease_factor=0.5,
                increase_factor=np.inf,
                max_learning_rate=2.0,
                atol=1e-4,
                rtol=1e-3,
                store_grad=True,
            ),
        ),
        loss,
        TWO,
        False,
    ),
    "zoom": (lambda m: m.chain(m.sgd(1.0), m.scale_by_zoom_linesearch(15)), loss, TWO, False),
    "zoom_options": (
        lambda m: m.chain(
            m.sgd(1.0),
            m.scale_by_zoom_linesearch(
                8,
                max_learning_rate=0.5,
                curv_rtol=0.3,
                approx_dec_rtol=None,
                increase_factor=3.0,
                initial_guess_strategy="one",
            ),
        ),
        loss,
        TWO,
        False,
    ),
    "lbfgs": (lambda m: m.lbfgs(), loss, None, False),
    "lbfgs_rosenbrock": (lambda m: m.lbfgs(), rosenbrock, jnp.zeros(20), False),
    "lbfgs_complex": (lambda m: m.lbfgs(), complex_fn, {"z": jnp.zeros(4, jnp.complex128)}, False),
    "lbfgs_options": (
        lambda m: m.lbfgs(learning_rate=0.8, memory_size=3, scale_init_precond=False),
        loss,
        TWO,
        False,
    ),
    "lbfgs_backtracking": (
        lambda m: m.lbfgs(linesearch=m.scale_by_backtracking_linesearch(20, store_grad=True)),
        loss,
        TWO,
        False,
    ),
    "lbfgs_no_linesearch": (
        lambda m: m.lbfgs(learning_rate=0.5, linesearch=None),
        convex,
        TWO,
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(SOLVES))
def test_solve_matches_optax(name):
    build, fn, params, fresh_grad = SOLVES[name]
    steps = 60 if name == "lbfgs_rosenbrock" else 30
    assert_same_solve(build, fn=fn, params=params, steps=steps, fresh_grad=fresh_grad)


@pytest.mark.parametrize("search", ["backtracking", "zoom"])
def test_linesearch_steps_back_from_nan(search):
    # From these params a unit gradient step leaves the domain: the searches must shrink.
    def build(m):
        if search == "zoom":
            return m.chain(m.sgd(1.0), m.scale_by_zoom_linesearch(30, initial_guess_strategy="one"))
        return m.chain(m.sgd(1.0), m.scale_by_backtracking_linesearch(30, store_grad=True))

    final = assert_same_solve(build, fn=barrier, params=small_params(), steps=10)
    assert np.isfinite(float(barrier(final)))


def test_backtracking_store_grad_keeps_float32_under_x64():
    """optax's store_grad transposes with a Python 1.0 (float64 under x64) and raises for
    float32 params; the search must run and keep the params' dtype."""
    params = jax.tree.map(lambda x: x.astype(jnp.float32), TWO)

    def build(m):
        return m.chain(m.sgd(1.0), m.scale_by_backtracking_linesearch(15, store_grad=True))

    traj = fast_jit(lambda: solve(build(gx), gx.value_and_grad_from_state, loss, params, 5))()
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(traj))
    final = jax.tree.map(lambda x: x[-1], traj)
    assert float(loss(final)) < float(loss(params)) - 1e-2
    with pytest.raises(TypeError, match="cotangent"):
        solve(build(optax), optax.value_and_grad_from_state, loss, params, 1)


def test_linesearch_with_data_kwargs():
    """Stochastic use: ``value_fn`` takes a batch, fed as extra keyword arguments (and an
    unrelated keyword is ignored rather than passed on)."""
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(12, 8, 3)))
    ys = jnp.asarray(rng.normal(size=(12, 8)))

    def fn(params, x, y):
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    def run_batches(m, **unused):
        opt = m.chain(m.sgd(1.0), m.scale_by_zoom_linesearch(10))

        def body(carry, batch):
            p, state = carry
            x, y = batch
            value, grad = jax.value_and_grad(fn)(p, x, y)
            u, state = opt.update(
                grad, state, p, value=value, grad=grad, value_fn=fn, x=x, y=y, **unused
            )
            p = jax.tree.map(lambda a, b: a + b, p, u)
            return (p, state), p

        p0 = {"w": jnp.zeros(3), "b": jnp.zeros(())}
        return jax.lax.scan(body, (p0, opt.init(p0)), (xs, ys))[1]

    ours, theirs = compiled_call(
        lambda u: (run_batches(gx, unrelated=u), run_batches(optax)), jnp.ones(2)
    )
    assert_trees_close(ours, theirs)
    assert float(jnp.max(jnp.abs(ours["w"][-1]))) > 0.1


def test_zoom_info_and_value_reuse():
    opt = gx.chain(gx.sgd(1.0), gx.scale_by_zoom_linesearch(15))

    def one_step(params):
        value, grad = jax.value_and_grad(loss)(params)
        u, state = opt.update(grad, opt.init(params), params, value=value, grad=grad, value_fn=loss)
        new = gx.apply_updates(params, u)
        reused = gx.value_and_grad_from_state(loss)(new, state=state)
        return value, grad, new, state, reused, jax.value_and_grad(loss)(new)

    value, grad, _, state, reused, fresh = compiled_call(one_step, TWO)
    ls = state[1]
    # The state holds the objective at the accepted point, which meets both conditions.
    assert float(ls.info.decrease_error) == 0.0
    assert float(ls.info.curvature_error) == 0.0
    slope0 = -sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grad))
    assert float(ls.learning_rate) > 0
    assert float(fresh[0]) <= float(value) + 1e-4 * float(ls.learning_rate) * slope0
    new_slope = sum(
        float(jnp.sum(a * -b)) for a, b in zip(jax.tree.leaves(fresh[1]), jax.tree.leaves(grad))
    )
    assert abs(new_slope) <= 0.9 * abs(slope0)
    assert_trees_close(reused, fresh)


def test_value_and_grad_from_state_errors():
    vg = gx.value_and_grad_from_state(loss)
    params = nested_params()
    with pytest.raises(ValueError, match="no value or gradient"):
        vg(params, state=gx.adam(0.1).init(params))
    no_grad = gx.scale_by_backtracking_linesearch(5).init(params)
    with pytest.raises(ValueError, match="no value or gradient"):
        vg(params, state=no_grad)
    two = gx.chain(gx.scale_by_zoom_linesearch(5), gx.scale_by_zoom_linesearch(5)).init(params)
    with pytest.raises(KeyError):
        vg(params, state=two)


# ------------------------------------------------------------------------------------------
# Polyak
# ------------------------------------------------------------------------------------------


def assert_same_trajectory_with_value(tx, reference_tx, steps=100):
    """100 steps from ``nested_params`` fed ``value=f(w)``, both compiled as one program."""
    params = nested_params()
    extra = lambda p: {"value": loss(p)}
    ours, theirs = compiled_call(
        lambda p: (run(tx, p, steps, extra=extra), run(reference_tx, p, steps, extra=extra)),
        params,
    )
    assert_trees_close(ours, theirs)
    assert float(loss(jax.tree.map(lambda x: x[-1], ours))) < float(loss(params)) - 1.0


POLYAK = {
    "sps": lambda m: m.polyak_sgd(),
    "sps_plus_f_min": lambda m: m.polyak_sgd(max_learning_rate=0.3, f_min=-25.0, variant="sps+"),
    "scaling_eps": lambda m: m.polyak_sgd(0.5, scaling=0.7, f_min=-30.0, eps=1e-3),
    "schedule": lambda m: m.polyak_sgd(0.5, scaling=lambda t: 1.0 / (1.0 + 0.1 * t), f_min=-30.0),
    "scale_by_polyak": lambda m: m.chain(m.scale(-0.5), m.scale_by_polyak(-28.0, 2.0, 0.1)),
}


@pytest.mark.parametrize("name", sorted(POLYAK))
def test_polyak_matches_optax(name):
    build = POLYAK[name]
    assert_same_trajectory_with_value(build(gx), build(optax))


def test_polyak_closed_form():
    # f = ||x||^2 / 2, f* = 0: the Polyak step is exactly 1/2, so x_k = x_0 / 2^k.
    x0 = np.array([3.0, -1.0, 0.5])
    opt = gx.polyak_sgd()
    x, state = jnp.asarray(x0), opt.init(jnp.asarray(x0))
    for _ in range(5):
        u, state = opt.update(x, state, x, value=0.5 * jnp.sum(x**2))
        x = x + u
    np.testing.assert_allclose(x, x0 / 2**5, rtol=1e-15)


# ------------------------------------------------------------------------------------------
# Newton
# ------------------------------------------------------------------------------------------


def quadratic_problem(eigenvalues=None, seed=0):
    """``f(p) = x^T A x / 2 - b^T x`` over the flattened nested tree ``x = ravel(p)``."""
    params = nested_params(seed=seed)
    flat, unravel = ravel_pytree(params)
    n = flat.size
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.linspace(1.0, 5.0, n) if eigenvalues is None else eigenvalues(n)
    a = (q * lam) @ q.T
    b = rng.normal(size=n)

    def f(p):
        x = ravel_pytree(p)[0]
        return 0.5 * x @ jnp.asarray(a) @ x - jnp.asarray(b) @ x

    return params, np.asarray(flat), unravel, a, b, f


def newton_step(opt, params, f, **kwargs):
    grad = jax.grad(f)(params)
    u, state = fast_jit(lambda: opt.update(grad, opt.init(params), params, **kwargs))()
    return ravel_pytree(gx.apply_updates(params, u))[0], state


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
@pytest.mark.parametrize("source", ["value_fn", "hvp_fn", "hessian_fn"])
def test_newton_one_step_on_quadratic(solver, source):
    params, x0, unravel, a, b, f = quadratic_problem()
    hessian_fn = (lambda p: jnp.asarray(a)) if source == "hessian_fn" else None
    kwargs = {"value_fn": f} if source == "value_fn" else {}
    if source == "hvp_fn":
        kwargs["hvp_fn"] = lambda p, v: unravel(jnp.asarray(a) @ ravel_pytree(v)[0])
    opt = gx.newton(hessian_fn=hessian_fn, solver=solver, cg_tol=1e-13)
    x1, state = newton_step(opt, params, f, **kwargs)
    np.testing.assert_allclose(x1, np.linalg.solve(a, b), rtol=1e-9, atol=1e-11)
    assert not bool(state[0].negative_curvature)
    if solver == "cg":
        assert 1 <= int(state[0].num_cg_steps) <= 3 * x0.size


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_newton_damping_and_learning_rate(solver):
    params, x0, _, a, b, f = quadratic_problem()
    opt = gx.newton(learning_rate=0.7, damping=0.3, solver=solver, cg_tol=1e-13)
    x1, _ = newton_step(opt, params, f, value_fn=f)
    g = a @ x0 - b
    expected = x0 - 0.7 * np.linalg.solve(a + 0.3 * np.eye(x0.size), g)
    np.testing.assert_allclose(x1, expected, rtol=1e-9, atol=1e-11)


def _shifted_cholesky_reference(a, g, beta=1e-3):
    """Nocedal & Wright Algorithm 3.3 in numpy."""
    min_diag = np.min(np.diag(a))
    tau = 0.0 if min_diag > 0 else beta - min_diag
    while True:
        try:
            chol = np.linalg.cholesky(a + tau * np.eye(len(a)))
            break
        except np.linalg.LinAlgError:
            tau = max(2 * tau, beta)
    return np.linalg.solve(chol.T, np.linalg.solve(chol, g))


@pytest.mark.parametrize("nonconvex", ["abs", "shift", "none"])
def test_newton_nonconvex_repairs(nonconvex):
    spectrum = lambda n: np.linspace(-2.0, 3.0, n) + 0.05
    params, x0, _, a, b, f = quadratic_problem(spectrum, seed=1)
    g = a @ x0 - b
    lam, q = np.linalg.eigh(a)
    expected = {
        "abs": q @ ((q.T @ g) / np.abs(lam)),
        "shift": _shifted_cholesky_reference(a, g),
        "none": np.linalg.solve(a, g),
    }[nonconvex]
    x1, state = newton_step(gx.newton(nonconvex=nonconvex), params, f, value_fn=f)
    np.testing.assert_allclose(x0 - x1, expected, rtol=1e-9, atol=1e-11)
    assert bool(state[0].negative_curvature)
    if nonconvex != "none":  # the repaired step is a descent direction
        assert g @ (x1 - x0) < 0
        assert float(f(jax.tree.map(jnp.asarray, params))) > -np.inf


def test_newton_cg_negative_curvature():
    a = np.diag([1.0, -1.0])
    f = lambda x: 0.5 * x @ jnp.asarray(a) @ x
    opt = gx.newton(solver="cg")
    # First CG direction g has g^T A g < 0: Algorithm 7.1 returns steepest descent.
    x0 = np.array([0.1, 1.0])
    x1, state = newton_step(opt, jnp.asarray(x0), f, value_fn=f)
    np.testing.assert_allclose(x1, x0 - a @ x0, rtol=1e-14)
    assert bool(state[0].negative_curvature)
    assert int(state[0].num_cg_steps) == 1
    # Positive first curvature, negative second: the first CG iterate is returned.
    x0 = np.array([1.0, 0.1])
    g = a @ x0
    r1 = g - (g @ g) / (g @ a @ g) * (a @ g)
    p1 = r1 + (r1 @ r1) / (g @ g) * g
    assert g @ a @ g > 0
    assert p1 @ a @ p1 < 0
    x1, state = newton_step(opt, jnp.asarray(x0), f, value_fn=f)
    np.testing.assert_allclose(x0 - x1, (g @ g) / (g @ a @ g) * g, rtol=1e-13)
    assert bool(state[0].negative_curvature)
    assert int(state[0].num_cg_steps) == 2


def _logistic_problem():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5))
    y = (x @ np.array([1.5, -2.0, 0.5, 0.0, 1.0]) + 0.3 + rng.normal(size=200) > 0).astype(float)
    reg = 0.01

    def fn(params, x, y):
        z = x @ params["w"] + params["b"]
        return jnp.mean(jax.nn.softplus(z) - y * z) + reg * jnp.sum(params["w"] ** 2)

    # The same objective on v = (b, w) (ravel_pytree's sorted-key order) in numpy, with
    # its gradient and Hessian by hand.
    xa = np.hstack([np.ones((200, 1)), x])
    penalty = 2 * reg * np.diag([0.0] + [1.0] * 5)

    def np_fn(v):
        z = xa @ v
        return np.mean(np.logaddexp(0.0, z) - y * z) + reg * v[1:] @ v[1:]

    def np_grad(v):
        return xa.T @ (1 / (1 + np.exp(-xa @ v)) - y) / 200 + penalty @ v

    def np_hess(v):
        s = 1 / (1 + np.exp(-xa @ v))
        return (xa.T * (s * (1 - s))) @ xa / 200 + penalty

    return x, y, fn, (np_fn, np_grad, np_hess)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"solver": "cg"}, {"solver": "cg", "cg_tol": None}],
    ids=["cholesky", "cg", "cg_forcing"],
)
def test_newton_logistic_regression_matches_scipy(kwargs):
    x, y, fn, (np_fn, np_grad, np_hess) = _logistic_problem()
    opt = gx.newton(**kwargs)
    p0 = {"w": jnp.zeros(5), "b": jnp.zeros(())}

    def body(carry, _):
        p, state = carry
        grad = jax.grad(fn)(p, x, y)
        u, state = opt.update(grad, state, p, value_fn=fn, x=x, y=y)
        return (gx.apply_updates(p, u), state), None

    (p, _), _ = fast_jit(lambda: jax.lax.scan(body, (p0, opt.init(p0)), None, length=12))()
    ours = np.asarray(ravel_pytree(p)[0])

    res = scipy.optimize.minimize(
        np_fn,
        np.zeros(6),
        jac=np_grad,
        hess=np_hess,
        method="Newton-CG",
        options={"xtol": 1e-14, "maxiter": 200},
    )
    # scipy stops once p^T H p <= 3 eps (absolute), here at ||grad|| ~ 6e-8, so it only
    # pins the optimum to ~1e-6; Newton's own iteration in numpy pins it to round-off.
    np.testing.assert_allclose(ours, res.x, atol=2e-6)
    v = np.zeros(6)
    for _ in range(12):
        v = v - np.linalg.solve(np_hess(v), np_grad(v))
    np.testing.assert_allclose(ours, v, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(np_grad(ours)) < 1e-12 < np.linalg.norm(np_grad(res.x))


def test_newton_with_linesearch_on_rosenbrock():
    # Rosenbrock's Hessian is indefinite on part of the path: |H| plus Armijo gets through.
    opt = gx.chain(gx.newton(), gx.scale_by_backtracking_linesearch(40, store_grad=True))
    vg = gx.value_and_grad_from_state(rosenbrock)

    def body(carry, _):
        x, state = carry
        value, grad = vg(x, state=state)
        u, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=rosenbrock)
        return (x + u, state), state[0][0].negative_curvature

    x0 = jnp.array([-1.2, 2.0])  # the Hessian is indefinite where y > x^2 + 0.005
    (x, _), negative = fast_jit(lambda: jax.lax.scan(body, (x0, opt.init(x0)), None, length=40))()
    np.testing.assert_allclose(x, np.ones(2), atol=1e-10)
    assert bool(jnp.any(negative))


# ------------------------------------------------------------------------------------------
# L-BFGS against scipy
# ------------------------------------------------------------------------------------------


def test_lbfgs_reaches_scipy_optimum_on_rosenbrock_20d():
    x0 = np.zeros(20)
    opt = gx.lbfgs()
    vg = gx.value_and_grad_from_state(rosenbrock)

    def keep_going(carry):
        x, _, k = carry
        grad = gx.tree.norm(jax.grad(rosenbrock)(x))
        return (k < 1000) & (grad > 1e-11)

    def body(carry):
        x, state, k = carry
        value, grad = vg(x, state=state)
        u, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=rosenbrock)
        return x + u, state, k + 1

    init = (jnp.asarray(x0), opt.init(jnp.asarray(x0)), 0)
    x, _, iterations = fast_jit(lambda: jax.lax.while_loop(keep_going, body, init))()
    res = scipy.optimize.minimize(
        scipy.optimize.rosen,
        x0,
        jac=scipy.optimize.rosen_der,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 10000},
    )
    assert int(iterations) < 1000
    np.testing.assert_allclose(res.x, np.ones(20), atol=1e-6)  # scipy found the minimiser
    np.testing.assert_allclose(x, res.x, atol=1e-6)


# ------------------------------------------------------------------------------------------
# The preconditioning view, as claimed in docs/second_order.md
# ------------------------------------------------------------------------------------------


def test_adagrad_is_a_diagonal_preconditioner():
    eps, init_acc = 1e-7, 0.1
    adagrad = gx.chain(
        gx.divide(
            gx.identity(),
            gx.chain(
                gx.elementwise(gx.abs_sq),
                gx.trace(decay=1.0),
                gx.elementwise(lambda s: jnp.sqrt(s + init_acc + eps)),
            ),
        ),
        gx.scale(-0.1),
    )
    assert_same_trajectory_with_value(adagrad, optax.adagrad(0.1))


def test_hyperparameter_validation():
    with pytest.raises(ValueError, match="memory_size"):
        gx.lbfgs(memory_size=0)
    with pytest.raises(ValueError, match="damping"):
        gx.newton(damping=-1.0)
    with pytest.raises(ValueError, match="solver"):
        gx.newton(solver="qr")
    with pytest.raises(ValueError, match="variant"):
        gx.polyak_sgd(variant="sps-")
    with pytest.raises(ValueError, match="decrease_factor"):
        gx.scale_by_backtracking_linesearch(10, decrease_factor=1.0)
    with pytest.raises(ValueError, match="initial_guess_strategy"):
        gx.scale_by_zoom_linesearch(10, initial_guess_strategy="two")
    params = jnp.zeros(3)
    with pytest.raises(ValueError, match="curvature"):
        gx.newton().update(params, gx.newton().init(params), params)
