"""How a transformation's update couples the leaves of a tree, read from its jaxpr.

``grouped`` stacks same-shape leaves and runs a transformation on the stacks. That is
exact only for some transformations, and which ones is decided here, by abstract
interpretation of the update's jaxpr traced on a small representative tree:

- *leaf-separable*: output leaf ``i`` (and leaf ``i``'s state) depends on the inputs of
  leaf ``i`` only, plus state shared by all leaves (a step count). Per-leaf reductions
  (trust ratios, block RMS, factored moments) are fine. Exact under ``vmap`` over the
  stacked axis.
- *stack-invariant*: every array op is element-wise, and leaves meet only through full
  reductions (``sum``, ``max``, ``min``, ``and``, ``or`` over a whole leaf) combined over
  *all* leaves by the same monoid, e.g. ``sqrt(sum_i sum(u_i^2))``. Such a value is the
  same whether computed over the leaves or over stacks of them, so the transformation is
  exact when run directly on the stacks (up to summation order).

Anything the interpreter does not understand counts as neither: the answer errs on the
side of not grouping, never of grouping wrongly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
from jax.extend import core as jex_core

_ELEMENTWISE = frozenset(
    [
        "abs",
        "acos",
        "acosh",
        "add",
        "and",
        "asin",
        "asinh",
        "atan",
        "atan2",
        "atanh",
        "cbrt",
        "ceil",
        "clamp",
        "complex",
        "conj",
        "convert_element_type",
        "copy",
        "copy_p",
        "cos",
        "cosh",
        "digamma",
        "div",
        "eq",
        "erf",
        "erf_inv",
        "erfc",
        "exp",
        "exp2",
        "expm1",
        "floor",
        "ge",
        "gt",
        "imag",
        "integer_pow",
        "is_finite",
        "le",
        "lgamma",
        "log",
        "log1p",
        "logistic",
        "lt",
        "max",
        "min",
        "mul",
        "ne",
        "neg",
        "nextafter",
        "not",
        "or",
        "population_count",
        "pow",
        "real",
        "reduce_precision",
        "rem",
        "round",
        "rsqrt",
        "select_n",
        "sign",
        "sin",
        "sinh",
        "sqrt",
        "square",
        "sub",
        "tan",
        "tanh",
        "xor",
    ]
)
_REDUCTIONS = {
    "reduce_sum": "add",
    "reduce_max": "max",
    "reduce_min": "min",
    "reduce_and": "and",
    "reduce_or": "or",
}
_IDENTITY = {"add": 0.0, "max": -np.inf, "min": np.inf, "and": True, "or": False}


class Value(NamedTuple):
    """The abstract value of one jaxpr variable.

    ``deps``: the leaves it depends on. ``kind``, for stack invariance:
    ``"U"`` uniform and independent of position (a scalar, or a scalar broadcast;
    it may depend on whole-tree reductions), with ``const`` its value when known;
    ``"N"`` leaf-independent, not uniform; ``"E"`` element-aligned with leaf ``leaf``;
    ``"R"`` the ``op``-combination of full reductions of the leaves in ``reduced``;
    ``"F"`` none of these.
    """

    deps: frozenset
    kind: str
    leaf: int | None = None
    op: str | None = None
    const: Any = None
    reduced: frozenset = frozenset()


_FAIL = "F"


def uniform(const: Any = None) -> Value:
    return Value(frozenset(), "U", const=const)


def non_uniform() -> Value:
    return Value(frozenset(), "N")


def element(leaf: int) -> Value:
    return Value(frozenset([leaf]), "E", leaf=leaf)


def opaque(leaf: int) -> Value:
    """Depends on leaf ``leaf`` in a way that is not element-aligned (e.g. factored)."""
    return Value(frozenset([leaf]), _FAIL)


def _union(values) -> frozenset:
    out: frozenset = frozenset()
    for v in values:
        out = out | v.deps
    return out


def _shape(var) -> tuple:
    return tuple(getattr(var.aval, "shape", ()))


def _literal_value(var) -> Any:
    val = getattr(var, "val", None)
    if val is None:
        return None
    arr = np.asarray(val)
    return arr.reshape(()).item() if arr.size == 1 else None


class _Interpreter:
    def __init__(self, num_leaves: int):
        self.all = frozenset(range(num_leaves))

    def _combine_reductions(self, name: str, values: list[Value]) -> Value | None:
        """``add(R, R')`` and friends: partial reductions of disjoint leaves merging."""
        deps = _union(values)
        rs = [v for v in values if v.kind == "R"]
        ops = {v.op for v in rs}
        if len(ops) != 1 or name != next(iter(ops)):
            return None
        seen: frozenset = frozenset()
        for v in rs:
            if v.reduced & seen:
                return None
            seen |= v.reduced
        for v in values:
            if v.kind == "R":
                continue
            ident = _IDENTITY[name]
            if not (v.kind == "U" and v.const is not None and v.const == ident):
                return None
        if seen == self.all:
            return Value(deps, "U")
        return Value(deps, "R", op=name, reduced=seen)

    def elementwise(self, name: str, values: list[Value], in_vars, out_var) -> Value:
        deps = _union(values)
        kinds = {v.kind for v in values}
        if _FAIL in kinds:
            return Value(deps, _FAIL)
        if "R" in kinds:
            if name == "convert_element_type" and len(values) == 1:
                return values[0]
            merged = self._combine_reductions(name, values)
            return merged if merged is not None else Value(deps, _FAIL)
        leaves = {v.leaf for v in values if v.kind == "E"}
        if len(leaves) > 1:
            return Value(deps, _FAIL)
        if leaves:
            out_shape = _shape(out_var)
            for v, var in zip(values, in_vars):
                if v.kind == "N" or (v.kind == "E" and _shape(var) != out_shape):
                    return Value(deps, _FAIL)
            return Value(deps, "E", leaf=next(iter(leaves)))
        if "N" in kinds:
            return Value(deps, "N")
        return Value(deps, "U")

    def reduction(self, name: str, value: Value, in_var, axes) -> Value:
        if value.kind == "U" or value.kind == "N":
            return Value(value.deps, value.kind)
        if value.kind == "E" and set(axes) == set(range(len(_shape(in_var)))):
            reduced = frozenset([value.leaf])
            if reduced == self.all:
                return Value(value.deps, "U")
            return Value(value.deps, "R", op=_REDUCTIONS[name], reduced=reduced)
        return Value(value.deps, _FAIL)

    def shape_op(self, value: Value, in_var, out_var) -> Value:
        """broadcast / reshape / squeeze / expand_dims."""
        if value.kind in ("U", "N"):
            return Value(value.deps, value.kind)
        in_size = int(np.prod(_shape(in_var)))
        out_size = int(np.prod(_shape(out_var)))
        if value.kind == "E" and _shape(in_var) == _shape(out_var):
            return value
        if value.kind == "R" and in_size == out_size == 1:
            return value
        return Value(value.deps, _FAIL)

    def run(self, jaxpr, consts: list[Value], args: list[Value]) -> list[Value]:
        env: dict = {}

        def read(var):
            if isinstance(var, jex_core.Literal):
                return uniform(_literal_value(var))
            return env[var]

        env.update(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))
        for eqn in jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            env.update(zip(eqn.outvars, self.equation(eqn, ins)))
        return [read(v) for v in jaxpr.outvars]

    def equation(self, eqn, ins: list[Value]) -> list[Value]:
        name = eqn.primitive.name
        sub = _sub_jaxpr(eqn)
        if sub is not None:
            closed_consts = [_const_value(c) for c in getattr(sub, "consts", [])]
            inner = sub.jaxpr if hasattr(sub, "jaxpr") else sub
            return self.run(inner, closed_consts, ins)
        if name in _ELEMENTWISE and len(eqn.outvars) == 1:
            return [self.elementwise(name, ins, eqn.invars, eqn.outvars[0])]
        if name in _REDUCTIONS and len(ins) == 1:
            return [self.reduction(name, ins[0], eqn.invars[0], eqn.params.get("axes", ()))]
        if name in ("broadcast_in_dim", "reshape", "squeeze", "expand_dims") and ins:
            return [self.shape_op(ins[0], eqn.invars[0], eqn.outvars[0])]
        deps = _union(ins)
        if all(v.kind in ("U", "N") for v in ins):
            return [Value(deps, "U" if _shape(o) == () else "N") for o in eqn.outvars]
        return [Value(deps, _FAIL) for _ in eqn.outvars]


