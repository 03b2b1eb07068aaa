"""Variants of Adam's scaling that change the second moment or rescale the step.

All share Adam's first moment ``m <- b1 m + (1 - b1) g`` and its bias correction
``m_hat = m / (1 - b1^t)``; they differ in what divides it: a running maximum (AMSGrad),
an infinity norm (AdaMax), the variance around the mean (AdaBelief), an additive
sign-controlled update (Yogi), or a variance-rectified factor (RAdam).

All but AdaBelief are written as Adam is, ``with_count(divide(m_hat, denominator))``,
the denominator being each one's own piece; both bias corrections read one step
counter. AdaBelief is written out: its second moment averages ``(g - m_t)^2``, so it
needs the new first moment and cannot run as a separate branch of ``divide``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain, divide
from gradxform._src.counting import shared_step, with_count
from gradxform._src.transforms.accumulation import bias_correction, ema
from gradxform._src.transforms.adaptive import nesterov_debias, nesterov_ema


class RunningStatisticState(NamedTuple):
    value: Any  # in the params' dtype


def _running(step: Callable[[Any, Any], Any], initial: Any = 0.0) -> base.GradientTransformation:
    """``s <- step(u, s)`` from ``s_0 = initial``; ``u <- s``.

    The output keeps the precision ``step`` computed ``s`` in; the state stores it in
    the params' dtype.
    """

    def init(params):
        return RunningStatisticState(value=tree_ops.full_like(params, initial))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.value, "running statistic")
        new = step(updates, state.value)
        return new, RunningStatisticState(value=tree_ops.cast_like(new, state.value))

    return base.GradientTransformation(init, update)


def _saturating_max(v: Any, v_max: Any) -> Any:
    """``max(v_max, v)``, at most the largest finite value of ``v_max``'s dtype: the
    debiased moment of a huge finite gradient overflows, and an infinite maximum would
    zero every later step. NaN still propagates."""
    return jax.tree.map(
        lambda x, m: jnp.minimum(jnp.maximum(m, x), jnp.finfo(m.dtype).max), v, v_max
    )


def _root(eps: Any, eps_root: Any) -> base.GradientTransformation:
    """``v -> sqrt(v + eps_root) + eps``."""
    return base.elementwise(lambda v: jnp.sqrt(v + eps_root) + eps)


def _quotient(
    who: str, first: Any, second: Any, *after: Any, shared_count: bool
) -> base.GradientTransformation:
    """``u <- first(g) / second(g)``, both on ``g`` in at least float32 (see
    ``numerics.upcast``), then the stages ``after``, all reading one step ``t``: counted
    here, or with ``shared_count`` by an enclosing ``with_count``. ``who`` names the
    transformation when ``init`` refuses a parameter."""
    scaling = chain(base.elementwise(numerics.upcast), divide(first, second), *after)

    def init(params):
        base.check_float_leaves(params, who)
        return scaling.init(params)

    named = base.GradientTransformation(init, scaling.update)
    return named if shared_count else with_count(named)


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
    shared_count: bool = False,
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
    ``shared_count=True``: ``t`` comes from an enclosing ``with_count``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)
    first = ema(b1, debias=bias_correction_mu, accumulator_dtype=mu_dtype, shared_count=True)
    maximum = _running(_saturating_max)
    correct = [bias_correction(b2, shared_count=True)] if bias_correction_nu else []
    stages = [maximum, *correct] if max_raw_nu else [*correct, maximum]
    second = chain(
        ema(b2, debias=False, order=2, shared_count=True), *stages, _root(eps, eps_root)
    )
    return _quotient("scale_by_amsgrad", first, second, shared_count=shared_count)


def scale_by_adamax(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    shared_count: bool = False,
) -> base.GradientTransformation:
    """AdaMax's scaling, Adam under the infinity norm (Kingma & Ba 2015, section 7.1).

    ``m <- b1 m + (1 - b1) g``; ``v <- max(b2 v, |g| + eps)``;
    ``u <- (m / (1 - b1^t)) / v``. Defaults ``b1=0.9, b2=0.999, eps=1e-8``.
    ``shared_count=True``: ``t`` comes from an enclosing ``with_count``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    infinity_norm = _running(lambda g, v: tree_ops.update_infinity_moment(g, v, b2, eps))
    return _quotient(
        "scale_by_adamax", ema(b1, shared_count=True), infinity_norm, shared_count=shared_count
    )


class ScaleByBeliefState(NamedTuple):
    mu: Any
    nu: Any


