"""gx.soap or gx.psgd_kron on params sharded over an Auto mesh vs one device (float32).

Run as ``python check_kronecker.py soap|psgd_kron`` with 8 host CPU devices (the tests set
``XLA_FLAGS``); prints ``RESULT {json}``: the largest difference of the sharded run's
params and state from the single-device run's, relative to each leaf's largest entry, and
how far the params moved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradxform as gx

STEPS = 6
FACTORIES = {
    # eps well above float32 round-off (quirk O4); a QR refresh every other step.
    "soap": lambda: gx.soap(
        learning_rate=0.05,
        eps=1e-4,
        precondition_frequency=2,
        max_precond_dim=6,
        precondition_1d=True,
    ),
    "psgd_kron": lambda: gx.psgd_kron(
        learning_rate=0.05, preconditioner_update_probability=0.5, weight_decay=0.1
    ),
}


def loss(params):
    return sum(
        jnp.sum(jnp.sin(3.0 * x) + 0.5 * (i + 1) * x**2)
        for i, x in enumerate(jax.tree.leaves(params))
    )


def main(name: str) -> None:
    assert jax.device_count() == 8, jax.devices()
    tx = FACTORIES[name]()
    rng = np.random.default_rng(0)
    host = {
        "w": rng.normal(size=(8, 6)),  # axis 0 has no SOAP factor (8 > 6)
        "layers": {"t": rng.normal(size=(4, 2, 3)), "b": rng.normal(size=(2,))},
        "s": np.array(0.5),
    }
    host = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), host)
    specs = {"w": P("data", "model"), "layers": {"t": P("data"), "b": P("model")}, "s": P()}
    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)

    def trajectory(params):
        def step(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return (gx.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), None, length=STEPS)[0]

    single = jax.jit(trajectory)(jax.device_put(host, jax.devices()[0]))
    placed = jax.device_put(host, jax.tree.map(lambda s: NamedSharding(mesh, s), specs))
    sharded_w = placed["w"].sharding.shard_shape(placed["w"].shape)
    sharded = jax.jit(trajectory)(placed)

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if b.size else 0.0

    diffs = [rel(a, b) for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(single))]
    moved = max(rel(a, b) for a, b in zip(jax.tree.leaves(single[0]), jax.tree.leaves(host)))
    dtypes = sorted({str(x.dtype) for x in jax.tree.leaves(sharded[0])})
    print(
        "RESULT "
        + json.dumps(
            {
                "diff": max(diffs),
                "moved": moved,
                "w_shard_shape": list(sharded_w),
                "param_dtypes": dtypes,
            }
        )
    )


def run_sharding_check(name: str) -> dict:
    """Runs this script for ``name`` in a fresh process with 8 host devices; its RESULT."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        "--xla_force_host_platform_device_count=8"
        # Compile time dominates; both runs are compiled alike.
        " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    )
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("JAX_ENABLE_X64", None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), name],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT ") :])


if __name__ == "__main__":
    main(sys.argv[1])
