"""Prodigy: parameter-free Adam."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradxform._src import base
from gradxform._src.transforms.prodigy import scale_by_prodigy


def prodigy(
    learning_rate: base.ScalarOrSchedule = 1.0,
    betas: tuple[jax.typing.ArrayLike, jax.typing.ArrayLike] = (0.9, 0.999),
    beta3: jax.typing.ArrayLike | None = None,
    eps: jax.typing.ArrayLike = 1e-8,
    estim_lr0: jax.typing.ArrayLike = 1e-6,
    estim_lr_coef: jax.typing.ArrayLike = 1.0,
    weight_decay: jax.typing.ArrayLike = 0.0,
    safeguard_warmup: bool = False,
) -> base.GradientTransformation:
    """Prodigy (Mishchenko & Defazio 2024, "Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner"): Adam whose step size ``d`` is estimated on the fly.

    ``dlr = d lr_t sqrt(1 - b2^t) / (1 - b1^t)``; ``m, v`` Adam's moments of ``d g``;
    ``x <- x - dlr (m / (sqrt(v) + d eps) + weight_decay x)``; ``d`` grows to
    ``max(d, r / ||s||_1)`` from ``r = sum b3^k dlr <g, x_0 - x>`` and
    ``s = sum b3^k dlr g`` (see ``scale_by_prodigy``). ``learning_rate`` is a multiplier
    on ``d`` (keep 1, or a schedule).

    Args:
        learning_rate: a multiplier on ``d``, a number ``>= 0`` or a schedule of the
            0-based step. Default 1.0.
        betas: ``(b1, b2)``, the decays of ``m`` and ``v``, each in ``[0, 1)``.
            Default ``(0.9, 0.999)``.
        beta3: decay of ``r`` and ``s``, in ``[0, 1)``; ``None`` (default) uses
            ``sqrt(b2)``.
        eps: added to ``sqrt(v)`` (times ``d``), ``>= 0``. Default 1e-8.
        estim_lr0: ``d_0``, the initial distance estimate, ``> 0``. Default 1e-6.
        estim_lr_coef: multiplier on the estimate ``r / ||s||_1``, ``>= 0``. Default 1.0.
        weight_decay: decoupled weight decay; any finite number. Default 0.0.
        safeguard_warmup: accumulate ``s`` with ``d`` in place of ``dlr`` (``d / d_0 d g``:
            no learning rate, no bias correction), which keeps ``d`` from growing too
            fast during a warm-up. Default False.

    Returns:
        A ``GradientTransformation``; its state is ``ProdigyState`` (the moments,
        ``s``, ``x_0``, ``d``, ``r`` and the count), optax's layout.
        ``update`` needs ``params``.

    Examples:
        >>> params = {"w": jnp.array([1.0, -2.0, 3.0])}
        >>> opt = gx.contrib.prodigy(estim_lr0=0.01)
        >>> state = opt.init(params)
        >>> for _ in range(10):
        ...     grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = gx.apply_updates(params, updates)
        >>> print(np.asarray(params["w"]).round(3), np.asarray(state.estim_lr).round(3))
        [ 0.677 -1.679  2.68 ] 0.17
    """
    step = scale_by_prodigy(
        learning_rate, betas, beta3, eps, estim_lr0, estim_lr_coef, weight_decay, safeguard_warmup
    )

    # The descent step negates scale_by_prodigy's output in place of chaining scale(-1), so
    # that the state is the one ProdigyState, as optax's (a checkpoint crosses over as is).
    def update(updates, state, params=None, **extra):
        updates, state = step.update(updates, state, params, **extra)
        return jax.tree.map(jnp.negative, updates), state

    return base.GradientTransformation(step.init, update)
