"""``torch.optim.Adagrad``: eps outside the square root, lr decayed by the step count."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain, divide
from gradxform.torch_optim import _common


class SumOfSquaresState(NamedTuple):
    state_sum: Any


def sum_of_squares(initial_value: Any) -> base.GradientTransformation:
    """``s <- s + |g|^2`` from ``s_0 = initial_value``; ``u <- s``. The sum is taken in at
    least float32 and saturates at the state dtype's largest value for finite ``g`` (a
    float32 gradient of 1e30 squares to inf, and an infinite sum never comes back)."""

    def init(params):
        base.check_float_leaves(params, "sum_of_squares")
        return SumOfSquaresState(tree_ops.full_like(params, initial_value))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.state_sum, "sum of squares")
        total = tree_ops.map_moment(lambda g, s: s + numerics.abs_sq(g), updates, state.state_sum)
        return total, SumOfSquaresState(tree_ops.cast_like(total, state.state_sum))

    return base.GradientTransformation(init, update)


def adagrad(
    lr: base.ScalarOrSchedule = 1e-2,
    lr_decay: float = 0,
    weight_decay: float = 0,
    initial_accumulator_value: float = 0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.Adagrad`` (defaults ``lr=1e-2, lr_decay=0, weight_decay=0,
    initial_accumulator_value=0, eps=1e-10``).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``;
    ``s <- s + g^2`` from ``s_0 = initial_accumulator_value``;
    ``p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)``, ``t`` the 1-based step
    (``lr`` the scheduled value at that step). Duchi, Hazan & Singer (2011), "Adaptive
    Subgradient Methods"; https://pytorch.org/docs/2.13/generated/torch.optim.Adagrad.html

    Args:
        lr: the learning rate, as in ``sgd`` (default 1e-2).
        lr_decay: the decay of the step, ``lr / (1 + (t - 1) lr_decay)``; ``>= 0``
            (default 0).
        weight_decay: coupled weight decay, as in ``sgd``; ``>= 0`` (default 0).
        initial_accumulator_value: ``s_0``, the initial sum of squares; ``>= 0`` (default 0).
        eps: added to ``sqrt(s)``; ``>= 0`` (default 1e-10).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states,
        the sum of squares in a ``SumOfSquaresState`` (``state_sum``) and the step counter
        in a ``ScaleByScheduleState``.

    Raises:
        ValueError: where torch does: a negative ``lr``, ``lr_decay``, ``weight_decay``,
            ``initial_accumulator_value`` or ``eps``.
    """
    _common.check_lr(lr)
    validate.non_negative("lr_decay", lr_decay)
    validate.non_negative("initial_accumulator_value", initial_accumulator_value)
    validate.non_negative("eps", eps)
    if _common.is_zero(lr_decay):
        step_size = lr
    else:
        lr_fn = _common.schedule_of(lr)
        step_size = lambda count: lr_fn(count) / (1 + count * lr_decay)
    # s_0 first, then each g^2 in turn: torch's summation order.
    root_sum = chain(
        sum_of_squares(initial_accumulator_value),
        base.elementwise(lambda s: jnp.sqrt(numerics.upcast(s)) + eps),
    )
    return _common.torch_optimizer(
        divide(base.identity(), root_sum),
        lr=lr,
        weight_decay=weight_decay,
        maximize=maximize,
        step_size=step_size,
    )
