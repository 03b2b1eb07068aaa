"""Dtypes of optimizer state: the storage dtype a user asks for, and the dtype of scalar
state kept for a whole tree of parameters."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp


def canonicalize_dtype(dtype: Any) -> Any:
    """``jnp.dtype(dtype)``, or None for None.

    Args:
      dtype: a storage dtype argument as the user gave it (``mu_dtype``,
        ``accumulator_dtype``): anything ``jnp.dtype`` accepts, or None for "the params'
        own dtypes".

    Returns:
      The canonical ``numpy.dtype``, or None.
    """
    return None if dtype is None else jnp.dtype(dtype)


def lowest_dtype(tree: Any) -> Any:
    """The least precise leaf dtype: the one every other leaf's dtype promotes from.

    A scalar shared by all leaves (a step-size estimate, a weight sum) kept in it can be
    combined with every leaf without changing that leaf's dtype.
    """
    dtypes = [jnp.asarray(x).dtype for x in jax.tree.leaves(tree)]
    if not dtypes:
        return jnp.asarray([]).dtype

    def lower(a, b):
        promoted = jnp.promote_types(a, b)
        if promoted == b:
            return a
        if promoted == a:
            return b
        raise ValueError(f"leaf dtypes {a} and {b} have no order: neither promotes to the other")

    return functools.reduce(lower, dtypes)


def value_dtype(params: Any) -> Any:
    """The real dtype of objective values for these params (``float32`` for complex64).

    Args:
      params: a non-empty tree of arrays; its first leaf's dtype decides.

    Returns:
      The real dtype of that leaf's dtype.
    """
    leaf = jax.tree.leaves(params)[0]
    return jnp.real(jnp.empty((), jnp.asarray(leaf).dtype)).dtype
