"""``python -m bench --quick`` runs and writes the JSON the docs are built from.

Only the shape of the result is checked: timings are never asserted.
"""

import json
import sys

import jax
import pytest

from bench import run


@pytest.fixture
def float32():
    # The benchmark measures float32 steps; the suite runs in float64 otherwise.
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


def test_quick_run_writes_expected_json(tmp_path, float32):
    out = tmp_path / "bench.json"
    run.main([
        "--quick", "--only", "one_leaf/adam,small_leaves/clip_adamw_schedule",
        "--repeats", "2", "--out", str(out),
    ])
    result = json.loads(out.read_text())
    assert {"meta", "probe", "results", "compile"} <= set(result)
    assert result["meta"]["quick"] and result["meta"]["device"]
    assert result["probe"]["gbps"] > 0
    assert {(r["workload"], r["optimizer"]) for r in result["results"]} >= {
        ("one_leaf", "adam"),
        ("small_leaves", "clip_adamw_schedule"),
    }
    for row in result["results"]:
        assert row["traffic_bytes"] > 0 and row["min_state_bytes"] > 0
        assert set(row["contenders"]) >= {"gradxform", "optax"}
        for name, rec in row["contenders"].items():
            assert rec["status"] == "ok", rec["status"]
            for key in ("step_ms", "gbps", "compile_s", "lower_s", "peak_bytes"):
                assert rec[key] > 0, key
            # Page faults are counted where the OS reports them (not on Windows).
            fresh = rec["fresh_bytes_per_step"]
            assert fresh is None if sys.platform == "win32" else fresh >= 0, fresh
            # The floor step (no optimizer) is the one contender without state.
            assert (rec["state_bytes"] == 0) == (name == run.FLOOR), name
        if row["optimizer"] == "adam":
            assert run.FLOOR in row["contenders"]
        assert row["ratio"]["gradxform"] > 0
    comp = result["compile"]
    assert comp["leaves"] > 1 and comp["contenders"]["optax"]["median_s"] > 0
    assert comp["ratio"]["gradxform"] > 0


def test_quick_train_step_comparison_runs(float32):
    from bench import train_step

    medians = train_step.main(["--quick", "--repeats", "1"])
    assert set(medians) == {"optax", "gradxform", "gradxform group", "gradxform pack"}
    assert all(s > 0 for s in medians.values())
