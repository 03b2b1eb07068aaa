"""AdaGrad: per-coordinate steps shrinking with the accumulated squared gradient."""

from __future__ import annotations

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.adagrad_rmsprop import scale_by_rss
from gradxform._src.transforms.scaling import scale_by_learning_rate


def adagrad(
    learning_rate: base.ScalarOrSchedule,
    initial_accumulator_value: jax.typing.ArrayLike = 0.1,
    eps: jax.typing.ArrayLike = 1e-7,
) -> base.GradientTransformation:
    """AdaGrad (Duchi et al. 2011, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization").

    ``s <- s + g^2`` (``s_0 = initial_accumulator_value``);
    ``x <- x - lr g / sqrt(s + eps)`` (no move where ``s = 0``).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        initial_accumulator_value: ``s_0``, the starting sum of squares, ``>= 0``.
            Default 0.1 (optax's; torch's is 0).
        eps: added to ``s`` inside the square root, ``>= 0``. Default 1e-7 (optax's;
            torch's is 1e-10, outside the root).

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByRssState(sum_of_squares),
        EmptyState())`` (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return chain(
        scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )
