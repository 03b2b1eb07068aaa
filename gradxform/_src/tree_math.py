"""Arithmetic on pytrees, leaf by leaf, published as ``gradxform.tree``.

``None`` leaves are treated as absent: they pass through maps untouched.
"""

from __future__ import annotations

import fractions
import functools
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.shard_alike import shard_alike
from jax.extend.backend import backends

from gradxform._src.numerics import abs_sq, saturate

_builtin_sum = sum
_builtin_max = max
_builtin_min = min


def _map(f: Callable, tree: Any, *rest: Any) -> Any:
    return jax.tree.map(
        lambda x, *r: None if x is None else f(x, *r), tree, *rest, is_leaf=lambda x: x is None
    )


def add(tree_x: Any, tree_y: Any, *others: Any) -> Any:
    """``x + y (+ ...)`` leaf by leaf.

    Args:
        tree_x: the first tree.
        tree_y: a tree of the same structure.
        *others: more trees of the same structure, added in order.

    Returns:
        A tree of the same structure, each leaf the sum of the matching leaves.
    """
    return jax.tree.map(lambda *xs: _builtin_sum(xs[1:], xs[0]), tree_x, tree_y, *others)


def sub(tree_x: Any, tree_y: Any) -> Any:
    """``x - y`` leaf by leaf.

    Args:
        tree_x: the minuend.
        tree_y: the subtrahend, a tree of the same structure.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """``x * y`` leaf by leaf (element-wise).

    Args:
        tree_x: the first factor.
        tree_y: the second factor, a tree of the same structure.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """``x / y`` leaf by leaf (element-wise, true division).

    Args:
        tree_x: the dividend.
        tree_y: the divisor, a tree of the same structure.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(operator.truediv, tree_x, tree_y)


def scale(scalar: jax.typing.ArrayLike, tree: Any) -> Any:
    """``scalar * x`` for every leaf.

    Args:
        scalar: the factor, a number or a scalar array.
        tree: the tree to scale.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(lambda x: scalar * x, tree)


def add_scale(tree_x: Any, scalar: jax.typing.ArrayLike, tree_y: Any) -> Any:
    """``x + scalar * y`` leaf by leaf; a ``None`` leaf of ``x`` stays ``None``.

    Args:
        tree_x: the tree added to.
        scalar: the factor of ``tree_y``, a number or a scalar array.
        tree_y: a tree of the structure of ``tree_x``.

    Returns:
        A tree of the structure of ``tree_x``.

    Examples:
        >>> x = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
        >>> print(gx.tree.add_scale(x, 0.5, x)["a"])
        [1.5 3. ]
    """
    return _map(lambda x, y: x + scalar * y, tree_x, tree_y)


def vdot(tree_x: Any, tree_y: Any) -> jax.Array | int:
    """``sum_i <x_i, y_i> = sum_i sum(conj(x_i) * y_i)``.

    An element-wise product and a sum rather than ``jnp.vdot``: no leaf is raveled (a
    reshape of a sharded array is rejected on an ``Explicit`` mesh) and no matmul unit
    rounds the products (full precision on every backend).

    Args:
        tree_x: the first tree, conjugated.
        tree_y: a tree of the same structure and leaf shapes.

    Returns:
        The inner product, a scalar array (the integer 0 for trees without leaves).
    """
    dots = jax.tree.map(lambda x, y: jnp.sum(jnp.conj(x) * y), tree_x, tree_y)
    return jax.tree.reduce(operator.add, dots, initializer=0)


def sum(tree: Any, associative_reduction: bool = False) -> jax.Array | int:  # noqa: A001
    """The sum of every element of every leaf.

    Args:
        tree: the tree to sum.
        associative_reduction: add the leaves' sums as a balanced tree
            (``jax.tree.reduce_associative``): a shallower graph for many leaves, in
            another order of rounding. Default False: left to right.

    Returns:
        The sum, a scalar array (the integer 0 for a tree without leaves).
    """
    sums = jax.tree.map(jnp.sum, tree)
    if associative_reduction:
        return jax.tree.reduce_associative(operator.add, sums, identity=0)
    return jax.tree.reduce(operator.add, sums, initializer=0)


