"""Sophia: a clipped diagonal-Newton method for language-model pre-training."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base
from gradxform._src.optimizers.descent import descent
from gradxform._src.transforms.sophia import scale_by_sophia


def sophia(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.965,
    b2: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 1e-4,
    weight_decay_mask: base.MaskOrFn = None,
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
    to ``update``); ``x <- x - lr (clip(m_hat / max(gamma h, eps), -c, c) + wd x)`` with
    ``m_hat = m / (1 - b1^t)`` and ``c = clip_threshold``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the gradient average ``m``, in ``[0, 1)``. Default 0.965.
        b2: decay of the Hessian-diagonal average ``h``, in ``[0, 1)``. Default 0.99.
        eps: floor of the denominator, ``>= 0``. Default 1e-8.
        weight_decay: ``wd``, the decoupled weight decay: a finite number or a schedule
            of the step count. Default 1e-4.
        weight_decay_mask: which leaves are decayed: a tree of bools like the params,
            or a function of the params returning one; ``None`` (default) decays all.
        gamma: scale of the Hessian diagonal, ``> 0``. Default 0.01.
        clip_threshold: ``c > 0``, or ``None`` for no clip. Default 1.0.
        update_interval: steps between Hessian refreshes (``h`` is refreshed on steps
            ``1, 1 + k, 1 + 2k, ...``), a positive int. Default 10.
        hessian_diagonal_fn: estimator of the Hessian diagonal, a
            ``GradientTransformation``-like ``(init, update)`` pair; ``None`` (default)
            uses ``hutchinson_estimator_diag_hessian()``, which needs ``obj_fn=`` among
            ``update``'s extra arguments.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.
        verbose: print the fraction of unclipped coordinates. Default False.
        print_win_rate_every_n_steps: how often ``verbose`` prints, in steps; 0 (default)
            never prints, as in optax.

    Returns:
        A ``GradientTransformation`` with state ``(SophiaState(count, mu, nu,
        hessian_fn_state), EmptyState(), EmptyState())`` (``WeightDecaySchedule(count)``
        second for a scheduled decay, ``ScaleByScheduleState(count)`` last for a
        scheduled ``lr``). ``update`` needs ``params``.
    """
    return descent(
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
