"""Hyperparameters as state: scheduled, or changed by hand between steps."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base, numerics


class InjectStatefulHyperparamsState(NamedTuple):
    """The state of a transformation built by ``inject_hyperparams`` (optax's layout).

    Attributes:
        count: int32 scalar, the number of ``update`` calls so far.
        hyperparams: dict from argument name to a scalar array: after ``init``, the values
            the first ``update`` uses for constant arguments and the step-0 values of
            scheduled ones; after an ``update``, the values that update used. Entries of
            constant arguments may be edited between steps and take effect on the next
            one; entries of scheduled arguments are overwritten by their schedule.
        hyperparams_states: dict from the name of each scheduled argument to its
            schedule's state (a ``WrappedScheduleState`` for a plain ``s(t)``).
        inner_state: the state of the wrapped transformation.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    hyperparams: dict[str, jax.Array]
    hyperparams_states: dict[str, Any]
    inner_state: Any


class WrappedScheduleState(NamedTuple):
    """The state of a ``WrappedSchedule``.

    Attributes:
        count: int32 scalar ``t``, the number of ``update`` calls so far.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count


class WrappedSchedule:
    """A step-count schedule ``f(t)`` seen as a stateful schedule.

    The state is the step count: ``init() = t_0 = 0``, ``update(t) = t + 1`` (saturating
    at the int32 maximum) and the value at state ``t`` is ``f(t)``. This is how
    ``inject_hyperparams`` runs a plain schedule given for a hyperparameter.

    Attributes:
        schedule_fn: the schedule ``f``, a function of an int32 scalar step count that
            returns a scalar.
    """

    def __init__(self, schedule_fn: Callable[[jax.Array], jax.typing.ArrayLike]):
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        """The state at step 0.

        Returns:
            ``WrappedScheduleState(count=0)``, an int32 scalar count.
        """
        return WrappedScheduleState(count=jnp.zeros([], jnp.int32))

    def update(self, state: WrappedScheduleState, **extra: Any) -> WrappedScheduleState:
        """Advances the count by one.

        Args:
            state: the current state.
            **extra: extra arguments of the transformation's ``update``; ignored.

        Returns:
            The state with ``count + 1`` (saturating at the int32 maximum).
        """
        del extra
        return WrappedScheduleState(count=numerics.safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra: Any) -> jax.typing.ArrayLike:
        """The schedule's value at the state's count.

        Args:
            state: the current state.
            **extra: extra arguments of the transformation's ``update``; ignored.

        Returns:
            ``schedule_fn(state.count)``.
        """
        del extra
        return self.schedule_fn(state.count)


def _is_stateful_schedule(value: Any) -> bool:
    return callable(value) and all(
        callable(getattr(value, name, None)) for name in ("init", "update")
    )


def _highest_float(tree: Any) -> Any:
    """The widest floating dtype among the leaves, or JAX's default float if none."""
    floats = [
        jnp.result_type(x)
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(x), jnp.floating)
    ]
    if not floats:
        return jnp.result_type(float)
    return functools.reduce(jnp.promote_types, floats)


def _to_dtype(value: Any, dtype: Any) -> Any:
    """Floats (and weakly typed arrays) become ``dtype``; strongly typed arrays,
    ints and everything else pass unchanged."""
    if isinstance(value, jax.Array) and not getattr(value, "weak_type", False):
        return value
    current = value.dtype if hasattr(value, "dtype") else type(value)
    if jnp.issubdtype(current, jnp.floating):
        return jnp.asarray(value, dtype=dtype)
    return value


def _scheduled_dtype(recorded: Any, value: jax.Array) -> Any:
    """The dtype a scheduled value is stored in: the one recorded in the state, so that
    the state's types stay fixed under ``jit`` and ``lax.scan``, unless the recorded one
    is an integer and the value a float (a stateful schedule that starts from an integer
    count and accumulates floats): truncating that value would change the algorithm."""
    recorded = jnp.result_type(recorded)
    if jnp.issubdtype(value.dtype, jnp.floating) and not jnp.issubdtype(recorded, jnp.floating):
        return value.dtype
    return recorded


