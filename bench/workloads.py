"""The parameter trees the benchmark optimizes: shapes only, filled deterministically.

- ``one_leaf``: one 4096 x 4096 float32 matrix (16.8M parameters).
- ``transformer``: 200 leaves shaped like a 16-layer, width-256 transformer (16.1M).
- ``small_leaves``: 1000 small leaves, 125 blocks of 8 (0.99M), 6 distinct shapes.

``quick=True`` shrinks every tree so a whole run takes seconds.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def one_leaf_shapes(quick: bool) -> dict:
    n = 256 if quick else 4096
    return {"w": (n, n)}


def transformer_shapes(quick: bool) -> dict:
    d, layers, vocab, ctx, out = (16, 1, 64, 16, 32) if quick else (256, 16, 8192, 1024, 4096)
    tree: dict[str, Any] = {"embed": (vocab, d), "pos_embed": (ctx, d)}
    for i in range(layers):
        tree[f"layer_{i:02d}"] = {
            "ln1": {"scale": (d,), "bias": (d,)},
            "attn": {"qkv": (d, 3 * d), "qkv_bias": (3 * d,), "out": (d, d), "out_bias": (d,)},
            "ln2": {"scale": (d,), "bias": (d,)},
            "mlp": {"up": (d, 4 * d), "up_bias": (4 * d,), "down": (4 * d, d), "down_bias": (d,)},
        }
    tree["ln_f"] = {"scale": (d,), "bias": (d,)}
    tree["head"] = {"w": (d, out), "b": (out,), "cls": (d,), "temperature": ()}
    return tree


def small_leaves_shapes(quick: bool) -> dict:
    block = {
        "w1": (64, 48),
        "b1": (48,),
        "w2": (48, 64),
        "b2": (64,),
        "ln_scale": (64,),
        "ln_bias": (64,),
        "emb": (16, 64),
        "gate": (64, 8),
    }
    return {f"block_{i:03d}": dict(block) for i in range(4 if quick else 125)}


WORKLOADS = {
    "one_leaf": one_leaf_shapes,
    "transformer": transformer_shapes,
    "small_leaves": small_leaves_shapes,
}


def _is_shape(x) -> bool:
    return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def make(name: str, quick: bool, dtype=jnp.float32, seed: int = 0):
    """``(params, grads)`` for the named workload: N(0, 1) params, N(0, 1e-4) grads."""
    shapes = WORKLOADS[name](quick)
    rng = np.random.default_rng(seed)
    params = jax.tree.map(
        lambda s: jnp.asarray(rng.standard_normal(s, np.float32), dtype), shapes, is_leaf=_is_shape
    )
    grads = jax.tree.map(
        lambda s: jnp.asarray(1e-2 * rng.standard_normal(s, np.float32), dtype),
        shapes,
        is_leaf=_is_shape,
    )
    return params, grads


def count(tree) -> tuple[int, int]:
    """``(number of leaves, number of elements)``."""
    leaves = jax.tree.leaves(tree)
    return len(leaves), int(sum(np.size(x) for x in leaves))
