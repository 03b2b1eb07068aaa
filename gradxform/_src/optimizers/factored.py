"""Memory-efficient adaptive optimizers: second moments kept per axis, not per element."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.clipping import clip_by_block_rms
from gradxform._src.transforms.factored import scale_by_factored_rms, scale_by_sm3
from gradxform._src.transforms.layerwise import scale_by_param_block_rms
from gradxform._src.transforms.momentum import ema
from gradxform._src.transforms.scaling import scale, scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def adafactor(
    learning_rate: base.ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: jax.typing.ArrayLike = 0.8,
    decay_offset: jax.typing.ArrayLike = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: jax.typing.ArrayLike | None = 1.0,
    momentum: jax.typing.ArrayLike | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: base.ScalarOrSchedule | None = None,
    eps: jax.typing.ArrayLike = 1e-30,
    factored: bool = True,
    weight_decay_mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """Adafactor (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear
    Memory Cost").

    ``d = g / sqrt(V_hat)`` with the factored second moment of ``scale_by_factored_rms``
    (``beta2_t = 1 - (t + 1)^-decay_rate``); ``d <- d / max(1, rms(d) / clipping_threshold)``
    per leaf; ``d <- lr d`` (if ``learning_rate``); ``d <- max(rms(x), 1e-3) d`` (if
    ``multiply_by_parameter_scale``); ``d <- b d_prev + (1 - b) d`` (if ``momentum = b``,
    kept in ``dtype_momentum``); ``d <- d + wd x`` (if ``weight_decay_rate``);
    ``x <- x - d``. (torch's Adafactor differs: see the torch-vs-optax notes.)

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count;
            ``None`` (default) takes the relative step alone.
        min_dim_size_to_factor: a leaf is factored only when its second-largest axis
            is at least this long (so both of its two largest are); a positive int.
            Default 128.
        decay_rate: the exponent of ``beta2_t = 1 - (t - decay_offset + 1)^-decay_rate``,
            ``>= 0``. Default 0.8.
        decay_offset: steps subtracted from ``t`` in ``beta2_t`` (for fine-tuning a
            pretrained model); any number. Default 0.
        multiply_by_parameter_scale: scale the step by ``max(rms(x), 1e-3)``, making
            ``lr`` relative to each leaf's size. Default True.
        clipping_threshold: the per-leaf RMS cap on ``d``, ``> 0``; ``None`` for no
            clipping. Default 1.0.
        momentum: ``b``, the decay of the first moment (not bias-corrected), in ``[0, 1)``;
            ``None`` (default) keeps no first moment.
        dtype_momentum: storage dtype of the first moment. Default ``jnp.float32``.
        weight_decay_rate: ``wd``, added as ``wd x`` after the scaling: a finite number
            or a schedule of the step count; ``None`` (default) for no decay.
        eps: ``epsilon`` added to ``g^2`` before averaging, ``>= 0``. Default 1e-30.
        factored: factor the second moment of leaves of rank ``>= 2``; False keeps it
            per element. Default True.
        weight_decay_mask: which leaves are decayed: a tree of bools like the params,
            or a function of the params returning one; ``None`` (default) decays all.

    Returns:
        A ``GradientTransformation`` whose state is a tuple with one entry per step
        above, in that order: ``FactoredState(count, v_row, v_col, v)`` first, then
        ``EmptyState()`` for the stateless steps, ``ScaleByScheduleState(count)`` for a
        scheduled ``lr``, ``EmaState(count, ema)`` with ``momentum`` and
        ``WeightDecaySchedule(count)`` for a scheduled decay. ``update`` needs
        ``params``.
    """
    if clipping_threshold is not None:
        validate.positive("clipping_threshold", clipping_threshold)
    if momentum is not None:
        validate.decay("momentum", momentum)
    if weight_decay_rate is not None and not callable(weight_decay_rate):
        validate.finite("weight_decay_rate", weight_decay_rate)
    members = [
        scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)
    ]
    if clipping_threshold is not None:
        members.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        members.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        members.append(scale_by_param_block_rms())
    if momentum is not None:
        members.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        members.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    members.append(scale(-1.0))
    return chain(*members)


def sm3(
    learning_rate: base.ScalarOrSchedule, momentum: jax.typing.ArrayLike = 0.9
) -> base.GradientTransformation:
    """SM3 (Anil et al. 2019, "Memory-Efficient Adaptive Optimization").

    Per element ``i`` of a rank ``>= 2`` tensor, with one accumulator ``mu_r`` per axis:
    ``nu(i) = g(i)^2 + min_r mu_r(i_r)``, ``mu_r(j) <- max_{i: i_r = j} nu(i)``;
    vectors and scalars keep ``nu <- nu + g^2`` (AdaGrad). ``b <- momentum b +
    (1 - momentum) g / sqrt(nu + 1e-8)``; ``x <- x - lr b``.
    Works on 0-d leaves (optax 0.2.8 raises on them).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        momentum: decay of ``b``, in ``[0, 1)``. Default 0.9.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleBySM3State(mu, nu),
        EmptyState())`` (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    validate.decay("momentum", momentum)
    return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))
