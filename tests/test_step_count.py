"""One step counter per optimizer: ``with_count`` and the ``shared_count`` primitives.

Numbers are checked against optax (each of its primitives keeps its own counter) and
the state against the algorithm's minimum: the statistics plus one int32 step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from paired import assert_same_trajectory
from reference import nested_params

SCHEDULE = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 60, 1e-4)
WD_SCHEDULE = optax.linear_schedule(1e-1, 0.0, 40)


def _state_bytes(state) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))


def _param_bytes(params) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params))


@pytest.mark.parametrize(
    "ours, theirs, moments",
    [
        (lambda: gx.adam(SCHEDULE), lambda: optax.adam(SCHEDULE), 2),
        (lambda: gx.adam(SCHEDULE, nesterov=True), lambda: optax.adam(SCHEDULE, nesterov=True), 2),
        (
            lambda: gx.adamw(SCHEDULE, weight_decay=WD_SCHEDULE),
            lambda: optax.adamw(SCHEDULE, weight_decay=WD_SCHEDULE),
            2,
        ),
        (
            lambda: gx.lamb(SCHEDULE, weight_decay=1e-2),
            lambda: optax.lamb(SCHEDULE, weight_decay=1e-2),
            2,
        ),
        (
            lambda: gx.chain(gx.clip_by_global_norm(1.0), gx.adamw(SCHEDULE, weight_decay=1e-2)),
            lambda: optax.chain(
                optax.clip_by_global_norm(1.0), optax.adamw(SCHEDULE, weight_decay=1e-2)
            ),
            2,
        ),
        (lambda: gx.amsgrad(SCHEDULE, b2=0.9), lambda: optax.amsgrad(SCHEDULE, b2=0.9), 3),
        (
            lambda: gx.adamaxw(SCHEDULE, weight_decay=WD_SCHEDULE),
            lambda: optax.adamaxw(SCHEDULE, weight_decay=WD_SCHEDULE),
            2,
        ),
        (lambda: gx.yogi(SCHEDULE), lambda: optax.yogi(SCHEDULE), 2),
        (lambda: gx.radam(SCHEDULE), lambda: optax.radam(SCHEDULE), 2),
        (
            lambda: gx.adabelief(SCHEDULE, nesterov=True),
            lambda: optax.adabelief(SCHEDULE, nesterov=True),
            2,
        ),
    ],
    ids=[
        "adam+schedule", "nadam+schedule", "adamw+schedules", "lamb+schedule", "clip+adamw+schedule",
        "amsgrad+schedule", "adamaxw+schedules", "yogi+schedule", "radam+schedule",
        "adabelief+schedule",
    ],
)
def test_one_counter_matches_optax_and_is_the_minimal_state(ours, theirs, moments):
    params = nested_params()
    assert_same_trajectory(ours(), theirs(), steps=60, params=params)
    # The statistics plus one int32 step: optax keeps one counter per primitive.
    assert _state_bytes(ours().init(params)) == moments * _param_bytes(params) + 4


def test_with_count_hands_the_step_to_every_member():
    """Three debiased averages of different decays under one counter equal optax's
    three ``ema``s, each of which counts for itself."""
    decays = (0.5, 0.9, 0.99)
    ours = gx.with_count(
        gx.chain(*[gx.ema(d, debias=True, shared_count=True) for d in decays])
    )
    theirs = optax.chain(*[optax.ema(d, debias=True) for d in decays])
    assert_same_trajectory(
        gx.chain(ours, gx.scale(-0.1)), optax.chain(theirs, optax.scale(-0.1)), steps=30
    )
    state = ours.init(nested_params())
    assert jax.tree.leaves(state)[0].shape == ()  # the one counter, stored first
    assert sum(x.ndim == 0 and x.dtype == jnp.int32 for x in jax.tree.leaves(state)) == 1


def test_schedule_sees_the_number_of_earlier_updates():
    """A schedule under ``with_count`` gets 0, 1, 2, ... as with its own counter."""
    seen = []
    tx = gx.with_count(gx.scale_by_schedule(lambda t: t * 1.0, shared_count=True))
    params = jnp.ones(())
    state = tx.init(params)
    for _ in range(3):
        u, state = tx.update(jnp.ones(()), state)
        seen.append(float(u))
    assert seen == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "member",
    [
        lambda: gx.ema(0.9, shared_count=True),
        lambda: gx.bias_correction(0.9, shared_count=True),
        lambda: gx.scale_by_learning_rate(optax.constant_schedule(1.0), shared_count=True),
        lambda: gx.scale_by_adam(shared_count=True),
    ],
    ids=["ema", "bias_correction", "scale_by_learning_rate", "scale_by_adam"],
)
def test_shared_count_outside_with_count_is_a_clear_error(member):
    tx = member()
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match=r"shared_count=True.*with_count"):
        tx.update(params, tx.init(params), params)


def test_with_count_saturates_instead_of_wrapping():
    tx = gx.with_count(gx.bias_correction(0.9, shared_count=True))
    params = jnp.ones(())
    state = tx.init(params)._replace(count=jnp.array(np.iinfo(np.int32).max, jnp.int32))
    u, state = tx.update(jnp.ones(()), state)
    assert int(state.count) == np.iinfo(np.int32).max
    assert float(u) == 1.0  # 1 / (1 - 0.9^t) at t = 2^31 - 1


def test_zero_weight_decay_leaves_updates_untouched():
    """``wd = 0`` is skipped: an infinite parameter does not turn its update into NaN
    (``g + 0 * inf``), and the state is the same as for a non-zero decay."""
    params = {"w": jnp.array([1.0, jnp.inf])}
    grads = {"w": jnp.array([0.5, 0.25])}
    tx = gx.add_decayed_weights(0.0)
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(u["w"], [0.5, 0.25])
    assert type(tx.init(params)) is type(gx.add_decayed_weights(1e-2).init(params))
