"""AdEMAMix: Adam's fast momentum mixed with a much slower one."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype


class ScaleByAdemamixState(NamedTuple):
    """The state of ``scale_by_ademamix`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far; ``t`` in the bias
            corrections of ``m1`` and ``nu``.
        count_m2: int32 scalar, the step at which the ``b3`` and ``alpha`` schedules are
            read (the number of updates made so far).
        m1: the fast average ``m1``, a tree like the params (in ``mu_dtype`` when given).
        m2: the slow average ``m2``, a tree like the params (in ``mu_dtype`` when given).
        nu: the second moment ``v``, a tree like the params (in ``mu_dtype`` when given).
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    count_m2: jax.Array
    m1: Any
    m2: Any
    nu: Any


def scale_by_ademamix(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    b3: base.ScalarOrSchedule = 0.9999,
    alpha: base.ScalarOrSchedule = 6.0,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
) -> base.GradientTransformation:
    """AdEMAMix's scaling (Pagliardini et al. 2024, "The AdEMAMix Optimizer: Better,
    Faster, Older").

    ``m1 <- b1 m1 + (1 - b1) g``; ``m2 <- b3 m2 + (1 - b3) g``;
    ``v <- b2 v + (1 - b2) g^2``;
    ``u <- (m1 / (1 - b1^t) + alpha m2) / (sqrt(v / (1 - b2^t) + eps_root) + eps)``.
    ``m2`` is not bias-corrected (the paper warms ``alpha`` and ``b3`` up instead: both
    may be schedules, read at ``count_m2``, the number of earlier updates). ``g^2`` is
    ``|g|^2`` for complex leaves; ``t`` counts this update.

    Args:
        b1: decay of the fast average ``m1``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        b3: decay of the slow average ``m2``, in ``[0, 1)``, or a schedule of the step
            returning one. Default 0.9999.
        alpha: weight of the slow average in the step, ``>= 0``, or a schedule of the
            step. Default 6.0 (optax's ``ademamix`` alias uses 5.0).
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to the debiased ``v`` inside the square root, ``>= 0``.
            Default 0.0.
        mu_dtype: storage dtype of all three averages ``m1``, ``m2`` and ``v``; ``None``
            (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``ScaleByAdemamixState(count, count_m2, m1, m2, nu)``.
    """
    validate.adam(b1, b2, eps, eps_root)
    validate.decay("b3", b3)
    validate.non_negative("alpha", alpha)
    mu_dtype = canonicalize_dtype(mu_dtype)

    def init(params):
        base.check_float_leaves(params, "scale_by_ademamix")
        zeros = lambda: tree_ops.zeros_like(params, dtype=mu_dtype)
        return ScaleByAdemamixState(
            count=jnp.zeros([], jnp.int32),
            count_m2=jnp.zeros([], jnp.int32),
            m1=zeros(),
            m2=zeros(),
            nu=zeros(),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second moment")
        incoming = updates  # the output takes its dtypes
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        b3_t = b3(state.count_m2) if callable(b3) else b3
        alpha_t = alpha(state.count_m2) if callable(alpha) else alpha
        m1 = tree_ops.update_moment(updates, state.m1, b1, 1)
        m2 = tree_ops.update_moment(updates, state.m2, b3_t, 1)
        nu = tree_ops.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = numerics.safe_increment(state.count)
        m1_hat = tree_ops.bias_correction(m1, b1, count)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        out = jax.tree.map(
            lambda a, b, v: (a + alpha_t * b) / (jnp.sqrt(v + eps_root) + eps), m1_hat, m2, nu_hat
        )
        m1, m2, nu = tree_ops.cast_like((m1, m2, nu), (state.m1, state.m2, state.nu))
        return tree_ops.cast_like(out, incoming), ScaleByAdemamixState(
            count=count, count_m2=numerics.safe_increment(state.count_m2), m1=m1, m2=m2, nu=nu
        )

    return base.GradientTransformation(init, update)


def _saturated_square(g: jax.Array) -> jax.Array:
    """``|g|^2``, at most the dtype's largest finite value where ``g`` is finite."""
    sq = numerics.abs_sq(g)
    return jnp.where(jnp.isfinite(g), jnp.minimum(sq, jnp.finfo(sq.dtype).max), sq)


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """The state of ``scale_by_simplified_ademamix`` (optax's).

    Attributes:
        t: int32 scalar, the number of updates made so far.
        m: the momentum sum ``m``, a tree like the params, in their dtypes.
        n: the second moment ``n``, a tree like the params, in their dtypes.
    """

    t: jax.Array
    m: Any
    n: Any


def scale_by_simplified_ademamix(
    b1: jax.typing.ArrayLike = 0.99,
    b2: jax.typing.ArrayLike = 0.95,
    alpha: base.ScalarOrSchedule = 0.0,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
) -> base.GradientTransformation:
    """Simplified AdEMAMix's scaling (Morwani et al. 2025, "Connections between Schedule-Free
    Optimizers, AdEMAMix, and Accelerated SGD Variants").

    One momentum, as a sum: ``m <- b1 m + g``; ``n <- b2 n + (1 - b2) g^2``;
    ``u <- (m + alpha g) / (sqrt(n / (1 - b2^t) + eps_root) + eps)``, ``t`` counting this
    update. ``m`` is a sum, not an average (its scale is ``1 / (1 - b1)`` times the
    gradient's) and is not bias-corrected; ``g^2`` is ``|g|^2`` for complex leaves.

    Args:
        b1: decay of the momentum sum ``m``, in ``[0, 1)``. Default 0.99.
        b2: decay of the second moment ``n``, in ``[0, 1)``. Default 0.95.
        alpha: weight of the current gradient in the step, ``>= 0``, or a schedule of the
            step (read at the number of earlier updates). Default 0.0.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to the debiased ``n`` inside the square root, ``>= 0``.
            Default 0.0.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``ScaleBySimplifiedAdEMAMixState(t, m, n)``.
    """
    validate.adam(b1, b2, eps, eps_root)
    validate.non_negative("alpha", alpha)

    def init(params):
        base.check_float_leaves(params, "scale_by_simplified_ademamix")
        return ScaleBySimplifiedAdEMAMixState(
            t=jnp.zeros([], jnp.int32),
            m=tree_ops.zeros_like(params),
            n=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.m, "momentum")
        incoming = updates  # the output takes its dtypes
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        alpha_t = alpha(state.t) if callable(alpha) else alpha
        m = tree_ops.map_moment(lambda g, m_old: g + b1 * m_old, updates, state.m, b1)
        # The EMA as optax writes it, the lerp g^2 + b2 (n - g^2) (same rounding), with
        # g^2 saturated: an overflowing square would make it inf - inf = NaN.
        n = tree_ops.map_moment(
            lambda g, n_old: _saturated_square(g) + b2 * (n_old - _saturated_square(g)),
            updates,
            state.n,
            b2,
            real=True,
        )
        count = numerics.safe_increment(state.t)
        n_hat = tree_ops.bias_correction(n, b2, count)
        out = tree_ops.div(
            tree_ops.add_scale(m, alpha_t, updates),
            jax.tree.map(lambda v: jnp.sqrt(v + eps_root) + eps, n_hat),
        )
        m, n = tree_ops.cast_like((m, n), (state.m, state.n))
        new_state = ScaleBySimplifiedAdEMAMixState(t=count, m=m, n=n)
        return tree_ops.cast_like(out, incoming), new_state

    return base.GradientTransformation(init, update)
