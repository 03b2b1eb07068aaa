"""``torch.optim.Adamax``: Adam with an exponentially weighted infinity norm."""

from __future__ import annotations

from typing import Any, NamedTuple

from gradxform import tree as tree_ops
from gradxform._src import base, validate
from gradxform._src.combine import chain, divide
from gradxform._src.transforms.accumulation import bias_correction, ema
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform.torch_optim import _common


class InfinityNormState(NamedTuple):
    exp_inf: Any


def infinity_norm(decay: Any, eps: Any) -> base.GradientTransformation:
    """``n <- max(decay * n, |g| + eps)`` (``n_0 = 0``); ``u <- n``.
    Kingma & Ba (2015), "Adam", section 7.1 (AdaMax), with torch's ``eps`` inside the max.
    """
    validate.decay("decay", decay)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "infinity_norm")
        return InfinityNormState(tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.exp_inf, "infinity norm")
        exp_inf = tree_ops.update_infinity_moment(updates, state.exp_inf, decay, eps)
        return exp_inf, InfinityNormState(exp_inf)

    return base.GradientTransformation(init, update)


def adamax(
    lr: base.ScalarOrSchedule = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.Adamax`` (defaults ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8``, no decay).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``; ``m <- b1 m + (1 - b1) g``;
    ``n <- max(b2 n, |g| + eps)``; ``p <- p - lr / (1 - b1^t) * m / n``.
    Kingma & Ba (2015), "Adam", section 7.1;
    https://pytorch.org/docs/2.13/generated/torch.optim.Adamax.html

    Raises ``ValueError`` where torch does: ``lr < 0``, ``eps < 0``, a beta outside
    ``[0, 1)``, ``weight_decay < 0``.
    """
    _common.check_lr(lr)
    validate.non_negative("eps", eps)
    b1, b2 = _common.check_betas(betas)
    return _common.real_pairs(
        chain(
            _common.maximize_sign(maximize),
            _common.coupled_weight_decay(weight_decay),
            divide(chain(ema(b1, debias=False), bias_correction(b1)), infinity_norm(b2, eps)),
            scale_by_learning_rate(lr),
        )
    )
