"""DP-SGD: SGD on clipped, noised, averaged per-example gradients."""

from __future__ import annotations

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.momentum import trace
from gradxform._src.transforms.private_aggregate import differentially_private_aggregate
from gradxform._src.transforms.scaling import scale_by_learning_rate


def dpsgd(
    learning_rate: base.ScalarOrSchedule,
    l2_norm_clip: jax.typing.ArrayLike,
    noise_multiplier: jax.typing.ArrayLike,
    seed: int,
    momentum: jax.typing.ArrayLike | None = None,
    nesterov: bool = False,
) -> base.GradientTransformation:
    """DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy"): the updates
    are per-example gradients with a leading batch axis of size ``B``.

    ``g = (sum_b min(1, C / ||g_b||) g_b + sigma C xi) / B`` (see
    ``differentially_private_aggregate``); with ``momentum`` ``v <- momentum v + g``
    (Nesterov: ``g + momentum v``); ``x <- x - lr v``.

    Args:
      learning_rate: ``lr`` (a number or a schedule), ``>= 0``.
      l2_norm_clip: per-example clipping norm ``C``, ``>= 0``.
      noise_multiplier: ``sigma``, ``>= 0``.
      seed: the int seed of the noise's PRNG key.
      momentum: heavy-ball decay in ``[0, 1)``, or ``None`` (none, the default).
      nesterov: Nesterov momentum; default ``False``.

    Returns:
      A ``GradientTransformation``; state ``(DifferentiallyPrivateAggregateState,
      momentum state, scale state)`` as in optax.
    """
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=seed),
        trace(decay=momentum, nesterov=nesterov) if momentum is not None else base.identity(),
        scale_by_learning_rate(learning_rate),
    )
