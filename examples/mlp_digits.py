"""An MLP in plain JAX on scikit-learn's handwritten digits (8x8 images, 10 classes).

The data set ships inside scikit-learn, so nothing is downloaded. The model is a two-hidden-
layer MLP written as a dict of arrays; the optimizer is

    chain(clip_by_global_norm(1.0), adamw(warmup_cosine_decay_schedule(...), weight_decay=1e-4))

trained on minibatches with one jitted step. Reports test accuracy on a held-out 25% split,
writes the learning curve (loss, accuracy and the learning-rate schedule against epochs) to
``mlp_digits.png`` in ``--out``, and ends with a ``final:`` line of ``key=value`` pairs.

    python examples/mlp_digits.py [--out DIR] [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

import gradxform as gx

BATCH_SIZE = 64
HIDDEN = (128, 128)


def load_data(seed: int = 0):
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    # Standardize with the training split's statistics. Border pixels that are (almost) always
    # blank in training keep a unit scale, so a stray ink dot in a test image is not blown up.
    mean, std = x_train.mean(0), np.maximum(x_train.std(0), 1.0)
    to_x = lambda a: jnp.asarray((a - mean) / std, jnp.float32)
    return to_x(x_train), jnp.asarray(y_train), to_x(x_test), jnp.asarray(y_test)


def init_mlp(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {
            "w": jax.random.normal(k, (m, n), jnp.float32) * jnp.sqrt(2.0 / m),
            "b": jnp.zeros(n, jnp.float32),
        }
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def logits_fn(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
    logits = logits_fn(params, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


@jax.jit
def evaluate(params, x, y):
    logits = logits_fn(params, x)
    loss = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))
    return loss, jnp.mean(jnp.argmax(logits, axis=1) == y)


def plot(history, schedule, steps_per_epoch, out_path):
    epochs = np.arange(len(history["train_loss"]))
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    ax_loss.plot(epochs, history["train_loss"], label="train")
    ax_loss.plot(epochs, history["test_loss"], label="test")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_title("loss")
    ax_loss.legend()
    ax_acc.plot(epochs, 100 * np.asarray(history["train_acc"]), label="train")
    ax_acc.plot(epochs, 100 * np.asarray(history["test_acc"]), label="test")
    ax_acc.axhline(95, color="gray", ls=":", lw=1, label="95%")
    ax_acc.set_ylim(0, 101)  # from 0, so that the untrained epoch 0 shows
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title(f"accuracy (final test {100 * history['test_acc'][-1]:.1f}%)")
    ax_acc.legend(loc="lower right")
    steps = np.arange(epochs[-1] * steps_per_epoch + 1)
    ax_lr.plot(steps / steps_per_epoch, np.asarray(jax.vmap(schedule)(steps)))
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("warmup + cosine decay schedule")
    for ax in (ax_loss, ax_acc, ax_lr):
        ax.grid(True, alpha=0.3)
    fig.suptitle("MLP 64-128-128-10 on scikit-learn digits: clip_by_global_norm + AdamW")
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="folder for the PNG (default: cwd)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="15 epochs, for a smoke run")
    args = parser.parse_args()
    epochs = 15 if args.quick else args.epochs
    os.makedirs(args.out, exist_ok=True)

    x_train, y_train, x_test, y_test = load_data()
    steps_per_epoch = len(x_train) // BATCH_SIZE
    total_steps = epochs * steps_per_epoch
    schedule = gx.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=3e-3,
        warmup_steps=max(1, total_steps // 10),
        decay_steps=total_steps,
        end_value=3e-5,
    )
    optimizer = gx.chain(
        gx.clip_by_global_norm(1.0),
        gx.adamw(learning_rate=schedule, weight_decay=1e-4),
    )
    params = init_mlp(jax.random.key(0), (x_train.shape[1], *HIDDEN, 10))
    opt_state = optimizer.init(params)

    @jax.jit
    def train_epoch(params, opt_state, key):
        """One pass over a fresh permutation of the training set, as one scan."""
        order = jax.random.permutation(key, len(x_train))[: steps_per_epoch * BATCH_SIZE]
        batches = (
            x_train[order].reshape(steps_per_epoch, BATCH_SIZE, -1),
            y_train[order].reshape(steps_per_epoch, BATCH_SIZE),
        )

        def step(carry, batch):
            params, opt_state = carry
            grads = jax.grad(loss_fn)(params, *batch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (gx.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state

    history: dict[str, list[float]] = {
        k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")
    }

    def record():
        for split, (x, y) in (("train", (x_train, y_train)), ("test", (x_test, y_test))):
            loss, acc = evaluate(params, x, y)
            history[f"{split}_loss"].append(float(loss))
            history[f"{split}_acc"].append(float(acc))

    record()
    key = jax.random.key(1)
    with tqdm(range(epochs), desc="training", unit="epoch") as bar:
        for _ in bar:
            key, sub = jax.random.split(key)
            params, opt_state = train_epoch(params, opt_state, sub)
            record()
            bar.set_postfix(
                loss=f"{history['train_loss'][-1]:.4f}", test_acc=f"{history['test_acc'][-1]:.3f}"
            )

    out_path = os.path.join(args.out, "mlp_digits.png")
    plot(history, schedule, steps_per_epoch, out_path)
    print(f"wrote {out_path}")
    print(f"train: {len(x_train)} images, test: {len(x_test)} images, {epochs} epochs")
    fields = {
        "initial_loss": history["train_loss"][0],
        "final_loss": history["train_loss"][-1],
        "test_loss": history["test_loss"][-1],
        "train_accuracy": history["train_acc"][-1],
        "test_accuracy": history["test_acc"][-1],
    }
    print("final: " + " ".join(f"{k}={v:.6g}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
