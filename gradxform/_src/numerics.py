"""Numerics that stay finite where the naive formula does not."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|^2`` without a square root; for complex ``x`` it is ``re^2 + im^2``.

    Args:
      x: An array (or array-like), real or complex.

    Returns:
      ``|x|^2`` element-wise, real (a real dtype of the same precision for complex ``x``).
    """
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        return x.real**2 + x.imag**2
    return x**2


def saturate(x: jax.Array, top: jax.typing.ArrayLike) -> jax.Array:
    """``x`` with each value above ``top`` replaced by ``top``; NaN stays NaN.

    A compare and a select, not ``min(x, top)``: XLA counts a ``min`` with a constant
    as effectively unary, free to recompute, and fuses it (with everything it reads) into
    each consumer; the consumer of a state buffer then reads the old buffer, so XLA
    copies a donated state buffer before overwriting it (a third more bytes for Adam's
    step). Two large operands keep the saturated value computed once.

    Args:
      x: A float array.
      top: The largest value kept, a scalar (converted to ``x``'s dtype).

    Returns:
      ``top if x > top else x`` element-wise, in ``x``'s dtype.
    """
    x = jnp.asarray(x)
    top = jax.lax.full_like(x, top)
    return jax.lax.select(jax.lax.gt(x, top), top, x)


def safe_increment(count: jax.typing.ArrayLike) -> jax.Array:
    """``count + 1``, saturating at the dtype's maximum instead of overflowing.

    Args:
      count: An integer or floating counter (any shape); another dtype raises
        ``ValueError``.

    Returns:
      ``min(count + 1, max)`` in ``count``'s dtype.
    """
    count = jnp.asarray(count)
    if jnp.issubdtype(count.dtype, jnp.integer):
        largest: int | float = jnp.iinfo(count.dtype).max
    elif jnp.issubdtype(count.dtype, jnp.floating):
        largest = float(jnp.finfo(count.dtype).max)
    else:
        raise ValueError(f"cannot increment a counter of dtype {count.dtype}")
    top = jnp.array(largest, count.dtype)
    return jnp.where(count < top, count + jnp.array(1, count.dtype), top)


def safe_int32_increment(count: jax.typing.ArrayLike) -> jax.Array:
    """``safe_increment`` for an int32 counter (optax's older name).

    Args:
      count: A counter, converted to int32.

    Returns:
      ``min(count + 1, 2**31 - 1)`` as int32.
    """
    return safe_increment(jnp.asarray(count, jnp.int32))


def safe_norm(x, min_norm, ord=None, axis=None, keepdims=False):  # noqa: A002
    """``max(||x||, min_norm)`` whose gradient is zero, not NaN, where ``||x|| <= min_norm``.

    Args:
      x: An array, real or complex.
      min_norm: The floor of the norm, a scalar (typically ``>= 0``; not validated).
      ord: The norm's order, as ``jnp.linalg.norm`` takes it; default None, the 2-norm
        (Frobenius for a matrix) over the axes.
      axis: The axis or axes the norm is taken over, as ``jnp.linalg.norm`` takes them;
        default None, all of them.
      keepdims: If True, the reduced axes are kept with size 1. Default False.

    Returns:
      The floored norm, in ``x``'s dtype for the 2-norm.
    """
    dtype = jnp.asarray(x).dtype
    if ord is None:
        # The 2-norm in one pass over x: the root of the sum of squares is taken of a
        # substitute (1) where the norm is small, which keeps its gradient finite, so no
        # array-sized substitute of x needs to be written and read back.
        sq = jnp.sum(abs_sq(x), axis=axis, keepdims=True)
        small = jnp.sqrt(sq) <= min_norm
        norm_safe = jnp.sqrt(jnp.where(small, jnp.ones_like(sq), sq))
        out = jnp.where(small, jnp.asarray(min_norm, dtype), norm_safe.astype(dtype))
        return out if keepdims else jnp.squeeze(out, axis=axis)
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    small = norm <= min_norm
    # Differentiate through a substitute input where the norm is small: the gradient
    # of the norm at zero is undefined and would poison the whole backward pass.
    x_safe = jnp.where(small, jnp.ones_like(x), x)
    norm_safe = jnp.linalg.norm(x_safe, ord=ord, axis=axis, keepdims=True)
    out = jnp.where(small, jnp.asarray(min_norm, dtype), norm_safe)
    return out if keepdims else jnp.squeeze(out, axis=axis)


def safe_root_mean_squares(x: jax.Array, min_rms: jax.typing.ArrayLike) -> jax.Array:
    """``max(sqrt(mean(|x|^2)), min_rms)`` with a finite gradient everywhere.

    ``|x|^2`` is the squared modulus (``abs_sq``): ``x^2`` of a complex leaf is complex and
    its root is not a scale. The mean is taken once; where the rms is small the root is
    taken of a substitute (1), which keeps its gradient finite.

    Args:
      x: An array, real or complex; the mean is over all its entries.
      min_rms: The floor of the result, a scalar (typically ``>= 0``; not validated).

    Returns:
      A scalar, ``max(rms(x), min_rms)``.
    """
    mean_sq = jnp.mean(abs_sq(x))
    small = jnp.sqrt(mean_sq) <= min_rms
    return jnp.where(small, min_rms, jnp.sqrt(jnp.where(small, 1.0, mean_sq)))


def clamped_variance(second: jax.Array, first: jax.Array) -> jax.Array:
    """``max(E[|g|^2] - |E[g]|^2, 0)`` in at least float32, from the second and first moments.

    A variance, ``>= 0`` in exact arithmetic; rounding, or ``|E[g]|^2`` overflowing float32
    for gradients near 1e30, can make the difference negative, and its root would be NaN.
    """
    return jnp.maximum(upcast(second) - abs_sq(upcast(first)), 0)


def global_norm(updates) -> jax.Array:
    """``sqrt(sum_i ||u_i||^2)`` over every leaf of the tree.

    Args:
      updates: A pytree of arrays, real or complex (``|u|^2`` is the squared modulus).

    Returns:
      A scalar array; 0.0 for a tree without leaves.

    Examples:
      >>> tree = {"a": jnp.array([3.0]), "b": jnp.array([[4.0, 12.0]])}
      >>> print(np.asarray(gx.global_norm(tree)).round(4))
      13.0
    """
    leaves = jax.tree.leaves(updates)
    if not leaves:
        return jnp.asarray(0.0)
    return jnp.sqrt(sum(jnp.sum(abs_sq(x)) for x in leaves))


def upcast(x: jax.Array) -> jax.Array:
    """``x`` in at least float32 precision.

    Half-precision moments underflow (``1e-3 * g^2`` is 0 in float16 for ``|g| < 5e-3``)
    and ``eps = 1e-8`` is 0 in float16, so divisions by a root of a moment are done in
    float32 and only the result is cast back to the update's dtype.
    """
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))
