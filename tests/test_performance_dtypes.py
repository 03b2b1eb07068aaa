"""Mixed precision: bfloat16 params with float32 moments, and float32 master weights.

References are independent: a NumPy float32 Adam for the moments, optax on a float32
copy of the params for the master weights.
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax

import gradxform as gx

BF16 = jnp.bfloat16


def numpy_adam(params, grads_fn, steps, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    """Adam with float32 moments on bfloat16 params, step by step in NumPy."""
    p = {k: np.asarray(v) for k, v in params.items()}
    m = {k: np.zeros(v.shape, np.float32) for k, v in p.items()}
    v = {k: np.zeros(x.shape, np.float32) for k, x in p.items()}
    for t in range(1, steps + 1):
        g = grads_fn(p)
        for k in p:
            gk = g[k].astype(np.float32)
            m[k] = np.float32(b1) * m[k] + np.float32(1 - b1) * gk
            v[k] = np.float32(b2) * v[k] + np.float32(1 - b2) * gk * gk
            m_hat = m[k] / np.float32(1 - b1**t)
            v_hat = v[k] / np.float32(1 - b2**t)
            u = np.float32(-lr) * (m_hat / (np.sqrt(v_hat) + np.float32(eps)))
            p[k] = (p[k].astype(np.float32) + u).astype(ml_dtypes.bfloat16)
    return p, m, v


def bf16_params():
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(8, 4)), BF16),
        "b": jnp.asarray(rng.normal(size=(4,)), BF16),
    }


def bf16_grads(p):
    # d/dx of sum(x^2/2 + sin(3x)), evaluated in bfloat16 as a bfloat16 model would.
    return {
        k: (x + 3 * np.cos(3 * x.astype(np.float32))).astype(ml_dtypes.bfloat16)
        for k, x in p.items()
    }


def test_adam_float32_moments_for_bfloat16_params():
    params = bf16_params()
    tx = gx.adam(1e-2, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    state = tx.init(params)
    assert {x.dtype for x in jax.tree.leaves(state) if x.ndim} == {jnp.dtype(jnp.float32)}

    @jax.jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gx.apply_updates(p, u), s

    p = params
    for _ in range(20):
        g = jax.tree.map(jnp.asarray, bf16_grads({k: np.asarray(x) for k, x in p.items()}))
        p, state = step(p, state, g)
    assert {x.dtype for x in jax.tree.leaves(p)} == {jnp.dtype(BF16)}
    ref_p, ref_m, ref_v = numpy_adam(params, bf16_grads, 20)
    mu = state[0].mu
    nu = state[0].nu
    for k in ref_p:
        np.testing.assert_allclose(mu[k], ref_m[k], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(nu[k], ref_v[k], rtol=1e-5, atol=1e-9)
        # bfloat16 keeps 8 bits: allow one unit in the last place.
        np.testing.assert_allclose(
            np.asarray(p[k], np.float32), ref_p[k].astype(np.float32), rtol=2**-7, atol=0
        )


def test_nu_dtype_defaults_to_the_params_dtype():
    params = bf16_params()
    state = gx.adamw(1e-2, mu_dtype=jnp.float32).init(params)
    dtypes = sorted({str(x.dtype) for x in jax.tree.leaves(state) if x.ndim})
    assert dtypes == ["bfloat16", "float32"]  # like optax: only mu is widened


def test_master_weights_follow_float32_optax():
    params, start = bf16_params(), bf16_params()

    def loss_fn(p):
        # Computed in float32 from the bfloat16 params: one rounding, jitted or not.
        xs = [x.astype(jnp.float32) for x in jax.tree.leaves(p)]
        return sum(jnp.sum(0.5 * x**2 + jnp.sin(3.0 * x)) for x in xs)

    step = gx.train_step(loss_fn, gx.adam, master_dtype=jnp.float32, learning_rate=1e-2)
    state = step.init(params)  # donated by the first step
    assert {x.dtype for x in jax.tree.leaves(state.master)} == {jnp.dtype(jnp.float32)}
    ref = optax.adam(1e-2)
    master = jax.tree.map(lambda x: x.astype(jnp.float32), start)
    ref_state = ref.init(master)
    for _ in range(20):
        state, _ = step(state)
        model = jax.tree.map(lambda x: x.astype(BF16), master)
        g = jax.tree.map(lambda x: x.astype(jnp.float32), jax.grad(loss_fn)(model))
        updates, ref_state = ref.update(g, ref_state, master)
        master = optax.apply_updates(master, updates)
    for k in master:
        assert state.params[k].dtype == BF16
        np.testing.assert_allclose(state.master[k], master[k], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(
            np.asarray(state.params[k], np.float32), np.asarray(master[k].astype(BF16), np.float32)
        )
    # The bfloat16 params alone could not have moved this far in small steps: the master
    # copy accumulates updates below bfloat16's resolution.
    assert not np.allclose(np.asarray(state.master["w"]), np.asarray(start["w"], np.float32))


def test_grouped_keeps_dtypes():
    params = {**bf16_params(), "c": jnp.ones((4,), BF16), "d": jnp.ones((4,), jnp.float32)}
    tx = gx.grouped(gx.adam(1e-2, mu_dtype=jnp.float32))
    state = tx.init(params)
    updates, _ = tx.update(params, state, params)
    ref, _ = optax.adam(1e-2, mu_dtype=jnp.float32).update(
        params, optax.adam(1e-2, mu_dtype=jnp.float32).init(params), params
    )
    for k in params:
        assert updates[k].dtype == ref[k].dtype
        np.testing.assert_allclose(
            np.asarray(updates[k], np.float32), np.asarray(ref[k], np.float32), rtol=1e-2
        )
