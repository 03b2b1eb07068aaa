"""Running a transformation only on the steps a condition selects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics

ConditionFn = Callable[..., jax.typing.ArrayLike]


def _check_condition(fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"should_transform_fn must be callable, got {type(fn).__name__}")


class ConditionallyTransformState(NamedTuple):
    """The state of ``conditionally_transform``.

    Attributes:
      inner_state: The wrapped transformation's state, kept on steps that skip it.
      step: int32 scalar, the calls to ``update`` so far (saturates at the int32 maximum).
    """

    inner_state: Any
    step: jax.Array  # int32: calls to update so far


def conditionally_transform(
    inner: Any, should_transform_fn: ConditionFn, forward_extra_args: bool = False
) -> base.GradientTransformation:
    """``inner`` on the steps where ``should_transform_fn(t)`` holds; identity elsewhere.

    ``t`` counts earlier calls (0 on the first). When the condition fails the updates
    pass through unchanged and ``inner``'s state is kept. With ``forward_extra_args``
    the extra keyword arguments of ``update`` are passed to the condition too.

    Args:
      inner: The transformation to run conditionally, any ``(init, update)`` pair.
      should_transform_fn: ``fn(step, **extra) -> bool scalar`` (a traced value is fine);
        must be callable (else ``TypeError``).
      forward_extra_args: If True, ``update``'s extra keyword arguments are passed to
        ``should_transform_fn``. Default False.

    Returns:
      A ``GradientTransformation`` whose state is a ``ConditionallyTransformState``.
    """
    return _on_condition(
        inner, should_transform_fn, forward_extra_args, lambda u: u, ConditionallyTransformState
    )


def _on_condition(
    inner: Any,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool,
    skipped: Callable[[Any], Any],
    state_type: Any,
) -> base.GradientTransformation:
    """``inner`` where the condition holds, ``skipped(updates)`` elsewhere; the state a
    ``state_type(inner_state=..., step=...)``."""
    _check_condition(should_transform_fn)
    inner = base.as_transformation(inner)

    def init(params):
        return state_type(inner_state=inner.init(params), step=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        condition = should_transform_fn(state.step, **(extra if forward_extra_args else {}))
        updates, inner_state = jax.lax.cond(
            condition,
            lambda _: inner.update(updates, state.inner_state, params, **extra),
            lambda _: (skipped(updates), state.inner_state),
            None,
        )
        return updates, state_type(
            inner_state=inner_state, step=numerics.safe_increment(state.step)
        )

    return base.GradientTransformation(init, update)


class ConditionallyMaskState(NamedTuple):
    """The state of ``conditionally_mask``.

    Attributes:
      step: int32 scalar, the calls to ``update`` so far (saturates at the int32 maximum).
      inner_state: The wrapped transformation's state, kept on steps that skip it.
    """

    step: jax.Array  # int32: calls to update so far
    inner_state: Any


def conditionally_mask(
    inner: Any, should_transform_fn: ConditionFn, forward_extra_args: bool = False
) -> base.GradientTransformation:
    """``inner`` on the steps where ``should_transform_fn(t)`` holds; zero updates elsewhere.

    ``t`` counts earlier calls (0 on the first). When the condition fails the updates
    are zeros and ``inner``'s state is kept. With ``forward_extra_args`` the extra
    keyword arguments of ``update`` are passed to the condition too.

    Args:
      inner: As in ``conditionally_transform``.
      should_transform_fn: As in ``conditionally_transform``.
      forward_extra_args: As in ``conditionally_transform``.

    Returns:
      A ``GradientTransformation`` whose state is a ``ConditionallyMaskState``.
    """
    return _on_condition(
        inner, should_transform_fn, forward_extra_args, tree_ops.zeros_like, ConditionallyMaskState
    )
