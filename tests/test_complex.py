"""Complex parameters across the catalogue.

A complex leaf ``z`` is optimised as optax does it: second moments and norms use the
squared modulus ``|g|^2 = re^2 + im^2``, never the complex square ``g^2``. Checked against
optax in complex128 for every catalogue case whose optax namesake does the same; against a
NumPy reference where optax squares the complex gradient (``adadelta``); the algorithms
with no complex meaning (signs, clipping, orderings) refuse a complex leaf at ``init``,
naming it; and in complex64 every other optimizer's ``jit(update)`` equals its eager
``update`` and stays finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
import test_optimizers_optax
import test_properties
from optimizer_cases import OPTIMIZERS
from paired import assert_same_trajectory, trajectories
from reference import assert_trees_close, nested_params

STEPS = 10

# Cases whose optax reference is not a complex reference, and why (measured: relative
# gaps of 0.12 and 0.37 after 10 steps).
OPTAX_SQUARES_COMPLEX = {
    "adadelta": "optax's update_moment(g, order=2) takes g**2, complex for complex g",
    "adadelta_weight_decay": "as adadelta",
}
# Algorithms refusing complex leaves; the entry is the argument that makes one accept them.
REAL_ONLY = {"adopt": "use_clipping=False", "rprop": None, "sm3": None}


def complex_params(seed: int = 3):
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: jnp.asarray(x + 1j * rng.normal(size=x.shape), jnp.complex128),
        nested_params(),
    )


def complex_grads(params):
    """The conjugate Wirtinger gradient of a real loss, optax's convention for complex."""

    def loss(q):
        return sum(jnp.sum(jnp.abs(x) ** 2 + jnp.real(jnp.sin(x))) for x in jax.tree.leaves(q))

    return jax.tree.map(jnp.conj, jax.grad(loss)(params))


def _complex_cases():
    for name, (ours, theirs) in sorted(test_optimizers_optax.CASES.items()):
        # One case per optimizer (the option variants add compile time, not coverage of
        # complex maths, which the rotation test below checks for every optimizer).
        if name not in OPTIMIZERS or name in OPTAX_SQUARES_COMPLEX or name in REAL_ONLY:
            continue
        yield pytest.param(ours, theirs, id=name)


@pytest.mark.parametrize(("ours", "theirs"), list(_complex_cases()))
def test_complex_trajectory_matches_optax(ours, theirs):
    assert_same_trajectory(
        ours(), theirs(), STEPS, complex_params(), complex_grads, rtol=1e-9, atol=1e-12
    )


def numpy_adadelta(params, steps, rho=0.9, eps=1e-6):
    """Zeiler's AdaDelta in complex128 NumPy, with |g|^2 and |dx|^2 (learning rate 1)."""
    leaves, treedef = jax.tree.flatten(params)
    p = [np.asarray(x) for x in leaves]
    e_g = [np.zeros(x.shape) for x in p]
    e_x = [np.zeros(x.shape) for x in p]
    for _ in range(steps):
        g = [np.asarray(x) for x in jax.tree.leaves(complex_grads(treedef.unflatten(p)))]
        for i in range(len(p)):
            e_g[i] = rho * e_g[i] + (1 - rho) * np.abs(g[i]) ** 2
            dx = np.sqrt(e_x[i] + eps) / np.sqrt(e_g[i] + eps) * g[i]
            e_x[i] = rho * e_x[i] + (1 - rho) * np.abs(dx) ** 2
            p[i] = p[i] - dx
    return treedef.unflatten(p)


def test_complex_adadelta_uses_the_squared_modulus():
    import optax

    params = complex_params()
    ours, theirs = trajectories(
        gx.adadelta(), optax.adadelta(learning_rate=1.0), params, STEPS, grads=complex_grads
    )
    expected = numpy_adadelta(params, STEPS)
    assert_trees_close(jax.tree.map(lambda x: x[-1], ours), expected, rtol=1e-9, atol=1e-12)
    gap = max(
        float(jnp.max(jnp.abs(x[-1] - y)))
        for x, y in zip(jax.tree.leaves(theirs), jax.tree.leaves(expected))
    )
    assert gap > 1e-3, "optax's complex adadelta now agrees: drop OPTAX_SQUARES_COMPLEX"


