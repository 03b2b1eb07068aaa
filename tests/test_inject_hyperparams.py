"""inject_hyperparams over every optimizer, without static_args.

Integer hyperparameters that shape the computation (``update_interval``,
``min_dim_size_to_factor``, ``memory_size``, ``ns_steps``, ...) stay static by themselves;
the float ones move into the state. Two steps of each injected optimizer are checked
against optax's namesake (not injected: optax's inject_hyperparams refuses several of
these), and every update is traced under ``jit``.
"""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
import pytest

import gradxform as gx
from reference import assert_trees_close

LR = {"learning_rate": 1e-2}
# name: (kwargs, whether optax has the same optimizer under this name)
CATALOGUE = {
    "sgd": ({**LR, "momentum": 0.9}, True),
    "momentum": ({**LR, "beta": 0.9}, False),
    "ema_momentum": ({**LR, "beta": 0.9}, False),
    "adam": (LR, True),
    "adamw": (LR, True),
    "adagrad": (LR, True),
    "rmsprop": (LR, True),
    "adadelta": (LR, True),
    "amsgrad": (LR, True),
    "adamax": (LR, True),
    "adamaxw": (LR, True),
    "nadam": (LR, True),
    "nadamw": (LR, True),
    "radam": (LR, True),
    "yogi": (LR, True),
    "adabelief": (LR, True),
    "lamb": (LR, True),
    "lars": (LR, True),
    "fromage": (LR, True),
    "novograd": (LR, True),
    "lion": (LR, True),
    "sign_sgd": (LR, True),
    "signum": (LR, True),
    "adafactor": ({**LR, "min_dim_size_to_factor": 2}, True),
    "sm3": (LR, True),
    "rprop": (LR, False),  # optax's rprop lags one step (test_optimizers_optax)
    "adan": (LR, True),
    "optimistic_gradient_descent": (LR, True),
    "optimistic_adam_v2": (LR, True),
    "noisy_sgd": ({**LR, "key": 0}, False),
    "lbfgs": ({**LR, "memory_size": 3}, True),
    "polyak_sgd": ({}, True),
    "muon": (LR, True),
    "schedule_free_sgd": (LR, True),
    "schedule_free_adamw": (LR, True),
    "prodigy": ({}, True),
    "adopt": (LR, True),
    "ademamix": (LR, True),
    "simplified_ademamix": (LR, True),
    "sophia": ({**LR, "update_interval": 2}, True),
}
CONTRIB = {
    "muon",
    "schedule_free_sgd",
    "schedule_free_adamw",
    "prodigy",
    "adopt",
    "ademamix",
    "simplified_ademamix",
    "sophia",
}


def _factory(module, name):
    if name in CONTRIB:
        return getattr(getattr(module, "contrib", module), name, None) or getattr(module, name)
    return getattr(module, name)


def _loss(p):
    return sum(jnp.sum(0.5 * x**2 + jnp.sin(x)) for x in jax.tree.leaves(p))


# Integer hyperparameters given above that must stay static.
STRUCTURAL = {"min_dim_size_to_factor", "memory_size", "update_interval"}


def _extra(name, value, grad):
    """The extra arguments an optimizer's update needs (optax refuses unused ones)."""
    if name == "lbfgs":
        return {"value": value, "grad": grad, "value_fn": _loss}
    if name == "polyak_sgd":
        return {"value": value}
    if name == "sophia":
        return {"obj_fn": _loss}
    return {}


def _steps(name, tx, params, steps=2):
    state = tx.init(params)
    for _ in range(steps):
        value, grad = jax.value_and_grad(_loss)(params)
        updates, state = tx.update(grad, state, params, **_extra(name, value, grad))
        params = jax.tree.map(lambda p, u: p + u, params, updates)
    return params, state


def test_covers_every_optimizer():
    """Every optimizer of optimizer_cases.OPTIMIZERS is here too."""
    from optimizer_cases import OPTIMIZERS

    tested = set(CATALOGUE) | {"sgd_momentum", "rmsprop_centered_momentum"}
    assert set(OPTIMIZERS) <= tested, sorted(set(OPTIMIZERS) - tested)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_inject_hyperparams(name):
    kwargs, in_optax = CATALOGUE[name]
    params = {"w": jnp.asarray([[0.5, -1.0, 2.0], [0.3, 0.1, -0.7]]), "b": jnp.asarray([0.2, 1.5])}
    injected = gx.inject_hyperparams(_factory(gx, name))(**kwargs)
    state = injected.init(params)
    for key in kwargs:
        assert (key in state.hyperparams) == (key not in STRUCTURAL), key
    value, grad = jax.value_and_grad(_loss)(params)
    jax.eval_shape(  # traced as under jit: no integer hyperparameter becomes a tracer
        lambda g, s: injected.update(g, s, params, **_extra(name, value, g)), grad, state
    )
    if in_optax:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = _factory(optax, name)(**kwargs)
        ours, _ = _steps(name, injected, params)
        theirs, _ = _steps(name, reference, params)
        assert_trees_close(ours, theirs)


class _RunningSum(NamedTuple):
    total: jax.Array


class _SumOfExtras:
    """A stateful schedule whose state starts as an int32 0 and turns float: it adds the
    ``addendum`` extra argument each step and returns the running sum."""

    def init(self):
        return _RunningSum(total=jnp.zeros([], jnp.int32))

    def update(self, state, **extra):
        return _RunningSum(total=state.total + extra["addendum"])

    def __call__(self, state, **extra):
        return state.total


@pytest.mark.parametrize("lib", [gx, optax], ids=["gradxform", "optax"])
def test_stateful_schedule_turning_float_is_not_truncated(lib):
    """The scheduled value starts as int32 0 and becomes 0.3, 0.6: it must stay a float
    (storing it in the int dtype of init would truncate it to 0); closed form."""
    tx = lib.inject_hyperparams(lib.scale)(step_size=_SumOfExtras())
    params = {"w": jnp.ones(3)}
    state = jax.jit(tx.init)(params)
    addendum = jnp.float32(0.3)
    updates = None
    for _ in range(2):
        updates, state = jax.jit(tx.update)(params, state, params, addendum=addendum)
    assert float(state.hyperparams["step_size"]) == pytest.approx(0.3, rel=1e-6)
    assert float(state.hyperparams_states["step_size"].total) == pytest.approx(0.6, rel=1e-6)
    assert jnp.issubdtype(state.hyperparams["step_size"].dtype, jnp.floating)
    assert updates is not None
    assert float(updates["w"][0]) == pytest.approx(0.3, rel=1e-6)