def scale_by_belief(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
    shared_count: bool = False,
) -> base.GradientTransformation:
    """AdaBelief's scaling (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes
    by the Belief in Observed Gradients").

    ``m <- b1 m + (1 - b1) g``; ``s <- b2 s + (1 - b2) (g - m)^2 + eps_root``;
    ``u <- m_hat / (sqrt(s / (1 - b2^t)) + eps)``, ``m_hat = m / (1 - b1^t)``, or with
    ``nesterov`` ``m_hat = b1 m / (1 - b1^{t+1}) + (1 - b1) g / (1 - b1^t)``.
    Defaults ``b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16``.
    ``shared_count=True``: ``t`` comes from an enclosing ``with_count``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)

    def init(params):
        base.check_float_leaves(params, "scale_by_belief")
        return ScaleByBeliefState(mu=tree_ops.zeros_like(params), nu=tree_ops.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params
        base.check_same_structure(updates, state.nu, "second central moment")
        updates = jax.tree.map(numerics.upcast, updates)  # see numerics.upcast
        mu = tree_ops.update_moment(updates, state.mu, b1, 1)
        surprise = tree_ops.sub(updates, mu)
        nu = tree_ops.update_moment_per_elem_norm(surprise, state.nu, b2, 2)
        nu = jax.tree.map(lambda v: v + eps_root, nu)
        count = shared_step(extra, "scale_by_belief")
        if nesterov:
            mu_hat = nesterov_debias(mu, updates, b1, count)
        else:
            mu_hat = tree_ops.bias_correction(mu, b1, count)
        nu_hat = tree_ops.bias_correction(nu, b2, count)
        out = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        mu, nu = tree_ops.cast_like((mu, nu), (state.mu, state.nu))
        return out, ScaleByBeliefState(mu=mu, nu=nu)

    scaling = base.GradientTransformation(init, update)
    return scaling if shared_count else with_count(scaling)


def scale_by_yogi(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-3,
    eps_root: jax.typing.ArrayLike = 0.0,
    initial_accumulator_value: jax.typing.ArrayLike = 1e-6,
    *,
    shared_count: bool = False,
) -> base.GradientTransformation:
    """Yogi's scaling (Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization").

    ``m <- b1 m + (1 - b1) g``; ``v <- v - (1 - b2) sign(v - g^2) g^2`` (an additive
    update, so ``v`` cannot grow as fast as Adam's); both start at
    ``initial_accumulator_value``; ``u <- m_hat / (sqrt(v_hat + eps_root) + eps)`` with
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.
    Defaults ``b1=0.9, b2=0.999, eps=1e-3, eps_root=0, initial_accumulator_value=1e-6``.
    ``shared_count=True``: ``t`` comes from an enclosing ``with_count``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)
    validate.non_negative("initial_accumulator_value", initial_accumulator_value)

    def yogi_step(g, v):
        g2 = numerics.abs_sq(g)
        v = jnp.real(v)  # real-valued, even in a complex-typed state: sign() needs a real
        return v - (1 - b2) * jnp.sign(v - g2) * g2

    # ``ema`` starts at zero; Yogi's average starts at ``initial_accumulator_value``.
    first = chain(
        _running(lambda g, m: tree_ops.update_moment(g, m, b1, 1), initial_accumulator_value),
        bias_correction(b1, shared_count=True),
    )
    second = chain(
        _running(
            lambda g, v: tree_ops.map_moment(yogi_step, g, v, b2, real=True),
            initial_accumulator_value,
        ),
        bias_correction(b2, shared_count=True),
        _root(eps, eps_root),
    )
    return _quotient("scale_by_yogi", first, second, shared_count=shared_count)


def _rectification(b2: Any, threshold: Any) -> base.GradientTransformation:
    """RAdam's rectification applied to the denominator ``d``: ``d <- d / r_t`` once
    ``rho_t >= threshold``, ``d <- 1`` (momentum SGD) before (Liu et al. 2020)."""
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def update(updates, state, params=None, **extra):
        del params
        count = shared_step(extra, "scale_by_radam")
        b2t = b2**count
        rho = rho_inf - 2 * count * b2t / (1 - b2t)
        # Below the threshold r_t is the root of a negative number: computed, then dropped.
        r = jnp.sqrt(
            (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        # On the denominator, so that ``divide`` applies it: m_hat / (d / r_t) is
        # r_t m_hat / d up to one rounding.
        rectified = jax.tree.map(
            lambda d: jnp.where(rho >= threshold, d / r.astype(d.dtype), jnp.ones_like(d)),
            updates,
        )
        return rectified, state

    return base.GradientTransformation(lambda params: base.EmptyState(), update)


def scale_by_radam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    threshold: jax.typing.ArrayLike = 5.0,
    *,
    nesterov: bool = False,
    shared_count: bool = False,
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
    ``shared_count=True``: ``t`` comes from an enclosing ``with_count``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)
    validate.finite("threshold", threshold)
    first = nesterov_ema(b1, shared_count=True) if nesterov else ema(b1, shared_count=True)
    second = chain(
        ema(b2, order=2, shared_count=True), _root(eps, eps_root), _rectification(b2, threshold)
    )
    return _quotient("scale_by_radam", first, second, shared_count=shared_count)
