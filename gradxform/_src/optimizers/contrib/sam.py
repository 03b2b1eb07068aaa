"""SAM: sharpness-aware minimisation, an outer optimizer stepping from adversarial points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, validate


class SAMState(NamedTuple):
    """The state of ``sam``.

    Attributes:
        steps_since_sync: int32 scalar in ``0 .. sync_period - 1``, the adversarial steps
            since the outer optimizer's last step.
        opt_state: the outer optimizer's state.
        adv_state: the adversarial optimizer's state.
        cache: the outer params, kept across the adversarial steps (``None`` in opaque
            mode).
    """

    steps_since_sync: jax.Array
    opt_state: Any
    adv_state: Any
    cache: Any


def sam(
    optimizer: base.GradientTransformation,
    adv_optimizer: base.GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> base.GradientTransformation:
    """SAM (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently Improving
    Generalization"), in the form of optax.contrib: ``sync_period - 1`` ascent steps of
    ``adv_optimizer`` from the outer params ``x``, then one step of ``optimizer`` on ``x``
    with the gradient at the adversarial point.

    Classic SAM is ``sam(sgd(lr), chain(normalize(), scale(rho)))``: the ascent
    ``x_adv = x + rho g / ||g||``, then ``x <- x - lr grad f(x_adv)``.

    Transparent mode (default): each ``update`` is one step of the cycle. Steps
    ``0 .. sync_period - 2`` return the ascent ``-adv_update`` (and step 0 caches ``x``);
    the last returns ``x_cache - x + u_outer``, which moves the params back to the cached
    ``x`` and takes the outer step there. Opaque mode: one ``update`` runs the whole
    cycle and needs ``grad_fn=`` (``grad_fn(params, i)``, the gradient at the ``i``-th
    adversarial point).

    Args:
      optimizer: the outer optimizer.
      adv_optimizer: the adversarial optimizer; its update is negated (an ascent).
      sync_period: steps per cycle (adversarial steps plus one), an int ``>= 1``;
        default 2.
      reset_state: re-initialise ``adv_optimizer``'s state after each cycle; default
        ``True``.
      opaque_mode: run the cycle inside one update (needs ``grad_fn=``); default
        ``False``.
      batch_axis_name: in opaque mode, the axis over which the adversarial gradients are
        averaged with ``lax.pmean``; default ``None``.

    Returns:
      A ``GradientTransformation`` with state ``SAMState``.
    """
    validate.positive_int("sync_period", sync_period)
    optimizer = base.as_transformation(optimizer)
    adv_optimizer = base.as_transformation(adv_optimizer)

    def init(params):
        return SAMState(
            steps_since_sync=jnp.zeros([], jnp.int32),
            opt_state=optimizer.init(params),
            adv_state=adv_optimizer.init(params),
            cache=None if opaque_mode else params,
        )

    def transparent_update(updates, state, params=None, **extra):
        extra.pop("grad_fn", None)
        if params is None:
            raise ValueError("sam needs params: call update(updates, state, params)")
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        adv_updates, adv_state = adv_optimizer.update(updates, state.adv_state, params, **extra)
        adv_updates = jax.tree.map(jnp.negative, adv_updates)
        outer, opt_state = optimizer.update(updates, state.opt_state, state.cache, **extra)
        outer = jax.tree.map(
            lambda c, p, u: (c - p + u).astype(u.dtype), state.cache, params, outer
        )
        if reset_state:
            adv_state = tree_ops.where(last, adv_optimizer.init(params), adv_state)
        else:
            adv_state = tree_ops.where(last, state.adv_state, adv_state)
        return tree_ops.where(last, outer, adv_updates), SAMState(
            steps_since_sync=(state.steps_since_sync + 1) % sync_period,
            opt_state=tree_ops.where(last, opt_state, state.opt_state),
            adv_state=adv_state,
            cache=tree_ops.where(first, params, state.cache),
        )

    def opaque_update(updates, state, params=None, **extra):
        grad_fn: Callable[[Any, int], Any] | None = extra.pop("grad_fn", None)
        if grad_fn is None:
            raise ValueError("sam(opaque_mode=True) needs grad_fn=: update(..., grad_fn=f)")
        if params is None:
            raise ValueError("sam needs params: call update(updates, state, params, grad_fn=f)")
        adv_params, adv_updates, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(
                adv_updates, adv_state, adv_params, **extra
            )
            adv_params = base.apply_updates(adv_params, jax.tree.map(jnp.negative, adv_updates))
            adv_updates = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_updates = jax.lax.pmean(adv_updates, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        out, opt_state = optimizer.update(adv_updates, state.opt_state, params, **extra)
        return out, SAMState(
            steps_since_sync=jnp.zeros([], jnp.int32),
            opt_state=opt_state,
            adv_state=adv_state,
            cache=None,
        )

    return base.GradientTransformation(init, opaque_update if opaque_mode else transparent_update)
