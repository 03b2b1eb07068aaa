"""Optimizer state under jax.sharding, checked against unsharded single-device runs.

JAX fixes its device count at start-up, so the 8-device checks run in subprocesses
(``tests/sharding_scripts``) and the rest of the suite keeps one device:

- ``check_sharding.py`` (8 host CPU devices) runs every optimizer of
  ``optimizer_cases.ALL_OPTIMIZERS`` (``torch_optim`` included) plus global-norm clipping
  and factored Adafactor on a ("data": 4, "model": 2) mesh, plain and ZeRO-1 partitioned,
  and prints a JSON summary;
- ``multihost_worker.py`` is started twice, as the two processes of a
  ``jax.distributed`` cluster on 127.0.0.1, and its result is compared here with a
  single-process, single-device run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

import gradxform as gx
from gradxform import sharding as gxs
from optimizer_cases import ALL_OPTIMIZERS

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "sharding_scripts")
sys.path.insert(0, SCRIPTS)

import multihost_worker  # noqa: E402  # found on the sys.path entry inserted just above

TOL = 1e-12
# Optimizers whose update JAX's explicit-sharding type checker rejects (muon multiplies
# matrices along a sharded dimension); on the Explicit mesh they run wrapped in
# with_auto_axes, and they are checked on an Auto mesh too.
EXPLICIT_MESH_LIMITS = {"muon"}
EXTRA_CASES = {"clip_by_global_norm+adam", "adafactor_factored"}
# Optimizers whose state holds no per-parameter leaf.
PARAMETER_FREE_STATES = {"noisy_sgd"}


def _env(device_count: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        f"--xla_force_host_platform_device_count={device_count}"
        # Compile time dominates these short runs; both sides of every comparison are
        # compiled alike.
        " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_ENABLE_X64"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    return env


def _run_check_script() -> dict:
    proc = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "check_sharding.py")],
        check=False,
        env=_env(8),
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY ")]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(lines[-1][len("SUMMARY ") :])


def _check_every_optimizer_ran(summary):
    assert summary["errors"] == {}, "\n\n".join(f"{k}:\n{v}" for k, v in summary["errors"].items())
    assert set(summary["optimizers"]) == set(ALL_OPTIMIZERS) | EXTRA_CASES
    compiled = {name for name, out in summary["optimizers"].items() if out["numerics"]}
    # Compiled runs: the named global reductions, a spread of state kinds, and every
    # optimizer that needs with_auto_axes on an Explicit mesh; the rest are checked on
    # types and layouts (what jit would produce), which needs no compile of the step.
    required = {
        "adam",
        "sgd_momentum",
        "clip_by_global_norm+adam",
        "lamb",
        "lars",
        "adafactor",
        "adafactor_factored",
        "sm3",
        "noisy_sgd",
        "prodigy",
        "muon",
    }
    assert required <= compiled, sorted(required - compiled)
    for name in compiled:
        assert summary["optimizers"][name]["moved"] > 1e-6, f"{name}: the trajectory did not move"


def _check_jit_init_state_follows_param_shardings(summary):
    """Plain ``jax.jit(tx.init)`` on an Explicit mesh and on an Auto one (by sharding
    propagation alone), and state_shardings on the Auto one."""
    for name, out in summary["optimizers"].items():
        for mode in ("explicit_layout", "auto_layout"):
            assert out[mode]["errors"] == [], (name, mode, out[mode]["errors"])
        assert out["state_shardings_vs_jit"] == [], (name, out["state_shardings_vs_jit"])
        # A state read from no parameter (noisy_sgd's counter and key) is left by JAX on
        # one device: its init program uses none of its inputs, so has no mesh.
        if name in PARAMETER_FREE_STATES:
            assert out["auto_jit_layout"]["per_param"] == 0, name
            continue
        assert out["auto_jit_layout"]["errors"] == [], (name, out["auto_jit_layout"]["errors"])
        assert out["auto_jit_vs_state_shardings"] == [], (name, out["auto_jit_vs_state_shardings"])
        assert out["state_shardings_forms_agree"] == [], name
        # Only leaves not shaped like a parameter (factored moments) may change layout.
        other = out["auto_jit_layout"]["other"]
        drift = [d for d in out.get("auto_drift", []) if d.split(":")[0] not in other]
        assert drift == [], (name, drift)
    # Non-vacuous: Adam's two moments of each of the 7 params and its counter matched.
    for mode in ("explicit_layout", "auto_jit_layout"):
        adam = summary["optimizers"]["adam"][mode]
        assert (adam["per_param"], adam["counters"]) == (14, 1), mode


def _check_sharded_numerics_equal_unsharded(summary):
    for name, out in summary["optimizers"].items():
        if "explicit_update_error" in out:
            assert name in EXPLICIT_MESH_LIMITS, (name, out["explicit_update_error"])
            assert "auto_diff" in out, name
            assert out["auto_axes_diff"] <= TOL, (name, out["auto_axes_diff"])
            assert out["auto_axes_drift"] == [], (name, out["auto_axes_drift"])
            assert out["auto_axes_params_layout"] == [], name
        else:
            if out["numerics"]:
                assert out["explicit_diff"] <= TOL, (name, out["explicit_diff"])
            assert out["explicit_params_layout"] == [], name
            # Only leaves not shaped like a parameter (factored moments) may change
            # layout after the first update.
            per_param_drift = [
                d
                for d in out["explicit_drift"]
                if d.split(":")[0] not in out["explicit_layout"]["other"]
            ]
            assert per_param_drift == [], (name, per_param_drift)
        if "auto_diff" in out:
            assert out["auto_diff"] <= TOL, (name, out["auto_diff"])
    for name in ("adam", "clip_by_global_norm+adam", "lamb", "lars", "adafactor_factored"):
        assert summary["optimizers"][name]["auto_diff"] <= TOL, name
    # The factored case must really factor, or it tests nothing new.
    other = summary["optimizers"]["adafactor_factored"]["explicit_layout"]["other"]
    assert any("v_row" in k and "(8,)" in v for k, v in other.items()), other


def _check_partition_state_numerics_and_layout(summary):
    for name, out in summary["optimizers"].items():
        if out["numerics"]:
            assert out["zero_diff"] <= TOL, (name, out["zero_diff"])
        assert out["zero_drift"] == [], (name, out["zero_drift"])
        assert out["zero_params_layout"] == [], (name, out["zero_params_layout"])
        assert out["zero_state_shardings_vs_jit"] == [], (name, out["zero_state_shardings_vs_jit"])
        assert out["zero_unsplit"] == [], (name, out["zero_unsplit"])
        if out["plain_bytes"] > 100:
            assert out["zero_bytes"] < out["plain_bytes"] / 2, (name, out)


def _check_partition_state_memory_drops_by_axis_size(summary):
    mem = summary["zero_memory"]
    assert mem["params_replicated"]
    assert mem["diff"] <= TOL
    # Adam's moments of a (64, 32), a (32,) and an (8,) leaf: exactly 1/8 on each device;
    # the scalar leaf's moments and the counters stay replicated.
    assert mem["plain_array_bytes"] == 8 * mem["zero_array_bytes"], mem
    assert mem["plain_bytes"] / mem["zero_bytes"] > 7.9, mem
    assert mem["helper_bytes"] == mem["zero_bytes"]
    # Each device does its slice of the optimizer arithmetic, not all of it.
    assert mem["plain_update_flops"] > 4 * mem["zero_update_flops"], mem


def _check_restore_checkpoint_into_sharded_layout(summary):
    assert set(summary["restore"]) == {"adam", "adafactor_factored"}
    for name, out in summary["restore"].items():
        assert out["layout"] == [], (name, out["layout"])
        assert out["diff"] <= TOL, (name, out["diff"])


def _check_fills_follow_params_bit_for_bit(summary):
    assert "fills" in summary, summary["errors"].get("fills")
    assert summary["fills"] == [], summary["fills"]


@pytest.mark.slow
def test_sharded_state_on_8_devices():
    """One subprocess (JAX start-up and compiles are the cost), every check on its summary.

    A single test, not a module fixture shared by several: under pytest-xdist each worker
    would start the subprocess again.
    """
    summary = _run_check_script()
    checks = [
        _check_every_optimizer_ran,
        _check_jit_init_state_follows_param_shardings,
        _check_sharded_numerics_equal_unsharded,
        _check_partition_state_numerics_and_layout,
        _check_partition_state_memory_drops_by_axis_size,
        _check_restore_checkpoint_into_sharded_layout,
        _check_fills_follow_params_bit_for_bit,
    ]
    failures = []
    for check in checks:
        try:
            check(summary)
        except (AssertionError, KeyError) as e:
            failures.append(f"{check.__name__}: {type(e).__name__}: {e}")
    assert not failures, "\n\n".join(failures)


def test_state_shardings_rejects_params_without_named_sharding():
    params = {"w": np.zeros((2, 2))}
    with pytest.raises(TypeError, match="NamedSharding"):
        gxs.state_shardings(gx.adam(1e-2), jax.device_put(params))


def test_partition_spec_rule():
    mesh = jax.sharding.AbstractMesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    assert gxs.partition_spec((16, 8), P(None, "model"), "data", mesh) == P("data", "model")
    # No free dimension divisible by 4: nest under "model" on a dimension of 8.
    assert gxs.partition_spec((6, 8), P(None, "model"), "data", mesh) == P(None, ("model", "data"))
    assert gxs.partition_spec((5, 3), P(), "data", mesh) == P(None, None)
    assert gxs.partition_spec((), P(), "data", mesh) == P()
    assert gxs.partition_spec((8,), P("data"), "data", mesh) == P("data")
    with pytest.raises(ValueError, match="not an axis"):
        gxs.partition_state(gx.adam(1e-2), mesh, "batch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_cluster_matches_single_process(tmp_path):
    port = _free_port()
    env = _env(4)
    worker = os.path.join(SCRIPTS, "multihost_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(i), str(port), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        logs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-4000:] for log in logs)

    # The reference: the same problem and transformation, one process, one device.
    host_params, x, y = multihost_worker.problem(np)
    tx = multihost_worker.make_tx()
    params, state = multihost_worker.train(
        host_params, x, y, multihost_worker.STEPS, tx.init, jax.jit(multihost_worker.make_step(tx))
    )
    expected = jax.tree.leaves((params, state))
    for i in range(2):
        got = np.load(tmp_path / f"result_{i}.npz")
        info = json.loads((tmp_path / f"summary_{i}.json").read_text())
        assert info["devices"] == 8
        for label in ("sharded", "zero"):
            assert info[label]["spans_processes"] == [0, 1]
            leaves = [got[f"{label}_{j}"] for j in range(len(expected))]
            assert len(got.files) == 2 * len(expected)
            for a, e in zip(leaves, expected):
                np.testing.assert_allclose(a, np.asarray(e), rtol=TOL, atol=TOL)
        assert info["zero"]["state_bytes_per_device"] < info["sharded"]["state_bytes_per_device"]
    moved = max(
        float(np.max(np.abs(np.asarray(a) - b)))
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(host_params))
    )
    assert moved > 1e-4
