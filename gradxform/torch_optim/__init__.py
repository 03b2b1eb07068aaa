"""PyTorch's ``torch.optim`` optimizers and learning-rate schedulers, exactly.

Each optimizer is a function returning a ``GradientTransformation`` with torch's argument
names and defaults; each scheduler is a pure function of the number of
``scheduler.step()`` calls made so far, whose value equals torch's
``optimizer.param_groups[0]["lr"]`` after that many calls.
"""

# optimizers

# schedulers
from gradxform.torch_optim.schedulers import (
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
