"""A leaf as a grid of blocks: merge small dimensions, then cut long axes into blocks.

Kronecker-factored preconditioners (Shampoo, SOAP, PSGD-Kron) keep one ``d x d`` matrix
per axis of a tensor, so both very small axes (a ``(3, 3, 64, 128)`` convolution kernel
has two useless 3 x 3 factors) and very long ones (a ``d^3`` root of a 50k vocabulary) are
a problem. Merging adjacent small axes first and then splitting every axis longer than
``block_size`` into blocks solves both (Anil et al. 2020, "Scalable Second Order
Optimization for Deep Learning", section 5).

Everything here is static: a ``BlockLayout`` is built from a shape, at trace time, and
``split``/``merge`` are slices and concatenations that XLA fuses away.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp


def merge_small_dims(shape: Sequence[int], max_dim: int) -> tuple[int, ...]:
    """Merges adjacent dimensions while their product stays ``<= max_dim``.

    Scans ``shape`` left to right, multiplying dimensions into a running product; a
    dimension that would push the product past ``max_dim`` closes the current group and
    starts the next one. Groups of size 1 are dropped, so size-1 axes vanish, and a shape
    of only ones becomes ``(1,)``; a scalar's ``()`` stays ``()``. E.g. with
    ``max_dim=1024``: ``(1, 2, 512, 1, 2048, 1, 3, 4) -> (1024, 2048, 12)``.
    The same rule as precondition-opt's ``merge_small_dims``.

    Args:
      shape: the tensor's shape.
      max_dim: the largest merged dimension (``>= 1``); a single dimension larger than
        this is kept as it is.

    Returns:
      The merged shape; its product equals the product of ``shape``.
    """
    shape = tuple(int(d) for d in shape)
    if shape and all(d == 1 for d in shape):
        return (1,)
    merged, product = [], 1
    for d in shape:
        if product * d <= max_dim:
            product *= d
        else:
            if product > 1:
                merged.append(product)
            product = d
    if product > 1:
        merged.append(product)
    return tuple(merged)


def _axis_sizes(d: int, block_size: int) -> tuple[int, ...]:
    """``d`` cut into blocks of ``block_size``, the last one shorter."""
    full, rest = divmod(d, block_size)
    return (block_size,) * full + ((rest,) if rest else ())


@dataclasses.dataclass(frozen=True)
class BlockLayout:
    """How a leaf of shape ``shape`` is seen as blocks.

    The leaf is reshaped to ``merged_shape``; every axis ``i`` of that is cut into pieces
    of the sizes ``split_sizes[i]``; the blocks are the products of those pieces, in
    row-major order (the last axis varies fastest).

    Attributes:
      shape: the leaf's own shape.
      merged_shape: the shape after merging small dimensions (``shape`` when none merge).
      split_sizes: per axis of ``merged_shape``, the lengths of its pieces.
    """

    shape: tuple[int, ...]
    merged_shape: tuple[int, ...]
    split_sizes: tuple[tuple[int, ...], ...]

    @property
    def block_shapes(self) -> list[tuple[int, ...]]:
        """The shape of every block, in row-major block order."""
        return [tuple(s) for s in itertools.product(*self.split_sizes)]

    @property
    def num_blocks(self) -> int:
        return math.prod(len(s) for s in self.split_sizes)

    def split(self, x: jax.Array) -> list[jax.Array]:
        """The blocks of ``x`` (of shape ``shape``), in row-major block order."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"expected an array of shape {self.shape}, got {tuple(x.shape)}")
        x = jnp.reshape(x, self.merged_shape)
        starts = [tuple(itertools.accumulate((0, *s[:-1]))) for s in self.split_sizes]
        blocks = []
        for index in itertools.product(*(range(len(s)) for s in self.split_sizes)):
            window = tuple(
                slice(starts[a][i], starts[a][i] + self.split_sizes[a][i])
                for a, i in enumerate(index)
            )
            blocks.append(x[window])
        return blocks

    def merge(self, blocks: Sequence[jax.Array]) -> jax.Array:
        """The inverse of ``split``: blocks in row-major order back to one ``shape`` array."""
        if len(blocks) != self.num_blocks:
            raise ValueError(f"expected {self.num_blocks} blocks, got {len(blocks)}")
        pieces = list(blocks)
        # Glue the last axis first: runs of consecutive blocks differ only in it.
        for axis in reversed(range(len(self.split_sizes))):
            n = len(self.split_sizes[axis])
            pieces = [
                jnp.concatenate(pieces[i : i + n], axis=axis) if n > 1 else pieces[i]
                for i in range(0, len(pieces), n)
            ]
        return jnp.reshape(pieces[0], self.shape)


def block_layout(
    shape: Sequence[int],
    block_size: int,
    merge_small_dims_block_size: int | None = None,
) -> BlockLayout:
    """The ``BlockLayout`` of a leaf of ``shape``.

    Args:
      shape: the leaf's shape.
      block_size: the longest block along any axis (``>= 1``); an axis of length ``d`` is
        cut into ``ceil(d / block_size)`` pieces, the last one shorter.
      merge_small_dims_block_size: if not ``None``, first merge adjacent dimensions with
        ``merge_small_dims(shape, merge_small_dims_block_size)``; ``None`` keeps the
        leaf's own axes.

    Returns:
      The layout; ``layout.split(x)`` gives the blocks and ``layout.merge`` undoes it.
    """
    if isinstance(block_size, bool) or int(block_size) != block_size or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    shape = tuple(int(d) for d in shape)
    merged = shape
    if merge_small_dims_block_size is not None:
        merged = merge_small_dims(shape, merge_small_dims_block_size)
    sizes = tuple(_axis_sizes(d, int(block_size)) if d > 0 else (0,) for d in merged)
    return BlockLayout(shape=shape, merged_shape=merged, split_sizes=sizes)
