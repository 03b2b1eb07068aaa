"""Every public optimizer with small, stable hyperparameters, for suite-wide tests.

``OPTIMIZERS[name]()`` builds a fresh ``GradientTransformation``. Reliability, sharding
and checkpoint tests iterate over this table; it grows with the catalogue.
"""

from __future__ import annotations

from typing import Callable

import gradxform as gx

OPTIMIZERS: dict[str, Callable[[], gx.GradientTransformation]] = {
    "sgd": lambda: gx.sgd(1e-2),
    "sgd_momentum": lambda: gx.sgd(1e-2, momentum=0.9),
    "momentum": lambda: gx.momentum(1e-2, 0.9),
    "ema_momentum": lambda: gx.ema_momentum(1e-2, 0.9),
    "adam": lambda: gx.adam(1e-2),
    "adamw": lambda: gx.adamw(1e-2, weight_decay=1e-2),
}
