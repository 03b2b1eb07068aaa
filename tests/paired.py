"""Comparing two transformations' trajectories from one compilation.

Compiling both trajectories in one XLA program at backend optimisation level 0 costs
about a third of the CPU time of two separate default compilations; these programs are
tiny, so run time does not matter. Numerics are compared to rel 1e-9, which lower
optimisation levels do not approach.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx
from reference import assert_trees_close, grad_fn, max_gap, nested_params, run

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


fast_jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)


def compiled_call(fn, *args):
    """``jax.jit(fn)(*args)``, compiled with cheap options."""
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)


def trajectories(tx, reference_tx, params, steps: int = 100, grads=grad_fn, extra=None):
    """Both parameter trajectories, compiled together.

    ``extra(params)`` returns the keyword arguments each ``update`` gets (e.g. ``obj_fn``).
    """
    return compiled_call(
        lambda p: (
            run(tx, p, steps, grads=grads, extra=extra),
            run(reference_tx, p, steps, grads=grads, extra=extra),
        ),
        params,
    )


def assert_same_trajectory(
    tx, reference_tx, steps: int = 100, params=None, grads=grad_fn, extra=None, **kw
):
    """Runs both from the same start, compares every step, and checks the params moved.

    ``kw`` goes to ``assert_trees_close`` (``rtol``, ``atol``). Returns our trajectory.
    """
    params = nested_params() if params is None else params
    ours, theirs = trajectories(tx, reference_tx, params, steps, grads, extra)
    assert_trees_close(ours, theirs, **kw)
    # The trajectory must actually move, or the comparison proves nothing.
    assert max_gap(jax.tree.map(lambda x: x[-1], ours), params) > 1e-6, "did not move"
    return ours


def assert_bf16_params_keep_f32_moments(tx, moments=None, steps: int = 3):
    """``tx`` built with ``mu_dtype=float32`` on bfloat16 params: ``steps`` updates inside a
    ``lax.scan`` (which fixes the carry's dtypes, so a moment or parameter changing dtype
    fails) keep the params bfloat16, finite and moving, and the moments float32 (the tree
    ``moments(state)`` gives, shaped like the params, or else at least one float32 leaf
    per parameter leaf)."""
    params = nested_params(jnp.bfloat16)

    def step(carry, _):
        p, s = carry
        u, s = tx.update(grad_fn(p), s, p)
        return (gx.apply_updates(p, u), s), None

    (p, state), _ = compiled_call(
        lambda p0: jax.lax.scan(step, (p0, tx.init(p0)), None, length=steps), params
    )
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(p))
    assert all(np.all(np.isfinite(np.asarray(x, np.float32))) for x in jax.tree.leaves(p))
    assert max_gap(jax.tree.map(lambda x: x.astype(jnp.float32), p), params) > 0
    if moments is not None:
        mu = moments(state)
        # jaxlib ships PyTreeDef without a stub
        assert jax.tree.structure(mu) == jax.tree.structure(params)  # type: ignore[operator]
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(mu))
    else:
        f32 = [x for x in jax.tree.leaves(state) if x.dtype == jnp.float32]
        assert len(f32) >= len(jax.tree.leaves(params))
