"""Gradient descent and its momentum forms."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.momentum import ema, trace
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
    (Sutskever et al. 2013). Minibatch SGD is the same update fed a minibatch gradient.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        momentum: ``mu``, the momentum decay, ``>= 0``; ``None`` (default) for plain
            gradient descent without a momentum buffer.
        nesterov: use Nesterov momentum; ignored when ``momentum`` is None. Default False.
        accumulator_dtype: storage dtype of ``v``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` whose state is optax's, ``(TraceState(trace),
        EmptyState())`` with momentum and ``(EmptyState(), EmptyState())`` without;
        ``ScaleByScheduleState(count)`` replaces the last for a scheduled ``lr``.

    Examples:
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> opt = gx.sgd(0.1, momentum=0.9)
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = gx.apply_updates(params, updates)
        >>> print(np.asarray(params["w"]).round(4))
        [ 0.46 -0.92]
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
    ``v <- beta v + g``; ``x <- x - lr v``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        beta: the momentum decay, in ``[0, 1)``. Default 0.9.

    Returns:
        A ``GradientTransformation`` with state ``(TraceState(trace), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    validate.decay("beta", beta)
    return chain(trace(beta), scale_by_learning_rate(learning_rate))


def ema_momentum(
    learning_rate: base.ScalarOrSchedule, beta: jax.typing.ArrayLike = 0.9
) -> base.GradientTransformation:
    """Momentum in EMA form: ``v <- beta v + (1 - beta) g``; ``x <- x - lr v``.

    Equal to ``momentum(lr * (1 - beta), beta)``; the form used in the Adam family.
    No bias correction.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        beta: the EMA decay, in ``[0, 1)``. Default 0.9.

    Returns:
        A ``GradientTransformation`` with state ``(EmaState(count, ema), EmptyState())``
        (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    validate.decay("beta", beta)
    return chain(ema(beta, debias=False), scale_by_learning_rate(learning_rate))
