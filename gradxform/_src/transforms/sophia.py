"""Sophia: momentum divided by a clipped, occasionally refreshed Hessian diagonal."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype, lowest_dtype
from gradxform._src.transforms.adam_moments import quotient_like


class HutchinsonState(NamedTuple):
    """The state of ``hutchinson_estimator_diag_hessian`` (optax's).

    Attributes:
        key: the PRNG key that the next update splits.
    """

    key: jax.Array


def hutchinson_estimator_diag_hessian(
    random_seed: jax.Array | None = None,
) -> base.GradientTransformation:
    """Hutchinson's estimate of the Hessian diagonal (Hutchinson 1989; Bekas et al. 2007).

    ``u <- z * (H z)`` with ``z`` a Rademacher (+-1) vector, ``H z`` by forward-over-reverse
    differentiation of ``obj_fn`` (an extra argument to ``update``) at ``params``;
    ``E[z * Hz] = diag(H)``. Each call splits the key, one key per leaf, so the draws equal
    optax's for the same key. The signs are drawn in the params' lowest-precision float
    dtype.

    Args:
        random_seed: the PRNG key of the first draw; ``None`` (default) uses
            ``jax.random.PRNGKey(0)``.

    Returns:
        A ``GradientTransformation`` whose state is ``HutchinsonState(key)``; its
        ``update(updates, state, params, obj_fn=loss)`` ignores ``updates``, needs
        ``params`` and ``obj_fn`` (a scalar function of the params, twice differentiable)
        and raises ``ValueError`` without them.
    """

    def init(params):
        del params
        key = random_seed if random_seed is not None else jax.random.PRNGKey(0)
        return HutchinsonState(key=key)

    def update(updates, state, params=None, obj_fn=None, **extra):
        del updates, extra
        if params is None or obj_fn is None:
            raise ValueError(
                "hutchinson_estimator_diag_hessian needs params and obj_fn: "
                "call update(updates, state, params, obj_fn=loss)"
            )
        key, subkey = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(subkey, len(leaves))
        dtype = lowest_dtype(params)
        signs = jax.tree.unflatten(
            treedef,
            [
                jax.random.rademacher(k, jnp.shape(x), jnp.float32).astype(dtype)
                for k, x in zip(keys, leaves)
            ],
        )
        hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        return tree_ops.mul(hvp, signs), HutchinsonState(key=key)

    return base.GradientTransformation(init, update)


class SophiaState(NamedTuple):
    """The state of ``scale_by_sophia`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the gradient average ``m``, a tree like the params (in ``mu_dtype`` when
            given).
        nu: the Hessian-diagonal average ``h``, a tree like the params, in their dtypes.
        hessian_fn_state: the state of ``hessian_diagonal_fn``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    nu: Any
    hessian_fn_state: Any


def _print_win_rate(updates: Any, clip_threshold: Any, count: jax.Array, every: int) -> None:
    """Prints the fraction of coordinates below ``clip_threshold`` in magnitude (those a
    clip leaves alone) on steps divisible by ``every``; ``every = 0`` prints nothing, as
    optax documents."""
    if every == 0:
        return
    unclipped = jax.tree.reduce(
        lambda a, b: a + b,
        jax.tree.map(lambda u: jnp.sum(jnp.abs(u) < clip_threshold), updates),
    )
    rate = unclipped / tree_ops.size(updates)
    jax.lax.cond(
        count % every == 0,
        lambda: jax.debug.print("Sophia optimizer win rate: {}", rate),
        lambda: None,
    )


def scale_by_sophia(
    b1: jax.typing.ArrayLike = 0.965,
    b2: jax.typing.ArrayLike = 0.99,
    eps: jax.typing.ArrayLike = 1e-8,
    gamma: jax.typing.ArrayLike = 0.01,
    clip_threshold: jax.typing.ArrayLike | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: Any = None,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> base.GradientTransformation:
    """Sophia's scaling (Liu et al. 2024, "Sophia: A Scalable Stochastic Second-order
    Optimizer for Language Model Pre-training").

    ``m <- b1 m + (1 - b1) g``; ``u <- clip(m_hat / max(gamma h, eps), -c, c)`` with
    ``m_hat = m / (1 - b1^t)`` and ``c = clip_threshold`` (no clip when ``None``); on
    steps ``t = 1, 1 + k, 1 + 2k, ...`` (``k = update_interval``)
    ``h <- b2 h + (1 - b2) hat_h`` with ``hat_h`` from ``hessian_diagonal_fn``, after
    ``h`` is read. The state is optax's ``SophiaState(count, mu, nu, hessian_fn_state)``.

    Args:
      b1: Decay of the gradient average, in ``[0, 1)`` (default 0.965).
      b2: Decay of the Hessian-diagonal average per refresh, in ``[0, 1)`` (default
        0.99; per step it is about ``1 - (1 - b2) / update_interval``, 0.999 by default).
      eps: Floor of the denominator, ``>= 0`` (default 1e-8).
      gamma: Scale of the Hessian diagonal, ``> 0`` (default 0.01).
      clip_threshold: ``c > 0``, or None for no clip (default 1).
      update_interval: Steps between Hessian refreshes, a positive int (default 10).
      hessian_diagonal_fn: Estimator of the Hessian diagonal (default
        ``hutchinson_estimator_diag_hessian()``, which needs ``obj_fn=`` among
        ``update``'s extra arguments).
      mu_dtype: Storage dtype of ``m`` (default None: the params').
      verbose: Print the fraction of unclipped coordinates, the "win rate" (the
        authors keep it between 0.1 and 0.5; raise ``gamma`` if it is lower), when
        ``clip_threshold`` is set (default False).
      print_win_rate_every_n_steps: Print on the steps ``t`` divisible by it, a
        non-negative int (default 0: never, as optax documents 0 to turn it off).

    Returns:
      The ``GradientTransformation``; its state is optax's
      ``SophiaState(count, mu, nu, hessian_fn_state)``. ``update`` needs ``params`` and
      passes its extra arguments (``obj_fn=`` for the default estimator) to
      ``hessian_diagonal_fn``.
    """
    validate.adam(b1, b2, eps)
    validate.positive("gamma", gamma)
    if clip_threshold is not None:
        validate.positive("clip_threshold", clip_threshold)
    validate.positive_int("update_interval", update_interval)
    validate.int_at_least("print_win_rate_every_n_steps", print_win_rate_every_n_steps, 0)
    if hessian_diagonal_fn is None:
        hessian_diagonal_fn = hutchinson_estimator_diag_hessian()
    hessian_diagonal_fn = base.as_transformation(hessian_diagonal_fn)
    mu_dtype = canonicalize_dtype(mu_dtype)

    def init(params):
        base.check_float_leaves(params, "scale_by_sophia")
        base.check_accumulator_dtype(params, mu_dtype, "scale_by_sophia")
        return SophiaState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params, dtype=mu_dtype),
            nu=tree_ops.zeros_like(params),
            hessian_fn_state=hessian_diagonal_fn.init(params),
        )

    def update(updates, state, params=None, **extra):
        base.check_update_inputs("scale_by_sophia", updates, params, state.mu, "first moment")
        wide = jax.tree.map(numerics.upcast, updates)
        mu = tree_ops.update_moment(wide, state.mu, b1, 1)
        count = numerics.safe_increment(state.count)
        mu_hat = tree_ops.bias_correction(mu, b1, count)
        out = jax.tree.map(
            lambda m, h: m / jnp.maximum(gamma * numerics.upcast(h), eps), mu_hat, state.nu
        )
        if clip_threshold is not None:
            if verbose:
                _print_win_rate(out, clip_threshold, count, print_win_rate_every_n_steps)
            out = jax.tree.map(lambda u: jnp.clip(u, -clip_threshold, clip_threshold), out)
        out = quotient_like(updates, state.mu, lambda u: u, out)

        def refresh(hess_state, nu):
            estimate, hess_state = hessian_diagonal_fn.update(updates, hess_state, params, **extra)
            return hess_state, tree_ops.cast_like(tree_ops.update_moment(estimate, nu, b2, 1), nu)

        hessian_fn_state, nu = jax.lax.cond(
            state.count % update_interval == 0,
            refresh,
            lambda h, n: (h, n),
            state.hessian_fn_state,
            state.nu,
        )
        mu = tree_ops.cast_like(mu, state.mu)
        return out, SophiaState(count, mu, nu, hessian_fn_state)

    return base.GradientTransformation(init, update)
