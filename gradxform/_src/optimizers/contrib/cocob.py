"""COCOB: coin betting instead of a learning rate."""

from __future__ import annotations

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.cocob import scale_by_cocob
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def cocob(
    learning_rate: base.ScalarOrSchedule = 1.0,
    alpha: jax.typing.ArrayLike = 100.0,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 0.0,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """COCOB-Backprop (Orabona & Tommasi 2017, "Training Deep Networks without Learning
    Rates Through Coin Betting").

    ``g' = lr (g + weight_decay x)``, then ``scale_by_cocob``'s bet on ``g'``:
    ``x <- x_0 + C (L + R) / (L max(G + L, alpha L))`` per coordinate.

    Args:
      learning_rate: multiplier on the gradient fed to the bet (a number or a schedule of
        the step), ``>= 0``; default 1 (the algorithm has no learning rate).
      alpha: bound on the early bets, ``> 0``; default 100.
      eps: initial gradient-scale estimate, ``> 0``; default 1e-8.
      weight_decay: L2 coefficient added to the gradient; default 0.
      mask: which leaves get the weight decay: a tree of bools like the params or a
        function of the params returning one; ``None`` (default) decays every leaf.

    Returns:
      A ``GradientTransformation``; its state is ``(EmptyState, scale state,
      COCOBState)`` as in optax.
    """
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )
