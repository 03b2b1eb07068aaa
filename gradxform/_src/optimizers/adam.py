"""Adam and its decoupled-weight-decay form."""

from __future__ import annotations

from typing import Any, Callable

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.adaptive import scale_by_adam
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def _descent(
    scaling: base.GradientTransformation,
    learning_rate: base.ScalarOrSchedule,
    weight_decay: base.ScalarOrSchedule | None = None,
    mask: Any | Callable[[base.Params], Any] | None = None,
) -> base.GradientTransformation:
    """``chain(scaling, [add_decayed_weights(wd, mask)], scale_by_learning_rate(lr))``:
    ``x <- x - lr (scaling(g) + wd x)``, without the decay term when ``weight_decay`` is
    None. Each stateful member counts its own steps, so the state nests as optax's,
    e.g. ``(ScaleByAdamState(count, mu, nu), EmptyState(), ScaleByScheduleState(count))``.
    """
    decay = [] if weight_decay is None else [add_decayed_weights(weight_decay, mask)]
    return chain(scaling, *decay, scale_by_learning_rate(learning_rate))


def adam(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> base.GradientTransformation:
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization").

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``;
    ``x <- x - lr * m_hat / (sqrt(v_hat + eps_root) + eps)``, ``m_hat = m / (1-b1^t)``,
    ``v_hat = v / (1-b2^t)``. Defaults ``b1=0.9, b2=0.999, eps=1e-8, eps_root=0``.
    ``nesterov=True`` is NAdam (Dozat 2016). ``mu_dtype``/``nu_dtype``: storage dtypes
    of ``m``/``v`` (default the params'), e.g. float32 moments for bfloat16 params.
    The state is optax's, ``(ScaleByAdamState(count, mu, nu), EmptyState())``, with
    ``ScaleByScheduleState(count)`` in place of ``EmptyState()`` for a scheduled ``lr``.
    """
    return _descent(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                      nu_dtype=nu_dtype),
        learning_rate,
    )


def adamw(
    learning_rate: base.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    weight_decay: base.ScalarOrSchedule = 1e-4,
    mask: Any | Callable[[base.Params], Any] | None = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> base.GradientTransformation:
    """AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization").

    Adam's direction plus decoupled decay:
    ``x <- x - lr * (m_hat / (sqrt(v_hat + eps_root) + eps) + wd * x)``.
    Defaults as ``adam`` and ``weight_decay=1e-4`` (optax's; torch's is 1e-2);
    ``mu_dtype``/``nu_dtype`` as in ``adam``.
    """
    return _descent(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                      nu_dtype=nu_dtype),
        learning_rate,
        weight_decay,
        mask,
    )
