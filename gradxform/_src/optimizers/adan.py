"""Adan: adaptive Nesterov momentum."""

from __future__ import annotations

from typing import Any, Callable

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
    mask: Any | Callable[[base.Params], Any] | None = None,
) -> base.GradientTransformation:
    """Adan (Xie et al. 2024, "Adan: Adaptive Nesterov Momentum Algorithm for Faster
    Optimizing Deep Models").

    ``d = g - g_prev`` (0 at first); ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) d``;
    ``n <- b3 n + (1-b3) (g + (1-b2) d)^2``;
    ``x <- x - lr ((m_hat + (1-b2) v_hat) / (sqrt(n_hat + eps_root) + eps) + wd x)``
    (hats: bias-corrected). Defaults ``b1=0.98, b2=0.92, b3=0.99, eps=1e-8,
    eps_root=1e-8, weight_decay=0``. Decay is decoupled (``x <- x - lr wd x``), not the
    paper's proximal ``x / (1 + lr wd)``.
    """
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
