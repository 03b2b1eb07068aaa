"""``torch.optim.SGD``: momentum whose first buffer is the undampened gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.transforms.momentum import trace
from gradxform.torch_optim import _common


class DampenedTraceState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; updates seen, int32
    momentum_buffer: Any


def dampened_trace(momentum: Any, dampening: Any) -> base.GradientTransformation:
    """torch's dampened momentum buffer.

    ``b_1 = g_1`` (torch creates the buffer as a copy of the first gradient, undampened);
    ``b_t = momentum * b_{t-1} + (1 - dampening) * g_t`` afterwards; ``u <- b_t``.
    With ``dampening = 0`` this is ``trace(momentum)``.
    """
    validate.non_negative("momentum", momentum)
    validate.finite("dampening", dampening)

    def init(params):
        base.check_float_leaves(params, "dampened_trace")
        return DampenedTraceState(jnp.zeros([], jnp.int32), tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.momentum_buffer, "momentum buffer")
        first = state.count == 0
        buf = jax.tree.map(
            lambda g, b: jnp.where(first, g, momentum * b + (1 - dampening) * g),
            updates,
            state.momentum_buffer,
        )
        return buf, DampenedTraceState(numerics.safe_increment(state.count), buf)

    return base.GradientTransformation(init, update)


def sgd(
    lr: base.ScalarOrSchedule = 1e-3,
    momentum: float = 0,
    dampening: float = 0,
    weight_decay: float = 0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.SGD`` (torch 2.13 defaults: ``lr=1e-3``, everything else off).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``; with ``momentum = mu != 0``:
    ``b_1 = g_1``, ``b_t = mu b_{t-1} + (1 - dampening) g_t``, and ``g <- g + mu b_t``
    (``nesterov``) or ``g <- b_t``; ``p <- p - lr g``. A scheduled ``lr`` multiplies the
    buffer at each step, as torch's param-group ``lr`` does; the buffer itself holds no lr.
    Sutskever et al. (2013), "On the importance of initialization and momentum";
    https://pytorch.org/docs/2.13/generated/torch.optim.SGD.html

    Args:
        lr: the learning rate, a number ``>= 0`` or a schedule ``step -> lr`` evaluated at the
            number of earlier steps (default 1e-3).
        momentum: ``mu``, the momentum factor; ``>= 0`` (default 0: no buffer).
        dampening: the dampening of the gradient in the buffer; finite (default 0).
        weight_decay: coupled weight decay (L2 penalty) added to the gradient, ``g <- g +
            weight_decay * p``; ``>= 0`` (default 0).
        nesterov: use Nesterov momentum, ``g <- g + mu b_t`` (default False); needs
            ``momentum > 0`` and ``dampening == 0``.
        maximize: maximize the objective instead of minimizing it: ``g <- -g`` first (default
            False).

    Returns:
        A ``GradientTransformation``; complex parameters are stepped as pairs of reals, as torch
        does. Its state is a tuple of the members' states;
        the momentum buffer is a ``TraceState`` (or a ``DampenedTraceState`` with
        ``count`` and ``momentum_buffer`` when ``dampening != 0``), absent without momentum.

    Raises:
        ValueError: where torch does: ``lr < 0``, ``momentum < 0``, ``weight_decay < 0``, and
            ``nesterov`` without a positive momentum and zero dampening.

    Examples:
        >>> opt = gx.torch_optim.sgd(lr=0.1, momentum=0.9)
        >>> w = jnp.array([1.0, -2.0])
        >>> state = opt.init(w)
        >>> for _ in range(2):  # the gradient of ||w||^2 / 2 is w
        ...     updates, state = opt.update(w, state, w)
        ...     w = gx.apply_updates(w, updates)
        >>> print(np.asarray(w).round(4))
        [ 0.72 -1.44]
    """
    _common.check_lr(lr)
    validate.non_negative("momentum", momentum)
    validate.finite("dampening", dampening)
    if nesterov:
        mu, tau = _common.concrete(momentum), _common.concrete(dampening)
        if (mu is not None and mu <= 0) or (tau is not None and tau != 0):
            raise ValueError(
                "nesterov momentum requires momentum > 0 and dampening == 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
    if _common.is_zero(momentum):
        buffer = base.identity()
    elif nesterov or _common.is_zero(dampening):
        # v <- g + mu v from v = 0 makes b_1 = g_1: torch's buffer exactly.
        buffer = trace(momentum, nesterov=nesterov)
    else:
        buffer = dampened_trace(momentum, dampening)
    return _common.torch_optimizer(buffer, lr=lr, weight_decay=weight_decay, maximize=maximize)
