"""Eigenbases of Kronecker factors: a full eigh, tracking by one QR power step, projection.

SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam",
arXiv:2409.11321) runs Adam in the eigenbasis ``Q_1 x ... x Q_k`` of Shampoo's factors
``L_i``. The basis is found once by ``eigh`` and then tracked cheaply: one step of
simultaneous power iteration ``L Q`` followed by a QR re-orthonormalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def eigenbasis(factor: jax.Array) -> jax.Array:
    """The eigenvectors of a symmetric factor, largest eigenvalue first.

    ``Q = eigh(L + 1e-30 I)`` with its columns reversed; the tiny shift is the
    reference's guard against an exactly zero factor.

    Args:
        factor: a symmetric ``(d, d)`` matrix ``L`` (float32 or wider).

    Returns:
        The ``(d, d)`` orthogonal matrix whose column ``j`` is the eigenvector of the
        ``j``-th largest eigenvalue, in ``factor``'s dtype.
    """
    eye = jnp.eye(factor.shape[0], dtype=factor.dtype)
    _, vectors = jnp.linalg.eigh(factor + 1e-30 * eye)
    return vectors[:, ::-1]


def qr_power_step(factor: jax.Array, basis: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One power-iteration step towards ``factor``'s eigenbasis, re-orthonormalised by QR.

    ``P = L Q``; ``e_j = q_j^T P_j`` (Rayleigh quotients, the estimated eigenvalues);
    ``idx = argsort(e)`` descending; ``Q' = qr(P[:, idx]).Q``. The QR runs in float32, as
    in the SOAP reference (its orthogonality matters more than its precision), and the
    result is cast back to ``basis``'s dtype.

    Args:
        factor: the symmetric ``(d, d)`` factor ``L``.
        basis: the current ``(d, d)`` orthogonal estimate ``Q`` of its eigenbasis.

    Returns:
        ``(Q', idx)``: the new basis, and the permutation of the old columns it is ordered
        by (apply it to anything indexed by the old basis, e.g. Adam's second moment).
    """
    power = factor @ basis
    estimates = jnp.sum(basis * power, axis=0)
    order = jnp.argsort(-estimates)
    q, _ = jnp.linalg.qr(jnp.take(power, order, axis=1).astype(jnp.float32))
    return q.astype(basis.dtype), order


def project(x: jax.Array, bases: Sequence[jax.Array | None], back: bool = False) -> jax.Array:
    """Changes ``x`` to (or, with ``back``, from) the Kronecker basis ``Q_1 x ... x Q_k``.

    Forward: ``x <- x x_i Q_i^T`` along every axis ``i`` with a basis (``x_i`` the
    mode-``i`` product, so entry ``j`` of axis ``i`` becomes the coefficient on column
    ``q_j``); back: ``x <- x x_i Q_i``. Axes whose basis is ``None`` are left as they are.

    Args:
        x: an array with one entry of ``bases`` per axis.
        bases: per axis, a ``(d_i, d_i)`` orthogonal matrix or ``None`` (identity).
        back: map eigenbasis coefficients back to the original basis. Default False.

    Returns:
        The array in the new basis, same shape as ``x``.
    """
    if len(bases) != x.ndim:
        raise ValueError(f"project: {len(bases)} bases for an array of rank {x.ndim}")
    # Contracting axis 0 and appending the result last cycles through the axes in order,
    # as the reference does; a missing basis just moves its axis to the end.
    for q in bases:
        if q is None:
            x = jnp.moveaxis(x, 0, -1)
        else:
            x = jnp.tensordot(x, q, axes=[[0], [1 if back else 0]])
    return x
