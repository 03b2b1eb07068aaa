"""Sign-based optimizers: every coordinate moves by the same magnitude."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.lion import scale_by_lion
from gradxform._src.transforms.momentum import ema
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.sign import scale_by_sign
from gradxform._src.transforms.weight_decay import add_decayed_weights


def sign_sgd(learning_rate: base.ScalarOrSchedule) -> base.GradientTransformation:
    """signSGD (Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems"): ``x <- x - lr sign(g)``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.

    Returns:
        A ``GradientTransformation`` with state ``(EmptyState(), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(
    learning_rate: base.ScalarOrSchedule,
    beta: jax.typing.ArrayLike = 0.9,
    accumulator_dtype: Any = None,
) -> base.GradientTransformation:
    """Signum, signSGD with momentum (Bernstein et al. 2018):
    ``m <- beta m + (1 - beta) g``; ``x <- x - lr sign(m)``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        beta: decay of the momentum ``m``, in ``[0, 1)``. Default 0.9.
        accumulator_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` with state ``(EmaState(count, ema), EmptyState(),
        EmptyState())`` (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    validate.decay("beta", beta)
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


def lion(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    mu_dtype: Any = None,
    weight_decay: base.ScalarOrSchedule = 1e-3,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    ``x <- x - lr (sign(b1 m + (1 - b1) g) + wd x)``; then ``m <- b2 m + (1 - b2) g``.
    Its steps are larger than Adam's (every coordinate moves by ``lr``): use a 3-10x
    smaller ``lr``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: weight of the momentum in the interpolation whose sign is taken, in
            ``[0, 1)``. Default 0.9.
        b2: decay of the momentum ``m``, in ``[0, 1)``. Default 0.99.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.
        weight_decay: ``wd``, the decoupled weight decay, as in ``adamw``. Default 1e-3.
        mask: which leaves are decayed, as in ``adamw``; ``None`` (default) decays every
            leaf.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByLionState(count, mu),
        EmptyState(), EmptyState())`` (``WeightDecaySchedule(count)`` second for a
        scheduled decay, ``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
        ``update`` needs ``params`` when ``weight_decay != 0``.
    """
    return chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
