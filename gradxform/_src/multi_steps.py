"""Gradient accumulation: several mini-steps of gradients make one optimizer step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.non_finite import zeros_like_output

ShouldSkipUpdateFunction = Callable[[Any, jax.Array, Any], tuple[jax.Array, Any]]


class MultiStepsState(NamedTuple):
    """The state of ``MultiSteps``.

    Attributes:
      mini_step: int32 scalar, the mini-steps accumulated since the last emitted update
        (``0..k-1``).
      gradient_step: int32 scalar, the optimizer steps emitted so far (saturates at the
        int32 maximum).
      inner_opt_state: The wrapped optimizer's state, changed only on emitting steps.
      acc_grads: The running mean (or sum) of this step's gradients, a tree like the
        parameters in ``accumulator_dtype``.
      skip_state: What ``should_skip_update_fn`` reported on the last call (``()`` when
        there is none).
    """

    mini_step: jax.Array  # int32: mini-steps accumulated since the last emitted update
    gradient_step: jax.Array  # int32: optimizer steps emitted so far
    inner_opt_state: Any
    acc_grads: Any  # the running mean (or sum) of this step's gradients
    skip_state: Any = ()  # what ``should_skip_update_fn`` reported on the last call


class MultiSteps:
    """Accumulates gradients over ``k`` mini-steps, then takes one step of ``opt``.

    With ``k = every_k_schedule(gradient_step)`` and ``n`` the mini-step index
    (``0..k-1``): ``a <- a + (g - a) / (n + 1)`` (Welford's running mean; with
    ``use_grad_mean=False`` the sum ``a <- a + g``). On mini-steps ``n < k - 1`` the
    updates are zero and ``opt``'s state is untouched; on ``n = k - 1`` the wrapper
    returns ``opt.update(a)``, advances ``gradient_step`` and resets ``a`` to 0.
    ``opt`` only runs on those emitting steps.

    ``should_skip_update_fn(updates, gradient_step, params) -> (skip, skip_state)``
    (e.g. ``skip_not_finite``) rejects a mini-step: zero updates, state unchanged
    except ``skip_state``. ``accumulator_dtype`` defaults to float32, as in optax.
    ``every_k_schedule`` is an int ``>= 1`` or a function of ``gradient_step``.

    Args:
      opt: The optimizer to wrap, any ``(init, update)`` pair.
      every_k_schedule: The number ``k`` of mini-steps per optimizer step: an int
        ``>= 1`` (else ``ValueError``; a float or bool raises ``TypeError``), or a
        function ``gradient_step -> k`` whose value is cast to int32 and not validated.
      use_grad_mean: If True (default), ``opt`` receives the mean of the ``k`` gradients;
        if False, their sum.
      should_skip_update_fn: Optional ``fn(updates, gradient_step, params) ->
        (skip, skip_state)`` with ``skip`` a bool scalar (else ``ValueError``); e.g.
        ``gx.skip_not_finite``. Default None: no mini-step is skipped.
      accumulator_dtype: The dtype of ``acc_grads``, default float32. A real dtype with
        complex parameters raises ``ValueError``; None keeps JAX's default float dtype.

    Attributes:
      inner_opt: The wrapped optimizer, as a ``GradientTransformation``.

    ``init(params)`` returns a ``MultiStepsState``; ``update(updates, state, params=None,
    **extra)`` returns ``(updates, state)``, the updates in the gradients' dtypes;
    ``has_updated(state)`` says whether the last call emitted a step;
    ``gradient_transformation()`` returns ``GradientTransformation(init, update)``.

    Examples:
      >>> opt = gx.MultiSteps(gx.sgd(learning_rate=1.0), every_k_schedule=2)
      >>> params = jnp.array([0.0, 0.0])
      >>> state = opt.init(params)
      >>> u, state = opt.update(jnp.array([1.0, 2.0]), state, params)
      >>> print(np.asarray(u).round(4), bool(opt.has_updated(state)))
      [0. 0.] False
      >>> u, state = opt.update(jnp.array([3.0, 4.0]), state, params)
      >>> print(np.asarray(u).round(4), bool(opt.has_updated(state)))
      [-2. -3.] True
    """

    def __init__(
        self,
        opt: Any,
        every_k_schedule: int | Callable[[jax.Array], jax.typing.ArrayLike],
        use_grad_mean: bool = True,
        should_skip_update_fn: ShouldSkipUpdateFunction | None = None,
        accumulator_dtype: Any = jnp.float32,
    ):
        self._opt = base.as_transformation(opt)
        if callable(every_k_schedule):
            self._every_k_schedule = every_k_schedule
        else:
            validate.int_at_least("every_k_schedule", every_k_schedule, 1)
            self._every_k_schedule = lambda step: every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._accumulator_dtype = jax.dtypes.canonicalize_dtype(accumulator_dtype)
        if should_skip_update_fn is None:

            def should_skip_update_fn(updates, gradient_step, params):
                del updates, gradient_step, params
                return jnp.array(False), ()

        self._should_skip_update_fn = should_skip_update_fn

    @property
    def inner_opt(self) -> base.GradientTransformation:
        return self._opt

    def _accumulate(self, grad, acc, n):
        if self._use_grad_mean:
            return acc + (grad - acc) / (n + 1)
        return acc + grad

    def init(self, params: Any) -> MultiStepsState:
        base.check_accumulator_dtype(params, self._accumulator_dtype, "MultiSteps")
        gradient_step = jnp.zeros([], jnp.int32)
        _, skip_state = self._should_skip_update_fn(
            tree_ops.zeros_like(params), gradient_step, params
        )
        return MultiStepsState(
            mini_step=jnp.zeros([], jnp.int32),
            gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=tree_ops.zeros_like(params, dtype=self._accumulator_dtype),
            skip_state=skip_state,
        )

    def update(
        self, updates: Any, state: MultiStepsState, params: Any = None, **extra: Any
    ) -> tuple[Any, MultiStepsState]:
        base.check_same_structure(updates, state.acc_grads, "accumulated gradients")
        # An int32 period keeps ``mini_step`` int32 whatever type the schedule returns.
        k_steps = jnp.asarray(self._every_k_schedule(state.gradient_step)).astype(jnp.int32)
        should_skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step, params)
        should_skip = jnp.asarray(should_skip)
        if (should_skip.dtype, should_skip.shape) != (jnp.bool_, ()):
            raise ValueError(
                "should_skip_update_fn must return a bool scalar, got dtype "
                f"{should_skip.dtype} and shape {should_skip.shape}"
            )
        inner = self._opt

        def inner_update(acc, inner_state):
            return inner.update(tree_ops.cast_like(acc, updates), inner_state, params, **extra)

        def accumulate(_):
            acc = jax.tree.map(
                lambda g, a: self._accumulate(g, a, state.mini_step), updates, state.acc_grads
            )
            emit = state.mini_step == k_steps - 1

            def hold(_):
                zeros, _ = zeros_like_output(inner_update, acc, state.inner_opt_state)
                return zeros, state.inner_opt_state

            out, inner_state = jax.lax.cond(
                emit, lambda _: inner_update(acc, state.inner_opt_state), hold, None
            )
            new_state = MultiStepsState(
                mini_step=numerics.safe_increment(state.mini_step) % k_steps,
                gradient_step=jnp.where(
                    emit, numerics.safe_increment(state.gradient_step), state.gradient_step
                ),
                inner_opt_state=inner_state,
                acc_grads=jax.tree.map(
                    lambda a: jnp.where(emit, jnp.zeros_like(a), a).astype(self._accumulator_dtype),
                    acc,
                ),
                skip_state=skip_state,
            )
            return out, new_state

        def skip(_):
            zeros, _ = zeros_like_output(inner_update, state.acc_grads, state.inner_opt_state)
            return zeros, state._replace(skip_state=skip_state)

        return jax.lax.cond(should_skip, skip, accumulate, None)

    def has_updated(self, state: MultiStepsState) -> jax.Array:
        """Whether the last call emitted an optimizer step (rather than accumulating)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> base.GradientTransformation:
        return base.GradientTransformation(self.init, self.update)


