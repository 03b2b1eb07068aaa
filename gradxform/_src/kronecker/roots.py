"""Largest eigenvalues and inverse p-th roots of symmetric positive semi-definite matrices.

Shampoo preconditions with ``(L + eps I)^(-1/p)`` for each Kronecker factor ``L``. Two
ways to get it:

- the coupled Newton iteration (Higham 2008, "Functions of Matrices: Theory and
  Computation", eq. 7.18; Guo and Higham 2006): only matrix products, so it runs well on
  accelerators. From ``M_0 = z A``, ``H_0 = z^(1/p) I`` with ``z = (1 + p) / (2 |A|_F)``,
  iterate ``T_k = ((p + 1) I - M_k) / p``, ``M_(k+1) = T_k^p M_k``, ``H_(k+1) = H_k T_k``;
  ``M_k -> I`` and ``H_k -> A^(-1/p)``. The iteration stops once ``max|M_k - I|`` is below
  a tolerance, or as soon as that error grows by more than a factor 1.2 (it then returns
  the previous ``H``);
- an eigendecomposition, ``U diag(max(e, eps)^(-1/p)) U^T``.

``power_iteration`` and ``matrix_inverse_pth_root`` have optax's signatures, defaults and
numbers (``optax.power_iteration``, ``optax.matrix_inverse_pth_root``), except that any
integer ``p`` works (optax 0.2.8 rounds ``log2(p)`` and so computes ``p = 3`` as 2 and
``p = 6`` as 8). ``largest_eigenvalue``, ``robust_matrix_inverse_pth_root`` and
``matrix_inverse_pth_root_eigh`` are the variants distributed Shampoo uses (Anil et al.
2020, "Scalable Second Order Optimization for Deep Learning"), with its start vector,
stopping rule, relative ridge and retries.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradxform import tree as tree_ops

# Growth of the Newton error, from one iteration to the next, that counts as divergence.
_MAX_ERROR_RATIO = 1.2
# Floor of the largest eigenvalue when it scales the ridge (Shampoo's Newton path).
_EIGENVALUE_FLOOR = 1e-25


def root_dtype(dtype: Any = None) -> jnp.dtype:
    """The dtype the Shampoo roots are computed in: float64 under ``jax_enable_x64``.

    Args:
      dtype: an explicit dtype to use instead, or ``None`` for the default.

    Returns:
      ``dtype``, or float64 when x64 is enabled and float32 otherwise.
    """
    if dtype is not None:
        return jnp.dtype(dtype)
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def _normalize(tree: Any) -> Any:
    return tree_ops.scale(1.0 / tree_ops.norm(tree), tree)


def _leading_mask(n: int, size: Any, dtype: Any) -> jax.Array | None:
    """1 on the first ``size`` of ``n`` indices, 0 after; ``None`` when ``size`` is None."""
    if size is None:
        return None
    return (jnp.arange(n) < size).astype(dtype)


def power_iteration(
    matrix: jax.typing.ArrayLike | Callable[[Any], Any],
    *,
    v0: Any = None,
    num_iters: jax.typing.ArrayLike = 100,
    error_tolerance: jax.typing.ArrayLike = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    key: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
    """The dominant eigenvalue of a matrix and its eigenvector, by power iteration.

    ``v <- A v / |A v|`` until the residual ``|A v - lambda v| / |lambda|`` of the Rayleigh
    quotient ``lambda = v^T A v`` is below ``error_tolerance`` or ``num_iters`` products
    are done. Same signature, defaults and numbers as ``optax.power_iteration``.

    Args:
      matrix: an ``(n, n)`` array, or a callable computing a matrix-vector product on
        pytrees shaped like ``v0``.
      v0: the start vector (a pytree when ``matrix`` is a callable, where it is
        required); default: uniform in ``[-1, 1]`` drawn with ``key``.
      num_iters: the most matrix-vector products (``>= 0``). Default 100.
      error_tolerance: the relative residual at which to stop (``>= 0``). Default 1e-6.
      precision: XLA matmul precision for an array ``matrix``.
        Default ``lax.Precision.HIGHEST``.
      key: PRNG key for the default ``v0``; ``None`` means ``jax.random.PRNGKey(0)``.

    Returns:
      ``(eigenvalue, eigenvector)``, the eigenvector of unit norm.
    """
    if callable(matrix):
        if v0 is None:
            raise ValueError("v0 must be provided when `matrix` is a callable")
        mvp = matrix
    else:
        matrix = jnp.asarray(matrix)
        mvp = lambda v: jnp.matmul(matrix, v, precision=precision)
        if v0 is None:
            key = jax.random.PRNGKey(0) if key is None else key
            v0 = jax.random.uniform(
                key, matrix.shape[-1:], dtype=matrix.dtype, minval=-1.0, maxval=1.0
            )
    v0 = _normalize(v0)

    def running(state):
        v, z, eig, i = state
        residual = tree_ops.norm(tree_ops.sub(z, tree_ops.scale(eig, v)))
        converged = jnp.abs(residual / eig) < error_tolerance
        return ~converged & (i < num_iters)

    def step(state):
        _, z, _, i = state
        v = _normalize(z)
        z = mvp(v)
        return v, z, tree_ops.vdot(v, z), i + 1

    z0 = mvp(v0)
    eig0 = jnp.zeros((), jnp.result_type(*jax.tree.leaves(z0)))
    _, z, eig, _ = lax.while_loop(running, step, (v0, z0, eig0, jnp.asarray(0)))
    return eig, _normalize(z)


def largest_eigenvalue(
    matrix: jax.Array,
    num_iters: int = 100,
    error_tolerance: float = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    size: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Power iteration with distributed Shampoo's start vector and stopping rule.

    ``v <- A v / |A v|`` from ``v_0 = numpy.random.RandomState(1729).uniform(-1, 1, n)``,
    stopping once the Rayleigh quotient changes by at most ``error_tolerance`` (absolute)
    between two iterations or after ``num_iters`` products. Deterministic, so that two
    programs computing a preconditioner agree exactly.

    Args:
      matrix: a symmetric positive semi-definite ``(n, n)`` array.
      num_iters: the most matrix-vector products (``>= 1``). Default 100.
      error_tolerance: absolute change of the estimate at which to stop (``>= 0``).
        Default 1e-6.
      precision: XLA matmul precision. Default ``lax.Precision.HIGHEST``.
      size: if not ``None``, ``matrix`` is a ``size x size`` matrix padded with zeros (an
        integer, may be traced): the start vector is zero beyond ``size``.

    Returns:
      ``(eigenvalue, eigenvector)``, the eigenvector of unit norm.
    """
    n = matrix.shape[-1]
    v0 = jnp.asarray(np.random.RandomState(1729).uniform(-1.0, 1.0, n).astype(matrix.dtype))
    mask = _leading_mask(n, size, matrix.dtype)
    v0 = v0 if mask is None else v0 * mask

    def running(state):
        i, _, _, changed = state
        return (i < num_iters) & changed

    def step(state):
        i, v, eig, _ = state
        v = v / jnp.linalg.norm(v)
        av = jnp.matmul(matrix, v, precision=precision)
        new_eig = jnp.dot(v, av, precision=precision)
        return i + 1, av, new_eig, jnp.abs(new_eig - eig) > error_tolerance

    init = (0, v0, jnp.zeros((), matrix.dtype), jnp.asarray(True))
    _, v, eig, _ = lax.while_loop(running, step, init)
    return eig, v / jnp.linalg.norm(v)


