"""Surviving NaN and Inf: skip the step, zero the bad entries, or report them.

On a rejected step the params and the wrapped transformation's state stay exactly
as they were (bit for bit); only the counters that record the rejection change.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, validate


def _all_finite(tree: Any) -> jax.Array:
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return functools.reduce(jnp.logical_and, flags, jnp.array(True))


def zeros_like_output(fn, *args, **kwargs) -> Any:
    """Zeros shaped and typed like ``fn(*args, **kwargs)``, without running it.

    The "skip" branch of a ``lax.cond`` must return exactly the types of the "apply"
    branch, which need not be the input's (an inner update may change dtype).
    """
    shapes = jax.eval_shape(functools.partial(fn, **kwargs), *args)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


class ApplyIfFiniteState(NamedTuple):
    """The state of ``apply_if_finite``.

    Attributes:
      notfinite_count: int32 scalar, the consecutive non-finite steps, 0 after a finite
        one.
      last_finite: bool scalar, whether the last step's updates were all finite.
      total_notfinite: int32 scalar, the non-finite steps since ``init``, never reset.
      inner_state: The wrapped transformation's state.
    """

    notfinite_count: jax.Array  # int32: consecutive non-finite steps, 0 after a finite one
    last_finite: jax.Array  # bool: whether the last step's updates were all finite
    total_notfinite: jax.Array  # int32: non-finite steps since init, never reset
    inner_state: Any


def apply_if_finite(inner: Any, max_consecutive_errors: int) -> base.GradientTransformation:
    """Runs ``inner`` only on steps whose updates are all finite.

    A step whose updates contain a NaN or Inf returns zero updates and leaves
    ``inner``'s state untouched, unless it is the ``(max_consecutive_errors + 1)``-th
    such step in a row: then ``inner`` is applied anyway. The state counts consecutive
    (``notfinite_count``) and total (``total_notfinite``) non-finite steps and records
    ``last_finite``. ``max_consecutive_errors >= 0`` (0 never skips).

    Args:
      inner: The transformation to protect, any ``(init, update)`` pair.
      max_consecutive_errors: How many non-finite steps in a row are rejected before
        ``inner`` is applied anyway; an int ``>= 0`` (a negative int raises
        ``ValueError``, a float or bool ``TypeError``).

    Returns:
      A ``GradientTransformation`` whose state is an ``ApplyIfFiniteState``.

    Examples:
      >>> opt = gx.apply_if_finite(gx.sgd(learning_rate=1.0), max_consecutive_errors=2)
      >>> params = jnp.array([1.0, 2.0])
      >>> state = opt.init(params)
      >>> u, state = opt.update(jnp.array([jnp.nan, 1.0]), state, params)
      >>> print(np.asarray(u).round(4), int(state.notfinite_count), bool(state.last_finite))
      [0. 0.] 1 False
      >>> u, state = opt.update(jnp.array([0.5, 1.0]), state, params)
      >>> print(np.asarray(u).round(4), int(state.total_notfinite))
      [-0.5 -1. ] 1
    """
    validate.int_at_least("max_consecutive_errors", max_consecutive_errors, 0)
    inner = base.as_transformation(inner)

    def init(params):
        return ApplyIfFiniteState(
            notfinite_count=jnp.zeros([], jnp.int32),
            last_finite=jnp.array(True),
            total_notfinite=jnp.zeros([], jnp.int32),
            inner_state=inner.init(params),
        )

    def update(updates, state, params=None, **extra):
        isfinite = _all_finite(updates)
        notfinite_count = jnp.where(
            isfinite, jnp.zeros([], jnp.int32), numerics.safe_increment(state.notfinite_count)
        )

        def apply(_):
            return inner.update(updates, state.inner_state, params, **extra)

        def reject(_):
            zeros, _ = zeros_like_output(inner.update, updates, state.inner_state, params, **extra)
            return zeros, state.inner_state

        new_updates, inner_state = jax.lax.cond(
            jnp.logical_or(isfinite, notfinite_count > max_consecutive_errors),
            apply,
            reject,
            None,
        )
        total = jnp.where(
            isfinite, state.total_notfinite, numerics.safe_increment(state.total_notfinite)
        )
        return new_updates, ApplyIfFiniteState(notfinite_count, isfinite, total, inner_state)

    return base.GradientTransformation(init, update)


class ZeroNansState(NamedTuple):
    """The state of ``zero_nans``.

    Attributes:
      found_nan: A bool scalar per leaf: whether the last update had a NaN there.
    """

    found_nan: Any  # a bool per leaf: whether the last update had a NaN there


def zero_nans() -> base.GradientTransformation:
    """Replaces NaN entries by zero: ``u <- where(isnan(u), 0, u)``; Inf passes through.

    The state holds, per leaf, whether the last update contained a NaN.

    Returns:
      A ``GradientTransformation`` whose state is ``ZeroNansState(found_nan)``.
    """

    def init(params):
        base.check_float_leaves(params, "zero_nans")
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.array(False), params))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.found_nan, "NaN flags")
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        updates = jax.tree.map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return updates, ZeroNansState(found_nan=found)

    return base.GradientTransformation(init, update)


def skip_not_finite(
    updates: Any, gradient_step: jax.typing.ArrayLike, params: Any
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A ``should_skip_update_fn`` for ``MultiSteps``: skip when any update is NaN or Inf.

    Returns ``(should_skip, {"should_skip", "num_not_finite"})``, the count an int32.

    Args:
      updates: The mini-step's gradient tree.
      gradient_step: The optimizer step count (ignored).
      params: The parameters (ignored).

    Returns:
      ``(should_skip, {"should_skip": should_skip, "num_not_finite": n})``: a bool
      scalar and the int32 number of NaN or Inf entries over all leaves.
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(u), dtype=jnp.int32) for u in jax.tree.leaves(updates)]
    num_not_finite = sum(counts, jnp.zeros([], jnp.int32))
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Any,
    gradient_step: jax.typing.ArrayLike,
    params: Any,
    max_squared_norm: jax.typing.ArrayLike,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A ``should_skip_update_fn`` for ``MultiSteps``: skip unless ``||u||^2 < max_squared_norm``.

    A NaN norm is skipped too. Bind the threshold with ``functools.partial``. Returns
    ``(should_skip, {"should_skip", "norm_squared"})``. ``max_squared_norm >= 0``.

    Args:
      updates: The mini-step's gradient tree.
      gradient_step: The optimizer step count (ignored).
      params: The parameters (ignored).
      max_squared_norm: The threshold on ``sum |u|^2`` over all leaves; must be ``>= 0``
        (else ``ValueError``). No default: bind it with ``functools.partial``.

    Returns:
      ``(should_skip, {"should_skip": should_skip, "norm_squared": ||u||^2})``.
    """
    del gradient_step, params
    validate.non_negative("max_squared_norm", max_squared_norm)
    norm_sq = _squared_norm(updates)
    should_skip = jnp.logical_not(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _squared_norm(updates: Any) -> jax.Array:
    sums = [jnp.sum(numerics.abs_sq(u)) for u in jax.tree.leaves(updates)]
    return jnp.sum(jnp.array(sums)) if sums else jnp.zeros([])
