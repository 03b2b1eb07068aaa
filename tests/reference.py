"""Shared test fixtures: a nested mixed-shape pytree, a trajectory runner and tree comparisons.

Parity tests run the same gradients through gradxform and a reference implementation
(optax, torch, a closed form) and compare parameters; nothing is compared with itself.
``paired.assert_same_trajectory`` is the one helper that runs and compares two trajectories.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def nested_params(dtype=jnp.float64, seed: int = 0):
    """A nested dict/tuple/list tree with 0-d, 1-d, 2-d and 3-d leaves."""
    rng = np.random.default_rng(seed)
    arr = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype=dtype)
    return {
        "dense": {"w": arr(4, 3), "b": arr(3)},
        "conv": (arr(2, 3, 2), arr()),
        "head": [arr(5), {"scale": arr(1, 1)}],
    }


def loss(params):
    """A non-quadratic loss, so every optimizer's trajectory has curvature to follow."""
    leaves = jax.tree.leaves(params)
    return sum(
        jnp.sum(0.5 * (i + 1) * x**2 + jnp.sin(3.0 * x) + 0.1 * x**4 / (1 + i))
        for i, x in enumerate(leaves)
    )


grad_fn = jax.grad(loss)


def run(tx, params, steps: int = 100, grads=grad_fn, extra=None, jit: bool = True):
    """``steps`` updates of ``tx`` on ``params``; returns the parameter trajectory."""

    def step(carry, _):
        p, s = carry
        g = grads(p)
        kwargs = extra(p) if extra is not None else {}
        u, s = tx.update(g, s, p, **kwargs)
        p = jax.tree.map(lambda a, b: a + b, p, u)
        return (p, s), p

    state = tx.init(params)
    if jit:
        (_, _), traj = jax.lax.scan(step, (params, state), None, length=steps)
    else:
        carry, out = (params, state), []
        for _ in range(steps):
            carry, p = step(carry, None)
            out.append(p)
        traj = jax.tree.map(lambda *xs: jnp.stack(xs), *out)
    return traj


def assert_trees_close(actual, expected, rtol: float = 1e-9, atol: float = 1e-12):
    """Element-wise ``|a - e| <= atol + rtol |e|`` on every leaf, with the same structure."""
    # jaxlib ships PyTreeDef without a stub, so mypy cannot see its __eq__.
    assert jax.tree.structure(actual) == jax.tree.structure(expected), (  # type: ignore[operator]
        jax.tree.structure(actual),
        jax.tree.structure(expected),
    )
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, (a.shape, e.shape, a.dtype, e.dtype)
        assert a.dtype == e.dtype, (a.shape, e.shape, a.dtype, e.dtype)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def max_gap(tree_a, tree_b) -> float:
    """The largest element-wise ``|a - b|`` over two trees of the same structure."""
    pairs = zip(jax.tree.leaves(tree_a), jax.tree.leaves(tree_b))
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)
