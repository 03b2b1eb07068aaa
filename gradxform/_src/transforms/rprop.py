"""Rprop: per-element step sizes adapted from sign agreements of successive gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate


class ScaleByRpropState(NamedTuple):
    """The state of ``scale_by_rprop``; the trees are like the params, in their dtypes.

    Attributes:
        step_sizes: the per-element step sizes.
        prev_sign: the sign of the last gradient used, 0 where its sign had flipped.
    """

    step_sizes: Any
    prev_sign: Any


def scale_by_rprop(
    learning_rate: jax.typing.ArrayLike,
    eta_minus: jax.typing.ArrayLike = 0.5,
    eta_plus: jax.typing.ArrayLike = 1.2,
    min_step_size: jax.typing.ArrayLike = 1e-6,
    max_step_size: jax.typing.ArrayLike = 50.0,
) -> base.GradientTransformation:
    """Rprop's scaling (Riedmiller & Braun 1993, "A Direct Adaptive Method for Faster
    Backpropagation Learning: The RPROP Algorithm"), in ``torch.optim.Rprop``'s form.

    Per element, with ``s = sign(g * g_prev)`` and step sizes starting at ``learning_rate``:
    ``step <- clip(step * (eta_plus if s > 0 else eta_minus if s < 0 else 1),
    min_step_size, max_step_size)``; where ``s < 0`` the gradient is taken as 0 (no move,
    and no sign to compare with next time); ``u <- step * sign(g)`` (the descent step is
    ``-u``).

    Unlike optax 0.2.8's ``scale_by_rprop``, which returns the *previous* step's update
    (its first update is 0), the update returned here is this step's, as in torch and
    the paper.

    Args:
      learning_rate: the initial step size of every element, ``> 0``.
      eta_minus: the factor that shrinks a step after a sign change, in ``(0, 1)``;
        default 0.5.
      eta_plus: the factor that grows a step while the sign holds, ``> 1``; default 1.2.
      min_step_size: the smallest step size, ``>= 0``; default 1e-6.
      max_step_size: the largest step size, ``> 0`` and ``>= min_step_size``; default 50.

    Returns:
      The ``GradientTransformation``; its state is
      ``ScaleByRpropState(step_sizes, prev_sign)``. Real parameters only.
    """
    validate.positive("learning_rate", learning_rate)
    validate.in_range("eta_minus", eta_minus, 0.0, 1.0, low_open=True, high_open=True)
    validate.in_range("eta_plus", eta_plus, 1.0, low_open=True)
    validate.non_negative("min_step_size", min_step_size)
    validate.positive("max_step_size", max_step_size)
    if (
        isinstance(min_step_size, (int, float))
        and isinstance(max_step_size, (int, float))
        and min_step_size > max_step_size
    ):
        raise ValueError(
            f"min_step_size must be <= max_step_size, got {min_step_size} > {max_step_size}"
        )

    def init(params):
        base.check_real_float_leaves(
            params,
            "scale_by_rprop",
            "gradxform.torch_optim.rprop steps complex leaves as pairs of reals, as torch does",
        )
        return ScaleByRpropState(
            step_sizes=tree_ops.full_like(params, learning_rate),
            prev_sign=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.step_sizes, "step sizes")
        agreement = jax.tree.map(lambda g, prev: jnp.sign(g) * prev, updates, state.prev_sign)

        def new_step_size(s, step):
            x = step * jnp.where(s > 0, eta_plus, jnp.where(s < 0, eta_minus, 1.0))
            # clip(x, lo, hi) as selects: XLA would recompute a clip (effectively unary)
            # in the step's loop and copy the donated step sizes to keep the old ones.
            x = jnp.where(x < min_step_size, min_step_size, x)
            return numerics.saturate(x, max_step_size).astype(step.dtype)

        step_sizes = jax.tree.map(new_step_size, agreement, state.step_sizes)
        # After a sign change the gradient counts as 0: no move now, no comparison next.
        sign = jax.tree.map(
            lambda s, g: jnp.where(s < 0, jnp.zeros_like(g), jnp.sign(g)), agreement, updates
        )
        out = jax.tree.map(lambda step, sg: step * sg, step_sizes, sign)
        sign = tree_ops.cast_like(sign, state.prev_sign)
        return out, ScaleByRpropState(step_sizes=step_sizes, prev_sign=sign)

    return base.GradientTransformation(init, update)
