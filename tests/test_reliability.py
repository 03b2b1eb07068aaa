"""Reliability across the whole catalogue: stable state, saturation, checkpoints, bad input.

Every optimizer in ``optimizer_cases.OPTIMIZERS`` runs through each check, so the checks
grow with the catalogue; ``TORCH_OPTIMIZERS`` (``gradxform.torch_optim``) runs through the
state-structure and checkpoint checks.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import checkpoint_worker
import gradxform as gx
from gradxform import torch_optim
from optimizer_cases import ALL_OPTIMIZERS, OPTIMIZERS
from reference import grad_fn, nested_params

NAMES = sorted(OPTIMIZERS)


def _signature(tree):
    return jax.tree.structure(tree), [
        (jnp.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(tree)
    ]


def _structure_cases():
    """Every optimizer in float32 and bfloat16; torch_optim's in bfloat16 only, for the
    suite's time: the dtype where a state leaf is promoted by any wider operand."""
    for name in sorted(ALL_OPTIMIZERS):
        for dtype in [jnp.float32, jnp.bfloat16]:
            if name in OPTIMIZERS or dtype == jnp.bfloat16:
                yield pytest.param(name, dtype, id=f"{name}-{jnp.dtype(dtype).name}")


@pytest.mark.parametrize(("name", "dtype"), list(_structure_cases()))
def test_state_keeps_structure_shapes_and_dtypes(name, dtype):
    tx = ALL_OPTIMIZERS[name]()
    params = nested_params(dtype=dtype, seed=1)
    state0 = tx.init(params)

    def body(carry, _):
        p, s = carry
        u, s = tx.update(jax.tree.map(lambda x: x.astype(dtype), grad_fn(p)), s, p)
        return (gx.apply_updates(p, u), s), None

    # Shapes and dtypes are fixed by tracing, so the three steps are traced, not run
    # (scan itself refuses a carry whose types change from one step to the next).
    (params_n, state_n), _ = jax.eval_shape(
        lambda carry: jax.lax.scan(body, carry, None, length=3), (params, state0)
    )
    assert _signature(state_n) == _signature(state0)
    assert _signature(params_n) == _signature(params)


# Every public optimizer that takes a learning rate, by its public name: the catalogue's
# (``learning_rate``) and torch_optim's (``lr``). The list grows with OPTIMIZERS.
LEARNING_RATE_ARGUMENTS = sorted(
    [
        (module, name, "learning_rate")
        for name in OPTIMIZERS
        for module in (gx, gx.contrib)
        if hasattr(module, name)
    ]
    + [(gx.contrib, "sophia", "learning_rate"), (gx, "lbfgs", "learning_rate")]
    + [
        (torch_optim, name, "lr")
        for name in (
            "sgd",
            "adam",
            "adamw",
            "adagrad",
            "adadelta",
            "rmsprop",
            "rprop",
            "adamax",
            "nadam",
            "radam",
            "asgd",
        )
    ],
    key=lambda c: (c[0].__name__, c[1]),
)


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    LEARNING_RATE_ARGUMENTS,
    ids=[f"{m.__name__.split('.')[-1]}.{n}" for m, n, _ in LEARNING_RATE_ARGUMENTS],
)
@pytest.mark.parametrize(
    ("bad", "error"),
    [(-1.0, ValueError), (float("nan"), ValueError), ("0.1", TypeError)],
    ids=["negative", "nan", "str"],
)
def test_bad_learning_rate_is_refused_naming_it(module, name, argument, bad, error):
    assert len(LEARNING_RATE_ARGUMENTS) >= 45  # the whole catalogue and torch_optim
    with pytest.raises(error, match=argument):
        getattr(module, name)(**{argument: bad})


@pytest.mark.parametrize("name", NAMES)
def test_integer_leaves_are_refused_with_the_leaf_named(name):
    params = {"weights": jnp.ones(3), "step_count": jnp.array(7, jnp.int32)}
    with pytest.raises(TypeError, match="step_count"):
        OPTIMIZERS[name]().init(params)


@pytest.mark.parametrize("name", NAMES)
def test_masked_integer_leaves_pass_through_untouched(name):
    params = {"weights": jnp.ones(3), "step_count": jnp.array(7, jnp.int32)}
    tx = gx.multi_transform(
        {"train": OPTIMIZERS[name](), "frozen": gx.set_to_zero()},
        {"weights": "train", "step_count": "frozen"},
    )
    grads = {"weights": jnp.full(3, 0.5), "step_count": jnp.array(0, jnp.int32)}
    updates, _ = tx.update(grads, tx.init(params), params)
    new = gx.apply_updates(params, updates)
    assert new["step_count"].dtype == jnp.int32
    assert int(new["step_count"]) == 7


