"""``torch.optim.Adamax``: Adam with an exponentially weighted infinity norm (torch and
optax agree here, so it is the catalogue's ``scale_by_adamax``)."""

from __future__ import annotations

from gradxform._src import base
from gradxform._src.transforms.adam_variants import scale_by_adamax
from gradxform.torch_optim import _common


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
    b1, b2 = _common.check_eps_betas(eps, betas)
    return _common.torch_optimizer(
        scale_by_adamax(b1, b2, eps), lr=lr, weight_decay=weight_decay, maximize=maximize
    )
