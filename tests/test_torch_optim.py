"""gradxform.torch_optim's optimizers against torch.optim 2.13 (CPU, float64), 100 steps.

Both sides start from the same nested params and take, at every step, the gradient of the
same loss at their own current params: torch by autograd of the loss written in torch,
gradxform by ``jax.grad`` of reference.loss. The whole trajectory must agree to rel 1e-9.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from gradxform import torch_optim
from reference import assert_trees_close, grad_fn, loss, nested_params

STEPS = 100

TORCH_CLASS = {
    "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adagrad": "Adagrad",
    "adadelta": "Adadelta", "rmsprop": "RMSprop", "rprop": "Rprop", "adamax": "Adamax",
    "nadam": "NAdam", "radam": "RAdam", "asgd": "ASGD",
}  # fmt: skip

# (optimizer, keyword arguments): every optimizer with torch's defaults, then each option.
CASES = [
    ("sgd", {}),
    ("sgd", {"lr": 0.01, "momentum": 0.9}),
    ("sgd", {"lr": 0.01, "momentum": 0.9, "dampening": 0.5}),
    ("sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.01, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.01, "momentum": 0.5, "maximize": True}),
    ("adam", {}),
    # b2 = 0.9 lets the raw second moment fall, so the running maximum binds.
    ("adam", {"lr": 0.01, "betas": (0.9, 0.9), "amsgrad": True}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adam", {"lr": 0.01, "maximize": True}),
    ("adamw", {}),
    ("adamw", {"lr": 0.01, "betas": (0.9, 0.9), "weight_decay": 0.1, "amsgrad": True}),
    ("adamw", {"lr": 0.01, "maximize": True}),
    ("adagrad", {}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("adagrad", {"lr": 0.1, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-3}),
    ("adagrad", {"lr": 0.1, "maximize": True}),
    ("adadelta", {}),
    ("adadelta", {"lr": 0.1, "rho": 0.8, "eps": 1e-4}),
    ("adadelta", {"weight_decay": 0.1}),
    ("adadelta", {"maximize": True}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "centered": True}),
    ("rmsprop", {"lr": 1e-3, "momentum": 0.9}),
    ("rmsprop", {"lr": 1e-3, "momentum": 0.9, "centered": True}),
    ("rmsprop", {"weight_decay": 0.1}),
    ("rmsprop", {"maximize": True}),
    ("rprop", {}),
    ("rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}),
    ("rprop", {"maximize": True}),
    ("adamax", {}),
    ("adamax", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-4}),
    ("adamax", {"weight_decay": 0.1}),
    ("adamax", {"maximize": True}),
    ("nadam", {}),
    ("nadam", {"lr": 0.01, "betas": (0.8, 0.99), "momentum_decay": 0.05}),
    ("nadam", {"lr": 0.01, "weight_decay": 0.1}),
    ("nadam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("nadam", {"maximize": True}),
    # Default b2 = 0.999: the first five steps are unrectified, the rest rectified.
    ("radam", {}),
    ("radam", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-4}),
    ("radam", {"lr": 0.01, "weight_decay": 0.1}),
    ("radam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", {"maximize": True}),
    ("asgd", {}),
    ("asgd", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 20}),
    ("asgd", {"weight_decay": 0.1}),
    ("asgd", {"maximize": True}),
]

# (optimizer, keyword arguments, lr schedule): torch runs the optimizer at lr = base and a
# LambdaLR with factor(epoch), or a StepLR; gradxform gets lr = the same function of the
# step count. Options are those where a schedule meets state (buffers, lags, lr_decay).
LAMBDA = ("lambda", lambda e: 1.0 / (1.0 + 0.05 * e))
STEP = ("step", 10, 0.5)
SCHEDULED = [
    ("sgd", {"lr": 0.02, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}, STEP),
    ("sgd", {"lr": 0.02, "momentum": 0.9, "nesterov": True}, LAMBDA),
    ("adam", {"lr": 0.02, "betas": (0.9, 0.9), "amsgrad": True}, LAMBDA),
    ("adamw", {"lr": 0.02, "weight_decay": 0.1}, STEP),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.05}, LAMBDA),
    ("adadelta", {"lr": 2.0}, STEP),
    ("rmsprop", {"lr": 2e-3, "momentum": 0.9, "centered": True}, LAMBDA),
    ("rprop", {"lr": 0.02}, STEP),
    ("adamax", {"lr": 0.02}, LAMBDA),
    ("nadam", {"lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True}, STEP),
    ("radam", {"lr": 0.02, "weight_decay": 0.1}, LAMBDA),
    ("asgd", {"lr": 0.05, "lambd": 0.01, "t0": 20}, STEP),
]

# torch steps a complex parameter as a pair of reals (view_as_real): separate moments, signs
# and step sizes for the real and imaginary parts. One case per optimizer on complex params.
COMPLEX = [
    ("sgd", {"lr": 0.01, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "betas": (0.9, 0.9), "amsgrad": True}),
    ("adamw", {"lr": 0.01}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("adadelta", {}),
    ("rmsprop", {"lr": 1e-3, "momentum": 0.5, "centered": True}),
    ("rprop", {}),
    ("adamax", {"lr": 0.01}),
    ("nadam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", {"lr": 0.01}),
    ("asgd", {"lr": 0.05, "lambd": 0.01, "t0": 20, "maximize": True}),
]


@pytest.fixture(autouse=True)
def torch_float64():
    """torch keeps scalar state (ASGD's eta and mu, NAdam's mu product, step counts) in the
    default dtype: float64 here, so that both sides compute in double precision."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def torch_loss(leaves):
    """reference.loss written in torch, over the leaves in ``jax.tree.leaves`` order; a
    complex leaf counts as two leaves, its real and its imaginary part."""
    parts = [y for x in leaves for y in ((x.real, x.imag) if x.is_complex() else (x,))]
    return sum(
        torch.sum(0.5 * (i + 1) * x**2 + torch.sin(3.0 * x) + 0.1 * x**4 / (1 + i))
        for i, x in enumerate(parts)
    )


