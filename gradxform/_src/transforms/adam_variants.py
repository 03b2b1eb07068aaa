"""Variants of Adam's scaling that change the second moment or rescale the step.

All share Adam's first moment ``m <- b1 m + (1 - b1) g`` and its bias correction
``m_hat = m / (1 - b1^t)``; they differ in what divides it: a running maximum (AMSGrad),
an infinity norm (AdaMax), the variance around the mean (AdaBelief), an additive
sign-controlled update (Yogi), or a variance-rectified factor (RAdam).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.transforms.accumulation import _dtype


def _nesterov_mu_hat(mu: Any, updates: Any, b1: Any, count: jax.Array) -> Any:
    """Dozat's look-ahead first moment ``b1 m / (1 - b1^{t+1}) + (1 - b1) g / (1 - b1^t)``."""
    return jax.tree.map(
        lambda m, g: b1 * m + (1 - b1) * g,
        tree_ops.bias_correction(mu, b1, numerics.safe_increment(count)),
        tree_ops.bias_correction(updates, b1, count),
    )


def _saturate(tree: Any, like: Any, updates: Any) -> Any:
    """Clips each leaf at the largest finite value of ``like``'s dtype where the gradient is
    finite: a bias-corrected moment of a huge gradient overflows, and an infinite state
    would never recover. Non-finite gradients still propagate."""

    def clip(x, ref, g):
        top = jnp.finfo(jnp.asarray(ref).dtype).max
        return jnp.where(jnp.isfinite(g), jnp.minimum(x, top), x)

    return jax.tree.map(clip, tree, like, updates)


def _divide(mu_hat: Any, nu_hat: Any, eps: Any, eps_root: Any) -> Any:
    return jax.tree.map(
        lambda m, v: None if m is None else m / (jnp.sqrt(v + eps_root) + eps),
        mu_hat,
        nu_hat,
        is_leaf=lambda x: x is None,
    )


class ScaleByAmsgradState(NamedTuple):
    count: jax.Array  # int32 scalar
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

    Defaults ``b1=0.9, b2=0.999, eps=1e-8, eps_root=0``; ``mu_dtype`` is the dtype of ``m``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)
    mu_dtype = _dtype(mu_dtype)

    def init(params):
        base.check_float_leaves(params, "scale_by_amsgrad")
        return ScaleByAmsgradState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params, dtype=mu_dtype),
            nu=tree_ops.zeros_like(params),
            nu_max=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second moment")
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        mu = tree_ops.update_moment(updates, state.mu, b1, 1)
        nu = tree_ops.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = numerics.safe_increment(state.count)
        mu_hat = tree_ops.bias_correction(mu, b1, count) if bias_correction_mu else mu

        def correct(v):
            return tree_ops.bias_correction(v, b2, count) if bias_correction_nu else v

        if max_raw_nu:
            nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)
            denominator = correct(nu_max)
        else:
            nu_max = _saturate(
                jax.tree.map(jnp.maximum, state.nu_max, correct(nu)), state.nu_max, updates
            )
            denominator = nu_max
        out = _divide(mu_hat, denominator, eps, eps_root)
        mu, nu, nu_max = tree_ops.cast_like((mu, nu, nu_max), (state.mu, state.nu, state.nu_max))
        return out, ScaleByAmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return base.GradientTransformation(init, update)


class ScaleByAdamaxState(NamedTuple):
    count: jax.Array  # int32 scalar
    mu: Any
    nu: Any


