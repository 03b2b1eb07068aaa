"""One step counter for a whole optimizer: ``with_count``.

Adam needs the step number ``t`` twice (to debias ``m`` and ``v``) and its learning rate
schedule needs it once more. Built from primitives that each keep a counter, its state
would hold three or four copies of the same integer. ``with_count`` keeps one and hands
it to every member as the extra argument ``count``; members built with
``shared_count=True`` read it and keep no counter of their own.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics


class WithCountState(NamedTuple):
    count: jax.Array  # int32 scalar: the number of updates made so far
    inner: Any


def with_count(inner: Any) -> base.GradientTransformation:
    """Counts steps for ``inner``: ``t <- t + 1`` (saturating at the int32 maximum), then
    ``inner.update(u, s, p, count=t, **extra)``, ``t = 1`` on the first update.

    Inside, ``ema``, ``bias_correction``, ``nesterov_ema``, ``scale_by_schedule``,
    ``scale_by_learning_rate`` and ``add_decayed_weights`` built with ``shared_count=True``
    use ``t`` (a schedule sees ``t - 1``, the number of earlier updates, as it does with
    its own counter), so the optimizer's state stores the step once.
    """
    inner = base.as_transformation(inner)

    def init(params):
        return WithCountState(count=jnp.zeros([], jnp.int32), inner=inner.init(params))

    def update(updates, state, params=None, **extra):
        if not isinstance(state, WithCountState):
            raise ValueError(
                f"with_count expects the WithCountState made by its init, got "
                f"{type(state).__name__}"
            )
        count = numerics.safe_increment(state.count)
        extra = {**extra, "count": count}
        updates, inner_state = inner.update(updates, state.inner, params, **extra)
        return updates, WithCountState(count=count, inner=inner_state)

    return base.GradientTransformation(init, update)


def shared_step(extra: dict, who: str) -> jax.Array:
    """The step number ``t`` (1 on the first update) handed down by ``with_count``."""
    if "count" not in extra:
        raise ValueError(
            f"{who}(shared_count=True) reads the step number from an enclosing "
            f"with_count(...); call it inside one"
        )
    return extra["count"]
