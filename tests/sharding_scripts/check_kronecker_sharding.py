"""gx.shampoo on 8 host CPU devices, checked against a single-device run (float32).

Run by tests/test_shampoo.py in a subprocess (it needs
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX starts). Three runs of
``STEPS`` compiled steps from the same params and gradients:

- ``single``: unsharded, on one device;
- ``auto``: params with ``NamedSharding``s on an ``Auto`` 4x2 ("data", "model") mesh,
  the state laid out by ``jit``;
- ``sharded_roots``: as ``auto`` with ``shard_roots_over=(mesh, ("data", "model"))``:
  the factor and root stacks are split 8 ways and each device computes its eighth of
  the inverse roots.

Prints ``SUMMARY {...}`` (one JSON line): the largest difference from ``single``
relative to each leaf's largest entry, and the factor and state bytes per device; with
``GX_KRONECKER_TIMING=1`` also compile and step times of the three setups.
"""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradxform as gx
from gradxform import sharding as gxs

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for reference.loss
from reference import loss

STEPS = 4
TIMED = 5
SPECS = {
    "w1": P("data", "model"),
    "w2": P("model", None),
    "conv": P(None, None, None, "model"),
    "b": P("model"),
    "s": P(),
}
# A relative ridge of 1e-3 keeps float32 Newton roots well inside their tolerance, so
# different summation orders do not scatter them (quirk S6 at 1e-6).
OPTIONS = dict(
    learning_rate=0.01,
    block_size=16,
    start_preconditioning_step=1,
    matrix_epsilon=1e-3,
    graft_type="rmsprop_normalized",
    merge_small_dims_block_size=16,
)


def _params():
    rng = np.random.default_rng(0)
    arr = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    return {
        "w1": arr(64, 48),
        "w2": arr(48, 24),
        "conv": arr(3, 3, 8, 16),
        "b": arr(48),
        "s": arr(),
    }


def _trajectory(tx, params):
    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        p = gx.apply_updates(p, u)
        return (p, s), p

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, length=STEPS))
    (_, state), traj = run(params)
    return traj, state


def _step_time(tx, params):
    state = jax.jit(tx.init)(params)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return gx.apply_updates(p, u), s

    start = time.perf_counter()
    params, state = jax.block_until_ready(step(params, state))
    compile_s = time.perf_counter() - start
    # The outputs' layouts may differ from the inputs' (XLA picks them on an Auto mesh):
    # the next calls compile again until the layouts settle, so they are not timed.
    for _ in range(2):
        params, state = jax.block_until_ready(step(params, state))
    start = time.perf_counter()
    for _ in range(TIMED):
        params, state = step(params, state)
    jax.block_until_ready((params, state))
    return compile_s, (time.perf_counter() - start) / TIMED * 1e3


def _max_rel_diff(a, b):
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        worst = max(worst, float(np.max(np.abs(x - y)) / np.max(np.abs(y))))
    return worst


def _factor_bytes(state):
    held = gxs.bytes_per_device((state.statistics, state.preconditioners))
    return max(held.values())


def main():
    assert jax.device_count() == 8, jax.devices()
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    params = _params()
    sharded = {k: jax.device_put(v, NamedSharding(mesh, SPECS[k])) for k, v in params.items()}

    plain = gx.shampoo(**OPTIONS)
    spread = gx.shampoo(**OPTIONS, shard_roots_over=(mesh, ("data", "model")))
    single, single_state = _trajectory(plain, jax.device_put(params, jax.devices()[0]))
    auto, auto_state = _trajectory(plain, sharded)
    spread_traj, spread_state = _trajectory(spread, sharded)
    layouts = {str(s.shape): str(s.sharding.spec) for s in spread_state.preconditioners}
    summary = {
        "auto_mesh_max_rel_diff": _max_rel_diff(auto, single),
        "sharded_roots_max_rel_diff": _max_rel_diff(spread_traj, single),
        "roots_sharded_over": len(spread_state.preconditioners[0].sharding.device_set)
        if not spread_state.preconditioners[0].sharding.is_fully_replicated
        else 1,
        "root_stack_layouts": layouts,
        "factor_bytes_per_device": {
            "single_device": _factor_bytes(single_state),
            "auto": _factor_bytes(auto_state),
            "sharded": _factor_bytes(spread_state),
        },
        "state_bytes_per_device": {
            "single_device": max(gxs.bytes_per_device(single_state).values()),
            "auto": max(gxs.bytes_per_device(auto_state).values()),
            "sharded": max(gxs.bytes_per_device(spread_state).values()),
        },
    }
    if os.environ.get("GX_KRONECKER_TIMING") == "1":
        one_device = jax.device_put(params, jax.devices()[0])
        for name, tx, p in (
            ("single_device", plain, one_device),
            ("auto", plain, sharded),
            ("sharded_roots", spread, sharded),
        ):
            compile_s, step_ms = _step_time(tx, p)
            summary[f"{name}_compile_s"] = round(compile_s, 2)
            summary[f"{name}_step_ms"] = round(step_ms, 2)
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
