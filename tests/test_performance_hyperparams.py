"""Hyperparameters are data: changing them between steps never recompiles.

Each test counts how often the step's Python body is traced (once per compilation)
while the hyperparameters change, and checks the numbers against optax.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from reference import assert_trees_close, loss, nested_params

FACTORIES = {
    "adam": lambda m, h: m.adam(h, b1=9 * h, b2=1 - h / 100, eps=h * 1e-7),
    "adamw": lambda m, h: m.adamw(h, weight_decay=h),
    "sgd_momentum": lambda m, h: m.sgd(h, momentum=9 * h),
    "lamb": lambda m, h: m.lamb(h, weight_decay=h),
    "lion": lambda m, h: m.lion(h / 10, b1=9 * h, weight_decay=h),
    "adafactor": lambda m, h: m.adafactor(h, decay_rate=8 * h),
    "clip_adamw": lambda m, h: m.chain(m.clip_by_global_norm(10 * h), m.adamw(h)),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_hyperparameters_as_jit_arguments_compile_once(name):
    build = FACTORIES[name]
    traces = []

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, h):
        traces.append(1)
        tx = build(gx, h)  # built inside the step: h is traced, not baked in
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return gx.apply_updates(params, updates), state

    params = nested_params()
    state = build(gx, 0.1).init(params)
    ref_params = nested_params()
    ref_state = build(optax, 0.1).init(ref_params)
    for h in (0.1, 0.05, 0.02, 0.08):
        params, state = step(params, state, jnp.asarray(h))
        ref_tx = build(optax, h)  # optax: a new transformation, a new compilation
        updates, ref_state = ref_tx.update(jax.grad(loss)(ref_params), ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, updates)
    assert len(traces) == 1
    assert_trees_close(params, ref_params, rtol=1e-9, atol=1e-12)


def test_train_step_learning_rate_changes_without_recompiling():
    traces = []

    def loss_fn(params, scale):
        traces.append(1)
        return scale * loss(params)

    step = gx.train_step(loss_fn, gx.adamw, learning_rate=0.1, b1=0.9, weight_decay=0.01)
    state = step.init(nested_params())
    ref_tx = optax.inject_hyperparams(optax.adamw)(learning_rate=0.1, b1=0.9, weight_decay=0.01)
    ref_params = nested_params()
    ref_state = ref_tx.init(ref_params)
    for lr, b1 in [(0.1, 0.9), (0.05, 0.8), (0.01, 0.95), (0.07, 0.9)]:
        old = state.params
        state, value = step(state, 2.0, learning_rate=lr, b1=b1)
        assert all(x.is_deleted() for x in jax.tree.leaves(old))  # donated
        np.testing.assert_allclose(value, 2.0 * loss(ref_params), rtol=1e-12)
        ref_state.hyperparams["learning_rate"] = jnp.asarray(lr)
        ref_state.hyperparams["b1"] = jnp.asarray(b1)
        grads = jax.grad(lambda p: 2.0 * loss(p))(ref_params)
        updates, ref_state = ref_tx.update(grads, ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, updates)
    assert len(traces) == 1
    assert_trees_close(state.params, ref_params, rtol=1e-9, atol=1e-12)


def test_train_step_rejects_unknown_and_static_overrides():
    step = gx.train_step(lambda p: loss(p), gx.sgd, learning_rate=0.1, nesterov=True)
    state = step.init(nested_params())
    with pytest.raises(TypeError, match="nesterov"):
        step(state, nesterov=False)
    with pytest.raises(TypeError, match="factory"):
        gx.train_step(loss, gx.sgd(0.1), learning_rate=0.2)


def test_train_step_with_aux_and_grouping():
    def loss_fn(params):
        return loss(params), {"n": jnp.asarray(len(jax.tree.leaves(params)))}

    step = gx.train_step(loss_fn, gx.adam, has_aux=True, group=True, learning_rate=0.05)
    state = step.init(nested_params())
    assert isinstance(state.opt_state, gx.GroupedState)
    ref_tx = optax.adam(0.05)
    ref_params = nested_params()
    ref_state = ref_tx.init(ref_params)
    for _ in range(5):
        state, _, aux = step(state)
        updates, ref_state = ref_tx.update(jax.grad(loss)(ref_params), ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, updates)
    assert int(aux["n"]) == 6
    assert_trees_close(state.params, ref_params, rtol=1e-9, atol=1e-12)


def test_injected_hyperparameters_change_without_recompiling():
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return gx.apply_updates(params, updates), state

    tx = gx.inject_hyperparams(gx.adam)(learning_rate=0.1)
    ref = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    params = ref_params = nested_params()
    state, ref_state = tx.init(params), ref.init(params)
    for lr in (0.1, 0.03, 0.06):
        state.hyperparams["learning_rate"] = jnp.asarray(
            lr, state.hyperparams["learning_rate"].dtype
        )
        ref_state.hyperparams["learning_rate"] = jnp.asarray(lr)
        params, state = step(params, state)
        updates, ref_state = ref.update(jax.grad(loss)(ref_params), ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, updates)
    assert len(traces) == 1
    assert_trees_close(params, ref_params, rtol=1e-9, atol=1e-12)
