"""``torch.optim.Adam`` and ``AdamW``: AMSGrad takes its maximum before bias correction."""

from __future__ import annotations

from typing import Any

from gradxform._src import base
from gradxform._src.transforms.adam import scale_by_adam
from gradxform._src.transforms.adam_variants import scale_by_amsgrad
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

    Args:
        lr: the learning rate, as in ``sgd`` (default 1e-3).
        betas: ``(b1, b2)``, the decay rates of the first and second moments; each in ``[0, 1)``
            (default ``(0.9, 0.999)``).
        eps: added to the denominator; ``>= 0`` (default 1e-8).
        weight_decay: the weight decay, coupled (added to the gradient) unless
            ``decoupled_weight_decay``; ``>= 0`` (default 0).
        amsgrad: use the maximum of the raw second moments, taken before the bias
            correction (default False).
        maximize: as in ``sgd`` (default False).
        decoupled_weight_decay: apply ``weight_decay`` as ``p <- p (1 - lr weight_decay)``
            (AdamW) instead of adding it to the gradient (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states,
        the moments in a ``ScaleByAdamState`` (``count``, ``mu``, ``nu``), or with
        ``amsgrad`` a ``ScaleByAmsgradState`` (also ``nu_max``).

    Raises:
        ValueError: where torch does: ``lr < 0``, ``eps < 0``, a beta outside ``[0, 1)``,
            ``weight_decay < 0``.
    """
    b1, b2 = _common.check_lr_eps_betas(lr, eps, betas)
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

    Args:
        lr: the learning rate, as in ``sgd`` (default 1e-3).
        betas: ``(b1, b2)``, the decay rates of the first and second moments; each in ``[0, 1)``
            (default ``(0.9, 0.999)``).
        eps: added to the denominator; ``>= 0`` (default 1e-8).
        weight_decay: the decoupled weight decay; ``>= 0`` (default 1e-2).
        amsgrad: use the maximum of the raw second moments (default False).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states,
        the moments in a ``ScaleByAdamState`` (``count``, ``mu``, ``nu``), or with
        ``amsgrad`` a ``ScaleByAmsgradState``.

    Raises:
        ValueError: where torch does: ``lr < 0``, ``eps < 0``, a beta outside ``[0, 1)``,
            ``weight_decay < 0``.

    Examples:
        >>> opt = gx.torch_optim.adamw(lr=0.1)  # weight_decay=1e-2
        >>> w = jnp.array([1.0, -2.0])
        >>> state = opt.init(w)
        >>> updates, state = opt.update(jnp.array([0.5, 0.5]), state, w)
        >>> print(np.asarray(updates).round(4))  # -lr * (1 + weight_decay * w), to 1e-8
        [-0.101 -0.098]
    """
    return adam(
        lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True
    )
