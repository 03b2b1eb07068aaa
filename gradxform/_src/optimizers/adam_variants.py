"""Adam's relatives: a different second moment, Nesterov momentum, or rectification.

Each is ``chain(scale_by_<variant>, [add_decayed_weights], scale_by_learning_rate)``,
as in optax, whose state layout it has.
"""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base
from gradxform._src.optimizers.adam import adam, adamw
from gradxform._src.optimizers.descent import descent
from gradxform._src.transforms.adam_variants import (
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)


def nadam(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
) -> base.GradientTransformation:
    """NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"): ``adam`` with
    Nesterov's look-ahead first moment.

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``;
    ``m_hat = b1 m / (1 - b1^{t+1}) + (1 - b1) g / (1 - b1^t)``;
    ``x <- x - lr m_hat / (sqrt(v / (1 - b2^t) + eps_root) + eps)``.
    This is optax's form; torch's NAdam also schedules ``b1`` with ``momentum_decay``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added inside the square root, ``>= 0``. Default 0.0.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True)


def nadamw(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    weight_decay: base.ScalarOrSchedule = 1e-4,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """NAdamW: ``nadam``'s direction plus decoupled weight decay (Dozat 2016; Loshchilov
    & Hutter 2019): ``x <- x - lr (m_hat / (sqrt(v_hat + eps_root) + eps) + wd x)``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added inside the square root, ``>= 0``. Default 0.0.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.
        weight_decay: ``wd``, the decoupled weight decay: a finite number or a schedule
            of the step count. Default 1e-4.
        mask: which leaves are decayed: a tree of bools like the params, or a function
            of the params returning one; ``None`` (default) decays every leaf.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu), EmptyState(),
        EmptyState())``; a scheduled ``weight_decay`` keeps ``WeightDecaySchedule(count)``
        in the middle, a scheduled ``lr`` ``ScaleByScheduleState(count)`` last.
        ``update`` needs ``params``.
    """
    return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask, nesterov=True)


def amsgrad(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_raw_nu: bool = False,
) -> base.GradientTransformation:
    """AMSGrad (Reddi et al. 2018, "On the Convergence of Adam and Beyond").

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``; ``m_hat = m / (1 - b1^t)``;
    by default (optax) ``v_max <- max(v_max, v / (1 - b2^t))`` and
    ``x <- x - lr m_hat / (sqrt(v_max + eps_root) + eps)``. With ``max_raw_nu=True``
    (torch's ``Adam(amsgrad=True)``) ``v_max <- max(v_max, v)`` and
    ``x <- x - lr m_hat / (sqrt(v_max / (1 - b2^t) + eps_root) + eps)``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added inside the square root, ``>= 0``. Default 0.0.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.
        bias_correction_mu: divide ``m`` by ``1 - b1^t``. Default True.
        bias_correction_nu: divide ``v`` by ``1 - b2^t``. Default True.
        max_raw_nu: keep the maximum of the raw ``v`` and debias it afterwards
            (torch's form) instead of the maximum of ``v_hat`` (optax's). Default False.

    Returns:
        A ``GradientTransformation`` with state
        ``(ScaleByAmsgradState(count, mu, nu, nu_max), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return descent(
        scale_by_amsgrad(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            bias_correction_mu,
            bias_correction_nu,
            max_raw_nu=max_raw_nu,
        ),
        learning_rate,
    )


def adamax(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> base.GradientTransformation:
    """AdaMax (Kingma & Ba 2015, "Adam", section 7.1): Adam under the infinity norm.

    ``m <- b1 m + (1-b1) g``; ``v <- max(b2 v, |g| + eps)``;
    ``x <- x - lr (m / (1 - b1^t)) / v``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the infinity norm ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to ``|g|`` before the maximum, ``>= 0``. Default 1e-8.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return descent(scale_by_adamax(b1, b2, eps), learning_rate)


def adamaxw(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: base.ScalarOrSchedule = 1e-4,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """AdaMax with decoupled weight decay (Kingma & Ba 2015; Loshchilov & Hutter 2019).

    ``x <- x - lr ((m / (1 - b1^t)) / v + wd x)`` with ``adamax``'s ``m, v``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the infinity norm ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to ``|g|`` before the maximum, ``>= 0``. Default 1e-8.
        weight_decay: ``wd``, the decoupled weight decay: a finite number or a schedule
            of the step count. Default 1e-4.
        mask: which leaves are decayed: a tree of bools like the params, or a function
            of the params returning one; ``None`` (default) decays every leaf.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu), EmptyState(),
        EmptyState())``; a scheduled ``weight_decay`` keeps ``WeightDecaySchedule(count)``
        in the middle, a scheduled ``lr`` ``ScaleByScheduleState(count)`` last.
        ``update`` needs ``params``.
    """
    return descent(scale_by_adamax(b1, b2, eps), learning_rate, weight_decay, mask)


def radam(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    threshold: jax.typing.ArrayLike = 5.0,
    *,
    nesterov: bool = False,
) -> base.GradientTransformation:
    """RAdam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond").

    Adam's ``m_hat, v_hat``; ``rho_inf = 2 / (1 - b2) - 1``,
    ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)``; if ``rho_t >= threshold``
    ``x <- x - lr r_t m_hat / (sqrt(v_hat + eps_root) + eps)`` with
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``,
    else ``x <- x - lr m_hat``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added inside the square root, ``>= 0``. Default 0.0.
        threshold: the smallest ``rho_t`` at which the rectified adaptive step is
            taken; any finite number. Default 5.0 (optax's).
        nesterov: use Nesterov's look-ahead first moment. Default False.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return descent(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
        learning_rate,
    )


def yogi(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-3,
) -> base.GradientTransformation:
    """Yogi (Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization").

    ``m <- b1 m + (1-b1) g``; ``v <- v - (1-b2) sign(v - g^2) g^2`` (both from 1e-6);
    ``x <- x - lr m_hat / (sqrt(v_hat) + eps)``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-3.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return descent(scale_by_yogi(b1, b2, eps), learning_rate)


def adabelief(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
) -> base.GradientTransformation:
    """AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the
    Belief in Observed Gradients").

    ``m <- b1 m + (1-b1) g``; ``s <- b2 s + (1-b2) (g - m)^2 + eps_root``;
    ``x <- x - lr m_hat / (sqrt(s / (1 - b2^t)) + eps)``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the belief ``s``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-16.
        eps_root: added to ``s`` at every step, ``>= 0``. Default 1e-16.
        nesterov: use Dozat's look-ahead ``m_hat``. Default False.

    Returns:
        A ``GradientTransformation`` with state
        ``(ScaleByBeliefState(count, mu, nu), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return descent(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
        learning_rate,
    )