class ApplyEvery(NamedTuple):
    """The state of ``apply_every``.

    Attributes:
      count: int32 scalar, the position in the current window of ``k`` steps.
      grad_acc: The sum of the window's updates so far, a tree like the parameters.
    """

    # int32: position in the current window of k steps
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    grad_acc: Any  # the sum of the window's updates so far


def apply_every(k: int = 1) -> base.GradientTransformation:
    """Sums updates over ``k`` steps and emits the sum every ``k``-th step, zeros otherwise.

    ``a <- g + [t mod k != 0] a``; ``u <- [t mod k = k - 1] a``, ``t`` the 0-based step.
    Transformations before it in a chain still update their state every step; for a
    faithful large-batch equivalent wrap the optimizer in ``MultiSteps``. ``k >= 1``.

    Args:
      k: The window length, an int ``>= 1`` (default 1: every step emits its update).
        A smaller int raises ``ValueError``, a float or bool ``TypeError``.

    Returns:
      A ``GradientTransformation`` whose state is ``ApplyEvery(count, grad_acc)``.
    """
    validate.int_at_least("k", k, 1)

    def init(params):
        base.check_float_leaves(params, "apply_every")
        return ApplyEvery(count=jnp.zeros([], jnp.int32), grad_acc=tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.grad_acc, "accumulated updates")
        c = state.count % k
        grad_acc = jax.tree.map(lambda g, a: (c != 0) * a + g, updates, state.grad_acc)
        emit = c == k - 1
        out = jax.tree.map(lambda a: emit * a, grad_acc)
        count = (numerics.safe_increment(state.count) % k).astype(jnp.int32)
        # The accumulator keeps its initial dtype, so the state has a fixed type.
        return out, ApplyEvery(count=count, grad_acc=tree_ops.cast_like(grad_acc, state.grad_acc))

    return base.GradientTransformation(init, update)
