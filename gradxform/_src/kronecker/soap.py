"""SOAP: Adam in the eigenbasis of Shampoo's Kronecker factors."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain
from gradxform._src.kronecker.blocking import merge_small_dims
from gradxform._src.kronecker.eigenbasis import eigenbasis, project, qr_power_step
from gradxform._src.kronecker.statistics import axis_gram


class ScaleBySoapState(NamedTuple):
    """The state of ``scale_by_soap``.

    Attributes:
        count: int32 scalar, the number of earlier updates.
        mu: the first moment in the original basis, a tree like the params (param
            dtype).
        nu: the second moment in the eigenbasis, a tree like the params (param dtype).
        factors: per leaf, a tuple with one ``(d, d)`` Kronecker factor (the EMA of
            ``G_(i) G_(i)^T``, in the params' dtype promoted to at least float32) or
            ``None`` per axis (an axis left unpreconditioned).
        bases: per leaf, the eigenbases of ``factors``, same layout.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    nu: Any
    factors: Any
    bases: Any


class SoapStepState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; int32 scalar


def _factored_shape(shape, max_precond_dim: int, merge_dims: bool) -> tuple[int, ...]:
    """The shape the factors see: with ``merge_dims``, a tensor's (not a vector's or a
    scalar's) adjacent axes merged while their product stays ``<= max_precond_dim``."""
    if merge_dims and len(shape) >= 2:
        return merge_small_dims(shape, max_precond_dim)
    return tuple(shape)


def _factored_axes(
    shape, max_precond_dim: int, precondition_1d: bool, merge_dims: bool
) -> tuple[bool, ...]:
    if len(shape) == 1 and not precondition_1d:
        return (False,)
    return tuple(d <= max_precond_dim for d in _factored_shape(shape, max_precond_dim, merge_dims))


def _stat_dtype(dtype) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def scale_by_soap(
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    precondition_1d: bool = False,
    correct_bias: bool = True,
    normalize_grads: bool = False,
    *,
    merge_dims: bool = False,
) -> base.GradientTransformation:
    """SOAP's direction (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using
    Adam", arXiv:2409.11321), before the learning rate.

    Per leaf ``G`` with factors ``L_i`` (``sb = shampoo_beta or b2``, ``t`` = earlier calls):

    - first call (``t = 0``): ``L_i = (1 - sb) G_(i) G_(i)^T``, ``Q_i = eigenbasis(L_i)``;
      the output is zero (no gradient is used in the basis it built).
    - later calls: ``m <- m + (1 - b1)(G - m)``;
      ``v <- v + (1 - b2)(project(G)^2 - v)`` (in the eigenbasis);
      ``u = project_back(project(m) / (sqrt(v) + eps))``; ``u <- u / (rms(u) + eps)`` if
      ``normalize_grads``; output ``u sqrt(1 - b2^t) / (1 - b1^t)`` (``u`` without
      ``correct_bias``). Then ``L_i <- L_i + (1 - sb)(G_(i) G_(i)^T - L_i)`` and, when
      ``t % precondition_frequency == 0``, ``Q_i, idx = qr_power_step(L_i, Q_i)`` with
      ``v`` permuted by ``idx`` along axis ``i``, axis by axis.

    ``G_(i) G_(i)^T`` contracts every axis but ``i``. Axis ``i`` has a factor when
    ``d_i <= max_precond_dim``, and a vector's only axis only with ``precondition_1d``;
    other axes (and scalars) are left in their own basis. With ``merge_dims`` a tensor of
    rank >= 2 is seen as ``reshape(G, merge_small_dims(shape, max_precond_dim))`` (the
    paper's merging: a (5, 5) leaf becomes one axis of 25, which pytorch-optimizer 4.1.0
    fails to reshape, quirk O1).

    Args:
        b1: first-moment decay, in ``[0, 1)``. Default 0.95.
        b2: second-moment decay, in ``[0, 1)``. Default 0.95.
        shampoo_beta: factor decay in ``[0, 1)``; ``None`` (default) uses ``b2``.
        eps: added to ``sqrt(v)`` (and to the rms with ``normalize_grads``), ``>= 0``.
            Default 1e-8.
        precondition_frequency: calls between eigenbasis refreshes, ``>= 1``. Default 10.
        max_precond_dim: largest axis given a factor, ``>= 1``. Default 10000.
        precondition_1d: give vectors a factor too. Default False.
        correct_bias: Adam's bias correction. Default True.
        normalize_grads: divide the direction by its rms. Default False.
        merge_dims: merge small adjacent axes of tensors before factoring. Default False.

    Returns:
        A ``GradientTransformation`` with state ``ScaleBySoapState``: ``m``, ``v``
        (params' dtype) and
        ``L_i``, ``Q_i`` (params' dtype, at least float32).
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    if shampoo_beta is not None:
        validate.decay("shampoo_beta", shampoo_beta)
    validate.non_negative("eps", eps)
    validate.positive_int("precondition_frequency", precondition_frequency)
    validate.positive_int("max_precond_dim", max_precond_dim)
    sb = b2 if shampoo_beta is None else shampoo_beta

    def init(params):
        base.check_float_leaves(params, "scale_by_soap")

        def leaf_factors(p):
            axes = _factored_axes(p.shape, max_precond_dim, precondition_1d, merge_dims)
            shape = _factored_shape(p.shape, max_precond_dim, merge_dims)
            dtype = _stat_dtype(p.dtype)
            return tuple(jnp.zeros((d, d), dtype) if f else None for d, f in zip(shape, axes))

        factors = jax.tree.map(leaf_factors, params)
        return ScaleBySoapState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params),
            nu=tree_ops.zeros_like(params),
            factors=factors,
            bases=factors,
        )

    def new_factors(g, factors):
        g = g.astype(_stat_dtype(g.dtype))
        return tuple(
            None if f is None else f + (1.0 - sb) * (axis_gram(g, i) - f)
            for i, f in enumerate(factors)
        )

    def first(g, m, v, factors, bases):
        del bases
        factors = new_factors(g, factors)
        bases = tuple(None if f is None else eigenbasis(f) for f in factors)
        return jnp.zeros_like(g), m, v, factors, bases

    def later(count, g, m, v, factors, bases):
        g_stat = g.astype(_stat_dtype(g.dtype))
        m_stat, v_stat = m.astype(g_stat.dtype), v.astype(g_stat.dtype)
        m_stat = m_stat + (1.0 - b1) * (g_stat - m_stat)
        v_stat = v_stat + (1.0 - b2) * (jnp.square(project(g_stat, bases)) - v_stat)
        u = project(project(m_stat, bases) / (jnp.sqrt(v_stat) + eps), bases, back=True)
        if normalize_grads:
            u = u / (jnp.sqrt(jnp.mean(jnp.square(u))) + eps)
        if correct_bias:
            t = count.astype(u.dtype)
            u = u * (jnp.sqrt(1.0 - b2**t) / (1.0 - b1**t))
        factors = new_factors(g, factors)

        def refresh(v_stat, bases):
            new_bases = []
            for axis, (f, q) in enumerate(zip(factors, bases)):
                if f is None:
                    new_bases.append(None)
                    continue
                q, order = qr_power_step(f, q)
                v_stat = jnp.take(v_stat, order, axis=axis)
                new_bases.append(q)
            return v_stat, tuple(new_bases)

        v_stat, bases = jax.lax.cond(
            count % precondition_frequency == 0,
            refresh,
            lambda v_stat, bases: (v_stat, bases),
            v_stat,
            bases,
        )
        return u.astype(g.dtype), m_stat.astype(m.dtype), v_stat.astype(v.dtype), factors, bases

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "first moment")
        treedef = jax.tree.structure(updates)
        leaves = [
            treedef.flatten_up_to(x)
            for x in (updates, state.mu, state.nu, state.factors, state.bases)
        ]

        def merged(branch):
            # The leaf, its moments and direction seen in the factors' (merged) shape.
            def fn(g, m, v, factors, bases):
                shape = _factored_shape(g.shape, max_precond_dim, merge_dims)
                out, m, v, factors, bases = branch(
                    g.reshape(shape), m.reshape(shape), v.reshape(shape), factors, bases
                )
                return (
                    out.reshape(g.shape),
                    m.reshape(g.shape),
                    v.reshape(g.shape),
                    factors,
                    bases,
                )

            return fn

        def run(branch):
            def fn(operands):
                out = [merged(branch)(*args) for args in zip(*operands)]
                return tuple(treedef.unflatten(col) for col in zip(*out))

            return fn

        count = state.count
        out, mu, nu, factors, bases = jax.lax.cond(
            count == 0,
            run(first),
            run(lambda *args: later(count, *args)),
            leaves,
        )
        state = ScaleBySoapState(numerics.safe_increment(count), mu, nu, factors, bases)
        return out, state

    return base.GradientTransformation(init, update)


def _step_then_decay(learning_rate: base.ScalarOrSchedule, weight_decay: float):
    """``p <- (p - lr d)(1 - lr wd)`` from the second call on: ``-(1 - lr wd) lr d - lr wd p``."""

    def init(params):
        del params
        return SoapStepState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, **extra):
        del extra
        if weight_decay != 0 and params is None:
            raise ValueError("soap: params are required when weight_decay != 0")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        # The first call only builds the eigenbasis: no step and no decay (quirk O2).
        decay = jnp.where(state.count > 0, lr * weight_decay, 0.0)

        def leaf(d, p):
            out = -(1.0 - decay) * lr * d
            if weight_decay != 0:
                out = out - decay * p
            return out.astype(d.dtype)

        params = updates if params is None else params
        out = jax.tree.map(leaf, updates, params)
        return out, SoapStepState(count=numerics.safe_increment(state.count))

    return base.GradientTransformation(init, update)


def soap(
    learning_rate: base.ScalarOrSchedule = 3e-3,
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    precondition_1d: bool = False,
    correct_bias: bool = True,
    normalize_grads: bool = False,
    *,
    merge_dims: bool = False,
) -> base.GradientTransformation:
    """SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam",
    arXiv:2409.11321), as pytorch-optimizer 4.1.0's ``SOAP``.

    ``d`` = ``scale_by_soap``'s direction (zero on the first call), ``lr`` =
    ``learning_rate(count)``: ``p <- (p - lr d)(1 - lr weight_decay)``, i.e. the update is
    ``-(1 - lr wd) lr d - lr wd p``; the first call leaves ``p`` unchanged (no decay).

    Args:
        learning_rate: step size ``>= 0`` or a schedule ``count -> lr``. Default 3e-3.
        b1: first-moment decay, in ``[0, 1)``. Default 0.95.
        b2: second-moment decay, in ``[0, 1)``. Default 0.95.
        shampoo_beta: factor decay in ``[0, 1)``; ``None`` (default) uses ``b2``.
        eps: Adam's denominator term, ``>= 0``. Default 1e-8.
        weight_decay: decoupled, multiplicative decay ``>= 0``. Default 0.01.
        precondition_frequency: calls between eigenbasis refreshes, ``>= 1``. Default 10.
        max_precond_dim: largest axis given a factor, ``>= 1``. Default 10000.
        precondition_1d: give vectors a factor too. Default False.
        correct_bias: Adam's bias correction. Default True.
        normalize_grads: divide the direction by its rms (plus ``eps``). Default False.
        merge_dims: merge small adjacent axes of tensors before factoring (the paper's
            rule; not in the spec's signature, keyword only). Default False.

    Returns:
        A ``GradientTransformation`` whose ``update`` needs ``params`` when
        ``weight_decay != 0``.

    Examples:
        >>> w = jnp.array([[1.0, -2.0], [0.5, 3.0]])
        >>> opt = gx.soap(0.1, b1=0.9, weight_decay=0.0)
        >>> state = opt.init(w)
        >>> for _ in range(4):
        ...     updates, state = opt.update(2 * w, state)  # the gradient of sum(w ** 2)
        ...     w = w + updates
        >>> print(np.asarray(w).round(3))
        [[ 0.777 -1.798]
         [ 0.293  2.773]]
    """
    validate.non_negative("learning_rate", learning_rate)
    validate.non_negative("weight_decay", weight_decay)
    return chain(
        scale_by_soap(
            b1,
            b2,
            shampoo_beta,
            eps,
            precondition_frequency,
            max_precond_dim,
            precondition_1d,
            correct_bias,
            normalize_grads,
            merge_dims=merge_dims,
        ),
        _step_then_decay(learning_rate, weight_decay),
    )
