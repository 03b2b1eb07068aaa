"""L-BFGS on L2-regularised logistic regression: the whole solve in one ``jit``.

The solver loop is a ``jax.lax.while_loop`` around ``gx.lbfgs()`` (two-loop recursion plus
a strong-Wolfe zoom line search), stopping when the gradient norm falls below ``--tol``.
The line search's last evaluation is reused with ``gx.value_and_grad_from_state``, so each
iteration costs only the line search's evaluations. The result is checked against
``scipy.optimize.minimize(method='L-BFGS-B')``, and the loss curve is written to
``DIR/lbfgs_logistic_loss.png`` when matplotlib is installed.

    python examples/lbfgs_logistic.py [--quick] [--out DIR] [--samples N] [--features D]

The last line printed is ``final: key=value ...`` for scripts to parse.
"""

import argparse
import os
import time

import jax

# A solve to a gradient norm of 1e-9 needs float64.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

import gradxform as gx  # noqa: E402


def make_data(samples, features, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)) / np.sqrt(features)
    w_true = rng.normal(size=features) * 3.0
    logits = x @ w_true + 0.5
    y = (rng.uniform(size=samples) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    return jnp.asarray(x), jnp.asarray(y)


def loss_fn(params, x, y, reg):
    """Mean logistic loss plus ``reg/2 ||w||^2`` (the intercept is not penalised)."""
    z = x @ params["w"] + params["b"]
    return jnp.mean(jax.nn.softplus(z) - y * z) + 0.5 * reg * jnp.sum(params["w"] ** 2)


def solve(objective, params, max_iter, tol):
    """L-BFGS until ``||grad|| <= tol`` or ``max_iter`` iterations; returns the solution,
    the number of iterations, the final gradient norm and the loss after every iteration."""
    opt = gx.lbfgs()
    value_and_grad = gx.value_and_grad_from_state(objective)

    def not_done(carry):
        _, _, k, _, grad, _ = carry
        return (k < max_iter) & (gx.tree.norm(grad) > tol)

    def iteration(carry):
        params, state, k, value, grad, history = carry
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=objective)
        params = gx.apply_updates(params, updates)
        value, grad = value_and_grad(params, state=state)  # computed by the line search
        return params, state, k + 1, value, grad, history.at[k + 1].set(value)

    value, grad = jax.value_and_grad(objective)(params)
    history = jnp.full(max_iter + 1, jnp.nan).at[0].set(value)
    carry = (params, opt.init(params), 0, value, grad, history)
    params, _, k, _, grad, history = jax.lax.while_loop(not_done, iteration, carry)
    return params, k, gx.tree.norm(grad), history


def plot(history, best, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    gap = np.maximum(history - best, 1e-16)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(np.arange(len(gap)), gap, marker="o", markersize=3)
    ax.set_xlabel("L-BFGS iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss - scipy's optimum")
    ax.set_title("L-BFGS on logistic regression (one jit, lax.while_loop)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--reg", type=float, default=1e-3)
    parser.add_argument("--tol", type=float, default=1e-9, help="stop at this gradient norm")
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".", help="directory for the loss-curve PNG")
    parser.add_argument("--quick", action="store_true", help="a small problem, for a smoke run")
    args = parser.parse_args()
    samples, features = (2000, 20) if args.quick else (args.samples, args.features)

    x, y = make_data(samples, features, args.seed)

    def objective(params):
        return loss_fn(params, x, y, args.reg)

    params0 = {"w": jnp.zeros(features), "b": jnp.zeros(())}
    solver = jax.jit(lambda p: solve(objective, p, args.max_iter, args.tol))
    compiled = solver.lower(params0).compile()
    start = time.perf_counter()
    params, iterations, grad_norm, history = jax.block_until_ready(compiled(params0))
    seconds = time.perf_counter() - start
    iterations = int(iterations)
    history = np.asarray(history[: iterations + 1])
    for k in range(0, iterations + 1, max(1, iterations // 8)):
        print(f"iteration {k:4d}  loss {history[k]:.12f}")

    # The same problem in scipy, as numpy arrays in its (b, w) flat layout.
    flat_fn = jax.jit(jax.value_and_grad(lambda v: objective({"b": v[0], "w": v[1:]})))
    res = scipy.optimize.minimize(
        lambda v: tuple(np.asarray(a) for a in flat_fn(v)),
        np.zeros(features + 1),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": args.tol, "ftol": 0.0, "maxiter": 10 * args.max_iter},
    )
    ours = np.concatenate([[float(params["b"])], np.asarray(params["w"])])
    final_loss = float(objective(params))
    max_diff = float(np.max(np.abs(ours - res.x)))
    print(f"gradxform L-BFGS: {iterations} iterations in {seconds:.3f} s, loss {final_loss:.15f}")
    print(f"scipy L-BFGS-B:   {res.nit} iterations, loss {res.fun:.15f} ({res.message})")

    os.makedirs(args.out, exist_ok=True)
    png = plot(history, min(res.fun, final_loss), os.path.join(args.out, "lbfgs_logistic_loss.png"))
    print(f"loss curve: {png}" if png else "loss curve: not plotted (matplotlib not installed)")
    print(
        f"final: iterations={iterations} initial_loss={history[0]:.15g} "
        f"final_loss={final_loss:.15g} scipy_loss={res.fun:.15g} "
        f"loss_gap={final_loss - res.fun:.3g} max_param_diff={max_diff:.3g} "
        f"grad_norm={float(grad_norm):.3g} solve_seconds={seconds:.4f}"
    )


if __name__ == "__main__":
    main()
