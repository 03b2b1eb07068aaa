"""PSGD-Kron: momentum preconditioned by an online-fitted Kronecker-factored ``Q^H Q``."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain
from gradxform._src.kronecker.psgd import (
    MEMORY_SAVE_MODES,
    balance,
    fit_factors,
    init_factors,
    precondition,
    triangular_axes,
)
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights

# psgd-jax 0.2.9 draws from this key and has no way to change it (quirk P5).
REFERENCE_SEED = 5318008


class ScaleByPsgdKronState(NamedTuple):
    """The state of ``scale_by_psgd_kron``.

    Attributes:
        count: int32 scalar, the number of earlier updates.
        mu: the momentum, a tree like the params in ``mu_dtype`` (``None`` when
            ``b1 == 0``).
        factors: per leaf, the tuple of ``Q``'s Kronecker factors, one per axis: a
            triangular ``(d, d)`` matrix or a diagonal ``(d,)`` vector, in
            ``precond_dtype``.
        update_counter: int32 scalar, the calls since ``Q`` was last fitted.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    factors: Any
    update_counter: jax.Array


def precond_update_prob_schedule(
    max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001, flat_start: float = 500
) -> Callable[[jax.Array], jax.Array]:
    """``n -> min(max(max_prob exp(-decay (n - flat_start)), min_prob), max_prob)``.

    Args:
        max_prob: the probability early on. Default 1.0.
        min_prob: the floor. Default 0.03.
        decay: exponential decay rate per step. Default 0.001.
        flat_start: the step the decay starts from. Default 500.

    Returns:
        The schedule (psgd-jax's default fitting probability).
    """

    def schedule(n):
        p = max_prob * jnp.exp(-decay * (n - flat_start))
        return jnp.minimum(jnp.maximum(p, min_prob), max_prob)

    return schedule


# One schedule object shared by every default call, built once as optax builds its default.
_DEFAULT_UPDATE_PROBABILITY = precond_update_prob_schedule()


def _resolve_key(key: Any) -> jax.Array:
    if key is None:
        return jax.random.PRNGKey(REFERENCE_SEED)
    if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
        return jax.random.PRNGKey(int(key))
    key = jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise ValueError(
            f"key must be None, an int seed, a typed key or a uint32[2] key, "
            f"got {key.dtype}{list(key.shape)}"
        )
    return key


