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

    Args:
        lr: the learning rate, as in ``sgd`` (default 2e-3).
        betas: ``(b1, b2)``, as in ``adam`` (default ``(0.9, 0.999)``).
        eps: added to ``|g|`` in the infinity norm; ``>= 0`` (default 1e-8).
        weight_decay: coupled weight decay, as in ``sgd``; ``>= 0`` (default 0).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states,
        ``m`` and ``n`` in a ``ScaleByAdamState`` (``count``, ``mu``, ``nu``).

    Raises:
        ValueError: where torch does, as ``adam``.
    """
    b1, b2 = _common.check_lr_eps_betas(lr, eps, betas)
    return _common.torch_optimizer(
        scale_by_adamax(b1, b2, eps), lr=lr, weight_decay=weight_decay, maximize=maximize
    )
