"""gradxform.microbatching against the full-batch computation (float64) and optax's."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx

mb, omb = gx.microbatching, optax.microbatching
rng = np.random.default_rng(0)
X = jnp.asarray(rng.normal(size=(12, 3)))
Y = jnp.asarray(rng.normal(size=(12,)))
W = jnp.asarray(rng.normal(size=(3,)))


def squared_error(w, x, y):
    return 0.5 * jnp.sum((x @ w - y) ** 2)


@pytest.mark.parametrize("microbatch_size", [1, 4])
def test_micro_grad_sum_is_the_full_batch_gradient(microbatch_size):
    clip = lambda g: g / jnp.maximum(1.0, jnp.linalg.norm(g))
    kwargs = dict(
        batch_argnums=(1, 2),
        microbatch_size=microbatch_size,
        transform_fn=lambda g: (g, clip(g)),
        metrics_fn=jnp.linalg.norm,
    )
    (grad, clipped), aux = mb.micro_grad(squared_error, **kwargs)(W, X, Y)
    residual = np.asarray(X @ W - Y)
    np.testing.assert_allclose(grad, np.asarray(X).T @ residual, rtol=1e-12)  # X^T (X w - y)
    np.testing.assert_allclose(aux.values, 0.5 * residual**2, rtol=1e-12)
    per_example = np.asarray(X) * residual[:, None]
    np.testing.assert_allclose(aux.metrics, np.linalg.norm(per_example, axis=1), rtol=1e-12)
    (o_grad, o_clipped), o_aux = omb.micro_grad(squared_error, **kwargs)(W, X, Y)
    np.testing.assert_allclose(clipped, o_clipped, rtol=1e-12)
    np.testing.assert_allclose(grad, o_grad, rtol=1e-12)
    np.testing.assert_allclose(aux.metrics, o_aux.metrics, rtol=1e-12)
    assert aux.aux is None


def test_microbatch_accumulations_match_full_batch_and_optax():
    def fun(scale, x, y):
        return {
            "rows": scale * x * y[:, None],
            "sum": jnp.sum(x, axis=0),
            "mean": jnp.mean(y),
            "running": jnp.mean(x),
        }

    spec = {
        "rows": mb.AccumulationType.CONCAT,
        "sum": mb.AccumulationType.SUM,
        "mean": mb.AccumulationType.MEAN,
        "running": mb.AccumulationType.RUNNING_MEAN,
    }
    ours = mb.microbatch(fun, (1, 2), 3, spec)(2.0, X, Y)
    full = fun(2.0, X, Y)
    for key in ("rows", "mean", "running"):  # the mean of 4 means of 3 rows is the mean
        np.testing.assert_allclose(ours[key], full[key], rtol=1e-12)
    np.testing.assert_allclose(ours["sum"], full["sum"], rtol=1e-12)
    o_spec = {k: getattr(omb.AccumulationType, v.name) for k, v in spec.items()}
    for stop in (None, 2):  # 2 of 4 microbatches: optax's early-stopping semantics
        ours = mb.microbatch(fun, (1, 2), 3, spec, num_real_microbatches=stop)(2.0, X, Y)
        theirs = omb.microbatch(fun, (1, 2), 3, o_spec, num_real_microbatches=stop)(2.0, X, Y)
        for key in spec:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, err_msg=key)


def test_micro_vmap_is_vmap_with_keywords_and_a_negative_axis():
    fun = lambda x, *, y: jnp.sum(x * y)
    x = jnp.asarray(rng.normal(size=(3, 8)))
    y = jnp.asarray(rng.normal(size=(8, 3)))
    ours = mb.micro_vmap(fun, in_axes=-1, microbatch_size=2)(x, y=y)
    np.testing.assert_allclose(ours, jax.vmap(fun, in_axes=-1)(x, y=y), rtol=1e-12)
    total = mb.micro_vmap(fun, -1, microbatch_size=4, accumulator=mb.AccumulationType.SUM)
    np.testing.assert_allclose(total(x, y=y), np.sum(np.asarray(x).T * np.asarray(y)), rtol=1e-12)


def test_half_precision_sums_are_formed_in_float32():
    # 512 ones summed one by one in bfloat16 stop at 256 (257 is not representable).
    ones = jnp.ones(512, jnp.bfloat16)
    total = mb.microbatch(jnp.sum, 0, 1)(ones)
    assert total.dtype == jnp.bfloat16
    assert float(total) == 512.0


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="divisible"):
        mb.microbatch(jnp.sum, 0, 5)(X)
    with pytest.raises(ValueError, match="microbatch_size"):
        mb.microbatch(jnp.sum, 0, 0)
    with pytest.raises(ValueError, match="floating"):
        mb.microbatch(jnp.sum, 0, 2, mb.AccumulationType.MEAN)(jnp.arange(4))
    with pytest.raises(ValueError, match="one batch size"):
        mb.microbatch(lambda a, b: a + b, (0, 1), 2)(jnp.ones(4), jnp.ones(6))
    assert mb.microbatch(jnp.sum, 0, None) is jnp.sum