def _const_value(c) -> Value:
    arr = np.asarray(c) if not isinstance(c, jax.core.Tracer) else None
    if arr is None:
        return non_uniform()
    if arr.size == 1:
        return uniform(arr.reshape(()).item())
    flat = arr.reshape(-1)
    return uniform(flat[0].item()) if np.all(flat == flat[0]) else non_uniform()


def _sub_jaxpr(eqn):
    """The body of a call-like equation whose inputs and outputs map one to one."""
    for value in eqn.params.values():
        jaxpr = getattr(value, "jaxpr", value)
        if isinstance(jaxpr, jex_core.Jaxpr) and (
            len(jaxpr.invars) == len(eqn.invars) and len(jaxpr.outvars) == len(eqn.outvars)
        ):
            if eqn.primitive.name in ("cond", "while", "scan"):
                return None
            return value
    return None


def analyse(closed_jaxpr, inputs: list[Value], num_leaves: int) -> list[Value]:
    """The abstract value of every output of ``closed_jaxpr`` given its inputs'."""
    interp = _Interpreter(num_leaves)
    consts = [_const_value(c) for c in closed_jaxpr.consts]
    return interp.run(closed_jaxpr.jaxpr, consts, inputs)


def separable(value: Value, owner: int | None) -> bool:
    """Output owned by leaf ``owner`` (``None``: shared) depends on that leaf alone."""
    return value.deps <= (frozenset() if owner is None else frozenset([owner]))


def stack_invariant(value: Value, owner: int | None) -> bool:
    """Output is element-aligned with its leaf, or uniform, so stacking leaves it exact."""
    if value.kind == "U":
        return True
    return owner is not None and value.kind == "E" and value.leaf == owner
