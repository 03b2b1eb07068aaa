"""gx.multi_normal against optax.multi_normal and a float64 NumPy log-density."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx


def _params(loc_shape, scale_shape, dtype=jnp.float64):
    rng = np.random.default_rng(0)
    loc = jnp.asarray(rng.normal(size=loc_shape), dtype)
    log_scale = jnp.asarray(0.5 * rng.normal(size=scale_shape), dtype)
    return loc, log_scale


@pytest.mark.parametrize(
    ("loc_shape", "scale_shape"), [((), ()), ((1, 4), (3, 4)), ((1, 2, 1, 3), (2, 1, 4, 3))]
)
def test_samples_and_log_prob_match_optax(loc_shape, scale_shape):
    loc, log_scale = _params(loc_shape, scale_shape)
    ours, theirs = gx.multi_normal(loc, log_scale), optax.multi_normal(loc, log_scale)
    key = jax.random.key(3)
    sample = ours.sample([5], key)
    np.testing.assert_allclose(sample, theirs.sample((5,), key), rtol=1e-12, atol=0)
    assert sample.shape == (5, *jnp.broadcast_shapes(loc_shape, scale_shape))
    np.testing.assert_allclose(ours.log_prob(sample), theirs.log_prob(sample), rtol=1e-12)
    for a, b in zip(ours.params, theirs.params):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.log_scale, log_scale)


def test_log_prob_is_the_diagonal_gaussian_density():
    loc, log_scale = _params((2, 3), (3,))
    x = np.random.default_rng(1).normal(size=(4, 2, 3))
    sigma = np.exp(np.asarray(log_scale))
    density = np.exp(-0.5 * ((x - np.asarray(loc)) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    expected = np.log(density).sum(axis=(-2, -1))
    np.testing.assert_allclose(gx.multi_normal(loc, log_scale).log_prob(x), expected, rtol=1e-12)


def test_sample_keeps_float32_under_x64():
    loc, log_scale = _params((3,), (3,), jnp.float32)
    assert gx.multi_normal(loc, log_scale).sample((2,), jax.random.key(0)).dtype == jnp.float32


def test_shapes_that_do_not_broadcast_raise():
    with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
        gx.multi_normal(jnp.zeros((2, 4)), jnp.zeros((3, 4)))
