"""A whole training step on ``small_leaves``: loss, gradient and Adam update.

``python -m bench.train_step`` times optax's usual step (``value_and_grad`` + ``update`` +
``apply_updates``, jitted, params and state donated) against ``gx.train_step`` plain,
with ``group=True`` and with ``pack=True``, on the same model: each of the 125 blocks of
``small_leaves`` is a small two-layer network with a gate, applied to one fixed batch.
Rounds alternate (order flipped every round); medians are printed with ratios to optax,
and the first call of each (trace + compile) is timed too.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import gradxform as gx
from bench import timing, workloads


def loss_fn(params, x):
    total = 0.0
    for block in params.values():
        h = jnp.tanh(x @ block["w1"] + block["b1"]) @ block["w2"] + block["b2"]
        h = h * block["ln_scale"] + block["ln_bias"]
        total = total + jnp.mean(h**2) + jnp.mean((h @ block["gate"]) ** 2)
        total = total + 1e-3 * jnp.sum(block["emb"] ** 2)
    return total


def optax_train_step(learning_rate: float):
    tx = optax.adam(learning_rate)

    @functools.partial(jax.jit, donate_argnums=(0,))
    def step(state, x):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params, x)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return step, lambda params: (params, tx.init(params))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.train_step", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    params, _ = workloads.make("small_leaves", args.quick)
    x = jnp.full((4, 64), 0.1, jnp.float32)
    contenders = {"optax": optax_train_step(1e-3)}
    for name, kw in (
        ("gradxform", {}),
        ("gradxform group", {"group": True}),
        ("gradxform pack", {"pack": True}),
    ):
        step = gx.train_step(loss_fn, gx.adam, learning_rate=1e-3, **kw)
        contenders[name] = (step, step.init)
    states, first_call = {}, {}
    for name, (step, init) in contenders.items():
        state = init(timing.fresh_copy(params))
        t0 = time.perf_counter()
        state, loss = step(state, x)
        jax.block_until_ready(loss)
        first_call[name] = time.perf_counter() - t0
        states[name] = state
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            step, state = contenders[name][0], states[name]
            state, loss = step(state, x)  # one untimed call after switching contender
            jax.block_until_ready(loss)
            t0 = time.perf_counter()
            for _ in range(5):
                state, loss = step(state, x)
            jax.block_until_ready(loss)
            samples[name].append((time.perf_counter() - t0) / 5)
            states[name] = state
    ref = statistics.median(samples["optax"])
    print(f"{'contender':<18}{'ms/step':>9}{'ratio':>7}{'first call s':>14}")
    for name, secs in samples.items():
        med = statistics.median(secs)
        print(f"{name:<18}{1e3 * med:>9.2f}{med / ref:>7.2f}{first_call[name]:>14.1f}")
    return {name: statistics.median(s) for name, s in samples.items()}


if __name__ == "__main__":
    main()
