"""``torch.optim.Adagrad``: eps outside the square root, lr decayed by the step count."""

from __future__ import annotations

import jax.numpy as jnp

from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain, divide
from gradxform._src.transforms.accumulation import trace
from gradxform.torch_optim import _common


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

    Raises ``ValueError`` where torch does: a negative ``lr``, ``lr_decay``,
    ``weight_decay``, ``initial_accumulator_value`` or ``eps``.
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
    # trace(1.0) is the running sum s - s_0 = sum of g^2; s_0 is added back under the root.
    root_sum = chain(
        base.elementwise(numerics.abs_sq),
        trace(1.0),
        base.elementwise(lambda s: jnp.sqrt(s + initial_accumulator_value) + eps),
    )
    return _common.torch_optimizer(
        divide(base.identity(), root_sum),
        lr=lr,
        weight_decay=weight_decay,
        maximize=maximize,
        step_size=step_size,
    )
