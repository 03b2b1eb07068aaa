"""The benchmark runner behind ``python -m bench``."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from typing import Any

import jax
import optax

import gradxform as gx
from bench import cases, cost, memory, preconditioners, report, timing, workers, workloads
from bench.cases import FLOOR, REPLICA

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")


def _tree(params):
    return params


def contenders() -> dict:
    """``name -> (build(case) -> transformation, apply_updates, hold(params))``; optax is
    the reference. ``hold`` gives the params as the step takes and returns them.

    ``gradxform`` is the public alias as a user calls it; ``gradxform+grouped`` the same
    alias wrapped in ``gx.grouped`` (same results, stacked state; params, gradients and
    updates stay trees); ``gradxform+packed`` the grouped alias with the params held as
    ``gx.pack(params)`` between steps (as ``gx.train_step(..., pack=True)`` holds them):
    gradients still arrive as a tree, params and state are a few stacks.
    """
    return {
        "gradxform": (lambda case: case.build(gx), gx.apply_updates, _tree),
        "gradxform+grouped": (lambda case: gx.grouped(case.build(gx)), gx.apply_updates, _tree),
        "gradxform+packed": (lambda case: gx.grouped(case.build(gx)), gx.apply_updates, gx.pack),
        "optax": (lambda case: case.build(optax), optax.apply_updates, _tree),
    }


def floor_contender():
    """A step with no optimizer, ``p <- p - c g``: no state, one read of ``p`` and ``g``
    and one write of ``p`` per leaf. It measures what any tree-in, tree-out step costs
    on this tree (dispatch, one kernel and one output buffer per leaf), the least an
    optimizer step on the params' tree can take. Timed with the Adam rows and the
    compile section."""
    return (lambda case: gx.scale(-1e-3), gx.apply_updates, _tree)


def device_name() -> str:
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return "cpu"
    kind = re.sub(r"[^a-z0-9]+", "-", dev.device_kind.lower()).strip("-")
    return f"{dev.platform}-{kind}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(__file__),
            timeout=10,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _selected(only: list[str] | None, workload: str, optimizer: str) -> bool:
    """Whether ``workload/optimizer`` contains one of ``only`` (all when None); a token
    ending in ``$`` must end the name (``one_leaf/adam$`` is Adam, not AdamW)."""
    key = f"{workload}/{optimizer}"
    return not only or any(
        key.endswith(tok[:-1]) if tok.endswith("$") else tok in key for tok in only
    )


def prepare(name, build, apply_updates, hold, case, params, grads):
    """Builds, initialises and compiles one contender; returns its record and its step,
    ``(compiled, make_carry, grads)`` with ``make_carry()`` fresh ``(params, state)``."""
    footprint = 2 * memory.tree_bytes(params)
    params = hold(params)
    try:
        tx = build(case)
    except AttributeError as e:  # the optimizer is not in this library (yet)
        return {"status": f"missing ({e})"}, None
    init = jax.jit(tx.init)
    try:
        state = init(params)
        jax.block_until_ready(state)
        compiled, lower_s, compile_s = timing.compile_step(
            timing.make_step(tx, apply_updates), params, state, grads
        )
    except Exception as e:  # noqa: BLE001 -- any failure is reported in the table; the run goes on
        return {"status": f"error: {type(e).__name__}: {str(e)[:200]}"}, None
    state_bytes = memory.tree_bytes(state)
    peak = memory.compiled_peak_bytes(compiled)
    static = cost.compiled_cost(compiled)
    footprint += state_bytes
    record = {
        "status": "ok",
        "lower_s": lower_s,
        "compile_s": compile_s,
        "state_bytes": state_bytes,
        "peak_bytes": peak,
        "footprint_bytes": footprint,
        "peak_over_footprint": None if peak is None else peak / footprint,
        **static,
    }
    del state  # each trial initialises its own from a fresh copy of the params

    def make_carry():
        held = timing.fresh_copy(params)
        return held, init(held)

    return record, (compiled, make_carry, grads)


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4) if len(xs) > 1 else (xs[0],) * 3
    return q1, q2, q3


def median_ci95(xs: list[float]) -> tuple[float, float]:
    """A distribution-free 95% confidence interval of the median: the order statistics
    ``k`` and ``n - 1 - k`` with ``k = floor((n - 1.96 sqrt(n)) / 2)``, the normal
    approximation to the binomial count of samples under the median (the whole range
    when there are too few samples for it)."""
    xs = sorted(xs)
    k = int((len(xs) - 1.96 * len(xs) ** 0.5) // 2)
    if k < 0:
        return xs[0], xs[-1]
    return xs[k], xs[len(xs) - 1 - k]


def _static_ratios(row: dict) -> dict:
    """Each contender's kernels, bytes moved and flops over optax's (the compiled programs)."""
    ref = row["contenders"].get("optax", {})
    out = {}
    for name, rec in row["contenders"].items():
        if name in ("optax", REPLICA) or rec.get("status") != "ok" or ref.get("status") != "ok":
            continue
        out[name] = {
            key: rec[key] / ref[key] if rec.get(key) and ref.get(key) else None
            for key in ("kernels", "bytes_accessed", "flops")
        }
    return out


def entries(case) -> dict:
    """The contenders of one case, ``name -> (build, apply_updates, hold)``: those of
    ``contenders()`` and the floor step beside Adam."""
    out = dict(contenders())
    if case.name == "adam":
        out[FLOOR] = floor_contender()
    return out


def prepare_named(workload: str, case_name: str, contender: str, quick: bool):
    """``prepare`` of one contender named by strings, for a ``workers.StepProcess``."""
    params, grads = workloads.make(workload, quick)
    case = cases.CASES[case_name]
    build, apply_updates, hold = entries(case)[contender]
    return prepare(contender, build, apply_updates, hold, case, params, grads)


def run_case(workload: str, case, quick: bool, repeats: int, trials: int, processes: int) -> dict:
    """One workload and optimizer: each contender's step compiled in ``processes``
    processes of its own (``bench.workers``), one after another (in the orders of
    ``workers.spawn_orders``), then all timed by ``timing.time_trials``; a contender's
    time in a round is the geometric mean over its processes. With two or more, optax's
    second process against its first is the ``REPLICA`` row: the scatter between
    identical programs in separate processes."""
    params, _ = workloads.make(workload, quick)
    leaves, size = workloads.count(params)
    row: dict[str, Any] = {
        "workload": workload,
        "optimizer": case.name,
        "leaves": leaves,
        "params": size,
        "traffic_bytes": case.traffic_bytes(params),
        "min_state_bytes": case.min_state_bytes(params),
        "contenders": {},
        "ratio": {},
    }
    procs: dict[tuple[str, int], workers.StepProcess] = {}
    try:
        for k, names in enumerate(workers.spawn_orders(list(entries(case)), processes)):
            for name in names:
                procs[name, k] = workers.StepProcess(
                    "bench.run:prepare_named", workload, case.name, name, quick
                )
                row["contenders"].setdefault(name, procs[name, k].record)
        running: dict[str, timing.Runner] = {f"{n}#{k}": p for (n, k), p in procs.items() if p.ok}
        fresh: dict[str, float] = {}
        timed = timing.time_trials(running, trials, repeats, fresh_bytes=fresh) if running else {}
    finally:
        for proc in procs.values():
            proc.close()
    samples: dict[str, list[float]] = {}
    for name in row["contenders"]:
        if runs := workers.geometric_means(timed, name, processes):
            samples[name] = runs
    reference = "optax"
    if "optax#1" in timed and "optax#0" in timed:
        row["contenders"][REPLICA] = procs["optax", 1].record
        samples[REPLICA] = timed["optax#1"]
        samples["optax#0"] = timed["optax#0"]
    for name, secs in samples.items():
        if name == "optax#0":
            continue
        med = statistics.median(secs)
        rec = row["contenders"][name]
        rec["step_ms"] = 1e3 * med
        keys = ["optax#1"] if name == REPLICA else [f"{name}#{k}" for k in range(processes)]
        faults = [fresh[key] for key in keys if key in fresh]
        rec["fresh_bytes_per_step"] = statistics.fmean(faults) if faults else None
        rec["step_ms_samples"] = [1e3 * s for s in secs]
        traffic = 3 * memory.tree_bytes(params) if name == FLOOR else row["traffic_bytes"]
        rec["gbps"] = traffic / med / 1e9
    if reference in samples:
        row["ratio_quartiles"], row["ratio_ci95"] = {}, {}
        for name in samples:
            if name in (reference, "optax#0"):
                continue
            base = "optax#0" if name == REPLICA else reference
            paired = timing.paired_ratios(samples, name, base)
            q1, q2, q3 = _quartiles(paired)
            row["ratio"][name] = q2
            row["ratio_quartiles"][name] = [q1, q3]
            row["ratio_ci95"][name] = list(median_ci95(paired))
    row["static_ratio"] = _static_ratios(row)
    return row


def compile_named(workload: str, case_name: str, contender: str, quick: bool) -> dict:
    """Trace + lower + compile of one contender's step, for ``workers.call``."""
    params, grads = workloads.make(workload, quick)
    case = cases.CASES[case_name]
    build, apply_updates, hold = {**contenders(), FLOOR: floor_contender()}[contender]
    try:
        tx = build(case)
        held = hold(params)
        state = jax.eval_shape(tx.init, held)
        with timing.settled_heap():
            _, lower_s, compile_s = timing.compile_step(
                timing.make_step(tx, apply_updates), held, state, grads
            )
        # the init a first training call also compiles; after the step, which stays the
        # first program compiled in the process. What the step's compile left is settled
        # first: a full collection walking it fell inside gradxform's init, not optax's
        # (0.75 s against 0.54 s for one program; 0.50-0.53 s with collection off)
        with timing.settled_heap():
            _, init_lower_s, init_compile_s = timing.compile_step(jax.jit(tx.init), held)
    except Exception as e:  # noqa: BLE001 -- recorded as this contender's status; the rest go on
        return {"status": f"error: {type(e).__name__}: {e}"[:200]}
    return {
        "status": "ok",
        "lower_s": lower_s,
        "compile_s": compile_s,
        "init_s": init_lower_s + init_compile_s,
    }


def run_compile(case, workload: str, quick: bool, repeats: int) -> dict:
    """Trace + lower + compile of each contender's step, each time in a fresh process
    (the step is the first compiled there; see ``bench.workers``), alternating
    contenders, ``repeats`` times; then, in the same process, of its ``init``
    (``init_s``, ``init_ratio``). Ratios are medians of repeat-by-repeat ratios to optax."""
    params, _ = workloads.make(workload, quick)
    out = {
        "optimizer": case.name,
        "workload": workload,
        "leaves": workloads.count(params)[0],
        "repeats": repeats,
        "contenders": {},
        "ratio": {},
        "init_ratio": {},
    }
    samples: dict[str, list] = {}
    names = [*contenders(), FLOOR]
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            if name in out["contenders"]:  # already failed
                continue
            got = workers.call("bench.run:compile_named", workload, case.name, name, quick)
            if got["status"] != "ok":
                out["contenders"][name] = got
                continue
            samples.setdefault(name, []).append((got["lower_s"], got["compile_s"], got["init_s"]))
    for name, s in samples.items():
        totals = [a + b for a, b, _ in s]
        out["contenders"][name] = {
            "status": "ok",
            "median_s": statistics.median(totals),
            "lower_s": statistics.median(a for a, _, _ in s),
            "compile_s": statistics.median(b for _, b, _ in s),
            "samples_s": totals,
            "init_s": statistics.median(c for _, _, c in s),
            "init_samples_s": [c for _, _, c in s],
        }
    # Compile times drift over a run (one optax program: 13.6 s in the first repeats, 19.2 s
    # in the last, in one run), so, as the step table does, a ratio pairs each repeat's
    # contender with that repeat's optax, run beside it, and takes the median (a contender
    # that failed stops there, so its samples are the first repeats').
    ref = out["contenders"].get("optax", {})
    for name, rec in out["contenders"].items():
        if name == "optax" or rec.get("status") != "ok" or ref.get("status") != "ok":
            continue
        for key, field in (("ratio", "samples_s"), ("init_ratio", "init_samples_s")):
            pairs = [a / b for a, b in zip(rec[field], ref[field], strict=False)]
            out[key][name] = statistics.median(pairs)
            rec[key + "_by_repeat"] = pairs
    return out


