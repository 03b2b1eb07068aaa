"""A whole training step on ``small_leaves``: loss, gradient and Adam update.

``python -m bench.train_step`` times optax's usual step (``value_and_grad`` + ``update`` +
``apply_updates``, jitted, params and state donated) against ``gx.train_step`` plain,
with ``group=True`` and with ``pack=True``, on the same model: each of the 125 blocks of
``small_leaves`` is a small two-layer network with a gate, applied to one fixed batch.
Each contender runs in processes of its own (``bench.workers``: a step compiled later in a
process runs slower); rounds alternate (order flipped every round); medians are printed
with ratios to optax and their 95% intervals, and the first call of each (trace +
compile + one step) is timed too.
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
from bench import run, timing, workers, workloads


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


CONTENDERS = {
    "optax": None,
    "gradxform": {},
    "gradxform group": {"group": True},
    "gradxform pack": {"pack": True},
}


def prepare_named(name: str, quick: bool):
    """One contender's step, for a ``workers.StepProcess``: its first call (trace +
    compile + one step) timed, then ``(state,), x -> (state,)``."""
    params, _ = workloads.make("small_leaves", quick)
    x = jnp.full((4, 64), 0.1, jnp.float32)
    kw = CONTENDERS[name]
    if kw is None:
        step, init = optax_train_step(1e-3)
    else:
        step = gx.train_step(loss_fn, gx.adam, learning_rate=1e-3, **kw)
        init = step.init
    t0 = time.perf_counter()
    state, loss = step(init(timing.fresh_copy(params)), x)
    jax.block_until_ready(loss)
    record = {"status": "ok", "first_call_s": time.perf_counter() - t0}
    del state

    def advance(state, x):
        return (step(state, x)[0],)

    return record, (advance, lambda: (init(timing.fresh_copy(params)),), x)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.train_step", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds per trial")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="processes per contender")
    args = parser.parse_args(argv)
    procs = {}
    try:
        for k, names in enumerate(workers.spawn_orders(list(CONTENDERS), args.processes)):
            for name in names:
                procs[f"{name}#{k}"] = workers.StepProcess(
                    "bench.train_step:prepare_named", name, args.quick
                )
        running: dict[str, timing.Runner] = {key: p for key, p in procs.items() if p.ok}
        timed = timing.time_trials(running, args.trials, args.repeats, warmup=1)
    finally:
        for p in procs.values():
            p.close()
    samples = {name: workers.geometric_means(timed, name, args.processes) for name in CONTENDERS}
    print(f"{'contender':<18}{'ms/step':>9}{'ratio':>7}{'95% CI':>12}{'first call s':>14}")
    for name, secs in samples.items():
        paired = timing.paired_ratios(samples, name, "optax")
        lo, hi = run.median_ci95(paired)
        first = statistics.fmean(
            procs[f"{name}#{k}"].record["first_call_s"] for k in range(args.processes)
        )
        print(
            f"{name:<18}{1e3 * statistics.median(secs):>9.2f}{statistics.median(paired):>7.2f}"
            f"{f'{lo:.2f}-{hi:.2f}':>12}{first:>14.1f}"
        )
    return {name: statistics.median(s) for name, s in samples.items()}


if __name__ == "__main__":
    main()