def _is_structural(parameter: inspect.Parameter, value: Any) -> bool:
    """An integer argument whose default is an integer: a count, a size or a period
    (``update_interval``, ``min_dim_size_to_factor``, ``memory_size``) that shapes the
    computation, through Python control flow or array shapes, so it stays static. Also a
    function given where the default is a function (``adopt``'s ``clip_value_fn``): it
    is a piece of the algorithm, not a schedule."""
    default = parameter.default
    if callable(value) and callable(default) and default is not inspect.Parameter.empty:
        return True
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return integer and type(default) is int


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., base.GradientTransformation]:
    """Wraps a transformation factory so its numeric hyperparameters live in the state.

    ``inject_hyperparams(f)(**kwargs)`` builds a transformation whose state holds
    ``hyperparams``, a dict of the numeric arguments as arrays. Each ``update`` rebuilds
    ``f(**hyperparams)`` and applies it, so a value edited in ``state.hyperparams``
    between steps takes effect on the next one. For an argument given as a schedule
    ``s``, step ``t`` (``t`` earlier updates) uses ``h_t = s(t)``; for a stateful
    schedule (``init()``, ``update(state, **extra)``, ``__call__(state, **extra)``),
    ``h_t = s(z_t)`` with ``z_0 = s.init()`` and ``z_{t+1} = s.update(z_t, **extra)``.
    ``h_t`` is recorded in ``hyperparams`` (editing it by hand has no effect). Passed to
    ``f`` unchanged, and not put in the state: bools, strings, arguments named in
    ``static_args``, integers given to arguments whose default is an integer (counts,
    sizes and periods such as ``update_interval`` or ``min_dim_size_to_factor``, which
    shape the computation), functions given to arguments whose default is a function, and
    any other non-numeric object. The factory is called once at construction with the
    step-0 values, so an out-of-range hyperparameter raises ``ValueError`` here.

    Floating hyperparameters are cast to ``hyperparam_dtype``, or by default to the widest
    float dtype of the params given to ``init``; ``update`` keeps the dtypes that ``init``
    chose, so the state's types do not change under ``jit`` or ``lax.scan`` (optax instead
    re-derives them from ``update``'s params, which differ when ``params=None``). The one
    exception: a scheduled value that ``init`` recorded as an integer and that later comes
    out as a float keeps its float dtype rather than being truncated.

    Args:
        inner_factory: a function returning a ``GradientTransformation`` (an optimizer
            alias such as ``adam``, or a transformation such as ``scale``), called with
            the wrapped function's arguments.
        static_args: the name, or an iterable of names, of ``inner_factory``'s
            parameters to pass through unchanged even when callable or numeric (a
            callable that is not a schedule, for instance). Default ``()``. Each must be a
            parameter of ``inner_factory``, else ``ValueError``.
        hyperparam_dtype: the dtype of the floating hyperparameters in the state, or
            ``None`` (default) for the widest float dtype among the params given to
            ``init`` (JAX's default float when they have none).

    Returns:
        A function with ``inner_factory``'s signature that returns a
        ``GradientTransformation``. Its state is an ``InjectStatefulHyperparamsState``
        (``count``, ``hyperparams``, ``hyperparams_states``, ``inner_state``).

    Example:
        >>> tx = gx.inject_hyperparams(gx.sgd)(learning_rate=0.1)
        >>> state = tx.init(jnp.zeros(2))
        >>> state.hyperparams["learning_rate"] = jnp.asarray(0.5)
        >>> updates, state = tx.update(jnp.ones(2), state)
        >>> updates
        Array([-0.5, -0.5], dtype=float32)
    """
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    if not static.issubset(signature.parameters):
        name = getattr(inner_factory, "__name__", "the factory")
        raise ValueError(
            f"static_args must name parameters of {name}: got {sorted(static)}, "
            f"parameters are {list(signature.parameters)}"
        )

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> base.GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        scheduled, numeric, other = {}, {}, {}
        for name, value in bound.arguments.items():
            if (
                name in static
                or isinstance(value, bool)
                or _is_structural(signature.parameters[name], value)
            ):
                other[name] = value
            elif _is_stateful_schedule(value):
                scheduled[name] = value
            elif callable(value):
                scheduled[name] = WrappedSchedule(value)
            elif isinstance(value, (int, float, jax.Array, np.ndarray, np.number)):
                numeric[name] = value
            else:
                other[name] = value

        def build(hyperparams):
            return base.as_transformation(inner_factory(**other, **hyperparams))

        # Build once with the step-0 values, so that an out-of-range hyperparameter
        # raises here, at construction, rather than at the first ``init``.
        build({**numeric, **{k: s(s.init()) for k, s in scheduled.items()}})

        def init(params):
            dtype = _highest_float(params) if hyperparam_dtype is None else hyperparam_dtype
            hyperparams = {k: jnp.asarray(_to_dtype(v, dtype)) for k, v in numeric.items()}
            schedule_states = {k: s.init() for k, s in scheduled.items()}
            hyperparams.update(
                {
                    k: jnp.asarray(_to_dtype(s(schedule_states[k]), dtype))
                    for k, s in scheduled.items()
                }
            )
            return InjectStatefulHyperparamsState(
                count=jnp.zeros([], jnp.int32),
                hyperparams=hyperparams,
                hyperparams_states=schedule_states,
                inner_state=build(hyperparams).init(params),
            )

        def update(updates, state, params=None, **extra):
            # Values from ``init`` are strongly typed and keep their dtype; a plain number
            # written into the state by hand gets the dtype ``init`` would have chosen.
            dtype = hyperparam_dtype
            if dtype is None:
                dtype = _highest_float(updates if params is None else params)
            hyperparams = {
                k: jnp.asarray(_to_dtype(v, dtype)) for k, v in state.hyperparams.items()
            }
            for k, s in scheduled.items():
                value = jnp.asarray(s(state.hyperparams_states[k], **extra))
                hyperparams[k] = value.astype(_scheduled_dtype(state.hyperparams[k], value))
            schedule_states = {
                k: s.update(state.hyperparams_states[k], **extra) for k, s in scheduled.items()
            }
            updates, inner_state = build(hyperparams).update(
                updates, state.inner_state, params, **extra
            )
            return updates, InjectStatefulHyperparamsState(
                count=numerics.safe_increment(state.count),
                hyperparams=hyperparams,
                hyperparams_states=schedule_states,
                inner_state=inner_state,
            )

        return base.GradientTransformation(init, update)

    return wrapped


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., base.GradientTransformation]:
    """Deprecated spelling of ``inject_hyperparams``, which takes stateful schedules too.

    Warns with ``DeprecationWarning`` and returns
    ``inject_hyperparams(inner_factory, static_args, hyperparam_dtype)``.

    Args:
        inner_factory: a function returning a ``GradientTransformation``, as for
            ``inject_hyperparams``.
        static_args: names of ``inner_factory``'s parameters passed through unchanged.
            Default ``()``.
        hyperparam_dtype: the dtype of the floating hyperparameters in the state, or
            ``None`` (default) for the widest float dtype of the params.

    Returns:
        The same as ``inject_hyperparams``; the state is an
        ``InjectStatefulHyperparamsState``.
    """
    warnings.warn(
        "inject_stateful_hyperparams is deprecated, use inject_hyperparams",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
