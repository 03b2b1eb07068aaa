"""AdEMAMix and its simplified form."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.ademamix import (
    scale_by_ademamix,
    scale_by_simplified_ademamix,
)
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


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
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """AdEMAMix (Pagliardini et al. 2024, "The AdEMAMix Optimizer: Better, Faster, Older").

    ``m1 <- b1 m1 + (1-b1) g``; ``m2 <- b3 m2 + (1-b3) g``; ``v <- b2 v + (1-b2) g^2``;
    ``x <- x - lr ((m1_hat + alpha m2) / (sqrt(v_hat + eps_root) + eps) + wd x)``.
    ``m1_hat = m1 / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``; ``m2`` is not bias-corrected.
    ``b3`` and ``alpha`` may be schedules (the paper warms both up).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the fast first moment ``m1``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        b3: decay of the slow first moment ``m2``, in ``[0, 1)``, or a schedule of the
            step count. Default 0.9999.
        alpha: weight of ``m2``, ``>= 0``, or a schedule of the step count. Default 5.0.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to ``v_hat`` inside the square root, ``>= 0``. Default 0.0.
        mu_dtype: dtype of the first moments; ``None`` (default) keeps the params'.
        weight_decay: ``wd``, the decoupled weight decay; any finite number. Default 0.0.
        mask: which leaves are decayed: a tree of bools like the params, or a function
            of the params returning one; ``None`` (default) decays every leaf.

    Returns:
        A ``GradientTransformation``; its state chains ``ScaleByAdemamixState`` (count,
        ``m1``, ``m2``, ``v``), the weight decay's and the learning rate's. ``update``
        needs ``params`` when ``weight_decay != 0``.

    Examples:
        >>> params = {"w": jnp.array([1.0, -2.0, 3.0])}
        >>> opt = gx.contrib.ademamix(0.1, alpha=2.0)
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = gx.apply_updates(params, updates)
        >>> print(np.asarray(params["w"]).round(4))
        [ 0.7015 -1.7005  2.7003]
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
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """Simplified AdEMAMix (Morwani et al. 2025, "Connections between Schedule-Free
    Optimizers, AdEMAMix, and Accelerated SGD Variants").

    ``m <- b1 m + g``; ``n <- b2 n + (1-b2) g^2``;
    ``x <- x - lr ((m + alpha g) / (sqrt(n_hat + eps_root) + eps) + wd x)``.
    ``n_hat = n / (1 - b2^t)``; ``m`` is an accumulated (not averaged) sum.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the accumulator ``m``, in ``[0, 1)``. Default 0.99.
        b2: decay of the second moment ``n``, in ``[0, 1)``. Default 0.95.
        alpha: weight of the current gradient, ``>= 0``, or a schedule of the step count.
            Default 0.0.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to ``n_hat`` inside the square root, ``>= 0``. Default 0.0.
        weight_decay: ``wd``, the decoupled weight decay; any finite number. Default 0.0.
        mask: which leaves are decayed: a tree of bools like the params, or a function
            of the params returning one; ``None`` (default) decays every leaf.

    Returns:
        A ``GradientTransformation``; its state chains ``ScaleBySimplifiedAdEMAMixState``
        (count, ``m``, ``n``), the weight decay's and the learning rate's. ``update``
        needs ``params`` when ``weight_decay != 0``.
    """
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
