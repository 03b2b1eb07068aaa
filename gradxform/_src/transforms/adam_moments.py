"""Adam's moments, shared by ``scale_by_adam`` and its variants: the two moment updates, the
debiased (or Nesterov look-ahead) first moment, and the dtype the step comes back in."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import numerics


def nesterov_debias(m: Any, g: Any, decay: Any, count: jax.Array) -> Any:
    """Dozat's debiased look-ahead ``b m / (1 - b^{t+1}) + (1 - b) g / (1 - b^t)`` of the
    new average ``m`` and the gradient ``g`` (Dozat 2016).

    Args:
      m: the new average ``m``, a tree.
      g: the gradient ``g``, a tree like ``m``.
      decay: the averaging factor ``b``, in ``[0, 1)``.
      count: ``t``, the 1-based step (int32 scalar).

    Returns:
      The look-ahead, a tree like ``m``.
    """
    return jax.tree.map(
        lambda m_hat, g_hat: decay * m_hat + (1 - decay) * g_hat,
        tree_ops.bias_correction(m, decay, numerics.safe_increment(count)),
        tree_ops.bias_correction(g, decay, count),
    )


def debiased_first_moment(
    mu: Any, updates: Any, decay: Any, count: jax.Array, nesterov: bool
) -> Any:
    """``m / (1 - b^t)``, or with ``nesterov`` Dozat's look-ahead (``nesterov_debias``).

    Args:
      mu: the new first moment ``m``, a tree.
      updates: the gradient ``g``, a tree like ``mu`` (used only with ``nesterov``).
      decay: the averaging factor ``b``, in ``[0, 1)``.
      count: ``t``, the 1-based step (int32 scalar).
      nesterov: use Dozat's look-ahead.

    Returns:
      ``m_hat``, a tree like ``mu``.
    """
    if nesterov:
        return nesterov_debias(mu, updates, decay, count)
    return tree_ops.bias_correction(mu, decay, count)


def adam_moments(updates: Any, mu: Any, nu: Any, b1: Any, b2: Any) -> tuple[Any, Any, Any]:
    """The updates in at least float32 (see ``numerics.upcast``) and Adam's two new
    moments ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) |g|^2`` (saturating).

    Args:
      updates: the gradient ``g``, a tree.
      mu: the stored first moment ``m``, a tree like ``updates``.
      nu: the stored second moment ``v``, a tree like ``updates``.
      b1: the decay of ``m``, in ``[0, 1)``.
      b2: the decay of ``v``, in ``[0, 1)``.

    Returns:
      ``(wide, m, v)``: the upcast updates and the two new moments, not yet cast back to
      the stored dtypes.
    """
    wide = jax.tree.map(numerics.upcast, updates)
    return (
        wide,
        tree_ops.update_moment(wide, mu, b1, 1),
        tree_ops.update_moment_per_elem_norm(wide, nu, b2, 2),
    )


def quotient_like(updates: Any, mu: Any, fn: Any, *trees: Any) -> Any:
    """``fn(*leaves)`` leaf by leaf, cast to the wider of the dtypes of the matching update
    and stored first moment ``mu``: the statistics are computed in at least float32, and
    the step comes back in the updates' dtype, or in a wider ``mu_dtype`` as optax's.

    Args:
      updates: the incoming updates, a tree; their dtypes set the result's.
      mu: the stored first moment, a tree like ``updates``; a wider dtype widens the result.
      fn: the leafwise function, called on the matching leaves of ``trees``.
      *trees: the trees ``fn`` reads, each like ``updates``.

    Returns:
      A tree like ``updates``.
    """

    def leaf(g, m, *xs):
        out, dtype = fn(*xs), jnp.promote_types(jnp.result_type(g), m.dtype)
        return out if out.dtype == dtype else out.astype(dtype)

    return jax.tree.map(leaf, updates, mu, *trees)


def adam_quotient(eps: Any, eps_root: Any) -> Any:
    """Adam's leafwise step ``(m, v) -> m / (sqrt(v + eps_root) + eps)``, for
    ``quotient_like``.

    Args:
      eps: added outside the root, ``>= 0``.
      eps_root: added inside the root, ``>= 0``.

    Returns:
      A function of a first-moment leaf ``m`` and a second-moment leaf ``v``.
    """
    return lambda m, v: m / (jnp.sqrt(v + eps_root) + eps)
