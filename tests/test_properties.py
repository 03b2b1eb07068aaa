"""Property-based tests over random pytrees for every optimizer in the catalogue.

Random trees mix nesting (dicts, lists, tuples), 0-d and empty leaves and ``None`` leaves,
in float16, bfloat16, float32 and float64; float32 gradients also come at 1e30 and 1e-30
magnitude. For every optimizer: ``jit(update)`` equals eager ``update``; finite inputs
give finite updates and state over several steps; zero gradients give zero updates where
the algorithm says so. Each hypothesis example draws a tree structure and a dtype, then
several value sets (seed and gradient magnitude) for that tree: the jitted update compiles
once per structure, so a further value set costs a few milliseconds where a further
structure costs a compilation. ``gradxform.torch_optim`` (``TORCH_OPTIMIZERS``) also gets complex64
trees, and float32 gradients at 1e30 and at 1e-30 in every run.
"""

from __future__ import annotations

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import gradxform as gx
from optimizer_cases import ALL_OPTIMIZERS, OPTIMIZERS, TORCH_OPTIMIZERS

RUNS: collections.Counter = collections.Counter()  # (optimizer, dtype) -> cases run

DTYPES = {
    "float16": jnp.float16,
    "bfloat16": jnp.bfloat16,
    "float32": jnp.float32,
    "float64": jnp.float64,
}
# torch_optim steps complex parameters as pairs of reals, as torch does.
TORCH_DTYPES = {**DTYPES, "complex64": jnp.complex64}
SHAPES = [(), (0,), (1,), (3,), (2, 3), (2, 0, 2), (4, 1, 2)]

# Optimizers whose update is non-zero for a zero gradient, and why.
NONZERO_AT_ZERO_GRAD = {
    "adamw": "decoupled weight decay",
    "adamaxw": "decoupled weight decay",
    "nadamw": "decoupled weight decay",
    "lamb": "weight decay inside the trust ratio",
    "lion": "decoupled weight decay (optax's default 1e-3)",
    "fromage": "shrinks parameters by 1/sqrt(1 + lr^2) every step",
    "noisy_sgd": "adds annealed Gaussian noise",
    "yogi": "moments start at initial_accumulator_value=1e-6, not 0",
    "torch_adamw_amsgrad_maximize": "decoupled weight decay",
    "torch_nadam_decoupled": "decoupled weight decay",
    "torch_radam_l2_maximize": "weight decay (L2) added to the gradient",
    "torch_adagrad_lr_decay_l2": "weight decay (L2) added to the gradient",
    "torch_asgd_l2": "lambd shrinks parameters every step; weight decay (L2)",
}


def _structure():
    leaf = st.one_of(st.sampled_from(SHAPES), st.none())
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.lists(kids, min_size=1, max_size=3),
            st.dictionaries(st.sampled_from("abcd"), kids, min_size=1, max_size=3),
            st.tuples(kids, kids),
        ),
        max_leaves=6,
    )


@st.composite
def problems(draw, dtypes=DTYPES):
    """A list of ``(dtype_name, params, grads)``: one structure and dtype, 2 to 6 value sets."""
    dtype_name = draw(st.sampled_from(sorted(dtypes)))
    magnitudes = [1.0, 1e30, 1e-30] if dtype_name in ("float32", "complex64") else [1.0]
    structure = draw(_structure())
    values = draw(
        st.lists(
            st.tuples(st.sampled_from(magnitudes), st.integers(0, 2**16)), min_size=2, max_size=6
        )
    )
    return [make_problem(dtype_name, magnitude, structure, seed) for magnitude, seed in values]


def make_problem(dtype_name, magnitude, shape_tree, seed):
    """``(dtype_name, params, grads)``: params like ``shape_tree``, three gradients."""
    rng = np.random.default_rng(seed)
    dtype = TORCH_DTYPES[dtype_name]

    def normal(s):
        x = rng.normal(size=s)
        return x + 1j * rng.normal(size=s) if jnp.issubdtype(dtype, jnp.complexfloating) else x

    def build(scale):
        return jax.tree.map(
            lambda s: jnp.asarray(scale * normal(s), dtype),
            shape_tree,
            is_leaf=lambda x: isinstance(x, tuple) and all(isinstance(i, int) for i in x),
        )

    params = {"root": build(1.0), "anchor": jnp.asarray(normal(3), dtype)}
    grads = [
        {"root": build(magnitude), "anchor": jnp.asarray(magnitude * normal(3), dtype)}
        for _ in range(3)
    ]
    return dtype_name, params, grads


