"""What every torch.optim optimizer shares: checks, ``maximize``, weight decay, lr, and
complex parameters stepped as pairs of reals.

torch applies, in this order: ``g <- -g`` when ``maximize``; ``g <- g + wd * p`` (coupled
weight decay, "L2"); the algorithm; ``p <- p - lr * direction`` with the ``lr`` the param
group holds at that step. A scheduler sets that ``lr`` before each ``optimizer.step()``;
here ``lr`` may be a schedule ``c -> lr``, evaluated at ``c``, the number of earlier steps.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base, validate
from gradxform._src.transforms.scaling import scale
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


def check_betas(betas: Any) -> tuple[Any, Any]:
    """torch: ``0 <= betas[i] < 1`` for both entries of a pair."""
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    validate.decay("betas[0]", betas[0])
    validate.decay("betas[1]", betas[1])
    return betas[0], betas[1]


def maximize_sign(maximize: bool) -> base.GradientTransformation:
    """``g <- -g`` when ``maximize`` (before weight decay, as torch does), else identity."""
    return scale(-1.0) if maximize else base.identity()


def coupled_weight_decay(weight_decay: Any) -> base.GradientTransformation:
    """``g <- g + wd * p`` (torch's ``weight_decay`` everywhere but AdamW); checks ``wd >= 0``."""
    validate.non_negative("weight_decay", weight_decay)
    return base.identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay)


def schedule_of(lr: Any) -> Callable[[jax.Array], Any]:
    """``lr`` as a function of the step count ``c`` (a constant becomes ``c -> lr``)."""
    return lr if callable(lr) else (lambda count: lr)


def weight_decay_around(
    weight_decay: Any, decoupled: bool
) -> tuple[base.GradientTransformation, base.GradientTransformation]:
    """The ``(before, after)`` pair that goes around an algorithm's direction.

    Coupled (``decoupled=False``): ``g <- g + wd * p`` before it. Decoupled (AdamW, and
    NAdam/RAdam's ``decoupled_weight_decay``): torch's ``p <- p (1 - lr wd)`` before the
    step is ``d <- d + wd * p`` after the direction and before the lr.
    """
    if not decoupled:
        return coupled_weight_decay(weight_decay), base.identity()
    validate.non_negative("weight_decay", weight_decay)
    after = base.identity() if is_zero(weight_decay) else add_decayed_weights(weight_decay)
    return base.identity(), after


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
