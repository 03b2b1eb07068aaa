"""Schedule-free wrapping: iterate averaging in place of a learning-rate schedule."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import lowest_dtype


class ScheduleFreeState(NamedTuple):
    """The state of ``schedule_free`` (optax's).

    Attributes:
        b1: the interpolation ``b1``, a scalar in the params' lowest-precision float
            dtype, kept so that ``schedule_free_eval_params`` needs the state alone.
        weight_sum: ``sum_{s<=t} w_s``, the sum of the averaging weights so far, a
            scalar in the same dtype.
        step_count: int32 scalar, the 1-based number of the next update (1 before the
            first).
        max_lr: ``max_{s<=t} lr_s``, the largest learning rate seen, a scalar in the same
            dtype.
        base_optimizer_state: the state of ``base_optimizer``.
        z: the base optimizer's iterate ``z``, a tree like the params (in
            ``state_dtype`` when given).
    """

    b1: jax.Array
    weight_sum: jax.Array
    step_count: jax.Array
    max_lr: jax.Array
    base_optimizer_state: Any
    z: Any


def schedule_free(
    base_optimizer: Any,
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    weight_lr_power: jax.typing.ArrayLike = 2.0,
    state_dtype: Any = None,
) -> base.GradientTransformation:
    """Schedule-free wrapper (Defazio et al. 2024, "The Road Less Scheduled").

    Three sequences: ``z`` (the base optimizer's iterate), ``x`` (a weighted average of the
    ``z``), and ``y = b1 x + (1 - b1) z`` (the parameters, where gradients are taken):
    ``z <- z + base_update(g(y))``; ``c = w_t / sum_{s<=t} w_s`` with
    ``w_t = max_{s<=t} lr_s ^ weight_lr_power``; ``x <- (1 - c) x + c z``;
    ``y <- b1 x + (1 - b1) z``; the update is ``y_new - y``. ``x`` is recovered from the
    parameters as ``(y - (1 - b1) z) / b1``: evaluate at ``schedule_free_eval_params``.
    On the first step ``c = 1`` and ``x = z``; while every ``lr_s`` so far is 0 (a warm-up
    from 0), ``c = 0``. The base optimizer sees the gradient and the parameters ``y``.

    Args:
        base_optimizer: the optimizer that moves ``z``, learning rate included (e.g.
            ``gx.sgd(lr)``), a ``GradientTransformation`` or an ``(init, update)`` pair.
        learning_rate: the base optimizer's learning rate, ``>= 0``, or the same schedule
            (read here at the 1-based step); it sets only the averaging weights ``w_t``.
        b1: the interpolation between ``x`` and ``z``, in ``(0, 1)``. Default 0.9.
        weight_lr_power: the exponent of ``max lr`` in the averaging weights, finite;
            0 gives the uniform average. Default 2.0.
        state_dtype: storage dtype of ``z``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` whose state is optax's ``ScheduleFreeState(b1,
        weight_sum, step_count, max_lr, base_optimizer_state, z)``; ``update`` needs
        ``params`` and raises ``ValueError`` without.
    """
    base_optimizer = base.as_transformation(base_optimizer)
    validate.in_range("b1", b1, 0.0, 1.0, low_open=True, high_open=True)
    validate.finite("weight_lr_power", weight_lr_power)
    if not callable(learning_rate):
        validate.non_negative("learning_rate", learning_rate)

    def init(params):
        dtype = lowest_dtype(params)
        z = tree_ops.cast(params, state_dtype) if state_dtype is not None else params
        return ScheduleFreeState(
            b1=jnp.asarray(b1, dtype=dtype),
            weight_sum=jnp.zeros([], dtype),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], dtype),
            base_optimizer_state=base_optimizer.init(params),
            z=jax.tree.map(jnp.array, z),
        )

    def update(updates, state, params=None, **extra):
        base.check_update_inputs("schedule_free", updates, params, state.z, "iterate z")
        lr = learning_rate
        if callable(learning_rate):
            lr = jnp.asarray(learning_rate(state.step_count), dtype=state.max_lr.dtype)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr**weight_lr_power
        weight_sum = state.weight_sum + weight
        # 0/0 on the leading steps of a warmup from lr 0 means "no averaging yet": c = 0.
        c = jnp.where(
            jnp.logical_or(jnp.isnan(weight), jnp.isnan(weight_sum)),
            jnp.full(weight.shape, jnp.nan),
            jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf),
        )
        base_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra
        )
        z = base.apply_updates(state.z, base_updates)
        x = jax.tree.map(lambda y, z_old: (y - (1.0 - b1) * z_old) / b1, params, state.z)
        x = jax.tree.map(lambda x_old, z_new: (1.0 - c) * x_old + c * z_new, x, z)
        y = jax.tree.map(lambda x_new, z_new: b1 * x_new + (1.0 - b1) * z_new, x, z)
        out = jax.tree.map(lambda y_new, y_old: y_new - y_old, y, params)
        return out, ScheduleFreeState(
            b1=state.b1,
            weight_sum=weight_sum,
            step_count=numerics.safe_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
        )

    return base.GradientTransformation(init, update)


def schedule_free_eval_params(state: ScheduleFreeState, params: Any) -> Any:
    """The averaged iterate ``x = (y - (1 - b1) z) / b1`` at which to evaluate a
    schedule-free model (the parameters ``y`` are where gradients are taken).

    Args:
        state: the ``ScheduleFreeState`` of ``schedule_free`` (any object with ``b1`` and
            ``z`` fields); another state raises ``ValueError``.
        params: the current parameters ``y``, a tree like ``state.z``.

    Returns:
        ``x``, a tree like ``params``.
    """
    b1 = getattr(state, "b1", None)
    z = getattr(state, "z", None)
    if b1 is None or z is None:
        raise ValueError(
            f"schedule_free_eval_params needs a ScheduleFreeState, got {type(state).__name__}"
        )
    return jax.tree.map(lambda y, zi: (y - (1.0 - b1) * zi) / b1, params, z)
