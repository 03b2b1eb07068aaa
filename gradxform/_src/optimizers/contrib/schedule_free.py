"""Schedule-free SGD and AdamW."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.optimizers.sgd import sgd
from gradxform._src.schedules.join import warmup_constant_schedule
from gradxform._src.transforms.adagrad_rmsprop import scale_by_rms
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.schedule_free import schedule_free
from gradxform._src.transforms.weight_decay import add_decayed_weights


def _with_warmup(learning_rate: Any, warmup_steps: int | None) -> Any:
    if warmup_steps is None:
        return learning_rate
    validate.positive_int("warmup_steps", warmup_steps)
    return warmup_constant_schedule(0.0, learning_rate, warmup_steps)


def schedule_free_sgd(
    learning_rate: jax.typing.ArrayLike = 1.0,
    warmup_steps: int | None = None,
    b1: jax.typing.ArrayLike = 0.9,
    weight_decay: jax.typing.ArrayLike | None = None,
    weight_lr_power: jax.typing.ArrayLike = 2.0,
    state_dtype: Any = None,
) -> base.GradientTransformation:
    """Schedule-free SGD (Defazio et al. 2024, "The Road Less Scheduled").

    ``z <- z - lr_t (g(y) + wd y)``; ``x <- (1 - c_t) x + c_t z`` with
    ``c_t = lr_max^2 / sum_s lr_max,s^2`` (``weight_lr_power=2``);
    ``y <- b1 x + (1 - b1) z`` (the parameters). ``lr_t`` rises linearly from 0 over
    ``warmup_steps``. Evaluate at ``schedule_free_eval_params(state, params)``.

    Args:
        learning_rate: the peak ``lr``, a number ``>= 0`` (a schedule of the step count
            when ``warmup_steps`` is ``None``). Default 1.0.
        warmup_steps: steps of the linear warm-up from 0, ``>= 1``; ``None`` (default)
            has none.
        b1: interpolation between ``x`` and ``z``, in ``(0, 1)``. Default 0.9.
        weight_decay: ``wd``, added to the gradient at ``y``; any finite number, or
            ``None`` (default) for none.
        weight_lr_power: the exponent ``p`` of the averaging weights
            ``w_t = max_{s<=t} lr_s^p``; any finite number. Default 2.0.
        state_dtype: dtype of ``z``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` with state ``ScheduleFreeState`` (``b1``, the weight
        sum, the 1-based step count, the largest learning rate, the SGD state and ``z``);
        ``update`` needs ``params``.
    """
    learning_rate = _with_warmup(learning_rate, warmup_steps)
    inner = sgd(learning_rate)
    if weight_decay is not None:
        inner = chain(add_decayed_weights(weight_decay), inner)
    return schedule_free(inner, learning_rate, b1, weight_lr_power, state_dtype)


def schedule_free_adamw(
    learning_rate: jax.typing.ArrayLike = 0.0025,
    warmup_steps: int | None = None,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 0.0,
    weight_lr_power: jax.typing.ArrayLike = 2.0,
    state_dtype: Any = None,
) -> base.GradientTransformation:
    """Schedule-free AdamW (Defazio et al. 2024, "The Road Less Scheduled").

    ``v <- b2 v + (1 - b2) g(y)^2``;
    ``z <- z - lr_t (g(y) / (sqrt(v / (1 - b2^t)) + eps) + wd y)``; ``x`` and ``y`` as in
    ``schedule_free_sgd`` (no first moment: ``b1`` is the interpolation). Defaults
    ``learning_rate=0.0025, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0``. Evaluate at
    ``schedule_free_eval_params(state, params)``.

    Args:
        learning_rate: the peak ``lr``, a number ``>= 0`` (a schedule of the step count
            when ``warmup_steps`` is ``None``). Default 0.0025.
        warmup_steps: steps of the linear warm-up from 0, ``>= 1``; ``None`` (default)
            has none.
        b1: interpolation between ``x`` and ``z``, in ``(0, 1)``. Default 0.9.
        b2: decay of ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to ``sqrt(v_hat)``, ``>= 0``. Default 1e-8.
        weight_decay: ``wd``, added to the preconditioned gradient; any finite number.
            Default 0.0.
        weight_lr_power: the exponent ``p`` of the averaging weights
            ``w_t = max_{s<=t} lr_s^p``; any finite number. Default 2.0.
        state_dtype: dtype of ``z``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` with state ``ScheduleFreeState`` (``b1``, the weight
        sum, the 1-based step count, the largest learning rate, the inner AdamW state and
        ``z``); ``update`` needs ``params``.
    """
    learning_rate = _with_warmup(learning_rate, warmup_steps)
    inner = chain(
        scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )
    return schedule_free(inner, learning_rate, b1, weight_lr_power, state_dtype)
