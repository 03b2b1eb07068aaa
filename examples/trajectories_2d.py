"""Optimizer paths on three 2-D functions, one contour panel per optimizer.

The textbook picture: gradient descent at several learning rates, momentum, Nesterov,
AdaGrad, RMSProp, Adadelta, Adam and Newton's method, each started from the same point on

* ``f(x) = x1^2 + 2 x2^2``         (well conditioned, Hessian eigenvalues 2 and 4),
* ``f(x) = 0.1 x1^2 + 2 x2^2``     (ill conditioned, eigenvalues 0.2 and 4: GD zig-zags),
* Rosenbrock ``(1 - x1)^2 + 100 (x2 - x1^2)^2`` (a curved valley, minimum at (1, 1)).

Writes ``trajectories_<function>.png`` (one figure per function) to ``--out`` and ends with a
``final:`` line of ``key=value`` pairs: each run's starting and final objective value.

    python examples/trajectories_2d.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from tqdm import tqdm

import gradxform as gx


@dataclass(frozen=True)
class Problem:
    key: str
    title: str
    f: Callable[[jax.Array], jax.Array]
    x0: tuple[float, float]
    minimum: tuple[float, float]
    steps: int
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_levels: bool
    # label -> optimizer, tuned per function so each path tells its story in `steps` steps.
    optimizers: Callable[[], dict[str, gx.GradientTransformation]]


def quadratic(x):
    return x[0] ** 2 + 2.0 * x[1] ** 2


def ill_conditioned(x):
    return 0.1 * x[0] ** 2 + 2.0 * x[1] ** 2


def rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def _gd_family(lrs, momentum_lr, nesterov_lr, beta=0.9):
    return {
        **{f"GD, lr={lr:g}": gx.sgd(lr) for lr in lrs},
        f"momentum, lr={momentum_lr:g}, β={beta:g}": gx.sgd(momentum_lr, momentum=beta),
        f"Nesterov, lr={nesterov_lr:g}, β={beta:g}": gx.sgd(
            nesterov_lr, momentum=beta, nesterov=True
        ),
    }


def _quadratic_optimizers():
    return {
        **_gd_family((0.05, 0.2, 0.45), momentum_lr=0.2, nesterov_lr=0.2, beta=0.5),
        "AdaGrad, lr=2": gx.adagrad(2.0),
        "RMSProp, lr=0.3": gx.rmsprop(0.3),
        "Adadelta, lr=50": gx.adadelta(50.0),
        "Adam, lr=0.5": gx.adam(0.5),
        "Newton": gx.newton(),
    }


def _ill_conditioned_optimizers():
    return {
        **_gd_family((0.1, 0.4, 0.48), momentum_lr=0.4, nesterov_lr=0.3, beta=0.5),
        "AdaGrad, lr=2": gx.adagrad(2.0),
        "RMSProp, lr=0.3": gx.rmsprop(0.3),
        "Adadelta, lr=50": gx.adadelta(50.0),
        "Adam, lr=0.5": gx.adam(0.5),
        "Newton": gx.newton(),
    }


def _rosenbrock_optimizers():
    return {
        **_gd_family((2e-4, 1e-3, 1.9e-3), momentum_lr=2e-4, nesterov_lr=2e-4, beta=0.9),
        "AdaGrad, lr=0.5": gx.adagrad(0.5),
        "RMSProp, lr=0.01": gx.rmsprop(0.01),
        "Adadelta, lr=5": gx.adadelta(5.0),
        "Adam, lr=0.05": gx.adam(0.05),
        "Newton": gx.newton(),
    }


PROBLEMS = [
    Problem(
        "quadratic",
        r"$f(x) = x_1^2 + 2x_2^2$",
        quadratic,
        x0=(-5.0, -2.0),
        minimum=(0.0, 0.0),
        steps=40,
        xlim=(-5.5, 1.5),
        ylim=(-3.0, 3.0),
        log_levels=False,
        optimizers=_quadratic_optimizers,
    ),
    Problem(
        "ill_conditioned",
        r"$f(x) = 0.1x_1^2 + 2x_2^2$ (ill conditioned)",
        ill_conditioned,
        x0=(-5.0, -2.0),
        minimum=(0.0, 0.0),
        steps=40,
        xlim=(-5.5, 1.5),
        ylim=(-3.0, 3.0),
        log_levels=False,
        optimizers=_ill_conditioned_optimizers,
    ),
    Problem(
        "rosenbrock",
        r"Rosenbrock $f(x) = (1-x_1)^2 + 100(x_2-x_1^2)^2$",
        rosenbrock,
        x0=(-1.5, 2.0),
        minimum=(1.0, 1.0),
        steps=2000,
        xlim=(-2.0, 2.0),
        ylim=(-3.0, 3.0),  # Newton's second iterate is (0.20, -2.70)
        log_levels=True,
        optimizers=_rosenbrock_optimizers,
    ),
]


def run_path(tx: gx.GradientTransformation, f, x0, steps: int) -> np.ndarray:
    """``steps`` updates from ``x0``; returns the ``(steps + 1, 2)`` path, jitted as one scan.

    Every transformation gets ``value_fn=f``; those that need it (Newton) use it, the rest
    ignore it.
    """
    grad = jax.grad(f)

    @jax.jit
    def solve(x0):
        def step(carry, _):
            x, state = carry
            updates, state = tx.update(grad(x), state, x, value_fn=f)
            x = gx.apply_updates(x, updates)
            return (x, state), x

        _, xs = jax.lax.scan(step, (x0, tx.init(x0)), None, length=steps)
        return jnp.concatenate([x0[None], xs])

    return np.asarray(solve(jnp.asarray(x0, dtype=jnp.float32)))


def plot_problem(problem: Problem, paths: dict[str, np.ndarray], out_path: str) -> None:
    n = len(paths)
    cols = 5
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.3 * cols, 3.1 * rows + 0.6),
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    axes = np.atleast_1d(axes).ravel()
    g1, g2 = np.meshgrid(
        np.linspace(*problem.xlim, 300), np.linspace(*problem.ylim, 300), indexing="xy"
    )
    z = np.asarray(problem.f(jnp.stack([jnp.asarray(g1), jnp.asarray(g2)])))
    # Log-spaced contour levels: both the valley floor and the walls stay visible.
    levels = np.geomspace(0.1 if problem.log_levels else 0.05, z.max(), 18)
    norm = LogNorm(vmin=levels[0], vmax=levels[-1])
    for ax, (label, path) in zip(axes, paths.items()):
        ax.contour(g1, g2, z, levels=levels, norm=norm, cmap="viridis", linewidths=0.7)
        # Dots mark every step on short paths; long ones are drawn as a line. The start is a
        # hollow square under the path, so a path that barely moves still shows.
        style = "-o" if len(path) <= 101 else "-"
        ax.plot(*path[0], "s", mfc="none", mec="black", mew=1.2, ms=7, label="start", zorder=2)
        ax.plot(path[:, 0], path[:, 1], style, color="tab:red", ms=2.0, lw=1.2, zorder=3)
        ax.plot(*problem.minimum, "*", color="gold", mec="black", ms=11, label="minimum")
        ax.set_xlim(problem.xlim)
        ax.set_ylim(problem.ylim)
        final = float(problem.f(jnp.asarray(path[-1])))
        ax.set_title(f"{label}\nf = {final:.2e} after {len(path) - 1} steps", fontsize=9)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * cols :]:
        ax.set_xlabel(r"$x_1$")
    for ax in axes[::cols]:
        ax.set_ylabel(r"$x_2$")
    axes[0].legend(loc="upper right", fontsize=8, framealpha=0.9)
    fig.suptitle(problem.title, fontsize=13)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="folder for the PNG files (default: cwd)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer Rosenbrock steps, for a smoke run"
    )
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    results = {}
    runs = [(p, label, tx) for p in PROBLEMS for label, tx in p.optimizers().items()]
    paths: dict[str, dict[str, np.ndarray]] = {p.key: {} for p in PROBLEMS}
    for problem, label, tx in tqdm(runs, desc="optimizer paths", unit="run"):
        steps = problem.steps // 4 if args.quick and problem.key == "rosenbrock" else problem.steps
        path = run_path(tx, problem.f, problem.x0, steps)
        paths[problem.key][label] = path
        slug = label.split(",")[0].replace(" ", "_").lower()
        if slug == "gd":
            slug = "gd_lr" + label.split("=")[1]
        results[f"{problem.key}.{slug}.initial"] = float(problem.f(jnp.asarray(path[0])))
        results[f"{problem.key}.{slug}.final"] = float(problem.f(jnp.asarray(path[-1])))

    for problem in PROBLEMS:
        out_path = os.path.join(args.out, f"trajectories_{problem.key}.png")
        plot_problem(problem, paths[problem.key], out_path)
        print(f"wrote {out_path}")
        for label, path in paths[problem.key].items():
            value = float(problem.f(jnp.asarray(path[-1])))
            print(f"  {problem.key:16s} {label:28s} final f = {value:.3e}")
    print("final: " + " ".join(f"{k}={v:.6g}" for k, v in results.items()))


if __name__ == "__main__":
    main()
