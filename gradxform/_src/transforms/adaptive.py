"""Diagonal preconditioners: dividing by a running estimate of the gradient's scale.

Each is a diagonal approximation ``P^{-1/2}`` of the curvature in ``u <- P^{-1/2} g``:
AdaGrad takes ``P = sum g^2``, RMSProp and Adam an exponential average of ``g^2``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain, divide
from gradxform._src.counting import shared_step, with_count
from gradxform._src.transforms.accumulation import MovingAverageState, _dtype, ema


class ScaleByRmsState(NamedTuple):
    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    count: jax.Array
    nu: Any


def scale_by_rms(
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> base.GradientTransformation:
    """RMSProp's scaling (Tieleman & Hinton 2012, lecture 6.5).

    ``v <- decay * v + (1 - decay) * g^2`` (``v_0 = initial_scale``);
    ``v_hat = v / (1 - decay**t)`` with ``bias_correction``, else ``v``;
    ``u <- g / sqrt(v_hat + eps)``, or ``g / (sqrt(v_hat) + eps)`` when not ``eps_in_sqrt``.
    """
    validate.decay("decay", decay)
    validate.non_negative("eps", eps)
    validate.non_negative("initial_scale", initial_scale)
    debias = bias_correction

    def init(params):
        base.check_float_leaves(params, "scale_by_rms")
        nu = tree_ops.full_like(params, initial_scale)
        if debias:
            return ScaleByRmsWithCountState(count=jnp.zeros([], jnp.int32), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second moment")
        wide = jax.tree.map(numerics.upcast, updates)
        nu = tree_ops.update_moment_per_elem_norm(wide, state.nu, decay, 2)
        if debias:
            count = numerics.safe_increment(state.count)
            nu_hat = tree_ops.bias_correction(nu, decay, count)
        else:
            nu_hat = nu
        if eps_in_sqrt:
            scaling = jax.tree.map(lambda n: jax.lax.rsqrt(numerics.upcast(n) + eps), nu_hat)
        else:
            scaling = jax.tree.map(lambda n: 1 / (jnp.sqrt(numerics.upcast(n)) + eps), nu_hat)
        updates = jax.tree.map(lambda s, g: (s * g).astype(g.dtype), scaling, updates)
        nu = tree_ops.cast_like(nu, state.nu)
        if debias:
            return updates, ScaleByRmsWithCountState(count=count, nu=nu)
        return updates, ScaleByRmsState(nu=nu)

    return base.GradientTransformation(init, update)


class NesterovEmaState(NamedTuple):
    count: jax.Array
    ema: Any


def nesterov_debias(m: Any, g: Any, decay: Any, count: jax.Array) -> Any:
    """Dozat's debiased look-ahead ``b m / (1 - b^{t+1}) + (1 - b) g / (1 - b^t)`` of the
    new average ``m`` and the gradient ``g`` (Dozat 2016)."""
    return jax.tree.map(
        lambda m_hat, g_hat: decay * m_hat + (1 - decay) * g_hat,
        tree_ops.bias_correction(m, decay, numerics.safe_increment(count)),
        tree_ops.bias_correction(g, decay, count),
    )


def nesterov_ema(
    decay: jax.typing.ArrayLike, accumulator_dtype: Any = None, *, shared_count: bool = False
):
    """Debiased Nesterov look-ahead of an EMA (Dozat 2016, "Incorporating Nesterov
    Momentum into Adam"): ``m <- b m + (1-b) g``;
    ``u <- b m / (1 - b^{t+1}) + (1 - b) g / (1 - b^t)``. ``shared_count=True``: ``t``
    comes from an enclosing ``with_count`` and the state holds only ``m``.
    """
    validate.decay("decay", decay)
    accumulator_dtype = _dtype(accumulator_dtype)

    def init(params):
        base.check_float_leaves(params, "nesterov_ema")
        base.check_accumulator_dtype(params, accumulator_dtype, "nesterov_ema")
        m = tree_ops.zeros_like(params, accumulator_dtype)
        if shared_count:
            return MovingAverageState(ema=m)
        return NesterovEmaState(count=jnp.zeros([], jnp.int32), ema=m)

    def update(updates, state, params=None, **extra):
        del params
        base.check_same_structure(updates, state.ema, "moving average")
        m = tree_ops.update_moment(updates, state.ema, decay, 1)
        if shared_count:
            count = shared_step(extra, "nesterov_ema")
        else:
            count = numerics.safe_increment(state.count)
        out = nesterov_debias(m, updates, decay, count)
        # Without an accumulator dtype ``m`` keeps the state's dtype, as in ``ema``, so
        # the state's structure is stable when the updates arrive in a wider dtype.
        if accumulator_dtype is None:
            m = tree_ops.cast_like(m, state.ema)
        else:
            m = tree_ops.cast(m, accumulator_dtype)
        if shared_count:
            return out, MovingAverageState(ema=m)
        return out, NesterovEmaState(count=count, ema=m)

    return base.GradientTransformation(init, update)


def second_moment_root(
    b2: jax.typing.ArrayLike,
    eps: jax.typing.ArrayLike,
    eps_root: jax.typing.ArrayLike,
    *,
    accumulator_dtype: Any = None,
    shared_count: bool = False,
) -> base.GradientTransformation:
    """The denominator of Adam: ``v <- b2 v + (1 - b2) |g|^2``;
    ``u <- sqrt(v / (1 - b2^t) + eps_root) + eps``, computed in at least float32
    (``v`` is stored in ``accumulator_dtype``, by default the params' dtype).
    ``shared_count=True``: ``t`` comes from an enclosing ``with_count``.
    """
    return chain(
        base.elementwise(numerics.upcast),
        ema(b2, debias=True, accumulator_dtype=accumulator_dtype, order=2,
            shared_count=shared_count),
        base.elementwise(lambda v: jnp.sqrt(v + eps_root) + eps),
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
    shared_count: bool = False,
) -> base.GradientTransformation:
    """Adam's scaling (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization").

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``u <- m_hat / (sqrt(v_hat + eps_root) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``. With ``nesterov`` (NAdam, Dozat 2016)
    ``m_hat = b1 m / (1 - b1^{t+1}) + (1 - b1) g / (1 - b1^t)``.
    ``mu_dtype`` and ``nu_dtype`` are the storage dtypes of ``m`` and ``v`` (default:
    the params'); e.g. float32 moments for bfloat16 params (optax has only ``mu_dtype``).

    Written as primitives, with one step counter for both corrections:
    ``with_count(divide(ema(b1), second_moment_root(b2, eps, eps_root)))``; with
    ``shared_count=True`` the step comes from an enclosing ``with_count`` instead (as in
    ``adam``, whose schedule shares it), and the state holds only ``m`` and ``v``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.non_negative("eps_root", eps_root)
    if nesterov:
        first = nesterov_ema(b1, accumulator_dtype=mu_dtype, shared_count=True)
    else:
        first = ema(b1, debias=True, accumulator_dtype=mu_dtype, shared_count=True)
    second = second_moment_root(
        b2, eps, eps_root, accumulator_dtype=nu_dtype, shared_count=True
    )
    scaling = divide(first, second)
    return scaling if shared_count else with_count(scaling)