@pytest.mark.parametrize("name", sorted(REAL_ONLY))
def test_real_only_optimizers_refuse_complex_leaves_by_path(name):
    params = {"real": jnp.ones(3), "z": {"w": jnp.ones(2, jnp.complex64)}}
    with pytest.raises(ValueError, match=r"complex.*\['z'\]\['w'\]"):
        OPTIMIZERS[name]().init(params)
    if REAL_ONLY[name] == "use_clipping=False":
        gx.contrib.adopt(1e-2, use_clipping=False).init(params)


@pytest.mark.parametrize("name", sorted(set(OPTIMIZERS) - set(REAL_ONLY)))
def test_complex64_jit_equals_eager_and_stays_finite(name):
    problem = test_properties.make_problem("complex64", 1.0, [(2, 3), (), None], seed=2)
    test_properties.check_jit_equals_eager_and_finite(name, [problem])


@pytest.mark.parametrize(
    "build",
    [
        lambda: gx.adafactor(0.05, dtype_momentum=jnp.float64, momentum=0.9),
        lambda: gx.adam(1e-2, mu_dtype=jnp.float32),
        lambda: gx.sgd(1e-2, momentum=0.9, accumulator_dtype=jnp.float32),
        lambda: gx.nadam(1e-2, mu_dtype=jnp.float32),
        lambda: gx.MultiSteps(gx.sgd(1e-2), every_k_schedule=2),
    ],
    ids=["adafactor", "adam", "sgd", "nadam", "multi_steps"],
)
def test_real_accumulator_for_complex_leaves_is_refused(build):
    params = {"z": jnp.ones(2, jnp.complex64)}
    with pytest.raises(ValueError, match=r"drop the imaginary part"):
        build().init(params)


def test_real_second_moment_for_complex_leaves_is_allowed():
    # |g|^2 is real: a float32 second moment loses nothing.
    params = {"z": jnp.ones(2, jnp.complex64)}
    tx = gx.adam(1e-2, nu_dtype=jnp.float32)
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates["z"].dtype == jnp.complex64


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad", "adabelief", "yogi", "lamb"])
def test_complex64_gradients_of_1e30_stay_finite(name):
    # |g|^2 = 1e60 overflows float32: the second moment saturates, in a complex state too.
    problem = test_properties.make_problem("complex64", 1e30, [(2, 3)], seed=4)
    test_properties.check_jit_equals_eager_and_finite(name, [problem])


# Rotating parameters and gradients by the same phase, p -> i p and g -> i g, leaves every
# modulus unchanged, so a complex optimizer must give i times the real update: the real
# trajectory, itself checked against optax, is the reference. Exceptions, and why:
NOT_PHASE_EQUIVARIANT = {
    "noisy_sgd": "adds real-valued noise",
    "muon": "Newton-Schulz uses X X^T, not X X^H",
    "yogi": "its first moment starts at initial_accumulator_value, a real constant",
}


@pytest.mark.parametrize(
    "name", sorted(set(OPTIMIZERS) - set(REAL_ONLY) - set(NOT_PHASE_EQUIVARIANT))
)
def test_complex_update_is_the_rotated_real_update(name):
    rng = np.random.default_rng(5)
    real_p = {"w": jnp.asarray(rng.normal(size=(3, 4))), "b": jnp.asarray(rng.normal())}
    real_gs = [
        jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), real_p) for _ in range(3)
    ]
    rotate = lambda t: jax.tree.map(lambda x: 1j * x, t)
    tx = OPTIMIZERS[name]()
    p_r, s_r = real_p, tx.init(real_p)
    p_c, s_c = rotate(real_p), tx.init(rotate(real_p))
    for g in real_gs:
        u_r, s_r = tx.update(g, s_r, p_r)
        u_c, s_c = tx.update(rotate(g), s_c, p_c)
        assert_trees_close(u_c, rotate(u_r), rtol=1e-9, atol=1e-14)
        p_r, p_c = gx.apply_updates(p_r, u_r), gx.apply_updates(p_c, u_c)
