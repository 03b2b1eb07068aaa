"""``torch.optim.Rprop``: per-element step sizes driven by sign agreement; moves on step one.

The catalogue's ``scale_by_rprop`` computes the same steps but refuses ``lr = 0``, a zero
maximum step and ``min > max``, which torch accepts; hence this primitive.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.scaling import scale
from gradxform.torch_optim import _common


class RpropScalingState(NamedTuple):
    prev: Any  # the previous (masked) gradient, 0 at the start
    step_size: Any  # per-element step sizes


def rprop_scaling(
    initial_step_size: Any,
    eta_minus: Any,
    eta_plus: Any,
    min_step_size: Any,
    max_step_size: Any,
) -> base.GradientTransformation:
    """Rprop without weight backtracking (Rprop-, as torch implements it).

    ``s = sign(g * g_prev)``; ``step <- clip(step * (eta_plus if s > 0, eta_minus if s < 0,
    1 if s == 0), min_step_size, max_step_size)``; ``g <- 0`` where ``s < 0``;
    ``u <- sign(g) * step``; ``g_prev <- g``. ``step_0 = initial_step_size``, ``g_prev = 0``.
    Riedmiller & Braun (1993), "A Direct Adaptive Method for Faster Backpropagation
    Learning: The RPROP Algorithm"; Igel & Huesken (2000), "Improving the Rprop
    Learning Algorithm".
    """

    def init(params):
        base.check_float_leaves(params, "rprop_scaling")
        step0 = initial_step_size(0) if callable(initial_step_size) else initial_step_size
        return RpropScalingState(
            tree_ops.zeros_like(params),
            tree_ops.full_like(params, step0),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.prev, "previous gradient")

        agreement = jax.tree.map(lambda g, p: jnp.sign(g * p), updates, state.prev)

        def new_step(s, step):
            factor = jnp.where(s > 0, eta_plus, jnp.where(s < 0, eta_minus, 1))
            return jnp.clip(step * factor.astype(step.dtype), min_step_size, max_step_size)

        step = jax.tree.map(new_step, agreement, state.step_size)
        # A sign change means the last step jumped over a minimum: skip this element once.
        prev = jax.tree.map(lambda g, s: jnp.where(s < 0, jnp.zeros_like(g), g), updates, agreement)
        u = jax.tree.map(lambda g, st: jnp.sign(g) * st, prev, step)
        return u, RpropScalingState(prev, step)

    return base.GradientTransformation(init, update)


def rprop(
    lr: base.ScalarOrSchedule = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50),
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.Rprop`` (defaults ``lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50)``).

    ``g <- -g`` if ``maximize``; per element, the step size ``d`` (``d_0 = lr``) is
    multiplied by ``etas[1]`` where ``g`` kept its sign, by ``etas[0]`` where it flipped
    (and that element's gradient is taken as 0), kept where either is 0, and clipped to
    ``step_sizes``;
    ``p <- p - d sign(g)``. ``lr`` is only the initial step size: torch reads the param
    group's ``lr`` once, when the state is created at the first step, so a schedule
    contributes its value at step 0 and nothing later. Riedmiller & Braun (1993), "A
    direct adaptive method for faster backpropagation learning: the RPROP algorithm";
    https://pytorch.org/docs/2.13/generated/torch.optim.Rprop.html

    Args:
        lr: the initial step size ``d_0``, a number ``>= 0`` or a schedule (read at step 0)
            (default 1e-2).
        etas: ``(eta_minus, eta_plus)``, the factors on a sign flip and on a kept sign;
            ``0 < eta_minus < 1 < eta_plus`` (default ``(0.5, 1.2)``).
        step_sizes: ``(min_step, max_step)``, the bounds of ``d``; both ``>= 0`` (default
            ``(1e-6, 50)``).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a tuple of the members' states,
        the previous gradient and the step sizes in an ``RpropScalingState`` (``prev``,
        ``step_size``).

    Raises:
        ValueError: where torch does: ``lr < 0`` and unless ``0 < etas[0] < 1 < etas[1]``;
            also for negative or NaN ``step_sizes``.
    """
    _common.check_lr(lr)
    eta_minus, eta_plus = etas
    validate.in_range("etas[0]", eta_minus, 0.0, 1.0, low_open=True, high_open=True)
    validate.in_range("etas[1]", eta_plus, 1.0, low_open=True)
    min_step, max_step = step_sizes
    validate.non_negative("step_sizes[0]", min_step)
    validate.non_negative("step_sizes[1]", max_step)
    return _common.real_pairs(
        chain(
            _common.maximize_sign(maximize),
            rprop_scaling(lr, eta_minus, eta_plus, min_step, max_step),
            scale(-1.0),
        )
    )
