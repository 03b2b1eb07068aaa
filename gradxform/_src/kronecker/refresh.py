"""Recompute an expensive quantity only every ``k`` steps and keep it in between.

Preconditioner roots (an eigendecomposition or tens of Newton iterations per factor) and
even the factors' statistics are costly; Shampoo amortises them by refreshing them every
``k`` steps (Anil et al. 2020, "Scalable Second Order Optimization for Deep Learning").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax


def is_refresh_step(count: jax.typing.ArrayLike, every: int) -> jax.Array:
    """``count % every == 0``: whether step ``count`` (0-based) refreshes.

    Args:
      count: the number of earlier steps (an integer scalar, may be traced).
      every: the refresh period, an integer ``>= 1``.

    Returns:
      A boolean scalar.
    """
    return jnp.asarray(count) % every == 0


def refresh_every(
    count: jax.typing.ArrayLike,
    every: int,
    compute: Callable[[], Any],
    current: Any,
) -> Any:
    """``compute()`` on steps with ``count % every == 0``, else ``current`` unchanged.

    With ``every == 1`` this is ``compute()`` with no conditional at all; otherwise a
    ``lax.cond``, so the computation is skipped at run time on the other steps.

    Args:
      count: the number of earlier steps (0 on the first; may be traced).
      every: the refresh period, an integer ``>= 1``.
      compute: a function of no arguments returning a pytree shaped like ``current``.
      current: the value to keep between refreshes.

    Returns:
      The refreshed or the kept pytree.
    """
    if every == 1:
        return compute()
    return lax.cond(is_refresh_step(count, every), compute, lambda: current)
