"""DoG and DoWG: parameter-free SGD whose step is distance over gradients."""

from __future__ import annotations

from typing import Literal

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.dog import scale_by_dog, scale_by_dowg
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def _decayed_and_scaled(
    direction: base.GradientTransformation, learning_rate, weight_decay, mask
) -> base.GradientTransformation:
    """``chain(add_decayed_weights or identity, direction, scale_by_learning_rate)``: optax's
    state layout for DoG and DoWG."""
    decay = base.identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return chain(decay, direction, scale_by_learning_rate(learning_rate))


def dog(
    learning_rate: base.ScalarOrSchedule = 1.0,
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], jax.typing.ArrayLike] = (
        "heuristic",
        1e-6,
    ),
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike | None = None,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """DoG, Distance over Gradients (Ivgi et al. 2023, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule").

    ``g' = g + weight_decay x``; ``r_bar = max_k ||x_k - x_0||``;
    ``G = sum_k ||g'_k||^2``; ``x <- x - lr r_bar / sqrt(G + eps) g'``.

    Args:
      learning_rate: multiplier on DoG's step (a number or a schedule), ``>= 0``;
        default 1.
      init_step: ``(tag, value)``: ``"heuristic"`` (``r_bar_0 = value (1 + ||x_0||)``,
        the default with 1e-6; the paper suggests 1e-4 with batch normalisation),
        ``"distance"`` (``r_bar_0 = value``) or ``"learning_rate"`` (first step
        ``value g``).
      eps: added to ``G``, ``>= 0``; default 1e-8.
      weight_decay: L2 coefficient added to the gradient; default ``None`` (none).
      mask: which leaves get the weight decay: a tree of bools like the params or a
        function of the params returning one; ``None`` (default) decays every leaf.

    Returns:
      A ``GradientTransformation`` that needs ``params``; state ``(decay state,
      DoGState, scale state)`` as in optax.
    """
    return _decayed_and_scaled(scale_by_dog(init_step, eps), learning_rate, weight_decay, mask)


def dowg(
    learning_rate: base.ScalarOrSchedule = 1.0,
    init_estim_sq_dist: jax.typing.ArrayLike | None = None,
    eps: jax.typing.ArrayLike = 1e-4,
    weight_decay: jax.typing.ArrayLike | None = None,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """DoWG, Distance over Weighted Gradients (Khaled et al. 2023, "DoWG Unleashed: An
    Efficient Universal Parameter-Free Gradient Descent Method").

    ``g' = g + weight_decay x``; ``r_bar^2 = max_k ||x_k - x_0||^2``;
    ``v = sum_k r_bar_k^2 ||g'_k||^2``; ``x <- x - lr r_bar^2 / (sqrt(v) + eps) g'``.

    Args:
      learning_rate: multiplier on DoWG's step (a number or a schedule), ``>= 0``;
        default 1.
      init_estim_sq_dist: initial guess of ``r_bar^2``, ``>= 0``; default ``None``
        (``eps``).
      eps: added to ``sqrt(v)``, ``>= 0``; default 1e-4.
      weight_decay: as in ``dog``; default ``None`` (none).
      mask: as in ``dog``; default ``None`` (every leaf).

    Returns:
      As ``dog``, with a ``DoWGState`` in the middle.
    """
    return _decayed_and_scaled(
        scale_by_dowg(init_estim_sq_dist, eps), learning_rate, weight_decay, mask
    )
