"""Kronecker-factored second-moment statistics: one Gram matrix per block and axis.

For a tensor block ``G`` and an axis ``i`` of length ``n``, ``G_(i)`` is the ``n x m``
matrix whose columns are the fibres of ``G`` along ``i`` (``m`` the product of the other
axes), and the axis statistic is ``G_(i) G_(i)^T``. Shampoo (Gupta, Koren and Singer
2018, "Shampoo: Preconditioned Stochastic Tensor Optimization") accumulates
``L_i <- beta2 L_i + w G_(i) G_(i)^T``, a sum (``beta2 = 1``, ``w = 1``, AdaGrad's view)
or an exponential moving average (``w = 1 - beta2``); SOAP keeps the same factors to
find its eigenbasis.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from gradxform._src.kronecker.blocking import BlockLayout


def axis_gram(block: jax.Array, axis: int, precision: lax.Precision | None = None) -> jax.Array:
    """``G_(axis) G_(axis)^T``: ``block`` contracted with itself over every other axis.

    Args:
      block: a tensor of any rank ``>= 1``.
      axis: the axis whose ``n x n`` statistic to form.
      precision: XLA precision of the contraction (``None``: the default).

    Returns:
      The ``(n, n)`` symmetric positive semi-definite matrix.
    """
    others = [a for a in range(block.ndim) if a != axis]
    return jnp.tensordot(block, block, axes=(others, others), precision=precision)


def statistic_weight(beta2: float) -> float:
    """The weight of a new Gram matrix: 1 for a running sum (``beta2 == 1``), else ``1 - beta2``."""
    return 1.0 if beta2 == 1.0 else 1.0 - beta2


def accumulate(old: jax.Array, gram: jax.Array, beta2: float) -> jax.Array:
    """``beta2 old + w gram`` with ``w = statistic_weight(beta2)``: EMA, or a sum at 1.

    Args:
      old: the previous statistic.
      gram: the new Gram matrix, same shape.
      beta2: the decay in ``[0, 1]``.

    Returns:
      The new statistic, in ``old``'s dtype.
    """
    return (beta2 * old + statistic_weight(beta2) * gram).astype(old.dtype)


def block_grams(
    layout: BlockLayout,
    x: jax.Array,
    axes: Sequence[bool],
    precision: lax.Precision | None = None,
) -> list[jax.Array]:
    """The Gram matrix of every block of ``x`` and every flagged axis.

    Args:
      layout: how ``x`` splits into blocks (``blocking.block_layout``).
      x: a tensor of shape ``layout.shape``.
      axes: one flag per axis of ``layout.merged_shape``: form that axis' statistic.
      precision: XLA precision of the contractions; ``None`` (default): XLA's default.

    Returns:
      ``[axis_gram(b, i) for b in layout.split(x) for i in flagged axes]``: blocks in
      row-major order, axes in increasing order within a block.
    """
    flagged = [i for i, keep in enumerate(axes) if keep]
    return [axis_gram(b, i, precision) for b in layout.split(x) for i in flagged]
