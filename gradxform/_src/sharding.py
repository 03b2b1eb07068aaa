"""Optimizer state layouts under ``jax.sharding``; ``gradxform.sharding`` is the public
namespace and its docstring the overview.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from typing import Any

import jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from gradxform._src import base


def _abstract_param(param: Any, sharding: Any) -> tuple[tuple[int, ...], Any, Any]:
    """``(shape, dtype, sharding)`` of one parameter given as array or ShapeDtypeStruct."""
    if sharding is None:
        sharding = getattr(param, "sharding", None)
    if not isinstance(sharding, NamedSharding):
        raise TypeError(
            "state_shardings: every parameter needs a NamedSharding, got "
            f"{type(sharding).__name__} for a leaf of shape {getattr(param, 'shape', '?')}; "
            "place the params with jax.device_put(params, NamedSharding(mesh, spec)) or "
            "pass a tree of NamedSharding together with params="
        )
    return tuple(param.shape), param.dtype, sharding


def _explicit_view(mesh: Any) -> jax.sharding.AbstractMesh:
    """The abstract form of ``mesh`` with every ``Auto`` axis made ``Explicit``.

    Tracing ``init`` against this view makes JAX carry each parameter's layout through
    the arithmetic in the array types, whatever the axis types of the user's mesh.
    """
    abstract = mesh if isinstance(mesh, jax.sharding.AbstractMesh) else mesh.abstract_mesh
    auto = dict.fromkeys(abstract.auto_axes, AxisType.Explicit)
    return abstract.update_axis_types(auto) if auto else abstract


def _explicit_spec(spec: PartitionSpec, ndim: int) -> PartitionSpec:
    # An explicit type has no "unconstrained" dimension: such a dimension is replicated.
    entries = tuple(spec) + (None,) * (ndim - len(spec))
    return PartitionSpec(*(None if e is PartitionSpec.UNCONSTRAINED else e for e in entries))


def state_shardings(tx: Any, params_shardings: Any, params: Any = None) -> Any:
    """The ``NamedSharding`` of every leaf of ``tx.init(params)``, as a tree like the state.

    Args:
      tx: any ``(init, update)`` pair.
      params_shardings: the params' layout: a tree of ``jax.Array`` or
        ``jax.ShapeDtypeStruct`` carrying a ``NamedSharding`` (then ``params`` may be
        omitted), or a tree of ``NamedSharding`` shaped like ``params``.
      params: arrays or ``jax.ShapeDtypeStruct`` giving shapes and dtypes, when
        ``params_shardings`` holds bare shardings.

    Returns:
      A tree of ``NamedSharding`` on the params' mesh, shaped like the state: each leaf
      computed from a parameter has the layout JAX's sharding-in-types rules give it
      (the parameter's own for moments, momenta and accumulators); every other leaf,
      scalar counters included, is replicated. Use it as ``out_shardings`` of
      ``jax.jit(tx.init)`` and of the training step, and to restore a checkpoint
      straight into the sharded layout with ``jax.device_put(host_state, shardings)``.

    Nothing is computed: ``init`` is traced abstractly once, against an ``Explicit`` copy
    of the mesh, so the answer is the same for ``Auto`` and ``Explicit`` meshes. An
    ``init`` that JAX's sharding type rules reject (one that flattens sharded params, say)
    is traced without layouts instead, and a state leaf gets a parameter's sharding when
    its key path ends with that parameter's path and its shape is the parameter's.

    Raises:
      ValueError: if the params are laid out on more than one mesh.
    """
    tx = base.as_transformation(tx)
    if params is None:
        triples = jax.tree.map(lambda p: _abstract_param(p, None), params_shardings)
    else:
        triples = jax.tree.map(_abstract_param, params, params_shardings)
    is_triple = lambda x: isinstance(x, tuple) and len(x) == 3 and isinstance(x[0], tuple)
    triple_leaves = jax.tree.leaves(triples, is_leaf=is_triple)
    meshes = {t[2].mesh for t in triple_leaves}
    if len(meshes) > 1:
        raise ValueError(
            f"state_shardings: the params are laid out on {len(meshes)} different meshes; "
            "one optimizer state lives on one mesh"
        )
    if not meshes:
        return jax.tree.map(lambda _: None, jax.eval_shape(tx.init, params_shardings))
    (mesh,) = meshes
    view = _explicit_view(mesh)

    def to_struct(t):
        shape, dtype, sharding = t
        spec = _explicit_spec(sharding.spec, len(shape))
        return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(view, spec))

    abstract_params = jax.tree.map(to_struct, triples, is_leaf=is_triple)
    try:
        with jax.sharding.use_abstract_mesh(view):
            abstract_state = jax.eval_shape(tx.init, abstract_params)
    except Exception:  # noqa: BLE001 - a sharding type error; the fallback re-raises others
        return _shardings_by_path(tx, triples, is_triple, mesh)

    def to_sharding(leaf):
        sharding = getattr(leaf, "sharding", None)
        spec = sharding.spec if isinstance(sharding, NamedSharding) else PartitionSpec()
        return NamedSharding(mesh, spec)

    return jax.tree.map(to_sharding, abstract_state)


def _shardings_by_path(tx, triples, is_triple, mesh):
    plain = jax.tree.map(lambda t: jax.ShapeDtypeStruct(t[0], t[1]), triples, is_leaf=is_triple)
    abstract_state = jax.eval_shape(tx.init, plain)
    by_path = [
        (tuple(path), t)
        for path, t in jax.tree_util.tree_leaves_with_path(triples, is_leaf=is_triple)
    ]

    def to_sharding(path, leaf):
        for param_path, (shape, _, sharding) in by_path:
            n = len(param_path)
            if tuple(leaf.shape) == shape and tuple(path[len(path) - n :]) == param_path:
                return NamedSharding(mesh, sharding.spec)
        return NamedSharding(mesh, PartitionSpec())

    return jax.tree_util.tree_map_with_path(to_sharding, abstract_state)


def _axis_size(mesh: Any, axes: tuple[str, ...]) -> int:
    return math.prod(mesh.shape[a] for a in axes)


def _entry_axes(entry: Any) -> tuple[str, ...]:
    if entry is None or entry is PartitionSpec.UNCONSTRAINED:
        return ()
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def partition_spec(
    shape: Sequence[int], spec: PartitionSpec, axis: str | Sequence[str], mesh: Any
) -> PartitionSpec:
    """``spec`` with ``axis`` added on one dimension of ``shape``, or ``spec`` unchanged.

    The rule ``partition_state`` lays state out with. The dimension is the largest one
    not yet sharded whose length is divisible by the size of ``axis``; failing that, the
    largest sharded one still divisible by the product of its axes and ``axis`` (the
    axes then nest on it). A leaf with no such dimension, scalars among them, stays
    replicated over ``axis``. A ``spec`` that already uses ``axis`` is returned as is.

    Args:
      shape: the shape of the array to lay out.
      spec: its current ``PartitionSpec`` (may be shorter than ``shape``: the missing
        trailing dimensions are unsharded).
      axis: a mesh axis name, or several, to add.
      mesh: the mesh that holds ``axis`` (its axis sizes decide divisibility).

    Returns:
      A ``PartitionSpec`` with one entry per dimension of ``shape``.

    Examples:
      >>> from jax.sharding import PartitionSpec
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> tuple(gx.sharding.partition_spec((8, 4), PartitionSpec(), "data", mesh))
      ('data', None)
    """
    axes = (axis,) if isinstance(axis, str) else tuple(axis)
    entries = list(spec) + [None] * (len(shape) - len(spec))
    used = {a for e in entries for a in _entry_axes(e)}
    if used & set(axes):
        return PartitionSpec(*entries)
    size = _axis_size(mesh, axes)
    by_length = sorted(range(len(shape)), key=lambda d: (-shape[d], d))
    for d in by_length:
        if not _entry_axes(entries[d]) and shape[d] % size == 0:
            entries[d] = axes[0] if len(axes) == 1 else axes
            return PartitionSpec(*entries)
    for d in by_length:
        have = _entry_axes(entries[d])
        if have and shape[d] % (size * _axis_size(mesh, have)) == 0:
            entries[d] = have + axes
            return PartitionSpec(*entries)
    return PartitionSpec(*entries)


def _type_spec(x: Any) -> PartitionSpec:
    """The layout recorded in ``x``'s type: explicit mesh axes only, else replicated."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    spec = getattr(sharding, "spec", None)
    if spec is None:
        return PartitionSpec(*([None] * jax.numpy.ndim(x)))
    return _explicit_spec(spec, jax.numpy.ndim(x))


def partition_state(
    tx: Any, mesh: jax.sharding.Mesh, axis: str | Sequence[str] = "data"
) -> base.GradientTransformation:
    """ZeRO-1: ``tx`` with its state and update arithmetic split over the mesh axis ``axis``.

    The params and the incoming updates are expected replicated over ``axis`` (data
    parallelism; they may be sharded over other axes of ``mesh``). Every array leaf of the
    state is stored split over ``axis`` on the dimension ``partition_spec`` picks, so each
    device keeps ``1/size(axis)`` of it, and ``update`` constrains the updates and params
    to the same split before calling ``tx.update``, so that each device computes the new
    state and update of its slice only; global reductions (global-norm clipping, trust
    ratios, factored moments) become collectives that XLA inserts. The returned updates
    are laid out as the incoming ones, ready for ``apply_updates`` on the replicated
    params. The result equals ``tx``'s up to the order of floating-point reductions.

    On an ``Explicit`` mesh (used under ``jax.set_mesh(mesh)``) each leaf's layout is read
    from its type and ``axis`` is added to it; ``tx.update`` itself runs with the mesh axes
    made ``Auto`` (``jax.sharding.auto_axes``), so that state leaves split on different
    dimensions (factored moments next to full ones) and transformations that flatten the
    params remain legal. On an ``Auto`` mesh the other mesh axes are left to XLA
    (``PartitionSpec.UNCONSTRAINED``); give ``state_shardings(partition_state(tx, mesh,
    axis), params)`` as the ``jit`` ``out_shardings`` to fix the layout at the boundary.

    Args:
      tx: the transformation to partition (any ``(init, update)`` pair).
      mesh: the device mesh that holds ``axis``.
      axis: a mesh axis name, or several, whose devices share the state (default
        ``"data"``).

    Returns:
      A ``GradientTransformation`` whose state is ``tx``'s, each array leaf split over
      ``axis``.

    Raises:
      ValueError: if ``axis`` is not an axis of ``mesh``.
    """
    tx = base.as_transformation(tx)
    axes = (axis,) if isinstance(axis, str) else tuple(axis)
    missing = [a for a in axes if a not in mesh.axis_names]
    if missing:
        raise ValueError(
            f"partition_state: axis {missing} is not an axis of the mesh {mesh.axis_names}"
        )

    def explicit_here() -> bool:
        context = jax.sharding.get_abstract_mesh()
        return not context.empty and all(a in context.explicit_axes for a in axes)

    def split_spec(x) -> PartitionSpec:
        """The layout of ``x`` split over ``axes``; unknown mesh axes left to XLA."""
        if explicit_here():
            return partition_spec(x.shape, _type_spec(x), axes, mesh)
        free = PartitionSpec(*([PartitionSpec.UNCONSTRAINED] * x.ndim))
        return partition_spec(x.shape, free, axes, mesh)

    def init(params):
        state = tx.init(params)
        if explicit_here():
            return jax.tree.map(
                lambda x: jax.sharding.reshard(x, split_spec(x)) if _is_nd_array(x) else x, state
            )
        return jax.tree.map(
            lambda x: (
                jax.lax.with_sharding_constraint(x, NamedSharding(mesh, split_spec(x)))
                if _is_nd_array(x)
                else x
            ),
            state,
        )

    def update(updates, state, params=None, **extra):
        # Layouts are read here, outside the Auto region, where the types still hold them.
        spec_of = lambda x: split_spec(x) if _is_nd_array(x) else None
        in_specs = jax.tree.map(spec_of, (updates, state, params), is_leaf=_is_none)
        if not explicit_here():
            new_updates, new_state = _pinned_update(
                tx, mesh, in_specs, updates, state, params, extra
            )
            # Replicate the dimension that carried ``axis``; leave the rest to XLA.
            return jax.tree.map(
                lambda x: _constrain(x, _unsplit(spec_of(x)), mesh) if _is_nd_array(x) else x,
                new_updates,
            ), new_state
        # tx.update runs with the mesh axes Auto: XLA, not the type checker, then
        # reconciles leaves split on different dimensions.
        out_specs = (_type_specs(updates), _state_out_specs(state, in_specs[1]))
        return _pinned_update(
            tx, mesh, in_specs, updates, state, params, extra, auto_axes_out=out_specs
        )

    return base.GradientTransformation(init, update)


def with_auto_axes(tx: Any) -> base.GradientTransformation:
    """``tx`` whose ``update`` runs with the current mesh's ``Explicit`` axes made ``Auto``.

    On an ``Explicit`` mesh JAX's sharding type checker rejects some operations on sharded
    arrays: flattening them (``ravel``, ``jnp.vdot``, ``ravel_pytree``: L-BFGS, Newton,
    Prodigy) or a matrix product whose contracted dimension is sharded on both sides
    (Muon's Newton-Schulz iteration). Wrapped, ``tx.update`` runs inside
    ``jax.sharding.auto_axes``, where XLA chooses the layouts and inserts the collectives;
    the inputs and the new state are pinned to the layouts they came in with, and the
    returned updates get the incoming updates' layout, so the state keeps its
    ``state_shardings`` layout from step to step. ``init`` is ``tx.init``. Outside an
    ``Explicit`` mesh context the wrapper calls ``tx.update`` unchanged.

    Args:
      tx: the transformation to wrap (any ``(init, update)`` pair).

    Returns:
      A ``GradientTransformation`` whose state is ``tx``'s.
    """
    tx = base.as_transformation(tx)

    def update(updates, state, params=None, **extra):
        context = jax.sharding.get_abstract_mesh()
        if context.empty or not context.explicit_axes:
            return tx.update(updates, state, params, **extra)
        spec_of = lambda x: _type_spec(x) if _is_nd_array(x) else None
        in_specs = jax.tree.map(spec_of, (updates, state, params), is_leaf=_is_none)
        out_specs = (_type_specs(updates), _state_out_specs(state, in_specs[1]))
        return _pinned_update(
            tx, context, in_specs, updates, state, params, extra, auto_axes_out=out_specs
        )

    return base.GradientTransformation(tx.init, update)


def _is_none(x: Any) -> bool:
    return x is None


def _is_nd_array(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.numpy.ndim(x) > 0


def _type_specs(tree: Any) -> Any:
    return jax.tree.map(lambda x: _type_spec(x) if isinstance(x, jax.Array) else None, tree)


def _state_out_specs(state: Any, specs: Any) -> Any:
    # Scalar leaves (counters) have no spec to pin; they come out replicated.
    return jax.tree.map(
        lambda x, spec: None if x is None else PartitionSpec() if spec is None else spec,
        state,
        specs,
        is_leaf=_is_none,
    )


def _pinned_update(tx, mesh, in_specs, updates, state, params, extra, auto_axes_out=None):
    """``tx.update`` with its inputs and new state constrained to ``in_specs``.

    With ``auto_axes_out`` (the output specs of updates and state) it runs inside
    ``jax.sharding.auto_axes`` over the context's ``Explicit`` axes. Array leaves of the
    extra keyword arguments are passed in as arguments, so they cross into the Auto
    region with the rest; everything else (callables such as ``value_fn``) is closed over.
    """
    leaves, extra_def = jax.tree.flatten(extra)
    arrays = [i for i, x in enumerate(leaves) if isinstance(x, jax.Array)]

    def run(updates, state, params, extra_arrays):
        updates, state, params = jax.tree.map(
            lambda x, spec: x if spec is None else _constrain(x, spec, mesh),
            (updates, state, params),
            in_specs,
            is_leaf=_is_none,
        )
        full = list(leaves)
        for i, x in zip(arrays, extra_arrays):
            full[i] = x
        new_updates, new_state = tx.update(
            updates, state, params, **jax.tree.unflatten(extra_def, full)
        )
        new_state = jax.tree.map(
            lambda x, spec: x if spec is None else _constrain(x, spec, mesh),
            new_state,
            in_specs[1],
            is_leaf=_is_none,
        )
        return new_updates, new_state

    extra_arrays = [leaves[i] for i in arrays]
    if auto_axes_out is None:
        return run(updates, state, params, extra_arrays)
    axes = tuple(jax.sharding.get_abstract_mesh().explicit_axes)
    return jax.sharding.auto_axes(run, axes=axes, out_sharding=auto_axes_out)(
        updates, state, params, extra_arrays
    )


def _unsplit(spec: PartitionSpec) -> PartitionSpec:
    return PartitionSpec(
        *(e if e is PartitionSpec.UNCONSTRAINED or e is None else None for e in spec)
    )


def _constrain(x: jax.Array, spec: PartitionSpec, mesh: Any) -> jax.Array:
    context = jax.sharding.get_abstract_mesh()
    if not context.empty:
        return jax.lax.with_sharding_constraint(x, spec)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def bytes_per_device(tree: Any) -> dict[Any, int]:
    """Bytes each local device holds for the arrays of ``tree`` (its addressable shards).

    A replicated leaf counts in full on every device, a sharded one only its shard;
    ``max(bytes_per_device(state).values())`` is the per-device memory of the state.

    Args:
      tree: a pytree; leaves that are not ``jax.Array`` (None, Python numbers, NumPy
        arrays) are not counted.

    Returns:
      A dict from each device holding a shard to the bytes it holds.

    Examples:
      >>> list(gx.sharding.bytes_per_device({"w": jnp.zeros((4, 3))}).values())
      [48]
    """
    held: dict[Any, int] = collections.defaultdict(int)
    for leaf in jax.tree.leaves(tree):
        if not isinstance(leaf, jax.Array):
            continue
        for shard in leaf.addressable_shards:
            held[shard.device] += math.prod(shard.data.shape) * shard.data.dtype.itemsize
    return dict(held)
