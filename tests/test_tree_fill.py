"""``gx.tree.zeros_like`` / ``ones_like`` / ``full_like`` under ``jit`` equal NumPy's fill,
bit for bit (signed zeros, inf and NaN fills, every dtype). On one device they are
``jnp.full_like``; on several, the same fills tied to the leaf's sharding are checked on
8 devices by tests/test_sharding.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

LEAVES = {
    "f32": jnp.array([1.0, jnp.inf, jnp.nan, -0.0], jnp.float32),
    "bf16": jnp.array([[1.0, -2.0]], jnp.bfloat16),
    "f16": jnp.array(3.0, jnp.float16),
    "c64": jnp.array([1 + 2j, jnp.nan], jnp.complex64),
    "empty": jnp.zeros((0, 3), jnp.float32),
}
FILLS = [0, 0.0, -0.0, 1, 0.1, -2.5, np.float32(1e-3), np.inf, -np.inf, np.nan]


def _bits(x):
    """Bytes of the array: equal bits, NaN payload and the sign of zero included."""
    return np.asarray(x).tobytes()


def _expected(fill, dtype):
    # Independent of the code under test: NumPy's own fill, rounded once into the dtype
    # as jnp.full_like does (through float32 for a Python float in 32-bit mode).
    return np.full((), jnp.asarray(fill, dtype), dtype)


@pytest.mark.parametrize("fill", FILLS, ids=repr)
@pytest.mark.parametrize("dtype", [None, jnp.float32, jnp.bfloat16])
def test_full_like_under_jit_is_the_fill(fill, dtype):
    out = jax.jit(lambda t: gx.tree.full_like(t, fill, dtype))(LEAVES)
    for name, leaf in LEAVES.items():
        dt = leaf.dtype if dtype is None else dtype
        got = out[name]
        assert got.shape == leaf.shape, name
        assert got.dtype == dt, name
        want = np.broadcast_to(_expected(fill, dt), leaf.shape)
        assert _bits(got) == _bits(want), (name, got, want)


@pytest.mark.parametrize("dtype", [None, jnp.float32, jnp.float16])
def test_zeros_and_ones_like_under_jit(dtype):
    zeros = jax.jit(lambda t: gx.tree.zeros_like(t, dtype))(LEAVES)
    ones = jax.jit(lambda t: gx.tree.ones_like(t, dtype))(LEAVES)
    for name, leaf in LEAVES.items():
        dt = leaf.dtype if dtype is None else dtype
        # +0 and 1 everywhere, inf and NaN leaves included.
        assert _bits(zeros[name]) == _bits(np.zeros(leaf.shape, dt)), name
        assert _bits(ones[name]) == _bits(np.ones(leaf.shape, dt)), name


def test_traced_and_array_fills():
    leaf = jnp.arange(4.0)
    traced = jax.jit(lambda t, f: gx.tree.full_like(t, f))(leaf, jnp.float32(-3.0))
    np.testing.assert_array_equal(np.asarray(traced), np.full(4, -3.0, np.float32))
    row = jnp.array([1.0, 2.0, 3.0, 4.0])
    broadcast = jax.jit(lambda t: gx.tree.full_like(t, row))(jnp.zeros((2, 4)))
    np.testing.assert_array_equal(np.asarray(broadcast), np.tile(np.asarray(row), (2, 1)))
