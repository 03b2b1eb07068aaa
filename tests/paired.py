"""Comparing two transformations' trajectories from one compilation.

Compiling both trajectories in one XLA program at backend optimisation level 0 costs
about a third of the CPU time of two separate default compilations; these programs are
tiny, so run time does not matter. Numerics are compared to rel 1e-9, which lower
optimisation levels do not approach.
"""

from __future__ import annotations

import functools

import jax

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
