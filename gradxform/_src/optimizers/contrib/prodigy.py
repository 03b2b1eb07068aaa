"""Prodigy: parameter-free Adam."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform._src import base
from gradxform._src.transforms.prodigy import scale_by_prodigy


def prodigy(
    learning_rate: base.ScalarOrSchedule = 1.0,
    betas: tuple[jax.typing.ArrayLike, jax.typing.ArrayLike] = (0.9, 0.999),
    beta3: jax.typing.ArrayLike | None = None,
    eps: jax.typing.ArrayLike = 1e-8,
    estim_lr0: jax.typing.ArrayLike = 1e-6,
    estim_lr_coef: jax.typing.ArrayLike = 1.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    safeguard_warmup: bool = False,
) -> base.GradientTransformation:
    """Prodigy (Mishchenko & Defazio 2024, "Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner"): Adam whose step size ``d`` is estimated on the fly.

    ``dlr = d lr_t sqrt(1 - b2^t) / (1 - b1^t)``; ``m, v`` Adam's moments of ``d g``;
    ``x <- x - dlr (m / (sqrt(v) + d eps) + weight_decay x)``; ``d`` grows to
    ``max(d, r / ||s||_1)`` from ``r = sum b3^k dlr <g, x_0 - x>`` and
    ``s = sum b3^k dlr g`` (see ``scale_by_prodigy``). ``learning_rate`` is a multiplier
    on ``d`` (keep 1, or a schedule). Defaults ``betas=(0.9, 0.999), beta3=sqrt(b2),
    eps=1e-8, estim_lr0=1e-6, estim_lr_coef=1, weight_decay=0``.
    """
    step = scale_by_prodigy(
        learning_rate, betas, beta3, eps, estim_lr0, estim_lr_coef, weight_decay, safeguard_warmup
    )

    # The descent step negates scale_by_prodigy's output in place of chaining scale(-1), so
    # that the state is the one ProdigyState, as optax's (a checkpoint crosses over as is).
    def update(updates, state, params=None, **extra):
        updates, state = step.update(updates, state, params, **extra)
        return jax.tree.map(jnp.negative, updates), state

    return base.GradientTransformation(step.init, update)