def scale_by_psgd_kron(
    b1: float = 0.9,
    preconditioner_update_probability: float | Callable = _DEFAULT_UPDATE_PROBABILITY,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    precond_update_precision: str | None = "tensorfloat32",
    precond_grads_precision: str | None = None,
    scanned_layers: Any = None,
    lax_map_scanned_layers: bool = False,
    lax_map_batch_size: int = 8,
    *,
    key: Any = None,
) -> base.GradientTransformation:
    """PSGD-Kron's direction (Li 2018, 2022; psgd-jax 0.2.9's ``scale_by_kron``).

    ``c`` = earlier calls, ``c1 = c + 1``. Momentum ``mu <- b1 mu + (1 - b1) g``,
    ``m = mu / (1 - b1^c1)`` (``m = g`` when ``b1 == 0``). The fit is periodic, not
    random: ``counter += 1``, and when ``counter >= 1 / prob(c1)`` the counter resets and
    every leaf's factors take one ``fit_factors`` step on ``h = m`` (or ``g``) plus
    ``sqrt(eps_f32) mean|h| V``, ``V`` a standard normal probe, after a ``balance`` with
    probability 0.01. Random stream: ``k = fold_in(key, c)``, ``k, s = split(k)``; in the
    fit ``s, s1 = split(s)`` (balance iff ``uniform(s1) < 0.01``), ``s, s2 = split(s)``,
    ``V_i = normal(split(s2, n_leaves)[i])``. Output ``u = Q^H Q m`` per leaf, then
    ``u / max(1, rms(u) / 1.1)``, in the gradient's dtype.

    Args:
        b1: momentum decay in ``[0, 1)``; 0 disables momentum. Default 0.9.
        preconditioner_update_probability: fitting frequency in ``(0, 1]`` or a schedule of
            ``c1``. Default ``precond_update_prob_schedule()``.
        max_size_triangular: axes above this size get diagonal factors, ``>= 0``.
            Default 8192.
        min_ndim_triangular: leaves with fewer axes get diagonal factors, ``>= 0``.
            Default 2.
        memory_save_mode: ``None`` (default), ``"one_diag"`` (largest axis diagonal) or
            ``"all_diag"``.
        momentum_into_precond_update: fit on the momentum rather than the gradient.
            Default True.
        preconditioner_lr: the fitting step size, ``>= 0``. Default 0.1.
        preconditioner_init_scale: initial ``Q = scale I``, ``> 0``. Default 1.0.
        mu_dtype: momentum dtype (default: the params').
        precond_dtype: factors' dtype (default: the params' promoted to at least float32).
        precond_update_precision: matmul precision in the fit. Default "tensorfloat32".
        precond_grads_precision: matmul precision preconditioning the momentum.
        scanned_layers: pytree of bools like the params: those leaves are a stack of layers
            along axis 0, each with its own factors. Default none.
        lax_map_scanned_layers: map scanned layers with ``lax.map`` instead of ``vmap``.
        lax_map_batch_size: ``lax.map``'s batch size. Default 8.
        key: the PRNG key of the probes: ``None`` (psgd-jax's fixed ``PRNGKey(5318008)``),
            an int seed, a raw ``uint32[2]`` key or a typed key (same draws as the raw one).

    Returns:
        A ``GradientTransformation`` with state ``ScaleByPsgdKronState`` (count, momentum,
        the factors of ``Q`` and the calls since the last fit).
    """
    validate.decay("b1", b1)
    if not callable(preconditioner_update_probability):
        validate.in_range(
            "preconditioner_update_probability",
            preconditioner_update_probability,
            0.0,
            1.0,
            low_open=True,
        )
    validate.non_negative("max_size_triangular", max_size_triangular)
    validate.non_negative("min_ndim_triangular", min_ndim_triangular)
    validate.one_of("memory_save_mode", memory_save_mode, MEMORY_SAVE_MODES)
    validate.non_negative("preconditioner_lr", preconditioner_lr)
    validate.positive("preconditioner_init_scale", preconditioner_init_scale)
    base_key = _resolve_key(key)
    mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)
    precond_dtype = None if precond_dtype is None else jnp.dtype(precond_dtype)

    def layer_shape(x, scanned):
        return x.shape[1:] if scanned else x.shape

    def factor_dtype(x):
        return precond_dtype or jnp.promote_types(x.dtype, jnp.float32)

    def scanned_leaves(tree):
        treedef = jax.tree.structure(tree)
        if scanned_layers is None:
            return [False] * treedef.num_leaves
        return [bool(s) for s in treedef.flatten_up_to(scanned_layers)]

    def per_layer(scanned, fn, *args):
        if not scanned:
            return fn(*args)
        if lax_map_scanned_layers:
            return jax.lax.map(
                lambda xs: fn(*xs),
                args,
                batch_size=lax_map_batch_size if lax_map_batch_size > 1 else None,
            )
        return jax.vmap(fn)(*args)

    def init(params):
        base.check_float_leaves(params, "scale_by_psgd_kron")
        leaves, treedef = jax.tree.flatten(params)
        factors = []
        for x, scanned in zip(leaves, scanned_leaves(params)):
            shape = layer_shape(x, scanned)
            tri = triangular_axes(shape, max_size_triangular, min_ndim_triangular, memory_save_mode)
            q = init_factors(shape, tri, preconditioner_init_scale, factor_dtype(x))
            if scanned:
                q = tuple(jnp.repeat(f[None], x.shape[0], axis=0) for f in q)
            factors.append(q)
        mu = None
        if b1 > 0:
            mu = jax.tree.map(lambda x: jnp.zeros(x.shape, mu_dtype or x.dtype), params)
        return ScaleByPsgdKronState(
            count=jnp.zeros([], jnp.int32),
            mu=mu,
            factors=treedef.unflatten(factors),
            update_counter=jnp.zeros([], jnp.int32),
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        if state.mu is not None:
            base.check_same_structure(updates, state.mu, "momentum")
        grads, treedef = jax.tree.flatten(updates)
        factors = treedef.flatten_up_to(state.factors)
        scanned = scanned_leaves(updates)
        count_inc = numerics.safe_int32_increment(state.count)
        rng = jax.random.fold_in(base_key, state.count)
        prob = preconditioner_update_probability
        if callable(prob):
            prob = prob(count_inc)

        mu = None
        moms = grads
        if state.mu is not None:
            mu = jax.tree.map(lambda g, m: (1 - b1) * g + b1 * m, updates, state.mu)
            correction = 1 - b1**count_inc
            moms = [m / correction.astype(m.dtype) for m in treedef.flatten_up_to(mu)]

        def fit(rng, factors):
            with jax.default_matmul_precision(precond_update_precision):
                inputs = moms if momentum_into_precond_update else grads
                rng, sub = jax.random.split(rng)
                factors = jax.lax.cond(
                    jax.random.uniform(sub) < 0.01,
                    lambda fs: [
                        per_layer(s, lambda *q: balance(q), *f) if len(f) > 1 else f
                        for f, s in zip(fs, scanned)
                    ],
                    lambda fs: fs,
                    factors,
                )
                rng, sub = jax.random.split(rng)
                keys = jax.random.split(sub, len(inputs))
                probes = [jax.random.normal(k, h.shape, h.dtype) for k, h in zip(keys, inputs)]
                damping = jnp.sqrt(jnp.finfo(jnp.float32).eps)
                inputs = [
                    h + damping.astype(h.dtype) * jnp.mean(jnp.abs(h)) * v
                    for h, v in zip(inputs, probes)
                ]
                return [
                    per_layer(
                        s, lambda f, h, v: fit_factors(f, h, v, preconditioner_lr), tuple(f), h, v
                    )
                    for f, h, v, s in zip(factors, inputs, probes, scanned)
                ]

        counter = numerics.safe_int32_increment(state.update_counter)
        do_fit = counter >= 1 / prob
        counter = jnp.where(do_fit, 0, counter)
        rng, sub = jax.random.split(rng)
        factors = [tuple(f) for f in factors]
        factors = jax.lax.cond(do_fit, fit, lambda _, fs: fs, sub, factors)
        factors = [tuple(f) for f in factors]

        with jax.default_matmul_precision(precond_grads_precision):
            directions = [
                per_layer(s, precondition, f, m) for f, m, s in zip(factors, moms, scanned)
            ]

        def clip(u, g):
            u = u / jnp.maximum(1.0, jnp.sqrt(jnp.mean(numerics.abs_sq(u))) / 1.1)
            return u.astype(g.dtype)

        out = [clip(u, g) for u, g in zip(directions, grads)]
        if mu is not None:
            mu = jax.tree.map(lambda m, old: m.astype(old.dtype), mu, state.mu)
        state = ScaleByPsgdKronState(
            count=count_inc,
            mu=mu,
            factors=treedef.unflatten(factors),
            update_counter=counter,
        )
        return treedef.unflatten(out), state

    return base.GradientTransformation(init, update)


def psgd_kron(
    learning_rate: base.ScalarOrSchedule = 0.001,
    b1: float = 0.9,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    preconditioner_update_probability: float | Callable = _DEFAULT_UPDATE_PROBABILITY,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: float = 0.1,
    preconditioner_init_scale: float = 1.0,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    precond_update_precision: str | None = "tensorfloat32",
    precond_grads_precision: str | None = None,
    scanned_layers: Any = None,
    lax_map_scanned_layers: bool = False,
    lax_map_batch_size: int = 8,
    *,
    key: Any = None,
) -> base.GradientTransformation:
    """PSGD-Kron (Li 2018, "Preconditioned Stochastic Gradient Descent"; Li 2022, "Black
    Box Lie Group Preconditioners for SGD"), as psgd-jax 0.2.9's ``kron``.

    ``u = scale_by_psgd_kron(...)``; ``u <- u + weight_decay p`` on the leaves selected by
    ``weight_decay_mask`` when ``weight_decay > 0``; ``u <- -learning_rate(c) u``.

    Args:
        learning_rate: step size ``>= 0`` or a schedule of the call count. Default 0.001.
        b1: momentum decay in ``[0, 1)``. Default 0.9.
        weight_decay: decoupled decay ``>= 0``, scaled by the learning rate. Default 0.
        weight_decay_mask: pytree of bools (or a function of the params) selecting the
            decayed leaves. Default all.
        preconditioner_update_probability: as ``scale_by_psgd_kron``.
        max_size_triangular: as ``scale_by_psgd_kron``.
        min_ndim_triangular: as ``scale_by_psgd_kron``.
        memory_save_mode: as ``scale_by_psgd_kron``.
        momentum_into_precond_update: as ``scale_by_psgd_kron``.
        preconditioner_lr: as ``scale_by_psgd_kron``.
        preconditioner_init_scale: as ``scale_by_psgd_kron``.
        mu_dtype: as ``scale_by_psgd_kron``.
        precond_dtype: as ``scale_by_psgd_kron``.
        precond_update_precision: as ``scale_by_psgd_kron``.
        precond_grads_precision: as ``scale_by_psgd_kron``.
        scanned_layers: as ``scale_by_psgd_kron``.
        lax_map_scanned_layers: as ``scale_by_psgd_kron``.
        lax_map_batch_size: as ``scale_by_psgd_kron``.
        key: as ``scale_by_psgd_kron`` (``None``: the reference's fixed key).

    Returns:
        A ``GradientTransformation``; ``update`` needs ``params`` when ``weight_decay > 0``.

    Examples:
        >>> params = (jnp.array([[1.0, -2.0], [0.5, 3.0]]), jnp.array([1.0, 1.0]))
        >>> loss = lambda p: jnp.sum(p[0] ** 2) + jnp.sum(p[1] ** 2)
        >>> opt = gx.psgd_kron(0.1)
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     updates, state = opt.update(jax.grad(loss)(params), state, params)
        ...     params = gx.apply_updates(params, updates)
        >>> print(np.asarray(params[0]).round(3), np.asarray(params[1]).round(3))
        [[ 0.831 -1.773]
         [ 0.413  2.675]] [0.78 0.78]
    """
    validate.non_negative("learning_rate", learning_rate)
    validate.non_negative("weight_decay", weight_decay)
    parts = [
        scale_by_psgd_kron(
            b1,
            preconditioner_update_probability,
            max_size_triangular,
            min_ndim_triangular,
            memory_save_mode,
            momentum_into_precond_update,
            preconditioner_lr,
            preconditioner_init_scale,
            mu_dtype,
            precond_dtype,
            precond_update_precision,
            precond_grads_precision,
            scanned_layers,
            lax_map_scanned_layers,
            lax_map_batch_size,
            key=key,
        )
    ]
    if callable(weight_decay) or weight_decay > 0:
        parts.append(add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(scale_by_learning_rate(learning_rate))
    return chain(*parts)
