"""Data- and model-parallel training of a small MLP on 8 host CPU devices, with the
optimizer state sharded like the parameters and then ZeRO-1 partitioned.

The script asks XLA for 8 CPU devices before JAX starts, so it runs on any laptop; on a
machine with accelerators the same code runs unchanged on a mesh of them. The mesh is
("data": 4, "model": 2): the batch is split over "data", the hidden layer over "model"
(Megatron style: the first weight by columns, the second by rows). Three runs of
``chain(clip_by_global_norm(1.0), adamw(...))`` from the same start:

1. one device, unsharded (the reference);
2. the 4x2 mesh, with ``jax.jit(tx.init)`` laying each moment out like its parameter;
3. the same mesh with ``gradxform.sharding.partition_state(tx, mesh, "data")``: each
   moment further split over the 4 data-parallel devices (ZeRO stage 1).

Prints the optimizer state's bytes on each device for the three runs, the losses, and the
largest parameter difference to the reference; writes them to
``sharded_training.json`` in ``--out``, with the figure ``sharded_training.png`` (the three
loss curves and the state bytes per device); ends with a ``final:`` line of ``key=value``
pairs.

    python examples/sharded_training.py [--quick] [--out DIR] [--steps N]
"""

from __future__ import annotations

import os

# Must precede the first import of jax: the device count is fixed when JAX starts.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradxform as gx
from gradxform import sharding as gxs

FEATURES, HIDDEN, OUTPUTS, BATCH = 32, 512, 4, 256
PARAM_SPECS = {
    "w1": P(None, "model"),  # column-parallel
    "b1": P("model"),
    "w2": P("model", None),  # row-parallel: its matmul ends in a reduction over "model"
    "b2": P(),
}


