"""Reading and writing an optimizer state by field name, whatever its nesting.

States are NamedTuples (``ScaleByAdamState(count, mu, nu)``) and dicts nested in chains,
masks and wrappers. ``get(state, "mu")`` finds the field ``mu`` of every NamedTuple and the
key ``"mu"`` of every dict, at any depth; a NamedTuple's class name finds the NamedTuple
itself. Paths name a NamedTuple field by ``NamedTupleKey(class name, field)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import jax

KeyPath = tuple
Filtering = Callable[[KeyPath, Any], bool] | None


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry: the field ``name`` of a NamedTuple of class ``tuple_name``.

    Attributes:
      tuple_name: The NamedTuple's class name, e.g. ``"ScaleByAdamState"``.
      name: The field's name, e.g. ``"mu"``.
    """

    tuple_name: str
    name: str

    def __str__(self):
        return f"{self.tuple_name}.{self.name}"


@jax.tree_util.register_pytree_node_class
class ParamsPlaceholder:
    """An empty pytree handed to ``init`` by ``map_params`` to find where the params'
    copies sit in a state. Transformations that need the params' structure at ``init``
    (``masked``) pass it through unchanged."""

    def tree_flatten(self):
        return (), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        del aux, children
        return cls()


def _is_named_tuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _children(path: KeyPath, node: Any) -> list[tuple[KeyPath, Any]]:
    """One level of ``node``'s children with their paths ([] for a leaf)."""
    if _is_named_tuple(node):
        name = type(node).__name__
        return [((*path, NamedTupleKey(name, f)), getattr(node, f)) for f in node._fields]
    kids, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if jax.tree_util.treedef_is_leaf(treedef) and kids and kids[0][1] is node:
        return []
    return [((*path, *key), child) for key, child in kids]


def _matches(path: KeyPath, node: Any, key: Any, filtering: Filtering) -> bool:
    """Whether ``node``, at ``path``, is what ``key`` names."""
    entry = path[-1] if path else None
    if isinstance(entry, NamedTupleKey):
        hit = entry.name == key
    elif isinstance(entry, jax.tree_util.DictKey):
        hit = entry.key == key
    else:
        hit = False
    hit = hit or (_is_named_tuple(node) and type(node).__name__ == key)
    return hit and (filtering is None or filtering(path, node))


def _holds(node: Any, key: Any) -> bool:
    """Whether ``key`` names ``node`` itself or one of its fields or keys."""
    if _is_named_tuple(node):
        return key in node._fields or type(node).__name__ == key
    return isinstance(node, dict) and key in node


def _outermost(path: KeyPath, node: Any, key: Any) -> Iterator[tuple[KeyPath, Any]]:
    """The nodes holding ``key`` that no other such node contains, in tree order."""
    if _holds(node, key):
        yield path, node
        return
    for child_path, child in _children(path, node):
        yield from _outermost(child_path, child, key)


def _found(path: KeyPath, node: Any, key: Any) -> list[tuple[KeyPath, Any]]:
    """optax's order: the outermost matches first, then those nested inside them."""
    holders = list(_outermost(path, node, key))
    found = []
    for holder_path, holder in holders:
        if _is_named_tuple(holder) and type(holder).__name__ == key:
            found.append((holder_path, holder))
        elif _is_named_tuple(holder):
            found.append(
                ((*holder_path, NamedTupleKey(type(holder).__name__, key)), getattr(holder, key))
            )
        else:
            found.append(((*holder_path, jax.tree_util.DictKey(key)), holder[key]))
    for holder_path, holder in holders:
        for child_path, child in _children(holder_path, holder):
            found.extend(_found(child_path, child, key))
    return found


def get_all_with_path(tree: Any, key: Any, filtering: Filtering = None) -> list:
    """Every ``(path, value)`` that ``key`` names in ``tree``: the outermost matches in
    tree order, then the matches nested inside them (optax's order).

    Args:
      tree: A pytree, usually an optimizer state.
      key: A NamedTuple field name or class name, or a dict key.
      filtering: ``filtering(path, value) -> bool`` keeps only some matches (default:
        all).

    Returns:
      A list of ``(path, value)``; a path is a tuple of JAX key entries and
      ``NamedTupleKey``.
    """
    found = _found((), tree, key)
    return found if filtering is None else [(p, v) for p, v in found if filtering(p, v)]


def get(tree: Any, key: Any, default: Any = None, filtering: Filtering = None) -> Any:
    """The one value that ``key`` names in ``tree`` (``get_all_with_path``).

    Args:
      tree: A pytree, usually an optimizer state.
      key: A NamedTuple field name or class name, or a dict key.
      default: Returned when nothing matches (default None).
      filtering: ``filtering(path, value) -> bool`` keeps only some matches.

    Returns:
      The value, or ``default``.

    Raises:
      KeyError: when several values match.
    """
    found = get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        raise KeyError(f"found {len(found)} values for {key!r}; pass filtering= to choose one")
    return found[0][1] if found else default


def set(tree: Any, filtering: Filtering = None, /, **kwargs: Any) -> Any:  # noqa: A001
    """``tree`` with every value named by a keyword replaced by that keyword's value,
    e.g. ``set(state, learning_rate=0.1)``; a replaced value is not searched further.

    Args:
      tree: A pytree, usually an optimizer state.
      filtering: ``filtering(path, value) -> bool`` limits which matches are replaced.
      **kwargs: Field names, class names or dict keys, and their new values.

    Returns:
      The new tree (the same structure, unless a value is replaced by a subtree).

    Raises:
      KeyError: when a keyword matches nothing (given ``filtering``).
    """
    for key in kwargs:
        if not get_all_with_path(tree, key, filtering):
            raise KeyError(f"no value matches {key!r}" + (" given filtering" if filtering else ""))

    def rebuild(path, node):
        for key, value in kwargs.items():
            if _matches(path, node, key, filtering):
                return value
        if _is_named_tuple(node):
            kids = _children(path, node)
            return node._replace(**{p[-1].name: rebuild(p, c) for p, c in kids})
        if isinstance(node, dict):
            return {k: rebuild((*path, jax.tree_util.DictKey(k)), v) for k, v in node.items()}
        kids = _children(path, node)
        if not kids:
            return node
        treedef = jax.tree.structure(node, is_leaf=lambda x: x is not node)
        return treedef.unflatten([rebuild(p, c) for p, c in kids])

    return rebuild((), tree)


def map_params(
    initable: Any,
    f: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[..., Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Maps ``f`` over the copies of the parameter tree inside an optimizer state (the
    moments, traces, ...), leaving the other leaves (counts, hyperparameters) to
    ``transform_non_params``: e.g. sharding specs for every params-shaped part.

    The copies are found by calling ``init`` on a placeholder: the parts of the state
    built from it are params-shaped.

    Args:
      initable: The transformation (anything with ``init``) or an ``init`` function.
      f: Applied leaf by leaf to each params-shaped part, with the leaves of ``rest``.
      state: A state ``initable`` built.
      *rest: Trees shaped like the params, passed to ``f`` alongside.
      transform_non_params: Applied to every other leaf (default: left as it is).
      is_leaf: Passed to ``jax.tree.map`` over the params-shaped parts.

    Returns:
      The mapped state.
    """
    init = initable.init if hasattr(initable, "init") else initable
    skeleton = init(ParamsPlaceholder())

    def one(marker, value):
        if isinstance(marker, ParamsPlaceholder):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return jax.tree.map(one, skeleton, state, is_leaf=lambda x: isinstance(x, ParamsPlaceholder))
