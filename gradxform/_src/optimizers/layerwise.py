"""Layer-wise optimizers: steps scaled per leaf by the ratio of parameter and update norms.

A leaf of the parameter tree is one "layer" (a weight matrix, a bias vector).
"""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.partition import masked
from gradxform._src.transforms.adam import scale_by_adam
from gradxform._src.transforms.layerwise import scale_by_novograd
from gradxform._src.transforms.momentum import trace
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.trust_ratio import scale_by_trust_ratio
from gradxform._src.transforms.weight_decay import add_decayed_weights


def lamb(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-6,
    eps_root: jax.typing.ArrayLike = 0.0,
    weight_decay: base.ScalarOrSchedule = 0.0,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT
    in 76 minutes").

    Per leaf: ``r = m_hat / (sqrt(v_hat + eps_root) + eps) + wd x`` (Adam's direction
    plus decoupled decay); ``x <- x - lr (||x|| / ||r||) r`` (ratio 1 where either norm
    is 0).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-6.
        eps_root: added to ``v_hat`` inside the square root, ``>= 0``. Default 0.0.
        weight_decay: ``wd``, the decoupled weight decay: a finite number or a schedule
            of the step count. Default 0.0.
        mask: which leaves are decayed: a tree of bools like the params, or a function
            of the params returning one; ``None`` (default) decays every leaf.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByAdamState(count, mu, nu),
        EmptyState(), EmptyState(), EmptyState())`` (``WeightDecaySchedule(count)``
        second for a scheduled decay, ``ScaleByScheduleState(count)`` last for a
        scheduled ``lr``). ``update`` needs ``params``.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


def lars(
    learning_rate: base.ScalarOrSchedule,
    weight_decay: base.ScalarOrSchedule = 0.0,
    weight_decay_mask: base.MaskOrFn = True,
    trust_coefficient: jax.typing.ArrayLike = 0.001,
    eps: jax.typing.ArrayLike = 0.0,
    trust_ratio_mask: base.MaskOrFn = True,
    momentum: jax.typing.ArrayLike = 0.9,
    nesterov: bool = False,
) -> base.GradientTransformation:
    """LARS (You et al. 2017, "Large Batch Training of Convolutional Networks").

    Per leaf: ``d = g + wd x``; ``d <- tc ||x|| / (||d|| + eps) d`` (on the leaves of
    ``trust_ratio_mask``; ratio 1 where a norm is 0); ``b <- mu b + lr d``;
    ``x <- x - b`` (``x - (mu b + lr d)`` with ``nesterov``).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        weight_decay: ``wd``, a finite number or a schedule of the step count.
            Default 0.0.
        weight_decay_mask: which leaves are decayed: a tree of bools like the params,
            or a function of the params returning one. Default True (every leaf).
        trust_coefficient: ``tc``, ``>= 0``. Default 0.001.
        eps: added to ``||d||`` in the denominator, ``>= 0``. Default 0.0.
        trust_ratio_mask: which leaves get the trust ratio, as ``weight_decay_mask``.
            Default True (every leaf).
        momentum: ``mu``, ``>= 0``. Default 0.9.
        nesterov: use Nesterov momentum. Default False.

    Returns:
        A ``GradientTransformation`` with state ``(EmptyState(),
        MaskedState(inner_state=EmptyState()), EmptyState(), TraceState(trace))``
        (``WeightDecaySchedule(count)`` first for a scheduled decay,
        ``ScaleByScheduleState(count)`` third for a scheduled ``lr``). ``update`` needs
        ``params``.
    """
    validate.non_negative("momentum", momentum)
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(scale_by_trust_ratio(0.0, trust_coefficient, eps), trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov),
    )


def _fromage_step_and_decay(lr: Any) -> tuple[Any, Any]:
    """Fromage's ``(lr / sqrt(1 + lr^2), 1 / sqrt(1 + lr^2) - 1)`` for a rate ``lr``."""
    shrink = 1 / (1 + lr**2) ** 0.5
    return lr * shrink, shrink - 1


def fromage(
    learning_rate: base.ScalarOrSchedule, min_norm: jax.typing.ArrayLike = 1e-6
) -> base.GradientTransformation:
    """Fromage (Bernstein et al. 2020, "On the distance between two neural networks and
    the stability of learning").

    Per leaf: ``x <- (x - lr (||x|| / ||g||) g) / sqrt(1 + lr^2)``, norms floored at
    ``min_norm`` (ratio 1 where a norm is 0).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        min_norm: lower bound on both norms, ``>= 0``. Default 1e-6.

    Returns:
        A ``GradientTransformation`` with state ``(EmptyState(), EmptyState(),
        EmptyState())``; a scheduled ``lr`` keeps ``ScaleByScheduleState(count)`` second
        and ``WeightDecaySchedule(count)`` third. ``update`` needs ``params``.
    """
    validate.non_negative("min_norm", min_norm)
    step: base.ScalarOrSchedule
    decay: base.ScalarOrSchedule
    if callable(learning_rate):
        lr_fn = learning_rate
        step = lambda count: _fromage_step_and_decay(lr_fn(count))[0]
        decay = lambda count: _fromage_step_and_decay(lr_fn(count))[1]
    else:
        validate.non_negative("learning_rate", learning_rate)
        step, decay = _fromage_step_and_decay(learning_rate)
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(step),
        add_decayed_weights(decay),
    )


def novograd(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.25,
    eps: jax.typing.ArrayLike = 1e-6,
    eps_root: jax.typing.ArrayLike = 0.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
) -> base.GradientTransformation:
    """NovoGrad (Ginsburg et al. 2019, "Stochastic Gradient Methods with Layer-wise
    Adaptive Moments for Training of Deep Networks").

    Per leaf: ``v <- b2 v + (1 - b2) ||g||^2`` (``v_1 = ||g_1||^2``, a scalar);
    ``m <- b1 m + g / (sqrt(v + eps_root) + eps) + wd x`` (``m_1`` without ``b1 m``);
    ``x <- x - lr m``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the per-leaf second moment ``v``, in ``[0, 1)``. Default 0.25.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-6.
        eps_root: added to ``v`` inside the square root, ``>= 0``. Default 0.0.
        weight_decay: ``wd``, a finite number. Default 0.0.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByNovogradState(count, mu, nu),
        EmptyState())`` (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
        ``update`` needs ``params`` when ``weight_decay != 0``.
    """
    return chain(
        scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
        scale_by_learning_rate(learning_rate),
    )
