"""``torch.optim.Adadelta``: a unit-correcting ratio of two running averages, times ``lr``.

The catalogue's ``scale_by_adadelta`` computes the same ratio but refuses ``rho = 1``,
which torch accepts (``0 <= rho <= 1``); hence this primitive.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, validate
from gradxform.torch_optim import _common


class AdadeltaScalingState(NamedTuple):
    square_avg: Any  # E[g^2]
    acc_delta: Any  # E[dx^2]


def adadelta_scaling(rho: Any, eps: Any) -> base.GradientTransformation:
    """``E[g^2] <- rho E[g^2] + (1 - rho) g^2``;
    ``u <- sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g``;
    ``E[dx^2] <- rho E[dx^2] + (1 - rho) u^2`` (both averages start at 0).
    Zeiler (2012), "ADADELTA: An Adaptive Learning Rate Method", algorithm 1.
    """
    validate.unit_interval("rho", rho)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "adadelta_scaling")
        return AdadeltaScalingState(tree_ops.zeros_like(params), tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.square_avg, "squared-gradient average")
        square_avg = tree_ops.update_moment(updates, state.square_avg, rho, 2)
        delta = jax.tree.map(
            lambda g, sq, acc: jnp.sqrt(acc + eps) / jnp.sqrt(sq + eps) * g,
            updates,
            square_avg,
            state.acc_delta,
        )
        acc_delta = tree_ops.update_moment(delta, state.acc_delta, rho, 2)
        return delta, AdadeltaScalingState(square_avg, acc_delta)

    return base.GradientTransformation(init, update)


def adadelta(
    lr: base.ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.Adadelta`` (defaults ``lr=1.0, rho=0.9, eps=1e-6, weight_decay=0``).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``;
    ``s <- rho s + (1 - rho) g^2``; ``u = sqrt(d + eps) / sqrt(s + eps) g``;
    ``d <- rho d + (1 - rho) u^2``; ``p <- p - lr u``. Zeiler (2012), "ADADELTA";
    https://pytorch.org/docs/2.13/generated/torch.optim.Adadelta.html

    Args:
        lr: the learning rate, as in ``sgd`` (default 1.0).
        rho: the decay rate of both running averages; in ``[0, 1]`` (default 0.9).
        eps: added inside both square roots; ``>= 0`` (default 1e-6).
        weight_decay: coupled weight decay, as in ``sgd``; ``>= 0`` (default 0).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states,
        the running averages in an ``AdadeltaScalingState`` (``square_avg``, ``acc_delta``).

    Raises:
        ValueError: where torch does: ``lr < 0``, ``rho`` outside ``[0, 1]``, ``eps < 0``,
            ``weight_decay < 0``.
    """
    _common.check_lr(lr)
    return _common.torch_optimizer(
        adadelta_scaling(rho, eps), lr=lr, weight_decay=weight_decay, maximize=maximize
    )
