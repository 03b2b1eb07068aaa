"""Hyperparameters as state: scheduled, or changed by hand between steps."""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base, numerics


class InjectStatefulHyperparamsState(NamedTuple):
    count: jax.Array  # int32: calls to update so far
    hyperparams: dict[str, jax.Array]  # the values used by the last (or next) update
    hyperparams_states: dict[str, Any]  # the states of the scheduled hyperparameters
    inner_state: Any


class WrappedScheduleState(NamedTuple):
    count: jax.Array  # int32


class WrappedSchedule:
    """A step-count schedule ``f(t)`` seen as a stateful schedule (state: ``t``)."""

    def __init__(self, schedule_fn: Callable[[jax.Array], jax.typing.ArrayLike]):
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=jnp.zeros([], jnp.int32))

    def update(self, state: WrappedScheduleState, **extra: Any) -> WrappedScheduleState:
        del extra
        return WrappedScheduleState(count=numerics.safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra: Any) -> jax.typing.ArrayLike:
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
    ``hyperparams``, a dict of the numeric arguments as arrays. Each ``update``
    rebuilds ``f(**hyperparams)`` and applies it, so a value edited in
    ``state.hyperparams`` between steps takes effect on the next one. An argument given
    as a schedule ``s(t)`` (``t`` the number of earlier updates) or as a stateful
    schedule (``init()``, ``update(state, **extra)``, ``__call__(state, **extra)``) is
    re-evaluated every step and its value recorded in ``hyperparams``; editing it by hand
    has no effect. Bools, strings, arguments named in ``static_args`` (callables that
    are not schedules), integers given to arguments whose default is an integer (counts,
    sizes and periods such as ``update_interval`` or ``min_dim_size_to_factor``, which
    shape the computation), functions given to arguments whose default is a function,
    and other objects are passed unchanged.

    Floating hyperparameters are cast to ``hyperparam_dtype``, or by default to the
    widest float dtype of the params given to ``init``; ``update`` keeps the dtypes
    that ``init`` chose, so the state's types never change (optax instead re-derives
    them from ``update``'s params, which differ when ``params=None``).
    """
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    if not static.issubset(signature.parameters):
        raise ValueError(
            f"static_args must name parameters of {getattr(inner_factory, '__name__', 'the factory')}"
            f": got {sorted(static)}, parameters are {list(signature.parameters)}"
        )

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> base.GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        scheduled, numeric, other = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static or isinstance(value, bool):
                other[name] = value
            elif _is_structural(signature.parameters[name], value):
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
            hyperparams = {k: jnp.asarray(_to_dtype(v, dtype)) for k, v in state.hyperparams.items()}
            for k, s in scheduled.items():
                value = jnp.asarray(s(state.hyperparams_states[k], **extra))
                hyperparams[k] = value.astype(jnp.result_type(state.hyperparams[k]))
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
    """Deprecated spelling of ``inject_hyperparams`` (which takes stateful schedules)."""
    warnings.warn(
        "inject_stateful_hyperparams is deprecated, use inject_hyperparams",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
