"""Every public optimizer with small, stable hyperparameters, for suite-wide tests.

``OPTIMIZERS[name]()`` builds a fresh ``GradientTransformation``. Reliability, sharding
and checkpoint tests iterate over this table; it grows with the catalogue.
``TORCH_OPTIMIZERS`` does the same for ``gradxform.torch_optim`` (property, state-structure
and checkpoint tests), ``CONTRIB_OPTIMIZERS`` for the rest of ``gradxform.contrib``;
``ALL_OPTIMIZERS`` is the three together.
"""

from __future__ import annotations

from collections.abc import Callable

import gradxform as gx
from gradxform import torch_optim

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
    "muon": lambda: gx.contrib.muon(1e-2),
    "schedule_free_sgd": lambda: gx.contrib.schedule_free_sgd(1e-2),
    "schedule_free_adamw": lambda: gx.contrib.schedule_free_adamw(1e-2),
    "prodigy": lambda: gx.contrib.prodigy(),
    "adopt": lambda: gx.contrib.adopt(1e-2),
    "ademamix": lambda: gx.contrib.ademamix(1e-2),
    "simplified_ademamix": lambda: gx.contrib.simplified_ademamix(1e-3),
}
# Not listed: sophia, whose update needs the loss (``obj_fn=``) as an extra argument.

# Optimizers of gradxform.contrib beyond OPTIMIZERS, one per family (coin betting,
# distance over gradients, D-adaptation). They join ALL_OPTIMIZERS, so the half-precision,
# zero-gradient, state-structure and sharding checks cover them, but not OPTIMIZERS, each
# of whose members other tests' tables must list (test_inject_hyperparams' CATALOGUE,
# test_complex's exceptions). Held out, for the suite's time: dowg (dog's family), sam (a
# wrapper of two sgd). Held out, failing a check: madgrad (its step x_{t+1} - x_t is a
# difference of iterates, 1e-8 rather than 0 in float32 at a zero gradient), galore (its
# SVD refuses an input sharded on a matrix axis), mechanize (its replicated per-beta state
# leaves keep the sharding check's partitioned state above half the plain one's bytes).
# Not optimizers of plain gradients: momo and momo_adam (they need ``value=``), dpsgd
# (per-example gradients); normalize and split_real_and_imaginary are transformations.
CONTRIB_OPTIMIZERS: dict[str, Callable[[], gx.GradientTransformation]] = {
    "cocob": lambda: gx.contrib.cocob(),
    "dog": lambda: gx.contrib.dog(),
    "dadapt_adamw": lambda: gx.contrib.dadapt_adamw(),
    "acprop": lambda: gx.contrib.acprop(1e-2),
}

# gradxform.torch_optim, each optimizer once, with options that take its other code paths:
# dampened momentum, amsgrad, maximize, centred, lr decay, coupled (L2) and decoupled
# weight decay. Names start with "torch_"; none is shared with OPTIMIZERS.
TORCH_OPTIMIZERS: dict[str, Callable[[], gx.GradientTransformation]] = {
    "torch_sgd_dampening_maximize": lambda: torch_optim.sgd(
        1e-2, momentum=0.9, dampening=0.5, maximize=True
    ),
    # adam itself through adamw, which is adam(..., decoupled_weight_decay=True).
    "torch_adamw_amsgrad_maximize": lambda: torch_optim.adamw(
        1e-2, betas=(0.9, 0.9), weight_decay=1e-2, amsgrad=True, maximize=True
    ),
    "torch_nadam_decoupled": lambda: torch_optim.nadam(
        1e-2, weight_decay=1e-2, momentum_decay=4e-2, decoupled_weight_decay=True
    ),
    "torch_radam_l2_maximize": lambda: torch_optim.radam(1e-2, weight_decay=1e-2, maximize=True),
    "torch_adamax_maximize": lambda: torch_optim.adamax(1e-2, maximize=True),
    "torch_rmsprop_centered_momentum": lambda: torch_optim.rmsprop(
        1e-3, momentum=0.9, centered=True, maximize=True
    ),
    "torch_adagrad_lr_decay_l2": lambda: torch_optim.adagrad(
        1e-2, lr_decay=1e-2, weight_decay=1e-2, initial_accumulator_value=0.1
    ),
    "torch_adadelta_maximize": lambda: torch_optim.adadelta(1.0, rho=0.95, maximize=True),
    "torch_rprop_maximize": lambda: torch_optim.rprop(
        1e-2, etas=(0.3, 1.5), step_sizes=(1e-4, 1.0), maximize=True
    ),
    # t0=2: the iterate average starts within the first steps, not after 1e6.
    "torch_asgd_l2": lambda: torch_optim.asgd(1e-2, t0=2.0, weight_decay=1e-2),
}

ALL_OPTIMIZERS = {**OPTIMIZERS, **CONTRIB_OPTIMIZERS, **TORCH_OPTIMIZERS}
assert len(ALL_OPTIMIZERS) == len(OPTIMIZERS) + len(CONTRIB_OPTIMIZERS) + len(TORCH_OPTIMIZERS), (
    "a name is shared"
)
