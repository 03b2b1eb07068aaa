"""Optimizers that divide by a running root-mean-square: RMSProp and AdaDelta."""

from __future__ import annotations

import jax

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.adadelta import scale_by_adadelta
from gradxform._src.transforms.adagrad_rmsprop import scale_by_rms, scale_by_stddev
from gradxform._src.transforms.momentum import trace
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def rmsprop(
    learning_rate: base.ScalarOrSchedule,
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: jax.typing.ArrayLike | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> base.GradientTransformation:
    """RMSProp (Tieleman & Hinton 2012, lecture 6.5); centred form from Graves (2013),
    "Generating Sequences With Recurrent Neural Networks".

    ``v <- decay v + (1 - decay) g^2`` (``v_0 = initial_scale``); ``centered`` also keeps
    ``m <- decay m + (1 - decay) g`` and uses ``v - m^2``; ``bias_correction`` divides
    both by ``1 - decay^t``. ``d = g / sqrt(v + eps)`` (``eps_in_sqrt``) or
    ``g / (sqrt(v) + eps)``; then ``x <- x - lr d``, or with ``momentum = mu``
    ``b <- mu b + lr d``, ``x <- x - b`` (``x <- x - (mu b + lr d)`` with ``nesterov``).
    torch's ``RMSprop`` is ``eps_in_sqrt=False, decay=0.99``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        decay: decay of ``v`` (and ``m``), in ``[0, 1)``. Default 0.9.
        eps: the stabiliser of the denominator, ``>= 0``. Default 1e-8.
        initial_scale: ``v_0``, ``>= 0``. Default 0.0.
        eps_in_sqrt: add ``eps`` inside the square root (optax's) rather than outside
            (torch's). Default True.
        centered: subtract the squared mean ``m^2`` from ``v`` (Graves). Default False.
        momentum: ``mu``, ``>= 0``; ``None`` (default) for no momentum buffer.
        nesterov: use Nesterov momentum; ignored without ``momentum``. Default False.
        bias_correction: divide ``v`` (and ``m``) by ``1 - decay^t``. Default False.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByRmsState(nu), EmptyState(),
        EmptyState())``: ``ScaleByRStdDevState(mu, nu)`` first when ``centered``,
        ``ScaleByRmsWithCountState(count, nu)`` or
        ``ScaleByRStdDevWithCountState(count, mu, nu)`` with ``bias_correction``,
        ``ScaleByScheduleState(count)`` second for a scheduled ``lr`` and
        ``TraceState(trace)`` last with ``momentum``.
    """
    if momentum is not None:
        validate.non_negative("momentum", momentum)
    scaling = scale_by_stddev if centered else scale_by_rms
    return chain(
        scaling(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov) if momentum is not None else base.identity(),
    )


def adadelta(
    learning_rate: base.ScalarOrSchedule | None = 1.0,
    rho: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-6,
    weight_decay: base.ScalarOrSchedule = 0.0,
    weight_decay_mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """AdaDelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method").

    ``g <- g + wd x`` (coupled decay); ``E[g^2] <- rho E[g^2] + (1 - rho) g^2``;
    ``d = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g``;
    ``E[dx^2] <- rho E[dx^2] + (1 - rho) d^2``; ``x <- x - lr d``.

    The default ``learning_rate=1.0`` is the paper's and torch's. optax 0.2.8 defaults to
    ``None``, which skips the sign flip and *ascends*; here ``None`` means 1.0 as well.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count;
            ``None`` means 1.0. Default 1.0.
        rho: decay of both running averages, in ``[0, 1)``. Default 0.9.
        eps: added inside both square roots, ``>= 0``. Default 1e-6.
        weight_decay: ``wd``, the coupled (L2) decay: a finite number or a schedule of
            the step count. Default 0.0.
        weight_decay_mask: which leaves are decayed: a tree of bools like the params,
            or a function of the params returning one; ``None`` (default) decays all.

    Returns:
        A ``GradientTransformation`` with state ``(EmptyState(),
        ScaleByAdaDeltaState(e_g, e_x), EmptyState())`` (``WeightDecaySchedule(count)``
        first for a scheduled decay, ``ScaleByScheduleState(count)`` last for a
        scheduled ``lr``). ``update`` needs ``params`` when ``weight_decay != 0``.
    """
    if learning_rate is None:
        learning_rate = 1.0
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(learning_rate),
    )
