"""ADOPT: Adam with the current gradient left out of its own normaliser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype
from gradxform._src.transforms.adam import ScaleByAdamState

# optax keeps ADOPT's state in Adam's type: the same fields (count, mu, nu), the same name.
ScaleByAdoptState = ScaleByAdamState


def scale_by_adopt(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.9999,
    eps: jax.typing.ArrayLike = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = lambda t: t**0.25,
) -> base.GradientTransformation:
    """ADOPT's scaling (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any
    beta_2 with the Optimal Rate").

    With ``t`` the 0-based step: ``v_0 = g_0^2`` and ``u_0 = 0``; for ``t >= 1``,
    ``d = clip(g / max(sqrt(v_{t-1}), eps), -c(t), c(t))`` with ``c(t) = clip_value_fn(t)``
    (default ``t^0.25``; no clipping when not ``use_clipping``),
    ``m <- b1 m + (1 - b1) d``, ``v <- b2 v + (1 - b2) g^2``, ``u <- m`` (with
    ``nesterov``: ``u <- b1 m + (1 - b1) d``). Normalising by the *previous* ``v`` keeps
    ``g`` and its scale independent. ``g^2`` is ``|g|^2`` for complex leaves.

    Args:
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.9999.
        eps: floor of ``sqrt(v)`` in the normaliser, ``>= 0``. Default 1e-6.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.
        nesterov: step along Nesterov's look-ahead ``b1 m + (1 - b1) d`` instead of ``m``.
            Default False.
        use_clipping: clip the normalised gradient to ``[-c(t), c(t)]``. Default True;
            complex params need ``use_clipping=False`` (an interval needs an ordering).
        clip_value_fn: ``c``, a function of the int32 0-based step returning the clipping
            bound, ``> 0`` for ``t >= 1``. Default ``lambda t: t**0.25``, the paper's.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``ScaleByAdamState(count, mu, nu)`` (exported also as ``ScaleByAdoptState``):
        ``count`` the number of updates so far, ``mu`` the first moment ``m`` (in
        ``mu_dtype`` when given), ``nu`` the second moment ``v`` in the params' dtypes.
    """
    validate.adam(b1, b2, eps)
    mu_dtype = canonicalize_dtype(mu_dtype)

    def init(params):
        base.check_float_leaves(params, "scale_by_adopt")
        if use_clipping:  # clip(g / sqrt(v), -c, c) needs an ordering
            base.check_real_leaves(params, "scale_by_adopt", "pass use_clipping=False")
        return ScaleByAdoptState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params, dtype=mu_dtype),
            nu=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second moment")
        incoming = updates  # the output takes its dtypes
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        started = state.count > 0
        # On the first step v is set to g^2 and m stays 0: there is no earlier v to use.
        b2_t = jnp.where(started, b2, 0)
        b1_t = jnp.where(started, b1, 1)
        nu = tree_ops.update_moment_per_elem_norm(updates, state.nu, b2_t, 2)

        def normalised(g, v):
            d = g / jnp.maximum(jnp.sqrt(v), eps)
            if use_clipping:
                c = clip_value_fn(state.count)
                d = jnp.clip(d, -c, c)
            return d

        d = jax.tree.map(normalised, updates, state.nu)
        mu = tree_ops.update_moment(d, state.mu, b1_t, 1)
        out = tree_ops.update_moment(d, mu, b1_t, 1) if nesterov else mu
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        new_state = ScaleByAdoptState(count=numerics.safe_increment(state.count), mu=mu, nu=nu)
        return tree_ops.cast_like(out, incoming), new_state

    return base.GradientTransformation(init, update)
