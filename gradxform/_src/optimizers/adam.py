"""Adam and its decoupled-weight-decay form."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base
from gradxform._src.optimizers.descent import descent
from gradxform._src.transforms.adam import scale_by_adam


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
    ``v_hat = v / (1-b2^t)``. ``nesterov=True`` is NAdam (Dozat 2016).

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to ``v_hat`` inside the square root, ``>= 0``. Default 0.0
            (a small positive value keeps the gradient through the root finite, e.g.
            when differentiating through the optimizer).
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params', e.g.
            float32 moments for bfloat16 params.
        nesterov: use Nesterov's look-ahead first moment (NAdam). Default False.
        nu_dtype: storage dtype of ``v``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` whose state is optax's,
        ``(ScaleByAdamState(count, mu, nu), EmptyState())``, with
        ``ScaleByScheduleState(count)`` in place of ``EmptyState()`` for a scheduled ``lr``.

    Examples:
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> opt = gx.adam(0.1)
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = gx.apply_updates(params, updates)
        >>> print(np.asarray(params["w"]).round(4))
        [ 0.8004 -1.8002]
    """
    return descent(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
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
    mask: base.MaskOrFn = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> base.GradientTransformation:
    """AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization").

    Adam's direction plus decoupled decay:
    ``x <- x - lr * (m_hat / (sqrt(v_hat + eps_root) + eps) + wd * x)``, with ``m_hat``
    and ``v_hat`` as in ``adam``.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        b1: decay of the first moment ``m``, in ``[0, 1)``. Default 0.9.
        b2: decay of the second moment ``v``, in ``[0, 1)``. Default 0.999.
        eps: added to the denominator outside the square root, ``>= 0``. Default 1e-8.
        eps_root: added to ``v_hat`` inside the square root, ``>= 0``. Default 0.0.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.
        weight_decay: ``wd``, the decoupled weight decay: a finite number or a schedule
            of the step count. Default 1e-4 (optax's; torch's is 1e-2).
        mask: which leaves are decayed: a tree of bools like the params, or a function
            of the params returning one; ``None`` (default) decays every leaf.
        nesterov: use Nesterov's look-ahead first moment (NAdamW). Default False.
        nu_dtype: storage dtype of ``v``; ``None`` (default) keeps the params'.

    Returns:
        A ``GradientTransformation`` whose state is optax's,
        ``(ScaleByAdamState(count, mu, nu), EmptyState(), EmptyState())``; a scheduled
        ``weight_decay`` keeps ``WeightDecaySchedule(count)`` in the middle and a
        scheduled ``lr`` ``ScaleByScheduleState(count)`` last. ``update`` needs ``params``.

    Examples:
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> opt = gx.adamw(0.1, weight_decay=0.1)
        >>> state = opt.init(params)
        >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        >>> updates, state = opt.update(grads, state, params)
        >>> print(np.asarray(gx.apply_updates(params, updates)["w"]).round(4))
        [ 0.89 -1.88]
    """
    return descent(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        learning_rate,
        weight_decay,
        mask,
    )
