"""The core types: a transformation is a pair of pure functions over pytrees.

``init(params) -> state`` builds the state; ``update(updates, state, params=None, **extra)
-> (updates, state)`` maps an update tree (usually the gradient) to a new update tree.
Every transformation accepts keyword arguments it does not use, so ``chain`` can hand
``value=``, ``grad=``, ``value_fn=`` to the members that need them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

PyTree = Any
Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[jax.typing.ArrayLike], jax.typing.ArrayLike]
ScalarOrSchedule = jax.typing.ArrayLike | Schedule
# The ``mask`` of ``masked`` and ``add_decayed_weights``: a tree of bools like the params,
# a function of the params giving one, or None for every leaf.
MaskOrFn = Any | Callable[[Params], Any] | None
# The two halves of a ``GradientTransformation``, named as optax names them; one update
# signature serves with and without extra arguments, as there is one transformation type.
TransformInitFn = Callable[[Params], OptState]
TransformUpdateFn = Callable[..., tuple[Updates, OptState]]
TransformUpdateExtraArgsFn = TransformUpdateFn


class GradientTransformation(NamedTuple):
    """An ``(init, update)`` pair of pure functions.

    ``init(params) -> state``;
    ``update(updates, state, params=None, **extra) -> (new_updates, new_state)``.

    Attributes:
      init: ``init(params) -> state``, a pure function building the initial state from
        the parameter tree (it reads shapes and dtypes, not values, for most members).
      update: ``update(updates, state, params=None, **extra) -> (updates, state)``, a pure
        function mapping an update tree (usually the gradient) and the state to the new
        update tree and state; ``params`` is needed only by members that read the
        parameters (weight decay, lookahead, ...), ``extra`` (e.g. ``value=``) is ignored
        by members that do not use it.
    """

    init: Callable[..., OptState]
    update: Callable[..., tuple[Updates, OptState]]


# optax splits transformations that take extra arguments into a subclass; here every
# transformation takes them, so optax's name is the one type.
GradientTransformationExtraArgs = GradientTransformation


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def init_empty_state(params: Params) -> EmptyState:
    """The ``init`` of a stateless transformation.

    Args:
      params: The parameters (ignored).

    Returns:
      ``EmptyState()``.
    """
    del params
    return EmptyState()


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule whose value depends on a state it carries, not only on the step count.

    ``init() -> state``; ``update(state, **extra) -> state`` advances it once per step;
    ``__call__(state, **extra) -> value`` reads the current value. ``extra`` are the
    keyword arguments ``update`` received (e.g. ``value=`` for a loss-driven schedule).
    ``inject_hyperparams`` accepts such an object wherever it accepts a schedule.

    Args:
      *args: Not used: the positional ``args`` of a protocol's constructor, which is
        never called. Implement ``init``, ``update`` and ``__call__`` on your own class;
        ``isinstance(obj, StatefulSchedule)`` checks that the three methods exist.
      **kwargs: Not used: the keyword ``kwargs`` of that constructor.
    """

    def init(self) -> Any:
        """The schedule's initial state."""

    def update(self, state: Any, **extra: Any) -> Any:
        """The state after one more step."""

    def __call__(self, state: Any, **extra: Any) -> jax.typing.ArrayLike:
        """The schedule's value in ``state``."""