def _mm(a: jax.Array, b: jax.Array, precision: lax.Precision) -> jax.Array:
    return jnp.matmul(a, b, precision=precision)


def _is_static_int(p: Any) -> bool:
    return isinstance(p, numbers.Integral) and not isinstance(p, bool)


def _matrix_power(m: jax.Array, p: Any, precision: lax.Precision) -> jax.Array:
    """``m^p`` by repeated squaring; ``p`` a positive integer, static or traced."""
    if _is_static_int(p):
        result, square, k = None, m, int(p)
        while k:
            if k % 2:
                result = square if result is None else _mm(square, result, precision)
            k //= 2
            if k:
                square = jnp.matmul(square, square, precision=precision)
        assert result is not None  # p >= 1, so the loop set it
        return result

    def running(state):
        return state[0] > 0

    def step(state):
        k, result, square = state
        result = jnp.where(k % 2 == 1, jnp.matmul(square, result, precision=precision), result)
        return k // 2, result, jnp.matmul(square, square, precision=precision)

    eye = jnp.eye(m.shape[-1], dtype=m.dtype)
    return lax.while_loop(running, step, (jnp.asarray(p, jnp.int32), eye, m))[1]


def coupled_newton_inverse_root(
    damped: jax.Array,
    p: Any,
    num_iters: jax.typing.ArrayLike = 100,
    error_tolerance: jax.typing.ArrayLike = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    identity: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """``A^(-1/p)`` of a symmetric positive definite ``A`` by the coupled Newton iteration.

    The iteration of the module docstring, in ``A``'s dtype, stopped when
    ``max|M_k - I| <= error_tolerance``, after ``num_iters`` iterations, or when the error
    grows by a factor ``>= 1.2`` (then the ``H`` before the last iteration is returned).

    Args:
      damped: the ``(n, n)`` matrix ``A`` (already damped: no ridge is added here).
      p: the root, a positive integer (static or traced).
      num_iters: the most iterations. Default 100.
      error_tolerance: the error ``max|M_k - I|`` at which to stop. Default 1e-6.
      precision: XLA matmul precision. Default ``lax.Precision.HIGHEST``.
      identity: the identity to use; for a zero-padded ``A``, the identity with zeros
        on the padding (the padding then stays zero). Default ``I``.

    Returns:
      ``(root, error)``: the root and ``max|M - I|`` of the last iterate, in ``A``'s dtype.
    """
    dtype = damped.dtype
    eye = jnp.eye(damped.shape[-1], dtype=dtype) if identity is None else identity
    alpha = jnp.asarray(-1.0 / p, dtype)
    z = (1 + p) / (2 * jnp.linalg.norm(damped))
    m0 = damped * z
    h0 = eye * jnp.power(z, 1.0 / p)

    def running(state):
        i, _, _, _, error, improving = state
        return (i < num_iters) & (error > error_tolerance) & improving

    def step(state):
        i, m, h, _, error, _ = state
        t = (1 - alpha) * eye + alpha * m
        new_m = jnp.matmul(_matrix_power(t, p, precision), m, precision=precision)
        new_h = jnp.matmul(h, t, precision=precision)
        new_error = jnp.max(jnp.abs(new_m - eye))
        return i + 1, new_m, new_h, h, new_error, new_error < _MAX_ERROR_RATIO * error

    error0 = jnp.max(jnp.abs(m0 - eye))
    init = (0, m0, h0, h0, error0, jnp.asarray(True))
    _, m, h, previous_h, _, improving = lax.while_loop(running, step, init)
    return jnp.where(improving, h, previous_h), jnp.max(jnp.abs(m - eye))


def matrix_inverse_pth_root(
    matrix: jax.typing.ArrayLike,
    p: jax.typing.ArrayLike,
    num_iters: jax.typing.ArrayLike = 100,
    ridge_epsilon: jax.typing.ArrayLike = 1e-6,
    error_tolerance: jax.typing.ArrayLike = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
) -> tuple[jax.Array, jax.Array]:
    """``(A + eps I)^(-1/p)`` by the coupled Newton iteration, as ``optax.matrix_inverse_pth_root``.

    ``eps = ridge_epsilon max(lambda_max(A), 1e-16)`` with ``lambda_max`` from
    ``power_iteration``; then ``coupled_newton_inverse_root``. A ``1 x 1`` matrix gets
    the closed form. Computed in ``A``'s dtype (at least float32).

    Args:
      matrix: a symmetric positive semi-definite ``(n, n)`` array.
      p: the root, a positive integer.
      num_iters: the most Newton iterations. Default 100.
      ridge_epsilon: the ridge, relative to the largest eigenvalue (``>= 0``).
        Default 1e-6.
      error_tolerance: the Newton error ``max|M - I|`` at which to stop. Default 1e-6.
      precision: XLA matmul precision. Default ``lax.Precision.HIGHEST``.

    Returns:
      ``(root, error)``: the root in ``matrix``'s dtype and the final Newton error.
    """
    matrix = jnp.asarray(matrix)
    dtype = jnp.promote_types(matrix.dtype, jnp.float32)
    a = matrix.astype(dtype)
    max_ev, _ = power_iteration(a, num_iters=100, error_tolerance=1e-6, precision=precision)
    ridge = ridge_epsilon * jnp.maximum(max_ev, 1e-16)
    if a.shape[0] == 1:
        return ((a + ridge) ** jnp.asarray(-1.0 / p, dtype)).astype(matrix.dtype), jnp.zeros(
            (), dtype
        )
    damped = a + ridge * jnp.eye(a.shape[0], dtype=dtype)
    root, error = coupled_newton_inverse_root(damped, p, num_iters, error_tolerance, precision)
    return root.astype(matrix.dtype), error


def _masked(a: jax.Array, size: Any) -> tuple[jax.Array, jax.Array]:
    """``a`` with rows and columns from ``size`` on zeroed, and the identity likewise."""
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    mask = _leading_mask(a.shape[-1], size, a.dtype)
    if mask is None:
        return a, eye
    return a * mask[:, None] * mask[None, :], eye * mask


def robust_matrix_inverse_pth_root(
    matrix: jax.Array,
    p: int,
    ridge_epsilon: float = 1e-6,
    relative_epsilon: bool = True,
    num_iters: int = 100,
    error_tolerance: float = 1e-6,
    max_retries: int = 6,
    retry_error: float = 0.05,
    precision: lax.Precision = lax.Precision.HIGHEST,
    compute_dtype: Any = None,
    size: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """``(A + eps I)^(-1/p)`` by coupled Newton, retried with a larger ridge on failure.

    ``eps = ridge_epsilon max(lambda_max, 1e-25)`` with ``lambda_max`` from
    ``largest_eigenvalue`` (or ``eps = ridge_epsilon`` when not ``relative_epsilon``).
    Try ``i = 0, 1, ...`` runs ``coupled_newton_inverse_root(A + 10^i eps I, p)`` and is
    the last one when its error ``max|M - I|`` is ``<= retry_error`` or after
    ``max_retries`` tries. Distributed Shampoo's solver (precondition-opt's
    ``matrix_inverse_pth_root``); a ``1 x 1`` matrix runs the same iteration.

    Args:
      matrix: a symmetric positive semi-definite ``(n, n)`` array.
      p: the root, a positive integer.
      ridge_epsilon: the ridge (``>= 0``), relative to ``lambda_max`` when
        ``relative_epsilon``. Default 1e-6.
      relative_epsilon: scale the ridge by the largest eigenvalue. Default True.
      num_iters: the most Newton iterations per try. Default 100.
      error_tolerance: the Newton error at which a try stops. Default 1e-6.
      max_retries: the most tries (``>= 1``). Default 6.
      retry_error: a try with a larger error is retried. Default 0.05.
      precision: XLA matmul precision. Default ``lax.Precision.HIGHEST``.
      compute_dtype: the dtype to compute in; default ``root_dtype()`` (float64 under
        ``jax_enable_x64``, else float32).
      size: if not ``None``, only the leading ``size x size`` block of ``matrix`` is used
        (an integer, may be traced, e.g. under ``vmap`` over matrices of several sizes
        padded to one); the rest of the root is zero.

    Returns:
      ``(root, error)``: the root in ``matrix``'s dtype and the last try's error as a
      float32 scalar (callers reject roots whose error is too large or NaN).
    """
    dtype = root_dtype(compute_dtype)
    a, eye = _masked(matrix.astype(dtype), size)
    ridge = jnp.asarray(ridge_epsilon, dtype)
    if relative_epsilon:
        max_ev, _ = largest_eigenvalue(a, precision=precision, size=size)
        ridge = ridge * jnp.maximum(max_ev, _EIGENVALUE_FLOOR)

    def failing(state):
        i, _, _, failed = state
        return failed & (i < max_retries)

    def attempt(state):
        i = state[0]
        damped = a + ridge * (10**i) * eye
        root, error = coupled_newton_inverse_root(
            damped, p, num_iters, error_tolerance, precision, identity=eye
        )
        error = error.astype(jnp.float32)
        return i + 1, root, error, error > retry_error

    init = (0, eye, jnp.asarray(1000.0, jnp.float32), jnp.asarray(True))
    _, root, error, _ = lax.while_loop(failing, attempt, init)
    return root.astype(matrix.dtype), error


def matrix_inverse_pth_root_eigh(
    matrix: jax.Array,
    p: Any,
    ridge_epsilon: float = 1e-6,
    relative_epsilon: bool = True,
    error_tolerance: float = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    compute_dtype: Any = None,
    size: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """``(A + eps I)^(-1/p)`` by an eigendecomposition.

    ``eps = ridge_epsilon max(lambda_max, error_tolerance)`` (``lambda_max`` from
    ``largest_eigenvalue``) or ``ridge_epsilon``; ``A + eps I = U diag(e) U^T``; the root
    is ``R R^T`` with ``R = U diag(max(e, eps)^(-1/(2p)))`` (eigenvalues exactly 0 give
    0). The error is ``max|U^T (A + eps I) U - diag(e)|``. As distributed Shampoo's
    ``matrix_inverse_pth_root_eigh``.

    Args:
      matrix: as for ``robust_matrix_inverse_pth_root``.
      p: the root, a positive number.
      ridge_epsilon: as for ``robust_matrix_inverse_pth_root``; default 1e-6.
      relative_epsilon: as for ``robust_matrix_inverse_pth_root``; default True.
      error_tolerance: the power iteration's tolerance, and the floor of ``lambda_max``.
        Default 1e-6.
      precision: XLA matmul precision. Default ``lax.Precision.HIGHEST``.
      compute_dtype: as for ``robust_matrix_inverse_pth_root``.
      size: as for ``robust_matrix_inverse_pth_root``; the padding's eigenvalues (the
        smallest, exactly zero) are dropped.

    Returns:
      ``(root, error)``: the root in ``matrix``'s dtype and the float32 error.
    """
    dtype = root_dtype(compute_dtype)
    a, eye = _masked(matrix.astype(dtype), size)
    ridge = jnp.asarray(ridge_epsilon, dtype)
    if relative_epsilon:
        max_ev, _ = largest_eigenvalue(
            a, error_tolerance=error_tolerance, precision=precision, size=size
        )
        ridge = ridge * jnp.maximum(max_ev, error_tolerance)
    regularized = a + ridge * eye
    e, u = jnp.linalg.eigh(regularized)
    # eigh sorts ascending: the padding's zero eigenvalues come first.
    kept = _leading_mask(a.shape[-1], size, dtype)
    kept = None if kept is None else jnp.flip(kept)
    e = e if kept is None else e * kept
    exponent = jnp.asarray(-1.0 / p, dtype)
    inverse_e = jnp.where(e == 0.0, 0.0, jnp.power(jnp.maximum(e, ridge), exponent))
    half = u * jnp.sqrt(inverse_e)
    root = jnp.matmul(half, half.T, precision=precision)
    recovered = _mm(u.T, _mm(regularized, u, precision), precision)
    residual = recovered - jnp.diag(e)
    residual = residual if kept is None else residual * kept
    error = jnp.max(jnp.abs(residual)).astype(jnp.float32)
    return root.astype(matrix.dtype), error
