"""gradxform inside the JAX ecosystem: flax (nnx and TrainState), equinox, orbax, optax.

Each test trains the same model twice, once with a gradxform optimizer and once with the
optax optimizer of the same name, through the other library's own API, and asserts the two
runs agree to float64 round-off and that the loss fell. So a test fails if the host library
rejects the transformation, feeds it differently, or mangles its state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from reference import assert_trees_close, nested_params

STEPS = 25


def regression_data(n: int = 32, d_in: int = 3, d_out: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d_in))
    y = np.tanh(x @ rng.normal(size=(d_in, d_out))) + 0.1 * rng.normal(size=(n, d_out))
    return jnp.asarray(x), jnp.asarray(y)


def optimizer_pairs():
    """(gradxform, optax) pairs built with the same arguments."""
    return {
        "adam": (gx.adam(0.05), optax.adam(0.05)),
        "adamw_clipped": (
            gx.chain(gx.clip_by_global_norm(0.5), gx.adamw(0.05, weight_decay=0.1)),
            optax.chain(optax.clip_by_global_norm(0.5), optax.adamw(0.05, weight_decay=0.1)),
        ),
        "sgd_nesterov": (
            gx.sgd(0.05, momentum=0.9, nesterov=True),
            optax.sgd(0.05, momentum=0.9, nesterov=True),
        ),
    }


PAIR_NAMES = sorted(optimizer_pairs())


# --- flax ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_flax_nnx_optimizer(name):
    nnx = pytest.importorskip("flax.nnx")
    x, y = regression_data()

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(3, 8, rngs=rngs, param_dtype=jnp.float64)
            self.out = nnx.Linear(8, 2, rngs=rngs, param_dtype=jnp.float64)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    def loss_fn(model):
        return jnp.mean((model(x) - y) ** 2)

    def train(tx):
        model = MLP(nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

        @nnx.jit
        def step(model, optimizer):
            loss, grads = nnx.value_and_grad(loss_fn)(model)
            optimizer.update(model, grads)
            return loss

        losses = [float(step(model, optimizer)) for _ in range(STEPS)]
        return nnx.state(model, nnx.Param), losses, int(optimizer.step[...])

    ours, theirs = optimizer_pairs()[name]
    params, losses, steps = train(ours)
    ref_params, ref_losses, _ = train(theirs)
    assert steps == STEPS
    assert losses[-1] < 0.5 * losses[0], losses
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9)
    assert_trees_close(nnx.to_pure_dict(params), nnx.to_pure_dict(ref_params))


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_flax_train_state(name):
    linen = pytest.importorskip("flax.linen")
    from flax.training import train_state

    x, y = regression_data()
    model = linen.Sequential(
        [linen.Dense(8, param_dtype=jnp.float64), jnp.tanh, linen.Dense(2, param_dtype=jnp.float64)]
    )
    init_params = model.init(jax.random.key(0), x)["params"]

    def train(tx):
        state = train_state.TrainState.create(apply_fn=model.apply, params=init_params, tx=tx)

        @jax.jit
        def step(state):
            def loss_fn(params):
                return jnp.mean((state.apply_fn({"params": params}, x) - y) ** 2)

            loss, grads = jax.value_and_grad(loss_fn)(state.params)
            return state.apply_gradients(grads=grads), loss

        losses = []
        for _ in range(STEPS):
            state, loss = step(state)
            losses.append(float(loss))
        return state, losses

    ours, theirs = optimizer_pairs()[name]
    state, losses = train(ours)
    ref_state, ref_losses = train(theirs)
    assert int(state.step) == STEPS
    assert losses[-1] < 0.5 * losses[0], losses
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9)
    assert_trees_close(state.params, ref_state.params)


# --- equinox ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_equinox_training_loop(name):
    eqx = pytest.importorskip("equinox")
    x, y = regression_data()

    def train(tx):
        # An MLP holds non-array leaves (its activation functions): eqx.filter keeps only
        # the arrays, so the optimizer sees a tree with None in their place.
        model = eqx.nn.MLP(3, 2, 8, depth=2, activation=jnp.tanh, key=jax.random.key(0))
        model = jax.tree.map(
            lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model
        )
        opt_state = tx.init(eqx.filter(model, eqx.is_inexact_array))

        @eqx.filter_jit
        def step(model, opt_state):
            def loss_fn(model):
                return jnp.mean((jax.vmap(model)(x) - y) ** 2)

            loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
            params = eqx.filter(model, eqx.is_inexact_array)
            updates, opt_state = tx.update(grads, opt_state, params)
            return eqx.apply_updates(model, updates), opt_state, loss

        losses = []
        for _ in range(STEPS):
            model, opt_state, loss = step(model, opt_state)
            losses.append(float(loss))
        return eqx.filter(model, eqx.is_inexact_array), losses

    ours, theirs = optimizer_pairs()[name]
    params, losses = train(ours)
    ref_params, ref_losses = train(theirs)
    assert losses[-1] < 0.5 * losses[0], losses
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9)
    assert_trees_close(params, ref_params)


# --- orbax --------------------------------------------------------------------------------


def _quadratic_grads(params):
    return jax.grad(
        lambda p: sum(
            jnp.sum((i + 1.0) * (leaf - 0.5) ** 2) for i, leaf in enumerate(jax.tree.leaves(p))
        )
    )(params)


@pytest.mark.parametrize(
    "build",
    [
        lambda: gx.adam(0.05),
        lambda: gx.chain(gx.clip_by_global_norm(1.0), gx.adamw(0.05, weight_decay=0.1)),
        lambda: gx.named_chain(("clip", gx.clip_by_global_norm(1.0)), ("sgd", gx.sgd(0.05, 0.9))),
    ],
    ids=["adam", "clip_adamw", "named_chain"],
)
def test_orbax_checkpoint_roundtrip(build, tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    tx = build()

    @jax.jit
    def step(params, state):
        updates, state = tx.update(_quadratic_grads(params), state, params)
        return gx.apply_updates(params, updates), state

    params = nested_params()
    state = tx.init(params)
    for _ in range(10):
        params, state = step(params, state)

    # Save mid-run, restore into the state's own structure (named tuples and all) ...
    path = tmp_path / "ckpt"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, {"params": params, "opt_state": state})
        checkpointer.wait_until_finished()
        abstract = jax.tree.map(
            ocp.utils.to_shape_dtype_struct, {"params": params, "opt_state": state}
        )
        restored = checkpointer.restore(path, abstract)
    assert jax.tree.structure(restored["opt_state"]) == jax.tree.structure(state)
    assert_trees_close(restored["opt_state"], state, rtol=0, atol=0)

    # ... and the resumed run is the uninterrupted one, step for step.
    p1, s1 = params, state
    p2, s2 = restored["params"], restored["opt_state"]
    for _ in range(10):
        p1, s1 = step(p1, s1)
        p2, s2 = step(p2, s2)
    assert_trees_close(p2, p1, rtol=0, atol=0)
    assert_trees_close(s2, s1, rtol=0, atol=0)
    moved = max(
        float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(params))
    )
    assert moved > 1e-6


# --- optax, both directions ---------------------------------------------------------------


def _trajectory(tx, steps: int = 50, **extra):
    params = nested_params()
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(_quadratic_grads(params), state, params, **extra)
        return gx.apply_updates(params, updates), state

    out = []
    for _ in range(steps):
        params, state = step(params, state)
        out.append(params)
    return out


def test_optax_transform_inside_gradxform_chain():
    ours = gx.chain(optax.clip_by_global_norm(0.5), gx.scale_by_adam(), optax.scale(-0.05))
    reference = optax.chain(
        optax.clip_by_global_norm(0.5), optax.scale_by_adam(), optax.scale(-0.05)
    )
    assert_trees_close(_trajectory(ours), _trajectory(reference))


def test_gradxform_transform_inside_optax_chain():
    ours = optax.chain(gx.clip_by_global_norm(0.5), optax.scale_by_adam(), gx.scale(-0.05))
    reference = optax.chain(
        optax.clip_by_global_norm(0.5), optax.scale_by_adam(), optax.scale(-0.05)
    )
    assert_trees_close(_trajectory(ours), _trajectory(reference))


def test_optax_wrappers_accept_gradxform_optimizers():
    # optax's own combinators treat a gradxform optimizer as one of theirs.
    ours = optax.MultiSteps(gx.adam(0.05), every_k_schedule=3)
    reference = optax.MultiSteps(optax.adam(0.05), every_k_schedule=3)
    assert_trees_close(_trajectory(ours), _trajectory(reference))
    ours = optax.masked(gx.adam(0.05), lambda p: jax.tree.map(lambda a: a.ndim > 1, p))
    reference = optax.masked(optax.adam(0.05), lambda p: jax.tree.map(lambda a: a.ndim > 1, p))
    assert_trees_close(_trajectory(ours), _trajectory(reference))


def test_extra_arguments_cross_the_boundary():
    """``value=`` / ``value_fn=`` reach a member that needs them, whichever library chains."""
    x0 = jnp.array([1.5, -2.0, 0.5])
    scale = jnp.array([1.0, 4.0, 0.25])

    def f(x):
        return jnp.sum(scale * (x - 1.0) ** 2) + 0.1 * jnp.sum(x**4)

    def run(tx, steps=8):
        def step(carry, _):
            x, state = carry
            value, grad = jax.value_and_grad(f)(x)
            updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
            return (gx.apply_updates(x, updates), state), None

        (x, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))((x0, tx.init(x0)))
        return x

    # An optax line search, fed value/grad/value_fn through a gradxform chain.
    linesearch = lambda: optax.scale_by_backtracking_linesearch(max_backtracking_steps=20)
    ours = run(gx.chain(gx.sgd(1.0), linesearch()))
    reference = run(optax.chain(optax.sgd(1.0), linesearch()))
    assert_trees_close(ours, reference)
    assert float(f(ours)) < 0.5 * float(f(x0))

    # A gradxform transformation that needs value_fn (Newton's method) inside optax.chain.
    # optax.chain drops extra arguments of members that are not optax's
    # GradientTransformationExtraArgs, so the member is wrapped in that type first.
    newton = gx.newton()
    in_optax = optax.chain(optax.GradientTransformationExtraArgs(newton.init, newton.update))
    ours = run(in_optax, steps=6)
    assert_trees_close(ours, run(gx.chain(gx.newton()), steps=6), rtol=1e-12)
    assert float(jnp.linalg.norm(jax.grad(f)(ours))) < 1e-8
