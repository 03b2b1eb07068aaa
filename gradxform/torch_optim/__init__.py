"""PyTorch's ``torch.optim`` optimizers and learning-rate schedulers, exactly.

Each optimizer is a function returning a ``GradientTransformation`` with torch's argument
names and defaults; each scheduler is a pure function of the number of
``scheduler.step()`` calls made so far, whose value equals torch's
``optimizer.param_groups[0]["lr"]`` after that many calls.
"""

from gradxform.torch_optim._adadelta import adadelta
from gradxform.torch_optim._adagrad import adagrad
from gradxform.torch_optim._adam import adam, adamw
from gradxform.torch_optim._adamax import adamax
from gradxform.torch_optim._asgd import asgd, asgd_average
from gradxform.torch_optim._nadam import nadam
from gradxform.torch_optim._radam import radam
from gradxform.torch_optim._rmsprop import rmsprop
from gradxform.torch_optim._rprop import rprop
from gradxform.torch_optim._schedulers import (
    ReduceLROnPlateauState,
    constant_lr,
    cosine_annealing_lr,
    cosine_annealing_warm_restarts,
    cyclic_lr,
    exponential_lr,
    lambda_lr,
    linear_lr,
    multi_step_lr,
    one_cycle_lr,
    polynomial_lr,
    reduce_lr_on_plateau,
    step_lr,
)
from gradxform.torch_optim._sgd import sgd

__all__ = [
    "ReduceLROnPlateauState",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "asgd_average",
    "constant_lr",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts",
    "cyclic_lr",
    "exponential_lr",
    "lambda_lr",
    "linear_lr",
    "multi_step_lr",
    "nadam",
    "one_cycle_lr",
    "polynomial_lr",
    "radam",
    "reduce_lr_on_plateau",
    "rmsprop",
    "rprop",
    "sgd",
    "step_lr",
]
