"""ADOPT: Adam that converges for any b2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    ``x <- x - lr m`` (``t`` the 0-based step; see ``scale_by_adopt``).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.9999.
        eps: floor of ``sqrt(v_{t-1})`` in the normalisation, ``>= 0``. Default 1e-6.
        mu_dtype: dtype of ``m``; ``None`` (default) keeps the params'.
        nesterov: step along ``b1 m + (1 - b1) d`` instead of ``m``. Default False.
        use_clipping: clip the normalised gradient to ``+-clip_value_fn(t)``; needs real
            params. Default True.
        clip_value_fn: the clipping bound as a function of the 0-based step ``t``.
            Default ``t -> t^0.25``.

    Returns:
        A ``GradientTransformation``; its state chains ``ScaleByAdoptState`` (count,
        ``m``, ``v``) and the learning rate's.

    Examples:
        >>> w = jnp.array([1.0, -2.0, 3.0])
        >>> opt = gx.contrib.adopt(0.1)
        >>> state = opt.init(w)
        >>> for _ in range(3):
        ...     updates, state = opt.update(2 * w, state)  # the gradient of sum(w ** 2)
        ...     w = gx.apply_updates(w, updates)
        >>> print(np.asarray(w).round(4))
        [ 0.9711 -1.971   2.971 ]
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
