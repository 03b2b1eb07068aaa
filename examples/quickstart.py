"""Quick start, the README's example: linear regression with clipped AdamW and a jitted step.

The code of ``main`` is the README's quick start statement for statement (the number of
steps comes from ``--steps``); around it the script prints the loss as it falls and the
fitted weights next to the true ones, and writes the loss curve to ``quickstart_loss.png``
in ``--out``. Its last line is ``final: key=value ...`` for scripts to parse.

    python examples/quickstart.py [--steps 200] [--quick] [--out DIR]
"""

import argparse
import os

import jax
import jax.numpy as jnp

import gradxform as gx


def loss_fn(params, x, y):
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def plot(losses, out_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    ax.semilogy(range(len(losses)), losses)  # losses[t]: after t steps
    ax.set_xlabel("steps taken")
    ax.set_ylabel("mean squared error")
    ax.set_title("quick start: clip_by_global_norm + AdamW on linear regression")
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="100 steps, for a smoke run")
    parser.add_argument("--out", default=".", help="folder for quickstart_loss.png (default: cwd)")
    args = parser.parse_args()
    steps = 100 if args.quick else args.steps

    x = jax.random.normal(jax.random.key(0), (128, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    optimizer = gx.chain(
        gx.clip_by_global_norm(1.0), gx.adamw(learning_rate=0.1, weight_decay=1e-4)
    )
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return gx.apply_updates(params, updates), opt_state, loss

    losses = []
    for i in range(steps):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
        if i % max(1, steps // 10) == 0:
            print(f"step {i:4d}  loss {losses[-1]:.3e}")
    final = float(loss_fn(params, x, y))
    print(f"step {steps:4d}  loss {final:.3e}")
    print(
        f"w = {[round(float(v), 4) for v in params['w']]} (true [1.0, -2.0, 0.5]), "
        f"b = {float(params['b']):.4f} (true 0.3)"
    )

    os.makedirs(args.out, exist_ok=True)
    out_path = os.path.join(args.out, "quickstart_loss.png")
    plot([*losses, final], out_path)
    print(f"wrote {out_path}")
    print(f"final: initial_loss={losses[0]:.6g} final_loss={final:.6g} steps={steps}")


if __name__ == "__main__":
    main()