def make_data(seed: int = 0):
    """A regression target drawn from a random teacher network of the same shape."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, FEATURES)).astype(np.float32)
    teacher = rng.normal(size=(FEATURES, OUTPUTS)).astype(np.float32) / np.sqrt(FEATURES)
    y = np.tanh(x @ teacher) + 0.1 * np.sin(3 * x[:, :OUTPUTS])
    params = {
        "w1": rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32) / np.sqrt(FEATURES),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": rng.normal(size=(HIDDEN, OUTPUTS)).astype(np.float32) / np.sqrt(HIDDEN),
        "b2": np.zeros(OUTPUTS, np.float32),
    }
    return params, x, y.astype(np.float32)


def loss_fn(params, x, y, sharded: bool):
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    # Both factors are split over "model" along the contracted axis: the type checker wants
    # to be told how the summed result is laid out (per batch row, over "data").
    out_sharding = P("data", None) if sharded else None
    out = jnp.matmul(hidden, params["w2"], out_sharding=out_sharding) + params["b2"]
    return jnp.mean((out - y) ** 2)


def make_tx(steps: int):
    schedule = gx.warmup_cosine_decay_schedule(0.0, 3e-3, max(steps // 10, 1), steps)
    return gx.chain(gx.clip_by_global_norm(1.0), gx.adamw(schedule, weight_decay=1e-4))


def train(tx, params, x, y, steps: int, sharded: bool):
    """Returns (final params, state after init, losses)."""

    @jax.jit
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y, sharded)
        updates, state = tx.update(grads, state, params)
        return gx.apply_updates(params, updates), state, loss

    state = jax.jit(tx.init)(params)
    first_state, losses = state, []
    for _ in range(steps):
        params, state, loss = step(params, state, x, y)
        # Waiting for each step keeps one step in flight: XLA's CPU backend runs the 8
        # simulated devices on a small thread pool, and a long queue of steps whose
        # collectives block threads can starve it.
        losses.append(float(loss))
    final = float(loss_fn(params, x, y, sharded))
    return params, first_state, [*losses, final]


def memory_line(label: str, state) -> int:
    held = gxs.bytes_per_device(state)
    per_device = [held[d] for d in sorted(held, key=lambda d: d.id)]
    print(f"{label:<28} state bytes per device: {per_device}")
    return max(per_device)


def plot(losses: dict[str, list[float]], state_bytes: dict[str, int], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_bytes) = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    for (label, curve), style in zip(losses.items(), ["-", "--", ":"]):
        ax_loss.semilogy(np.arange(len(curve)), curve, style, lw=2.0, label=label)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("mean squared error")
    ax_loss.set_title("loss: the three runs coincide (float32 round-off)")
    ax_loss.legend()
    ax_loss.grid(True, which="both", alpha=0.3)
    labels = list(state_bytes)
    kib = [state_bytes[k] / 1024 for k in labels]
    bars = ax_bytes.barh(labels, kib, color=["0.5", "tab:blue", "tab:green"])
    ax_bytes.bar_label(bars, [f"{v:.0f} KiB" for v in kib], padding=3)
    ax_bytes.invert_yaxis()
    ax_bytes.set_xlim(0, 1.2 * max(kib))
    ax_bytes.set_xlabel("optimizer state on the fullest device (KiB)")
    ax_bytes.set_title("optimizer state per device")
    fig.suptitle(
        f"MLP {FEATURES}-{HIDDEN}-{OUTPUTS}, clip + AdamW, 8 host devices (mesh data 4 x model 2)"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 steps, for a smoke run")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument(
        "--out", default=".", help="folder for sharded_training.json and sharded_training.png"
    )
    args = parser.parse_args()
    steps = 40 if args.quick else args.steps
    assert len(jax.devices()) == 8, f"expected 8 devices, got {jax.devices()}"

    host_params, host_x, host_y = make_data()
    tx = make_tx(steps)

    # 1. The reference: everything on one device.
    one_params, one_x, one_y = jax.device_put((host_params, host_x, host_y), jax.devices()[0])
    ref_params, ref_state, ref_losses = train(tx, one_params, one_x, one_y, steps, sharded=False)
    bytes_single = memory_line("one device", ref_state)

    mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
    with jax.sharding.set_mesh(mesh):
        layout = jax.tree.map(lambda s: NamedSharding(mesh, s), PARAM_SPECS)
        params = jax.device_put(host_params, layout)
        x = jax.device_put(host_x, NamedSharding(mesh, P("data", None)))
        y = jax.device_put(host_y, NamedSharding(mesh, P("data", None)))

        # 2. Data + model parallel: the state follows the params' layout.
        dp_params, dp_state, dp_losses = train(tx, params, x, y, steps, sharded=True)
        bytes_sharded = memory_line("4x2 mesh, state like params", dp_state)

        # 3. ZeRO-1: the state is also split over the data-parallel axis.
        zero_tx = gxs.partition_state(tx, mesh, "data")
        z_params, z_state, z_losses = train(zero_tx, params, x, y, steps, sharded=True)
        bytes_zero = memory_line("4x2 mesh, ZeRO-1 over data", z_state)

    def diff(a, b):
        return max(
            float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
            for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
        )

    results = {
        "initial_loss": ref_losses[0],
        "final_loss": dp_losses[-1],
        "zero_final_loss": z_losses[-1],
        "single_device_final_loss": ref_losses[-1],
        "max_param_diff_sharded": diff(dp_params, ref_params),
        "max_param_diff_zero": diff(z_params, ref_params),
        "state_bytes_single_device": bytes_single,
        "state_bytes_per_device_sharded": bytes_sharded,
        "state_bytes_per_device_zero": bytes_zero,
    }
    print(
        f"loss: {ref_losses[0]:.4g} -> {ref_losses[-1]:.4g} on one device, "
        f"{dp_losses[-1]:.4g} sharded, {z_losses[-1]:.4g} with ZeRO-1 ({steps} steps)"
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sharded_training.json"), "w") as f:
        json.dump(
            {
                **results,
                "losses": {"single_device": ref_losses, "sharded": dp_losses, "zero": z_losses},
            },
            f,
            indent=1,
        )
    png = os.path.join(args.out, "sharded_training.png")
    plot(
        {
            "one device": ref_losses,
            "4x2 mesh, state like params": dp_losses,
            "4x2 mesh, ZeRO-1 over data": z_losses,
        },
        {
            "one device": bytes_single,
            "4x2 mesh, state like params": bytes_sharded,
            "4x2 mesh, ZeRO-1": bytes_zero,
        },
        png,
    )
    print(f"wrote {png}")
    print("final: " + " ".join(f"{k}={v:.6g}" for k, v in results.items()))


if __name__ == "__main__":
    main()