def complex_params():
    rng = np.random.default_rng(1)
    return {
        "w": jnp.asarray(rng.normal(size=4)),
        "z": jnp.asarray(rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))),
    }


def complex_grad(params):
    """torch's gradient of a real loss of complex params, dL/dRe + i dL/dIm: the conjugate
    of what ``jax.grad`` returns."""
    split = lambda p: jax.tree.map(lambda x: (x.real, x.imag) if jnp.iscomplexobj(x) else x, p)
    grads = jax.grad(lambda p: loss(split(p)))(params)
    return jax.tree.map(jnp.conj, grads)


# name -> (initial params, gradient of the loss for gradxform)
LANDSCAPES = {"real": (nested_params, grad_fn), "complex": (complex_params, complex_grad)}


def torch_schedule(optimizer, schedule):
    if schedule[0] == "lambda":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule[1])
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=schedule[1], gamma=schedule[2])


def jax_lr(base_lr, schedule):
    if schedule[0] == "lambda":
        return lambda count: base_lr * schedule[1](count)
    return lambda count: base_lr * schedule[2] ** (count // schedule[1])


def torch_trajectory(name, kwargs, params, sign, schedule=None):
    """Params after each of STEPS torch steps on ``sign * loss``, and the optimizer."""
    leaves, treedef = jax.tree.flatten(params)
    tensors = [torch.tensor(np.asarray(x), requires_grad=True) for x in leaves]
    optimizer = getattr(torch.optim, TORCH_CLASS[name])(tensors, **kwargs)
    scheduler = None if schedule is None else torch_schedule(optimizer, schedule)
    out = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        (sign * torch_loss(tensors)).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        out.append([t.detach().numpy().copy() for t in tensors])
    stacked = [np.stack([step[i] for step in out]) for i in range(len(leaves))]
    return jax.tree.unflatten(treedef, stacked), optimizer, tensors


def sign_of(kwargs):
    # maximize=True climbs -loss, so that both sides descend the same bounded landscape.
    return -1.0 if kwargs.get("maximize") else 1.0


def gradxform_optimizer(name, kwargs, schedule):
    if schedule is not None:
        kwargs = dict(kwargs, lr=jax_lr(kwargs["lr"], schedule))
    return getattr(torch_optim, name)(**kwargs)


_JAX_RUNS: dict = {}


def jax_run(case):
    """Params after each of STEPS updates on ``sign * loss``, and the final state.

    XLA's compile time dominates this test, so all cases of one optimizer run side by side
    in one jitted scan, compiled once, on first use.
    """
    name = case[0]
    if name not in _JAX_RUNS:
        group = [c for c in ALL_CASES if c[0] == name]
        txs = [gradxform_optimizer(*c[:3]) for c in group]
        signs = [sign_of(c[1]) for c in group]
        grads = [LANDSCAPES[c[3]][1] for c in group]

        def trajectories(starts):
            def step(carry, _):
                new = []
                for tx, sign, grad, (p, s) in zip(txs, signs, grads, carry):
                    g = jax.tree.map(lambda x, sign=sign: sign * x, grad(p))
                    u, s = tx.update(g, s, p)
                    new.append((jax.tree.map(lambda a, b: a + b, p, u), s))
                return new, [p for p, _ in new]

            carry = [(p, tx.init(p)) for tx, p in zip(txs, starts)]
            final, trajs = jax.lax.scan(step, carry, None, length=STEPS)
            return [(traj, s) for traj, (_, s) in zip(trajs, final)]

        results = jax.jit(trajectories)([LANDSCAPES[c[3]][0]() for c in group])
        _JAX_RUNS[name] = {case_id(c): r for c, r in zip(group, results)}
    return _JAX_RUNS[name][case_id(case)]


def assert_matches_torch(case):
    name, kwargs, schedule, landscape = case
    params = LANDSCAPES[landscape][0]()
    theirs, optimizer, tensors = torch_trajectory(name, kwargs, params, sign_of(kwargs), schedule)
    ours, state = jax_run(case)
    assert_trees_close(ours, theirs, rtol=1e-9, atol=1e-12)
    moved = max(
        float(np.max(np.abs(a[-1] - b)))
        for a, b in zip(jax.tree.leaves(theirs), jax.tree.leaves(params))
    )
    assert moved > 1e-2, f"the trajectory barely moved ({moved}): the comparison proves little"
    return state, optimizer, tensors


def case_id(case):
    name, kwargs, schedule, landscape = case
    options = "-".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
    suffix = ("" if schedule is None else f"-{schedule[0]}lr") + (
        "" if landscape == "real" else f"-{landscape}"
    )
    return f"{name}-{options}{suffix}"


# (optimizer, torch keyword arguments, schedule or None, landscape)
ALL_CASES = (
    [(name, kwargs, None, "real") for name, kwargs in CASES]
    + [(name, kwargs, schedule, "real") for name, kwargs, schedule in SCHEDULED]
    + [(name, kwargs, None, "complex") for name, kwargs in COMPLEX]
)


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_matches_torch(case):
    assert_matches_torch(case)


def test_asgd_average_matches_torch_ax():
    state, optimizer, tensors = assert_matches_torch(
        ("asgd", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 20}, None, "real")
    )
    ax = torch_optim.asgd_average(state)
    treedef = jax.tree.structure(nested_params())
    torch_ax = jax.tree.unflatten(
        treedef, [optimizer.state[t]["ax"].detach().numpy() for t in tensors]
    )
    assert_trees_close(ax, torch_ax, rtol=1e-9, atol=1e-12)
    # After step t0 + 2, ax averages the iterates instead of copying them: it lags the
    # (by then nearly converged) params by much more than round-off.
    lag = max(
        float(np.max(np.abs(a - t.detach().numpy()))) for a, t in zip(jax.tree.leaves(ax), tensors)
    )
    assert lag > 1e-6


def test_amsgrad_case_exercises_the_maximum():
    """The amsgrad cases must differ from plain Adam, or they test nothing new."""
    params = nested_params()
    kwargs = {"lr": 0.01, "betas": (0.9, 0.9)}
    plain, _, _ = torch_trajectory("adam", kwargs, params, 1.0)
    ams, _, _ = torch_trajectory("adam", dict(kwargs, amsgrad=True), params, 1.0)
    gap = max(
        float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(ams))
    )
    assert gap > 1e-3


# Hyperparameters torch refuses with ValueError; gradxform must refuse them too.
INVALID = [
    ("sgd", {"lr": -0.1}),
    ("sgd", {"momentum": -0.5}),
    ("sgd", {"weight_decay": -1.0}),
    ("sgd", {"nesterov": True}),
    ("sgd", {"momentum": 0.9, "dampening": 0.1, "nesterov": True}),
    ("adam", {"eps": -1e-8}),
    ("adam", {"betas": (1.0, 0.999)}),
    ("adam", {"betas": (0.9, -0.1)}),
    ("adam", {"weight_decay": -0.1}),
    ("adamw", {"lr": -1e-3}),
    ("adagrad", {"lr_decay": -0.1}),
    ("adagrad", {"initial_accumulator_value": -1.0}),
    ("adagrad", {"eps": -1.0}),
    ("adadelta", {"rho": 1.5}),
    ("adadelta", {"eps": -1.0}),
    ("rmsprop", {"alpha": -0.1}),
    ("rmsprop", {"momentum": -0.1}),
    ("rmsprop", {"eps": -0.1}),
    ("rprop", {"etas": (1.2, 0.5)}),
    ("rprop", {"etas": (0.5, 1.0)}),
    ("rprop", {"etas": (0.0, 1.2)}),
    ("adamax", {"betas": (0.9, 1.0)}),
    ("nadam", {"momentum_decay": -1.0}),
    ("radam", {"eps": -1.0}),
    ("asgd", {"lr": -0.01}),
    ("asgd", {"weight_decay": -0.01}),
]

