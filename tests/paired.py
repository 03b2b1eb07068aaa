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

from reference import assert_trees_close, grad_fn, nested_params, run

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


fast_jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)


def compiled_call(fn, *args):
    """``jax.jit(fn)(*args)``, compiled with cheap options."""
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)


def trajectories(tx, reference_tx, params, steps: int = 100, grads=grad_fn):
    """Both parameter trajectories, compiled together."""
    return compiled_call(
        lambda p: (run(tx, p, steps, grads=grads), run(reference_tx, p, steps, grads=grads)),
        params,
    )


def assert_same_trajectory(tx, reference_tx, steps: int = 100, params=None, grads=grad_fn, **kw):
    """Runs both from the same start, compares every step, and checks the params moved."""
    params = nested_params() if params is None else params
    ours, theirs = trajectories(tx, reference_tx, params, steps, grads)
    assert_trees_close(ours, theirs, **kw)
    moved = max(
        float(jnp.max(jnp.abs(a[-1] - b)))
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(params))
    )
    assert moved > 1e-6, "the trajectory did not move"
    return ours
