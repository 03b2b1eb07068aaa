"""``python -m bench --quick`` runs and writes the JSON the docs are built from.

Only the shape of the result is checked: timings are never asserted.
"""

import json
import sys

import jax
import pytest

from bench import cases, preconditioners, run, timing, workers, workloads


@pytest.fixture
def float32():
    # The benchmark measures float32 steps; the suite runs in float64 otherwise.
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


def test_quick_run_writes_expected_json(tmp_path, float32):
    out = tmp_path / "bench.json"
    run.main(
        [
            "--quick",
            "--only",
            "one_leaf/adam$",
            "--repeats",
            "2",
            "--no-compile",
            "--out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert {"meta", "probe", "results", "compile"} <= set(result)
    assert result["compile"] is None
    assert result["meta"]["quick"]
    assert result["meta"]["device"]
    assert result["probe"]["gbps"] > 0
    # "one_leaf/adam$" selects Adam alone (without "$", AdamW too: substrings).
    assert {(r["workload"], r["optimizer"]) for r in result["results"]} == {("one_leaf", "adam")}
    for row in result["results"]:
        assert row["traffic_bytes"] > 0
        assert row["min_state_bytes"] > 0
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
        assert run.FLOOR in row["contenders"]  # beside Adam
        assert row["ratio"]["gradxform"] > 0
        # optax's step in a second process: the A/A row, the same program, with its spread.
        replica, first = row["contenders"][run.REPLICA], row["contenders"]["optax"]
        assert replica["kernels"] == first["kernels"] > 0
        assert replica["bytes_accessed"] == first["bytes_accessed"]
        for name, (q1, q3) in row["ratio_quartiles"].items():
            assert 0 < q1 <= row["ratio"][name] <= q3, name
            lo, hi = row["ratio_ci95"][name]
            assert 0 < lo <= row["ratio"][name] <= hi, name
        assert set(row["ratio_quartiles"]) == set(row["contenders"]) - {"optax"}


def test_only_selects_by_substring_or_anchored_at_the_end():
    def chosen(only):
        return [
            k
            for k in ("one_leaf/adam", "one_leaf/adamw", "transformer/adam")
            if run._selected(only, *k.split("/"))
        ]

    assert chosen(None) == ["one_leaf/adam", "one_leaf/adamw", "transformer/adam"]
    assert chosen(["one_leaf/adam"]) == ["one_leaf/adam", "one_leaf/adamw"]
    assert chosen(["one_leaf/adam$"]) == ["one_leaf/adam"]
    assert chosen(["adam$"]) == ["one_leaf/adam", "transformer/adam"]
    assert chosen(["adamw$", "transformer/"]) == ["one_leaf/adamw", "transformer/adam"]


@pytest.mark.parametrize("processes", [2, 4])
def test_spawn_orders_give_every_contender_the_same_mean_start_position(processes):
    names = ["gradxform", "grouped", "packed", "optax", "floor"]
    orders = workers.spawn_orders(names, processes)
    assert len(orders) == processes
    assert all(sorted(o) == sorted(names) for o in orders)
    started = [name for order in orders for name in order]
    mean_place = {n: sum(i for i, m in enumerate(started) if m == n) / processes for n in names}
    assert len(set(mean_place.values())) == 1, mean_place


def test_settled_heap_freezes_only_inside_the_block():
    import gc

    assert gc.get_freeze_count() == 0
    with timing.settled_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_quick_compile_section(float32):
    comp = run.run_compile(cases.CASES["clip_adamw_schedule"], "small_leaves", True, 1)
    assert comp["leaves"] > 1
    assert comp["contenders"]["optax"]["median_s"] > 0
    assert comp["ratio"]["gradxform"] > 0
    assert comp["contenders"]["optax"]["init_s"] > 0
    assert comp["init_ratio"]["gradxform"] > 0


def test_quick_train_step_comparison_runs(float32):
    from bench import train_step

    medians = train_step.main(["--quick", "--repeats", "1", "--trials", "1", "--processes", "1"])
    assert set(medians) == {"optax", "gradxform", "gradxform group", "gradxform pack"}
    assert all(s > 0 for s in medians.values())


def test_quick_preconditioners_section(tmp_path, float32, capsys):
    # SOAP alone keeps the smoke run cheap: one jitted step against the eager torch step.
    out = tmp_path / "bench.json"
    run.main(
        [
            "--quick",
            "--only",
            "transformer/soap",
            "--kron-repeats",
            "1",
            "--no-compile",
            "--out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert result["results"] == []
    assert result["compile"] is None
    section = result["preconditioners"]
    assert section["workload"] == "transformer"
    assert set(section["settings"]) == {"soap"}
    (row,) = section["rows"]
    assert row["optimizer"] == "soap"
    ours = row["contenders"]["gradxform"]
    assert ours["status"] == "ok", ours["status"]
    for key in ("step_ms", "mean_ms", "compile_s", "lower_s", "state_bytes"):
        assert ours[key] > 0, key
    torch_ref = row["contenders"][preconditioners.REFERENCE["soap"]]
    assert torch_ref["status"] == "ok"
    assert torch_ref["step_ms"] > 0
    # Both hold m, v and one factor and basis per axis of the same shapes, in float32.
    assert torch_ref["state_bytes"] <= ours["state_bytes"] <= torch_ref["state_bytes"] + 64
    assert "preconditioners on transformer" in capsys.readouterr().out


def test_jax_references_build_with_the_section_settings(float32):
    # The JAX pairs are not timed here: each side is built and its state's shapes traced.
    params, _ = workloads.make("transformer", quick=True)
    for name, pair in preconditioners.jax_contenders().items():
        for contender, build in pair.items():
            state = jax.eval_shape(build().init, params)
            assert jax.tree.leaves(state), (name, contender)
    assert set(preconditioners.jax_contenders()) == set(preconditioners.SETTINGS)
