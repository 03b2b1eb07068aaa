"""Functions of a batch evaluated one microbatch at a time, as ``optax.microbatching``.

``microbatch`` splits the batch axis into microbatches, evaluates a function on each in
turn and combines the results (``AccumulationType`` or an ``Accumulator``); ``micro_vmap``
is ``jax.vmap`` run that way and ``micro_grad`` computes per-example gradients with it.
``reshape_batch_axis`` is the split. Each name's docstring gives its semantics.
"""

from gradxform._src.microbatching import (
    AccumulationType,
    Accumulator,
    micro_grad,
    micro_vmap,
    microbatch,
    reshape_batch_axis,
)

__all__ = [
    "AccumulationType",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]
