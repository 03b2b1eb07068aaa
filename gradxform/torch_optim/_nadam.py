"""``torch.optim.NAdam``: Nesterov-accelerated Adam with Dozat's momentum warm-up schedule."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import divide
from gradxform._src.transforms.adam import second_moment_root
from gradxform.torch_optim import _common


class NadamMomentumState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; int32 scalar
    mu_product: jax.Array  # float scalar: prod_{i <= t} mu_i
    exp_avg: Any


def nadam_momentum(b1: Any, momentum_decay: Any) -> base.GradientTransformation:
    """NAdam's numerator with its momentum schedule ``mu_t = b1 (1 - 0.5 * 0.96^(t psi))``.

    ``psi = momentum_decay``, ``t`` the 1-based step, ``P_t = prod_{i <= t} mu_i``;
    ``m <- b1 m + (1 - b1) g``;
    ``u <- (1 - mu_t) / (1 - P_t) * g + mu_{t+1} / (1 - P_t mu_{t+1}) * m``.
    Dozat (2016), "Incorporating Nesterov Momentum into Adam".
    """
    validate.decay("b1", b1)
    validate.non_negative("momentum_decay", momentum_decay)

    def init(params):
        base.check_float_leaves(params, "nadam_momentum")
        # A float scalar of the default precision: float64 under x64, as torch's float64 state.
        one = jnp.ones([], jnp.result_type(float))
        return NadamMomentumState(jnp.zeros([], jnp.int32), one, tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.exp_avg, "first moment")
        count = numerics.safe_increment(state.count)
        t = count.astype(state.mu_product.dtype)
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mu
        grad_coef = (1.0 - mu) / (1.0 - mu_product)
        avg_coef = mu_next / (1.0 - mu_product * mu_next)
        exp_avg = tree_ops.update_moment(updates, state.exp_avg, b1, 1)
        out = jax.tree.map(
            lambda g, m: grad_coef.astype(g.dtype) * g + avg_coef.astype(m.dtype) * m,
            updates,
            exp_avg,
        )
        return out, NadamMomentumState(count, mu_product, exp_avg)

    return base.GradientTransformation(init, update)


def nadam(
    lr: base.ScalarOrSchedule = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.NAdam`` (defaults ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0, momentum_decay=4e-3, decoupled_weight_decay=False``).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``, or with
    ``decoupled_weight_decay`` ``p <- p (1 - lr weight_decay)`` (NAdamW);
    ``mu_t = b1 (1 - 0.5 * 0.96^(t momentum_decay))``, ``P_t = prod_{i <= t} mu_i``,
    ``m <- b1 m + (1 - b1) g``,
    ``u = (1 - mu_t) / (1 - P_t) g + mu_{t+1} / (1 - P_t mu_{t+1}) m``,
    ``v <- b2 v + (1 - b2) g^2``; ``p <- p - lr u / (sqrt(v / (1 - b2^t)) + eps)``.
    Dozat (2016), "Incorporating Nesterov Momentum into Adam";
    https://pytorch.org/docs/2.13/generated/torch.optim.NAdam.html

    Args:
        lr: the learning rate, as in ``sgd`` (default 2e-3).
        betas: ``(b1, b2)``, as in ``adam`` (default ``(0.9, 0.999)``).
        eps: added to the denominator; ``>= 0`` (default 1e-8).
        weight_decay: the weight decay, coupled unless ``decoupled_weight_decay``; ``>= 0``
            (default 0).
        momentum_decay: the rate at which the momentum schedule ``mu_t`` approaches ``b1``;
            ``>= 0`` (default 4e-3).
        decoupled_weight_decay: apply ``weight_decay`` as ``p <- p (1 - lr weight_decay)``
            (default False).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states:
        a ``NadamMomentumState`` (``count``, ``mu_product``, ``exp_avg``) and the second
        moment in an ``EmaState``.

    Raises:
        ValueError: where torch does: ``lr < 0``, ``eps < 0``, a beta outside ``[0, 1)``,
            ``weight_decay < 0``, ``momentum_decay < 0``.
    """
    b1, b2 = _common.check_lr_eps_betas(lr, eps, betas)
    return _common.torch_optimizer(
        divide(nadam_momentum(b1, momentum_decay), second_moment_root(b2, eps, 0.0)),
        lr=lr,
        weight_decay=weight_decay,
        maximize=maximize,
        decoupled=decoupled_weight_decay,
    )
