"""Euclidean projections onto convex sets, for pytrees: ``argmin_{p in C} ||x - p||^2``.

A pytree is treated as one flat vector, so norm balls and simplices couple all leaves.
Bounds given as numbers apply to every leaf; ``gradxform.projected(tx, P)`` turns any
optimizer into a projected method. Names and semantics follow ``optax.projections``,
except that ``projection_box`` and ``projection_hypercube`` also accept scalar bounds on
pytrees (and a bound tree that is a prefix of ``tree``), where optax raises.

Nothing is validated, so that every projection traces cheaply inside a step: the ranges
the docstrings give (a positive ``scale``, ``lower <= upper``, a non-zero ``a``) are what
the formulas assume, and outside them the result is not a projection (or is NaN).
"""

from gradxform._src.projections import (
    projection_box,
    projection_halfspace,
    projection_hypercube,
    projection_hyperplane,
    projection_l1_ball,
    projection_l1_sphere,
    projection_l2_ball,
    projection_l2_sphere,
    projection_linf_ball,
    projection_non_negative,
    projection_simplex,
    projection_vector,
)

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]
