"""Polyak's step size: the step that would reach ``f_min`` if ``f`` were linear."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gradxform import tree as tree_ops
from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.optimizers.sgd import sgd

# optax's threshold below which a (near-)zero update gives step 0: float64 epsilon.
_TINY = float(np.finfo(np.float64).eps)


def scale_by_polyak(
    f_min: jax.typing.ArrayLike = 0.0,
    max_learning_rate: jax.typing.ArrayLike = 1.0,
    eps: jax.typing.ArrayLike = 0.0,
    variant: str = "sps",
) -> base.GradientTransformation:
    """``u <- gamma u`` with the Polyak step.

    ``gamma = min((f(w) - f_min) / (||u||^2 + eps), max_learning_rate)``; ``gamma = 0``
    where ``||u||^2 + eps <= 2.2e-16``. ``variant='sps+'`` uses the gap's positive part
    ``max(f(w) - f_min, 0)``. ``update`` takes the current objective value as ``value=``.
    ``||u||`` is the norm of the incoming updates, so in ``chain(scale(s),
    scale_by_polyak())`` it includes ``s``.

    Polyak (1987), "Introduction to Optimization", section 5.3; Loizou et al. (2021),
    "Stochastic Polyak step-size for SGD"; Garrigos et al. (2023), "Function value
    learning" (SPS+).

    Args:
        f_min: a lower bound of ``f``, finite (default 0).
        max_learning_rate: the cap of ``gamma``; positive (default 1).
        eps: added to ``||u||^2``; ``>= 0`` (default 0).
        variant: ``'sps'`` (default) or ``'sps+'``.

    Returns:
        A stateless ``GradientTransformation`` (its state is ``EmptyState()``).

    Raises:
        ValueError: for a hyperparameter outside its range.
    """
    validate.finite("f_min", f_min)
    validate.positive("max_learning_rate", max_learning_rate)
    validate.non_negative("eps", eps)
    validate.one_of("variant", variant, ("sps", "sps+"))

    def update(updates, state, params=None, *, value, **extra):
        del params, extra
        sq_norm = tree_ops.norm(updates, squared=True)
        gap = jnp.asarray(value - f_min).astype(sq_norm.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0.0)
        step = jnp.where(
            sq_norm + eps <= _TINY,
            jnp.zeros_like(sq_norm),
            jnp.minimum(gap / (sq_norm + eps), max_learning_rate),
        )
        return tree_ops.scale(step, updates), state

    return base.GradientTransformation(lambda params: base.EmptyState(), update)


def polyak_sgd(
    max_learning_rate: jax.typing.ArrayLike = 1.0,
    scaling: base.ScalarOrSchedule = 1.0,
    f_min: jax.typing.ArrayLike = 0.0,
    eps: jax.typing.ArrayLike = 0.0,
    variant: str = "sps",
) -> base.GradientTransformation:
    """SGD with the Polyak step size: ``chain(sgd(scaling), scale_by_polyak(...))``.

    ``w <- w - s gamma g`` with ``s = scaling`` (a number or a schedule) and
    ``gamma = min((f(w) - f_min) / (s^2 ||g||^2 + eps), max_learning_rate)``: the step
    is measured on the scaled gradient ``s g``, as in optax, so for ``s = 1`` it is the
    textbook ``min((f - f*) / ||g||^2, gamma_max)``. ``update`` takes ``value=f(w)``.

    Loizou et al. (2021), "Stochastic Polyak step-size for SGD: an adaptive learning
    rate for fast convergence"; Berrada et al. (2020), "Training neural networks for and
    by interpolation"; Garrigos et al. (2023).

    Args:
        max_learning_rate: the cap of ``gamma``; positive (default 1).
        scaling: ``s``, a number or a schedule (default 1).
        f_min: a lower bound of ``f`` (0 for models that interpolate the data, the
            default); if it is not one, the method may diverge or stall.
        eps: added to the squared norm; ``>= 0`` (default 0).
        variant: ``'sps'`` (default) or ``'sps+'``, which clips the gap at 0.

    Returns:
        A ``GradientTransformation``; its state is ``sgd``'s followed by ``EmptyState()``.
    """
    return chain(
        sgd(learning_rate=scaling),
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps, variant=variant),
    )