def _all_finite(tree):
    tree = _plain(tree)
    return all(
        bool(np.all(np.isfinite(np.asarray(x).astype(_wide(x)))))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    )


def _wide(x):
    return np.complex64 if jnp.iscomplexobj(x) else np.float32


def _plain(tree):
    """Typed PRNG keys (noisy optimizers' state) compared through their key data."""
    return jax.tree.map(
        lambda x: (
            jax.random.key_data(x) if jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key) else x
        ),
        tree,
    )


def _close(a, b, dtype_name):
    """Equal up to the dtype's round-off, relative to each element and to its leaf's scale:
    jit may fuse a multiply-add that eager mode rounds twice, and where terms of 1e28 cancel
    to 1e24 the difference is a round-off of the terms, not of their sum."""
    tol = {"float64": 1e-12, "float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-2, "complex64": 1e-5}[
        dtype_name
    ]
    for x, y in zip(jax.tree.leaves(_plain(a)), jax.tree.leaves(_plain(b))):
        wide = np.complex128 if np.iscomplexobj(x) else np.float64
        x, y = np.asarray(x, wide), np.asarray(y, wide)
        scale = max(1.0, float(np.max(np.abs(y), initial=0.0)))
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol * scale)


# No shrinking: a failure is reported as drawn, which keeps a failing run short. Each
# example after the first few costs about 0.3 s of CPU per optimizer (mostly compiling
# ``update`` for the drawn structure); 10 examples for the 52 optimizers of the two tests
# below take about 175 s of CPU on one core (4 examples took 86 s).
property_settings = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@property_settings
@given(drawn=problems())
def test_jit_equals_eager_and_stays_finite(name, drawn):
    check_jit_equals_eager_and_finite(name, drawn)


@pytest.mark.parametrize("name", sorted(TORCH_OPTIMIZERS))
@property_settings
@given(drawn=problems(TORCH_DTYPES))
def test_torch_optim_jit_equals_eager_and_stays_finite(name, drawn):
    check_jit_equals_eager_and_finite(name, drawn)


@pytest.mark.parametrize("magnitude", [1e30, 1e-30])
@pytest.mark.parametrize("name", sorted(TORCH_OPTIMIZERS))
def test_torch_optim_float32_gradients_of_extreme_magnitude(name, magnitude):
    """The random draws reach float32 at 1e30 and 1e-30 rarely; here every run does."""
    tree = [(2, 3), None]  # with the problem's 1-d anchor: 1-d, 2-d and None leaves, nested
    check_jit_equals_eager_and_finite(name, [make_problem("float32", magnitude, tree, seed=1)])


@functools.cache
def _optimizer_and_jitted_update(name):
    """One optimizer and its jitted update per name, reused as a training loop reuses them:
    a tree seen before (same structure, shapes and dtypes) does not compile again."""
    tx = ALL_OPTIMIZERS[name]()
    return tx, jax.jit(tx.update)


def check_jit_equals_eager_and_finite(name, problems):
    tx, jitted = _optimizer_and_jitted_update(name)
    for dtype_name, params, grads in problems:
        state_e = state_j = tx.init(params)
        p = params
        for g in grads:
            u_e, state_e = tx.update(g, state_e, p)
            u_j, state_j = jitted(g, state_j, p)
            _close(u_e, u_j, dtype_name)
            _close(state_e, state_j, dtype_name)
            assert _all_finite(u_j), f"{name}: non-finite update from finite input"
            assert _all_finite(state_j), f"{name}: non-finite state from finite input"
            assert jax.tree.structure(u_j) == jax.tree.structure(g)
            p = gx.apply_updates(p, u_j)
        RUNS[(name, dtype_name)] += 1


@pytest.mark.parametrize("name", sorted(set(ALL_OPTIMIZERS) - set(NONZERO_AT_ZERO_GRAD)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_gradient_gives_zero_update(name, dtype):
    rng = np.random.default_rng(0)
    params = {
        "a": jnp.asarray(rng.normal(size=(3, 2)), DTYPES[dtype]),
        "b": jnp.asarray(rng.normal(size=()), DTYPES[dtype]),
    }
    tx = ALL_OPTIMIZERS[name]()
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
    for u in jax.tree.leaves(updates):
        assert u.dtype == DTYPES[dtype]
        np.testing.assert_array_equal(np.asarray(u), 0.0)
    RUNS[(name, dtype)] += 1
