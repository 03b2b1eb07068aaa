"""Reduce the step size when a monitored value stops improving (optax.contrib semantics)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, validate


class ReduceLROnPlateauState(NamedTuple):
    """State of ``reduce_on_plateau`` (optax.contrib's fields).

    Attributes:
        scale: the factor applied to the updates, 1 at the start; a scalar of the lowest
            dtype among the params.
        best_value: the best average so far (``+inf`` at the start); a scalar of the highest
            dtype among the params.
        plateau_count: accumulated averages without improvement; int32 scalar.
        cooldown_count: averages left before plateaus count again; int32 scalar.
        count: values accumulated into ``avg_value`` so far; int32 scalar.
        avg_value: running mean of the values of the current accumulation; a scalar of
            ``best_value``'s dtype.
    """

    scale: jax.Array  # the factor applied to the updates, 1 at the start
    best_value: jax.Array  # the best average so far (+inf at the start)
    plateau_count: jax.Array  # int32: accumulated averages without improvement
    cooldown_count: jax.Array  # int32: averages left before plateaus count again
    # int32: values accumulated into avg_value so far
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    avg_value: jax.Array  # running mean of the values of the current accumulation


def _dtype_extreme(params, highest: bool):
    """The highest or lowest dtype among the leaves, in the promotion order."""
    dtypes = [jnp.asarray(x).dtype for x in jax.tree.leaves(params)]
    if not dtypes:
        return jnp.result_type(float)

    def pick(a, b):
        promoted = jnp.promote_types(a, b)
        if highest:
            return promoted
        return a if promoted == b else b

    return functools.reduce(pick, dtypes)


def reduce_on_plateau(
    factor: float = 0.1,
    patience: jax.typing.ArrayLike = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: jax.typing.ArrayLike = 0,
    accumulation_size: jax.typing.ArrayLike = 1,
    min_scale: jax.typing.ArrayLike = 0.0,
) -> base.GradientTransformation:
    """Multiplies the updates by a scale that drops by ``factor`` on plateaus of ``value``.

    ``update(updates, state, params=None, value=v)``: every call adds ``v`` to a running
    mean; every ``accumulation_size`` calls that mean ``m`` is judged against the best
    ``b`` (``+inf`` at first)::

        improved = m < (1 - rtol) * b - atol;  b <- m if improved
        plateau  <- 0 if improved else plateau + 1
        in cooldown (cooldown_count > 0): plateau <- 0, cooldown_count -= 1
        otherwise, when plateau == patience:
            scale <- max(scale * factor, min_scale), plateau <- 0, cooldown_count <- cooldown

    and the updates become ``scale * u`` (the new scale). This is optax.contrib's
    ``reduce_on_plateau``: it reduces when the count of bad evaluations *reaches*
    ``patience``, one sooner than ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (which
    waits until it *exceeds* it; see ``gradxform.torch_optim.reduce_lr_on_plateau``).
    The scale has the lowest dtype of the parameters, the values the highest.

    Args:
        factor: the factor the scale is multiplied by on a plateau; in the open interval
            ``(0, 1)`` (default 0.1).
        patience: the number of judged averages without improvement that makes a plateau;
            ``>= 0`` (default 10).
        rtol: relative tolerance of an improvement; in ``[0, 1]`` (default 1e-4).
        atol: absolute tolerance of an improvement; ``>= 0`` (default 0). At least one of
            ``rtol`` and ``atol`` must be positive.
        cooldown: the number of judged averages after a reduction during which plateaus are
            not counted; ``>= 0`` (default 0).
        accumulation_size: the number of values averaged into one judgement; ``>= 1``
            (default 1).
        min_scale: the floor of the scale; ``>= 0`` (default 0).

    Returns:
        A ``GradientTransformation`` whose ``update`` needs ``value=`` and whose state is a
        ``ReduceLROnPlateauState``.

    Raises:
        ValueError: for a hyperparameter outside its range, or an ``update`` without
            ``value``.
    """
    validate.in_range("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
    validate.unit_interval("rtol", rtol)
    validate.non_negative("atol", atol)
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("at least one of rtol and atol must be positive, got both 0")
    validate.non_negative("patience", patience)
    validate.non_negative("cooldown", cooldown)
    validate.in_range("accumulation_size", accumulation_size, 1.0)
    validate.non_negative("min_scale", min_scale)

    def init(params):
        low = _dtype_extreme(params, highest=False)
        high = _dtype_extreme(params, highest=True)
        return ReduceLROnPlateauState(
            scale=jnp.asarray(1.0, low),
            best_value=jnp.asarray(jnp.inf, high),
            plateau_count=jnp.zeros([], jnp.int32),
            cooldown_count=jnp.zeros([], jnp.int32),
            count=jnp.zeros([], jnp.int32),
            avg_value=jnp.asarray(0.0, high),
        )

    def judge(state):
        avg = state.avg_value
        improved = avg < (1 - rtol) * state.best_value - atol
        best = jnp.where(improved, avg, state.best_value).astype(state.best_value.dtype)
        plateau = jnp.where(improved, 0, numerics.safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = jnp.logical_and(~cooling, plateau == patience)
        scale = jnp.where(reduce, state.scale * factor, state.scale)
        # min_scale floors only a scale recomputed outside cooldown, as in optax.
        scale = jnp.where(cooling, state.scale, jnp.maximum(scale, min_scale))
        cooldown_count = jnp.where(
            cooling, state.cooldown_count - 1, jnp.where(reduce, cooldown, 0)
        )
        return ReduceLROnPlateauState(
            scale=scale.astype(state.scale.dtype),
            best_value=best,
            plateau_count=jnp.where(jnp.logical_or(cooling, reduce), 0, plateau).astype(jnp.int32),
            cooldown_count=cooldown_count.astype(jnp.int32),
            count=jnp.zeros([], jnp.int32),
            avg_value=jnp.zeros([], avg.dtype),
        )

    def update(updates, state, params=None, *, value=None, **extra):
        del params, extra
        base.required_value("reduce_on_plateau", value, "the monitored value")
        count = numerics.safe_increment(state.count)
        value = jnp.asarray(value).astype(state.avg_value.dtype)
        avg = (state.count * state.avg_value + value) / count
        state = state._replace(avg_value=avg.astype(state.avg_value.dtype), count=count)
        judged = judge(state)
        state = jax.tree.map(
            lambda a, b: jnp.where(count == accumulation_size, a, b), judged, state
        )
        updates = jax.tree.map(lambda u: state.scale * u, updates)
        return updates, state

    return base.GradientTransformation(init, update)
