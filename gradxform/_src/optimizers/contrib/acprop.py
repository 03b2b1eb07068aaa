"""ACProp: an asynchronous, centred adaptive step."""

from __future__ import annotations

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.acprop import scale_by_acprop
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def acprop(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    weight_decay: jax.typing.ArrayLike = 0.0,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """ACProp (Zhuang et al. 2021, "Momentum Centering and Asynchronous Update for
    Adaptive Gradient Methods"), as optax.contrib 0.2.8 has it.

    ``x <- x - lr (g / (sqrt(s_hat_{t-1}) + eps) + weight_decay x)``, ``s`` the EMA of
    ``|g - m|^2`` (see ``scale_by_acprop``; ``s_hat = 1`` on the first step).

    Args:
      learning_rate: ``lr`` (a number or a schedule of the step), ``>= 0``.
      b1: first-moment decay, in ``[0, 1)``; default 0.9.
      b2: belief decay, in ``[0, 1)``; default 0.999.
      eps: added to the root, ``>= 0``; default 1e-16.
      eps_root: added to ``s`` each step, ``>= 0``; default 1e-16.
      weight_decay: decoupled weight decay; default 0.
      mask: which leaves get the weight decay: a tree of bools like the params or a
        function of the params returning one; ``None`` (default) decays every leaf.

    Returns:
      A ``GradientTransformation``; state ``(ScaleByBeliefState, EmptyState, scale
      state)`` as in optax.
    """
    return chain(
        scale_by_acprop(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
