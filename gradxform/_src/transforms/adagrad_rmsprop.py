"""AdaGrad's and RMSProp's scalings: dividing by the root of a running sum (AdaGrad), mean
(RMSProp) or variance (centred RMSProp) of the squared gradients.

Each is a diagonal approximation ``P^{-1/2}`` of the curvature in ``u <- P^{-1/2} g``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate


class ScaleByRssState(NamedTuple):
    """The state of ``scale_by_rss`` (optax's).

    Attributes:
        sum_of_squares: ``s``, the running sum of ``|g|^2``, a tree like the params, in
            their dtypes.
    """

    sum_of_squares: Any


def scale_by_rss(
    initial_accumulator_value: jax.typing.ArrayLike = 0.1,
    eps: jax.typing.ArrayLike = 1e-7,
) -> base.GradientTransformation:
    """AdaGrad's scaling by the root of the sum of squared gradients.

    ``s <- s + |g|^2`` (``s_0 = initial_accumulator_value``);
    ``u <- g / sqrt(s + eps)`` where ``s > 0``, else ``u <- 0``.
    Duchi et al. (2011), "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization".

    Args:
      initial_accumulator_value: ``s_0``, the starting value of every entry of ``s``,
        ``>= 0``; default 0.1.
      eps: added to ``s`` inside the root, ``>= 0``; default 1e-7.

    Returns:
      The ``GradientTransformation``; its state is ``ScaleByRssState(sum_of_squares)``.
    """
    validate.non_negative("initial_accumulator_value", initial_accumulator_value)
    validate.non_negative("eps", eps)

    def init(params):
        base.check_float_leaves(params, "scale_by_rss")
        return ScaleByRssState(sum_of_squares=tree_ops.full_like(params, initial_accumulator_value))

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.sum_of_squares, "sum of squares")
        sum_of_squares = tree_ops.map_moment(
            lambda g, s: numerics.abs_sq(g) + s, updates, state.sum_of_squares, real=True
        )
        # Where nothing has accumulated, the update is 0 rather than 0 / sqrt(eps).
        scaling = jax.tree.map(
            lambda s: jnp.where(s > 0, jax.lax.rsqrt(numerics.upcast(s) + eps), 0.0),
            sum_of_squares,
        )
        updates = jax.tree.map(lambda c, g: (c * g).astype(g.dtype), scaling, updates)
        return updates, ScaleByRssState(
            sum_of_squares=tree_ops.cast_like(sum_of_squares, state.sum_of_squares)
        )

    return base.GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    """The state of ``scale_by_rms`` without bias correction.

    Attributes:
        nu: the average ``v`` of ``|g|^2``, a tree like the params, in their dtypes.
    """

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """The state of ``scale_by_rms(bias_correction=True)``.

    Attributes:
        count: int32 scalar, the number of updates made so far.
        nu: the average ``v`` of ``|g|^2``, a tree like the params, in their dtypes.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
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
    The statistics are computed in at least float32; ``u`` comes back in the updates'
    dtype.

    Args:
      decay: the averaging factor of ``v``, in ``[0, 1)``; default 0.9.
      eps: added inside (or outside) the root, ``>= 0``; default 1e-8.
      initial_scale: ``v_0``, the starting value of every entry of ``v``, ``>= 0``;
        default 0.
      eps_in_sqrt: add ``eps`` inside the root (default True, as optax) or outside it.
      bias_correction: divide ``v`` by ``1 - decay**t`` (default False).

    Returns:
      The ``GradientTransformation``; its state is ``ScaleByRmsState(nu)``, or
      ``ScaleByRmsWithCountState(count, nu)`` with ``bias_correction``.
    """
    return _root_mean_square(
        "scale_by_rms", decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=False
    )


class ScaleByRStdDevState(NamedTuple):
    """The state of ``scale_by_stddev`` without bias correction.

    Attributes:
        mu: the average ``m`` of ``g``, a tree like the params, in their dtypes.
        nu: the average ``v`` of ``|g|^2``, a tree like the params, in their dtypes.
    """

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """The state of ``scale_by_stddev(bias_correction=True)``.

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the average ``m`` of ``g``, a tree like the params, in their dtypes.
        nu: the average ``v`` of ``|g|^2``, a tree like the params, in their dtypes.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    nu: Any


def scale_by_stddev(
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> base.GradientTransformation:
    """Centred RMSProp's scaling by the running standard deviation of the gradient.

    ``m <- decay m + (1 - decay) g``; ``v <- decay v + (1 - decay) |g|^2``
    (``m_0 = 0``, ``v_0 = initial_scale``); with ``bias_correction`` both are divided
    by ``1 - decay**t``. ``u <- g / sqrt(v - |m|^2 + eps)``, or
    ``g / (sqrt(v - |m|^2) + eps)`` when not ``eps_in_sqrt`` (the variance
    ``v - |m|^2`` clamped at 0). Graves (2013), "Generating Sequences With Recurrent
    Neural Networks", eq. 38-45. The statistics are computed in at least float32; ``u``
    comes back in the updates' dtype.

    Args:
      decay: the averaging factor of ``m`` and ``v``, in ``[0, 1)``; default 0.9.
      eps: added inside (or outside) the root, ``>= 0``; default 1e-8.
      initial_scale: ``v_0``, the starting value of every entry of ``v``, ``>= 0``;
        default 0.
      eps_in_sqrt: add ``eps`` inside the root (default True, as optax) or outside it.
      bias_correction: divide ``m`` and ``v`` by ``1 - decay**t`` (default False).

    Returns:
      The ``GradientTransformation``; its state is ``ScaleByRStdDevState(mu, nu)``, or
      ``ScaleByRStdDevWithCountState(count, mu, nu)`` with ``bias_correction``.
    """
    return _root_mean_square(
        "scale_by_stddev", decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=True
    )


def _root_mean_square(
    name: str,
    decay: jax.typing.ArrayLike,
    eps: jax.typing.ArrayLike,
    initial_scale: jax.typing.ArrayLike,
    eps_in_sqrt: bool,
    bias_correction: bool,
    centered: bool,
) -> base.GradientTransformation:
    """``scale_by_rms`` (``centered=False``) and ``scale_by_stddev`` (``centered=True``):
    ``g`` divided by the root of ``v`` (RMSProp) or of ``v - |m|^2`` (centred), both
    averages computed in at least float32 and stored in the params' dtypes."""
    validate.decay("decay", decay)
    validate.non_negative("eps", eps)
    validate.non_negative("initial_scale", initial_scale)
    state_type: type[Any]
    if centered:
        state_type = ScaleByRStdDevWithCountState if bias_correction else ScaleByRStdDevState
    else:
        state_type = ScaleByRmsWithCountState if bias_correction else ScaleByRmsState

    def init(params):
        base.check_float_leaves(params, name)
        fields = {"nu": tree_ops.full_like(params, initial_scale)}
        if centered:
            fields["mu"] = tree_ops.zeros_like(params)
        if bias_correction:
            fields["count"] = jnp.zeros([], jnp.int32)
        return state_type(**fields)

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.nu, "second moment")
        wide = jax.tree.map(numerics.upcast, updates)
        fields = {"nu": tree_ops.update_moment_per_elem_norm(wide, state.nu, decay, 2)}
        if centered:
            fields["mu"] = tree_ops.update_moment(wide, state.mu, decay, 1)
        moments = fields
        if bias_correction:
            count = numerics.safe_increment(state.count)
            moments = {k: tree_ops.bias_correction(v, decay, count) for k, v in fields.items()}
        if centered:
            variance = jax.tree.map(numerics.clamped_variance, moments["nu"], moments["mu"])
        else:
            variance = jax.tree.map(numerics.upcast, moments["nu"])
        if eps_in_sqrt:
            scaling = jax.tree.map(lambda v: jax.lax.rsqrt(v + eps), variance)
        else:
            scaling = jax.tree.map(lambda v: 1 / (jnp.sqrt(v) + eps), variance)
        updates = jax.tree.map(lambda s, g: (s * g).astype(g.dtype), scaling, updates)
        fields = {k: tree_ops.cast_like(v, getattr(state, k)) for k, v in fields.items()}
        if bias_correction:
            fields["count"] = count
        return updates, state_type(**fields)

    return base.GradientTransformation(init, update)
