"""GaLore: a memory-efficient optimizer on low-rank gradient projections."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.galore import scale_by_galore
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def galore(
    learning_rate: base.ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: base.GradientTransformation | None = None,
    weight_decay: jax.typing.ArrayLike = 0.0,
    mask: base.MaskOrFn = None,
    weight_dimension_numbers: Any = None,
) -> base.GradientTransformation:
    """GaLore (Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient
    Low-Rank Projection"): Adam (or ``base_optimizer``) on ``R = P^T G``, the update
    projected back, ``x <- x - lr (scale P N + weight_decay x)``; see
    ``scale_by_galore``.

    Args:
      learning_rate: ``lr`` (a number or a schedule), ``>= 0``.
      rank: projection rank, an int ``>= 1``; default 128.
      update_proj_gap: steps between SVD refreshes of the projector, ``>= 1``;
        default 200.
      scale: multiplier on the projected-back update; default 1.
      base_optimizer: run on the projected gradients; default ``scale_by_adam()``.
      weight_decay: decoupled weight decay; default 0.
      mask: which leaves get the weight decay: a tree of bools like the params or a
        function of the params returning one; ``None`` (default) decays every leaf.
      weight_dimension_numbers: which leaves are projected, and their row and column
        axes (see ``scale_by_galore``); default every 2-d leaf.

    Returns:
      A ``GradientTransformation``; state ``(GaLoreState, EmptyState, scale state)``
      as in optax.
    """
    return chain(
        scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
