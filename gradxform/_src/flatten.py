"""Running a transformation on one flat vector instead of a tree of arrays."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base


def _flatten(tree: Any) -> jax.Array:
    return jnp.concatenate([jnp.reshape(x, [-1]) for x in jax.tree.leaves(tree)])


def _unflatten(like: Any, flat: jax.Array) -> Any:
    leaves, treedef = jax.tree.flatten(like)
    offsets = np.cumsum([np.size(x) for x in leaves])[:-1]
    pieces = jnp.split(flat, offsets)
    return jax.tree.unflatten(
        treedef,
        [jnp.reshape(p, jnp.shape(x)).astype(jnp.asarray(x).dtype) for p, x in zip(pieces, leaves)],
    )


def flatten(inner: Any) -> base.GradientTransformation:
    """Runs ``inner`` on the concatenation of all leaves, raveled in tree order.

    ``init(params) = inner.init(vec(params))``;
    ``update(u) = unvec(inner.update(vec(u), state, vec(params)))``. Fewer, larger
    arrays cost less per-op overhead than many small ones. Each output leaf is cast
    back to the dtype of its input leaf (concatenation promotes mixed dtypes).

    Args:
      inner: The transformation to run on the flat vector, any ``(init, update)`` pair.
        It sees one 1-D array in the promoted dtype of all leaves, so per-leaf
        statistics (trust ratios, factored moments) become whole-vector ones.

    Returns:
      A ``GradientTransformation`` whose state is ``inner``'s state over the flat
      vector. Its ``init`` raises ``TypeError`` for integer or boolean leaves.
    """
    inner = base.as_transformation(inner)

    def init(params):
        # Concatenation would promote an integer leaf to float and hide it from the
        # inner transformation's own check.
        base.check_float_leaves(params, "flatten")
        return inner.init(_flatten(params))

    def update(updates, state, params=None, **extra):
        flat_params = None if params is None else _flatten(params)
        flat_updates, state = inner.update(_flatten(updates), state, flat_params, **extra)
        return _unflatten(updates, flat_updates), state

    return base.GradientTransformation(init, update)
