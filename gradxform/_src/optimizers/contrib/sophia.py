"""Sophia: a clipped diagonal-Newton method for language-model pre-training."""

from __future__ import annotations

from typing import Any, Callable

import jax

from gradxform._src import base
from gradxform._src.optimizers.adam import _descent
from gradxform._src.transforms.sophia import scale_by_sophia


def sophia(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.965,
    b2: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 1e-4,
    weight_decay_mask: Any | Callable[[base.Params], Any] | None = None,
    gamma: jax.typing.ArrayLike = 0.01,
    clip_threshold: jax.typing.ArrayLike | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: Any = None,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> base.GradientTransformation:
    """Sophia (Liu et al. 2024, "Sophia: A Scalable Stochastic Second-order Optimizer for
    Language Model Pre-training").

    ``m <- b1 m + (1-b1) g``; every ``update_interval`` steps
    ``h <- b2 h + (1-b2) hat_h`` (Hutchinson's estimate by default: pass ``obj_fn=loss``
    to ``update``); ``x <- x - lr (clip(m_hat / max(gamma h, eps), -1, 1) + wd x)``.
    Defaults ``b1=0.965, b2=0.99, eps=1e-8, weight_decay=1e-4, gamma=0.01,
    clip_threshold=1, update_interval=10``.
    """
    return _descent(
        scale_by_sophia(
            b1,
            b2,
            eps,
            gamma,
            clip_threshold,
            update_interval,
            hessian_diagonal_fn,
            mu_dtype,
            verbose,
            print_win_rate_every_n_steps,
        ),
        learning_rate,
        weight_decay,
        weight_decay_mask,
    )
