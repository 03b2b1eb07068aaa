"""AdEMAMix and its simplified form."""

from __future__ import annotations

from typing import Any, Callable

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.ademamix import (
    scale_by_ademamix,
    scale_by_simplified_ademamix,
)
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights

MaskOrFn = Any | Callable[[base.Params], Any] | None


def ademamix(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    b3: base.ScalarOrSchedule = 0.9999,
    alpha: base.ScalarOrSchedule = 5.0,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    weight_decay: jax.typing.ArrayLike = 0.0,
    mask: MaskOrFn = None,
) -> base.GradientTransformation:
    """AdEMAMix (Pagliardini et al. 2024, "The AdEMAMix Optimizer: Better, Faster, Older").

    ``m1 <- b1 m1 + (1-b1) g``; ``m2 <- b3 m2 + (1-b3) g``; ``v <- b2 v + (1-b2) g^2``;
    ``x <- x - lr ((m1_hat + alpha m2) / (sqrt(v_hat + eps_root) + eps) + wd x)``.
    Defaults ``b1=0.9, b2=0.999, b3=0.9999, alpha=5, eps=1e-8, eps_root=0,
    weight_decay=0``; ``b3`` and ``alpha`` may be schedules (the paper warms both up).
    """
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def simplified_ademamix(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.99,
    b2: jax.typing.ArrayLike = 0.95,
    alpha: base.ScalarOrSchedule = 0.0,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    mask: MaskOrFn = None,
) -> base.GradientTransformation:
    """Simplified AdEMAMix (Morwani et al. 2025, "Connections between Schedule-Free
    Optimizers, AdEMAMix, and Accelerated SGD Variants").

    ``m <- b1 m + g``; ``n <- b2 n + (1-b2) g^2``;
    ``x <- x - lr ((m + alpha g) / (sqrt(n_hat + eps_root) + eps) + wd x)``.
    Defaults ``b1=0.99, b2=0.95, alpha=0, eps=1e-8, eps_root=0, weight_decay=0``.
    """
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
