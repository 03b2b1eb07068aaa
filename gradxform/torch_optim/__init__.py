"""PyTorch's ``torch.optim`` optimizers and learning-rate schedulers, exactly.

Each optimizer is a function returning a ``GradientTransformation`` with torch's argument
names and defaults; each scheduler is a pure function of the number of
``scheduler.step()`` calls made so far, whose value equals torch's
``optimizer.param_groups[0]["lr"]`` after that many calls.
"""

# optimizers

# schedulers
