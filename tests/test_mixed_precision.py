"""Half precision across the catalogue: updates in the incoming updates' dtype, every
state leaf keeping its dtype, under ``jit`` and as a ``lax.scan`` carry.

Each optimizer is traced as a scan (``jax.eval_shape``, no compile) in float16 and
bfloat16, and run for real (bfloat16, two steps op by op). The reference for the dtypes is the rule
itself (the params' dtype in, the same dtype out, as optax does); values are checked
finite and, for Adam-type methods, non-zero where the float16 moments would underflow.
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import gradxform as gx
from optimizer_cases import ALL_OPTIMIZERS
from test_inject_hyperparams import CATALOGUE, _factory

CASES = {
    **ALL_OPTIMIZERS,
    "sophia": lambda: gx.contrib.sophia(1e-2, update_interval=1),
    "lbfgs": lambda: gx.lbfgs(1e-2),
    "polyak_sgd": lambda: gx.polyak_sgd(),
    "optimistic_adam": lambda: gx.optimistic_adam(1e-2),
}


def _loss(p):
    return sum(jnp.sum(0.5 * x.astype(jnp.float32) ** 2) for x in jax.tree.leaves(p))


def _params(dtype):
    w = jnp.asarray([[0.5, -1.0, 2.0, 0.25], [0.3, 0.1, -0.7, 1.5], [1.0, -2.0, 0.6, 0.2]])
    return {"w": w.astype(dtype), "b": jnp.asarray([0.2, 1.5, -0.4]).astype(dtype)}


def _step(tx):
    def step(carry, _):
        params, state = carry
        value, grad = jax.value_and_grad(_loss)(params)
        extra = {"value": value, "grad": grad, "value_fn": _loss, "obj_fn": _loss}
        updates, state = tx.update(grad, state, params, **extra)
        return (gx.apply_updates(params, updates), state), updates

    return step


def _dtypes(tree):
    return [jnp.result_type(x) for x in jax.tree.leaves(tree)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_half_precision(name):
    tx = CASES[name]()
    step = _step(tx)
    for dtype in (jnp.float16, jnp.bfloat16):
        params = _params(dtype)
        state = tx.init(params)
        # Traced as a scan carry (each step as under jit): a carry whose dtypes or
        # structure drift is refused, and the updates come back in the params' dtype.
        (_, new_state), updates = jax.eval_shape(
            lambda c: jax.lax.scan(step, c, None, length=2), (params, state)
        )
        assert set(_dtypes(updates)) == {jnp.dtype(dtype)}, (dtype, _dtypes(updates))
        assert _dtypes(new_state) == _dtypes(state), dtype
    # Run for real, op by op (the small kernels are compiled once for the whole module).
    params = _params(jnp.bfloat16)
    carry = (params, tx.init(params))
    # The line search's loops are quicker compiled whole than run op by op.
    run = jax.jit(step) if name == "lbfgs" else step
    for _ in range(2):
        carry, updates = run(carry, None)
        assert _dtypes(carry[1]) == _dtypes(state)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((carry[0], updates)))


def test_float16_squared_gradients_do_not_underflow_to_a_step_of_m_over_eps():
    """``g^2 = 1e-8`` is 0 in float16: computed there, the step would be ``m / eps``."""
    g = {"w": jnp.full((3,), 1e-4, jnp.float16)}
    for name in ("adan", "adopt", "ademamix", "adabelief", "yogi"):
        kwargs, _ = CATALOGUE[name]
        tx = _factory(gx, name)(**kwargs)
        state = tx.init(g)
        for _ in range(2):  # adopt's first update is 0
            updates, state = tx.update(g, state, g)
        step = np.asarray(updates["w"], np.float64)
        assert np.all(np.abs(step) < 0.05), (name, step)  # about lr, not lr * g / eps


@pytest.mark.parametrize(
    "scalar",
    [
        jnp.asarray(1e-2, jnp.bfloat16),
        ml_dtypes.bfloat16(1e-2),
        np.float16(1e-2),
        np.float32(1e-2),
        jnp.asarray(1e-2, jnp.float64),
    ],
    ids=["jax-bfloat16", "numpy-bfloat16", "float16", "float32", "jax-float64"],
)
def test_scalar_hyperparameters_of_any_float_dtype(scalar):
    for name, (kwargs, _) in CATALOGUE.items():
        if "learning_rate" in kwargs:
            _factory(gx, name)(**{**kwargs, "learning_rate": scalar})
    with pytest.raises(ValueError, match="b1"):
        gx.adam(scalar, b1=jnp.asarray(1.5, jnp.bfloat16))
    with pytest.raises(ValueError, match="eps"):
        gx.adan(scalar, eps=-scalar)
