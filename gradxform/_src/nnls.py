"""Non-negative least squares by accelerated projected gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def nnls(
    A: jax.Array,  # noqa: N803 (the matrix's conventional name)
    b: jax.Array,
    iters: int,
    unroll: int | bool = 1,
    L: jax.typing.ArrayLike | None = None,  # noqa: N803
) -> jax.Array:
    """Approximately solves ``min_{x >= 0} ||A x - b||^2`` with ``iters`` steps of
    FISTA (Beck and Teboulle 2009, "A Fast Iterative Shrinkage-Thresholding Algorithm for
    Linear Inverse Problems") on the normal equations, ``Q = A^T A``, ``q = A^T b``:

    ``x_{k+1} = max(p_k - (Q p_k - q) / L, 0)``;
    ``c_{k+1} = (1 + sqrt(1 + 4 c_k^2)) / 2``;
    ``p_{k+1} = x_{k+1} + (c_k - 1) / c_{k+1} (x_{k+1} - x_k)``,
    from ``x_0 = p_0 = 0``, ``c_0 = 0``.

    Args:
      A: The ``(m, n)`` matrix.
      b: The right-hand side, ``(m,)`` or ``(m, k)`` for ``k`` problems at once.
      iters: The number of iterations (``>= 0``).
      unroll: Passed to ``lax.scan``.
      L: A Lipschitz constant of the gradient, ``>= ||A^T A||_2`` (default: the smaller
        of the Frobenius and 1-norms of ``A^T A``, both upper bounds). 0 is read as 1.

    Returns:
      ``x``, shape ``(n,)`` or ``(n, k)``.
    """
    if A.ndim != 2:
        raise ValueError(f"A must be a matrix, got shape {A.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"b must have shape ({A.shape[0]},) or ({A.shape[0]}, k), got {b.shape}")
    Q = A.mT @ A  # noqa: N806
    q = A.mT @ b
    if L is None:
        frobenius = jnp.linalg.matrix_norm(Q, ord="fro")
        L = jnp.minimum(frobenius, jnp.linalg.matrix_norm(Q, ord=1)) if Q.size else frobenius  # noqa: N806
    L = jnp.where(L == 0, 1, L)  # noqa: N806

    def step(carry, _):
        x, p, c = carry
        c_next = (1 + jnp.sqrt(1 + 4 * c**2)) / 2
        x_next = jnp.maximum(p - (Q @ p - q) / L, 0)
        p_next = x_next + (c - 1) / c_next * (x_next - x)
        return (x_next, p_next, c_next), None

    x = jnp.zeros(A.shape[-1:] + b.shape[1:], jnp.result_type(A, b))
    (x, _, _), _ = jax.lax.scan(step, (x, x, 0.0), length=iters, unroll=unroll)
    return x
