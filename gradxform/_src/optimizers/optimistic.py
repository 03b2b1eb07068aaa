"""Optimistic methods for min-max games: extrapolate with the last gradient."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.adaptive import scale_by_adam
from gradxform._src.transforms.optimistic import scale_by_optimistic_gradient
from gradxform._src.transforms.scaling import scale_by_learning_rate


def optimistic_gradient_descent(
    learning_rate: base.ScalarOrSchedule,
    alpha: jax.typing.ArrayLike = 1.0,
    beta: jax.typing.ArrayLike = 1.0,
) -> base.GradientTransformation:
    """Optimistic gradient descent (Mokhtari et al. 2020, "A Unified Analysis of
    Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems").

    ``x <- x - lr ((alpha + beta) g_t - beta g_{t-1})`` with ``g_0 = g_1``.
    Defaults ``alpha=1, beta=1``.
    """
    return chain(scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate))


def optimistic_adam_v2(
    learning_rate: base.ScalarOrSchedule,
    *,
    alpha: jax.typing.ArrayLike = 1.0,
    beta: jax.typing.ArrayLike = 1.0,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> base.GradientTransformation:
    """Optimistic Adam (Daskalakis et al. 2018, "Training GANs with Optimism").

    ``a_t`` = Adam's (by default Nesterov, NAdam's) direction;
    ``x <- x - lr ((alpha + beta) a_t - beta a_{t-1})`` with ``a_0 = a_1``.
    Defaults ``alpha=1, beta=1, b1=0.9, b2=0.999, eps=1e-8, eps_root=0, nesterov=True``.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
    )
