"""MoMo: momentum with a model-based (Polyak-like) adaptive step size."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import lowest_dtype


class MomoState(NamedTuple):
    """The state of ``momo``; the scalars are in the params' lowest dtype (at least
    float32).

    Attributes:
        exp_avg: ``d``, the momentum of the gradients, a tree like the params.
        barf: the averaged loss (scalar).
        gamma: the averaged ``<g, x>`` (scalar).
        lb: the current lower bound on the loss (scalar).
        count: int32 scalar, the number of earlier updates.
    """

    exp_avg: Any
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


class MomoAdamState(NamedTuple):
    """The state of ``momo_adam``; the scalars are in the params' lowest dtype (at least
    float32).

    Attributes:
        exp_avg: ``d``, the momentum of the gradients, a tree like the params.
        exp_avg_sq: Adam's second moment, a tree like the params.
        barf: the averaged loss (scalar).
        gamma: the averaged ``<g, x>`` (scalar).
        lb: the current lower bound on the loss (scalar).
        count: int32 scalar, the number of earlier updates.
    """

    exp_avg: Any
    exp_avg_sq: Any
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def _validate(learning_rate, weight_decay, lower_bound) -> None:
    if not callable(learning_rate):
        validate.non_negative("learning_rate", learning_rate)
    validate.non_negative("weight_decay", weight_decay)
    validate.finite("lower_bound", lower_bound)


def _scalars(params, lower_bound):
    dtype = jnp.promote_types(lowest_dtype(params), jnp.float32)
    return jnp.zeros([], dtype), jnp.zeros([], dtype), jnp.asarray(lower_bound, dtype)


def _loss(extra: dict, who: str) -> Any:
    what = "the loss at params (jax.value_and_grad gives it with the gradient)"
    return base.required_value(who, extra.get("value"), what)


def _step_size(alpha, weight_decay, barf, lb, gamma, iprod, norm_sq, cap):
    """``tau = min(cap, max((1 + alpha wd)(barf - lb - gamma) + <d, x>, 0) / ||d||^2)``,
    0 where ``||d||^2`` is below float64's machine epsilon (as optax)."""
    t1 = jnp.maximum((1 + alpha * weight_decay) * (barf - lb - gamma) + iprod, 0.0) / norm_sq
    t1 = jnp.where(norm_sq <= jnp.finfo(float).eps, 0.0, t1)
    return jnp.minimum(cap, t1)


