"""Adam's scaling, its denominator alone, and the debiased Nesterov average of NAdam.

Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization"; Dozat (2016),
"Incorporating Nesterov Momentum into Adam".
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain
from gradxform._src.dtypes import canonicalize_dtype
from gradxform._src.transforms.adam_moments import (
    adam_moments,
    adam_quotient,
    debiased_first_moment,
    nesterov_debias,
    quotient_like,
)
from gradxform._src.transforms.momentum import EmaState, ema


class NesterovEmaState(EmaState):
    """The state of ``nesterov_ema``: ``EmaState``'s fields under its own name, so the
    tree structure still says which transformation keeps it.

    Attributes:
        count: int32 scalar, the number of updates made so far.
        ema: the average ``m``, a tree like the params (in ``accumulator_dtype`` when
            given, else the params' dtypes).
    """

    __slots__ = ()


def nesterov_ema(decay: jax.typing.ArrayLike, accumulator_dtype: Any = None):
    """Debiased Nesterov look-ahead of an EMA (Dozat 2016, "Incorporating Nesterov
    Momentum into Adam"): ``m <- b m + (1-b) g``;
    ``u <- b m / (1 - b^{t+1}) + (1 - b) g / (1 - b^t)``, ``t`` the 1-based step.

    Args:
      decay: The averaging factor ``b``, in ``[0, 1)``.
      accumulator_dtype: Storage dtype of ``m`` (default None: the params').

    Returns:
      The ``GradientTransformation``; its state is ``NesterovEmaState(count, ema)``.
    """
    validate.decay("decay", decay)
    accumulator_dtype = canonicalize_dtype(accumulator_dtype)

    def init(params):
        base.check_float_leaves(params, "nesterov_ema")
        base.check_accumulator_dtype(params, accumulator_dtype, "nesterov_ema")
        m = tree_ops.zeros_like(params, accumulator_dtype)
        return NesterovEmaState(count=jnp.zeros([], jnp.int32), ema=m)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.ema, "moving average")
        m = tree_ops.update_moment(updates, state.ema, decay, 1)
        count = numerics.safe_increment(state.count)
        out = nesterov_debias(m, updates, decay, count)
        # Without an accumulator dtype ``m`` keeps the state's dtype, as in ``ema``, so
        # the state's structure is stable when the updates arrive in a wider dtype.
        if accumulator_dtype is None:
            m = tree_ops.cast_like(m, state.ema)
        else:
            m = tree_ops.cast(m, accumulator_dtype)
        return out, NesterovEmaState(count=count, ema=m)

    return base.GradientTransformation(init, update)


def second_moment_root(
    b2: jax.typing.ArrayLike,
    eps: jax.typing.ArrayLike,
    eps_root: jax.typing.ArrayLike,
    *,
    accumulator_dtype: Any = None,
) -> base.GradientTransformation:
    """The denominator of Adam: ``v <- b2 v + (1 - b2) |g|^2``;
    ``u <- sqrt(v / (1 - b2^t) + eps_root) + eps``, computed in at least float32.

    Args:
      b2: The decay of the average of ``|g|^2``, in ``[0, 1)``.
      eps: Added outside the root, ``>= 0``.
      eps_root: Added inside the root, ``>= 0``.
      accumulator_dtype: Storage dtype of ``v`` (default None: the params').

    Returns:
      ``chain(elementwise(upcast), ema(b2, order=2), elementwise(root))``; its own
      ``EmaState`` counts the step.
    """
    return chain(
        base.elementwise(numerics.upcast),
        ema(b2, debias=True, accumulator_dtype=accumulator_dtype, order=2),
        base.elementwise(lambda v: jnp.sqrt(v + eps_root) + eps),
    )


class ScaleByAdamState(NamedTuple):
    """The state of ``scale_by_adam`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the first moment ``m``, a tree like the params (in ``mu_dtype`` when given,
            else the params' dtypes).
        nu: the second moment ``v``, a tree like the params (in ``nu_dtype`` when given,
            else the params' dtypes).
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    nu: Any


def initial_adam_state(
    who: str, params: Any, mu_dtype: Any = None, nu_dtype: Any = None, fill: Any = 0.0
) -> ScaleByAdamState:
    """The first ``ScaleByAdamState``, shared by ``scale_by_adam`` and the variants whose
    state has its layout: ``count = 0`` and both moments at ``fill``.

    Args:
      who: the transformation's name, for the refusal of a non-float parameter.
      params: the parameters, a tree of float arrays.
      mu_dtype: storage dtype of ``mu`` (default None: the params'); refused when it
        would drop the imaginary part of complex params.
      nu_dtype: storage dtype of ``nu`` (default None: the params').
      fill: the starting value of every entry of both moments (default 0).

    Returns:
      ``ScaleByAdamState(count, mu, nu)``.
    """
    base.check_float_leaves(params, who)
    base.check_accumulator_dtype(params, mu_dtype, who)
    return ScaleByAdamState(
        count=jnp.zeros([], jnp.int32),
        mu=tree_ops.full_like(params, fill, dtype=mu_dtype),
        nu=tree_ops.full_like(params, fill, dtype=nu_dtype),
    )


def scale_by_adam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> base.GradientTransformation:
    """Adam's scaling (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization").

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) |g|^2``;
    ``u <- m_hat / (sqrt(v_hat + eps_root) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``, ``t`` the 1-based step. With ``nesterov`` (NAdam,
    Dozat 2016) ``m_hat = b1 m / (1 - b1^{t+1}) + (1 - b1) g / (1 - b1^t)``.
    The state is optax's ``ScaleByAdamState(count, mu, nu)``; the statistics are
    computed in at least float32 and ``u`` comes back in the updates' dtype.

    The same numbers as the composition ``divide(ema(b1), second_moment_root(b2, eps,
    eps_root))``, written as one function over the tree helpers so that the state is
    one named tuple with one counter and the compiled program is optax's plus the
    saturation of the moments (``tree.update_moment``).

    Args:
      b1: Decay of the first moment, in ``[0, 1)`` (default 0.9).
      b2: Decay of the second moment, in ``[0, 1)`` (default 0.999).
      eps: Added to ``sqrt(v_hat)``, ``>= 0`` (default 1e-8).
      eps_root: Added to ``v_hat`` inside the root, ``>= 0`` (default 0).
      mu_dtype: Storage dtype of ``m`` (default None: the params').
      nesterov: Use Dozat's look-ahead first moment (default False).
      nu_dtype: Storage dtype of ``v`` (default None: the params'); e.g. float32
        moments for bfloat16 params (optax has only ``mu_dtype``).

    Returns:
      The ``GradientTransformation``; its state is ``ScaleByAdamState(count, mu, nu)``.

    Examples:
      On the first step ``m_hat = g`` and ``v_hat = g^2``, so each entry of the step is
      ``g / (|g| + eps)``, its sign:

      >>> tx = gx.scale_by_adam()
      >>> grads = {"w": jnp.array([1.0, -2.0])}
      >>> updates, state = tx.update(grads, tx.init(grads))
      >>> print(np.asarray(updates["w"]).round(4))
      [ 1. -1.]
      >>> print(np.asarray(state.nu["w"]).round(4))
      [0.001 0.004]
    """
    validate.adam(b1, b2, eps, eps_root)
    mu_dtype, nu_dtype = canonicalize_dtype(mu_dtype), canonicalize_dtype(nu_dtype)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "first moment")
        wide, mu, nu = adam_moments(updates, state.mu, state.nu, b1, b2)
        count = numerics.safe_increment(state.count)
        mu_hat = debiased_first_moment(mu, wide, b1, count, nesterov)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        out = quotient_like(updates, state.mu, adam_quotient(eps, eps_root), mu_hat, nu_hat)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(
        lambda params: initial_adam_state("scale_by_adam", params, mu_dtype, nu_dtype), update
    )
