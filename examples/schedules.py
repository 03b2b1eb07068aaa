"""Plot every schedule in gradxform.schedules and gradxform.torch_optim, a few pages of panels.

    python examples/schedules.py [--out DIR] [--steps 400] [--quick]

One panel per schedule (optax's, the textbook decays, PyTorch's schedulers, and the two
plateau reducers driven by a scripted metric), each with a few argument sets so the effect
of the arguments is visible. The panels are grouped by family into ``schedules_<page>.png``
files of at most 8 panels, 1440 pixels wide, readable at 100%. Ends with a ``final:`` line.
"""

import argparse
import os

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import gradxform as gx
import gradxform.torch_optim as to


def panels(n):
    """(title, [(label, schedule)]) for every schedule, over a horizon of ``n`` steps."""
    q, h = n // 4, n // 2
    return [
        ("constant_schedule", [("0.5", gx.constant_schedule(0.5))]),
        (
            "linear_schedule",
            [
                ("1 -> 0.1 over n/2", gx.linear_schedule(1.0, 0.1, h)),
                ("0 -> 1, begin n/4", gx.linear_schedule(0.0, 1.0, q, transition_begin=q)),
            ],
        ),
        (
            "polynomial_schedule",
            [
                ("power 2", gx.polynomial_schedule(1.0, 0.0, 2, n)),
                ("power 0.5", gx.polynomial_schedule(1.0, 0.0, 0.5, n)),
            ],
        ),
        (
            "exponential_decay",
            [
                ("rate 0.5 per n/4", gx.exponential_decay(1.0, q, 0.5)),
                ("staircase", gx.exponential_decay(1.0, q, 0.5, staircase=True)),
                ("end_value 0.3", gx.exponential_decay(1.0, q, 0.5, end_value=0.3)),
            ],
        ),
        (
            "cosine_decay_schedule",
            [
                ("alpha 0", gx.cosine_decay_schedule(1.0, n)),
                ("alpha 0.2, exponent 2", gx.cosine_decay_schedule(1.0, n, 0.2, 2.0)),
            ],
        ),
        (
            "piecewise_constant_schedule",
            [
                ("x0.5 at n/4, x0.2 at n/2", gx.piecewise_constant_schedule(1.0, {q: 0.5, h: 0.2})),
            ],
        ),
        (
            "piecewise_interpolate_schedule",
            [
                ("linear", gx.piecewise_interpolate_schedule("linear", 1.0, {q: 0.5, h: 0.2})),
                ("cosine", gx.piecewise_interpolate_schedule("cosine", 1.0, {q: 0.5, h: 0.2})),
            ],
        ),
        ("warmup_constant_schedule", [("warmup n/4", gx.warmup_constant_schedule(0.0, 1.0, q))]),
        (
            "warmup_cosine_decay_schedule",
            [
                ("end 0", gx.warmup_cosine_decay_schedule(0.0, 1.0, q // 2, n)),
                ("end 0.2", gx.warmup_cosine_decay_schedule(0.0, 1.0, q // 2, n, end_value=0.2)),
            ],
        ),
        (
            "warmup_exponential_decay_schedule",
            [
                (
                    "rate 0.5 per n/4",
                    gx.warmup_exponential_decay_schedule(0.0, 1.0, q // 2, q, 0.5),
                ),
            ],
        ),
        ("linear_onecycle_schedule", [("", gx.linear_onecycle_schedule(n, 1.0))]),
        ("cosine_onecycle_schedule", [("", gx.cosine_onecycle_schedule(n, 1.0))]),
        (
            "sgdr_schedule",
            [
                (
                    "cycles n/4, n/4, n/2",
                    gx.sgdr_schedule(
                        [
                            dict(
                                init_value=0.0, peak_value=1.0, warmup_steps=q // 5, decay_steps=q
                            ),
                            dict(
                                init_value=0.0, peak_value=0.7, warmup_steps=q // 5, decay_steps=q
                            ),
                            dict(
                                init_value=0.0, peak_value=0.5, warmup_steps=q // 5, decay_steps=h
                            ),
                        ]
                    ),
                )
            ],
        ),
        (
            "join_schedules",
            [
                (
                    "linear, then cosine",
                    gx.join_schedules(
                        [gx.linear_schedule(0.0, 1.0, q), gx.cosine_decay_schedule(1.0, n - q)], [q]
                    ),
                )
            ],
        ),
        ("square_root_schedule", [("", gx.square_root_schedule(1.0))]),
        (
            "inverse_power_decay",
            [
                ("beta 0.1, power 0.5", gx.inverse_power_decay(1.0, 0.1)),
                ("beta 0.1, power 1", gx.inverse_power_decay(1.0, 0.1, 1.0)),
            ],
        ),
        (
            "factor_schedule",
            [
                ("factor 0.99, min 0.1", gx.factor_schedule(1.0, 0.99, 0.1)),
            ],
        ),
        (
            "multi_factor_schedule",
            [
                ("x0.5 at n/4, n/2, 3n/4", gx.multi_factor_schedule(1.0, [q, h, 3 * q], 0.5)),
            ],
        ),
        ("torch_optim.step_lr", [("step n/5, gamma 0.5", to.step_lr(1.0, n // 5, 0.5))]),
        (
            "torch_optim.multi_step_lr",
            [
                ("milestones n/4, n/2", to.multi_step_lr(1.0, [q, h], 0.3)),
            ],
        ),
        ("torch_optim.constant_lr", [("factor 1/3 for n/4", to.constant_lr(1.0, 1 / 3, q))]),
        ("torch_optim.linear_lr", [("1/3 -> 1 over n/4", to.linear_lr(1.0, 1 / 3, 1.0, q))]),
        ("torch_optim.exponential_lr", [("gamma 0.99", to.exponential_lr(1.0, 0.99))]),
        (
            "torch_optim.polynomial_lr",
            [
                ("power 1, n/2", to.polynomial_lr(1.0, h, 1.0)),
                ("power 2, n/2", to.polynomial_lr(1.0, h, 2.0)),
            ],
        ),
        (
            "torch_optim.cosine_annealing_lr",
            [
                ("T_max n/3 (not clamped)", to.cosine_annealing_lr(1.0, n // 3, 0.05)),
            ],
        ),
        (
            "torch_optim.cosine_annealing_warm_restarts",
            [
                ("T_0 n/8, T_mult 2", to.cosine_annealing_warm_restarts(1.0, n // 8, 2)),
            ],
        ),
        (
            "torch_optim.cyclic_lr",
            [
                ("triangular", to.cyclic_lr(0.1, 1.0, n // 10)),
                ("triangular2", to.cyclic_lr(0.1, 1.0, n // 10, mode="triangular2")),
                ("exp_range", to.cyclic_lr(0.1, 1.0, n // 10, mode="exp_range", gamma=0.995)),
            ],
        ),
        (
            "torch_optim.one_cycle_lr",
            [
                ("cos", to.one_cycle_lr(1.0, n)),
                (
                    "linear, three_phase",
                    to.one_cycle_lr(1.0, n, anneal_strategy="linear", three_phase=True),
                ),
            ],
        ),
        (
            "torch_optim.lambda_lr",
            [
                ("1 / (1 + 0.02 t)", to.lambda_lr(1.0, lambda t: 1 / (1 + 0.02 * t))),
            ],
        ),
    ]


def scripted_metric(n):
    """A loss that falls, stalls, falls again and stalls: what plateau reducers react to."""
    t = np.arange(n) / n
    first = 0.5 + 0.5 * np.exp(-t / 0.04)  # falls to 0.5 and stalls
    second = np.interp(t, [0.5, 0.75], [0.5, 0.2])  # falls again to 0.2 and stalls
    return np.where(t < 0.5, first, second) + 0.002 * np.sin(np.arange(n))


def plateau_panels(n):
    metric = jnp.asarray(scripted_metric(n))
    params = jnp.zeros(())

    def trace(tx):
        def step(state, value):
            update, state = tx.update(jnp.ones(()), state, params, value=value)
            return state, update

        return np.asarray(jax.lax.scan(step, tx.init(params), metric)[1])

    return [
        (
            "reduce_on_plateau (optax.contrib's)",
            trace(gx.contrib.reduce_on_plateau(0.5, patience=n // 10)),
        ),
        (
            "torch_optim.reduce_lr_on_plateau",
            trace(to.reduce_lr_on_plateau(1.0, factor=0.5, patience=n // 10, cooldown=n // 20)),
        ),
    ], np.asarray(metric)


# (file name suffix, heading, panel titles): families of at most 8 panels each.
PAGES = [
    (
        "decays",
        "optax: decays",
        [
            "constant_schedule",
            "linear_schedule",
            "polynomial_schedule",
            "exponential_decay",
            "cosine_decay_schedule",
            "piecewise_constant_schedule",
            "piecewise_interpolate_schedule",
            "join_schedules",
        ],
    ),
    (
        "warmup_and_cycles",
        "optax: warmup and cycles",
        [
            "warmup_constant_schedule",
            "warmup_cosine_decay_schedule",
            "warmup_exponential_decay_schedule",
            "linear_onecycle_schedule",
            "cosine_onecycle_schedule",
            "sgdr_schedule",
        ],
    ),
    (
        "textbook_and_plateau",
        "textbook decays, and a plateau reducer driven by a metric",
        [
            "square_root_schedule",
            "inverse_power_decay",
            "factor_schedule",
            "multi_factor_schedule",
            "reduce_on_plateau (optax.contrib's)",
        ],
    ),
    (
        "torch_decays",
        "torch_optim: decays (lr after t scheduler.step() calls)",
        [
            "torch_optim.step_lr",
            "torch_optim.multi_step_lr",
            "torch_optim.constant_lr",
            "torch_optim.linear_lr",
            "torch_optim.exponential_lr",
            "torch_optim.polynomial_lr",
        ],
    ),
    (
        "torch_cycles",
        "torch_optim: annealing, cycles, lambda and plateau",
        [
            "torch_optim.cosine_annealing_lr",
            "torch_optim.cosine_annealing_warm_restarts",
            "torch_optim.cyclic_lr",
            "torch_optim.one_cycle_lr",
            "torch_optim.lambda_lr",
            "torch_optim.reduce_lr_on_plateau",
        ],
    ),
]
COLS = 4  # 4 columns of 3.6 inches at 100 dpi: 1440 pixels


def draw_curves(ax, steps, lines):
    for label, schedule in lines:
        ax.plot(steps, np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps))), label=label)
    if any(label for label, _ in lines):
        legend_above_curves(ax, len(lines))


def legend_above_curves(ax, entries):
    """The legend in head room added above the curves, so that it covers none of them."""
    low, high = ax.get_ylim()
    low = min(low, 0.0)  # from 0, so that a flat schedule is not a magnified sliver
    ax.set_ylim(low, high + (0.04 + 0.11 * entries) * (high - low))
    ax.legend(fontsize=8, loc="upper right")


def draw_plateau(ax, steps, lr, metric):
    # The scripted metric runs from 1 down to 0.2, the lr scale's range: one y axis serves both.
    ax.plot(steps, lr, label="lr scale")
    ax.plot(steps, metric, color="0.55", linewidth=0.9, label="metric it is fed")
    legend_above_curves(ax, 2)


def plot_page(path, heading, titles, steps, curves, plateau, metric):
    rows = -(-len(titles) // COLS)
    fig, axes = plt.subplots(
        rows, COLS, figsize=(3.6 * COLS, 3.0 * rows + 0.5), layout="constrained", squeeze=False
    )
    axes = axes.ravel()
    for ax, title in zip(axes, titles):
        if title in plateau:
            draw_plateau(ax, steps, plateau[title], metric)
        else:
            draw_curves(ax, steps, curves[title])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.set_ylabel("value", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(titles) :]:
        ax.set_visible(False)
    fig.suptitle(f"{heading}, over {len(steps)} steps", fontsize=13)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="folder for the schedules_*.png files")
    parser.add_argument("--steps", type=int, default=400, help="horizon of every panel")
    parser.add_argument("--quick", action="store_true", help="a shorter horizon (200 steps)")
    args = parser.parse_args()
    n = 200 if args.quick else args.steps
    steps = np.arange(n)

    curves = dict(panels(n))
    plateau_list, metric = plateau_panels(n)
    plateau = dict(plateau_list)
    placed = [title for _, _, titles in PAGES for title in titles]
    # Every schedule is on exactly one page.
    assert sorted(placed) == sorted([*curves, *plateau]), set(placed) ^ {*curves, *plateau}

    os.makedirs(args.out, exist_ok=True)
    for suffix, heading, titles in PAGES:
        path = os.path.join(args.out, f"schedules_{suffix}.png")
        plot_page(path, heading, titles, steps, curves, plateau, metric)
        print(f"wrote {path} ({len(titles)} panels)")
    print(f"final: panels={len(placed)} pages={len(PAGES)} steps={n}")


if __name__ == "__main__":
    main()
