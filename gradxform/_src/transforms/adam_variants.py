"""Variants of Adam's scaling that change the second moment or rescale the step.

All share Adam's first moment ``m <- b1 m + (1 - b1) g`` and its bias correction
``m_hat = m / (1 - b1^t)``; they differ in what divides it: a running maximum (AMSGrad),
an infinity norm (AdaMax), the variance around the mean (AdaBelief), an additive
sign-controlled update (Yogi), or a variance-rectified factor (RAdam).

Each owns one named state with its step counter, as optax's does
(``ScaleByAdamState(count, mu, nu)`` for AdaMax, Yogi and RAdam), and is written from
the tree helpers (``update_moment``, ``bias_correction``, ...) that Adam uses.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype
from gradxform._src.transforms.adam import ScaleByAdamState, initial_adam_state
from gradxform._src.transforms.adam_moments import (
    adam_moments,
    adam_quotient,
    debiased_first_moment,
    quotient_like,
)


def _saturating_max(v: Any, v_max: Any) -> Any:
    """``max(v_max, v)``, at most the largest finite value of ``v_max``'s dtype: the
    debiased moment of a huge finite gradient overflows, and an infinite maximum would
    zero every later step. NaN still propagates. ``v_max`` may be complex-typed (the
    params' dtype) and holds a real value."""

    def leaf(x, m):
        m = jnp.real(m)
        return numerics.saturate(jnp.maximum(m, x), jnp.finfo(m.dtype).max)

    return jax.tree.map(leaf, v, v_max)


class ScaleByAmsgradState(NamedTuple):
    """The state of ``scale_by_amsgrad`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the first moment ``m``, a tree like the params (in ``mu_dtype`` when given).
        nu: the second moment ``v``, a tree like the params, in their dtypes.
        nu_max: the running maximum ``v_max``, a tree like the params, in their dtypes.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_raw_nu: bool = False,
) -> base.GradientTransformation:
    """AMSGrad's scaling (Reddi et al. 2018, "On the Convergence of Adam and Beyond").

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``m_hat = m / (1 - b1^t)`` (if ``bias_correction_mu``).

    Default (optax's semantics): the running maximum is over the *bias-corrected*
    second moment, ``v_max <- max(v_max, v / (1 - b2^t))`` (``v`` itself when
    ``bias_correction_nu`` is false), and ``u <- m_hat / (sqrt(v_max + eps_root) + eps)``.

    ``max_raw_nu=True`` (``torch.optim.Adam(amsgrad=True)``'s semantics): the maximum is
    over the raw moment, ``v_max <- max(v_max, v)``, and bias-corrected afterwards,
    ``u <- m_hat / (sqrt(v_max / (1 - b2^t) + eps_root) + eps)``. The two differ because
    ``v / (1 - b2^t)`` can shrink while ``v`` grows.

    Args:
      b1: Decay of the first moment, in ``[0, 1)`` (default 0.9).
      b2: Decay of the second moment, in ``[0, 1)`` (default 0.999).
      eps: Added to ``sqrt(v_max)``, ``>= 0`` (default 1e-8).
      eps_root: Added inside the root, ``>= 0`` (default 0).
      mu_dtype: Storage dtype of ``m`` (default None: the params').
      bias_correction_mu: Divide ``m`` by ``1 - b1^t`` (default True).
      bias_correction_nu: Divide the second moment by ``1 - b2^t`` (default True).
      max_raw_nu: Take the maximum before the correction, as torch (default False).

    Returns:
      The ``GradientTransformation``; its state is optax's
      ``ScaleByAmsgradState(count, mu, nu, nu_max)``.
    """
    validate.adam(b1, b2, eps, eps_root)
    mu_dtype = canonicalize_dtype(mu_dtype)

    def init(params):
        state = initial_adam_state("scale_by_amsgrad", params, mu_dtype)
        return ScaleByAmsgradState(state.count, state.mu, state.nu, tree_ops.zeros_like(params))

    def correct(tree, decay, count, on):
        return tree_ops.bias_correction(tree, decay, count) if on else tree

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "first moment")
        _wide, mu, nu = adam_moments(updates, state.mu, state.nu, b1, b2)
        count = numerics.safe_increment(state.count)
        mu_hat = correct(mu, b1, count, bias_correction_mu)
        if max_raw_nu:
            nu_max = _saturating_max(nu, state.nu_max)
            denominator = correct(nu_max, b2, count, bias_correction_nu)
        else:
            nu_max = _saturating_max(correct(nu, b2, count, bias_correction_nu), state.nu_max)
            denominator = nu_max
        out = quotient_like(updates, state.mu, adam_quotient(eps, eps_root), mu_hat, denominator)
        stored = tree_ops.cast_like((mu, nu, nu_max), (state.mu, state.nu, state.nu_max))
        return out, ScaleByAmsgradState(count, *stored)

    return base.GradientTransformation(init, update)


def scale_by_adamax(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> base.GradientTransformation:
    """AdaMax's scaling, Adam under the infinity norm (Kingma & Ba 2015, section 7.1).

    ``m <- b1 m + (1 - b1) g``; ``v <- max(b2 v, |g| + eps)``;
    ``u <- (m / (1 - b1^t)) / v``.

    Args:
      b1: Decay of the first moment, in ``[0, 1)`` (default 0.9).
      b2: Decay of the infinity norm, in ``[0, 1)`` (default 0.999).
      eps: Added to ``|g|``, ``>= 0`` (default 1e-8).

    Returns:
      The ``GradientTransformation``; its state is optax's
      ``ScaleByAdamState(count, mu, nu)``.
    """
    validate.adam(b1, b2, eps)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "first moment")
        wide = jax.tree.map(numerics.upcast, updates)
        mu = tree_ops.update_moment(wide, state.mu, b1, 1)
        nu = tree_ops.update_infinity_moment(wide, state.nu, b2, eps)
        count = numerics.safe_increment(state.count)
        mu_hat = tree_ops.bias_correction(mu, b1, count)
        out = quotient_like(updates, state.mu, lambda m, v: m / v, mu_hat, nu)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(
        lambda params: initial_adam_state("scale_by_adamax", params), update
    )


class ScaleByBeliefState(NamedTuple):
    """The state of ``scale_by_belief`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the first moment ``m``, a tree like the params, in their dtypes.
        nu: the second central moment ``s``, a tree like the params, in their dtypes.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    nu: Any


def scale_by_belief(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
) -> base.GradientTransformation:
    """AdaBelief's scaling (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes
    by the Belief in Observed Gradients").

    ``m <- b1 m + (1 - b1) g``; ``s <- b2 s + (1 - b2) (g - m)^2 + eps_root``;
    ``u <- m_hat / (sqrt(s / (1 - b2^t)) + eps)``, ``m_hat = m / (1 - b1^t)``, or with
    ``nesterov`` ``m_hat = b1 m / (1 - b1^{t+1}) + (1 - b1) g / (1 - b1^t)``.

    Args:
      b1: Decay of the first moment, in ``[0, 1)`` (default 0.9).
      b2: Decay of the second central moment, in ``[0, 1)`` (default 0.999).
      eps: Added to ``sqrt(s_hat)``, ``>= 0`` (default 1e-16).
      eps_root: Added to ``s`` each step, ``>= 0`` (default 1e-16).
      nesterov: Use Dozat's look-ahead first moment (default False).

    Returns:
      The ``GradientTransformation``; its state is optax's
      ``ScaleByBeliefState(count, mu, nu)``.
    """
    validate.adam(b1, b2, eps, eps_root)

    def init(params):
        state = initial_adam_state("scale_by_belief", params)
        return ScaleByBeliefState(state.count, state.mu, state.nu)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second central moment")
        wide = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        mu = tree_ops.update_moment(wide, state.mu, b1, 1)
        surprise = tree_ops.sub(wide, mu)
        nu = tree_ops.update_moment_per_elem_norm(surprise, state.nu, b2, 2)
        nu = jax.tree.map(lambda v: v + eps_root, nu)
        count = numerics.safe_increment(state.count)
        mu_hat = debiased_first_moment(mu, wide, b1, count, nesterov)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        out = quotient_like(updates, state.mu, lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)


def scale_by_yogi(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-3,
    eps_root: jax.typing.ArrayLike = 0.0,
    initial_accumulator_value: jax.typing.ArrayLike = 1e-6,
) -> base.GradientTransformation:
    """Yogi's scaling (Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization").

    ``m <- b1 m + (1 - b1) g``; ``v <- v - (1 - b2) sign(v - g^2) g^2`` (an additive
    update, so ``v`` cannot grow as fast as Adam's); both start at
    ``initial_accumulator_value``; ``u <- m_hat / (sqrt(v_hat + eps_root) + eps)`` with
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.

    Args:
      b1: Decay of the first moment, in ``[0, 1)`` (default 0.9).
      b2: Rate of the second moment's update, in ``[0, 1)`` (default 0.999).
      eps: Added to ``sqrt(v_hat)``, ``>= 0`` (default 1e-3).
      eps_root: Added inside the root, ``>= 0`` (default 0).
      initial_accumulator_value: Start of both moments, ``>= 0`` (default 1e-6).

    Returns:
      The ``GradientTransformation``; its state is optax's
      ``ScaleByAdamState(count, mu, nu)``.
    """
    validate.adam(b1, b2, eps, eps_root)
    validate.non_negative("initial_accumulator_value", initial_accumulator_value)

    def yogi_step(g, v):
        g2 = numerics.abs_sq(g)
        v = jnp.real(v)  # real-valued, even in a complex-typed state: sign() needs a real
        return v - (1 - b2) * jnp.sign(v - g2) * g2

    def init(params):
        return initial_adam_state("scale_by_yogi", params, fill=initial_accumulator_value)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "first moment")
        wide = jax.tree.map(numerics.upcast, updates)
        mu = tree_ops.update_moment(wide, state.mu, b1, 1)
        nu = tree_ops.map_moment(yogi_step, wide, state.nu, b2, real=True)
        count = numerics.safe_increment(state.count)
        mu_hat = tree_ops.bias_correction(mu, b1, count)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        out = quotient_like(updates, state.mu, adam_quotient(eps, eps_root), mu_hat, nu_hat)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)


def scale_by_radam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    threshold: jax.typing.ArrayLike = 5.0,
    *,
    nesterov: bool = False,
) -> base.GradientTransformation:
    """Rectified Adam's scaling (Liu et al. 2020, "On the Variance of the Adaptive
    Learning Rate and Beyond").

    Adam's moments; ``rho_inf = 2 / (1 - b2) - 1``,
    ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)``. While ``rho_t < threshold`` the
    variance of ``v_hat`` is not yet trusted and ``u <- m_hat`` (momentum SGD); after,
    ``u <- r_t m_hat / (sqrt(v_hat + eps_root) + eps)`` with
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.
    (optax's form: the test is ``rho_t >= threshold`` and ``eps`` is added to
    ``sqrt(v_hat)``; torch's RAdam uses ``> 5`` and ``sqrt(v)``.)

    Args:
      b1: Decay of the first moment, in ``[0, 1)`` (default 0.9).
      b2: Decay of the second moment, in ``[0, 1)`` (default 0.999).
      eps: Added to ``sqrt(v_hat)``, ``>= 0`` (default 1e-8).
      eps_root: Added inside the root, ``>= 0`` (default 0).
      threshold: The ``rho_t`` from which the step is rectified, finite (default 5).
      nesterov: Use Dozat's look-ahead first moment (default False).

    Returns:
      The ``GradientTransformation``; its state is optax's
      ``ScaleByAdamState(count, mu, nu)``.
    """
    validate.adam(b1, b2, eps, eps_root)
    validate.finite("threshold", threshold)
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "first moment")
        wide, mu, nu = adam_moments(updates, state.mu, state.nu, b1, b2)
        count = numerics.safe_increment(state.count)
        b2t = b2**count
        rho = rho_inf - 2 * count * b2t / (1 - b2t)
        # Below the threshold r_t is the root of a negative number: computed, then dropped.
        r = jnp.sqrt(
            (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        mu_hat = debiased_first_moment(mu, wide, b1, count, nesterov)
        nu_hat = tree_ops.bias_correction(nu, b2, count)

        def rectified(m, v):
            step = r.astype(m.dtype) * m / (jnp.sqrt(v + eps_root) + eps)
            return jnp.where(rho >= threshold, step, m)

        out = quotient_like(updates, state.mu, rectified, mu_hat, nu_hat)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(
        lambda params: initial_adam_state("scale_by_radam", params), update
    )
