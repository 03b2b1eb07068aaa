"""Holding some parameters constant."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base
from gradxform._src.partition import masked, partition


def freeze(mask: bool | Any) -> base.GradientTransformation:
    """Zeroes the updates of the leaves where ``mask`` is true: ``u_i <- 0`` if ``mask_i``.

    ``mask`` is a static bool (freeze all or nothing) or a tree of bools shaped like
    (a prefix of) the params. The transformations around it still see every leaf; to
    also keep frozen leaves out of an optimizer's state use ``selective_transform``.

    Args:
      mask: True freezes every leaf, False none; or a tree of bools (or a callable
        ``params -> tree of bools``, as ``masked`` accepts) marking the leaves to freeze.

    Returns:
      A ``GradientTransformation``: ``masked(set_to_zero(), mask)``, with ``masked``'s
      state.
    """
    return masked(base.set_to_zero(), mask)


def selective_transform(optimizer: Any, *, freeze_mask: bool | Any) -> base.GradientTransformation:
    """Runs ``optimizer`` on the leaves where ``freeze_mask`` is false, zeros the rest.

    Unlike ``chain(optimizer, freeze(mask))`` the frozen leaves get no optimizer state.

    Args:
      optimizer: The optimizer for the trainable leaves, any ``(init, update)`` pair.
      freeze_mask: Keyword-only; a tree of bools shaped like the params (or a single
        bool), True where the leaf is frozen.

    Returns:
      A ``GradientTransformation``: ``partition({"train": optimizer, "freeze":
      set_to_zero()}, labels)``, with ``partition``'s state.
    """

    def labels(params):
        del params
        return jax.tree.map(lambda m: "freeze" if m else "train", freeze_mask)

    return partition({"train": optimizer, "freeze": base.set_to_zero()}, labels)
