"""The dtypes of a pytree's leaves: the common one, and typed PRNG keys unwrapped."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    """``(lower, higher)``: the dtype that promotes to the other first."""
    joined = jnp.promote_types(a, b)
    if joined == b:
        return a, b
    if joined == a:
        return b, a
    raise ValueError(f"dtypes {a} and {b} are not ordered: neither promotes to the other")


def dtype(tree: Any, mixed_dtype_handler: str | None = None) -> Any:
    """The dtype of the leaves of ``tree``.

    Args:
      tree: A pytree of arrays (or scalars). An empty tree has JAX's default float dtype.
      mixed_dtype_handler: What to do when the leaves differ: None (default) raises
        ``ValueError`` naming each leaf that differs from the first; ``"promote"`` returns
        their common promoted dtype; ``"highest"`` / ``"lowest"`` the highest / lowest
        dtype among them (``ValueError`` when two are not ordered, e.g. bfloat16 and
        float16).

    Returns:
      A NumPy dtype.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(leaves).dtype
    dtypes = [jnp.asarray(x).dtype for x in leaves]
    if mixed_dtype_handler is None:
        wrong = [
            f"{jax.tree_util.keystr(path)}: {jnp.asarray(x).dtype}"
            for path, x in jax.tree_util.tree_leaves_with_path(tree)
            if jnp.asarray(x).dtype != dtypes[0]
        ]
        if wrong:
            raise ValueError(f"expected every leaf to be {dtypes[0]}, got " + ", ".join(wrong))
        return dtypes[0]
    if mixed_dtype_handler == "promote":
        return functools.reduce(jnp.promote_types, dtypes)
    if mixed_dtype_handler == "highest":
        return functools.reduce(lambda a, b: _ordered(a, b)[1], dtypes)
    if mixed_dtype_handler == "lowest":
        return functools.reduce(lambda a, b: _ordered(a, b)[0], dtypes)
    raise ValueError(
        "mixed_dtype_handler must be None, 'promote', 'highest' or 'lowest', "
        f"got {mixed_dtype_handler!r}"
    )


def unwrap_random_key_data(tree: Any) -> Any:
    """Every typed PRNG key leaf (``jax.random.key``) replaced by its raw ``uint32`` data
    (``jax.random.key_data``), other leaves unchanged: for code and checkpoints that take
    plain arrays only.

    Args:
      tree: A pytree that may hold typed keys.

    Returns:
      The same tree with the keys unwrapped.
    """

    def unwrap(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(unwrap, tree)
