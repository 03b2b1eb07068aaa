"""One counting model: each stateful primitive owns its step counter, as in optax.

Numbers are checked against optax, and each optimizer's state against optax's: the same
statistics and the same counters, nothing more.
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


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: gx.adam(SCHEDULE, nesterov=True), lambda: optax.adam(SCHEDULE, nesterov=True)),
        (
            lambda: gx.adamw(SCHEDULE, weight_decay=WD_SCHEDULE),
            lambda: optax.adamw(SCHEDULE, weight_decay=WD_SCHEDULE),
        ),
        (
            lambda: gx.lamb(SCHEDULE, weight_decay=1e-2),
            lambda: optax.lamb(SCHEDULE, weight_decay=1e-2),
        ),
        (
            lambda: gx.chain(gx.clip_by_global_norm(1.0), gx.adamw(SCHEDULE, weight_decay=1e-2)),
            lambda: optax.chain(
                optax.clip_by_global_norm(1.0), optax.adamw(SCHEDULE, weight_decay=1e-2)
            ),
        ),
        (lambda: gx.amsgrad(SCHEDULE, b2=0.9), lambda: optax.amsgrad(SCHEDULE, b2=0.9)),
        (
            lambda: gx.adamaxw(SCHEDULE, weight_decay=WD_SCHEDULE),
            lambda: optax.adamaxw(SCHEDULE, weight_decay=WD_SCHEDULE),
        ),
        (lambda: gx.yogi(SCHEDULE), lambda: optax.yogi(SCHEDULE)),
        (lambda: gx.radam(SCHEDULE), lambda: optax.radam(SCHEDULE)),
        (
            lambda: gx.adabelief(SCHEDULE, nesterov=True),
            lambda: optax.adabelief(SCHEDULE, nesterov=True),
        ),
    ],
    ids=[
        "nadam+schedule",
        "adamw+schedules",
        "lamb+schedule",
        "clip+adamw+schedule",
        "amsgrad+schedule",
        "adamaxw+schedules",
        "yogi+schedule",
        "radam+schedule",
        "adabelief+schedule",
    ],
)
def test_scheduled_optimizers_match_optax_and_store_what_optax_stores(ours, theirs):
    params = nested_params()
    assert_same_trajectory(ours(), theirs(), steps=60, params=params)
    assert _state_bytes(ours().init(params)) == _state_bytes(theirs().init(params))


def test_composition_of_primitives_reproduces_adam():
    """Adam written as primitives, each counting for itself (the example of
    docs/concepts.md), equals ``optax.adam``; so does the same quotient with the bias
    correction of ``m`` as its own stage."""
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-2
    by_divide = gx.chain(
        gx.divide(gx.ema(b1), gx.second_moment_root(b2, eps, eps_root=0.0)),
        gx.scale_by_learning_rate(lr),
    )
    staged = gx.chain(
        gx.divide(
            gx.chain(gx.ema(b1, debias=False), gx.bias_correction(b1)),
            gx.second_moment_root(b2, eps, eps_root=0.0),
        ),
        gx.scale_by_learning_rate(lr),
    )
    for ours in (by_divide, staged):
        assert_same_trajectory(ours, optax.adam(lr), steps=20)


def test_each_average_counts_for_itself():
    """Three debiased averages of different decays in a chain equal optax's three
    ``ema``s: each holds ``EmaState(count, ema)``."""
    decays = (0.5, 0.9, 0.99)
    ours = gx.chain(*[gx.ema(d, debias=True) for d in decays])
    theirs = optax.chain(*[optax.ema(d, debias=True) for d in decays])
    assert_same_trajectory(
        gx.chain(ours, gx.scale(-0.1)), optax.chain(theirs, optax.scale(-0.1)), steps=30
    )
    assert [type(s).__name__ for s in ours.init(nested_params())] == ["EmaState"] * 3


def test_schedule_sees_the_number_of_earlier_updates():
    """A schedule gets 0, 1, 2, ... from its own counter."""
    seen = []
    tx = gx.scale_by_schedule(lambda t: t * 1.0)
    state = tx.init(jnp.ones(()))
    for _ in range(3):
        u, state = tx.update(jnp.ones(()), state)
        seen.append(float(u))
    assert seen == [0.0, 1.0, 2.0]
    assert int(state.count) == 3
    assert state.count.dtype == jnp.int32


def test_counters_saturate_instead_of_wrapping():
    top = np.iinfo(np.int32).max
    tx = gx.scale_by_adam()
    params = jnp.ones(())
    state = tx.init(params)._replace(count=jnp.array(top, jnp.int32))
    u, state = tx.update(jnp.ones(()), state)
    assert int(state.count) == top
    # m = v = 0.1 * 1 and 0.001 * 1, both debiased by 1 - b^t = 1: u = 0.1 / sqrt(0.001)
    np.testing.assert_allclose(float(u), 0.1 / (np.sqrt(0.001) + 1e-8), rtol=1e-6)


def test_zero_weight_decay_leaves_updates_untouched():
    """``wd = 0`` is skipped: an infinite parameter does not turn its update into NaN
    (``g + 0 * inf``), and the state is the same as for a non-zero decay."""
    params = {"w": jnp.array([1.0, jnp.inf])}
    grads = {"w": jnp.array([0.5, 0.25])}
    tx = gx.add_decayed_weights(0.0)
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(u["w"], [0.5, 0.25])
    assert type(tx.init(params)) is type(gx.add_decayed_weights(1e-2).init(params))
