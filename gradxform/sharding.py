"""Optimizer state under ``jax.sharding``: layouts for ``jit`` and ZeRO-1 partitioning.

Nothing here moves data by itself: every function states a layout and lets ``jax.jit``
and XLA's SPMD partitioner insert the collectives, so the same code runs on one device,
on a mesh of local devices and across hosts started with ``jax.distributed.initialize``.

- On a mesh whose axes are ``Explicit`` (what ``jax.make_mesh`` builds by default), the
  sharding is part of every array's type: ``jax.jit(tx.init)`` on sharded params already
  gives each per-parameter state leaf its parameter's ``NamedSharding`` and replicates
  scalar counters (the tests check every optimizer of the catalogue).
- On a mesh whose axes are ``Auto``, ``jit`` leaves the layout of fresh arrays to XLA,
  and state built from zeros is not tied to the params; pass
  ``out_shardings=state_shardings(tx, params)`` to ``jax.jit(tx.init)`` and to the step.
- ``partition_state`` additionally splits the state (and the update arithmetic) over a
  data-parallel mesh axis while params stay replicated over it: ZeRO stage 1
  (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion
  Parameter Models").

See ``docs/sharding.md`` for single- and multi-host recipes.
"""

from gradxform._src.sharding import (
    bytes_per_device,
    partition_spec,
    partition_state,
    state_shardings,
    with_auto_axes,
)

__all__ = [
    "bytes_per_device",
    "partition_spec",
    "partition_state",
    "state_shardings",
    "with_auto_axes",
]
