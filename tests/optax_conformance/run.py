"""Runs optax's own test modules with the code under test redirected to gradxform.

    python tests/optax_conformance/run.py                 # every module below, gradxform
    python tests/optax_conformance/run.py --optax         # the same modules on optax itself
    python tests/optax_conformance/run.py -j 2 --failures _src/alias_test.py

The installed optax wheel ships its tests (``optax/**/*_test.py``); they are run from
site-packages, never copied here. ``shim.py`` (a pytest plugin) swaps every public optax
name for gradxform's namesake before a test module is imported. Each module runs in its own
``pytest`` process; the table gives passed / failed (errors included) / skipped per module.
Not part of the default ``pytest`` run (tests/conftest.py ignores this folder).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

import optax

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # this checkout, ahead of any installed copy
OPTAX = os.path.dirname(optax.__file__)

# The modules issue 15 measured, then the tree, utils and microbatching modules.
MODULES = [
    "_src/alias_test.py",
    "_src/base_test.py",
    "_src/combine_test.py",
    "_src/factorized_test.py",
    "_src/float64_test.py",
    "_src/linear_algebra_test.py",
    "_src/linesearch_test.py",
    "_src/lookahead_test.py",
    "_src/numerics_test.py",
    "_src/transform_test.py",
    "_src/update_test.py",
    "transforms/_accumulation_test.py",
    "transforms/_adding_test.py",
    "transforms/_clipping_test.py",
    "transforms/_combining_test.py",
    "transforms/_conditionality_test.py",
    "transforms/_constraining_test.py",
    "transforms/_freezing_test.py",
    "transforms/_layouts_test.py",
    "transforms/_masking_test.py",
    "transforms/_monitoring_test.py",
    "schedules/_inject_test.py",
    "schedules/_join_test.py",
    "schedules/_schedule_test.py",
    "contrib/_common_test.py",
    "contrib/_complex_valued_test.py",
    "contrib/_galore_test.py",
    "contrib/_mechanic_test.py",
    "contrib/_muon_test.py",
    "contrib/_privacy_test.py",
    "contrib/_reduce_on_plateau_test.py",
    "contrib/_sam_test.py",
    "contrib/_schedule_free_test.py",
    "projections/_projections_test.py",
    "tree_utils/_state_utils_test.py",
    "tree_utils/_tree_math_test.py",
    "tree_utils/_casting_test.py",
    "_src/utils_test.py",
    "microbatching/_microbatching_test.py",
]

_COUNTER = """
import json, os
_COUNTS = {"passed": 0, "failed": 0, "skipped": 0, "failures": []}

def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        if report.outcome == "failed":
            line = report.longrepr.reprcrash.message if hasattr(report.longrepr, "reprcrash") \\
                else str(report.longrepr)
            _COUNTS["failures"].append([report.nodeid, str(line).splitlines()[0][:300]
                                        if line else ""])
        _COUNTS[report.outcome] += 1

def pytest_collectreport(report):
    if report.failed:
        _COUNTS["failed"] += 1
        _COUNTS["failures"].append([report.nodeid, str(report.longrepr).splitlines()[-1][:300]])

def pytest_sessionfinish(session):
    with open(os.environ["CONFORMANCE_COUNTS"], "w") as f:
        json.dump(_COUNTS, f)
"""


def run_module(module: str, on_optax: bool, workdir: str) -> dict:
    counts = os.path.join(workdir, module.replace("/", "_") + ".json")
    env = dict(os.environ, CONFORMANCE_COUNTS=counts)
    env["PYTHONPATH"] = os.pathsep.join([workdir, HERE, ROOT, env.get("PYTHONPATH", "")])
    plugins = ["-p", "conformance_counter"] + ([] if on_optax else ["-p", "shim"])
    command = [
        sys.executable,
        "-m",
        "pytest",
        os.path.join(OPTAX, module),
        *plugins,
        "-q",
        "-c",
        os.path.join(workdir, "pytest.ini"),
        "--rootdir",
        workdir,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-p",
        "no:xdist",
        "-W",
        "ignore",
    ]
    start = time.time()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=workdir)
    if not os.path.exists(counts):
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
        result = {"passed": 0, "failed": 1, "skipped": 0, "failures": [[module, tail[0]]]}
    else:
        with open(counts) as f:
            result = json.load(f)
    result["seconds"] = time.time() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="paths under optax/ (default: all)")
    parser.add_argument("--optax", action="store_true", help="run on optax itself")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="modules run at once")
    parser.add_argument("--failures", action="store_true", help="list each failure")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    modules = args.modules or MODULES
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")
        with open(os.path.join(workdir, "conformance_counter.py"), "w") as f:
            f.write(_COUNTER)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = dict(
                zip(modules, pool.map(lambda m: run_module(m, args.optax, workdir), modules))
            )
    target = "optax" if args.optax else "gradxform"
    print(f"optax {optax.__version__} test modules on {target}")
    print("| module | passed | failed | skipped |\n| --- | ---: | ---: | ---: |")
    total = [0, 0, 0]
    for module, r in results.items():
        row = [r["passed"], r["failed"], r["skipped"]]
        total = [t + x for t, x in zip(total, row)]
        print(f"| {module} | {row[0]} | {row[1]} | {row[2]} |")
    print(f"| **total** | {total[0]} | {total[1]} | {total[2]} |")
    if args.failures:
        for module, r in results.items():
            for nodeid, message in r["failures"]:
                print(f"FAILED {nodeid.split('::', 1)[-1]} [{module}]: {message}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
