"""Scalings by per-leaf ("layer", "block") statistics of the parameters or gradients.

A leaf of the parameter tree is one block: a weight matrix, a bias vector, a scalar.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype

_NO_PARAMS = "{} needs params: call update(updates, state, params)"


def scale_by_param_block_norm(
    min_scale: jax.typing.ArrayLike = 1e-3,
) -> base.GradientTransformation:
    """``u_i <- u_i * max(||p_i||_2, min_scale)`` per leaf ``i`` (Frobenius norm).

    Makes the step relative to the size of the block it changes.

    Args:
      min_scale: lower bound on each block's norm, ``>= 0``; default 1e-3 (so freshly
        zero-initialised blocks still move).

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``); ``update`` needs
      ``params``.
    """
    return _scale_by_param_statistic("scale_by_param_block_norm", min_scale, numerics.safe_norm)


def _scale_by_param_statistic(
    who: str, min_scale: Any, statistic: Any
) -> base.GradientTransformation:
    """``u_i <- u_i * statistic(p_i, min_scale)`` per leaf, stateless; ``update`` needs
    ``params``."""
    validate.non_negative("min_scale", min_scale)

    def scale_leaves(updates, params):
        if params is None:
            raise ValueError(_NO_PARAMS.format(who))
        return jax.tree.map(lambda u, p: u * statistic(p, min_scale), updates, params)

    return base.stateless(scale_leaves)


def scale_by_param_block_rms(
    min_scale: jax.typing.ArrayLike = 1e-3,
) -> base.GradientTransformation:
    """``u_i <- u_i * max(rms(p_i), min_scale)``, ``rms(p) = sqrt(mean(p^2))`` per leaf.

    Adafactor's "relative step" (Shazeer & Stern 2018, section 8).

    Args:
      min_scale: lower bound on each block's RMS, ``>= 0``; default 1e-3.

    Returns:
      As ``scale_by_param_block_norm``: stateless, ``update`` needs ``params``.
    """
    return _scale_by_param_statistic(
        "scale_by_param_block_rms", min_scale, numerics.safe_root_mean_squares
    )


class ScaleByNovogradState(NamedTuple):
    """The state of ``scale_by_novograd`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the momentum ``m``, a tree like the params (in ``mu_dtype`` when given, else
            the params' dtypes).
        nu: ``v``, one scalar per leaf, in the leaf's dtype.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    nu: Any


def scale_by_novograd(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.25,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
) -> base.GradientTransformation:
    """NovoGrad's scaling (Ginsburg et al. 2019, "Stochastic Gradient Methods with
    Layer-wise Adaptive Moments for Training of Deep Networks").

    Per leaf, with ``||g||`` the leaf's Frobenius norm:
    ``v_1 = ||g_1||^2``, ``v <- b2 v + (1 - b2) ||g||^2`` (one scalar per leaf);
    ``d = g / (sqrt(v + eps_root) + eps) + wd * p``; ``m_1 = d_1``, ``m <- b1 m + d``;
    ``u <- m``.

    Args:
      b1: the decay of the momentum ``m``, in ``[0, 1)``; default 0.9.
      b2: the decay of the per-leaf second moment ``v``, in ``[0, 1)``; default 0.25.
      eps: added to ``sqrt(v + eps_root)``, ``>= 0``; default 1e-8.
      eps_root: added to ``v`` inside the root, ``>= 0``; default 0.
      weight_decay: ``wd``, the factor of ``p`` added to the normalised gradient,
        finite; default 0.
      mu_dtype: storage dtype of ``m`` (default None: the params').

    Returns:
      The ``GradientTransformation``; its state is ``ScaleByNovogradState(count, mu, nu)``;
      ``update`` needs ``params``.
    """
    validate.adam(b1, b2, eps, eps_root)
    validate.finite("weight_decay", weight_decay)
    mu_dtype = canonicalize_dtype(mu_dtype)

    def init(params):
        base.check_float_leaves(params, "scale_by_novograd")
        return ScaleByNovogradState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params, dtype=mu_dtype),
            nu=jax.tree.map(lambda p: jnp.zeros([], jnp.asarray(p).dtype), params),
        )

    def update(updates, state, params=None, **extra):
        del extra
        if params is None:
            raise ValueError(_NO_PARAMS.format("scale_by_novograd"))
        base.check_same_structure(updates, state.mu, "first moment")
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        count = numerics.safe_increment(state.count)
        first = count == 1

        def new_nu(g, v):
            sq = jnp.linalg.norm(g) ** 2
            # a complex-typed state holds a real moment: its imaginary part is 0
            new = jnp.where(first, sq, (1 - b2) * sq + b2 * jnp.real(v))
            # ||g||^2 of a huge gradient overflows: saturate, as every second moment, so
            # the state stays finite. A NaN stays; an infinite g stays in the step.
            new = numerics.saturate(new, jnp.finfo(v.dtype).max)
            return new.astype(v.dtype)

        nu = jax.tree.map(new_nu, updates, state.nu)

        def new_mu(g, p, v, m):
            d = g / (jnp.sqrt(v + eps_root) + eps) + weight_decay * p
            return jnp.where(first, d, b1 * m + d)

        mu = tree_ops.cast_like(jax.tree.map(new_mu, updates, params, nu, state.mu), state.mu)
        return mu, ScaleByNovogradState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)
