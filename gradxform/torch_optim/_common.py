"""What every torch.optim optimizer shares: checks, ``maximize``, weight decay, lr, and
complex parameters stepped as pairs of reals.

torch applies, in this order: ``g <- -g`` when ``maximize``; ``g <- g + wd * p`` (coupled
weight decay, "L2"); the algorithm; ``p <- p - lr * direction`` with the ``lr`` the param
group holds at that step (``torch_optimizer`` puts an algorithm between these). A
scheduler sets that ``lr`` before each ``optimizer.step()``; here ``lr`` may be a schedule
``c -> lr``, evaluated at ``c``, the number of earlier steps.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.transforms.scaling import scale, scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def concrete(value: Any) -> float | None:
    """``value`` as a float when it is known now; ``None`` for schedules and traced arrays."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if np.ndim(value) == 0:
        return float(np.asarray(value))
    return None


def is_zero(value: Any) -> bool:
    """Whether ``value`` is a known zero: torch skips a term whose coefficient is 0."""
    return concrete(value) == 0.0


def check_lr(lr: Any) -> None:
    """torch: ``0 <= lr``; a schedule is checked by no one, as torch's schedulers are not."""
    validate.non_negative("lr", lr)


def check_lr_eps_betas(lr: Any, eps: Any, betas: Any) -> tuple[Any, Any]:
    """torch's Adam-family checks, in its order: ``check_lr``, ``0 <= eps``, then
    ``0 <= betas[i] < 1`` for both entries of a pair; returns the pair."""
    check_lr(lr)
    validate.non_negative("eps", eps)
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    validate.decay("betas[0]", betas[0])
    validate.decay("betas[1]", betas[1])
    return betas[0], betas[1]


def maximize_sign(maximize: bool) -> base.GradientTransformation:
    """``g <- -g`` when ``maximize`` (before weight decay, as torch does), else identity."""
    return scale(-1.0) if maximize else base.identity()


def schedule_of(lr: Any) -> Callable[[jax.typing.ArrayLike], Any]:
    """``lr`` as a function of the step count ``c`` (a constant becomes ``c -> lr``)."""
    return lr if callable(lr) else (lambda count: lr)


def torch_optimizer(
    *direction: Any,
    lr: Any,
    weight_decay: Any,
    maximize: bool,
    decoupled: bool | None = None,
    step_size: Any = None,
) -> base.GradientTransformation:
    """torch's step around an algorithm's ``direction`` (its members run in order).

    ``g <- -g`` if ``maximize``; ``g <- g + wd * p`` (coupled weight decay, "L2");
    ``d <- direction(g)``; with ``decoupled`` (AdamW, NAdam/RAdam's
    ``decoupled_weight_decay``) no coupled term but ``d <- d + wd * p``, which is torch's
    ``p <- p (1 - lr wd)`` before the step; ``u <- -s_c d`` with ``s_c = lr`` at ``c``
    earlier steps, or ``step_size`` at ``c`` where the step is not ``lr`` itself (Adagrad's
    and ASGD's decayed steps). Complex leaves are stepped as pairs of reals (``real_pairs``).

    ``decoupled=None`` is for the optimizers without that switch. Raises ``ValueError``
    where torch does for ``weight_decay < 0``; ``check_lr`` is the caller's, since torch
    checks ``lr`` before the arguments that building ``direction`` checks.
    """
    validate.non_negative("weight_decay", weight_decay)
    decay = base.identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay)
    before, after = (base.identity(), decay) if decoupled else (decay, base.identity())
    # An optimizer with the switch keeps the slot after the direction either way, so its
    # state's layout does not depend on the switch; one without it has no such slot.
    tail = () if decoupled is None else (after,)
    return real_pairs(
        chain(
            maximize_sign(maximize),
            before,
            *direction,
            *tail,
            scale_by_learning_rate(lr if step_size is None else step_size),
        )
    )


def _as_real(tree: Any) -> Any:
    return jax.tree.map(
        lambda x: jnp.stack([x.real, x.imag], axis=-1) if jnp.iscomplexobj(x) else x, tree
    )


def real_pairs(inner: Any) -> base.GradientTransformation:
    """Runs ``inner`` on complex leaves seen as pairs of reals, as torch's optimizers do.

    torch steps a complex parameter through ``torch.view_as_real``: its real and
    imaginary parts get separate moments (``v_re = E[g_re^2]``, not ``E[|g|^2]``), signs
    and step sizes. A complex leaf of shape ``s`` is handed to ``inner`` as a real array
    of shape ``s + (2,)`` and its update turned back into complex; real leaves pass as
    they are. The state holds the pair layout.
    """
    inner = base.as_transformation(inner)

    def init(params):
        return inner.init(_as_real(params))

    def update(updates, state, params=None, **extra):
        out, state = inner.update(
            _as_real(updates), state, None if params is None else _as_real(params), **extra
        )
        out = jax.tree.map(
            lambda u, g: jax.lax.complex(u[..., 0], u[..., 1]) if jnp.iscomplexobj(g) else u,
            out,
            updates,
        )
        return out, state

    return base.GradientTransformation(init, update)