def max(tree: Any) -> jax.Array:  # noqa: A001
    """The largest element over all leaves.

    Args:
        tree: the tree; leaves with no elements are skipped.

    Returns:
        The maximum, a scalar array (``-inf`` for a tree without elements).
    """
    maxes = [jnp.max(x) for x in jax.tree.leaves(tree) if jnp.size(x)]
    return functools.reduce(jnp.maximum, maxes, jnp.asarray(-jnp.inf))


def min(tree: Any) -> jax.Array:  # noqa: A001
    """The smallest element over all leaves.

    Args:
        tree: the tree; leaves with no elements are skipped.

    Returns:
        The minimum, a scalar array (``inf`` for a tree without elements).
    """
    mins = [jnp.min(x) for x in jax.tree.leaves(tree) if jnp.size(x)]
    return functools.reduce(jnp.minimum, mins, jnp.asarray(jnp.inf))


def size(tree: Any) -> int:
    """The total number of elements.

    Args:
        tree: the tree; its leaves need a shape, not values (tracers count).

    Returns:
        The sum of the leaves' sizes, a Python int.
    """
    return _builtin_sum(int(np.size(x)) for x in jax.tree.leaves(tree))


def conj(tree: Any) -> Any:
    """Complex conjugate of every leaf.

    Args:
        tree: the tree; real leaves come back unchanged in value.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(jnp.conj, tree)


def real(tree: Any) -> Any:
    """Real part of every leaf.

    Args:
        tree: the tree; a complex leaf becomes its real counterpart dtype.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(jnp.real, tree)


def norm(tree: Any, ord: int | str | None = 2, squared: bool = False) -> jax.Array:  # noqa: A002
    """The norm of the tree seen as one flat vector.

    ``ord=2``: ``sqrt(sum_i |x_i|^2)``; ``ord=1``: ``sum_i |x_i|``; ``ord=inf``:
    ``max_i |x_i|``, with ``|.|`` the modulus for complex leaves.

    Args:
        tree: the tree.
        ord: ``1``, ``2`` (default; also ``None`` or ``"fro"``) or ``jnp.inf`` (also
            ``"inf"``); another value raises ``ValueError``.
        squared: return the square of the norm (for ``ord=2`` without the root).
            Default False.

    Returns:
        The norm, a real scalar array (0 for a tree without elements).

    Examples:
        >>> print(gx.tree.norm({"a": jnp.array([3.0, 0.0]), "b": jnp.array(-4.0)}))
        5.0
    """
    leaves = jax.tree.leaves(tree)
    if ord in (2, None, "fro"):
        sq = _builtin_sum((jnp.sum(abs_sq(x)) for x in leaves), jnp.asarray(0.0))
        return sq if squared else jnp.sqrt(sq)
    if ord == 1:
        out = _builtin_sum((jnp.sum(jnp.abs(x)) for x in leaves), jnp.asarray(0.0))
    elif ord in (jnp.inf, "inf"):
        out = functools.reduce(
            jnp.maximum, [jnp.max(jnp.abs(x)) for x in leaves if jnp.size(x)], jnp.asarray(0.0)
        )
    else:
        raise ValueError(f"norm: ord must be 1, 2 or inf, got {ord!r}")
    return jnp.square(out) if squared else out


def _laid_like(x: Any, value: jax.Array) -> jax.Array:
    """``value`` (shaped like the traced ``x``) placed as ``x`` is.

    Under ``jit`` on an ``Auto`` mesh a new array (``jnp.zeros_like`` of a tracer is a
    broadcast constant) is left unsharded by sharding propagation. ``shard_alike`` puts
    ``value`` in ``x``'s sharding group, which propagation honours and the compiler then
    drops: ``value`` is not computed from ``x``, so the fill stays exact (a ``-0``, an inf
    or a NaN fill is what it says) and each leaf compiles to a broadcast, as optax's
    ``init`` does. On an ``Explicit`` mesh ``jnp.full_like`` already carries ``x``'s
    sharding in its type.
    """
    _, out = shard_alike(x, value)
    return out