def _accepts_extra_kwargs(fn: Callable) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def as_transformation(tx: Any) -> GradientTransformation:
    """Adopts any ``(init, update)`` pair, e.g. an optax transformation.

    An update function that does not take ``**extra`` gets the extra arguments dropped,
    so foreign transformations chain with gradxform ones in both directions.

    Args:
      tx: Any object with ``init`` and ``update`` attributes (a ``GradientTransformation``,
        an optax transformation, ...). Anything else raises ``TypeError``.

    Returns:
      A ``GradientTransformation`` with ``tx``'s ``init``: ``tx`` itself when it already
      is one whose ``update`` takes ``**extra``, else a wrapper whose ``update`` drops the
      extra keyword arguments before calling ``tx.update(updates, state, params)``.
    """
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"expected a GradientTransformation (an (init, update) pair), got {type(tx).__name__}"
        )
    if isinstance(tx, GradientTransformation) and _accepts_extra_kwargs(tx.update):
        return tx
    update = tx.update
    if _accepts_extra_kwargs(update):
        return GradientTransformation(tx.init, update)

    def update_without_extra(updates, state, params=None, **extra):
        del extra
        return update(updates, state, params)

    return GradientTransformation(tx.init, update_without_extra)


def with_extra_args_support(tx: Any) -> GradientTransformation:
    """``tx`` as a transformation whose ``update`` accepts (and ignores) extra keyword
    arguments: the same as ``as_transformation``, under optax's name.

    Args:
      tx: Any ``(init, update)`` pair.

    Returns:
      ``tx`` itself when its ``update`` already takes ``**extra``, else a wrapper.
    """
    return as_transformation(tx)


def check_same_structure(updates: PyTree, reference: PyTree, what: str) -> None:
    """Raises a ``ValueError`` naming both tree structures when they differ.

    Runs at trace time: under ``jit`` it costs nothing at run time.
    """
    got = jax.tree.structure(updates)
    want = jax.tree.structure(reference)
    if got != want:  # type: ignore[operator]  # jaxlib ships PyTreeDef without a stub
        raise ValueError(
            f"the updates' tree structure does not match the {what} it was initialised with.\n"
            f"  updates: {got}\n  {what}: {want}"
        )


def check_update_inputs(
    who: str, updates: PyTree, params: PyTree | None, reference: PyTree, what: str
) -> None:
    """``who``'s ``update`` needs ``params`` (else ``ValueError``) and ``updates`` of
    ``reference``'s tree structure (``check_same_structure``, ``what`` naming it)."""
    if params is None:
        raise ValueError(f"{who} needs params: call update(updates, state, params)")
    check_same_structure(updates, reference, what)


def required_value(who: str, value: Any, what: str) -> Any:
    """``value``, the ``value=`` keyword that ``who``'s ``update`` needs (``what`` says
    what it is); ``ValueError`` when it is missing."""
    if value is None:
        raise ValueError(f"{who} needs {what}: call update(updates, state, params, value=...)")
    return value


def _first_leaf(params: PyTree, predicate: Callable) -> tuple[str, Any] | None:
    """``(path, dtype)`` of the first leaf whose dtype satisfies ``predicate``, or None."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = jnp.result_type(leaf)
        if predicate(dtype):
            return jax.tree_util.keystr(path) or "<root>", dtype
    return None


def _is_complex(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.complexfloating)


def check_float_leaves(params: PyTree, who: str) -> None:
    """Raises ``TypeError`` naming the first integer or boolean leaf of ``params``.

    Arithmetic on such a leaf would be truncated back to its dtype by ``apply_updates``
    and silently lost, so every transformation that computes on a leaf refuses it at
    ``init``. Keep such leaves out with ``masked`` or ``multi_transform`` (their inner
    transformations never see masked-out leaves), or give them ``set_to_zero()``.
    """
    found = _first_leaf(params, lambda dtype: not jnp.issubdtype(dtype, jnp.inexact))
    if found:
        name, dtype = found
        raise TypeError(
            f"{who}: parameter {name} has dtype {dtype}; "
            "only floating and complex leaves can be optimized. Keep integer and boolean "
            "leaves out with gx.masked(...) or gx.multi_transform({..., 'frozen': "
            "gx.set_to_zero()}, labels)."
        )


def check_real_leaves(params: PyTree, who: str, hint: str = "") -> None:
    """Raises ``ValueError`` naming the first complex leaf of ``params``, for algorithms
    whose maths (signs, clipping, orderings) has no complex meaning."""
    found = _first_leaf(params, _is_complex)
    if found:
        name, dtype = found
        raise ValueError(
            f"{who} does not support complex parameters: parameter {name} has dtype {dtype}"
            + (f"; {hint}" if hint else "")
        )


def check_real_float_leaves(params: PyTree, who: str, hint: str = "") -> None:
    """``check_float_leaves`` then ``check_real_leaves``: floating, not complex, leaves."""
    check_float_leaves(params, who)
    check_real_leaves(params, who, hint)


def check_accumulator_dtype(params: PyTree, dtype: Any, who: str) -> None:
    """Raises ``ValueError`` when a real ``dtype`` would store a running sum of complex
    gradients: the cast would drop the imaginary parts, silently."""
    if dtype is None or _is_complex(dtype):
        return
    found = _first_leaf(params, _is_complex)
    if found:
        name, leaf_dtype = found
        raise ValueError(
            f"{who}: accumulator dtype {jnp.dtype(dtype)} is real but parameter {name} is "
            f"{leaf_dtype}; storing its average would drop the imaginary part. Pass a "
            "complex dtype or None."
        )


def identity() -> GradientTransformation:
    """Returns the updates unchanged: ``u <- u``.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState()``.
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return updates, state

    return GradientTransformation(init, update)