def run_preconditioners(names: list[str], quick: bool, repeats: int) -> dict:
    """The ``preconditioners`` section: each named optimizer (``shampoo``, ``psgd_kron``,
    ``soap``) against its reference on the transformer tree, in one process.

    JAX contenders are jitted and donated as in the other sections (one compile each,
    timed); SOAP's torch reference is an eager ``opt.step()`` on CPU tensors. Each pair
    is timed alternating, one warm-up step each (it also takes SOAP's statistics-only
    first step); ``mean_ms`` beside the median shows the steps that refresh a basis.
    """
    params, grads = workloads.make(preconditioners.WORKLOAD, quick)
    leaves, size = workloads.count(params)
    out: dict[str, Any] = {
        "workload": preconditioners.WORKLOAD,
        "leaves": leaves,
        "params": size,
        "settings": {n: preconditioners.SETTINGS[n] for n in names},
        "rows": [],
    }
    jax_entries = preconditioners.jax_contenders()
    for name in names:
        row: dict[str, Any] = {"optimizer": name, "contenders": {}, "ratio": {}}
        runners: dict[str, timing.Runner] = {}
        for contender, build in jax_entries[name].items():
            apply_updates = gx.apply_updates if contender == "gradxform" else optax.apply_updates
            try:
                built = build()
            except ImportError as e:  # the reference is not installed
                row["contenders"][contender] = {"status": f"missing ({e})"}
                continue
            record, step = prepare(
                contender, lambda _, t=built: t, apply_updates, _tree, None, params, grads
            )
            row["contenders"][contender] = record
            if step is not None:
                runners[contender] = timing.InProcessStep(*step)
        if name == "soap":
            contender = preconditioners.REFERENCE["soap"]
            try:
                step, state_bytes = preconditioners.torch_soap_runner(params, grads)
            except ImportError as e:
                row["contenders"][contender] = {"status": f"missing ({e})"}
            else:
                row["contenders"][contender] = {"status": "ok", "state_bytes": state_bytes}
                runners[contender] = timing.InProcessStep(step, tuple, None)
        if runners:
            samples = timing.time_trials(runners, 1, repeats, warmup=1)
            for contender, secs in samples.items():
                rec = row["contenders"][contender]
                rec["step_ms"] = 1e3 * statistics.median(secs)
                rec["mean_ms"] = 1e3 * statistics.fmean(secs)
                rec["step_ms_samples"] = [1e3 * s for s in secs]
        ours = row["contenders"].get("gradxform", {})
        reference = row["contenders"].get(preconditioners.REFERENCE[name], {})
        if ours.get("step_ms") and reference.get("step_ms") and "compile_s" in reference:
            row["ratio"]["step"] = ours["step_ms"] / reference["step_ms"]
            row["ratio"]["compile"] = (ours["lower_s"] + ours["compile_s"]) / (
                reference["lower_s"] + reference["compile_s"]
            )
            row["ratio"]["state"] = ours["state_bytes"] / reference["state_bytes"]
        out["rows"].append(row)
        print(f"  done {preconditioners.SECTION}/{name}", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="gradxform vs optax: step time, compile time, memory."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the runner works")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated substrings of 'workload/optimizer' to run, '$' at the end "
        "anchoring one there (e.g. 'adam,small_leaves/', 'one_leaf/adam$'; 'preconditioners', "
        "or 'transformer/shampoo' and so on, for the preconditioners section)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case")
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="fresh buffer allocations per case, in rotated order, each timed --repeats "
        "rounds (default 3, quick 2)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="processes per contender, each compiling and running its step; a "
        "contender's time per round is their geometric mean (default 2)",
    )
    parser.add_argument("--compile-repeats", type=int, default=None)
    parser.add_argument(
        "--kron-repeats",
        type=int,
        default=None,
        help="timed rounds per optimizer in the preconditioners section (default 5, quick 2)",
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time section")
    parser.add_argument(
        "--no-preconditioners",
        action="store_true",
        help="skip the preconditioners section (Shampoo, PSGD-Kron, SOAP; the longest)",
    )
    parser.add_argument(
        "--out", default=None, help="JSON path (default bench/results/<device>.json)"
    )
    parser.add_argument("--markdown", default=None, help="also write the table as Markdown here")
    parser.add_argument(
        "--summary", default=None, help="also write the README's condensed table here"
    )
    args = parser.parse_args(argv)
    only = [t for t in args.only.split(",") if t] if args.only else None
    repeats = args.repeats or (3 if args.quick else 15)
    trials = args.trials or (2 if args.quick else 3)
    processes = args.processes or 2
    compile_repeats = args.compile_repeats or (1 if args.quick else 5)
    device = device_name()
    out_path = args.out or os.path.join(
        RESULTS_DIR, f"{device}{'-quick' if args.quick else ''}.json"
    )

    started = time.time()
    meta = {
        "device": device,
        "device_kind": jax.devices()[0].device_kind,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "repeats": repeats,
        "trials": trials,
        "processes": processes,
        "jax": jax.__version__,
        "optax": optax.__version__,
        "gradxform": gx.__version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
    }
    probe_elems = 1 << (20 if args.quick else 26)
    probe_start = timing.bandwidth_probe(probe_elems, repeats=5 if args.quick else 20)
    results = []
    for workload in workloads.WORKLOADS:
        for case in cases.CASES.values():
            if _selected(only, workload, case.name):
                results.append(run_case(workload, case, args.quick, repeats, trials, processes))
                print(f"  done {workload}/{case.name}", file=sys.stderr, flush=True)
    compile_result = None
    chain = cases.CASES["clip_adamw_schedule"]
    if not args.no_compile and _selected(only, "small_leaves", chain.name):
        compile_result = run_compile(chain, "small_leaves", args.quick, compile_repeats)
    kron_names = (
        []
        if args.no_preconditioners
        else [
            name
            for name in preconditioners.SETTINGS
            if _selected(only, preconditioners.WORKLOAD, name)
            or (only and preconditioners.SECTION in only)
        ]
    )
    kron_result = None
    if kron_names:
        kron_result = run_preconditioners(
            kron_names, args.quick, args.kron_repeats or (2 if args.quick else 5)
        )
    probe_end = timing.bandwidth_probe(probe_elems, repeats=5 if args.quick else 20)
    meta["loadavg_end"] = list(os.getloadavg())
    meta["wall_s"] = time.time() - started
    result: dict[str, Any] = {
        "meta": meta,
        "probe": {
            "gbps": max(probe_start["gbps"], probe_end["gbps"]),
            "start": probe_start,
            "end": probe_end,
        },
        "results": results,
        "compile": compile_result,
        preconditioners.SECTION: kron_result,
    }
    for row in results:
        for rec in row["contenders"].values():
            if rec.get("gbps") is not None:
                rec["fraction_of_probe"] = rec["gbps"] / result["probe"]["gbps"]
    report.write_json(result, out_path)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report.markdown(result))
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(report.summary_markdown(result))
    print(report.table(result))
    print(f"\nwrote {out_path}  ({meta['wall_s']:.0f} s)")
    return result