def test_counters_saturate_instead_of_overflowing():
    top = jnp.iinfo(jnp.int32).max
    assert int(gx.safe_increment(jnp.array(top, jnp.int32))) == top
    assert int(gx.safe_increment(jnp.array(top - 1, jnp.int32))) == top
    tx = gx.adam(1e-3)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    state = jax.tree.map(lambda x: jnp.full_like(x, top - 1) if x.dtype == jnp.int32 else x, state)
    for _ in range(3):
        updates, state = tx.update({"w": jnp.ones(3)}, state, params)
        assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
    counts = [int(x) for x in jax.tree.leaves(state) if x.dtype == jnp.int32]
    assert counts
    assert all(c == top for c in counts)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_bias_correction_finite_at_ten_million_steps_in_low_precision(name, dtype):
    tx = OPTIMIZERS[name]()
    params = {"w": jnp.ones(4, dtype)}
    state = jax.tree.map(
        lambda x: jnp.full_like(x, 10**7) if x.dtype == jnp.int32 else x, tx.init(params)
    )
    grads = {"w": jnp.full(4, 0.25, dtype)}
    updates, state = jax.jit(tx.update)(grads, state, params)
    u = np.asarray(updates["w"], np.float64)
    assert updates["w"].dtype == dtype
    assert np.all(np.isfinite(u))
    assert np.all(u < 0)
    # At t = 1e7 the corrections are 1: the first step from zero moments is
    # -lr * (1-b1) g / (sqrt((1-b2) g^2) + eps), computed here in float64.
    b1, b2, lr, g = 0.9, 0.999, 1e-2, 0.25
    expected = -lr * (1 - b1) * g / (np.sqrt((1 - b2) * g * g) + 1e-8)
    if name == "adamw":
        expected -= lr * 1e-2 * 1.0
    np.testing.assert_allclose(u, expected, rtol=2e-2)


@pytest.mark.slow
@pytest.mark.parametrize("table", sorted(checkpoint_worker.TABLES))
def test_checkpoint_resume_in_fresh_process_is_bit_identical(tmp_path, table):
    finals = checkpoint_worker.save_all(str(tmp_path), table)
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, checkpoint_worker.__file__, str(tmp_path), table],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, expected in finals.items():
        for fmt in checkpoint_worker.FORMATS:
            with np.load(tmp_path / f"{name}.{fmt}.resumed.npz") as data:
                resumed = [data[f"arr_{i}"] for i in range(len(data.files))]
            assert len(resumed) == len(expected)
            for r, e in zip(resumed, expected):
                assert r.dtype == e.dtype, (name, fmt)
                assert np.array_equal(r, e), (name, fmt)


@pytest.mark.parametrize("name", ["adam", "yogi", "adagrad", "rmsprop", "adadelta", "lamb"])
def test_moments_saturate_and_a_non_finite_gradient_is_never_hidden(name):
    """A finite float32 gradient of 1e30 saturates the second moment at float32's largest
    value, and so does the square of an infinite one; a NaN gradient makes every moment
    NaN. The infinite gradient is not hidden: the step of that entry is not finite (it is
    in ``g`` or the first moment that the saturated moment divides)."""
    g = jnp.array([1e30, jnp.inf, jnp.nan, 1.0, -jnp.inf], jnp.float32)
    params = jnp.zeros(5, jnp.float32)
    tx = OPTIMIZERS[name]()
    updates, state = jax.jit(tx.update)(g, tx.init(params), params)
    stats = [np.asarray(x) for x in jax.tree.leaves(state) if np.shape(x) == (5,)]
    assert stats, "no per-element statistics in the state"
    top = np.finfo(np.float32).max
    saturated = [s for s in stats if s[0] == top]
    assert saturated, "the squared 1e30 did not saturate"
    for s in stats:
        assert np.isfinite(s[0])
        assert np.isfinite(s[3])
        assert np.isnan(s[2])
        assert s[1] == top or not np.isfinite(s[1])
        assert s[4] == top or not np.isfinite(s[4])
    updates = np.asarray(updates)
    assert np.all(np.isfinite(updates[[0, 3]]))
    assert not np.any(np.isfinite(updates[[1, 2, 4]]))


def test_first_moment_is_bounded_where_its_dtype_can_overflow():
    """Adam's first moment is a convex combination: in float32, from ``g`` and ``m`` at
    float32's largest value it stays finite for every decay (so it is left unbounded). In a
    float16 ``mu_dtype`` the float32 gradient 1e30 would overflow: it saturates at
    float16's largest value, and an infinite gradient makes it NaN."""
    top = np.finfo(np.float32).max
    decays = [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]
    worst = jnp.array([top, -top], jnp.float32)
    moments = jax.jit(lambda g: [gx.tree.update_moment(g, g, d, 1) for d in decays])(worst)
    for decay, m in zip(decays, moments):
        assert np.all(np.abs(np.asarray(m)) <= top), decay

    g = jnp.array([1e30, jnp.inf, -1e30, 1.0], jnp.float32)
    params = jnp.zeros(4, jnp.float32)
    tx = gx.adam(1e-3, mu_dtype=jnp.float16)
    _, state = jax.jit(tx.update)(g, tx.init(params), params)
    mu = np.asarray(gx.tree.get(state, "mu"))
    half = np.finfo(np.float16).max
    assert mu.dtype == np.float16
    assert mu[0] == half
    assert mu[2] == -half
    assert np.isnan(mu[1])
    assert mu[3] == np.float16(0.1)
