"""Euclidean projections onto convex sets, for pytrees; ``gradxform.projections`` is the
public namespace and its docstring the overview.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradxform import tree as tree_ops


def _broadcast_to(bound: Any, tree: Any) -> Any:
    """``bound`` with one entry per leaf of ``tree``; ``bound`` is a leaf (a number or
    array, which applies to every leaf) or a tree whose structure is a prefix of ``tree``'s."""
    return jax.tree.map(lambda b, sub: jax.tree.map(lambda _: b, sub), bound, tree)


def projection_non_negative(tree: Any) -> Any:
    """Onto the non-negative orthant: ``p = max(x, 0)`` element-wise.

    Args:
        tree: the pytree ``x`` to project.

    Returns:
        The projection, a pytree of ``tree``'s structure, shapes and dtypes.

    Examples:
        >>> print(gx.projections.projection_non_negative(jnp.array([-1.0, 2.0])))
        [0. 2.]
    """
    return jax.tree.map(jax.nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    """Onto the box ``lower <= p <= upper``: ``p = clip(x, lower, upper)`` element-wise.

    Args:
        tree: the pytree ``x`` to project.
        lower: the lower bounds; a number, an array broadcasting against every leaf, or a tree
            of the structure of ``tree`` (or a prefix of it), with ``lower <= upper``.
        upper: the upper bounds, given as ``lower`` is.

    Returns:
        The projection, a pytree of ``tree``'s structure.

    Examples:
        >>> print(gx.projections.projection_box(jnp.array([-1.0, 0.5, 2.0]), 0.0, 1.0))
        [0.  0.5 1. ]
        >>> p = gx.projections.projection_box(
        ...     {"a": jnp.array([-1.0, 2.0]), "b": jnp.array([3.0])}, 0.0, {"a": 1.0, "b": 2.0})
        >>> print(p["a"], p["b"])
        [0. 1.] [2.]
    """
    return jax.tree.map(
        lambda x, lo, hi: jnp.clip(x, lo, hi),
        tree,
        _broadcast_to(lower, tree),
        _broadcast_to(upper, tree),
    )


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    """Onto the hypercube ``0 <= p <= scale`` (default the unit cube).

    Args:
        tree: the pytree ``x`` to project.
        scale: the side of the cube; a number ``>= 0`` or a tree like ``tree`` (default 1).

    Returns:
        The projection, a pytree of ``tree``'s structure.
    """
    return projection_box(tree, lower=0, upper=scale)


@jax.custom_jvp
def _unit_simplex(x: jax.Array) -> jax.Array:
    """``argmin ||x - p||`` over ``p >= 0, sum p = 1`` for a vector ``x``.

    ``p = max(x - tau, 0)``, with ``tau`` from the sorted values ``u_1 >= ... >= u_n``:
    ``rho = max{j : u_j - (sum_{i<=j} u_i - 1) / j > 0}``, ``tau = (sum_{i<=rho} u_i - 1) / rho``
    (Held, Wolfe & Crowder (1974); Duchi et al. (2008), "Efficient projections onto the
    l1-ball", Figure 1).
    """
    u = jnp.sort(x)[::-1]
    partial_sums = jnp.cumsum(u)
    j = jnp.arange(1, x.shape[0] + 1, dtype=x.dtype)
    rho = jnp.count_nonzero(1.0 / j + (u - partial_sums / j) > 0)
    tau = (partial_sums[rho - 1] - 1.0) / rho
    return jax.nn.relu(x - tau)


@_unit_simplex.defjvp
def _unit_simplex_jvp(primals, tangents):
    # On the support S the projection is x - tau with sum = 1, so its derivative is the
    # centring of the tangent over S; off S it is 0.
    (x,), (dx,) = primals, tangents
    p = _unit_simplex(x)
    support = (p > 0).astype(dx.dtype)
    dp = support * (dx - jnp.dot(support, dx) / jnp.sum(support))
    return p, dp


def projection_simplex(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Onto the simplex ``{p >= 0, sum of all elements of p = scale}``, all leaves together.

    ``p = scale * P_unit(x / scale)``, with ``P_unit`` the projection onto the probability
    simplex (Held, Wolfe & Crowder (1974); Duchi et al. (2008), "Efficient projections onto
    the l1-ball", Figure 1). Differentiable (the Jacobian is the centring on the support).

    Args:
        tree: the pytree ``x`` to project; its leaves are treated as one flat vector.
        scale: the sum of the projection; positive (default 1, the probability simplex).

    Returns:
        The projection, a pytree of ``tree``'s structure.

    Examples:
        >>> print(gx.projections.projection_simplex(jnp.array([0.5, 1.0, -1.0])))
        [0.25 0.75 0.  ]
    """
    flat, unravel = ravel_pytree(tree)
    return unravel(jnp.multiply(scale, _unit_simplex(flat / scale)))


def projection_l1_sphere(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Onto the l1 sphere ``||p||_1 = scale``: ``p = sign(x) * P_simplex(|x|, scale)``.

    Args:
        tree: the pytree ``x`` to project; its leaves are treated as one flat vector.
        scale: the radius; positive (default 1).

    Returns:
        The projection, a pytree of ``tree``'s structure.
    """
    magnitude = projection_simplex(jax.tree.map(jnp.abs, tree), scale)
    return jax.tree.map(lambda x, m: jnp.sign(x) * m, tree, magnitude)


def projection_l1_ball(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Onto the l1 ball ``||p||_1 <= scale``: ``x`` if inside, else the l1-sphere projection.

    Duchi et al. (2008), "Efficient projections onto the l1-ball".

    Args:
        tree: the pytree ``x`` to project; its leaves are treated as one flat vector.
        scale: the radius; positive (default 1).

    Returns:
        The projection, a pytree of ``tree``'s structure.

    Examples:
        >>> print(gx.projections.projection_l1_ball(jnp.array([3.0, 1.0]), scale=2.0))
        [2. 0.]
    """
    return jax.lax.cond(
        tree_ops.norm(tree, ord=1) <= scale,
        lambda t: t,
        lambda t: projection_l1_sphere(t, scale),
        tree,
    )


def projection_l2_sphere(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Onto the l2 sphere ``||p||_2 = scale``: ``p = scale x / ||x||``.

    NaN at ``x = 0``, where every point of the sphere is nearest.

    Args:
        tree: the pytree ``x`` to project; its leaves are treated as one flat vector.
        scale: the radius; positive (default 1).

    Returns:
        The projection, a pytree of ``tree``'s structure.
    """
    return tree_ops.scale(scale / tree_ops.norm(tree), tree)


def projection_l2_ball(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Onto the l2 ball ``||p||_2 <= scale``: ``p = x * scale / max(||x||, scale)``.

    Args:
        tree: the pytree ``x`` to project; its leaves are treated as one flat vector.
        scale: the radius; positive (default 1).

    Returns:
        The projection, a pytree of ``tree``'s structure.

    Examples:
        >>> print(gx.projections.projection_l2_ball(jnp.array([3.0, 4.0])))
        [0.6 0.8]
    """
    squared = tree_ops.norm(tree, squared=True)
    return tree_ops.scale(scale / jnp.sqrt(jnp.maximum(squared, scale**2)), tree)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    """Onto the l-infinity ball ``max |p_i| <= scale``: ``p = clip(x, -scale, scale)``.

    Args:
        tree: the pytree ``x`` to project.
        scale: the radius; ``>= 0``, a number or a tree like ``tree`` (default 1).

    Returns:
        The projection, a pytree of ``tree``'s structure.
    """
    return projection_box(tree, lower=-scale, upper=scale)


def projection_vector(x: Any, a: Any) -> Any:
    """Onto the line spanned by ``a``: ``p = (<x, a> / <a, a>) a``.

    Args:
        x: the pytree to project.
        a: the direction of the line, a non-zero pytree of ``x``'s structure.

    Returns:
        The projection, a pytree of ``x``'s structure.
    """
    return tree_ops.scale(tree_ops.vdot(x, a) / tree_ops.vdot(a, a), a)


def projection_hyperplane(x: Any, a: Any, b: jax.typing.ArrayLike) -> Any:
    """Onto the hyperplane ``<a, p> = b``: ``p = x + ((b - <x, a>) / <a, a>) a``.

    Args:
        x: the pytree to project.
        a: the normal of the hyperplane, a non-zero pytree of ``x``'s structure.
        b: the offset, a scalar.

    Returns:
        The projection, a pytree of ``x``'s structure.
    """
    return tree_ops.add_scale(x, (b - tree_ops.vdot(x, a)) / tree_ops.vdot(a, a), a)


def projection_halfspace(x: Any, a: Any, b: jax.typing.ArrayLike) -> Any:
    """Onto the half-space ``<a, p> <= b``: ``p = x + min((b - <x, a>) / <a, a>, 0) a``.

    ``x`` itself when it is feasible.

    Args:
        x: the pytree to project.
        a: the outward normal of the half-space, a non-zero pytree of ``x``'s structure.
        b: the offset, a scalar.

    Returns:
        The projection, a pytree of ``x``'s structure.
    """
    step = jnp.minimum((b - tree_ops.vdot(x, a)) / tree_ops.vdot(a, a), 0.0)
    return tree_ops.add_scale(x, step, a)
