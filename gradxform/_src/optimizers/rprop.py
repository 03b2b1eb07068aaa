"""Rprop: resilient backpropagation, sign-driven per-element step sizes."""

from __future__ import annotations

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.rprop import scale_by_rprop
from gradxform._src.transforms.scaling import scale


def rprop(
    learning_rate: jax.typing.ArrayLike,
    eta_minus: jax.typing.ArrayLike = 0.5,
    eta_plus: jax.typing.ArrayLike = 1.2,
    min_step_size: jax.typing.ArrayLike = 1e-6,
    max_step_size: jax.typing.ArrayLike = 50.0,
) -> base.GradientTransformation:
    """Rprop (Riedmiller & Braun 1993, "A Direct Adaptive Method for Faster
    Backpropagation Learning: The RPROP Algorithm"), equal to ``torch.optim.Rprop``.

    Per element, step sizes start at ``learning_rate``; with ``s = sign(g g_prev)``:
    ``step <- clip(step * (eta_plus if s > 0, eta_minus if s < 0, else 1),
    min_step_size, max_step_size)``; ``x <- x - step sign(g)``, except where ``s < 0``:
    no move, and ``g`` is remembered as 0.

    optax 0.2.8's ``rprop`` applies the previous step's update (its first update is 0);
    this one applies the current step's, as torch and the paper do.

    Args:
        learning_rate: the initial step size of every element, ``> 0`` (a number, not a
            schedule).
        eta_minus: the factor shrinking a step after a sign change, in ``(0, 1)``.
            Default 0.5.
        eta_plus: the factor growing a step while the sign holds, ``> 1``. Default 1.2.
        min_step_size: the smallest step size, ``>= 0`` and ``<= max_step_size``.
            Default 1e-6.
        max_step_size: the largest step size, ``> 0``. Default 50.0.

    Returns:
        A ``GradientTransformation`` with state ``(ScaleByRpropState(step_sizes,
        prev_sign), EmptyState())``. Real parameters only.
    """
    return chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale(-1.0),
    )