def set_to_zero() -> GradientTransformation:
    """Replaces every update by zeros: ``u <- 0`` (freezes the parameters it sees).

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState()``; each update keeps its
      shape and dtype.
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init, update)


def stateless(f: Callable[[Updates, Params | None], Updates]) -> GradientTransformation:
    """A transformation without state: ``u <- f(u, params)``.

    Args:
      f: ``f(updates, params) -> updates``, a pure function of the whole update tree and
        the parameter tree (``params`` is ``None`` when ``update`` is called without it).
        It must return a tree of the same structure.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState()``. Its ``init`` raises
      ``TypeError`` for integer or boolean parameter leaves.
    """

    def init(params):
        check_float_leaves(params, "stateless transformation")
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del extra
        return f(updates, params), state

    return GradientTransformation(init, update)


def stateless_with_tree_map(f: Callable[..., jax.Array]) -> GradientTransformation:
    """A stateless transformation applied leaf by leaf: ``u_i <- f(u_i, p_i)``.

    Args:
      f: ``f(update_leaf, param_leaf) -> update_leaf``, applied to each pair of leaves;
        ``param_leaf`` is ``None`` when ``update`` is called without ``params``.

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState()``.
    """

    def mapped(updates, params):
        if params is None:
            return jax.tree.map(lambda u: f(u, None), updates)
        return jax.tree.map(f, updates, params)

    return stateless(mapped)


def elementwise(f: Callable[[jax.Array], jax.Array]) -> GradientTransformation:
    """A stateless leaf-wise map that ignores params: ``u_i <- f(u_i)``.

    Args:
      f: ``f(update_leaf) -> update_leaf``, applied to each leaf (e.g. ``gx.abs_sq``).

    Returns:
      A ``GradientTransformation`` whose state is ``EmptyState()``.
    """
    return stateless(lambda updates, params: jax.tree.map(f, updates))


def apply_updates(params: Params, updates: Updates) -> Params:
    """``p <- p + u`` leaf by leaf, keeping each parameter's dtype; ``None`` leaves pass.

    Args:
      params: The parameter tree.
      updates: An update tree of the same structure (e.g. the output of a
        transformation's ``update``); each sum is cast back to its parameter's dtype.

    Returns:
      The new parameter tree, same structure and dtypes as ``params``.

    Examples:
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> opt = gx.sgd(learning_rate=0.1)
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.array([1.0, -1.0])}, state, params)
      >>> print(np.asarray(gx.apply_updates(params, updates)["w"]).round(4))
      [0.9 2.1]
    """
    return jax.tree.map(
        lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
