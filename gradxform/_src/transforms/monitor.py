"""Recording measurements of the updates in the state, for debugging and logging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.momentum import ema


class SnapshotState(NamedTuple):
    """The state of ``snapshot``.

    Attributes:
        measurement: ``{measure_name: measure(u)}`` of the latest updates (of the params
            after ``init``).
    """

    measurement: dict[str, Any]


def snapshot(measure_name: str, measure: Callable[[Any], Any]) -> base.GradientTransformation:
    """Stores ``measure(u)`` of the updates reaching it under ``measure_name``; ``u`` passes.

    ``init`` stores ``measure(params)``, so the state has the same structure from the
    start. Read it as ``state[i].measurement[measure_name]`` inside a chain.

    Args:
      measure_name: the key the measurement is stored under.
      measure: a function of the update tree (callable, else ``TypeError``).

    Returns:
      The ``GradientTransformation``; its state is ``SnapshotState(measurement)``.
    """
    if not callable(measure):
        raise TypeError(f"measure must be callable, got {type(measure).__name__}")

    def init(params):
        return SnapshotState({measure_name: measure(params)})

    def update(updates, state, params=None, **extra):
        del state, params, extra
        return updates, SnapshotState({measure_name: measure(updates)})

    return base.GradientTransformation(init, update)


class MonitorState(NamedTuple):
    """The state of ``monitor``.

    Attributes:
        measurements: ``{name: measurement}`` of the latest updates (zeros after
            ``init``).
        measure_states: the states of the measuring transformations, in the order of
            ``measures``.
    """

    measurements: dict[str, Any]
    measure_states: tuple[Any, ...]


def monitor(measures: dict[str, Any]) -> base.GradientTransformation:
    """Records several, possibly stateful, measurements of the updates; ``u`` passes.

    ``measures`` maps names to a function of the updates or to a transformation whose
    output is the measurement (e.g. ``measure_with_ema``). ``init`` fills
    ``measurements`` with zeros of each measurement's shape and dtype (optax leaves
    it empty until the first update), so the state's structure never changes.

    Args:
      measures: a dict from names to functions of the updates or to transformations
        (anything with ``init`` and ``update``, e.g. ``measure_with_ema`` or an optax
        transformation) whose output is the measurement.

    Returns:
      The ``GradientTransformation``; its state is
      ``MonitorState(measurements, measure_states)``.
    """
    txs: dict[str, base.GradientTransformation] = {}
    for name, m in measures.items():
        if isinstance(m, base.GradientTransformation) or not callable(m):
            txs[name] = base.as_transformation(m)
        else:

            def measure_only(u, _params, m=m):
                return m(u)

            txs[name] = base.stateless(measure_only)
    names = tuple(txs)

    def init(params):
        states = tuple(txs[n].init(params) for n in names)
        shapes = {
            n: jax.eval_shape(lambda p, s, n=n: txs[n].update(p, s, p)[0], params, s)
            for n, s in zip(names, states)
        }
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return MonitorState(zeros, states)

    def update(updates, state, params=None, **extra):
        measurements, states = {}, []
        for n, s in zip(names, state.measure_states):
            measurements[n], s = txs[n].update(updates, s, params, **extra)
            states.append(s)
        return updates, MonitorState(measurements, tuple(states))

    return base.GradientTransformation(init, update)


def measure_with_ema(
    measure: Callable[[Any], Any],
    decay: jax.typing.ArrayLike,
    debias: bool = True,
    accumulator_dtype: Any = None,
) -> base.GradientTransformation:
    """A transformation whose output is an EMA of ``measure(u)``, for ``monitor``.

    ``m <- decay m + (1 - decay) measure(u)``, debiased by ``1 - decay**t`` when
    ``debias``.

    Args:
      measure: a function of the update tree; a bool measurement is averaged as a float.
      decay: the averaging factor, in ``[0, 1)``.
      debias: divide by ``1 - decay**t`` (default True).
      accumulator_dtype: storage dtype of ``m`` (default None: the measurement's).

    Returns:
      A ``GradientTransformation`` whose output is the average; its state is
      ``(EmptyState(), EmaState(count, ema))``, ``ema`` shaped like the measurement.
    """
    average = ema(decay, debias, accumulator_dtype)
    # The average is shaped like the measurement, not like the params.
    # A bool measurement (e.g. "was clipped") is averaged as a float from the start.
    average_of_measure = average._replace(
        init=lambda params: average.init(
            jax.tree.map(lambda m: jnp.asarray(m, jnp.result_type(m, float)), measure(params))
        )
    )
    return chain(base.stateless(lambda u, _: measure(u)), average_of_measure)
