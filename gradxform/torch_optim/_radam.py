"""``torch.optim.RAdam``: Adam with the variance rectification term, eps on the raw root."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain, divide
from gradxform._src.transforms.momentum import bias_correction, ema
from gradxform.torch_optim import _common


class RectifiedRootState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; int32 scalar
    exp_avg_sq: Any


def rectified_root(b2: Any, eps: Any) -> base.GradientTransformation:
    """RAdam's denominator, the inverse of its adaptive factor.

    ``v <- b2 v + (1 - b2) g^2``; ``rho_inf = 2 / (1 - b2) - 1``;
    ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)``;
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``;
    ``u <- (sqrt(v) + eps) / (sqrt(1 - b2^t) r_t)`` when ``rho_t > 5``, else ``u <- 1``
    (plain momentum while the variance estimate is unreliable).
    Liu et al. (2020), "On the Variance of the Adaptive Learning Rate and Beyond", alg. 2.
    """
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "rectified_root")
        return RectifiedRootState(jnp.zeros([], jnp.int32), tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.exp_avg_sq, "second moment")
        count = numerics.safe_increment(state.count)
        exp_avg_sq = tree_ops.update_moment(updates, state.exp_avg_sq, b2, 2)
        t = count.astype(jnp.result_type(float))
        correction = 1 - b2**t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2**t / correction
        rectified = rho_t > 5.0
        # Where rho_t <= 5 the root's argument can be negative; it is not used there.
        safe_rho = jnp.where(rectified, rho_t, rho_inf)
        r_t = jnp.sqrt(
            (safe_rho - 4) * (safe_rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe_rho)
        )
        scale = jnp.sqrt(correction) * r_t
        out = jax.tree.map(
            lambda v: jnp.where(
                rectified, (jnp.sqrt(v) + eps) / scale.astype(v.dtype), jnp.ones_like(v)
            ),
            exp_avg_sq,
        )
        return out, RectifiedRootState(count, exp_avg_sq)

    return base.GradientTransformation(init, update)


def radam(
    lr: base.ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.RAdam`` (defaults ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0, decoupled_weight_decay=False``).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``, or with
    ``decoupled_weight_decay`` ``p <- p (1 - lr weight_decay)`` (RAdamW);
    ``m <- b1 m + (1 - b1) g``; ``p <- p - lr (m / (1 - b1^t)) / u`` with ``u`` the
    rectified root of ``v <- b2 v + (1 - b2) g^2`` (1 while the variance of the adaptive
    rate is intractable, ``rho_t <= 5``): ``eps`` is added to ``sqrt(v)``, not to the
    bias-corrected root. Liu et al. (2020), "On the Variance of the Adaptive Learning
    Rate and Beyond"; https://pytorch.org/docs/2.13/generated/torch.optim.RAdam.html

    Args:
        lr: the learning rate, as in ``sgd`` (default 1e-3).
        betas: ``(b1, b2)``, as in ``adam`` (default ``(0.9, 0.999)``).
        eps: added to ``sqrt(v)``; ``>= 0`` (default 1e-8).
        weight_decay: the weight decay, coupled unless ``decoupled_weight_decay``; ``>= 0``
            (default 0).
        decoupled_weight_decay: apply ``weight_decay`` as ``p <- p (1 - lr weight_decay)``
            (default False).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states:
        the first moment in an ``EmaState`` with a ``BiasCorrectionState``, the second in a
        ``RectifiedRootState`` (``count``, ``exp_avg_sq``).

    Raises:
        ValueError: where torch does, as ``adam``.
    """
    b1, b2 = _common.check_lr_eps_betas(lr, eps, betas)
    return _common.torch_optimizer(
        divide(chain(ema(b1, debias=False), bias_correction(b1)), rectified_root(b2, eps)),
        lr=lr,
        weight_decay=weight_decay,
        maximize=maximize,
        decoupled=decoupled_weight_decay,
    )
