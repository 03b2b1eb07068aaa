"""Every script in examples/ runs with ``--quick``, writes its figures and reports sane numbers.

Each example runs in a fresh subprocess (so it sees float32 JAX, as a user would) with
``--quick --out OUT`` (every example takes both) from another, empty working directory, which
must stay empty: the figures go to ``--out``. Examples end with a line
``final: key=value key=value ...``; the checks below read it. An example added later is
picked up automatically and gets the generic checks (exit status, figures, falling loss).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.slow


def run_example(name: str, out: Path, cwd: Path) -> str:
    """Runs ``examples/<name> --quick --out OUT`` in ``cwd``; returns stdout."""
    args = [sys.executable, str(EXAMPLES_DIR / name), "--quick", "--out", str(out)]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{name} exited with {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}"
        f"\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
    assert not list(cwd.iterdir()), f"{name} wrote outside --out: {list(cwd.iterdir())}"
    return proc.stdout


def parse_final(stdout: str) -> dict[str, float]:
    """The ``key=value`` pairs of the last line that starts with ``final:``."""
    lines = [line for line in stdout.splitlines() if line.startswith("final:")]
    assert lines, f"no 'final:' line in the output:\n{stdout[-2000:]}"
    pairs = re.findall(r"([\w.\-]+)=(\S+)", lines[-1][len("final:") :])
    assert pairs, lines[-1]
    return {k: float(v) for k, v in pairs}


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*.png")}


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG header's IHDR chunk."""
    return struct.unpack(">II", data[16:24])


def assert_valid_pngs(folder: Path, expected: list[str] | None = None) -> None:
    found = pngs(folder)
    assert found, f"no PNG written to {folder}"
    if expected is not None:
        assert sorted(found) == sorted(expected), sorted(found)
    for name, data in found.items():
        assert data.startswith(PNG_MAGIC), (name, len(data))
        assert len(data) > 10_000, (name, len(data))


# --- checks for the examples whose output is known -------------------------------------


def check_compare_optimizers(values: dict[str, float], out: Path) -> None:
    assert_valid_pngs(out, ["compare_optimizers.png"])
    finals = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("final_loss.")}
    assert sorted(finals) == sorted(
        [
            "sgd",
            "minibatch_sgd",
            "momentum",
            "adagrad",
            "rmsprop",
            "adadelta",
            "adam",
            "yogi",
            "adamw",
            "lamb",
        ]
    )
    initial, optimum = values["initial_loss"], values["optimum_loss"]
    assert 0 < optimum < initial
    for name, final in finals.items():
        # Every method cut the loss at least tenfold; none beat the exact least-squares fit
        # of the same training set (which would mean the loss or the optimum is wrong).
        assert final < 0.1 * initial, (name, final, initial)
        assert final >= optimum * (1 - 1e-4), (name, final, optimum)
    # The plain first-order methods sit within 5% of the optimum after the quick run.
    for name in ("sgd", "minibatch_sgd", "momentum", "adagrad"):
        assert finals[name] < 1.05 * optimum, (name, finals[name], optimum)


def check_trajectories_2d(values: dict[str, float], out: Path) -> None:
    problems = ("quadratic", "ill_conditioned", "rosenbrock")
    assert_valid_pngs(out, [f"trajectories_{p}.png" for p in problems])
    runs = {k.rsplit(".", 1)[0] for k in values}
    assert len(runs) == 30, sorted(runs)  # ten optimizers on each of three functions
    for run in runs:
        assert values[f"{run}.final"] < values[f"{run}.initial"], run
    assert values["quadratic.gd_lr0.05.initial"] == pytest.approx(33.0)  # f(-5, -2)
    assert values["rosenbrock.newton.initial"] == pytest.approx(12.5)  # f(-1.5, 2)
    # Newton's method lands on the minimum of a quadratic in its first step, and finds
    # Rosenbrock's minimum within the quick budget too.
    for problem in problems:
        assert values[f"{problem}.newton.final"] < 1e-8, problem


def check_mlp_digits(values: dict[str, float], out: Path) -> None:
    assert_valid_pngs(out, ["mlp_digits.png"])
    assert values["test_accuracy"] >= 0.95, values
    assert values["train_accuracy"] >= values["test_accuracy"] - 0.02, values
    assert values["final_loss"] < 0.1 * values["initial_loss"], values


def check_quickstart(values: dict[str, float], out: Path) -> None:
    assert_valid_pngs(out, ["quickstart_loss.png"])
    # Linear regression without noise: the loss falls towards 0 (4.7 -> 8e-5 in 100 steps).
    assert values["final_loss"] < 1e-3 * values["initial_loss"], values


