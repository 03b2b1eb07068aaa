"""``torch.optim.Adam`` and ``AdamW``: AMSGrad takes its maximum before bias correction."""

from __future__ import annotations

from typing import Any

from gradxform._src import base
from gradxform._src.transforms.adam_variants import scale_by_amsgrad
from gradxform._src.transforms.adaptive import scale_by_adam
from gradxform.torch_optim import _common


def adam_direction(b1: Any, b2: Any, eps: Any, amsgrad: bool) -> base.GradientTransformation:
    """torch's Adam direction ``(m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``; with ``amsgrad``
    ``v_max <- max(v_max, v)`` replaces ``v``: the maximum of the raw moment, taken before
    the bias correction (optax takes it after, over ``v / (1 - b2^t)``).
    """
    if amsgrad:
        return scale_by_amsgrad(b1, b2, eps, max_raw_nu=True)
    return scale_by_adam(b1, b2, eps)


def adam(
    lr: base.ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.Adam`` (defaults ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8``, no decay).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p`` (coupled), or with
    ``decoupled_weight_decay`` ``p <- p (1 - lr weight_decay)`` (that is ``adamw``);
    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``
    (``amsgrad``: ``v_max <- max(v_max, v)`` and ``v_max`` below);
    ``p <- p - lr (m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    Kingma & Ba (2015), "Adam"; Reddi et al. (2018), "On the Convergence of Adam and
    Beyond"; https://pytorch.org/docs/2.13/generated/torch.optim.Adam.html

    Raises ``ValueError`` where torch does: ``lr < 0``, ``eps < 0``, a beta outside
    ``[0, 1)``, ``weight_decay < 0``.
    """
    _common.check_lr(lr)
    b1, b2 = _common.check_eps_betas(eps, betas)
    return _common.torch_optimizer(
        adam_direction(b1, b2, eps, amsgrad),
        lr=lr,
        weight_decay=weight_decay,
        maximize=maximize,
        decoupled=decoupled_weight_decay,
    )


def adamw(
    lr: base.ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.AdamW``: ``adam`` with ``decoupled_weight_decay=True``.

    ``p <- p (1 - lr weight_decay)`` and then Adam's step, so
    ``p <- p - lr ((m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps) + weight_decay p)``.
    torch's default ``weight_decay=1e-2`` (optax's ``adamw`` defaults to ``1e-4``).
    Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization";
    https://pytorch.org/docs/2.13/generated/torch.optim.AdamW.html
    """
    return adam(
        lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True
    )
