"""ADOPT: Adam that converges for any b2."""

from __future__ import annotations

from typing import Any, Callable

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.adopt import scale_by_adopt
from gradxform._src.transforms.scaling import scale_by_learning_rate


def adopt(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.9999,
    eps: jax.typing.ArrayLike = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = lambda t: t**0.25,
) -> base.GradientTransformation:
    """ADOPT (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any beta_2
    with the Optimal Rate").

    ``d = clip(g / max(sqrt(v_{t-1}), eps), +-t^0.25)``; ``m <- b1 m + (1 - b1) d``;
    ``v <- b2 v + (1 - b2) g^2`` (``v_0 = g_0^2``, no move on step 0);
    ``x <- x - lr m``. Defaults ``b1=0.9, b2=0.9999, eps=1e-6, use_clipping=True``.
    """
    return chain(
        scale_by_adopt(
            b1,
            b2,
            eps,
            mu_dtype,
            nesterov=nesterov,
            use_clipping=use_clipping,
            clip_value_fn=clip_value_fn,
        ),
        scale_by_learning_rate(learning_rate),
    )
