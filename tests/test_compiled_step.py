"""Each alias that optax also has compiles, on the default path, to a step whose kernels
and bytes grow with the tree no faster than optax's.

Counted from the compiled programs (``bench.cost``), never timed: two steps with the same
kernels and bytes take the same time up to the measurement's scatter, so this is what
keeps the benchmark's plain rows at optax's. The counts are taken on a tree of one block
(a matrix, a vector, a scalar) and of two, and the differences compared: what one more
block of parameters costs, without the per-step work that no tree size changes (one
scalar kernel for a bias correction's ``1 - b^t``). It catches a change that looks free
in the source but alters XLA's fusion, e.g. a moment's bound that XLA recomputes in every
consumer and then copies the donated buffer for (a third more bytes for Adam).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest

import gradxform as gx
from bench import cost
from test_state_layout import CONTRIB, TOP_LEVEL, _optax, _ours

# Steps whose update needs what this test does not give (a loss value and a function).
NOT_COMPARED = {
    "lbfgs": "update needs value, grad and value_fn",
    "polyak_sgd": "update needs the loss value",
    "reduce_on_plateau": "update needs the loss value",
}
# What else each step's update takes, as keyword arguments.
EXTRA = {
    "momo": {"value": 0.5},
    "momo_adam": {"value": 0.5},
    "sophia": {"obj_fn": lambda q: sum(jnp.sum(x**2) for x in jax.tree.leaves(q))},
}
# optax's sm3 fails on a 0-d leaf (gradxform's does not: tests/test_optimizers_optax.py).
NO_SCALAR = {"sm3"}


@pytest.fixture
def float32():
    # The benchmark's dtype.
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


def _params(name: str, blocks: int) -> dict:
    block = {
        "w": jnp.full((256, 128), 0.5, jnp.float32),
        "b": jnp.full((128,), -0.5, jnp.float32),
        "s": jnp.array(2.0, jnp.float32),
    }
    if name in NO_SCALAR:
        del block["s"]
    return {f"block{i}": dict(block) for i in range(blocks)}


def _counts(build, apply_updates, name: str, blocks: int) -> tuple[dict, str]:
    params = _params(name, blocks)
    grads = jax.tree.map(lambda p: 1e-2 * p, params)
    tx = build(1e-3)
    state = tx.init(params)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params, **EXTRA.get(name, {}))
        return apply_updates(params, updates), state

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    return cost.compiled_cost(compiled), compiled.as_text() or ""


def _per_block(build, apply_updates, name: str) -> tuple[dict, str]:
    (one, _), (two, text) = (_counts(build, apply_updates, name, n) for n in (1, 2))
    return {k: two[k] - one[k] for k in ("kernels", "bytes_accessed")}, text


@pytest.mark.parametrize("name", [n for n in TOP_LEVEL + CONTRIB if n not in NOT_COMPARED])
def test_default_step_grows_no_faster_than_optax(name, float32):
    ours, _ = _per_block(_ours(name), gx.apply_updates, name)
    theirs, text = _per_block(_optax(name), optax.apply_updates, name)
    assert ours["bytes_accessed"] <= theirs["bytes_accessed"], (ours, theirs)
    # Kernels inside a conditional or loop are not counted (bench.cost counts the entry
    # computation): where optax branches (novograd's first step), only bytes compare.
    if " conditional(" not in text and " while(" not in text:
        assert ours["kernels"] <= theirs["kernels"], (ours, theirs)
