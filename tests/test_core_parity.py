"""The foundation's primitives and optimizers against optax, 100 steps in float64."""

import jax
import optax
import pytest

import gradxform as gx
from paired import assert_same_trajectory

CASES = {
    "sgd": (lambda m: m.sgd(0.05), None),
    "sgd_momentum": (lambda m: m.sgd(0.02, momentum=0.9), None),
    "sgd_nesterov": (lambda m: m.sgd(0.02, momentum=0.9, nesterov=True), None),
    "adam": (lambda m: m.adam(0.05), None),
    "adam_nesterov": (lambda m: m.adam(0.05, b1=0.8, b2=0.99, nesterov=True), None),
    "adam_eps_root": (lambda m: m.adam(0.05, eps=1e-6, eps_root=1e-8), None),
    "adamw": (lambda m: m.adamw(0.05, weight_decay=0.1), None),
    "scale_by_rms": (lambda m: m.chain(m.scale_by_rms(), m.scale(-0.01)), None),
    "scale_by_rms_options": (
        lambda m: m.chain(
            m.scale_by_rms(0.95, 1e-6, 0.1, eps_in_sqrt=False, bias_correction=True), m.scale(-0.01)
        ),
        None,
    ),
    "ema": (lambda m: m.chain(m.ema(0.9), m.scale(-0.05)), None),
    "ema_no_debias": (lambda m: m.chain(m.ema(0.8, debias=False), m.scale(-0.05)), None),
    "trace": (lambda m: m.chain(m.trace(0.5), m.scale(-0.02)), None),
    "add_decayed_weights": (
        lambda m: m.chain(m.add_decayed_weights(0.1), m.scale_by_learning_rate(0.01)),
        None,
    ),
    "schedule": (
        lambda m: m.chain(m.scale_by_schedule(lambda c: 0.1 / (1.0 + c)), m.scale(-1.0)),
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax(name):
    build, _ = CASES[name]
    assert_same_trajectory(build(gx), build(optax))


def test_bias_correction_primitive_equals_debiased_ema():
    ours = gx.chain(gx.ema(0.9, debias=False), gx.bias_correction(0.9), gx.scale(-0.05))
    assert_same_trajectory(ours, optax.chain(optax.ema(0.9), optax.scale(-0.05)))


def test_textbook_momentum_forms():
    assert_same_trajectory(gx.momentum(0.02, 0.9), optax.sgd(0.02, momentum=0.9))
    assert_same_trajectory(
        gx.ema_momentum(0.05, 0.8),
        optax.chain(optax.ema(0.8, debias=False), optax.scale(-0.05)),
    )


def test_learning_rate_none_still_descends():
    # optax's scale_by_learning_rate(None) is the identity and climbs; ours flips the sign.
    params = {"w": jax.numpy.array([1.0, -2.0])}
    grads = {"w": jax.numpy.array([0.5, -0.25])}
    ours, _ = gx.scale_by_learning_rate().update(grads, (), params)
    theirs, _ = optax.scale_by_learning_rate(1.0).update(grads, optax.EmptyState(), params)
    assert float(ours["w"][0]) == float(theirs["w"][0]) == -0.5
    assert float(ours["w"][1]) == float(theirs["w"][1]) == 0.25
