"""Schedules: pure ``step -> value`` functions, usable wherever a scalar hyperparameter is.

Every schedule maps the step count ``t`` (a Python int or an int array, traced or not) to a
floating value of ``t``'s shape: float32 with JAX's default precision, float64 with
``jax_enable_x64``. All are jittable and vmappable over ``t``. The optax ones have optax's
names, arguments and values; ``square_root_schedule``, ``inverse_power_decay``,
``factor_schedule`` and ``multi_factor_schedule`` are the textbook decays. PyTorch's
schedulers, with torch's conventions, are in ``gradxform.torch_optim``.
"""

from gradxform._src.schedules.decay import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
    polynomial_schedule,
)
from gradxform._src.schedules.join import (
    join_schedules,
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from gradxform._src.schedules.piecewise import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
)
from gradxform._src.schedules.textbook import (
    factor_schedule,
    inverse_power_decay,
    multi_factor_schedule,
    square_root_schedule,
)

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "factor_schedule",
    "inverse_power_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "multi_factor_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "square_root_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]