def momo(
    learning_rate: base.ScalarOrSchedule = 1.0,
    beta: jax.typing.ArrayLike = 0.9,
    lower_bound: jax.typing.ArrayLike = 0.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    adapt_lower_bound: bool = False,
) -> base.GradientTransformation:
    """MoMo (Schaipp et al. 2024, "MoMo: Momentum Models for Adaptive Learning Rates").

    With ``b = 0`` on the first step and ``beta`` after, ``f`` the loss (``value=``),
    ``alpha = lr_k``, ``lam = weight_decay``:
    ``barf <- b barf + (1 - b) f``; ``d <- b d + (1 - b) g``;
    ``gamma <- b gamma + (1 - b) <g, x>``;
    ``tau = min(alpha, max((1 + alpha lam)(barf - lb - gamma) + <d, x>, 0) / ||d||^2)``;
    ``x <- (x - tau d) / (1 + alpha lam)``, written as the update
    ``-alpha lam / (1 + alpha lam) x - tau d`` (as optax). With ``adapt_lower_bound`` the
    bound ``lb`` is estimated online (MoMo*), floored at ``lower_bound``.

    Args:
      learning_rate: the cap ``alpha`` on the step (a number or a schedule), ``>= 0``;
        default 1.
      beta: momentum, in ``[0, 1)``; default 0.9.
      lower_bound: a lower bound on the loss (finite); default 0.
      weight_decay: ``lam``, ``>= 0``; default 0.
      adapt_lower_bound: estimate the bound online; default ``False``.

    Returns:
      A ``GradientTransformation`` whose update needs ``params`` and ``value=`` (the loss
      at ``params``); state ``MomoState``.
    """
    _validate(learning_rate, weight_decay, lower_bound)
    validate.decay("beta", beta)

    def init(params):
        base.check_real_float_leaves(params, "momo")
        barf, gamma, lb = _scalars(params, lower_bound)
        return MomoState(tree_ops.zeros_like(params), barf, gamma, lb, jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        value = _loss(extra, "momo")
        base.check_update_inputs("momo", updates, params, state.exp_avg, "momentum")
        up = numerics.upcast
        dtype = state.barf.dtype
        bt = jnp.where(state.count == 0, 0.0, beta)
        barf = bt * state.barf + (1 - bt) * jnp.asarray(value, dtype)
        exp_avg = jax.tree.map(lambda d, g: bt * up(d) + (1 - bt) * up(g), state.exp_avg, updates)
        wide_params = jax.tree.map(up, params)
        gamma = bt * state.gamma + (1 - bt) * tree_ops.vdot(jax.tree.map(up, updates), wide_params)
        norm_sq = tree_ops.norm(exp_avg, squared=True)
        iprod = tree_ops.vdot(exp_avg, wide_params)
        alpha = learning_rate(state.count) if callable(learning_rate) else learning_rate
        decay = 1 + alpha * weight_decay
        lb = state.lb
        if adapt_lower_bound:
            cap = decay * (barf - gamma) + iprod
            lb = jnp.where(
                cap < decay * state.lb, jnp.maximum(cap / (2 * decay), lower_bound), state.lb
            )
        tau = _step_size(alpha, weight_decay, barf, lb, gamma, iprod, norm_sq, alpha)
        out = jax.tree.map(
            lambda d, p, g: (-(alpha * weight_decay) / decay * p - tau * d).astype(g.dtype),
            exp_avg,
            wide_params,
            updates,
        )
        new_lb = state.lb
        if adapt_lower_bound:
            new_lb = jnp.maximum(barf + iprod - gamma - tau * norm_sq / 2, lower_bound)
        return out, MomoState(
            exp_avg=tree_ops.cast_like(exp_avg, state.exp_avg),
            barf=barf.astype(dtype),
            gamma=gamma.astype(dtype),
            lb=jnp.asarray(new_lb, dtype),
            count=numerics.safe_increment(state.count),
        )

    return base.GradientTransformation(init, update)


def momo_adam(
    learning_rate: base.ScalarOrSchedule = 1e-2,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    lower_bound: jax.typing.ArrayLike = 0.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    adapt_lower_bound: bool = False,
) -> base.GradientTransformation:
    """MoMo-Adam (Schaipp et al. 2024, "MoMo: Momentum Models for Adaptive Learning
    Rates"): MoMo's step size in Adam's preconditioned geometry.

    With ``t`` the 1-based step, ``c1 = 1 - b1^t``, ``D = eps + sqrt(v / (1 - b2^t))``:
    ``barf <- b1 barf + (1 - b1) f``; ``m <- b1 m + (1 - b1) g``;
    ``v <- b2 v + (1 - b2) g^2``; ``gamma <- b1 gamma + (1 - b1) <g, x>``;
    ``tau = min(alpha / c1, max((1 + alpha lam)(barf - c1 lb - gamma) + <m, x>, 0) /
    <m, m / D>)``; update ``-alpha lam / (1 + alpha lam) x - tau m / D``.

    Args:
      learning_rate: the cap ``alpha`` (a number or a schedule), ``>= 0``; default 1e-2.
      b1: first-moment (and loss-average) decay, in ``[0, 1)``; default 0.9.
      b2: second-moment decay, in ``[0, 1)``; default 0.999.
      eps: added to the root, ``>= 0``; default 1e-8.
      lower_bound: a lower bound on the loss (finite); default 0.
      weight_decay: ``lam``, ``>= 0``; default 0.
      adapt_lower_bound: estimate the bound online; default ``False``.

    Returns:
      A ``GradientTransformation`` whose update needs ``params`` and ``value=``; state
      ``MomoAdamState``.
    """
    _validate(learning_rate, weight_decay, lower_bound)
    validate.adam(b1, b2, eps)

    def init(params):
        base.check_real_float_leaves(params, "momo_adam")
        barf, gamma, lb = _scalars(params, lower_bound)
        zeros = tree_ops.zeros_like(params)
        return MomoAdamState(zeros, zeros, barf, gamma, lb, jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        value = _loss(extra, "momo_adam")
        base.check_update_inputs("momo_adam", updates, params, state.exp_avg, "first moment")
        up = numerics.upcast
        dtype = state.barf.dtype
        count = numerics.safe_increment(state.count)
        barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, dtype)
        exp_avg = jax.tree.map(lambda m, g: b1 * up(m) + (1 - b1) * up(g), state.exp_avg, updates)
        exp_avg_sq = jax.tree.map(
            lambda v, g: b2 * up(v) + (1 - b2) * up(g) * up(g), state.exp_avg_sq, updates
        )
        bc2 = jnp.asarray(1 - b2**count, dtype)
        precond = jax.tree.map(lambda v: eps + jnp.sqrt(v / bc2), exp_avg_sq)
        norm_sq = tree_ops.vdot(exp_avg, jax.tree.map(jnp.divide, exp_avg, precond))
        wide_params = jax.tree.map(up, params)
        gamma = b1 * state.gamma + (1 - b1) * tree_ops.vdot(jax.tree.map(up, updates), wide_params)
        iprod = tree_ops.vdot(exp_avg, wide_params)
        alpha = learning_rate(state.count) if callable(learning_rate) else learning_rate
        bc1 = jnp.asarray(1 - b1**count, dtype)
        decay = 1 + alpha * weight_decay
        lb = state.lb
        if adapt_lower_bound:
            cap = decay * (barf - gamma) + iprod
            lb = jnp.where(
                cap < decay * bc1 * state.lb,
                jnp.maximum(cap / (2 * bc1 * decay), lower_bound),
                state.lb,
            )
        tau = _step_size(alpha, weight_decay, barf, bc1 * lb, gamma, iprod, norm_sq, alpha / bc1)
        out = jax.tree.map(
            lambda m, d, p, g: (-(alpha * weight_decay) / decay * p - tau * m / d).astype(g.dtype),
            exp_avg,
            precond,
            wide_params,
            updates,
        )
        new_lb = state.lb
        if adapt_lower_bound:
            new_lb = jnp.maximum((barf + iprod - gamma - tau * norm_sq / 2) / bc1, lower_bound)
        exp_avg, exp_avg_sq = tree_ops.cast_like(
            (exp_avg, exp_avg_sq), (state.exp_avg, state.exp_avg_sq)
        )
        return out, MomoAdamState(
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            barf=barf.astype(dtype),
            gamma=gamma.astype(dtype),
            lb=jnp.asarray(new_lb, dtype),
            count=count,
        )

    return base.GradientTransformation(init, update)
