"""Arithmetic on pytrees, leaf by leaf: ``gradxform.tree.add(a, b)`` and friends, the
moment updates optimizers are written with, and state access by field name
(``gradxform.tree.get(state, "mu")``), as ``optax.tree``.

``None`` leaves are treated as absent: they pass through maps untouched.
"""

from gradxform._src.state_access import (
    NamedTupleKey,
    get,
    get_all_with_path,
    map_params,
    set,
)
from gradxform._src.tree_dtype import (
    dtype,
    unwrap_random_key_data,
)
from gradxform._src.tree_math import (
    add,
    add_scale,
    allclose,
    bias_correction,
    cast,
    cast_like,
    clip,
    conj,
    div,
    full_like,
    map_moment,
    max,
    min,
    mul,
    norm,
    ones_like,
    real,
    scale,
    size,
    sub,
    sum,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
    vdot,
    where,
    zeros_like,
)

__all__ = [
    "NamedTupleKey",
    "add",
    "add_scale",
    "allclose",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "map_moment",
    "map_params",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "real",
    "scale",
    "set",
    "size",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
