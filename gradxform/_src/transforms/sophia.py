"""Sophia: momentum divided by a clipped, occasionally refreshed Hessian diagonal."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, validate
from gradxform._src.counting import shared_step
from gradxform._src.dtypes import lowest_dtype
from gradxform._src.transforms.accumulation import ema
from gradxform._src.transforms.adam_variants import _quotient
from gradxform._src.transforms.clipping import clip


class HutchinsonState(NamedTuple):
    key: jax.Array


def hutchinson_estimator_diag_hessian(
    random_seed: jax.Array | None = None,
) -> base.GradientTransformation:
    """Hutchinson's estimate of the Hessian diagonal (Hutchinson 1989; Bekas et al. 2007).

    ``u <- z * (H z)`` with ``z`` a Rademacher (+-1) vector, ``H z`` by forward-over-reverse
    differentiation of ``obj_fn`` (an extra argument to ``update``) at ``params``;
    ``E[z * Hz] = diag(H)``. ``random_seed`` is a PRNG key (default ``PRNGKey(0)``); each
    call splits it, one key per leaf, so the draws equal optax's for the same key.
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
    """The curvature half of Sophia's state; ``m`` and the step live beside it."""

    nu: Any  # average of Hessian-diagonal estimates
    hessian_fn_state: Any


def _curvature(
    b2: Any, eps: Any, gamma: Any, update_interval: int, hessian_diagonal_fn: Any
) -> base.GradientTransformation:
    """Sophia's denominator ``max(gamma h, eps)``; on steps ``t = 1, 1 + k, 1 + 2k, ...``
    (``k = update_interval``) ``h <- b2 h + (1 - b2) hat_h`` after ``h`` is read."""

    def init(params):
        return SophiaState(
            nu=tree_ops.zeros_like(params), hessian_fn_state=hessian_diagonal_fn.init(params)
        )

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("scale_by_sophia needs params: call update(updates, state, params)")
        base.check_same_structure(updates, state.nu, "Hessian estimate")
        out = jax.tree.map(lambda h: jnp.maximum(gamma * h, eps), state.nu)

        def refresh(hess_state, nu):
            estimate, hess_state = hessian_diagonal_fn.update(updates, hess_state, params, **extra)
            return hess_state, tree_ops.cast_like(tree_ops.update_moment(estimate, nu, b2, 1), nu)

        earlier = shared_step(extra, "scale_by_sophia") - 1
        hessian_fn_state, nu = jax.lax.cond(
            earlier % update_interval == 0,
            refresh,
            lambda h, n: (h, n),
            state.hessian_fn_state,
            state.nu,
        )
        return out, SophiaState(nu=nu, hessian_fn_state=hessian_fn_state)

    return base.GradientTransformation(init, update)


def _print_win_rate(clip_threshold: Any, every: int) -> base.GradientTransformation:
    """Prints the fraction of coordinates below ``clip_threshold`` in magnitude (those a
    clip leaves alone) on steps divisible by ``every``; the updates pass unchanged."""

    def update(updates, state, params=None, **extra):
        del params
        count = shared_step(extra, "scale_by_sophia")
        unclipped = jax.tree.reduce(
            lambda a, b: a + b,
            jax.tree.map(lambda u: jnp.sum(jnp.abs(u) < clip_threshold), updates),
        )
        jax.lax.cond(
            count % max(every, 1) == 0,
            lambda: jax.debug.print(
                "Sophia optimizer win rate: {}", unclipped / tree_ops.size(updates)
            ),
            lambda: None,
        )
        return updates, state

    return base.GradientTransformation(lambda params: base.EmptyState(), update)


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
    *,
    shared_count: bool = False,
) -> base.GradientTransformation:
    """Sophia's scaling (Liu et al. 2024, "Sophia: A Scalable Stochastic Second-order
    Optimizer for Language Model Pre-training").

    ``m <- b1 m + (1 - b1) g``; ``u <- clip(m_hat / max(gamma h, eps), -c, c)`` with
    ``m_hat = m / (1 - b1^t)`` and ``c = clip_threshold`` (no clip when ``None``); every
    ``update_interval`` steps (from the first) ``h <- b2 h + (1 - b2) hat_h`` with ``hat_h``
    from ``hessian_diagonal_fn`` (default: ``hutchinson_estimator_diag_hessian()``, which
    needs ``obj_fn=`` in ``update``'s extra arguments). ``h`` is read before its refresh.
    Defaults ``b1=0.965, b2=0.99, eps=1e-8, gamma=0.01, clip_threshold=1,
    update_interval=10``. With ``verbose``, prints the fraction of unclipped coordinates
    every ``print_win_rate_every_n_steps`` steps.

    Written as Adam is: ``with_count(divide(ema(b1), max(gamma h, eps)))``, then the clip;
    ``shared_count=True``: ``t`` comes from an enclosing ``with_count``.
    """
    validate.decay("b1", b1)
    validate.decay("b2", b2)
    validate.non_negative("eps", eps)
    validate.positive("gamma", gamma)
    if clip_threshold is not None:
        validate.positive("clip_threshold", clip_threshold)
    validate.positive_int("update_interval", update_interval)
    if hessian_diagonal_fn is None:
        hessian_diagonal_fn = hutchinson_estimator_diag_hessian()
    hessian_diagonal_fn = base.as_transformation(hessian_diagonal_fn)
    first = ema(b1, accumulator_dtype=mu_dtype, shared_count=True)
    second = _curvature(b2, eps, gamma, update_interval, hessian_diagonal_fn)
    clipping = []
    if clip_threshold is not None:
        if verbose:
            clipping.append(_print_win_rate(clip_threshold, print_win_rate_every_n_steps))
        clipping.append(clip(clip_threshold))
    return _quotient("scale_by_sophia", first, second, *clipping, shared_count=shared_count)
