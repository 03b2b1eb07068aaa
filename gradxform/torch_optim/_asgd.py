"""``torch.optim.ASGD``: SGD with a decaying step and a running average of the iterates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.weight_decay import add_decayed_weights
from gradxform.torch_optim import _common


class IterateAverageState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; int32 scalar
    ax: Any  # the averaged parameters


def iterate_average(t0: Any) -> base.GradientTransformation:
    """Keeps ``ax``, torch ASGD's average of the parameters after each step; ``u`` passes.

    With ``p' = p + u`` the new parameters and ``c`` the number of earlier steps,
    ``mu = 1`` at ``c = 0`` and ``mu = 1 / max(1, c - t0)`` afterwards;
    ``ax <- p'`` when ``mu = 1``, else ``ax <- ax + mu (p' - ax)``: ``ax`` copies the
    parameters through step ``t0 + 2`` (1-based), then averages the iterates that follow.
    Polyak & Juditsky (1992), "Acceleration of Stochastic Approximation by Averaging".
    Needs ``params``; place it last, so that ``u`` is the final update.
    """
    validate.finite("t0", t0)

    def init(params):
        base.check_float_leaves(params, "iterate_average")
        return IterateAverageState(jnp.zeros([], jnp.int32), tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs("iterate_average", updates, params, state.ax, "parameter average")
        c = state.count.astype(jnp.result_type(float))
        mu = jnp.where(state.count == 0, 1.0, 1.0 / jnp.maximum(1.0, c - t0))
        new_params = base.apply_updates(params, updates)
        ax = jax.tree.map(
            lambda a, p: jnp.where(mu == 1, p, a + (p - a) * mu.astype(p.dtype)),
            state.ax,
            new_params,
        )
        return updates, IterateAverageState(numerics.safe_increment(state.count), ax)

    return base.GradientTransformation(init, update)


def asgd_average(state: Any) -> Any:
    """The averaged parameters ``ax`` held in the state of an ``asgd`` optimizer.

    Searches ``state`` (possibly nested in other transformations' states) for the one
    ``IterateAverageState`` and returns its ``ax`` tree.

    Args:
        state: an optimizer state that holds exactly one ``asgd`` state.

    Returns:
        The average of the iterates, a pytree shaped like the params.

    Raises:
        ValueError: if ``state`` holds no ``asgd`` state or several.
    """
    found = [
        s
        for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, IterateAverageState))
        if isinstance(s, IterateAverageState)
    ]
    if len(found) != 1:
        raise ValueError(
            f"asgd_average: expected one ASGD averaging state in the optimizer state, "
            f"found {len(found)}"
        )
    return found[0].ax


def asgd(
    lr: base.ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0,
    *,
    maximize: bool = False,
) -> base.GradientTransformation:
    """``torch.optim.ASGD`` (defaults ``lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6,
    weight_decay=0``).

    ``g <- -g`` if ``maximize``; ``g <- g + weight_decay * p``;
    ``p <- p (1 - lambd eta_t) - eta_t g`` with ``eta_1 = lr_1`` and
    ``eta_t = lr_{t-1} / (1 + lambd lr_{t-1} (t - 1))^alpha`` (torch computes the step
    size at the end of the previous step, so a scheduled ``lr`` acts one step late);
    the average ``ax`` of the iterates is kept in the state and read with
    ``asgd_average(state)``. Polyak & Juditsky (1992); Xu (2011), "Towards Optimal One Pass
    Large Scale Learning with Averaged Stochastic Gradient Descent";
    https://pytorch.org/docs/2.13/generated/torch.optim.ASGD.html

    Args:
        lr: the learning rate, as in ``sgd`` (default 1e-2).
        lambd: the decay term of ``eta`` and of the weights; finite (default 1e-4).
        alpha: the power of the ``eta`` decay; finite (default 0.75).
        t0: the step from which the average starts; finite (default 1e6).
        weight_decay: coupled weight decay, as in ``sgd``; ``>= 0`` (default 0).
        maximize: as in ``sgd`` (default False).

    Returns:
        A ``GradientTransformation``, complex parameters stepped as in ``sgd``.
        Its state is a pair: the step's states (the
        step counter in a ``ScaleByScheduleState``) and an ``IterateAverageState``
        (``count``, ``ax``, the average of the iterates).

    Raises:
        ValueError: where torch does: ``lr < 0``, ``weight_decay < 0``; and for a NaN or
            infinite ``lambd``, ``alpha`` or ``t0``.
    """
    _common.check_lr(lr)
    validate.finite("lambd", lambd)
    validate.finite("alpha", alpha)
    lr_fn = _common.schedule_of(lr)

    def eta(count):
        lr_then = lr_fn(jnp.maximum(count - 1, 0))
        return lr_then / (1 + lambd * lr_then * count) ** alpha

    return chain(
        _common.torch_optimizer(
            base.identity() if _common.is_zero(lambd) else add_decayed_weights(lambd),
            lr=lr,
            weight_decay=weight_decay,
            maximize=maximize,
            step_size=eta,
        ),
        # Outside real_pairs: the average of complex iterates stays complex, as torch's ax.
        iterate_average(t0),
    )
