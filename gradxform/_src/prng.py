"""PRNG keys as the transformations that draw noise accept them."""

from __future__ import annotations

import warnings
from typing import Any

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


def key_or_seed(who: str, key: Any, seed: int | None) -> Any:
    """The key a noise transformation was given: ``key``, or the deprecated ``seed``
    (``DeprecationWarning``; both given raises ``ValueError``), or 0 with a warning when
    neither is, since a fixed key repeats the same noise every run.

    Args:
      who: the transformation's name, for the messages.
      key: a key or int seed as ``as_key`` takes, or ``None``.
      seed: the deprecated int seed, or ``None``.

    Returns:
      ``key``, ``seed`` or 0, not yet converted by ``as_key``.
    """
    # stacklevel 3: the warnings point at the caller of the transformation's builder.
    if seed is not None:
        warnings.warn(f'{who}: "seed" is deprecated, pass "key"', DeprecationWarning, 3)
        if key is not None:
            raise ValueError(f"{who}: pass only one of key and seed")
        key = seed
    if key is None:
        warnings.warn(f"{who}: no key given, using key 0", stacklevel=3)
        key = 0
    return key
