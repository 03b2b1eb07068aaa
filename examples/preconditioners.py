"""Adam, Muon, Shampoo, SOAP and PSGD-Kron on the digits MLP: loss against steps and seconds.

The model and data are those of ``mlp_digits.py`` (scikit-learn's 8x8 digits, a 64-128-128-10
MLP, minibatches of 64). Every optimizer trains the same initial params on the same batches,
one jitted ``lax.scan`` per epoch; after each epoch the loss on the whole training set is
recorded with the wall time spent in training steps so far (compilation excluded: each
epoch function is compiled before the clock starts). The preconditioners are the library's
own transformations, used as any other:

    gx.shampoo(learning_rate, block_size=128, graft_type="adagrad")
    gx.soap(learning_rate, weight_decay=0.0)
    gx.psgd_kron(learning_rate)

Writes ``preconditioners.png`` (two panels: loss per step, loss per second) to ``--out`` and
ends with a ``final:`` line of ``key=value`` pairs: the initial loss, each optimizer's final
training loss, test accuracy and milliseconds per step.

    python examples/preconditioners.py [--out DIR] [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mlp_digits import BATCH_SIZE, HIDDEN, evaluate, init_mlp, load_data, loss_fn

import gradxform as gx
import gradxform.contrib

# Learning rates: each optimizer's usual value, except Shampoo's and PSGD-Kron's, the best
# of a few tries a factor of 3 apart (Shampoo with normalised RMSProp grafting diverged at
# 1e-2 and 3e-2; AdaGrad grafting at 3e-2 trains well). Nothing is tuned further. Muon
# orthogonalises the matrices' updates and hands the biases to Adam (at Adam's rate here).
OPTIMIZERS = {
    "Adam": lambda: gx.adam(3e-3),
    "Muon": lambda: gx.contrib.muon(0.02, adam_learning_rate=3e-3),
    "Shampoo": lambda: gx.shampoo(3e-2, block_size=128, graft_type="adagrad"),
    "SOAP": lambda: gx.soap(3e-3, weight_decay=0.0),
    "PSGD-Kron": lambda: gx.psgd_kron(3e-3),
}


def train(optimizer, params, x_train, y_train, epochs, seed=1):
    """Trains ``epochs`` epochs; returns the per-epoch history, params and seconds/step."""
    steps_per_epoch = len(x_train) // BATCH_SIZE
    state = optimizer.init(params)

    def epoch(params, state, key):
        order = jax.random.permutation(key, len(x_train))[: steps_per_epoch * BATCH_SIZE]
        batches = (
            x_train[order].reshape(steps_per_epoch, BATCH_SIZE, -1),
            y_train[order].reshape(steps_per_epoch, BATCH_SIZE),
        )

        def step(carry, batch):
            params, state = carry
            grads = jax.grad(loss_fn)(params, *batch)
            updates, state = optimizer.update(grads, state, params)
            return (gx.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (params, state), batches)[0]

    keys = jax.random.split(jax.random.key(seed), epochs)  # the same batches for everyone
    compiled = jax.jit(epoch).lower(params, state, keys[0]).compile()
    loss0, _ = evaluate(params, x_train, y_train)
    history = {"step": [0], "seconds": [0.0], "loss": [float(loss0)]}
    seconds = 0.0
    for i, key in enumerate(keys):
        t0 = time.perf_counter()
        params, state = jax.block_until_ready(compiled(params, state, key))
        seconds += time.perf_counter() - t0
        loss, _ = evaluate(params, x_train, y_train)
        history["step"].append((i + 1) * steps_per_epoch)
        history["seconds"].append(seconds)
        history["loss"].append(float(loss))
    return history, params, seconds / (epochs * steps_per_epoch)


def plot(histories, ms_per_step, out_path):
    fig, (ax_step, ax_time) = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
    for name, h in histories.items():
        label = f"{name} ({ms_per_step[name]:.2f} ms/step)"
        ax_step.plot(h["step"], h["loss"], marker=".", label=label)
        ax_time.plot(h["seconds"][1:], h["loss"][1:], marker=".", label=label)
    ax_step.set_xlabel("step (minibatches of 64)")
    ax_step.set_title("training loss per step")
    ax_time.set_xscale("log")  # the step times differ 50-fold
    ax_time.set_xlabel("wall time in training steps (s, log scale, compilation excluded)")
    ax_time.set_title("training loss per second")
    for ax in (ax_step, ax_time):
        ax.set_yscale("log")
        ax.set_ylabel("cross-entropy on the training set")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"MLP 64-{HIDDEN[0]}-{HIDDEN[1]}-10 on scikit-learn digits, "
        f"{jax.devices()[0].platform.upper()}, float32"
    )
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="folder for the PNG (default: cwd)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="6 epochs, for a smoke run")
    args = parser.parse_args()
    epochs = 6 if args.quick else args.epochs
    os.makedirs(args.out, exist_ok=True)

    x_train, y_train, x_test, y_test = load_data()
    params = init_mlp(jax.random.key(0), (x_train.shape[1], *HIDDEN, 10))
    histories, ms_per_step, fields = {}, {}, {}
    print(f"{'optimizer':10s} {'train loss':>11s} {'test acc':>9s} {'ms/step':>8s}")
    for name, make in OPTIMIZERS.items():
        history, trained, seconds = train(make(), params, x_train, y_train, epochs)
        _, accuracy = evaluate(trained, x_test, y_test)
        histories[name], ms_per_step[name] = history, 1e3 * seconds
        print(f"{name:10s} {history['loss'][-1]:11.4g} {float(accuracy):9.3f} {1e3 * seconds:8.3f}")
        slug = name.lower().replace("-", "_")
        fields[f"final_loss.{slug}"] = history["loss"][-1]
        fields[f"test_accuracy.{slug}"] = float(accuracy)
        fields[f"ms_per_step.{slug}"] = 1e3 * seconds
    out_path = os.path.join(args.out, "preconditioners.png")
    plot(histories, ms_per_step, out_path)
    print(f"wrote {out_path}")
    fields = {"initial_loss": histories["Adam"]["loss"][0], **fields}
    print("final: " + " ".join(f"{k}={v:.6g}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
