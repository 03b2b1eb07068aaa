"""ACProp: AdaBelief's centred second moment, applied one step late."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.transforms.adam_variants import ScaleByBeliefState


def scale_by_acprop(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
) -> base.GradientTransformation:
    """ACProp's scaling (Zhuang et al. 2021, "Momentum Centering and Asynchronous Update
    for Adaptive Gradient Methods"), as optax.contrib 0.2.8 computes it.

    With ``t`` the 1-based step: ``u = g / (sqrt(s_hat) + eps)``, where
    ``s_hat = s_{t-1} / (1 - b2^(t-1))`` is the *previous* step's bias-corrected
    belief (asynchronous: ``g`` is independent of it), and ``s_hat = 1`` on the first
    step; then ``m <- b1 m + (1 - b1) g``, ``s <- b2 s + (1 - b2) |g - m_{t-1}|^2 +
    eps_root``. As in optax, the numerator is the gradient itself (the paper's
    Algorithm 2 uses the momentum ``m_t``: chain ``trace`` after it for that form).

    Args:
      b1: decay of the first moment, in ``[0, 1)``; default 0.9.
      b2: decay of the belief ``s``, in ``[0, 1)``; default 0.999.
      eps: added to ``sqrt(s_hat)``, ``>= 0``; default 1e-16.
      eps_root: added to ``s`` at every step, ``>= 0``; default 1e-16.

    Returns:
      A ``GradientTransformation`` with state ``ScaleByBeliefState(count, mu, nu)``.
    """
    validate.adam(b1, b2, eps, eps_root)

    def init(params):
        base.check_float_leaves(params, "scale_by_acprop")
        return ScaleByBeliefState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params),
            # zeros computed from the params keep their sharding under jit (tree.zeros_like)
            nu=tree_ops.zeros_like(jax.tree.map(jnp.real, params)),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "first moment")
        mu = tree_ops.update_moment(updates, state.mu, b1, 1)
        error = jax.tree.map(lambda g, m: numerics.upcast(g) - m, updates, state.mu)
        nu = tree_ops.update_moment_per_elem_norm(error, state.nu, b2, 2)
        nu = jax.tree.map(lambda v: v + eps_root, nu)
        count = numerics.safe_increment(state.count)
        first = state.count == 0
        t = jnp.where(first, count, state.count)

        def scaled(g, v):
            v = numerics.upcast(v)
            v_hat = jnp.where(first, 1, v / (1 - b2**t).astype(v.dtype))
            return (numerics.upcast(g) / (jnp.sqrt(v_hat) + eps)).astype(g.dtype)

        out = jax.tree.map(scaled, updates, state.nu)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)
