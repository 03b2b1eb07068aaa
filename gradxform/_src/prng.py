"""PRNG keys as the transformations that draw noise accept them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def as_key(key: jax.Array | int) -> jax.Array:
    """A typed PRNG key from a typed key, a raw ``uint32`` key or an integer seed.

    Args:
      key: a typed key (``jax.random.key``), a raw key (``jax.random.PRNGKey``, a 1-d
        ``uint32`` array) or an integer seed.

    Returns:
      The typed key: ``key`` itself, the raw key's data wrapped, or ``jax.random.key(key)``.
    """
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if isinstance(key, (jax.Array, np.ndarray)) and np.ndim(key) == 1:
        return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    return jax.random.key(key)
