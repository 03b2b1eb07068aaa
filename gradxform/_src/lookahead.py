"""Lookahead: k fast steps forward, one interpolating step back (Zhang et al. 2019)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, validate


class LookaheadState(NamedTuple):
    """The state of ``lookahead``.

    Attributes:
      fast_state: The fast optimizer's state.
      steps_since_sync: int32 scalar, the fast steps since the last synchronisation
        (``0..sync_period-1``).
    """

    fast_state: Any  # the fast optimizer's state
    steps_since_sync: jax.Array  # int32: fast steps since the last synchronisation


class LookaheadParams(NamedTuple):
    """The fast weights (take gradients here) and the slow weights (evaluate these).

    Attributes:
      fast: The fast weights, a parameter tree; gradients are taken here.
      slow: The slow weights, a tree of the same structure; evaluate the model here.
    """

    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params: Any) -> LookaheadParams:
        """Fast and slow weights both equal to ``params``."""
        return cls(fast=params, slow=params)


def lookahead(
    fast_optimizer: Any,
    sync_period: int,
    slow_step_size: jax.typing.ArrayLike,
    reset_state: bool = False,
) -> base.GradientTransformation:
    """Lookahead around ``fast_optimizer``; params and updates are ``LookaheadParams``.

    Each step the fast weights move by the fast optimizer's update ``d``. Every
    ``sync_period``-th step they are also synchronised: with
    ``D = fast + d - slow``, ``slow <- slow + alpha D`` and ``fast <- slow`` (new),
    i.e. updates ``(fast: d - (1 - alpha) D, slow: alpha D)``; on other steps
    ``(fast: d, slow: 0)``. ``alpha = slow_step_size`` in ``[0, 1]``,
    ``sync_period >= 1``; ``reset_state`` re-initialises the fast optimizer's state at
    each synchronisation. Gradients are taken at ``params.fast``; apply the updates
    unmodified. Zhang et al. (2019), "Lookahead Optimizer: k steps forward, 1 step back".

    Args:
      fast_optimizer: The optimizer run on the fast weights, any ``(init, update)`` pair.
      sync_period: The number ``k`` of fast steps between synchronisations, an int
        ``>= 1`` (a smaller int raises ``ValueError``, a float or bool ``TypeError``).
      slow_step_size: The interpolation factor ``alpha`` in ``[0, 1]`` (else
        ``ValueError``); 1 makes the slow weights jump to the fast ones.
      reset_state: If True, the fast optimizer's state is re-initialised at each
        synchronisation. Default False.

    Returns:
      A ``GradientTransformation`` whose state is a ``LookaheadState``; its ``update``
      takes and returns ``LookaheadParams`` trees (and raises ``ValueError`` when
      ``params`` is not one). ``init`` takes ``LookaheadParams`` (plain params are taken
      as the fast weights, with a warning).

    Examples:
      >>> opt = gx.lookahead(gx.sgd(learning_rate=0.5), sync_period=2, slow_step_size=0.5)
      >>> params = gx.LookaheadParams.init_synced(jnp.array([1.0]))
      >>> state = opt.init(params)
      >>> for _ in range(2):
      ...     updates, state = opt.update(jnp.array([1.0]), state, params)  # grad at fast
      ...     params = gx.apply_updates(params, updates)
      >>> print(np.asarray(params.fast).round(4), np.asarray(params.slow).round(4))
      [0.5] [0.5]
    """
    if isinstance(sync_period, bool) or (
        isinstance(sync_period, numbers.Number) and not isinstance(sync_period, numbers.Integral)
    ):
        raise TypeError(f"sync_period must be an int, got {sync_period!r}")
    validate.in_range("sync_period", sync_period, 1)
    validate.unit_interval("slow_step_size", slow_step_size)
    fast_optimizer = base.as_transformation(fast_optimizer)

    def init(params):
        fast = getattr(params, "fast", None)
        if fast is None:
            warnings.warn(
                "lookahead.init got params without a `fast` field; treating them as the fast "
                "weights (pass LookaheadParams.init_synced(params) to silence this)",
                stacklevel=2,
            )
            fast = params
        return LookaheadState(
            fast_state=fast_optimizer.init(fast), steps_since_sync=jnp.zeros([], jnp.int32)
        )

    def update(updates, state, params=None, **extra):
        if not isinstance(params, LookaheadParams):
            raise ValueError(
                "lookahead needs params=LookaheadParams(fast, slow) in update, got "
                f"{type(params).__name__}"
            )
        base.check_same_structure(updates, params.fast, "fast params")
        fast_updates, fast_state = fast_optimizer.update(
            updates, state.fast_state, params.fast, **extra
        )
        sync = state.steps_since_sync == sync_period - 1
        diff = jax.tree.map(lambda f, u, s: f + u - s, params.fast, fast_updates, params.slow)
        out = LookaheadParams(
            fast=jax.tree.map(lambda u, d: u - sync * (1 - slow_step_size) * d, fast_updates, diff),
            slow=jax.tree.map(lambda d: slow_step_size * sync * d, diff),
        )
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(lambda now, new: jnp.where(sync, new, now), fast_state, fresh)
        steps = numerics.safe_increment(state.steps_since_sync) % sync_period
        return out, LookaheadState(fast_state, steps.astype(jnp.int32))

    return base.GradientTransformation(init, update)
