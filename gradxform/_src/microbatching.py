"""A function of a batch evaluated one microbatch at a time, its results combined.

When a batch does not fit in memory, ``microbatch`` splits its batch axis of size ``B``
into ``n = B / m`` microbatches of ``m`` rows, evaluates the function on each in turn
(a ``lax.fori_loop``, so one microbatch's intermediates are alive at a time) and
combines the ``n`` results: their sum, their mean, or their concatenation back into
batch order. ``micro_vmap`` is ``jax.vmap`` built on it, and ``micro_grad`` computes
per-example gradients with it, transforms them (clips, squares) and sums them.

Microbatch ``i`` holds the rows ``i, i + n, i + 2n, ...`` of the batch (a strided
split, optax's choice: it keeps a sharding of the batch axis on the ``m`` rows of
every microbatch). A function that is a sum over rows gives the same result however the
batch is split; one that couples rows does not.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the results of the microbatches are combined: a fold over them.

    For results ``r_0, ..., r_{n-1}`` (one per microbatch), ``microbatch`` computes
    ``c = init(shape_of(r_0))``, then ``c = update(c, r_i, i)`` for ``i = 0 .. n-1`` and
    returns ``finalize(c)``. ``micro_vmap`` also calls ``aggregate`` on the per-row
    results of one microbatch (rows stacked on axis 0) to reduce them to one result.

    Attributes:
        init: ``init(shapes) -> carry``, where ``shapes`` is the pytree of
            ``jax.ShapeDtypeStruct`` of one microbatch's result.
        update: ``update(carry, result, i) -> carry``, ``i`` the microbatch's index (an
            int32 scalar, traced).
        finalize: ``finalize(carry) -> output``.
        aggregate: ``aggregate(rows) -> result``, reducing a leading axis of rows.
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in ways to combine the microbatches' results ``r_0, ..., r_{n-1}``.

    Sums and means of float16 and bfloat16 results are formed in float32 and returned in
    the results' dtype.

    Attributes:
        MEAN: ``(1/n) sum_i r_i``, over all ``n`` microbatches even when fewer run.
            Floating (or complex) results only, else ``ValueError``.
        SUM: ``sum_i r_i``.
        RUNNING_MEAN: the mean over the microbatches actually run
            (``num_real_microbatches`` of them when given). Floating results only.
        CONCAT: the results, each with a leading axis of rows, put back into one array
            in the batch's row order (the rows of microbatches not run are zeros).
    """

    MEAN = enum.auto()
    SUM = enum.auto()
    RUNNING_MEAN = enum.auto()
    CONCAT = enum.auto()


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Splits the batch axis of every leaf into ``(n, microbatch_size)``, strided.

    A leaf of shape ``(..., B, ...)`` (``B`` at ``axis``) becomes
    ``(..., n, microbatch_size, ...)`` with ``n = B / microbatch_size`` and
    ``out[..., i, j, ...] = x[..., i + j * n, ...]``: microbatch ``i`` takes every
    ``n``-th row starting at row ``i`` (NumPy's column-major reshape).

    Args:
        tree: a pytree of arrays, each with a batch axis at ``axis``.
        microbatch_size: ``m``, the rows per microbatch, a positive int dividing ``B``.
        axis: the position of the batch axis (default 0; negative counts from the end).

    Returns:
        The pytree of reshaped arrays.
    """

    def split(x):
        x = jnp.asarray(x)
        at = axis % x.ndim
        rows = x.shape[at]
        if rows % microbatch_size:
            raise ValueError(
                f"batch size {rows} (axis {axis}) must be divisible by "
                f"microbatch_size={microbatch_size}"
            )
        by_row = x.reshape((*x.shape[:at], microbatch_size, -1, *x.shape[at + 1 :]))
        return jnp.swapaxes(by_row, at, at + 1)

    return jax.tree.map(split, tree)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["value"], meta_fields=["dtype"])
@dataclasses.dataclass(frozen=True)
class _Carry:
    """One leaf's running value, held at least in float32, and the dtype it returns in."""

    value: jax.Array
    dtype: Any


def _is_carry(x: Any) -> bool:
    return isinstance(x, _Carry)


def _wide(dtype: Any) -> Any:
    # Sums of float16/bfloat16 results are formed in float32: adding n of them in half
    # precision would lose the small ones.
    dtype = np.dtype(dtype)
    return jnp.promote_types(dtype, jnp.float32) if jnp.issubdtype(dtype, jnp.inexact) else dtype


def _require_inexact(kind: AccumulationType, shapes: Any) -> None:
    for s in jax.tree.leaves(shapes):
        if not jnp.issubdtype(s.dtype, jnp.inexact):
            raise ValueError(
                f"AccumulationType.{kind.name} averages results, which must be floating; "
                f"got a result of dtype {s.dtype}"
            )


def _per_leaf(kind: AccumulationType, n: int) -> Accumulator:
    """The built-in accumulator ``kind`` for ``n`` microbatches, leaf by leaf."""
    if kind in (AccumulationType.MEAN, AccumulationType.CONCAT) and n <= 0:
        raise ValueError(f"the number of microbatches must be positive, got {n}")

    def init(shapes):
        if kind in (AccumulationType.MEAN, AccumulationType.RUNNING_MEAN):
            _require_inexact(kind, shapes)
        if kind is AccumulationType.CONCAT:
            return jax.tree.map(
                lambda s: _Carry(jnp.zeros((n, *s.shape), s.dtype), s.dtype), shapes
            )
        return jax.tree.map(lambda s: _Carry(jnp.zeros(s.shape, _wide(s.dtype)), s.dtype), shapes)

    def add(carry, result, i):
        if kind is AccumulationType.CONCAT:
            return _Carry(carry.value.at[i].set(result), carry.dtype)
        if kind is AccumulationType.RUNNING_MEAN:
            count = (i + 1).astype(carry.value.dtype)
            return _Carry(carry.value + (result - carry.value) / count, carry.dtype)
        return _Carry(carry.value + result, carry.dtype)

    def update(carry, result, i):
        return jax.tree.map(lambda r, c: add(c, r, i), result, carry)

    def finish(carry):
        value = carry.value
        if kind is AccumulationType.CONCAT and value.ndim > 1:  # (n, m, ...): rows i + j n
            value = jnp.swapaxes(value, 0, 1).reshape((-1, *value.shape[2:]))
        elif kind is AccumulationType.MEAN:
            value = value / n
        return value.astype(carry.dtype)

    def finalize(carry):
        return jax.tree.map(finish, carry, is_leaf=_is_carry)

    reduce = {
        AccumulationType.SUM: lambda x: jnp.sum(x, axis=0),
        AccumulationType.MEAN: lambda x: jnp.mean(x, axis=0),
        AccumulationType.RUNNING_MEAN: lambda x: jnp.mean(x, axis=0),
        AccumulationType.CONCAT: lambda x: x,
    }[kind]
    return Accumulator(init, update, finalize, lambda rows: jax.tree.map(reduce, rows))


def _resolve(spec: Any, n: int) -> Accumulator:
    """One ``Accumulator`` for a pytree prefix of the results whose leaves are
    ``Accumulator``s or ``AccumulationType``s (each applies to the subtree it stands on)."""

    def one(leaf):
        if isinstance(leaf, Accumulator):
            return leaf
        if isinstance(leaf, AccumulationType):
            return _per_leaf(leaf, n)
        raise ValueError(
            f"accumulator leaves must be an Accumulator or an AccumulationType, got {leaf!r}"
        )

    accs = jax.tree.map(one, spec)
    return Accumulator(
        init=lambda shapes: jax.tree.map(lambda a, s: a.init(s), accs, shapes),
        update=lambda carry, result, i: jax.tree.map(
            lambda a, c, r: a.update(c, r, i), accs, carry, result
        ),
        finalize=lambda carry: jax.tree.map(lambda a, c: a.finalize(c), accs, carry),
        aggregate=lambda rows: jax.tree.map(lambda a, r: a.aggregate(r), accs, rows),
    )


def _as_tuple(x: Any) -> tuple:
    return (x,) if isinstance(x, (int, str)) else tuple(x)


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """``fun`` evaluated microbatch by microbatch, its results combined.

    For batch arguments with ``B`` rows, ``n = B / microbatch_size`` and microbatch
    ``i`` made of rows ``i, i + n, ...`` (see ``reshape_batch_axis``), the returned
    function computes ``finalize(fold(update, init, [fun(batch_i) for i < n]))`` with
    the ``Accumulator`` that ``accumulator`` describes; with ``SUM``,
    ``sum_i fun(batch_i)``. The microbatches run in a ``lax.fori_loop``. Arguments not
    named in ``argnums`` / ``argnames`` are passed whole to every call.

    Example:
        >>> fun = lambda x: (x + 1, jnp.sum(3 * x))
        >>> kinds = (gx.microbatching.AccumulationType.CONCAT,
        ...          gx.microbatching.AccumulationType.SUM)
        >>> gx.microbatching.microbatch(fun, 0, 2, kinds)(jnp.array([1, 2, 3, 4]))
        (Array([2, 3, 4, 5], dtype=int32), Array(30, dtype=int32))

    Args:
        fun: the function, of any arguments, returning a pytree of arrays.
        argnums: the position, or positions, of the arguments with a batch axis.
        microbatch_size: the rows per microbatch, a positive int dividing the batch size
            (``ValueError`` otherwise), or ``None`` to return ``fun`` itself. Smaller
            saves memory and costs more sequential steps.
        accumulator: how to combine the results: an ``AccumulationType`` (``SUM``,
            default; ``MEAN``; ``RUNNING_MEAN``; ``CONCAT``), an ``Accumulator``, or a pytree
            prefix of ``fun``'s output with one of those at each leaf (for its subtree).
        argnames: the name, or names, of keyword arguments with a batch axis.
        in_axes: the batch axis of each argument of ``argnums`` then ``argnames``, in that
            order, or one int for all (default 0).
        num_real_microbatches: stop after this many microbatches (an int, or an int
            array, traced or not, in ``[0, n]``); ``None`` (default) runs all ``n``. Lets
            one compiled function serve smaller batches padded to ``B``.

    Returns:
        A function with ``fun``'s arguments that returns the combined result. All batch
        leaves must have the same batch size, else ``ValueError``.
    """
    if microbatch_size is None:
        return fun
    if (
        isinstance(microbatch_size, bool)
        or not isinstance(microbatch_size, (int, np.integer))
        or microbatch_size <= 0
    ):
        raise ValueError(f"microbatch_size must be a positive int or None, got {microbatch_size!r}")
    positions, names = _as_tuple(argnums), _as_tuple(argnames)
    axes = (
        (in_axes,) * (len(positions) + len(names)) if isinstance(in_axes, int) else tuple(in_axes)
    )
    if len(axes) != len(positions) + len(names):
        raise ValueError(
            f"in_axes must give one axis per batch argument ({len(positions)} in argnums, "
            f"{len(names)} in argnames), got {in_axes!r}"
        )
    if not axes:
        raise ValueError("microbatch needs at least one batch argument in argnums or argnames")

    def microbatched(*args, **kwargs):
        args = list(args)
        batch = [(args, p) for p in positions] + [(kwargs, k) for k in names]
        sizes = {
            jnp.shape(leaf)[ax]
            for (holder, key), ax in zip(batch, axes)
            for leaf in jax.tree.leaves(holder[key])
        }
        if len(sizes) != 1:
            raise ValueError(f"the batch arguments must share one batch size, got {sorted(sizes)}")
        (size,) = sizes
        if size % microbatch_size:
            raise ValueError(
                f"batch size {size} must be divisible by microbatch_size={microbatch_size}"
            )
        n = size // microbatch_size
        split = [
            reshape_batch_axis(holder[key], microbatch_size, ax)
            for (holder, key), ax in zip(batch, axes)
        ]
        acc = _resolve(accumulator, n)

        def on(i):
            call_args, call_kwargs = list(args), dict(kwargs)
            for (holder, key), ax, tree in zip(batch, axes, split):
                rows = jax.tree.map(  # the split added an axis: ax counts without it
                    lambda x, ax=ax: jax.lax.dynamic_index_in_dim(x, i, ax % (x.ndim - 1), False),
                    tree,
                )
                (call_args if holder is args else call_kwargs)[key] = rows
            return fun(*call_args, **call_kwargs)

        stop = n if num_real_microbatches is None else num_real_microbatches
        carry = acc.init(jax.eval_shape(on, 0))
        carry = jax.lax.fori_loop(0, stop, lambda i, c: acc.update(c, on(i), i), carry)
        return acc.finalize(carry)

    return microbatched


def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Any] = jax.vmap,
    accumulator: Any = AccumulationType.CONCAT,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """``jax.vmap(fun)`` run ``microbatch_size`` rows at a time, optionally reduced.

    With ``CONCAT`` (default) the result equals ``jax.vmap(fun, in_axes)(*args)``; with
    ``SUM`` or ``MEAN`` it is that result summed or averaged over the rows, without the
    full per-row result ever being held. Keyword arguments are mapped over their axis 0.

    Example:
        >>> gx.microbatching.micro_vmap(lambda x: x ** 2, microbatch_size=4)(jnp.arange(8))
        Array([ 0,  1,  4,  9, 16, 25, 36, 49], dtype=int32)

    Args:
        fun: the function of one row.
        in_axes: the mapped axis of each positional argument (``None``: not mapped), or
            one int for every positional argument (default 0), as for ``jax.vmap``.
        out_axes: must be 0 (default), else ``NotImplementedError``.
        microbatch_size: the rows per microbatch (a positive int dividing the batch
            size), or ``None`` (default) for the whole batch at once.
        vmap_fn: the vectorizing map, called as ``vmap_fn(f, in_axes, out_axes)``; default
            ``jax.vmap``.
        accumulator: how the rows' results are combined, as for ``microbatch``; default
            ``CONCAT``. ``SUM`` / ``MEAN`` reduce over all rows.
        num_real_microbatches: stop after this many microbatches, as for ``microbatch``;
            default ``None`` (all).

    Returns:
        A function with ``fun``'s arguments, each with a batch axis where mapped.
    """
    if out_axes != 0:
        raise NotImplementedError(f"micro_vmap supports out_axes=0 only, got {out_axes!r}")

    def mapped(*args, **kwargs):
        axes = (in_axes,) * len(args) if isinstance(in_axes, int) else tuple(in_axes)

        def rows_then_reduce(*args, kwargs):
            out = vmap_fn(fun, axes, 0)(*args, **kwargs)
            return _resolve(accumulator, 1).aggregate(out)

        positions = tuple(p for p, ax in enumerate(axes) if ax is not None)
        run = microbatch(
            rows_then_reduce,
            argnums=positions,
            argnames="kwargs",
            microbatch_size=microbatch_size,
            accumulator=accumulator,
            in_axes=(*(axes[p] for p in positions), 0),
            num_real_microbatches=num_real_microbatches,
        )
        return run(*args, kwargs=kwargs)

    return mapped


