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
    "adagrad": lambda: gx.adagrad(1e-2),
    "rmsprop": lambda: gx.rmsprop(1e-2),
    "rmsprop_centered_momentum": lambda: gx.rmsprop(1e-3, centered=True, momentum=0.9),
    "adadelta": lambda: gx.adadelta(1.0),
    "amsgrad": lambda: gx.amsgrad(1e-2),
    "adamax": lambda: gx.adamax(1e-2),
    "adamaxw": lambda: gx.adamaxw(1e-2, weight_decay=1e-2),
    "nadam": lambda: gx.nadam(1e-2),
    "nadamw": lambda: gx.nadamw(1e-2, weight_decay=1e-2),
    "radam": lambda: gx.radam(1e-2),
    "yogi": lambda: gx.yogi(1e-2),
    "adabelief": lambda: gx.adabelief(1e-2),
    "lamb": lambda: gx.lamb(1e-2, weight_decay=1e-2),
    "lars": lambda: gx.lars(1e-2),
    "fromage": lambda: gx.fromage(1e-2),
    "novograd": lambda: gx.novograd(1e-2),
    "lion": lambda: gx.lion(1e-3),
    "sign_sgd": lambda: gx.sign_sgd(1e-2),
    "signum": lambda: gx.signum(1e-2),
    "adafactor": lambda: gx.adafactor(1e-2),
    "sm3": lambda: gx.sm3(1e-2),
    "rprop": lambda: gx.rprop(1e-2),
    "adan": lambda: gx.adan(1e-2),
    "optimistic_gradient_descent": lambda: gx.optimistic_gradient_descent(1e-2),
    "optimistic_adam_v2": lambda: gx.optimistic_adam_v2(1e-2),
    "noisy_sgd": lambda: gx.noisy_sgd(1e-2, key=0),
    "muon": lambda: gx.muon(1e-2),
    "schedule_free_sgd": lambda: gx.schedule_free_sgd(1e-2),
    "schedule_free_adamw": lambda: gx.schedule_free_adamw(1e-2),
    "prodigy": lambda: gx.prodigy(),
    "adopt": lambda: gx.adopt(1e-2),
    "ademamix": lambda: gx.ademamix(1e-2),
    "simplified_ademamix": lambda: gx.simplified_ademamix(1e-3),
}
# Not listed: sophia, whose update needs the loss (``obj_fn=``) as an extra argument.
