"""``torch.optim.RMSprop``: eps outside the root, an optional centred variance, and a
momentum buffer that holds no learning rate.

torch accepts any ``alpha >= 0``; the catalogue's ``scale_by_rms`` and ``scale_by_stddev``
take a decay in ``[0, 1)``, hence this primitive.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.transforms.momentum import trace
from gradxform.torch_optim import _common


class RmspropScalingState(NamedTuple):
    square_avg: Any  # E[g^2]
    grad_avg: Any  # E[g]; an empty tuple unless centered


def rmsprop_scaling(alpha: Any, eps: Any, centered: bool) -> base.GradientTransformation:
    """``v <- alpha v + (1 - alpha) g^2``; ``u <- g / (sqrt(v) + eps)``, or with ``centered``
    ``m <- alpha m + (1 - alpha) g`` and ``u <- g / (sqrt(v - m^2) + eps)`` (``v_0 = m_0 = 0``).
    Tieleman & Hinton (2012), lecture 6.5; Graves (2013), "Generating Sequences With
    Recurrent Neural Networks", eq. 38-41 (centred).
    """
    validate.non_negative("alpha", alpha)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "rmsprop_scaling")
        grad_avg = tree_ops.zeros_like(params) if centered else ()
        return RmspropScalingState(tree_ops.zeros_like(params), grad_avg)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.square_avg, "squared-gradient average")
        square_avg = tree_ops.update_moment(updates, state.square_avg, alpha, 2)
        if centered:
            grad_avg = tree_ops.update_moment(updates, state.grad_avg, alpha, 1)
            # Clamped at 0 where torch's root of a negative rounding residue is NaN.
            variance = jax.tree.map(numerics.clamped_variance, square_avg, grad_avg)
        else:
            grad_avg, variance = (), square_avg
        out = jax.tree.map(
            lambda g, v: (g / (jnp.sqrt(v) + eps)).astype(g.dtype), updates, variance
        )
        return out, RmspropScalingState(square_avg, grad_avg)

    return base.GradientTransformation(init, update)


def rmsprop(
    lr: base.ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum: float = 0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.RMSprop`` (defaults ``lr=1e-2, alpha=0.99, eps=1e-8``, the rest off).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``; ``s <- alpha s + (1 - alpha)
    g^2``, ``u = g / (sqrt(s) + eps)`` (``centered``: ``u = g / (sqrt(s - gbar^2) + eps)``,
    ``gbar <- alpha gbar + (1 - alpha) g``); with ``momentum = mu > 0``
    ``b <- mu b + u`` (``b_0 = 0``) and ``p <- p - lr b``, else ``p <- p - lr u``.
    Under a schedule the buffer ``b`` is multiplied by the current ``lr``, never
    accumulated with it (optax's ``rmsprop`` accumulates ``lr``-scaled terms).
    https://pytorch.org/docs/2.13/generated/torch.optim.RMSprop.html

    Args:
        lr: the learning rate, as in ``sgd`` (default 1e-2).
        alpha: the decay rate of the squared-gradient average; ``>= 0`` (default 0.99).
        eps: added to the root; ``>= 0`` (default 1e-8).
        weight_decay: coupled weight decay, as in ``sgd``; ``>= 0`` (default 0).
        momentum: ``mu``, the momentum factor; ``>= 0`` (default 0: no buffer).
        centered: divide by an estimate of the variance instead of the second moment
            (default False).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states:
        an ``RmspropScalingState`` (``square_avg``, and ``grad_avg`` when ``centered``) and,
        with momentum, a ``TraceState``.

    Raises:
        ValueError: where torch does: a negative ``lr``, ``eps``, ``momentum``,
            ``weight_decay`` or ``alpha``.
    """
    _common.check_lr(lr)
    validate.non_negative("momentum", momentum)
    return _common.torch_optimizer(
        rmsprop_scaling(alpha, eps, centered),
        base.identity() if _common.is_zero(momentum) else trace(momentum),
        lr=lr,
        weight_decay=weight_decay,
        maximize=maximize,
    )
