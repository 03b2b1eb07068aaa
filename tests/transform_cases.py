"""Optimizers, primitives and combinators as cases: name -> builder(module).

A builder takes the module (gradxform or optax) and returns the transformation, so the
same arguments build both sides. Primitives are followed by a small negative scale so
that trajectories descend.
"""

import jax
import jax.numpy as jnp


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(tree)))


MASK = {"dense": True, "conv": False, "head": [False, {"scale": True}]}

# sgd, adam and adamw, and the moment primitives they are built from.
SGD_ADAM_AND_MOMENTS = {
    "sgd": lambda m: m.sgd(0.05),
    "sgd_momentum": lambda m: m.sgd(0.02, momentum=0.9),
    "sgd_nesterov": lambda m: m.sgd(0.02, momentum=0.9, nesterov=True),
    "adam": lambda m: m.adam(0.05),
    "adam_nesterov": lambda m: m.adam(0.05, b1=0.8, b2=0.99, nesterov=True),
    "adam_eps_root": lambda m: m.adam(0.05, eps=1e-6, eps_root=1e-8),
    "adamw": lambda m: m.adamw(0.05, weight_decay=0.1),
    "scale_by_rms": lambda m: m.chain(m.scale_by_rms(), m.scale(-0.01)),
    "scale_by_rms_options": lambda m: m.chain(
        m.scale_by_rms(0.95, 1e-6, 0.1, eps_in_sqrt=False, bias_correction=True), m.scale(-0.01)
    ),
    "ema": lambda m: m.chain(m.ema(0.9), m.scale(-0.05)),
    "ema_no_debias": lambda m: m.chain(m.ema(0.8, debias=False), m.scale(-0.05)),
    "trace": lambda m: m.chain(m.trace(0.5), m.scale(-0.02)),
    "add_decayed_weights": lambda m: m.chain(
        m.add_decayed_weights(0.1), m.scale_by_learning_rate(0.01)
    ),
    "schedule": lambda m: m.chain(m.scale_by_schedule(lambda c: 0.1 / (1.0 + c)), m.scale(-1.0)),
}

PRIMITIVES = {
    "clip": lambda m: m.chain(m.clip(0.5), m.scale(-0.05)),
    "clip_by_global_norm": lambda m: m.chain(m.clip_by_global_norm(2.0), m.scale(-0.05)),
    "clip_by_block_rms": lambda m: m.chain(m.clip_by_block_rms(0.7), m.scale(-0.05)),
    "adaptive_grad_clip": lambda m: m.chain(m.adaptive_grad_clip(0.05), m.scale(-0.1)),
    "adaptive_grad_clip_eps": lambda m: m.chain(m.adaptive_grad_clip(0.1, eps=0.5), m.scale(-0.1)),
    "scale_by_rss": lambda m: m.chain(m.scale_by_rss(), m.scale(-0.1)),
    "scale_by_rss_options": lambda m: m.chain(m.scale_by_rss(0.0, 1e-4), m.scale(-0.1)),
    "scale_by_stddev": lambda m: m.chain(m.scale_by_stddev(), m.scale(-0.01)),
    "scale_by_stddev_options": lambda m: m.chain(
        m.scale_by_stddev(0.95, 1e-6, 0.1, eps_in_sqrt=False, bias_correction=True),
        m.scale(-0.01),
    ),
    "scale_by_sign": lambda m: m.chain(m.scale_by_sign(), m.scale(-0.01)),
    "scale_by_trust_ratio": lambda m: m.chain(m.scale_by_trust_ratio(), m.scale(-0.01)),
    "scale_by_trust_ratio_options": lambda m: m.chain(
        m.scale_by_trust_ratio(0.5, 0.3, 1e-3), m.scale(-0.05)
    ),
    # An int seed and a typed key, each drawing its own noise.
    "add_noise": lambda m: m.chain(
        m.add_noise(0.01, 0.55, 3), m.add_noise(0.1, 1.0, jax.random.key(7)), m.scale(-0.02)
    ),
    "centralize": lambda m: m.chain(m.centralize(), m.scale(-0.05)),
    "zero_nans": lambda m: m.chain(m.zero_nans(), m.scale(-0.05)),
    "keep_params_nonnegative": lambda m: m.chain(m.scale(-0.2), m.keep_params_nonnegative()),
    "snapshot": lambda m: m.chain(m.snapshot("norm", _norm), m.scale(-0.05)),
}

COMBINATORS = {
    "apply_every": lambda m: m.chain(m.apply_every(3), m.scale(-0.02)),
    "multi_steps": lambda m: m.MultiSteps(m.adam(0.1), 3).gradient_transformation(),
    "multi_steps_f64_sum": lambda m: m.MultiSteps(
        m.sgd(0.02, momentum=0.5), 2, use_grad_mean=False, accumulator_dtype=jnp.float64
    ).gradient_transformation(),
    "multi_steps_schedule": lambda m: m.MultiSteps(
        m.adam(0.1), lambda step: 1 + step % 3, accumulator_dtype=jnp.float64
    ).gradient_transformation(),
    "inject_schedule": lambda m: m.inject_hyperparams(m.adam)(
        learning_rate=lambda c: 0.1 / (1.0 + 0.05 * c), b1=0.8
    ),
    "inject_constant": lambda m: m.inject_hyperparams(m.sgd)(learning_rate=0.02, momentum=0.9),
    "inject_static_callable": lambda m: m.inject_hyperparams(
        m.scale_by_schedule, static_args="step_size_fn"
    )(lambda c: -0.05 * 0.99**c),
    "apply_if_finite": lambda m: m.apply_if_finite(m.adam(0.1), 2),
    "flatten": lambda m: m.flatten(m.adam(0.1)),
    "freeze": lambda m: m.chain(m.adam(0.1), m.freeze(MASK)),
    "freeze_all": lambda m: m.chain(m.sgd(0.05), m.freeze(False)),
    "selective_transform": lambda m: m.selective_transform(m.adam(0.1), freeze_mask=MASK),
    "conditionally_mask": lambda m: m.conditionally_mask(m.adam(0.1), lambda step: step % 3 != 1),
    "conditionally_transform": lambda m: m.chain(
        m.conditionally_transform(m.scale_by_adam(), lambda step: step % 2 == 0),
        m.scale(-0.05),
    ),
}