def _one_device() -> bool:
    """Whether every backend has a single device (across all processes): then every
    array is on it, and a new array needs no tie to its parameter's layout."""
    return all(client.device_count() == 1 for client in backends().values())


def _fill_following(tree: Any, fill_value: Any, dtype: Any) -> Any:
    """``fill_value`` shaped like every leaf in ``dtype`` (``None``: the leaf's), laid out
    like the leaf under ``jit`` as well as outside it (where ``jnp.full_like`` keeps it)."""
    follow = not _one_device()
    # full_like lays an array fill out as the fill, not as the leaf (a scalar fill, as it)
    array_fill = np.ndim(fill_value) != 0

    def leaf(x):
        if not isinstance(x, jax.core.Tracer):
            filled = jnp.full_like(x, fill_value, dtype=dtype)
            placed = array_fill and isinstance(x, jax.Array)
            return jax.device_put(filled, x.sharding) if placed else filled
        if array_fill:
            value = jnp.asarray(fill_value, dtype=x.dtype if dtype is None else dtype)
            filled = jnp.broadcast_to(value, x.shape, out_sharding=jax.typeof(x).sharding)
        else:
            filled = jnp.full_like(x, fill_value, dtype=dtype)
        return _laid_like(x, filled) if follow else filled

    return jax.tree.map(leaf, tree)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros shaped like every leaf, sharded like the leaf under ``jit`` as well as
    outside it.

    Args:
        tree: the tree whose leaves give shapes, dtypes and shardings.
        dtype: the dtype of every new leaf; ``None`` (default) keeps each leaf's.

    Returns:
        A tree of the same structure.
    """
    return _fill_following(tree, 0, dtype)


def ones_like(tree: Any, dtype: Any = None) -> Any:
    """Ones shaped like every leaf, sharded like the leaf (see ``zeros_like``).

    Args:
        tree: the tree whose leaves give shapes, dtypes and shardings.
        dtype: the dtype of every new leaf; ``None`` (default) keeps each leaf's.

    Returns:
        A tree of the same structure.
    """
    return full_like(tree, 1, dtype)


def full_like(tree: Any, fill_value: jax.typing.ArrayLike, dtype: Any = None) -> Any:
    """``fill_value`` shaped like every leaf, sharded like the leaf (see ``zeros_like``).

    Args:
        tree: the tree whose leaves give shapes, dtypes and shardings.
        fill_value: the value of every element, a number or an array broadcastable to
            every leaf.
        dtype: the dtype of every new leaf; ``None`` (default) keeps each leaf's.

    Returns:
        A tree of the same structure.
    """
    return _fill_following(tree, fill_value, dtype)


def cast(tree: Any, dtype: Any) -> Any:
    """Every leaf cast to ``dtype``; ``None`` leaves stay ``None``.

    Args:
        tree: the tree to cast.
        dtype: the target dtype; ``None`` returns ``tree`` as it is.

    Returns:
        A tree of the same structure.
    """
    if dtype is None:
        return tree
    return _map(lambda x: jnp.asarray(x).astype(dtype), tree)


def cast_like(tree: Any, other: Any) -> Any:
    """Every leaf cast to the dtype of the matching leaf of ``other``.

    Args:
        tree: the tree to cast; its ``None`` leaves stay ``None``.
        other: a tree of the same structure whose leaves give the dtypes.

    Returns:
        A tree of the structure of ``tree``.
    """
    return _map(lambda x, o: jnp.asarray(x).astype(jnp.asarray(o).dtype), tree, other)


def clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Every element clipped to ``[min_value, max_value]``.

    Args:
        tree: the tree to clip.
        min_value: the lower bound, broadcast against every leaf; ``None`` (default):
            none.
        max_value: the upper bound, broadcast against every leaf; ``None`` (default):
            none.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


def where(condition: jax.typing.ArrayLike, tree_x: Any, tree_y: Any) -> Any:
    """``x if condition else y`` leaf by leaf, with one scalar ``condition``.

    Both trees are computed; ``condition`` selects, which works under ``jit``.

    Args:
        condition: a boolean scalar (or an array broadcastable against every leaf).
        tree_x: the tree chosen where ``condition`` is true.
        tree_y: the tree chosen elsewhere, of the same structure.

    Returns:
        A tree of the same structure.
    """
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


@functools.lru_cache(maxsize=256)
def _stays_finite(a: float, b: float, order: int, g_dtype: Any, m_dtype: Any, c_dtype: Any) -> bool:
    """Whether ``a * g**order + b * m``, computed in ``c_dtype`` from any finite ``g`` of
    ``g_dtype`` and ``m`` of ``m_dtype``, is at most ``m_dtype``'s largest value in magnitude.

    Rounding is monotone, so the worst case is ``|g|`` and ``|m|`` at their dtypes' largest
    values; it is evaluated exactly (fractions) with each product rounded to ``c_dtype`` or
    fused into the sum (an FMA), or, for ``a == b``, as ``a (g + m)`` (XLA factors it), so
    the answer holds whichever the compiler emits. For
    Adam's first moment in float32 (``a + b`` within an ulp of 1) it holds: the update is
    a convex combination and needs no bound. A float16 ``mu_dtype`` or a square of a
    float32 gradient does not."""
    c = np.dtype(c_dtype)
    top = c.type(jnp.finfo(m_dtype).max)
    # 0 * inf (a coefficient of exactly 0 times an overflowed power) is NaN: not finite,
    # so the bound is kept, as it should be.
    with np.errstate(over="ignore", invalid="ignore"):
        power = c.type(jnp.finfo(g_dtype).max) ** order
        products = abs(c.type(a)) * power, abs(c.type(b)) * top
    if not np.all(np.isfinite(products)):
        return False
    exact = (
        fractions.Fraction(float(abs(c.type(a)))) * fractions.Fraction(float(power)),
        fractions.Fraction(float(abs(c.type(b)))) * fractions.Fraction(float(top)),
    )
    rounded = tuple(fractions.Fraction(float(p)) for p in products)
    # Past the midpoint between top and the next value up, the sum rounds beyond top.
    limit = (
        fractions.Fraction(float(top))
        + fractions.Fraction(float(top - np.nextafter(top, c.type(0)))) / 2
    )
    sums = [rounded[0] + rounded[1], exact[0] + rounded[1], rounded[0] + exact[1]]
    if c.type(a) == c.type(b):  # XLA factors a g + a m into a (g + m)
        with np.errstate(over="ignore"):
            inner = power + top
        if not np.isfinite(inner):
            return False
        sums.append(fractions.Fraction(float(abs(c.type(a)))) * fractions.Fraction(float(inner)))
    return _builtin_max(sums) < limit


def _concrete_scalar(x: Any) -> np.ndarray | None:
    """``x`` as a 0-d NumPy array if its value is known at trace time, else None."""
    if isinstance(x, jax.core.Tracer):
        return None
    x = np.asarray(x)
    return x if x.ndim == 0 and np.issubdtype(x.dtype, np.number) else None


def _saturating(
    f: Callable, *scalars: Any, real: bool = False, ema: tuple[Any, int] | None = None
) -> Callable:
    """Wraps a moment update ``f(g, m)`` so it is computed in at least float32 and
    saturates at the moment dtype's largest finite value ``top`` instead of overflowing:
    a float32 gradient of 1e30 has a square of 1e60, and an infinite moment would never
    decay back. A NaN ``g`` leaves a NaN moment. ``real=True``: ``f`` is real for
    complex ``g`` (a moment of ``|g|``), so the result takes the real counterpart of the
    dtype.

    ``ema=(decay, order)`` says that ``f(g, m) = (1 - decay) g**order + decay m`` (with
    ``|g|**order`` under ``real``): then the bound is decided at trace time.

    - Where no finite ``g`` can overflow (``_stays_finite``: Adam's first moment in
      float32) the update is the plain formula: an infinite ``g`` leaves it infinite.
    - Where only the top can be passed (a nonnegative power, ``decay`` in ``[0, 1]``:
      every second moment) the bound is ``new > top ? top : new`` (``numerics.saturate``),
      which keeps a NaN: the square of an infinite ``g`` saturates like any other
      overflow. It stays visible in what the moment divides, ``g`` or a first moment
      (left infinite, or NaN by the bound below), so the step is not finite and
      ``apply_if_finite`` sees it.
    - Else, and for every other ``f``: ``clamp(-top, new, top) + (g - g)``, the
      ``g - g`` being 0 for finite ``g`` and NaN otherwise, so that a saturated first
      moment cannot turn an infinite gradient into a finite step.

    The fewer operations per moment and leaf, the less a step costs and a tree of many
    leaves costs to trace and compile: the second moment's bound is one operation.
    """

    def moment(g, m):
        dtype = jnp.result_type(g, m, *scalars)
        if real and jnp.issubdtype(dtype, jnp.complexfloating):
            dtype = jnp.finfo(dtype).dtype
        wide = jnp.promote_types(dtype, jnp.float32)

        def widen(x):
            # Each float operand keeps its own precision (at least float32), so mixed
            # float32/float64 inputs round as the plain formula does; integer and bool
            # inputs take the result's precision.
            x = jnp.asarray(x)
            if jnp.issubdtype(x.dtype, jnp.inexact):
                target = jnp.promote_types(x.dtype, jnp.float32)
            else:
                target = wide
            return x if x.dtype == target else x.astype(target)

        g = widen(g)
        new = f(g, widen(m))
        if real:  # a complex-typed state holds a real moment: its imaginary part is 0
            new = jnp.real(new)
        if not (jnp.issubdtype(dtype, jnp.floating) and jnp.issubdtype(m.dtype, jnp.inexact)):
            return new.astype(dtype)
        m_dtype = jnp.finfo(m.dtype).dtype
        one_sided = False
        decay = None if ema is None else _concrete_scalar(ema[0])
        if decay is not None:
            order = ema[1]
            a, b = (1 - decay).astype(new.dtype), decay.astype(new.dtype)
            if jnp.isrealobj(g) and _stays_finite(
                float(a), float(b), order, g.dtype, m_dtype, new.dtype
            ):
                return new if new.dtype == dtype else new.astype(dtype)
            # A nonnegative power and decay in [0, 1]: new >= decay * m >= -top.
            one_sided = (order % 2 == 0 or not jnp.isrealobj(g)) and 0 <= b <= 1 and a >= 0
        # The stored moment has m's dtype: saturate there, so storing it stays finite.
        # The bound as a NumPy scalar: a literal of the program, no device array per leaf.
        top = np.asarray(jnp.finfo(m_dtype).max, new.dtype)
        # lax operations on operands of one dtype throughout (saturate's as well): the
        # jnp operators would each trace as a nested jitted call, per moment and leaf (a
        # third of the tracing time of Adam's moments on a tree of 1000 leaves), and
        # jnp.clip is a jitted function too.
        if one_sided:  # saturate: computed once, never copied (see there)
            bounded = saturate(new, top)
            return bounded if bounded.dtype == dtype else bounded.astype(dtype)
        bounded = jax.lax.clamp(-top, new, top)
        # 0 for finite g, NaN for inf or NaN: the sum propagates a non-finite gradient
        # without a predicate and a select (two more operations per moment and leaf).
        zero = jax.lax.sub(g, g)
        if not jnp.isrealobj(zero):
            zero = jnp.real(zero) + jnp.imag(zero)
        if zero.dtype != bounded.dtype:
            zero = zero.astype(bounded.dtype)
        out = jax.lax.add(bounded, zero)
        return out if out.dtype == dtype else out.astype(dtype)

    return moment


def map_moment(f: Callable, updates: Any, moments: Any, *scalars: Any, real: bool = False) -> Any:
    """``m <- f(g, m)`` leaf by leaf, in at least float32 and saturating for finite ``g``
    (see ``_saturating``); ``scalars`` are the hyperparameters ``f`` closes over, which
    take part in the result's dtype as they would in ``f(g, m)``. ``real=True`` for a
    moment of ``|g|``, real for complex ``g``.

    Args:
        f: the update of one leaf, ``f(g, m) -> new m``, element-wise in ``g`` and ``m``.
        updates: the gradients ``g``; a ``None`` leaf stays ``None``.
        moments: the moments ``m``, a tree like ``updates``; their dtypes are the
            storage dtypes that the result saturates at.
        *scalars: the numbers ``f`` closes over (e.g. the decay), for the result dtype.
        real: ``f`` returns a real value for complex ``g``, so the result takes the real
            counterpart of the dtype. Default False.

    Returns:
        The new moments, a tree like ``updates``, in the dtypes ``f(g, m)`` would have
        (not cast to the moments' dtypes).
    """
    return _map(_saturating(f, *scalars, real=real), updates, moments)


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    """``m <- (1 - decay) * g**order + decay * m``, saturating (see ``_saturating``).

    Args:
        updates: the gradients ``g``; a ``None`` leaf stays ``None``.
        moments: the moments ``m``, a tree like ``updates``.
        decay: the weight of the old moment, usually in ``[0, 1)``; a number or a
            scalar array (traced values work).
        order: the power of ``g``, a positive int (1: the mean, 2: the uncentred second
            moment, ``g**2`` and not ``|g|**2`` for complex ``g``).

    Returns:
        The new moments, a tree like ``updates``, computed in at least float32 and not
        cast back to the moments' dtypes.

    Examples:
        >>> m = gx.tree.update_moment({"w": jnp.array([2.0])}, {"w": jnp.array([1.0])}, 0.9, 1)
        >>> print(m["w"])
        [1.1]
    """
    step = _saturating(_ema_formula(decay, _power(order)), decay, ema=(decay, order))
    return _map(step, updates, moments)


def _power(order: Any) -> Callable:
    """``g -> g**order``; an int order as ``lax.integer_pow``, which is what ``g**order``
    traces to, without the nested jitted call of the operator."""
    if order == 1:
        return lambda g: g
    if isinstance(order, int) and not isinstance(order, bool):
        return lambda g: jax.lax.integer_pow(g, order)
    return lambda g: g**order


def _ema_formula(decay: Any, power: Callable) -> Callable:
    """``f(g, m) = (1 - decay) * power(g) + decay * m``.

    For a Python number ``decay`` and ``power(g)`` of ``m``'s dtype, the same arithmetic
    is written with ``lax`` and the coefficients as literals of that dtype, which is how
    the operators round a Python number (weakly typed): the same bits, without a nested
    jitted call per operator, per moment and leaf, to trace.
    """
    if isinstance(decay, bool) or not isinstance(decay, (int, float)):
        return lambda g, m: (1 - decay) * power(g) + decay * m

    def f(g, m):
        pg = power(g)
        if pg.dtype != m.dtype or not jnp.issubdtype(m.dtype, jnp.floating):
            return (1 - decay) * pg + decay * m
        a, b = np.asarray(1 - decay, m.dtype), np.asarray(decay, m.dtype)
        return jax.lax.add(jax.lax.mul(a, pg), jax.lax.mul(b, m))

    return f


def update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    """``m <- (1 - decay) * |g|**order + decay * m`` (``|g|`` the modulus for complex),
    saturating (see ``_saturating``).

    Args:
        updates: the gradients ``g``; a ``None`` leaf stays ``None``.
        moments: the moments ``m``, a tree like ``updates``.
        decay: the weight of the old moment, usually in ``[0, 1)``; a number or a
            scalar array.
        order: the power of ``|g|``, a positive number (2: Adam's second moment). For
            real ``g`` it is ``g**order``, so pass an even ``order``.

    Returns:
        The new moments, a tree like ``updates``, real even for complex ``g``, computed
        in at least float32 and not cast back to the moments' dtypes.
    """

    def power(g):
        if jnp.isrealobj(g):
            return _power(order)(g)
        half = order / 2
        return abs_sq(g) ** (int(half) if float(half).is_integer() else half)

    step = _saturating(_ema_formula(decay, power), decay, real=True, ema=(decay, order))
    return _map(step, updates, moments)


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
    """``u <- max(|g| + eps, decay * u)``, AdaMax's infinity norm.

    Args:
        updates: the gradients ``g``; a ``None`` leaf stays ``None``.
        moments: the running maxima ``u``, a tree like ``updates``.
        decay: the decay of ``u``, in ``[0, 1)``.
        eps: added to ``|g|``, ``>= 0``.

    Returns:
        The new maxima, a tree like ``updates``.
    """
    return _map(lambda g, m: jnp.maximum(jnp.abs(g) + eps, decay * m), updates, moments)


def bias_correction(moment: Any, decay: Any, count: jax.typing.ArrayLike) -> Any:
    """``m / (1 - decay**count)``.

    ``decay**count`` is formed in the precision of ``decay`` and ``count`` and only then
    cast to the moment's dtype: in bf16 ``decay**count`` rounds to 1 and would divide by 0.

    Args:
        moment: the moments to correct; a ``None`` leaf stays ``None``.
        decay: the decay the moments were averaged with, in ``[0, 1)``.
        count: the number of updates averaged, ``>= 1`` (0 divides by 0), usually the
            int32 step count after this update.

    Returns:
        A tree like ``moment``, each leaf in its own dtype.

    Examples:
        >>> print(gx.tree.bias_correction(jnp.array([0.75]), 0.5, 2))
        [1.]
    """
    correction = 1 - jnp.asarray(decay) ** count
    # One cast per dtype, not per leaf, and lax.div (what ``/`` traces to for inexact
    # operands of one dtype) without the nested jitted call of the operator.
    cast: dict[Any, jax.Array] = {}

    def corrected(m):
        if m.dtype not in cast:
            cast[m.dtype] = correction.astype(m.dtype)
        if jnp.issubdtype(m.dtype, jnp.inexact):
            return jax.lax.div(m, cast[m.dtype])
        return m / cast[m.dtype]

    return _map(corrected, moment)


def allclose(tree_x: Any, tree_y: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """Whether every pair of leaves is close (and the structures match).

    Each pair is tested with ``jnp.allclose``: ``|x - y| <= atol + rtol |y|``
    element-wise, NaN never close.

    Args:
        tree_x: the first tree.
        tree_y: the second tree.
        rtol: the relative tolerance, ``>= 0``. Default 1e-5.
        atol: the absolute tolerance, ``>= 0``. Default 1e-8.

    Returns:
        A Python bool: False when the structures differ. Needs concrete values, not
        tracers.
    """
    # jaxlib ships PyTreeDef without a stub, so mypy cannot see its __ne__.
    if jax.tree.structure(tree_x) != jax.tree.structure(tree_y):  # type: ignore[operator]
        return False
    pairs = zip(jax.tree.leaves(tree_x), jax.tree.leaves(tree_y))
    return all(bool(jnp.allclose(x, y, rtol=rtol, atol=atol)) for x, y in pairs)