def scale_by_adamax(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> base.GradientTransformation:
    """AdaMax's scaling, Adam under the infinity norm (Kingma & Ba 2015, section 7.1).

    ``m <- b1 m + (1 - b1) g``; ``v <- max(b2 v, |g| + eps)``;
    ``u <- (m / (1 - b1^t)) / v``. Defaults ``b1=0.9, b2=0.999, eps=1e-8``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "scale_by_adamax")
        return ScaleByAdamaxState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params),
            nu=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "infinity moment")
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        count = numerics.safe_increment(state.count)
        mu = tree_ops.update_moment(updates, state.mu, b1, 1)
        nu = tree_ops.update_infinity_moment(updates, state.nu, b2, eps)
        mu_hat = tree_ops.bias_correction(mu, b1, count)
        out = jax.tree.map(lambda m, v: m / v, mu_hat, nu)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByAdamaxState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)


class ScaleByBeliefState(NamedTuple):
    count: jax.Array  # int32 scalar
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
    Defaults ``b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)

    def init(params):
        base.check_float_leaves(params, "scale_by_belief")
        return ScaleByBeliefState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params),
            nu=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second central moment")
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        mu = tree_ops.update_moment(updates, state.mu, b1, 1)
        surprise = tree_ops.sub(updates, mu)
        nu = tree_ops.update_moment_per_elem_norm(surprise, state.nu, b2, 2)
        nu = jax.tree.map(lambda v: v + eps_root, nu)
        count = numerics.safe_increment(state.count)
        if nesterov:
            mu_hat = _nesterov_mu_hat(mu, updates, b1, count)
        else:
            mu_hat = tree_ops.bias_correction(mu, b1, count)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        out = _divide(mu_hat, nu_hat, eps, 0.0)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)


class ScaleByYogiState(NamedTuple):
    count: jax.Array  # int32 scalar
    mu: Any
    nu: Any


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
    Defaults ``b1=0.9, b2=0.999, eps=1e-3, eps_root=0, initial_accumulator_value=1e-6``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)
    validate.non_negative("initial_accumulator_value", initial_accumulator_value)

    def init(params):
        base.check_float_leaves(params, "scale_by_yogi")
        return ScaleByYogiState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.full_like(params, initial_accumulator_value),
            nu=tree_ops.full_like(params, initial_accumulator_value),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second moment")
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        mu = tree_ops.update_moment(updates, state.mu, b1, 1)

        def yogi_nu(g, v):
            g2 = numerics.abs_sq(g)
            return v - (1 - b2) * jnp.sign(v - g2) * g2

        nu = tree_ops.map_moment(yogi_nu, updates, state.nu, b2)
        count = numerics.safe_increment(state.count)
        mu_hat = tree_ops.bias_correction(mu, b1, count)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        out = _divide(mu_hat, nu_hat, eps, eps_root)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByYogiState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)


class ScaleByRadamState(NamedTuple):
    count: jax.Array  # int32 scalar
    mu: Any
    nu: Any


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
    ``nesterov`` uses Dozat's look-ahead ``m_hat``. Defaults ``b1=0.9, b2=0.999,
    eps=1e-8, eps_root=0, threshold=5``. (optax's form: the test is ``rho_t >= threshold``
    and ``eps`` is added to ``sqrt(v_hat)``; torch's RAdam uses ``> 5`` and ``sqrt(v)``.)
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)
    validate.finite("threshold", threshold)
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def init(params):
        base.check_float_leaves(params, "scale_by_radam")
        return ScaleByRadamState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params),
            nu=tree_ops.zeros_like(params),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second moment")
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        mu = tree_ops.update_moment(updates, state.mu, b1, 1)
        nu = tree_ops.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = numerics.safe_increment(state.count)
        b2t = b2**count
        rho = rho_inf - 2 * count * b2t / (1 - b2t)
        if nesterov:
            mu_hat = _nesterov_mu_hat(mu, updates, b1, count)
        else:
            mu_hat = tree_ops.bias_correction(mu, b1, count)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        # Below the threshold r_t is the root of a negative number: computed, then dropped.
        r = jnp.sqrt(
            (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        rectified = jax.tree.map(
            lambda m, v: r.astype(m.dtype) * m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat
        )
        out = jax.tree.map(lambda a, b: jnp.where(rho >= threshold, a, b), rectified, mu_hat)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByRadamState(count=count, mu=mu, nu=nu)

    return base.GradientTransformation(init, update)
