"""Projected methods: any optimizer followed by a projection onto the feasible set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from gradxform._src import base


def projected(tx: Any, projection: Callable[[Any], Any]) -> base.GradientTransformation:
    """Makes ``tx`` a projected method: ``w <- P(w + u)``, so ``u <- P(w + u) - w``.

    ``u`` is the update of ``tx`` and ``P`` a Euclidean projection onto a closed convex
    set; the params must start feasible or are made so by the first step. With
    ``tx = sgd(lr)`` this is projected gradient descent, ``w <- P(w - lr grad f(w))``
    (Goldstein (1964), "Convex programming in Hilbert space"; Levitin & Polyak (1966)); with
    an adaptive ``tx`` it projects in the Euclidean, not the preconditioned, metric.
    ``apply_updates(w, u)`` computes ``w + (P(.) - w)``, which equals ``P(.)`` up to one
    rounding per element. ``update`` needs ``params``.

    Args:
        tx: the inner optimizer, a ``GradientTransformation`` (or what
            ``as_transformation`` accepts).
        projection: ``P``, a function from a params pytree to a params pytree of the same
            structure, e.g. ``lambda w: gradxform.projections.projection_box(w, 0.0, 1.0)``.

    Returns:
        A ``GradientTransformation`` whose state is ``tx``'s own.

    Raises:
        TypeError: if ``projection`` is not callable.
    """
    inner = base.as_transformation(tx)
    if not callable(projection):
        raise TypeError(f"projection must be callable, got {type(projection).__name__}")

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("projected needs params: call update(g, state, params)")
        updates, state = inner.update(updates, state, params, **extra)
        feasible = projection(base.apply_updates(params, updates))
        return jax.tree.map(lambda p, w: p - w, feasible, params), state

    return base.GradientTransformation(inner.init, update)
