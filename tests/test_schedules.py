"""Schedules against optax (400 steps, float64), the textbook ones against numpy formulas,
and reduce_on_plateau against optax.contrib over a scripted sequence of values."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

import gradxform as gx

STEPS = jnp.arange(400, dtype=jnp.int32)

# name -> builder taking the module (gradxform or optax) that provides the schedules.
OPTAX_CASES = {
    "constant": lambda m: m.constant_schedule(0.3),
    "constant_zero": lambda m: m.constant_schedule(0.0),
    "linear": lambda m: m.linear_schedule(1.0, 0.01, 100),
    "linear_begin_up": lambda m: m.linear_schedule(0.0, 2.0, 50, transition_begin=30),
    "linear_one_step": lambda m: m.linear_schedule(1.0, 0.5, 1),
    "linear_no_transition": lambda m: m.linear_schedule(1.0, 0.5, 0),
    "polynomial_sq": lambda m: m.polynomial_schedule(1.0, 0.01, 2, 250),
    "polynomial_sqrt_begin": lambda m: m.polynomial_schedule(0.5, 0.0, 0.5, 120, 40),
    "polynomial_negative": lambda m: m.polynomial_schedule(-1.0, 1.0, 1.5, 500),
    "polynomial_no_transition": lambda m: m.polynomial_schedule(0.7, 0.1, 2, -3),
    "exponential": lambda m: m.exponential_decay(1.0, 10, 0.9),
    "exponential_staircase": lambda m: m.exponential_decay(0.5, 25, 0.5, 20, True),
    "exponential_floor": lambda m: m.exponential_decay(1.0, 7, 0.8, end_value=0.05),
    "exponential_growth_cap": lambda m: m.exponential_decay(0.1, 30, 1.5, 10, end_value=3.0),
    "exponential_no_transition": lambda m: m.exponential_decay(0.2, 0, 0.5),
    "cosine": lambda m: m.cosine_decay_schedule(1.0, 100),
    "cosine_alpha_exponent": lambda m: m.cosine_decay_schedule(0.5, 300, 0.1, 2.0),
    "cosine_one_step": lambda m: m.cosine_decay_schedule(1.0, 1),
    "cosine_longer": lambda m: m.cosine_decay_schedule(2.0, 1000, exponent=0.5),
    "piecewise_constant": lambda m: m.piecewise_constant_schedule(1.0, {100: 0.5, 200: 0.1}),
    "piecewise_constant_none": lambda m: m.piecewise_constant_schedule(0.4),
    "piecewise_constant_at_zero": lambda m: m.piecewise_constant_schedule(
        0.1, {0: 0.1, 50: 10.0, 399: 3.0}
    ),
    "piecewise_constant_to_zero": lambda m: m.piecewise_constant_schedule(0.5, {150: 0.0}),
    "interpolate_linear": lambda m: m.piecewise_interpolate_schedule(
        "linear", 1.0, {4: 0.1, 8: 0.01, 300: 5.0}
    ),
    "interpolate_cosine": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 0.8, {100: 0.5, 300: 0.2}
    ),
    "interpolate_none": lambda m: m.piecewise_interpolate_schedule("linear", 0.3),
    "interpolate_at_zero_adjacent": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 1.0, {0: 2.0, 10: 0.5, 11: 0.5, 12: 3.0}
    ),
    "warmup_constant": lambda m: m.warmup_constant_schedule(0.0, 1.0, 50),
    "warmup_constant_no_warmup": lambda m: m.warmup_constant_schedule(0.5, 0.1, 0),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 50, 300),
    "warmup_cosine_end_exponent": lambda m: m.warmup_cosine_decay_schedule(
        0.1, 2.0, 30, 500, end_value=0.2, exponent=1.5
    ),
    "warmup_cosine_no_warmup": lambda m: m.warmup_cosine_decay_schedule(0.5, 1.0, 0, 100),
    "warmup_cosine_zero_peak": lambda m: m.warmup_cosine_decay_schedule(0.3, 0.0, 10, 100),
    "warmup_exponential": lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 50, 20, 0.9),
    "warmup_exponential_options": lambda m: m.warmup_exponential_decay_schedule(
        0.01, 0.5, 40, 30, 0.7, transition_begin=25, staircase=True, end_value=0.02
    ),
    "warmup_exponential_no_transition": lambda m: m.warmup_exponential_decay_schedule(
        0.0, 1.0, 20, 0, 0.5
    ),
    "linear_onecycle": lambda m: m.linear_onecycle_schedule(300, 1.0),
    "linear_onecycle_options": lambda m: m.linear_onecycle_schedule(
        500, 0.5, pct_start=0.1, pct_final=0.9, div_factor=10.0, final_div_factor=100.0
    ),
    "linear_onecycle_equal_pcts": lambda m: m.linear_onecycle_schedule(400, 2.0, 0.25, 0.25),
    "cosine_onecycle": lambda m: m.cosine_onecycle_schedule(300, 1.0),
    "cosine_onecycle_options": lambda m: m.cosine_onecycle_schedule(
        100, 0.5, pct_start=0.5, div_factor=10.0, final_div_factor=100.0
    ),
    "cosine_onecycle_long": lambda m: m.cosine_onecycle_schedule(1000, 1.0, pct_start=0.05),
    "sgdr": lambda m: m.sgdr_schedule(
        [
            dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100),
            dict(init_value=0.5, peak_value=0.5, warmup_steps=0, decay_steps=150, end_value=0.01),
            dict(init_value=0.1, peak_value=0.8, warmup_steps=20, decay_steps=80, exponent=2.0),
        ]
    ),
    "join": lambda m: m.join_schedules(
        [
            m.constant_schedule(1.0),
            m.linear_schedule(1.0, 0.0, 100),
            m.cosine_decay_schedule(0.5, 50),
        ],
        [50, 150],
    ),
}


@pytest.mark.parametrize("name", sorted(OPTAX_CASES))
def test_matches_optax(name):
    ours, theirs = OPTAX_CASES[name](gx), OPTAX_CASES[name](optax)
    # optax computes in float32 from an int32 count even under x64 (int32 / int is
    # float32); fed int64 counts it computes in float64, the precision gradxform keeps.
    expected = np.asarray(jax.vmap(theirs)(STEPS.astype(jnp.int64)), np.float64)
    assert np.ptp(expected) > 0 or "constant" in name or "none" in name or "no_" in name
    # Called on the whole array, under jit(vmap), and on Python ints: the same values.
    for got in (ours(STEPS), jax.jit(jax.vmap(ours))(STEPS)):
        assert got.shape == (400,)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-9, atol=1e-15)
    for t in (0, 77, 399):
        np.testing.assert_allclose(float(ours(t)), expected[t], rtol=1e-9, atol=1e-15)


TEXTBOOK_CASES = {
    "square_root": (lambda: gx.square_root_schedule(0.3), lambda t: 0.3 * (t + 1) ** -0.5),
    "inverse_power": (
        lambda: gx.inverse_power_decay(0.5, 0.1),
        lambda t: 0.5 * (0.1 * t + 1) ** -0.5,
    ),
    "inverse_power_one": (
        lambda: gx.inverse_power_decay(1.0, 1.0, 1.0),
        lambda t: 1.0 / (t + 1),
    ),
    "inverse_power_flat": (lambda: gx.inverse_power_decay(2.0, 0.0, 0.7), lambda t: 2.0 + 0 * t),
    "factor": (lambda: gx.factor_schedule(1.0, 0.99), lambda t: 0.99**t),
    "factor_floor": (
        lambda: gx.factor_schedule(1.0, 0.9, min_value=0.01),
        lambda t: np.maximum(0.01, 0.9**t),
    ),
    "factor_growth": (lambda: gx.factor_schedule(0.1, 1.01), lambda t: 0.1 * 1.01**t),
    "multi_factor": (
        lambda: gx.multi_factor_schedule(1.0, [100, 200, 300], 0.5),
        lambda t: 0.5 ** sum((t >= m).astype(int) for m in (100, 200, 300)),
    ),
    "multi_factor_at_zero": (
        lambda: gx.multi_factor_schedule(2.0, [0, 10], 0.1),
        lambda t: 2.0 * 0.1 ** sum((t >= m).astype(int) for m in (0, 10)),
    ),
    "multi_factor_none": (lambda: gx.multi_factor_schedule(2.0, [], 0.5), lambda t: 2.0 + 0 * t),
}


@pytest.mark.parametrize("name", sorted(TEXTBOOK_CASES))
def test_textbook_formulas(name):
    build, formula = TEXTBOOK_CASES[name]
    schedule = build()
    expected = formula(np.arange(400, dtype=np.float64)).astype(np.float64)
    for got in (schedule(STEPS), jax.jit(jax.vmap(schedule))(STEPS)):
        assert got.shape == (400,)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=0)
    for t in (0, 250):
        np.testing.assert_allclose(float(schedule(t)), expected[t], rtol=1e-12, atol=0)


ALL_SCHEDULES = [OPTAX_CASES[n] for n in sorted(OPTAX_CASES)[::3]] + [
    lambda m, b=b: b() for b, _ in TEXTBOOK_CASES.values()
]


def _scalar_and_batch(schedule, t):
    return schedule(t), jax.vmap(schedule)(t + jnp.arange(5))


def test_float32_without_x64():
    with jax.enable_x64(False):
        assert gx.cosine_decay_schedule(1.0, 10)(3).dtype == jnp.float32  # eager, Python int
        for build in ALL_SCHEDULES:
            schedule = build(gx)
            scalar, batch = jax.jit(functools.partial(_scalar_and_batch, schedule))(jnp.int32(3))
            assert scalar.dtype == batch.dtype == jnp.float32, scalar.dtype
            assert scalar.shape == ()
            assert batch.shape == (5,)


def test_usable_as_learning_rate():
    # A schedule drives sgd exactly as optax's does: step k uses s(k).
    params = {"w": jnp.linspace(-1.0, 1.0, 5)}
    grads = {"w": jnp.ones(5)}
    tx = gx.sgd(gx.warmup_cosine_decay_schedule(0.0, 1.0, 3, 10))
    state, update = tx.init(params), jax.jit(tx.update)
    taken = []
    for _ in range(12):
        updates, state = update(grads, state, params)
        taken.append(-float(updates["w"][0]))
    expected = optax.warmup_cosine_decay_schedule(0.0, 1.0, 3, 10)(jnp.arange(12))
    np.testing.assert_allclose(taken, expected, rtol=1e-12, atol=1e-15)


BAD_ARGUMENTS = [
    (lambda: gx.cosine_decay_schedule(1.0, 0), "decay_steps"),
    (lambda: gx.linear_schedule(1.0, 0.0, 10, transition_begin=-1), "transition_begin"),
    (lambda: gx.exponential_decay(1.0, 10, 0.0), "decay_rate"),
    (lambda: gx.piecewise_constant_schedule(1.0, {10: -0.5}), "boundaries_and_scales"),
    (lambda: gx.piecewise_interpolate_schedule("cubic", 1.0), "interpolate_type"),
    (lambda: gx.piecewise_interpolate_schedule("linear", 1.0, {-3: 0.5}), "boundaries"),
    (lambda: gx.warmup_cosine_decay_schedule(0.0, 1.0, 50, 50), "decay_steps"),
    (lambda: gx.linear_onecycle_schedule(0, 1.0), "transition_steps"),
    (lambda: gx.linear_onecycle_schedule(100, 1.0, pct_start=0.5, pct_final=0.4), "pct_final"),
    (lambda: gx.cosine_onecycle_schedule(100, 1.0, pct_start=1.5), "pct_start"),
    (lambda: gx.cosine_onecycle_schedule(100, 1.0, div_factor=0.0), "div_factor"),
    (lambda: gx.join_schedules([gx.constant_schedule(1.0)], [10]), "boundaries"),
    (lambda: gx.sgdr_schedule([]), "cosine_kwargs"),
    (lambda: gx.inverse_power_decay(1.0, -0.1), "beta"),
    (lambda: gx.inverse_power_decay(1.0, 0.1, power=-1.0), "power"),
    (lambda: gx.factor_schedule(1.0, 0.0), "factor"),
    (lambda: gx.factor_schedule(1.0, 0.5, min_value=-1.0), "min_value"),
    (lambda: gx.multi_factor_schedule(1.0, [10, 5], 0.5), "milestones"),
    (lambda: gx.multi_factor_schedule(1.0, [-1], 0.5), "milestones"),
    (lambda: gx.contrib.reduce_on_plateau(factor=1.0), "factor"),
    (lambda: gx.contrib.reduce_on_plateau(rtol=0.0, atol=0.0), "rtol"),
    (lambda: gx.contrib.reduce_on_plateau(rtol=1.5), "rtol"),
    (lambda: gx.contrib.reduce_on_plateau(accumulation_size=0), "accumulation_size"),
]


@pytest.mark.parametrize("i", range(len(BAD_ARGUMENTS)))
def test_rejects_bad_arguments(i):
    build, argument = BAD_ARGUMENTS[i]
    with pytest.raises(ValueError, match=argument):
        build()


# A scripted metric: improvements, plateaus, noise and a late improvement, so that every
# branch (improve, plateau reduction, cooldown, min_scale) is taken.
METRIC = np.concatenate(
    [
        np.linspace(10.0, 5.0, 10),
        np.full(15, 5.0),
        5.0 + 0.01 * np.sin(np.arange(20)),
        np.linspace(4.9, 1.0, 8),
        np.full(12, 1.0) + 1e-6 * np.arange(12),
        np.full(15, 0.5),
    ]
)

PLATEAU_CASES = {
    "defaults": {},
    "patience": dict(patience=3, factor=0.5),
    "cooldown": dict(patience=2, factor=0.5, cooldown=4),
    "atol": dict(patience=2, rtol=0.0, atol=0.05, factor=0.3),
    "accumulation": dict(patience=2, accumulation_size=3, factor=0.5),
    "min_scale": dict(patience=1, factor=0.2, min_scale=0.01),
}


def _plateau_trajectory(tx, params, values):
    def step(state, v):
        updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params, value=v)
        return state, (updates, state)

    return jax.lax.scan(step, tx.init(params), values)[1]


@pytest.mark.parametrize("name", sorted(PLATEAU_CASES))
def test_reduce_on_plateau_matches_optax(name):
    kwargs = PLATEAU_CASES[name]
    params = {"a": jnp.zeros(3), "b": (jnp.zeros((2, 2)),)}
    values = jnp.asarray(METRIC)
    ours = _plateau_trajectory(gx.contrib.reduce_on_plateau(**kwargs), params, values)
    theirs = _plateau_trajectory(optax.contrib.reduce_on_plateau(**kwargs), params, values)
    our_updates, our_state = ours
    their_updates, their_state = theirs
    for field in their_state._fields:
        np.testing.assert_allclose(
            getattr(our_state, field), getattr(their_state, field), rtol=1e-12, err_msg=field
        )
    for a, b in zip(jax.tree.leaves(our_updates), jax.tree.leaves(their_updates)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert float(their_state.scale[-1]) < 1.0, "the scripted metric never triggered a reduction"


def test_reduce_on_plateau_state_dtypes_follow_params():
    params = {"low": jnp.zeros(2, jnp.float32), "high": jnp.zeros(2, jnp.float64)}
    ours = gx.contrib.reduce_on_plateau().init(params)
    theirs = optax.contrib.reduce_on_plateau().init(params)
    for field in theirs._fields:
        assert getattr(ours, field).dtype == getattr(theirs, field).dtype, field
