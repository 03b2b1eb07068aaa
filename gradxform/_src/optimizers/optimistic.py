"""Optimistic methods for min-max games: extrapolate with the last gradient."""

from __future__ import annotations

import warnings
from typing import Any

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.adam import scale_by_adam
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

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        alpha: weight of the current gradient, any finite number. Default 1.0.
        beta: weight of the correction by the previous gradient, any finite number.
            Default 1.0.

    Returns:
        A ``GradientTransformation`` with state
        ``(ScaleByOptimisticGradientState(is_initial_step, previous_gradient),
        EmptyState())`` (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
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

    Args:
        learning_rate: as in ``optimistic_gradient_descent``.
        alpha: as in ``optimistic_gradient_descent``, weighting ``a_t``. Default 1.0.
        beta: as in ``optimistic_gradient_descent``, weighting ``a_{t-1}``. Default 1.0.
        b1: decay of the first moment, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to the second moment inside the square root, ``>= 0``.
            Default 0.0.
        mu_dtype: storage dtype of the first moment; ``None`` (default) keeps the
            params'.
        nesterov: use Nesterov's look-ahead first moment (NAdam). Default True.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu),
        ScaleByOptimisticGradientState(is_initial_step, previous_gradient), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam(
    learning_rate: jax.typing.ArrayLike,
    optimism: jax.typing.ArrayLike | None = None,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> base.GradientTransformation:
    """optax's first optimistic Adam, deprecated there in favour of ``optimistic_adam_v2``
    (Daskalakis et al. 2018, "Training GANs with Optimism").

    ``a_t`` = Adam's (by default Nesterov) direction;
    ``x <- x - (lr + optimism) a_t + optimism a_{t-1}`` with ``a_0 = a_1``: the learning
    rate is the optimistic step's ``alpha`` and ``optimism`` its ``beta``.

    Args:
      learning_rate: The step size, a number (no schedule: use ``optimistic_adam_v2``).
      optimism: Weight of the correction by the previous direction (default None: the
        learning rate).
      b1: First-moment decay, in ``[0, 1)`` (default 0.9).
      b2: Second-moment decay, in ``[0, 1)`` (default 0.999).
      eps: Added to the root of the second moment (default 1e-8, ``>= 0``).
      eps_root: Added to the second moment under the root (default 0, ``>= 0``).
      mu_dtype: Storage dtype of the first moment (default None: the params').
      nesterov: Use Nesterov's look-ahead first moment (default True).

    Returns:
      The ``GradientTransformation``, with state ``(ScaleByAdamState(count, mu, nu),
      ScaleByOptimisticGradientState(is_initial_step, previous_gradient), EmptyState())``.

    Raises:
      ValueError: when ``learning_rate`` is a schedule.
    """
    warnings.warn(
        "`optimistic_adam` is deprecated, please use `optimistic_adam_v2` instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    if callable(learning_rate):
        raise ValueError("optimistic_adam takes no learning-rate schedule: use optimistic_adam_v2")
    if optimism is None:
        optimism = learning_rate
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_optimistic_gradient(learning_rate, optimism),
        scale_by_learning_rate(1.0),
    )
