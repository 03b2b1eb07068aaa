"""Grafting: the direction of one update with the per-leaf norm of another.

``graft(m, d) = d |m| / (|d| + eps)`` per leaf (Frobenius norms). Agarwal et al. 2020,
"Disentangling Adaptive Gradient Methods from Learning Rates": a preconditioner that
gets the direction right but whose scale drifts (Shampoo's roots) borrows the step size
of a well-tuned first-order method (SGD, AdaGrad, RMSProp).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base

# Keeps the quotient finite for an all-zero direction (distributed Shampoo's value).
GRAFT_EPSILON = 1e-25

GRAFT_TYPES = (
    "none",
    "sgd",
    "adagrad",
    "rmsprop",
    "rmsprop_normalized",
    "sqrt_n",
    "adagrad_normalized",
)


def graft_norm(direction: jax.Array, magnitude: jax.Array, eps: float = GRAFT_EPSILON) -> jax.Array:
    """``direction |magnitude| / (|direction| + eps)``, Frobenius norms over the whole leaf.

    Args:
      direction: the update whose direction to keep.
      magnitude: the update whose norm to take.
      eps: added to ``|direction|`` (``>= 0``). Default 1e-25.

    Returns:
      An array shaped like ``direction``.
    """
    return direction * (jnp.linalg.norm(magnitude) / (jnp.linalg.norm(direction) + eps))


def has_diagonal_statistics(graft_type: str) -> bool:
    """Whether ``graft_type`` keeps a per-entry accumulator (AdaGrad and RMSProp kinds)."""
    return graft_type in ("adagrad", "rmsprop", "rmsprop_normalized", "adagrad_normalized")


def graft_step(
    graft_type: str,
    g: jax.Array,
    diagonal: jax.Array | None,
    beta2: float = 0.999,
    diagonal_epsilon: float = 1e-10,
    clip_by_scaled_gradient_norm: float | None = None,
) -> tuple[jax.Array, jax.Array | None]:
    """One step of the first-order method whose norm Shampoo grafts.

    With ``s = g``, or ``s = g / (|g| + 1e-25)`` for the ``*_normalized`` kinds:

    - ``"sgd"`` and ``"none"``: ``g``;
    - ``"sqrt_n"``: ``sign(g)``;
    - ``"adagrad"``: ``D <- D + s^2``, ``s / (sqrt(D) + diagonal_epsilon)``;
    - ``"rmsprop"``: ``D <- beta2 D + w s^2`` (``w = 1 - beta2``, or 1 when
      ``beta2 == 1``), same quotient, then divided by
      ``max(1, (|u| / sqrt(size(u))) / clip_by_scaled_gradient_norm)`` when that is set.

    No bias correction (as distributed Shampoo).

    Args:
      graft_type: one of ``GRAFT_TYPES``.
      g: the gradient leaf.
      diagonal: the accumulator ``D`` (``None`` for the kinds without one).
      beta2: RMSProp's decay in ``[0, 1]``. Default 0.999.
      diagonal_epsilon: added to ``sqrt(D)`` (``>= 0``). Default 1e-10.
      clip_by_scaled_gradient_norm: RMSProp only; ``None`` for no clipping, else ``> 0``.

    Returns:
      ``(update, new_diagonal)``; ``new_diagonal`` is ``diagonal`` for kinds without one.
    """
    if graft_type in ("sgd", "none"):
        return g, diagonal
    if graft_type == "sqrt_n":
        return jnp.sign(g), diagonal
    s = g
    if graft_type.endswith("_normalized"):
        s = g / (jnp.linalg.norm(g) + GRAFT_EPSILON)
    if diagonal is None:
        raise ValueError(f"graft_type {graft_type!r} needs its diagonal accumulator, got None")
    if graft_type.startswith("adagrad"):
        diagonal = diagonal + jnp.square(s)
        return s / (jnp.sqrt(diagonal) + diagonal_epsilon), diagonal
    weight = 1.0 if beta2 == 1.0 else 1.0 - beta2
    diagonal = beta2 * diagonal + weight * jnp.square(s)
    update = s / (jnp.sqrt(diagonal) + diagonal_epsilon)
    if clip_by_scaled_gradient_norm:
        scaled_norm = jnp.linalg.norm(update) / jnp.sqrt(float(update.size))
        update = update / jnp.maximum(1.0, scaled_norm / clip_by_scaled_gradient_norm)
    return update, diagonal


class GraftState(NamedTuple):
    """The state of ``graft``.

    Attributes:
      magnitude: the state of the transformation whose norm is kept.
      direction: the state of the transformation whose direction is kept.
    """

    magnitude: Any
    direction: Any


def graft(
    magnitude: Any, direction: Any, eps: float = GRAFT_EPSILON
) -> base.GradientTransformation:
    """Runs two transformations on the same updates; each leaf gets ``direction``'s
    direction and ``magnitude``'s norm: ``graft_norm(d, m, eps)``.

    E.g. ``graft(gx.scale_by_adam(), gx.scale_by_sign())`` takes Adam's per-layer step
    size and signSGD's direction (Agarwal et al. 2020).

    Args:
      magnitude: the transformation whose per-leaf norm is kept.
      direction: the transformation whose direction is kept.
      eps: added to the direction's norm (``>= 0``). Default 1e-25.

    Returns:
      A ``GradientTransformation`` with state ``GraftState(magnitude, direction)``.
    """
    magnitude = base.as_transformation(magnitude)
    direction = base.as_transformation(direction)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")

    def init(params):
        return GraftState(magnitude.init(params), direction.init(params))

    def update(updates, state, params=None, **extra):
        m, m_state = magnitude.update(updates, state.magnitude, params, **extra)
        d, d_state = direction.update(updates, state.direction, params, **extra)
        out = jax.tree.map(lambda dd, mm: graft_norm(dd, mm, eps).astype(dd.dtype), d, m)
        return out, GraftState(m_state, d_state)

    return base.GradientTransformation(init, update)