class IndividualOutputs(NamedTuple):
    """The per-example outputs of a ``micro_grad`` function, one row per example.

    Attributes:
        values: ``fun``'s value for each example.
        metrics: ``metrics_fn`` of each example's gradient.
        aux: ``fun``'s auxiliary output for each example (``None`` without ``has_aux``).
    """

    values: Any
    metrics: Any
    aux: Any


def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda g: g,
    metrics_fn: Callable[[Any], Any] = lambda g: None,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., tuple[Any, IndividualOutputs]]:
    """Per-example gradients, transformed and combined, with per-example outputs.

    For examples ``x_1, ..., x_B`` (the rows of the ``batch_argnums`` arguments) and
    ``g_b = grad_theta fun(theta, x_b)``, the returned function computes
    ``sum_b transform_fn(g_b)`` (with ``SUM``; ``MEAN`` divides by ``B``) and, per
    example, ``fun``'s value, ``metrics_fn(g_b)`` and ``fun``'s aux. Clipping each
    ``g_b`` before the sum (differentially private SGD) or summing ``g_b^2`` (a variance)
    are ``transform_fn``s. Examples run ``microbatch_size`` at a time.

    Args:
        fun: the loss of one example, ``fun(params, batch, ...)`` by default.
        has_aux: whether ``fun`` returns ``(value, aux)`` (default ``False``).
        argnums: the position, or positions, of the arguments to differentiate
            (default 0), as for ``jax.grad``.
        batch_argnums: the position, or positions, of the arguments with a batch axis 0
            (default 1).
        keep_batch_dim: ``True`` (default): ``fun`` sees each example with a batch axis
            of size 1; ``False``: without it.
        microbatch_size: the examples per microbatch (a positive int dividing ``B``), or
            ``None`` (default) for all at once.
        accumulator: how the transformed gradients are combined over the examples, as
            for ``microbatch``; default ``SUM``.
        transform_fn: applied to each example's gradient before combining (default the
            identity).
        metrics_fn: applied to each example's gradient, returned per example in
            ``aux.metrics`` (default: ``None``).
        num_real_microbatches: stop after this many microbatches, as for ``microbatch``;
            default ``None`` (all).

    Returns:
        A function with ``fun``'s arguments returning ``(combined, IndividualOutputs)``,
        the per-example fields with a leading axis of ``B`` rows.
    """
    batched = _as_tuple(batch_argnums)
    with_aux = fun if has_aux else (lambda *a, **k: (fun(*a, **k), None))
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def one_example(*args, **kwargs):
        (value, aux), grad = value_and_grad(*args, **kwargs)
        return transform_fn(grad), IndividualOutputs(value, metrics_fn(grad), aux)

    def per_example(*args, **kwargs):
        if keep_batch_dim:  # each example keeps a batch axis of size 1 inside fun
            args = tuple(
                jax.tree.map(lambda x: jnp.expand_dims(x, 1), a) if p in batched else a
                for p, a in enumerate(args)
            )
        axes = [0 if p in batched else None for p in range(len(args))]
        return micro_vmap(
            one_example,
            in_axes=axes,
            microbatch_size=microbatch_size,
            accumulator=(accumulator, AccumulationType.CONCAT),
            num_real_microbatches=num_real_microbatches,
        )(*args, **kwargs)

    return per_example
