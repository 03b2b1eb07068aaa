"""Gradient descent and its momentum forms."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.accumulation import ema, trace
from gradxform._src.transforms.scaling import scale_by_learning_rate


def sgd(
    learning_rate: base.ScalarOrSchedule,
    momentum: float | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> base.GradientTransformation:
    """Stochastic gradient descent, optionally with heavy-ball or Nesterov momentum.

    Without momentum ``x <- x - lr g``. With ``momentum = mu``: ``v <- g + mu v``,
    ``x <- x - lr v``; with ``nesterov``: ``x <- x - lr (g + mu v)``
    (Sutskever et al. 2013). Defaults: ``momentum=None``, ``nesterov=False``.
    Minibatch SGD is the same update fed a minibatch gradient.
    """
    if momentum is not None:
        validate.non_negative("momentum", momentum)
    return chain(
        trace(momentum, nesterov, accumulator_dtype) if momentum is not None else base.identity(),
        scale_by_learning_rate(learning_rate),
    )


def momentum(
    learning_rate: base.ScalarOrSchedule, beta: jax.typing.ArrayLike = 0.9
) -> base.GradientTransformation:
    """Heavy-ball momentum as textbooks write it (Polyak 1964):
    ``v <- beta v + g``; ``x <- x - lr v``. Default ``beta=0.9``.
    """
    validate.decay("beta", beta)
    return chain(trace(beta), scale_by_learning_rate(learning_rate))


def ema_momentum(
    learning_rate: base.ScalarOrSchedule, beta: jax.typing.ArrayLike = 0.9
) -> base.GradientTransformation:
    """Momentum in EMA form: ``v <- beta v + (1 - beta) g``; ``x <- x - lr v``.

    Equal to ``momentum(lr * (1 - beta), beta)``; the form used in the Adam family.
    Default ``beta=0.9``; no bias correction.
    """
    validate.decay("beta", beta)
    return chain(ema(beta, debias=False), scale_by_learning_rate(learning_rate))