def check_lbfgs_logistic(values: dict[str, float], out: Path) -> None:
    assert_valid_pngs(out, ["lbfgs_logistic_loss.png"])
    assert values["final_loss"] < values["initial_loss"], values
    # The one-jit L-BFGS solve reaches scipy's optimum.
    assert abs(values["loss_gap"]) < 1e-6, values
    assert values["grad_norm"] < 1e-4, values


def check_schedules(values: dict[str, float], out: Path) -> None:
    pages = ["decays", "warmup_and_cycles", "textbook_and_plateau", "torch_decays", "torch_cycles"]
    assert_valid_pngs(out, [f"schedules_{page}.png" for page in pages])
    # One panel per schedule: optax's 14, 4 textbook ones, torch_optim's 11, two plateau
    # reducers; at most 8 to a page, and pages narrow enough to read at 100%.
    assert values["panels"] == 31, values
    assert values["pages"] == len(pages), values
    assert values["panels"] <= 8 * values["pages"], values
    for name, data in pngs(out).items():
        assert png_size(data)[0] <= 1600, (name, png_size(data))


def check_sharded_training(values: dict[str, float], out: Path) -> None:
    assert (out / "sharded_training.json").is_file()
    assert_valid_pngs(out, ["sharded_training.png"])
    assert values["final_loss"] < 0.5 * values["initial_loss"], values
    # Sharded and ZeRO-1 runs follow the single-device run (float32 round-off) ...
    assert values["max_param_diff_sharded"] < 1e-4, values
    assert values["max_param_diff_zero"] < 1e-4, values
    # ... with less optimizer state per device, and less again with ZeRO-1.
    assert (
        values["state_bytes_per_device_zero"]
        < values["state_bytes_per_device_sharded"]
        < values["state_bytes_single_device"]
    ), values


def check_preconditioners(values: dict[str, float], out: Path) -> None:
    assert_valid_pngs(out, ["preconditioners.png"])
    names = ("adam", "muon", "shampoo", "soap", "psgd_kron")
    assert {k.split(".", 1)[1] for k in values if k.startswith("final_loss.")} == set(names)
    for name in names:
        # Every method cuts the loss of the untrained MLP (2.8) at least tenfold in the
        # quick run, and classifies the held-out digits.
        assert values[f"final_loss.{name}"] < 0.1 * values["initial_loss"], (name, values)
        assert values[f"test_accuracy.{name}"] > 0.85, (name, values)
        assert values[f"ms_per_step.{name}"] > 0, name


CHECKS = {
    "preconditioners.py": check_preconditioners,
    "sharded_training.py": check_sharded_training,
    "lbfgs_logistic.py": check_lbfgs_logistic,
    "schedules.py": check_schedules,
    "compare_optimizers.py": check_compare_optimizers,
    "trajectories_2d.py": check_trajectories_2d,
    "mlp_digits.py": check_mlp_digits,
    "quickstart.py": check_quickstart,
}


def check_generic(name: str, stdout: str, out: Path) -> None:
    """For an example without its own checks: figures exist, and a reported loss fell."""
    if "savefig" in (EXAMPLES_DIR / name).read_text():
        assert_valid_pngs(out)
    if any(line.startswith("final:") for line in stdout.splitlines()):
        values = parse_final(stdout)
        if "initial_loss" in values and "final_loss" in values:
            assert values["final_loss"] < values["initial_loss"], values


def test_examples_are_found():
    # The glob must see the examples this file has checks for, or the tests below prove nothing.
    assert set(CHECKS) <= set(EXAMPLES), sorted(set(CHECKS) - set(EXAMPLES))


def _paragraphs(code: str) -> list[str]:
    """Blocks of code between blank lines, with all whitespace removed."""
    return ["".join(block.split()) for block in re.split(r"\n\s*\n", code) if block.strip()]


def test_quickstart_example_is_the_readme_quick_start():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    example = "".join((EXAMPLES_DIR / "quickstart.py").read_text().split())
    # The README's first command runs this example.
    assert "python examples/quickstart.py" in readme.split("## Quick start", 1)[0]
    *blocks, loop = _paragraphs(code)
    assert len(blocks) == 4, blocks  # imports, loss, data and optimizer, step
    # The imports are spelled out one per line in the example; the other blocks are the
    # README's code verbatim (up to layout), and the loop calls the same step.
    for block in blocks[1:]:
        assert block in example, block
    call = "params,opt_state,loss=step(params,opt_state)"
    assert loop.startswith("foriinrange(")
    assert call in loop
    assert call in example


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path):
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    stdout = run_example(name, out, cwd)
    if name in CHECKS:
        CHECKS[name](parse_final(stdout), out)
    else:
        check_generic(name, stdout, out)
