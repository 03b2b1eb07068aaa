"""Quick start: fit a small MLP to y = sin(3x) with Adam and a jitted training step.

    python examples/quickstart.py [--steps 500] [--quick]
"""

import argparse

import jax
import jax.numpy as jnp

import gradxform as gx


def init_mlp(key, sizes=(1, 32, 32, 1)):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) / jnp.sqrt(m), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def predict(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
    return jnp.mean((predict(params, x) - y) ** 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="fewer steps, for a smoke run")
    args = parser.parse_args()
    steps = 200 if args.quick else args.steps

    x = jnp.linspace(-1, 1, 256).reshape(-1, 1)
    y = jnp.sin(3 * x)
    params = init_mlp(jax.random.key(0))
    optimizer = gx.adam(learning_rate=1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return gx.apply_updates(params, updates), opt_state, loss

    first = None
    for i in range(steps):
        params, opt_state, loss = step(params, opt_state)
        first = float(loss) if first is None else first
        if i % max(1, steps // 10) == 0:
            print(f"step {i:4d}  loss {float(loss):.6f}")
    final = float(loss_fn(params, x, y))
    print(f"final: initial_loss={first:.6f} final_loss={final:.6f}")


if __name__ == "__main__":
    main()
