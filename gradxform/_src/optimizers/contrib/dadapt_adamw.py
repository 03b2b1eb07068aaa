"""D-Adaptation AdamW: Adam whose step size is estimated from the gradients' correlation."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import lowest_dtype


class DAdaptAdamWState(NamedTuple):
    """The state of ``dadapt_adamw``: trees in the params' dtypes, scalars in the params'
    lowest dtype (at least float32).

    Attributes:
        exp_avg: ``m``, the first moment, a tree like the params.
        exp_avg_sq: ``v``, the second moment, a tree like the params.
        grad_sum: ``s``, the weighted gradient sum, a tree like the params.
        estim_lr: ``d``, the distance estimate (scalar).
        numerator_weighted: ``r``, the weighted numerator of the estimate (scalar).
        count: int32 scalar, the number of earlier updates.
    """

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def dadapt_adamw(
    learning_rate: base.ScalarOrSchedule = 1.0,
    betas: tuple[jax.typing.ArrayLike, jax.typing.ArrayLike] = (0.9, 0.999),
    eps: jax.typing.ArrayLike = 1e-8,
    estim_lr0: jax.typing.ArrayLike = 1e-6,
    weight_decay: jax.typing.ArrayLike = 0.0,
) -> base.GradientTransformation:
    """D-Adaptation AdamW (Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by
    D-Adaptation").

    With ``(b1, b2) = betas``, ``sb = sqrt(b2)``, ``t`` the 1-based step and ``lr_t`` the
    learning rate (a schedule of the 0-based step):
    ``dlr = d lr_t sqrt(1 - b2^t) / (1 - b1^t)``;
    ``r <- sb r + (1 - sb) dlr <g, s / (sqrt(v) + eps)>`` (``s, v`` before this step);
    ``m <- b1 m + (1 - b1) dlr g``; ``v <- b2 v + (1 - b2) g^2``;
    ``s <- sb s + (1 - sb) dlr g``; ``d <- max(d, r / ((1 - sb) ||s||_1))``;
    ``x <- x - m / (sqrt(v) + eps) - weight_decay dlr x``. While ``s = 0`` (only zero
    gradients so far) ``d`` is kept: optax 0.2.8 takes ``0 / 0`` there and turns ``d``,
    and every later update, into NaN.

    Args:
      learning_rate: multiplier on ``d`` (a number or a schedule), ``>= 0``; default 1.
      betas: ``(b1, b2)``, each in ``[0, 1)``; default ``(0.9, 0.999)``.
      eps: added to ``sqrt(v)``, ``>= 0``; default 1e-8.
      estim_lr0: initial ``d``, ``> 0``; default 1e-6.
      weight_decay: decoupled weight decay, scaled by ``dlr``; default 0.

    Returns:
      A ``GradientTransformation`` that needs ``params``, with state
      ``DAdaptAdamWState`` (as optax's, not nested in a chain).
    """
    beta1, beta2 = betas
    validate.decay("betas[0]", beta1)
    validate.decay("betas[1]", beta2)
    validate.non_negative("eps", eps)
    validate.positive("estim_lr0", estim_lr0)
    validate.finite("weight_decay", weight_decay)
    if not callable(learning_rate):
        validate.non_negative("learning_rate", learning_rate)
    sb2 = beta2**0.5

    def init(params):
        base.check_real_float_leaves(params, "dadapt_adamw")
        dtype = jnp.promote_types(lowest_dtype(params), jnp.float32)
        return DAdaptAdamWState(
            exp_avg=tree_ops.zeros_like(params),
            exp_avg_sq=tree_ops.zeros_like(params),
            grad_sum=tree_ops.zeros_like(params),
            estim_lr=jnp.asarray(estim_lr0, dtype),
            numerator_weighted=jnp.zeros([], dtype),
            count=jnp.zeros([], jnp.int32),
        )

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs("dadapt_adamw", updates, params, state.exp_avg, "first moment")
        up = numerics.upcast
        dtype = state.numerator_weighted.dtype
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        count = numerics.safe_increment(state.count)
        correction = (1 - beta2**count) ** 0.5 / (1 - beta1**count)
        dlr = (state.estim_lr * lr * correction).astype(dtype)
        s_weighted = jax.tree.map(
            lambda s, v: up(s) / (jnp.sqrt(up(v)) + eps), state.grad_sum, state.exp_avg_sq
        )
        numerator_step = tree_ops.vdot(jax.tree.map(up, updates), s_weighted).astype(dtype)
        exp_avg = jax.tree.map(
            lambda m, g: beta1 * up(m) + (1 - beta1) * dlr * up(g), state.exp_avg, updates
        )
        exp_avg_sq = jax.tree.map(
            lambda v, g: beta2 * up(v) + (1 - beta2) * up(g) * up(g), state.exp_avg_sq, updates
        )
        grad_sum = jax.tree.map(
            lambda s, g: sb2 * up(s) + (1 - sb2) * dlr * up(g), state.grad_sum, updates
        )
        grad_sum_l1 = tree_ops.sum(jax.tree.map(jnp.abs, grad_sum)).astype(dtype)
        numerator = sb2 * state.numerator_weighted + (1 - sb2) * dlr * numerator_step
        seen = grad_sum_l1 > 0
        estimate = numerator / ((1 - sb2) * jnp.where(seen, grad_sum_l1, 1))
        estim_lr = jnp.where(seen, jnp.maximum(state.estim_lr, estimate), state.estim_lr)
        out = jax.tree.map(
            lambda m, v, p, g: (-weight_decay * dlr * up(p) - m / (jnp.sqrt(v) + eps)).astype(
                g.dtype
            ),
            exp_avg,
            exp_avg_sq,
            params,
            updates,
        )
        exp_avg, exp_avg_sq, grad_sum = tree_ops.cast_like(
            (exp_avg, exp_avg_sq, grad_sum), (state.exp_avg, state.exp_avg_sq, state.grad_sum)
        )
        return out, DAdaptAdamWState(
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            grad_sum=grad_sum,
            estim_lr=estim_lr.astype(dtype),
            numerator_weighted=numerator.astype(dtype),
            count=count,
        )

    return base.GradientTransformation(init, update)
