"""Mechanic: a learned global scale on any optimizer's updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import lowest_dtype


class MechanicState(NamedTuple):
    """The state of ``mechanize``; the per-beta vectors (one entry per beta) are in the
    params' lowest dtype (at least float32).

    Attributes:
        base_optimizer_state: the wrapped optimizer's state.
        count: int32 scalar, the number of earlier updates.
        r: per beta, the reward.
        m: per beta, the largest ``|h|`` seen.
        v: per beta, the second moment of ``h``.
        s: per beta, the scale.
        x0: the reference point, the params at the first step.
    """

    base_optimizer_state: Any
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: Any


def mechanize(
    base_optimizer: base.GradientTransformation,
    weight_decay: jax.typing.ArrayLike = 1e-2,
    eps: jax.typing.ArrayLike = 1e-8,
    s_init: jax.typing.ArrayLike = 1e-6,
    num_betas: int = 6,
) -> base.GradientTransformation:
    """Mechanic (Cutkosky et al. 2023, "Mechanic: A Learning Rate Tuner"): the iterate is
    ``x = x_0 + S Delta``, ``Delta`` the sum of ``base_optimizer``'s updates and ``S`` a
    scale learned online by a coin-betting method over ``num_betas`` averages.

    With ``S = sum_j s_j``, ``u_base`` the base optimizer's update of ``g`` and
    ``beta_j = 1 - 0.1^j`` (``j = 1..num_betas``):
    ``g' = g + weight_decay S ||g|| / (||x|| + eps) x``; ``Delta = (x_0 - x) / (S + eps)``;
    ``h = <g', Delta>``; ``m_j <- max(beta_j m_j, |h| + eps)``;
    ``v_j <- beta_j^2 v_j + h^2``; ``r_j <- beta_j r_j + clip(h, -m_j, m_j) s_j`` (old
    ``m_j``); ``s_j = (s_init / num_betas m_j + max(r_j, 0)) / (sqrt(v_j) + eps)``;
    ``x_new = x_0 - (sum_j s_j) (Delta - u_base)``, returned as ``x_new - x``.

    Args:
      base_optimizer: the transformation whose updates are scaled (it receives ``g``,
        ``params`` and any extra arguments).
      weight_decay: Mechanic's own weight decay, ``>= 0``; default 1e-2.
      eps: keeps the divisions finite, ``>= 0``; default 1e-8.
      s_init: initial scale, ``> 0``; default 1e-6.
      num_betas: number of averaging horizons, an int ``>= 1``; default 6.

    Returns:
      A ``GradientTransformation`` that needs ``params``; state ``MechanicState``.
    """
    validate.non_negative("weight_decay", weight_decay)
    validate.non_negative("eps", eps)
    validate.positive("s_init", s_init)
    validate.positive_int("num_betas", num_betas)
    base_optimizer = base.as_transformation(base_optimizer)

    def init(params):
        base.check_real_float_leaves(params, "mechanize")
        dtype = jnp.promote_types(lowest_dtype(params), jnp.float32)
        zeros = jnp.zeros([num_betas], dtype)
        return MechanicState(
            base_optimizer_state=base_optimizer.init(params),
            count=jnp.zeros([], jnp.int32),
            r=zeros,
            m=zeros,
            v=zeros,
            s=jnp.full([num_betas], s_init, dtype),
            x0=params,
        )

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("mechanize needs params: call update(updates, state, params)")
        base_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra
        )
        up = numerics.upcast
        dtype = state.s.dtype
        x0 = tree_ops.where(state.count == 0, params, state.x0)
        s_sum = jnp.sum(state.s)
        wide_grads, wide_params = jax.tree.map(up, updates), jax.tree.map(up, params)
        decay = (
            weight_decay * s_sum * tree_ops.norm(wide_grads) / (tree_ops.norm(wide_params) + eps)
        )
        grads = jax.tree.map(lambda g, p: g + decay * p, wide_grads, wide_params)
        delta_prev = jax.tree.map(lambda x, a: (up(a) - x) / (s_sum + eps), wide_params, x0)
        delta = jax.tree.map(lambda d, u: d - up(u), delta_prev, base_updates)
        h = tree_ops.vdot(grads, delta_prev).astype(dtype)
        betas = jnp.asarray([1.0 - 0.1**j for j in range(1, num_betas + 1)], dtype)
        clipped_h = jnp.clip(h, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped_h * state.s
        wealth = s_init / num_betas * m + jnp.maximum(r, 0.0)
        s = wealth / (jnp.sqrt(v) + eps)
        out = jax.tree.map(
            lambda a, d, x, g: (up(a) - jnp.sum(s) * d - x).astype(g.dtype),
            x0,
            delta,
            wide_params,
            updates,
        )
        return out, MechanicState(
            base_optimizer_state=base_state,
            count=numerics.safe_increment(state.count),
            r=r,
            m=m,
            v=v,
            s=s,
            x0=tree_ops.cast_like(x0, state.x0),
        )

    return base.GradientTransformation(init, update)
