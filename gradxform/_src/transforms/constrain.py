"""Updates that keep the parameters inside a feasible set."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform._src import base


def keep_params_nonnegative() -> base.GradientTransformation:
    """Stops each parameter at zero: ``u <- -p`` where ``p + u < 0``, else ``u``.

    Put it last in a chain, so that ``p + u >= 0`` holds for the update actually
    applied. A parameter that is already negative is moved to 0.

    Takes no arguments.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState``); ``update`` needs
      ``params``.
    """

    def clamp(updates, params):
        base.check_update_inputs("keep_params_nonnegative", updates, params, params, "params")
        return jax.tree.map(
            lambda u, p: None if p is None else jnp.where((p + u) < 0.0, -p, u),
            updates,
            params,
            is_leaf=lambda x: x is None,
        )

    return base.stateless(clamp)
