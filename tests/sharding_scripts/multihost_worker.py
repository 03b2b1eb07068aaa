"""One of two processes training with sharded optimizer state across hosts on loopback.

``python multihost_worker.py PROCESS_ID PORT OUT_DIR`` joins a 2-process JAX cluster at
127.0.0.1:PORT with ``jax.distributed.initialize`` (4 CPU devices per process, 8 in all),
trains ``problem()`` for ``STEPS`` steps data- and model-parallel on an Auto
("data": 4, "model": 2) mesh whose "data" axis spans both processes, once with the state
laid out by ``state_shardings`` and once ZeRO-1 partitioned over "data", and writes the
gathered final params and state to ``OUT_DIR/result_<id>.npz`` plus a JSON summary.
tests/test_sharding.py runs two of these and compares with a single-process run of the
same ``problem()`` and ``make_tx()``, which it imports from here.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

STEPS = 3


def problem(np):
    """Data and initial params of a small tanh MLP regression (host arrays)."""
    rng = np.random.default_rng(7)
    params = {
        "w1": 0.5 * rng.normal(size=(6, 8)),
        "b1": np.zeros(8),
        "w2": 0.5 * rng.normal(size=(8, 2)),
        "b2": np.zeros(2),
    }
    x = rng.normal(size=(16, 6))
    y = np.stack([np.sin(x[:, 0]), np.cos(x[:, 1])], axis=1)
    return params, x, y


def loss(params, x, y):
    import jax.numpy as jnp

    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def make_tx():
    """Cross-device reductions on every step: global-norm clipping and LAMB's trust ratio."""
    import gradxform as gx

    return gx.chain(gx.clip_by_global_norm(0.5), gx.lamb(1e-2, weight_decay=1e-3))


def make_step(tx):
    import jax

    import gradxform as gx

    def step(params, state, x, y):
        grads = jax.grad(loss)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state

    return step


def train(params, x, y, steps, init, step):
    """``steps`` updates from ``init(params)`` on the batch ``(x, y)``: (params, state)."""
    import jax

    state = init(params)
    for _ in range(steps):
        params, state = jax.block_until_ready(step(params, state, x, y))
    return params, state


def main(process_id: int, port: int, out_dir: str) -> None:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    jax.config.update("jax_enable_x64", True)
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=process_id,
        initialization_timeout=60,
    )
    from gradxform import sharding as gxs

    assert jax.process_count() == 2, jax.devices()
    assert len(jax.devices()) == 8, jax.devices()
    assert len(jax.local_devices()) == 4
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    specs = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None), "b2": P()}
    param_sh = jax.tree.map(lambda s: NamedSharding(mesh, s), specs)
    batch_sh = NamedSharding(mesh, P("data", None))
    host_params, host_x, host_y = problem(np)

    def global_array(host, sharding):
        # Every process holds the whole host array and hands JAX its own shards.
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    params = jax.tree.map(global_array, host_params, param_sh)
    x, y = global_array(host_x, batch_sh), global_array(host_y, batch_sh)
    summary: dict[str, Any] = {"process_id": process_id, "devices": len(jax.devices())}
    results: dict[str, np.ndarray] = {}
    for label, tx in (("sharded", make_tx()), ("zero", gxs.partition_state(make_tx(), mesh))):
        state_sh = gxs.state_shardings(tx, params)
        init = jax.jit(tx.init, out_shardings=state_sh)
        step = jax.jit(make_step(tx), out_shardings=(param_sh, state_sh))
        final_params, final_state = train(params, x, y, STEPS, init, step)
        local = gxs.bytes_per_device(final_state)
        summary[label] = {
            "state_bytes_per_device": max(local.values()),
            "state_specs": [str(s.spec) for s in jax.tree.leaves(state_sh)],
            "spans_processes": sorted(
                {
                    d.process_index
                    for leaf in jax.tree.leaves(final_state)
                    for d in leaf.sharding.device_set
                }
            ),
        }
        gathered = multihost_utils.process_allgather((final_params, final_state), tiled=True)
        for i, leaf in enumerate(jax.tree.leaves(gathered)):
            results[f"{label}_{i}"] = np.asarray(leaf)
    np.savez(os.path.join(out_dir, f"result_{process_id}.npz"), allow_pickle=False, **results)
    with open(os.path.join(out_dir, f"summary_{process_id}.json"), "w") as f:
        json.dump(summary, f)
    jax.distributed.shutdown()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
