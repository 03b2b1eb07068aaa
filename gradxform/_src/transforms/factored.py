"""Second moments kept in sub-linear memory: factored (Adafactor) or covered (SM3).

Both replace Adam's per-element ``v`` (as large as the parameters) by accumulators
along each axis of a tensor, from which a per-element estimate is rebuilt.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate

_NO_PARAMS = "{} needs params: call update(updates, state, params)"


def _decay_rate_pow(step: jax.typing.ArrayLike, exponent: jax.typing.ArrayLike = 0.8):
    """Adafactor's ``beta2_t = 1 - (t + 1)^-exponent``.

    Formed in float32, as optax does, so trajectories agree with it to round-off.
    """
    t = jnp.array(step + 1, jnp.float32)
    return 1.0 - t ** jnp.negative(exponent)


def _factored_dims(shape: tuple, factored: bool, min_dim_size_to_factor: int):
    """The (second-largest, largest) axes of ``shape``, or ``None`` when not factored."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


class FactoredState(NamedTuple):
    """The state of ``scale_by_factored_rms`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        v_row: per factored leaf, ``R``, the average of ``G`` over its largest axis
            (the leaf's shape without that axis); per other leaf a ``(1,)`` zero stub.
            In the params' dtypes.
        v_col: per factored leaf, ``C``, the average of ``G`` over its second-largest
            axis; per other leaf a ``(1,)`` zero stub. In the params' dtypes.
        v: per unfactored leaf, the full second moment ``v`` (the leaf's shape); per
            factored leaf a ``(1,)`` zero stub. In the params' dtypes.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    v_row: Any
    v_col: Any
    v: Any


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: jax.typing.ArrayLike = 0.8,
    step_offset: jax.typing.ArrayLike = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: jax.typing.ArrayLike = 1e-30,
    decay_rate_fn: Callable[[Any, Any], Any] = _decay_rate_pow,
) -> base.GradientTransformation:
    """Adafactor's factored second moment (Shazeer & Stern 2018, "Adafactor: Adaptive
    Learning Rates with Sublinear Memory Cost", algorithms 4 and 5).

    ``beta2_t = decay_rate_fn(t - step_offset, decay_rate)`` (default
    ``1 - (t - step_offset + 1)^-decay_rate``, ``t`` 0-based), ``G = g^2 + epsilon``.
    A leaf whose second-largest axis ``d1`` has at least ``min_dim_size_to_factor``
    entries (``d0`` the largest) keeps ``R <- beta2_t R + (1 - beta2_t) mean_{d0}(G)`` and
    ``C <- beta2_t C + (1 - beta2_t) mean_{d1}(G)`` and gets
    ``u <- g / sqrt(R C / mean_{d1}(R))`` (``R, C`` broadcast back); other leaves keep the
    full ``v <- beta2_t v + (1 - beta2_t) G`` and get ``u <- g / sqrt(v)``.
    ``g^2`` is ``|g|^2`` for complex leaves. Leaves of rank below 2 are never factored.

    Args:
        factored: factor the second moment of leaves of rank ``>= 2``; False keeps a
            full ``v`` for every leaf (RMSProp with Adafactor's decay). Default True.
        decay_rate: the exponent handed to ``decay_rate_fn``, ``>= 0``; with the default
            function, ``beta2_t = 1 - (t - step_offset + 1)^-decay_rate``. Default 0.8.
        step_offset: subtracted from the step before ``decay_rate_fn`` sees it, e.g. to
            restart the decay schedule after a warm start. Default 0.
        min_dim_size_to_factor: a leaf is factored only when its second-largest axis
            has at least this many entries, a positive int. Default 128.
        epsilon: added to ``g^2`` before averaging, ``>= 0``; it keeps the roots of
            rows and columns of zero gradients finite. Default 1e-30.
        decay_rate_fn: ``beta2_t = decay_rate_fn(t - step_offset, decay_rate)``, a
            function of the int32 0-based step and ``decay_rate`` returning a decay in
            ``[0, 1]``. Default ``1 - (step + 1)^-decay_rate``, formed in float32.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``FactoredState(count, v_row, v_col, v)``; ``update`` needs ``params`` (their
        shapes decide which leaves are factored) and raises ``ValueError`` without.
    """
    validate.non_negative("decay_rate", decay_rate)
    validate.non_negative("epsilon", epsilon)
    validate.positive_int("min_dim_size_to_factor", min_dim_size_to_factor)

    def init(params):
        base.check_float_leaves(params, "scale_by_factored_rms")

        def leaf(p):
            stub = jnp.zeros((1,), p.dtype)
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            if dims is None:
                return stub, stub, tree_ops.zeros_like(p)  # sharded like p under jit
            d1, d0 = dims
            row = jnp.zeros(p.shape[:d0] + p.shape[d0 + 1 :], p.dtype)
            col = jnp.zeros(p.shape[:d1] + p.shape[d1 + 1 :], p.dtype)
            return row, col, stub

        rows, cols, full = _unzip(jax.tree.map(leaf, params), params, 3)
        return FactoredState(count=jnp.zeros([], jnp.int32), v_row=rows, v_col=cols, v=full)

    def update(updates, state, params=None, **extra):
        del extra
        if params is None:
            raise ValueError(_NO_PARAMS.format("scale_by_factored_rms"))
        base.check_same_structure(updates, state.v, "second moment")
        beta = decay_rate_fn(state.count - step_offset, decay_rate)

        def leaf(g, row, col, v, p):
            dtype, out_dtype = p.dtype, g.dtype
            stub = jnp.zeros((1,), dtype)
            # Computed in at least float32 (half-precision squares underflow), stored in the
            # params' dtype; squares capped so that no average of them overflows that dtype
            # (a finite float32 gradient of 1e30 has an infinite square).
            g, row, col, v = map(numerics.upcast, (g, row, col, v))
            cap = jnp.finfo(dtype).max / max(g.size, 1)
            g_sq = _saturate(numerics.abs_sq(g) + epsilon, g, cap)
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            if dims is None:
                new_v = beta * v + (1.0 - beta) * g_sq
                return (g * new_v**-0.5).astype(out_dtype), stub, stub, new_v.astype(dtype)
            d1, d0 = dims
            new_row = beta * row + (1.0 - beta) * jnp.mean(g_sq, axis=d0)
            new_col = beta * col + (1.0 - beta) * jnp.mean(g_sq, axis=d1)
            # d1's position in the row accumulator, which has lost axis d0.
            row_d1 = d1 - 1 if d1 > d0 else d1
            row_factor = (new_row / jnp.mean(new_row, axis=row_d1, keepdims=True)) ** -0.5
            col_factor = new_col**-0.5
            out = g * jnp.expand_dims(row_factor, d0) * jnp.expand_dims(col_factor, d1)
            return out.astype(out_dtype), new_row.astype(dtype), new_col.astype(dtype), stub

        results = jax.tree.map(leaf, updates, state.v_row, state.v_col, state.v, params)
        out, rows, cols, full = _unzip(results, updates, 4)
        return out, FactoredState(
            count=numerics.safe_increment(state.count), v_row=rows, v_col=cols, v=full
        )

    return base.GradientTransformation(init, update)


def _unzip(tree_of_tuples: Any, like: Any, n: int) -> tuple:
    """A tree (shaped like ``like``) of ``n``-tuples as ``n`` trees."""
    treedef = jax.tree.structure(like)
    tuples = treedef.flatten_up_to(tree_of_tuples)  # type: ignore[attr-defined]  # no stub
    return tuple(jax.tree.unflatten(treedef, [t[i] for t in tuples]) for i in range(n))


def _saturate(x: jax.Array, g: jax.Array, top: Any = None) -> jax.Array:
    """``min(x, top)`` (default: the largest finite value of ``g``'s dtype) where ``g`` is
    finite: squares of huge finite gradients overflow, and an infinite accumulator never
    recovers. Non-finite gradients still propagate."""
    top = jnp.finfo(g.dtype).max if top is None else top
    return jnp.where(jnp.isfinite(g), jnp.minimum(x, top), x)


class ScaleBySM3State(NamedTuple):
    """The state of ``scale_by_sm3`` (optax's).

    Attributes:
        mu: per leaf, the list of cover accumulators ``mu_r``: one vector per axis for a
            leaf of rank ``>= 2``, one array of the leaf's own shape for a vector or
            scalar. In the params' dtypes.
        nu: the momentum ``u`` of the preconditioned gradients, a tree like the params,
            in their dtypes.
    """

    mu: Any
    nu: Any


def _cover_shapes(shape: tuple) -> list[tuple]:
    """SM3's cover of a tensor: one accumulator per axis; a vector or scalar is its own."""
    if len(shape) < 2:
        return [tuple(shape)]
    return [(shape[i],) for i in range(len(shape))]


def scale_by_sm3(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 1.0,
    eps: jax.typing.ArrayLike = 1e-8,
) -> base.GradientTransformation:
    """SM3's scaling (Anil et al. 2019, "Memory-Efficient Adaptive Optimization", SM3-II).

    A tensor of rank ``k >= 2`` keeps one accumulator ``mu_r`` per axis ``r`` (a vector of
    that axis' length); a vector or scalar keeps one of its own shape. Per element ``i``:
    ``nu(i) = c g(i)^2 + b2 min_r mu_r(i_r)`` (``c = 1 - b2``, or 1 when ``b2 = 1``: plain
    AdaGrad-style sums); ``mu_r(j) <- max_{i: i_r = j} nu(i)``;
    ``u <- b1 u + (1 - b1) g / sqrt(nu + eps)`` (0 where ``nu = 0``).
    The momentum ``u`` is also the output. Unlike optax 0.2.8, 0-d leaves work (treated
    like a vector of one element). Complex params are refused (``min`` and ``max`` need
    an ordering).

    Args:
        b1: decay of the momentum ``u``, in ``[0, 1)``; 0 gives no momentum. Default 0.9.
        b2: decay of the accumulators, in ``[0, 1]``; the default 1.0 sums squared
            gradients without decay, as the paper's SM3-II.
        eps: added to ``nu`` inside the reciprocal square root, ``>= 0``. Default 1e-8.

    Returns:
        A ``GradientTransformation`` whose state is optax's ``ScaleBySM3State(mu, nu)``.
    """
    validate.decay("b1", b1)
    validate.unit_interval("b2", b2)
    validate.non_negative("eps", eps)
    coeff: float | jax.Array
    if isinstance(b2, (int, float)):
        coeff = 1.0 if b2 == 1.0 else 1.0 - b2
    else:
        # An array b2 (a NumPy or JAX scalar, or injected and traced) can be 1 as well.
        coeff = jnp.where(jnp.asarray(b2) == 1, 1.0, 1.0 - b2)

    def init(params):
        base.check_float_leaves(params, "scale_by_sm3")
        base.check_real_leaves(params, "scale_by_sm3")
        mu = jax.tree.map(lambda p: [jnp.zeros(s, p.dtype) for s in _cover_shapes(p.shape)], params)
        return ScaleBySM3State(mu=mu, nu=tree_ops.zeros_like(params))

    def accumulate(g, accumulators):
        if g.ndim < 2:
            return coeff * g**2 + b2 * accumulators[0]
        broadcast = [
            jnp.reshape(a, [1] * r + [g.shape[r]] + [1] * (g.ndim - r - 1))
            for r, a in enumerate(accumulators)
        ]
        return coeff * g**2 + b2 * functools.reduce(jnp.minimum, broadcast)

    def covers(v):
        if v.ndim < 2:
            return [v]
        # An axis of length 0 elsewhere (shape (2, 0, 2)) leaves the other covers at 0
        # instead of failing (nu >= 0). Only then: a max with 0 is one more pass.
        initial = 0.0 if v.size == 0 else None
        return [
            jnp.max(v, axis=tuple(a for a in range(v.ndim) if a != r), initial=initial)
            for r in range(v.ndim)
        ]

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "momentum")
        incoming = updates
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        accs = treedef.flatten_up_to(state.mu)
        nu_el = [_saturate(accumulate(g, a), g) for g, a in zip(grads, accs)]
        scaled = [g * jnp.where(v > 0, jax.lax.rsqrt(v + eps), 0.0) for g, v in zip(grads, nu_el)]
        momentum = tree_ops.update_moment(jax.tree.unflatten(treedef, scaled), state.nu, b1, 1)
        mu = jax.tree.unflatten(treedef, [covers(v) for v in nu_el])
        mu, nu = tree_ops.cast_like((mu, momentum), (state.mu, state.nu))
        return tree_ops.cast_like(momentum, incoming), ScaleBySM3State(mu=mu, nu=nu)

    return base.GradientTransformation(init, update)
