"""Updates of a slowly moving copy of the parameters (a target network)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def incremental_update(new_tensors: Any, old_tensors: Any, step_size: jax.typing.ArrayLike) -> Any:
    """Polyak averaging: ``old <- step_size * new + (1 - step_size) * old``, leaf by leaf.

    Used to track online parameters with a target copy (Lillicrap et al. 2016,
    "Continuous control with deep reinforcement learning"). ``None`` leaves of
    ``new_tensors`` stay ``None``.

    Args:
      new_tensors: The latest parameters.
      old_tensors: The tracking copy, same structure.
      step_size: The weight of the new values, usually in ``[0, 1]`` (a scalar or an
        array broadcasting with every leaf; not validated).

    Returns:
      The updated tracking copy.
    """
    return jax.tree.map(
        lambda new, old: None if new is None else step_size * new + (1.0 - step_size) * old,
        new_tensors,
        old_tensors,
        is_leaf=lambda x: x is None,
    )


def periodic_update(
    new_tensors: Any,
    old_tensors: Any,
    steps: jax.typing.ArrayLike,
    update_period: jax.typing.ArrayLike,
) -> Any:
    """``new_tensors`` every ``update_period`` steps (when ``steps % update_period == 0``),
    ``old_tensors`` otherwise: a target copy refreshed periodically (Mnih et al. 2015,
    "Human-level control through deep reinforcement learning").

    Args:
      new_tensors: The latest parameters.
      old_tensors: The tracking copy, same structure and dtypes.
      steps: The current step (an integer scalar, may be traced).
      update_period: The refresh period, an integer ``>= 1`` (not validated).

    Returns:
      ``new_tensors`` or ``old_tensors``, chosen under ``lax.cond``.
    """
    return jax.lax.cond(
        jnp.mod(steps, update_period) == 0, lambda: new_tensors, lambda: old_tensors
    )
