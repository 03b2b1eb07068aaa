"""AdaDelta: a step whose units match the parameters', without a learning rate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate


class ScaleByAdaDeltaState(NamedTuple):
    """The state of ``scale_by_adadelta`` (optax's).

    Attributes:
        e_g: the running average of squared gradients ``E[g^2]``, a tree like the
            params, in their dtypes.
        e_x: the running average of squared updates ``E[dx^2]``, a tree like the
            params, in their dtypes.
    """

    e_g: Any
    e_x: Any


def scale_by_adadelta(
    rho: jax.typing.ArrayLike = 0.9, eps: jax.typing.ArrayLike = 1e-6
) -> base.GradientTransformation:
    """AdaDelta's scaling (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method").

    ``E[g^2] <- rho E[g^2] + (1 - rho) g^2``;
    ``u <- sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g`` (with the *previous* ``E[dx^2]``);
    ``E[dx^2] <- rho E[dx^2] + (1 - rho) u^2``, where ``g^2`` and ``u^2`` are ``|g|^2``
    and ``|u|^2`` for complex leaves. The ratio of RMS values makes ``u`` carry the units
    of the parameters; both averages start at zero and are not bias-corrected.

    Args:
        rho: decay of both running averages, in ``[0, 1)``. Default 0.9.
        eps: added to both averages inside the square roots, ``>= 0``. Default 1e-6.
            It also sets the scale of the first steps: the first is
            ``u = sqrt(eps) / sqrt((1 - rho) g^2 + eps) * g``.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``ScaleByAdaDeltaState(e_g, e_x)``.
    """
    validate.decay("rho", rho)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "scale_by_adadelta")
        return ScaleByAdaDeltaState(
            e_g=tree_ops.zeros_like(params), e_x=tree_ops.zeros_like(params)
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.e_g, "squared-gradient average")
        incoming = updates  # the output takes its dtypes
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        e_g = tree_ops.update_moment_per_elem_norm(updates, state.e_g, rho, 2)
        out = jax.tree.map(
            lambda g, eg, ex: (jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps)) * g,
            updates,
            e_g,
            state.e_x,
        )
        e_x = tree_ops.update_moment_per_elem_norm(out, state.e_x, rho, 2)
        e_g, e_x = tree_ops.cast_like((e_g, e_x), (state.e_g, state.e_x))
        return tree_ops.cast_like(out, incoming), ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return base.GradientTransformation(init, update)
