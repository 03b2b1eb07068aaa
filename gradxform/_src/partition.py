"""Applying transformations to parts of a tree: masks, labels, frozen leaves."""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, NamedTuple

import jax

from gradxform._src import base
from gradxform._src.packing import Packed
from gradxform._src.state_access import ParamsPlaceholder


class MaskedNode(NamedTuple):
    """Stands in for a leaf that is masked out: an empty subtree, skipped by tree maps."""


class MaskedState(NamedTuple):
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

    ``mask`` is a tree of booleans shaped like the params (or a prefix of them), or a
    function of the params returning one. With ``mask_compatible_extra_args``, extra
    arguments shaped like the updates are masked too.
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
    inner_states: Mapping[Hashable, Any]


MultiTransformState = PartitionState  # the older name, kept as optax keeps it


def multi_transform(
    transforms: Mapping[Hashable, Any],
    param_labels: Any | Callable[[base.Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> base.GradientTransformation:
    """Applies ``transforms[label]`` to the leaves carrying that label.

    ``param_labels`` is a tree of labels shaped like the params, or a function of the
    params returning one. Every label must have a transformation and vice versa.
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
