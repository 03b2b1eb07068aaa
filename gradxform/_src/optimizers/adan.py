"""Adan: adaptive Nesterov momentum."""

from __future__ import annotations

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.adan import scale_by_adan
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def adan(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.98,
    b2: jax.typing.ArrayLike = 0.92,
    b3: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 1e-8,
    weight_decay: base.ScalarOrSchedule = 0.0,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """Adan (Xie et al. 2024, "Adan: Adaptive Nesterov Momentum Algorithm for Faster
    Optimizing Deep Models").

    ``d = g - g_prev`` (0 at first); ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) d``;
    ``n <- b3 n + (1-b3) (g + (1-b2) d)^2``;
    ``x <- x - lr ((m_hat + (1-b2) v_hat) / (sqrt(n_hat + eps_root) + eps) + wd x)``
    (hats: bias-corrected). Decay is decoupled (``x <- x - lr wd x``), not the paper's
    proximal ``x / (1 + lr wd)``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the gradient average ``m``, in ``[0, 1)``. Default 0.98.
        b2: decay of the gradient-difference average ``v``, in ``[0, 1)``. Default 0.92.
        b3: decay of the squared look-ahead average ``n``, in ``[0, 1)``. Default 0.99.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to ``n_hat`` inside the square root, ``>= 0``. Default 1e-8.
        weight_decay: ``wd``, the decoupled weight decay: a finite number or a schedule
            of the step count. Default 0.0 (no decay).
        mask: which leaves are decayed: a tree of bools like the params, or a function
            of the params returning one; ``None`` (default) decays every leaf.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdanState(m, v, n, g, t),
        EmptyState(), EmptyState())``; a scheduled ``weight_decay`` keeps
        ``WeightDecaySchedule(count)`` in the middle, a scheduled ``lr``
        ``ScaleByScheduleState(count)`` last. ``update`` needs ``params`` when
        ``weight_decay != 0``.
    """
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