# Edge values torch accepts: gradxform must not be stricter.
VALID_EDGES = [
    ("adadelta", {"rho": 1.0}),
    ("adadelta", {"rho": 0.0}),
    ("rmsprop", {"alpha": 1.0}),
    ("sgd", {"momentum": 0.9, "dampening": 1.0}),
    ("adam", {"betas": (0.0, 0.0), "eps": 0.0}),
    ("asgd", {"lambd": 0.0, "t0": 0.0}),
    ("rprop", {"step_sizes": (0.0, 1e3)}),
]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: case_id((*c, None, "real")))
def test_refuses_what_torch_refuses(case):
    name, kwargs = case
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=r"^Invalid |^Nesterov momentum requires"):
        getattr(torch.optim, TORCH_CLASS[name])(params, **kwargs)
    # ours names the offending argument first (an element of a tuple by its index)
    named = "nesterov" if kwargs.get("nesterov") else next(iter(kwargs))
    with pytest.raises(ValueError, match="^" + re.escape(named) + r"(\[\d\])? "):
        getattr(torch_optim, name)(**kwargs)


@pytest.mark.parametrize("case", VALID_EDGES, ids=lambda c: case_id((*c, None, "real")))
def test_accepts_what_torch_accepts(case):
    name, kwargs = case
    getattr(torch.optim, TORCH_CLASS[name])([torch.zeros(2, requires_grad=True)], **kwargs)
    tx = getattr(torch_optim, name)(**kwargs)
    params = {"w": jnp.ones(3)}
    updates, _ = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)


def test_error_names_the_argument():
    with pytest.raises(ValueError, match="lr"):
        torch_optim.adam(lr=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        torch_optim.nadam(betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="rho"):
        torch_optim.adadelta(rho=2.0)
