"""PSGD's Kronecker-factored preconditioner ``P = Q^H Q``, ``Q = Q_1 x ... x Q_k``, fitted online.

Xi-Lin Li, "Preconditioned Stochastic Gradient Descent" (IEEE TNNLS 2018) and "Black Box
Lie Group Preconditioners for SGD" (2022). Each factor ``Q_i`` is upper triangular or
diagonal and is moved by one normalised gradient step on the fitting criterion
``E[h^T P h + v^T P^{-1} v]`` for a probe ``v`` and the gradient ``h`` it perturbs: with
``A = Q h`` and ``B = Q^{-H} v`` (``Q`` applied along every axis),

    ``Q_i <- Q_i - lr triu(A_(i) A_(i)^H - B_(i) B_(i)^H) Q_i / ||A_(i) A_(i)^H + B_(i) B_(i)^H||``

(the norm a cheap lower bound of the spectral norm); a diagonal factor uses the diagonal
of the same difference, times ``Q_i``, over its largest absolute entry. A scalar leaf has
one scalar factor, updated like a diagonal one.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

MEMORY_SAVE_MODES = (None, "one_diag", "all_diag")


def triangular_axes(
    shape: Sequence[int],
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
) -> tuple[bool, ...]:
    """Which axes of a leaf get a triangular (rather than diagonal) factor.

    An axis is diagonal when its size is 1 or above ``max_size_triangular``, when the leaf
    has fewer than ``min_ndim_triangular`` axes, or by ``memory_save_mode``:
    ``"one_diag"`` makes the largest axis diagonal (ties: the last of the largest, as
    ``np.argsort(shape)[::-1][0]``), ``"all_diag"`` all of them.

    Args:
        shape: the leaf's shape.
        max_size_triangular: largest triangular axis, ``>= 0``. Default 8192.
        min_ndim_triangular: fewest axes a leaf needs for triangular factors. Default 2.
        memory_save_mode: ``None``, ``"one_diag"`` or ``"all_diag"``.

    Returns:
        One bool per axis (empty for a scalar).
    """
    if memory_save_mode not in MEMORY_SAVE_MODES:
        raise ValueError(
            f"memory_save_mode must be one of {MEMORY_SAVE_MODES}, got {memory_save_mode!r}"
        )
    forced = [memory_save_mode == "all_diag"] * len(shape)
    if memory_save_mode == "one_diag" and shape:
        forced[int(np.argsort(shape)[::-1][0])] = True
    return tuple(
        not (d == 1 or d > max_size_triangular or len(shape) < min_ndim_triangular or f)
        for d, f in zip(shape, forced)
    )


def init_factors(shape: Sequence[int], triangular: Sequence[bool], scale: float, dtype):
    """``Q``'s initial factors: ``scale^(1/k) I`` (triangular) or ``scale^(1/k)`` ones.

    Args:
        shape: the leaf's shape (``k`` axes).
        triangular: per axis, as from ``triangular_axes``.
        scale: the initial ``Q = scale I`` overall, ``> 0``.
        dtype: the factors' dtype.

    Returns:
        A tuple of factors, one per axis; a scalar leaf has the one scalar ``scale``.
    """
    if not shape:
        return (jnp.full((), scale, dtype),)
    s = scale ** (1 / len(shape))
    return tuple(
        s * jnp.eye(d, dtype=dtype) if tri else s * jnp.ones(d, dtype=dtype)
        for d, tri in zip(shape, triangular)
    )


def _along(x: jax.Array, axis: int, q: jax.Array) -> jax.Array:
    """``x`` with the matrix (or diagonal) ``q`` applied along ``axis``."""
    if q.ndim < 2:
        return x * q.reshape(q.shape + (1,) * (x.ndim - axis - 1))
    return jnp.moveaxis(jnp.tensordot(q, x, axes=[[1], [axis]]), 0, axis)


def _solve_along(x: jax.Array, axis: int, q: jax.Array) -> jax.Array:
    """``x`` with ``q^{-T}`` applied along ``axis`` (``x_(i)^T q^{-1}``, a triangular solve)."""
    if q.ndim < 2:
        return x / q.reshape(q.shape + (1,) * (x.ndim - axis - 1))
    moved = jnp.moveaxis(x, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    dtype = jnp.promote_types(q.dtype, x.dtype)
    solved = jax.lax.linalg.triangular_solve(
        q.astype(dtype), flat.astype(dtype), left_side=False, lower=False
    )
    return jnp.moveaxis(solved.reshape(moved.shape), -1, axis)


def precondition(factors: Sequence[jax.Array], g: jax.Array) -> jax.Array:
    """``P g = Q^H Q g``: each ``P_i = Q_i^H Q_i`` applied along its axis.

    ``P_i`` costs ``d_i^3``, less than applying ``Q_i`` and ``Q_i^H`` one after the other
    to a leaf with more than ``d_i^2`` entries.

    Args:
        factors: ``Q``'s factors, one per axis of ``g`` (one scalar for a scalar ``g``).
        g: the gradient (or momentum) to precondition.

    Returns:
        ``P g``, shaped like ``g``.
    """
    if g.ndim == 0:
        (q,) = factors
        return jnp.conj(q) * q * g
    for axis, q in enumerate(factors):
        gram = jnp.conj(q) * q if q.ndim < 2 else jnp.conj(q).T @ q
        g = _along(g, axis, gram)
    return g


def norm_lower_bound(a: jax.Array) -> jax.Array:
    """A cheap lower bound of ``||A||_2`` (within a factor ~sqrt(2) in practice).

    ``s = max|A_ij|``; take the row or column of ``A / s`` with the largest sum of
    squares (the column when the column's is larger), ``x`` = that column's ``x^H A``
    (or the row's ``A x^*``); the bound is ``s ||x^ A^H||`` (or ``s ||A^H x^||``), with
    ``x^ = x / ||x||``. Zero for a zero matrix.

    Args:
        a: a square matrix.

    Returns:
        The bound, a scalar of ``a``'s real dtype.
    """
    scale = jnp.max(jnp.abs(a))

    def bound(a):
        a = a / scale
        sq = jnp.real(a * jnp.conj(a))
        col_sums, row_sums = jnp.sum(sq, axis=0), jnp.sum(sq, axis=1)
        col, row = jnp.argmax(col_sums), jnp.argmax(row_sums)

        def from_column():
            x = jnp.conj(a[:, col]) @ a
            return scale * jnp.linalg.norm((x / jnp.linalg.norm(x)) @ jnp.conj(a).T)

        def from_row():
            x = a @ jnp.conj(a[row, :])
            return scale * jnp.linalg.norm(jnp.conj(a).T @ (x / jnp.linalg.norm(x)))

        return jax.lax.cond(col_sums[col] > row_sums[row], from_column, from_row)

    return jax.lax.cond(scale > 0, bound, lambda _: scale, a)


def _gram(x: jax.Array, y: jax.Array, axis: int, diagonal: bool) -> jax.Array:
    """``sum over the other axes of x[..n..] y[..m..]`` (only ``n == m`` if ``diagonal``)."""
    others = [a for a in range(x.ndim) if a != axis]
    if diagonal:
        return jnp.sum(x * y, axis=tuple(others))
    return jnp.tensordot(x, y, axes=(others, others))


def fit_factors(
    factors: Sequence[jax.Array], h: jax.Array, v: jax.Array, lr: float
) -> tuple[jax.Array, ...]:
    """One step of every factor of ``Q`` towards ``P h ~ v``-whitening (module docstring).

    ``A = Q h`` and ``B = Q^{-H} v`` use the old factors; all factors then move at once.

    Args:
        factors: ``Q``'s factors (triangular matrices or diagonals; a scalar for a scalar).
        h: the probed gradient (perturbed gradient or momentum), shaped like the leaf.
        v: the probe, shaped like the leaf.
        lr: the fitting step size, ``>= 0``.

    Returns:
        The new factors, each in its old dtype.
    """
    a, b = h, jnp.conj(v)
    if h.ndim == 0:
        (q,) = factors
        a, b = q * a, b / q
    for axis, q in enumerate(factors if h.ndim else ()):
        a = _along(a, axis, q)
        b = _solve_along(b, axis, q)
    new = []
    for axis, q in enumerate(factors):
        diagonal = q.ndim < 2
        if h.ndim == 0:
            term1, term2 = a * jnp.conj(a), jnp.conj(b) * b
        else:
            term1 = _gram(a, jnp.conj(a), axis, diagonal)
            term2 = _gram(jnp.conj(b), b, axis, diagonal)
        step = lr * (term1 - term2)
        if diagonal:
            tiny = jnp.finfo(step.dtype).tiny
            step = step * q / (jnp.max(jnp.abs(term1 + term2)) + tiny)
        else:
            tiny = jnp.finfo(step.dtype).tiny
            step = jnp.triu(step) / (norm_lower_bound(term1 + term2) + tiny) @ q
        new.append((q - step).astype(q.dtype))
    return tuple(new)


def balance(factors: Sequence[jax.Array]) -> tuple[jax.Array, ...]:
    """Rescales the factors to equal max-abs entries without changing ``Q``.

    ``n_i = max|Q_i|`` in float32 (as the reference, whatever the factors' dtype),
    ``Q_i <- Q_i gmean(n) / n_i``. Leaves of one factor are returned unchanged.

    Args:
        factors: ``Q``'s factors.

    Returns:
        The rescaled factors.
    """
    if len(factors) < 2:
        return tuple(factors)
    norms = jnp.stack([jnp.max(jnp.abs(q)) for q in factors]).astype(jnp.float32)
    gmean = jnp.prod(norms) ** (1 / len(factors))
    scales = gmean / norms
    return tuple(q * scales[i].astype(q.dtype) for i, q in enumerate(factors))
