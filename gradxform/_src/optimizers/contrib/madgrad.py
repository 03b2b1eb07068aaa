"""MADGRAD: dual averaging with momentum and a cube-root preconditioner."""

from __future__ import annotations

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.madgrad import scale_by_madgrad
from gradxform._src.transforms.weight_decay import add_decayed_weights


def madgrad(
    learning_rate: base.ScalarOrSchedule,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    eps: float = 1e-6,
) -> base.GradientTransformation:
    """MADGRAD (Defazio & Jelassi 2021, "Adaptivity without Compromise: A Momentumized,
    Adaptive, Dual Averaged Gradient Method for Stochastic Optimization").

    ``g' = g + weight_decay x``, then ``scale_by_madgrad``:
    ``lambda_k = (lr_k + eps) sqrt(k + 1)``; ``S += lambda_k g'^2``; ``s += lambda_k g'``;
    ``z = x_0 - s / (S^(1/3) + eps)``; ``x <- momentum x + (1 - momentum) z``.

    Args:
      learning_rate: ``lr`` (a number or a schedule of the step), ``>= 0``.
      momentum: in ``[0, 1)``; default 0.9.
      weight_decay: L2 coefficient added to the gradient; default 0.
      eps: added to ``lr`` and to the cube root, ``>= 0``; default 1e-6.

    Returns:
      A ``GradientTransformation`` that needs ``params``; state ``(EmptyState,
      MadgradState)`` as in optax.
    """
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate, momentum, eps),
    )
