"""Prodigy: Adam whose learning rate is estimated from the distance travelled."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import lowest_dtype


class ProdigyState(NamedTuple):
    """The state of ``scale_by_prodigy`` (optax's ``prodigy`` state).

    Attributes:
        exp_avg: the first moment ``m`` of ``d g``, a tree like the params, in their
            dtypes.
        exp_avg_sq: the second moment ``v`` of ``d g``, a tree like the params, in their
            dtypes.
        grad_sum: the weighted gradient sum ``s``, a tree like the params, in their
            dtypes.
        params0: the params ``x_0`` given to ``init``.
        estim_lr: the distance estimate ``d``, a scalar in the params' lowest-precision
            float dtype.
        numerator_weighted: the weighted progress ``r``, a scalar in the same dtype.
        count: int32 scalar, the number of updates made so far.
    """

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def scale_by_prodigy(
    learning_rate: base.ScalarOrSchedule = 1.0,
    betas: tuple[jax.typing.ArrayLike, jax.typing.ArrayLike] = (0.9, 0.999),
    beta3: jax.typing.ArrayLike | None = None,
    eps: jax.typing.ArrayLike = 1e-8,
    estim_lr0: jax.typing.ArrayLike = 1e-6,
    estim_lr_coef: jax.typing.ArrayLike = 1.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    safeguard_warmup: bool = False,
) -> base.GradientTransformation:
    """Prodigy's step (Mishchenko & Defazio 2024, "Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner"), the learning rate included; the descent step is ``-u``.

    With ``d`` the distance estimate (``d_0 = estim_lr0``), ``lr_t`` the learning rate
    (a schedule of the 0-based step) and ``(b1, b2) = betas``, ``b3 = sqrt(b2)`` by default:
    ``dlr = d lr_t sqrt(1 - b2^t) / (1 - b1^t)``;
    ``m <- b1 m + (1 - b1) d g``; ``v <- b2 v + (1 - b2) d^2 g^2``;
    ``s <- b3 s + (d / d_0) dlr g`` (``(d / d_0) d g`` with ``safeguard_warmup``);
    ``r <- b3 r + (d / d_0) dlr <g, x_0 - x>``;
    ``d <- max(d, estim_lr_coef r / ||s||_1)`` (unchanged while ``s = 0``);
    ``u <- dlr (m / (sqrt(v) + d_new eps) + weight_decay x)`` (``dlr`` from the old ``d``,
    the ``eps`` term from the new one, as in the authors' implementation). ``t`` counts
    this update; ``g^2`` is ``|g|^2`` for complex leaves. ``d`` never decreases.

    Args:
        learning_rate: ``lr_t``, a multiplier of the estimated step, ``>= 0``, or a
            schedule of the step count (a warm-up or decay shape; Prodigy sets the
            scale). Default 1.0.
        betas: ``(b1, b2)``, the decays of ``m`` and ``v``, each in ``[0, 1)``.
            Default ``(0.9, 0.999)``.
        beta3: ``b3``, the decay of ``s`` and ``r``, in ``[0, 1)``; ``None`` (default)
            uses ``sqrt(b2)``.
        eps: added to ``sqrt(v)`` after scaling by ``d``, ``>= 0``. Default 1e-8.
        estim_lr0: ``d_0``, the initial distance estimate, ``> 0``. Default 1e-6.
        estim_lr_coef: multiplies each new estimate of ``d``, ``>= 0`` (values above 1
            are more aggressive). Default 1.0.
        weight_decay: decoupled weight decay, scaled by ``dlr``, finite. Default 0.0.
        safeguard_warmup: weight ``s`` by ``d`` instead of ``dlr``, which keeps ``d``
            from growing too fast while a learning-rate warm-up keeps ``lr_t`` small.
            Default False.

    Returns:
        A ``GradientTransformation`` whose state is
        ``ProdigyState(exp_avg, exp_avg_sq, grad_sum, params0, estim_lr,
        numerator_weighted, count)`` (optax's fields); ``update`` needs ``params`` and
        raises ``ValueError`` without. The step to apply is ``-u``
        (``gx.contrib.prodigy`` negates it).
    """
    beta1, beta2 = betas
    validate.decay("betas[0]", beta1)
    validate.decay("betas[1]", beta2)
    if beta3 is None:
        beta3 = beta2**0.5
    validate.decay("beta3", beta3)
    validate.non_negative("eps", eps)
    validate.positive("estim_lr0", estim_lr0)
    validate.non_negative("estim_lr_coef", estim_lr_coef)
    validate.finite("weight_decay", weight_decay)
    if not callable(learning_rate):
        validate.non_negative("learning_rate", learning_rate)

    def init(params):
        base.check_float_leaves(params, "scale_by_prodigy")
        dtype = lowest_dtype(params)
        return ProdigyState(
            exp_avg=tree_ops.zeros_like(params),
            exp_avg_sq=tree_ops.zeros_like(params),
            grad_sum=tree_ops.zeros_like(params),
            params0=params,
            estim_lr=jnp.asarray(estim_lr0, dtype=dtype),
            numerator_weighted=jnp.zeros([], dtype),
            count=jnp.zeros([], jnp.int32),
        )

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs("scale_by_prodigy", updates, params, state.exp_avg, "first moment")
        # Computed in at least float32: in half precision d = 1e-6 times g, and its square,
        # underflow. The moments saturate instead of overflowing (see gradxform.tree).
        d = numerics.upcast(state.estim_lr)
        incoming = updates  # the output takes its dtypes
        updates = jax.tree.map(numerics.upcast, updates)
        count = numerics.safe_increment(state.count)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        correction = ((1 - beta2**count) ** 0.5) / (1 - beta1**count)
        dlr = jnp.asarray(d * lr * correction, dtype=d.dtype)
        dg = jax.tree.map(lambda g: d * g, updates)
        travelled = tree_ops.vdot(updates, tree_ops.sub(state.params0, params))
        exp_avg = tree_ops.map_moment(
            lambda x, m: beta1 * m + (1 - beta1) * x, dg, state.exp_avg, beta1
        )
        exp_avg_sq = tree_ops.map_moment(
            lambda x, v: beta2 * v + (1 - beta2) * numerics.abs_sq(x),
            dg,
            state.exp_avg_sq,
            beta2,
            real=True,
        )
        weight = d if safeguard_warmup else dlr
        grad_sum = tree_ops.map_moment(
            lambda x, s: beta3 * s + weight * x / estim_lr0, dg, state.grad_sum, beta3
        )
        numerator = beta3 * state.numerator_weighted + (d / estim_lr0) * dlr * travelled
        denominator = tree_ops.sum(jax.tree.map(jnp.abs, grad_sum))
        # Before any non-zero gradient s = 0 and r = 0: keep d rather than take 0 / 0 (optax
        # 0.2.8 turns d into NaN there, and every later update with it).
        seen = denominator > 0
        estimate = estim_lr_coef * numerator / jnp.where(seen, denominator, 1)
        estim_lr = jnp.where(seen, jnp.maximum(d, estimate), d)
        out = jax.tree.map(
            lambda m, v, p: weight_decay * dlr * p + dlr * m / (jnp.sqrt(v) + estim_lr * eps),
            exp_avg,
            exp_avg_sq,
            params,
        )
        exp_avg, exp_avg_sq, grad_sum = tree_ops.cast_like(
            (exp_avg, exp_avg_sq, grad_sum), (state.exp_avg, state.exp_avg_sq, state.grad_sum)
        )
        return tree_ops.cast_like(out, incoming), ProdigyState(
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            grad_sum=grad_sum,
            params0=state.params0,
            estim_lr=estim_lr.astype(state.estim_lr.dtype),
            numerator_weighted=jnp.asarray(numerator, state.numerator_weighted.dtype),
            count=count,
        )

    return base.GradientTransformation(init, update)
