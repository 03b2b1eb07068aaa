"""Schedules joined end to end: warmup + decay, and warm restarts (SGDR)."""

from __future__ import annotations

from typing import Iterable, Sequence

import jax
import jax.numpy as jnp

from gradxform._src import base
from gradxform._src.schedules.decay import (
    as_float,
    check_steps,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
)


def join_schedules(schedules: Sequence[base.Schedule], boundaries: Sequence[int]) -> base.Schedule:
    """Runs ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at 0.

    With ``b_0 = 0``: ``s(t) = s_i(t - b_i)`` for ``b_i <= t < b_{i+1}``. ``boundaries``
    has one entry fewer than ``schedules`` and should be increasing.
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("schedules must not be empty")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have len(schedules) - 1 = {len(schedules) - 1} entries, "
            f"got {len(boundaries)}"
        )
    for s in schedules:
        if not callable(s):
            raise TypeError(f"schedules must be callables, got {type(s).__name__}")

    def schedule(count):
        value = schedules[0](count)
        for boundary, s in zip(boundaries, schedules[1:]):
            value = jnp.where(count < boundary, value, s(count - boundary))
        return as_float(value)

    return schedule


def warmup_constant_schedule(
    init_value: jax.typing.ArrayLike, peak_value: jax.typing.ArrayLike, warmup_steps: int
) -> base.Schedule:
    """Linear warmup, then constant: ``s(t) = I + (P - I) * min(t, W) / W``."""
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_cosine_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    decay_steps: int,
    end_value: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 1.0,
) -> base.Schedule:
    """Linear warmup, then cosine decay (Loshchilov & Hutter, arXiv:1608.03983).

    ``s(t) = I + (P - I) * t / W`` for ``t < W``; after, with ``c = min(t - W, D - W)``::

        s(t) = P * ((1 - a) * (0.5 * (1 + cos(pi * c / (D - W)))) ** exponent + a)

    where ``a = end_value / peak_value`` (0 when ``peak_value == 0``), ``W = warmup_steps``
    and ``D = decay_steps`` counts the warmup too: the decay ends at ``t = D``.
    """
    check_steps("warmup_steps", warmup_steps)
    if decay_steps - warmup_steps <= 0:
        raise ValueError(
            f"decay_steps must exceed warmup_steps (it includes the warmup), got "
            f"decay_steps={decay_steps!r}, warmup_steps={warmup_steps!r}"
        )
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def warmup_exponential_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: jax.typing.ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: jax.typing.ArrayLike | None = None,
) -> base.Schedule:
    """Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then
    ``exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
    staircase, end_value)`` evaluated at ``t - warmup_steps``."""
    check_steps("warmup_steps", warmup_steps)
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            exponential_decay(
                peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
            ),
        ],
        [warmup_steps],
    )


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> base.Schedule:
    """SGD with warm restarts (Loshchilov & Hutter, SGDR, arXiv:1608.03983).

    One ``warmup_cosine_decay_schedule(**kwargs)`` cycle per dict in ``cosine_kwargs``, each
    lasting its ``decay_steps``; the cycles are joined end to end, and the last one holds its
    final value.
    """
    schedules, boundaries, step = [], [], 0
    for kwargs in cosine_kwargs:
        if "decay_steps" not in kwargs:
            raise ValueError(f"cosine_kwargs: every cycle needs decay_steps, got {kwargs!r}")
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    if not schedules:
        raise ValueError("cosine_kwargs must hold at least one cycle")
    return join_schedules(schedules, boundaries[:-1])
