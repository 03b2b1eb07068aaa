"""Compiling and timing jitted, donated optimizer steps; the bandwidth probe.

Contenders, each a ``Runner`` (a step in this process, ``InProcessStep``, or in one of its
own, ``workers.StepProcess``), are timed alternating round by round (the order flips
every round), after warm-up, and summarised by medians, so that load from other
processes and clock drift hit every contender alike. Before anything is timed, the
objects alive then are collected and frozen (``settled_heap``).
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Protocol

import jax
import jax.numpy as jnp

resource: ModuleType | None
try:
    import resource
except ImportError:  # not on Windows
    resource = None


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """Collects garbage, then freezes what survives (``gc.freeze``) until the block ends
    (``gc.unfreeze``), so that full collections inside it scan only objects made inside it.

    A process that has imported JAX and compiled a step holds some 160,000 objects. Each
    step allocates Python objects (its output arrays and trees), so the collector runs
    during the timed steps, and each full collection then walked all of them: 75-94 ms,
    in whichever sample it fell. On the 1000-leaf SGD-with-momentum step (8 ms), six
    processes running optax's one program had medians of 10.5-11.6 ms and samples up to
    135 ms; with the heap settled, 7.5-8.2 ms and samples up to 13 ms. What the steps
    allocate is still collected, inside the timing; only the walk over the set-up's
    objects (the same for every contender, and no part of a step) is gone.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def make_step(tx, apply_updates: Callable) -> jax.stages.Wrapped:
    """``(params, state, grads) -> (params, state)``, jitted, params and state donated."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def compile_step(jitted: jax.stages.Wrapped, *args) -> tuple[Callable, float, float]:
    """``(compiled, trace_and_lower_seconds, compile_seconds)``."""
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    return compiled, t1 - t0, time.perf_counter() - t1


def fresh_copy(tree):
    """A copy that owns its buffers, so donating it leaves the original intact."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


class Runner(Protocol):
    """A contender's step that can be given fresh buffers and timed (``InProcessStep``,
    ``workers.StepProcess``)."""

    def fresh(self) -> None: ...

    def run(self, n: int) -> tuple[float, int | None]: ...


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


class InProcessStep:
    """A ``Runner`` in this process: ``step(*carry, extra)`` is the next carry (params and
    state donated), ``make_carry()`` gives fresh ``(params, state)``.

    ``run(n)`` returns seconds per step over ``n`` consecutive steps and the minor page
    faults they took (None where the OS does not count them): memory touched for the
    first time, the temporaries a step allocates afresh each call, which on CPU cost
    their page faults as well as their traffic.
    """

    def __init__(self, step: Callable, make_carry: Callable[[], tuple], extra: object):
        self._step, self._make_carry, self._extra = step, make_carry, extra
        self._carry: tuple = ()

    def fresh(self) -> None:
        self._carry = ()  # the last buffers go first
        self._carry = self._make_carry()
        jax.block_until_ready(self._carry)

    def run(self, n: int) -> tuple[float, int | None]:
        carry = self._carry
        f0 = _minor_faults()
        t0 = time.perf_counter()
        for _ in range(n):
            carry = self._step(*carry, self._extra)
        jax.block_until_ready(carry)
        seconds = (time.perf_counter() - t0) / n
        self._carry = carry
        return seconds, _minor_faults() - f0 if resource else None


@settled_heap()  # for runners in this process; a ``StepProcess`` settles its own
def time_trials(
    runners: dict[str, Runner],
    trials: int,
    repeats: int,
    warmup: int = 3,
    min_seconds: float = 0.03,
    max_inner: int = 50,
    fresh_bytes: dict[str, float] | None = None,
) -> dict[str, list[float]]:
    """Seconds per step of each runner: ``trials`` times fresh buffers, a warm-up and
    ``repeats`` rounds, one sample per runner and round.

    Each sample is the mean of ``inner`` consecutive steps, ``inner`` chosen per trial so
    a sample lasts ``min_seconds``. The order within a round flips every round and is
    rotated by ``len(runners) / trials`` places every trial, so that where a runner
    stands in a round is shared out. Sample ``i`` of every runner comes from the same
    trial and round, so ``samples[a][i] / samples[b][i]`` are paired ratios.
    ``fresh_bytes``, if given, is filled with each runner's bytes of memory touched for
    the first time per timed step (minor page faults times the page size, where the OS
    counts them).
    """
    names = list(runners)
    samples: dict[str, list[float]] = {name: [] for name in names}
    faults = {name: [0, 0] for name in names}  # [faults, steps] over the timed rounds
    trials = max(1, trials)
    for t in range(trials):
        shift = t * len(names) // trials
        order = names[shift:] + names[:shift]
        slowest = 0.0
        for name in order:
            runners[name].fresh()
            for _ in range(warmup):
                slowest = max(slowest, runners[name].run(1)[0])
        inner = max(1, min(max_inner, int(min_seconds / max(slowest, 1e-9))))
        for r in range(repeats):
            for name in order if r % 2 == 0 else order[::-1]:
                seconds, count = runners[name].run(inner)
                samples[name].append(seconds)
                if count is not None:
                    faults[name][0] += count
                    faults[name][1] += inner
    if fresh_bytes is not None and resource is not None:
        page = resource.getpagesize()
        for name, (count, steps) in faults.items():
            if steps:
                fresh_bytes[name] = count * page / steps
    return samples


def paired_ratios(samples: dict[str, list[float]], name: str, reference: str) -> list[float]:
    """``name``'s time over ``reference``'s, round by round (both timed in each round)."""
    return [a / b for a, b in zip(samples[name], samples[reference], strict=True)]


def bandwidth_probe(elements: int, repeats: int) -> dict:
    """GB/s of a donated in-place triad ``x <- x + 0.5 y`` (reads x, y; writes x)."""
    triad = jax.jit(lambda x, y: x + jnp.float32(0.5) * y, donate_argnums=0)
    x = jnp.ones((elements,), jnp.float32)
    y = jnp.full((elements,), 2.0, jnp.float32)
    for _ in range(3):
        x = triad(x, y)
    x.block_until_ready()
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x = triad(x, y)
        x.block_until_ready()
        seconds.append(time.perf_counter() - t0)
    best = statistics.median(seconds)
    return {
        "elements": elements,
        "bytes_per_call": 12 * elements,
        "median_s": best,
        "gbps": 12 * elements / best / 1e9,
    }
