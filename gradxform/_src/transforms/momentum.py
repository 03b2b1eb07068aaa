"""Running sums and averages of past updates: momentum in its two textbook forms."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype


class TraceState(NamedTuple):
    """The state of ``trace``.

    Attributes:
        trace: the momentum ``v``, a tree like the params (in ``accumulator_dtype`` when
            given, else the params' dtypes).
    """

    trace: Any


def trace(
    decay: jax.typing.ArrayLike,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> base.GradientTransformation:
    """Heavy-ball momentum.

    ``v <- g + decay * v``; ``u <- v``, or with ``nesterov``: ``u <- g + decay * v``.
    Polyak (1964), "Some methods of speeding up the convergence of iteration methods";
    Sutskever et al. (2013), "On the importance of initialization and momentum".

    Args:
      decay: the momentum factor ``decay``, ``>= 0``.
      nesterov: use Nesterov's form ``u <- g + decay * v`` (default False).
      accumulator_dtype: storage dtype of ``v`` (default None: the params'); a real
        dtype is refused for complex params.

    Returns:
      The ``GradientTransformation``; its state is ``TraceState(trace)``.
    """
    validate.non_negative("decay", decay)
    accumulator_dtype = canonicalize_dtype(accumulator_dtype)

    def init(params):
        base.check_float_leaves(params, "trace")
        base.check_accumulator_dtype(params, accumulator_dtype, "trace")
        return TraceState(trace=tree_ops.zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.trace, "momentum trace")
        step = lambda g, v: None if g is None else g + decay * v
        new_trace = jax.tree.map(step, updates, state.trace, is_leaf=lambda x: x is None)
        updates = jax.tree.map(step, updates, new_trace) if nesterov else new_trace
        return updates, TraceState(trace=tree_ops.cast(new_trace, accumulator_dtype))

    return base.GradientTransformation(init, update)


class EmaState(NamedTuple):
    """The state of ``ema``.

    Attributes:
        count: int32 scalar, the number of updates made so far.
        ema: the average ``m``, a tree like the params (in ``accumulator_dtype`` when
            given, else the params' dtypes).
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    ema: Any


def ema(
    decay: jax.typing.ArrayLike,
    debias: bool = True,
    accumulator_dtype: Any = None,
    *,
    order: int = 1,
) -> base.GradientTransformation:
    """Exponential moving average, the "EMA form" of momentum.

    ``m <- decay * m + (1 - decay) * g``; ``u <- m``, or with ``debias``:
    ``u <- m / (1 - decay**t)``, ``t`` the 1-based step (Kingma & Ba 2015, "Adam",
    section 3). The state ``EmaState(count, ema)`` is optax's.

    Args:
      decay: The averaging factor ``decay``, in ``[0, 1)``.
      debias: Divide by ``1 - decay**t`` (default True).
      accumulator_dtype: Storage dtype of ``m`` (default None: the params').
      order: 1 averages ``g`` (default); 2 averages ``|g|^2`` (Adam's second moment),
        the square taken inside the saturating moment update, so a float32 gradient
        of 1e30 cannot make the average infinite. Other values raise ``ValueError``.

    Returns:
      The ``GradientTransformation``; its state is ``EmaState(count, ema)``.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    validate.decay("decay", decay)
    accumulator_dtype = canonicalize_dtype(accumulator_dtype)

    def init(params):
        base.check_float_leaves(params, "ema")
        if order == 1:  # |g|^2 is real: a second moment may be stored in a real dtype
            base.check_accumulator_dtype(params, accumulator_dtype, "ema")
        zeros = tree_ops.zeros_like(params, dtype=accumulator_dtype)
        return EmaState(count=jnp.zeros([], jnp.int32), ema=zeros)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.ema, "moving average")
        if order == 1:
            new_ema = tree_ops.update_moment(updates, state.ema, decay, 1)
        else:
            new_ema = tree_ops.update_moment_per_elem_norm(updates, state.ema, decay, 2)
        count = numerics.safe_increment(state.count)
        updates = tree_ops.bias_correction(new_ema, decay, count) if debias else new_ema
        # Without an accumulator dtype the state keeps its own dtype, so its structure is
        # stable even when the updates arrive in a wider dtype.
        stored = (
            tree_ops.cast_like(new_ema, state.ema)
            if accumulator_dtype is None
            else tree_ops.cast(new_ema, accumulator_dtype)
        )
        return updates, EmaState(count=count, ema=stored)

    return base.GradientTransformation(init, update)


class BiasCorrectionState(NamedTuple):
    """The state of ``bias_correction``.

    Attributes:
        count: int32 scalar, the number of updates made so far.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


def bias_correction(decay: jax.typing.ArrayLike) -> base.GradientTransformation:
    """``u <- u / (1 - decay**t)``, ``t`` the 1-based step, counted in its own state.

    Undoes the pull towards zero of an average started at zero, so that
    ``chain(ema(b1, debias=False), bias_correction(b1))`` equals ``ema(b1)``.

    Args:
      decay: The decay of the average being corrected, in ``[0, 1)``.

    Returns:
      The ``GradientTransformation``; its state is ``BiasCorrectionState(count)``.
    """
    validate.decay("decay", decay)

    def init(params):
        base.check_float_leaves(params, "bias_correction")
        return BiasCorrectionState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        del params, extra
        count = numerics.safe_increment(state.count)
        return tree_ops.bias_correction(updates, decay, count), BiasCorrectionState(count)

    return base.GradientTransformation(init, update)
