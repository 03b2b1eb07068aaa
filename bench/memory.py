"""Bytes of optimizer state and the peak memory of a compiled step."""

from __future__ import annotations

import jax
import numpy as np


def tree_bytes(tree) -> int:
    return int(sum(np.size(x) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def compiled_peak_bytes(compiled) -> int | None:
    """The step's peak device memory as XLA's buffer assignment plans it.

    Arguments + outputs - donated (aliased) bytes + temporaries: with params and state
    donated, the floor is params + grads + state.
    """
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, jax.errors.JaxRuntimeError):  # some backends do not report it
        return None
    if stats is None:
        return None
    peak = getattr(stats, "peak_memory_in_bytes", 0) or 0
    planned = (
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        - stats.alias_size_in_bytes
        + stats.temp_size_in_bytes
    )
    return int(max(peak, planned))
