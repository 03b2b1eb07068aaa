"""Applying transformations to parts of a tree: masks, labels, frozen leaves."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax

from gradxform._src import base
from gradxform._src.packing import Packed
from gradxform._src.state_access import ParamsPlaceholder


class MaskedNode(NamedTuple):
    """Stands in for a leaf that is masked out: an empty subtree, skipped by tree maps."""


class MaskedState(NamedTuple):
    """The state of ``masked`` (optax's).

    Attributes:
        inner_state: the state of the inner transformation, initialised on the params
            with the masked-out leaves replaced by ``MaskedNode()``.
    """

    inner_state: Any


def _is_callable_mask(mask: Any) -> bool:
    flags = jax.tree.leaves(jax.tree.map(callable, mask))
    return bool(flags) and all(flags)


def _refuse_packed(who: str, what: str, *trees: Any) -> None:
    # A mask or label tree is shaped like the params' tree; a Packed value holds stacks.
    # Mapping one over the other fails deep inside JAX, so say where the mask belongs.
    if any(isinstance(t, Packed) for t in trees):
        raise TypeError(
            f"{who} got packed params or updates (gx.pack): its {what} are shaped like the "
            f"params' tree, not their stacks. Put it inside gx.grouped(...), which runs such "
            f"a member on the unpacked tree, e.g. gx.grouped(gx.masked(tx, mask))"
        )


def _apply_mask(tree: Any, mask_tree: Any) -> Any:
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)


def masked(
    inner: Any,
    mask: Any | Callable[[base.Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> base.GradientTransformation:
    """Applies ``inner`` only to the leaves where ``mask`` is true; the rest pass unchanged.

    ``u_i <- inner(g)_i`` where ``mask_i`` is true, ``u_i <- g_i`` elsewhere. ``inner`` sees
    the updates, params and state with every masked-out leaf replaced by ``MaskedNode()``
    (an empty subtree, which tree maps skip), so its state holds nothing for those leaves.

    Args:
        inner: the transformation to apply, a ``GradientTransformation`` or an
            ``(init, update)`` pair.
        mask: a tree of Python or array booleans shaped like the params, or like a prefix
            of them (a bool for a whole subtree), or a function returning one, called with
            the params in ``init`` and with the updates in ``update``.
        mask_compatible_extra_args: also mask each extra argument of ``update`` whose tree
            structure equals the updates'; others are passed unchanged. Default False.

    Returns:
        A ``GradientTransformation`` whose state is optax's ``MaskedState(inner_state)``.
        Packed params or updates (``gx.pack``) raise ``TypeError``: put the ``masked``
        inside ``gx.grouped``.
    """
    inner = base.as_transformation(inner)

    def mask_of(tree):
        return mask(tree) if _is_callable_mask(mask) else mask

    def init(params):
        if isinstance(params, ParamsPlaceholder):  # map_params locating the params' copies
            return MaskedState(inner_state=inner.init(params))
        _refuse_packed("masked", "masks", params)
        return MaskedState(inner_state=inner.init(_apply_mask(params, mask_of(params))))

    def update(updates, state, params=None, **extra):
        _refuse_packed("masked", "masks", updates, params)
        mask_tree = mask_of(updates)
        if mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra = {
                k: _apply_mask(v, mask_tree) if jax.tree.structure(v) == structure else v
                for k, v in extra.items()
            }
        new_masked, inner_state = inner.update(
            _apply_mask(updates, mask_tree),
            state.inner_state,
            None if params is None else _apply_mask(params, mask_tree),
            **extra,
        )
        new_updates = jax.tree.map(
            lambda m, new, old: new if m else old, mask_tree, new_masked, updates
        )
        return new_updates, MaskedState(inner_state=inner_state)

    return base.GradientTransformation(init, update)


class PartitionState(NamedTuple):
    """The state of ``multi_transform`` (optax's, also exported as
    ``MultiTransformState``).

    Attributes:
        inner_states: a dict from each label to the ``MaskedState`` of its
            transformation.
    """

    inner_states: Mapping[Hashable, Any]


MultiTransformState = PartitionState
"""The older name of ``PartitionState``, the state of ``multi_transform``, kept as optax
keeps it.

Attributes:
    inner_states: a dict from each label to the ``MaskedState`` of its transformation.
"""


def multi_transform(
    transforms: Mapping[Hashable, Any],
    param_labels: Any | Callable[[base.Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> base.GradientTransformation:
    """Applies ``transforms[label]`` to the leaves carrying that label.

    ``u_i <- transforms[label_i](g)_i``: each transformation runs as
    ``masked(transforms[k], label == k)``, in the order of ``transforms``, and sees only
    its own leaves (the others as ``MaskedNode()``). Every label carried by a leaf must
    have a transformation (else ``ValueError``); a transformation whose label no leaf
    carries is kept, its state holding no leaf of the params. Also exported as
    ``partition`` (optax's newer name).

    Args:
        transforms: a mapping from each label to its transformation (a
            ``GradientTransformation`` or an ``(init, update)`` pair).
        param_labels: a tree of hashable labels shaped like the params (or like a prefix
            of them), or a function returning one, called with the params in ``init`` and
            with the updates in ``update``.
        mask_compatible_extra_args: also mask each extra argument of ``update`` whose tree
            structure equals the updates', as in ``masked``. Default False.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``PartitionState(inner_states)``. Packed params or updates raise ``TypeError``.
    """
    transforms = {k: base.as_transformation(v) for k, v in transforms.items()}

    def labels_of(tree):
        return param_labels(tree) if callable(param_labels) else param_labels

    def masks_of(tree):
        labels = labels_of(tree)
        present = set(jax.tree.leaves(labels))
        if present - set(transforms):
            raise ValueError(
                f"multi_transform: labels {sorted(map(str, present - set(transforms)))} have no "
                f"transformation; transformations are given for {sorted(map(str, transforms))}"
            )
        return {k: jax.tree.map(lambda lab, k=k: lab == k, labels) for k in transforms}

    def init(params):
        _refuse_packed("multi_transform", "labels", params)
        masks = masks_of(params)
        return PartitionState(
            {
                k: masked(t, masks[k], mask_compatible_extra_args=mask_compatible_extra_args).init(
                    params
                )
                for k, t in transforms.items()
            }
        )

    def update(updates, state, params=None, **extra):
        _refuse_packed("multi_transform", "labels", updates, params)
        masks = masks_of(updates)
        new_states = {}
        for k, t in transforms.items():
            tx = masked(t, masks[k], mask_compatible_extra_args=mask_compatible_extra_args)
            updates, new_states[k] = tx.update(updates, state.inner_states[k], params, **extra)
        return updates, PartitionState(new_states)

    return base.GradientTransformation(init, update)


partition = multi_transform
