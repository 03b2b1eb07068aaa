"""torch_optim's schedulers against torch 2.13's ``param_groups[0]["lr"]``, 100 steps, float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

import gradxform as gx
import gradxform.torch_optim as to

STEPS = 100


def torch_lrs(make, lr=0.1, steps=STEPS):
    """``param_groups[0]["lr"]`` after 0, 1, ..., ``steps`` calls of ``scheduler.step()``."""
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr, momentum=0.9)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()  # no gradient: nothing moves, but torch sees the usual call order
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return np.asarray(lrs, np.float64)


# name -> (gradxform schedule, torch scheduler factory, torch optimizer lr)
CASES = {
    "step_lr": (to.step_lr(0.1, 7), lambda o: tls.StepLR(o, 7), 0.1),
    "step_lr_options": (to.step_lr(0.5, 30, 0.5), lambda o: tls.StepLR(o, 30, 0.5), 0.5),
    "step_lr_every_step": (to.step_lr(1.0, 1, 0.95), lambda o: tls.StepLR(o, 1, 0.95), 1.0),
    "multi_step_lr": (
        to.multi_step_lr(0.1, [10, 30, 60]),
        lambda o: tls.MultiStepLR(o, [10, 30, 60]),
        0.1,
    ),
    "multi_step_lr_repeated": (
        to.multi_step_lr(0.2, [40, 5, 5], 0.5),
        lambda o: tls.MultiStepLR(o, [40, 5, 5], 0.5),
        0.2,
    ),
    "multi_step_lr_at_zero": (
        to.multi_step_lr(0.1, [0, 150], 0.3),
        lambda o: tls.MultiStepLR(o, [0, 150], 0.3),
        0.1,
    ),
    "constant_lr": (to.constant_lr(0.1), lambda o: tls.ConstantLR(o), 0.1),
    "constant_lr_options": (
        to.constant_lr(0.1, 0.5, 40),
        lambda o: tls.ConstantLR(o, 0.5, 40),
        0.1,
    ),
    "linear_lr": (to.linear_lr(0.1), lambda o: tls.LinearLR(o), 0.1),
    "linear_lr_warmup": (
        to.linear_lr(0.1, 0.1, 1.0, 50),
        lambda o: tls.LinearLR(o, 0.1, 1.0, 50),
        0.1,
    ),
    "linear_lr_decay": (
        to.linear_lr(0.3, 1.0, 0.05, 80),
        lambda o: tls.LinearLR(o, 1.0, 0.05, 80),
        0.3,
    ),
    "linear_lr_flat": (
        to.linear_lr(0.1, 0.5, 0.5, 10),
        lambda o: tls.LinearLR(o, 0.5, 0.5, 10),
        0.1,
    ),
    "exponential_lr": (to.exponential_lr(0.1, 0.95), lambda o: tls.ExponentialLR(o, 0.95), 0.1),
    "exponential_lr_fast": (to.exponential_lr(1.0, 0.5), lambda o: tls.ExponentialLR(o, 0.5), 1.0),
    "polynomial_lr": (to.polynomial_lr(0.1), lambda o: tls.PolynomialLR(o), 0.1),
    "polynomial_lr_square": (
        to.polynomial_lr(0.1, 50, 2.0),
        lambda o: tls.PolynomialLR(o, 50, 2.0),
        0.1,
    ),
    "polynomial_lr_sqrt_long": (
        to.polynomial_lr(0.1, 120, 0.5),
        lambda o: tls.PolynomialLR(o, 120, 0.5),
        0.1,
    ),
    "polynomial_lr_root": (
        to.polynomial_lr(0.1, 30, 0.9),
        lambda o: tls.PolynomialLR(o, 30, 0.9),
        0.1,
    ),
    "cosine_annealing_lr": (
        to.cosine_annealing_lr(0.1, 100),
        lambda o: tls.CosineAnnealingLR(o, 100),
        0.1,
    ),
    # Past T_max torch's recursion rises again: three periods, not clamped.
    "cosine_annealing_lr_periodic": (
        to.cosine_annealing_lr(0.1, 30, 0.001),
        lambda o: tls.CosineAnnealingLR(o, 30, 0.001),
        0.1,
    ),
    "cosine_annealing_lr_short": (
        to.cosine_annealing_lr(0.1, 7),
        lambda o: tls.CosineAnnealingLR(o, 7),
        0.1,
    ),
    "cosine_annealing_lr_one": (
        to.cosine_annealing_lr(0.1, 1, 0.01),
        lambda o: tls.CosineAnnealingLR(o, 1, 0.01),
        0.1,
    ),
    "warm_restarts": (
        to.cosine_annealing_warm_restarts(0.1, 10),
        lambda o: tls.CosineAnnealingWarmRestarts(o, 10),
        0.1,
    ),
    "warm_restarts_mult": (
        to.cosine_annealing_warm_restarts(0.1, 5, 2, 0.001),
        lambda o: tls.CosineAnnealingWarmRestarts(o, 5, 2, 0.001),
        0.1,
    ),
    "warm_restarts_mult3": (
        to.cosine_annealing_warm_restarts(0.1, 3, 3),
        lambda o: tls.CosineAnnealingWarmRestarts(o, 3, 3),
        0.1,
    ),
    "warm_restarts_one": (
        to.cosine_annealing_warm_restarts(0.1, 1, 2),
        lambda o: tls.CosineAnnealingWarmRestarts(o, 1, 2),
        0.1,
    ),
    "cyclic_lr": (
        to.cyclic_lr(0.01, 0.1, 10),
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 10),
        0.5,
    ),
    "cyclic_lr_triangular2": (
        to.cyclic_lr(0.01, 0.1, 5, 15, "triangular2"),
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 5, 15, "triangular2"),
        0.5,
    ),
    "cyclic_lr_exp_range": (
        to.cyclic_lr(0.01, 0.1, 8, mode="exp_range", gamma=0.98),
        lambda o: tls.CyclicLR(o, 0.01, 0.1, 8, mode="exp_range", gamma=0.98),
        0.5,
    ),
    "cyclic_lr_default_steps": (
        to.cyclic_lr(0.001, 0.1),
        lambda o: tls.CyclicLR(o, 0.001, 0.1),
        0.5,
    ),
    "cyclic_lr_scale_fn": (
        to.cyclic_lr(
            0.01, 0.1, 6, 4, scale_fn=lambda x: 1 / (1 + 0.05 * x), scale_mode="iterations"
        ),
        lambda o: tls.CyclicLR(
            o, 0.01, 0.1, 6, 4, scale_fn=lambda x: 1 / (1 + 0.05 * x), scale_mode="iterations"
        ),
        0.5,
    ),
    "one_cycle_lr": (
        to.one_cycle_lr(0.1, total_steps=100),
        lambda o: tls.OneCycleLR(o, 0.1, total_steps=100),
        0.5,
    ),
    "one_cycle_lr_linear": (
        to.one_cycle_lr(0.2, 120, anneal_strategy="linear", pct_start=0.4),
        lambda o: tls.OneCycleLR(o, 0.2, 120, anneal_strategy="linear", pct_start=0.4),
        0.5,
    ),
    "one_cycle_lr_three_phase": (
        to.one_cycle_lr(0.1, 110, three_phase=True),
        lambda o: tls.OneCycleLR(o, 0.1, 110, three_phase=True),
        0.5,
    ),
    "one_cycle_lr_three_phase_linear": (
        to.one_cycle_lr(
            0.1,
            100,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
        lambda o: tls.OneCycleLR(
            o,
            0.1,
            100,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
        0.5,
    ),
    "one_cycle_lr_epochs": (
        to.one_cycle_lr(0.1, epochs=15, steps_per_epoch=10),
        lambda o: tls.OneCycleLR(o, 0.1, epochs=15, steps_per_epoch=10),
        0.5,
    ),
    "lambda_lr_power": (
        to.lambda_lr(0.1, lambda t: 0.95**t),
        lambda o: tls.LambdaLR(o, lambda t: 0.95**t),
        0.1,
    ),
    "lambda_lr_inverse": (
        to.lambda_lr(0.1, lambda t: 1.0 / (1.0 + 0.1 * t)),
        lambda o: tls.LambdaLR(o, lambda t: 1.0 / (1.0 + 0.1 * t)),
        0.1,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    schedule, make, lr = CASES[name]
    expected = torch_lrs(make, lr)
    assert np.any(expected != lr), "the scheduler never changed the learning rate"
    got = jax.jit(jax.vmap(schedule))(jnp.arange(STEPS + 1, dtype=jnp.int32))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(float(schedule(STEPS)), expected[STEPS], rtol=1e-9, atol=1e-15)


def test_float32_without_x64():
    with jax.enable_x64(False):
        for name in sorted(CASES)[::2]:
            schedule = CASES[name][0]
            out = jax.jit(jax.vmap(schedule))(jnp.arange(4))
            assert out.dtype == jnp.float32, (name, out.dtype)
            assert out.shape == (4,), (name, out.shape)
        tx = to.reduce_lr_on_plateau(0.1)
        params = jnp.zeros(3, jnp.float32)
        updates, state = jax.jit(tx.update)(params, tx.init(params), params, value=1.0)
        assert updates.dtype == state.lr.dtype == jnp.float32


def test_cosine_annealing_is_not_optax_clamped():
    # Where torch and optax part ways: after T_max torch's rate rises again.
    ours = to.cosine_annealing_lr(1.0, 10)
    clamped = gx.cosine_decay_schedule(1.0, 10)
    np.testing.assert_allclose(float(ours(15)), 0.5, rtol=1e-12)
    np.testing.assert_allclose(float(clamped(15)), 0.0, atol=1e-15)


# A scripted metric: improvements, flat stretches, tiny (sub-threshold) improvements, noise.
METRIC = np.concatenate(
    [
        np.linspace(10.0, 5.0, 8),
        np.full(14, 5.0),
        5.0 - 1e-5 * np.arange(10),  # below the default relative threshold 1e-4
        5.0 + 0.3 * np.sin(np.arange(20)),
        np.linspace(4.0, 1.0, 6),
        np.full(22, 1.0) + 0.01 * np.cos(np.arange(22)),
    ]
)

PLATEAU_CASES = {
    "defaults": {},
    "min_rel": dict(patience=3, factor=0.5),
    "min_abs": dict(patience=2, factor=0.5, threshold=0.05, threshold_mode="abs"),
    "max_rel": dict(mode="max", patience=3, factor=0.3),
    "max_abs": dict(mode="max", patience=1, threshold=0.1, threshold_mode="abs"),
    "cooldown": dict(patience=1, factor=0.5, cooldown=3),
    "min_lr": dict(patience=1, factor=0.5, min_lr=0.004),
    "eps": dict(patience=1, factor=0.9, min_lr=0.05, eps=0.004),
}


def _torch_plateau(kwargs, metrics, lr):
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    sched = tls.ReduceLROnPlateau(opt, **kwargs)
    lrs = []
    for m in metrics:
        sched.step(float(m))
        lrs.append(opt.param_groups[0]["lr"])
    return np.asarray(lrs)


@pytest.mark.parametrize("name", sorted(PLATEAU_CASES))
def test_reduce_lr_on_plateau_matches_torch(name):
    kwargs = PLATEAU_CASES[name]
    base_lr = 0.1
    metrics = -METRIC if kwargs.get("mode") == "max" else METRIC
    expected = _torch_plateau(kwargs, metrics, base_lr)
    assert expected[-1] < base_lr, "the scripted metric never triggered a reduction"
    tx = to.reduce_lr_on_plateau(base_lr, **kwargs)
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}

    def step(state, value):
        updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params, value=value)
        return state, (updates, state.lr)

    _, (updates, lrs) = jax.lax.scan(step, tx.init(params), jnp.asarray(metrics))
    np.testing.assert_allclose(np.asarray(lrs), expected, rtol=1e-12)
    for leaf in jax.tree.leaves(updates):
        np.testing.assert_allclose(
            np.asarray(leaf).reshape(len(metrics), -1)[:, 0], expected / base_lr, rtol=1e-12
        )


def _quadratic_grads(p, curvature):
    return curvature * p


def test_scheduled_sgd_matches_torch_pair():
    # torch: optimizer.step() then scheduler.step(); gradxform: the schedule as lr.
    curvature = np.array([1.0, 0.5, 2.0, 0.1])
    p0 = np.array([1.0, -2.0, 0.5, 3.0])
    pairs = [
        (to.step_lr(0.1, 10, 0.5), lambda o: tls.StepLR(o, 10, 0.5)),
        (to.cosine_annealing_lr(0.1, 30), lambda o: tls.CosineAnnealingLR(o, 30)),
        (
            to.one_cycle_lr(0.3, 100),
            lambda o: tls.OneCycleLR(o, 0.3, 100, cycle_momentum=False),
        ),
    ]
    for schedule, make in pairs:
        param = torch.tensor(p0, requires_grad=True)
        opt = torch.optim.SGD([param], lr=float(schedule(0)), momentum=0.9)
        sched = make(opt)
        expected = []
        for _ in range(STEPS):
            opt.zero_grad()
            (0.5 * (torch.tensor(curvature) * param**2).sum()).backward()
            opt.step()
            sched.step()
            expected.append(param.detach().numpy().copy())
        tx = gx.sgd(schedule, momentum=0.9)

        def step(carry, _, tx=tx):
            p, s = carry
            u, s = tx.update(_quadratic_grads(p, jnp.asarray(curvature)), s, p)
            p = p + u
            return (p, s), p

        p = jnp.asarray(p0)
        _, traj = jax.lax.scan(step, (p, tx.init(p)), None, length=STEPS)
        np.testing.assert_allclose(np.asarray(traj), np.asarray(expected), rtol=1e-9, atol=1e-13)


def test_plateau_sgd_matches_torch_pair():
    # torch: scheduler.step(loss) with the loss at the current parameters, then
    # optimizer.step(); gradxform: update(..., value=loss). The rate 2.0 makes the
    # stiffest coordinate oscillate, so the loss plateaus and the rate is cut.
    curvature = np.array([1.0, 0.9, 0.95])
    p0 = np.array([1.0, -2.0, 0.5])
    kwargs = dict(patience=3, factor=0.2)
    param = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.SGD([param], lr=2.0)
    sched = tls.ReduceLROnPlateau(opt, **kwargs)
    expected = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = 0.5 * (torch.tensor(curvature) * param**2).sum()
        loss.backward()
        sched.step(loss.item())
        opt.step()
        expected.append(param.detach().numpy().copy())
    assert opt.param_groups[0]["lr"] < 2.0
    tx = gx.chain(gx.sgd(2.0), to.reduce_lr_on_plateau(2.0, **kwargs))

    def step(carry, _):
        p, s = carry
        c = jnp.asarray(curvature)
        u, s = tx.update(c * p, s, p, value=0.5 * jnp.sum(c * p**2))
        p = p + u
        return (p, s), p

    p = jnp.asarray(p0)
    _, traj = jax.lax.scan(step, (p, tx.init(p)), None, length=STEPS)
    np.testing.assert_allclose(np.asarray(traj), np.asarray(expected), rtol=1e-9, atol=1e-13)


BAD_ARGUMENTS = [
    (lambda: to.step_lr(0.1, 0), "step_size"),
    (lambda: to.constant_lr(0.1, 1.5), "factor"),
    (lambda: to.constant_lr(0.1, 0.5, 0), "total_iters"),
    (lambda: to.linear_lr(0.1, 0.0), "start_factor"),
    (lambda: to.linear_lr(0.1, 0.5, 1.5), "end_factor"),
    (lambda: to.polynomial_lr(0.1, 0), "total_iters"),
    (lambda: to.cosine_annealing_lr(0.1, 0), "T_max"),
    (lambda: to.cosine_annealing_warm_restarts(0.1, 0), "T_0"),
    (lambda: to.cosine_annealing_warm_restarts(0.1, 5, 0), "T_mult"),
    (lambda: to.cyclic_lr(0.01, 0.1, mode="sawtooth"), "mode"),
    (lambda: to.one_cycle_lr(0.1), "total_steps"),
    (lambda: to.one_cycle_lr(0.1, 100, pct_start=1.5), "pct_start"),
    (lambda: to.one_cycle_lr(0.1, 100, anneal_strategy="exp"), "anneal_strategy"),
    (lambda: to.one_cycle_lr(0.1, 10, pct_start=0.1), "pct_start"),
    (lambda: to.reduce_lr_on_plateau(0.1, mode="best"), "mode"),
    (lambda: to.reduce_lr_on_plateau(0.1, factor=1.0), "factor"),
    (lambda: to.reduce_lr_on_plateau(0.1, threshold_mode="pct"), "threshold_mode"),
    (lambda: to.reduce_lr_on_plateau(0.1, patience=-1), "patience"),
    (lambda: to.reduce_lr_on_plateau(0.0), "base_lr"),
]


@pytest.mark.parametrize("i", range(len(BAD_ARGUMENTS)))
def test_rejects_bad_arguments(i):
    build, argument = BAD_ARGUMENTS[i]
    with pytest.raises(ValueError, match=argument):
        build()
