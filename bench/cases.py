"""The optimizers the benchmark runs, each built the same way from gradxform and optax.

Every case knows two figures of its algorithm, used to judge the measurements:
``traffic_bytes(params)``, the bytes one step must move at least (each array it reads or
writes touched once), and ``min_state_bytes(params)``, the smallest state that holds the
algorithm's statistics (a step counter counts once, 4 bytes, where the maths needs one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np


def _bytes(params) -> int:
    return int(sum(np.size(x) * x.dtype.itemsize for x in jax.tree.leaves(params)))


def _factored_stat_bytes(params, min_dim_size_to_factor: int = 128) -> int:
    """Adafactor's second-moment statistics: row and column sums where a leaf is factored."""
    total = 0
    for x in jax.tree.leaves(params):
        shape, item = x.shape, x.dtype.itemsize
        order = np.argsort(shape) if len(shape) >= 2 else None
        if order is None or shape[order[-2]] < min_dim_size_to_factor:
            total += int(np.size(x)) * item
        else:
            size = int(np.prod(shape))
            total += (size // shape[order[-1]] + size // shape[order[-2]]) * item
    return total


def _schedule(lib):
    """A 100-step linear warm-up to 1e-3, then cosine decay over 10k steps."""
    make = getattr(lib, "warmup_cosine_decay_schedule", None)
    if make is None:  # the schedule is a plain function: optax's works in any chain
        import optax

        make = optax.warmup_cosine_decay_schedule
    return make(init_value=0.0, peak_value=1e-3, warmup_steps=100, decay_steps=10_000)


# The contender that runs no optimizer at all (``p <- p - c g``), timed beside Adam.
FLOOR = "floor: p - c g"
# optax's step in its second process timed against its first: the scatter of the
# measurement between identical programs (an A/A comparison).
REPLICA = "optax again"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable  # lib -> transformation, with ``lib`` the gradxform or optax module
    moments: int  # param-sized statistics the algorithm keeps (0 for Adafactor: factored)
    counter: bool  # whether the maths needs the step number

    def traffic_bytes(self, params) -> int:
        p = _bytes(params)
        if self.name == "adafactor":
            return 3 * p + 2 * _factored_stat_bytes(params)
        return (3 + 2 * self.moments) * p

    def min_state_bytes(self, params) -> int:
        stats = (
            _factored_stat_bytes(params)
            if self.name == "adafactor"
            else self.moments * _bytes(params)
        )
        return stats + (4 if self.counter else 0)


CASES = {
    c.name: c
    for c in [
        Case("adam", lambda m: m.adam(1e-3), 2, True),
        Case("adamw", lambda m: m.adamw(1e-3, weight_decay=1e-2), 2, True),
        Case("sgd_momentum", lambda m: m.sgd(1e-2, momentum=0.9), 1, False),
        Case("lamb", lambda m: m.lamb(1e-3, weight_decay=1e-2), 2, True),
        Case("lion", lambda m: m.lion(1e-4, weight_decay=1e-2), 1, False),
        Case("adafactor", lambda m: m.adafactor(1e-2), 0, True),
        Case(
            "clip_adamw_schedule",
            lambda m: m.chain(m.clip_by_global_norm(1.0), m.adamw(_schedule(m), weight_decay=1e-2)),
            2,
            True,
        ),
    ]
}
