"""Newton's method on pytrees: a dense Cholesky solve, or conjugate gradients on
Hessian-vector products, with the textbook fixes for points where the Hessian is not
positive definite."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain
from gradxform._src.second_order.fn_kwargs import kwargs_for
from gradxform._src.transforms.scaling import scale_by_learning_rate


class ScaleByNewtonState(NamedTuple):
    """State of ``scale_by_newton``.

    Attributes:
        count: updates so far; int32 scalar.
        negative_curvature: whether at the last step ``H + damping I`` was found not
            positive definite (a failed Cholesky factorisation, or a CG direction of
            non-positive curvature); bool scalar.
        num_cg_steps: Hessian-vector products used by the last CG solve (0 for the dense
            solver); int32 scalar.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; int32
    negative_curvature: jax.Array  # bool
    num_cg_steps: jax.Array  # int32


_SOLVERS = ("cholesky", "cg")
_NONCONVEX = ("abs", "shift", "none")


def _check_real(tree: Any) -> None:
    for leaf in jax.tree.leaves(tree):
        if jnp.iscomplexobj(leaf):
            raise TypeError("scale_by_newton supports real parameters only")


def _eigen_abs_solve(hessian, g, damping):
    """``Q diag(1 / (|lambda| + damping)) Q^T g``; eigenvalues at round-off level (relative
    to the largest) are dropped, as in a pseudo-inverse, instead of giving a huge step."""
    eigenvalues, vectors = jnp.linalg.eigh(hessian)
    modified = jnp.abs(eigenvalues) + damping
    cutoff = modified.shape[0] * jnp.finfo(modified.dtype).eps * jnp.max(modified)
    inverse = jnp.where(modified > cutoff, 1.0 / jnp.where(modified > cutoff, modified, 1.0), 0.0)
    return vectors @ (inverse * (vectors.T @ g))


def _shifted_cholesky_solve(damped, g, initial_shift):
    """Nocedal & Wright, Algorithm 3.3: factorise ``A + tau I`` for ``tau = tau_0, 2 tau_0,
    ...`` until it succeeds; ``tau_0 = beta`` if ``min a_ii > 0`` (``A`` itself is known to
    have failed), else ``beta - min a_ii``."""
    n = damped.shape[0]
    eye = jnp.eye(n, dtype=damped.dtype)
    min_diag = jnp.min(jnp.diag(damped))
    tau0 = jnp.where(min_diag > 0, initial_shift, initial_shift - min_diag).astype(damped.dtype)

    def attempt(tau):
        factor = jnp.linalg.cholesky(damped + tau * eye)
        return factor, jnp.all(jnp.isfinite(factor))

    def grow(carry):
        tau, _, _, tries = carry
        tau = jnp.maximum(2.0 * tau, initial_shift).astype(damped.dtype)
        return (tau, *attempt(tau), tries + 1)

    # 2^200 beta exceeds any finite float64 Hessian's spectrum: the loop always ends.
    _, factor, _, _ = jax.lax.while_loop(
        lambda c: ~c[2] & (c[3] < 200), grow, (tau0, *attempt(tau0), 0)
    )
    return jax.scipy.linalg.cho_solve((factor, True), g)


def scale_by_newton(
    damping: jax.typing.ArrayLike = 0.0,
    hessian_fn: Callable[..., jax.Array] | None = None,
    solver: str = "cholesky",
    nonconvex: str = "abs",
    initial_shift: jax.typing.ArrayLike = 1e-3,
    cg_tol: jax.typing.ArrayLike | None = 1e-10,
    cg_maxiter: int | None = None,
) -> base.GradientTransformation:
    """The Newton direction ``u <- (H + damping I)^{-1} g``, ``g`` the incoming updates
    (the gradient: place this member first) and ``H`` the Hessian at ``params``.

    Curvature comes from, in this order: ``hessian_fn(params, **kw)`` given here, returning
    the ``(n, n)`` Hessian in the order of ``jax.flatten_util.ravel_pytree(params)``; else
    an ``hvp_fn(params, tangents, **kw)`` keyword of ``update`` returning ``H v`` as a
    pytree; else a ``value_fn(params, **kw)`` keyword of ``update``, differentiated twice
    (``jax.hessian``, or forward-over-reverse products for CG). ``**kw`` are the other
    ``update`` keyword arguments that the function names (e.g. data batches).

    ``solver='cholesky'`` forms the dense ``H`` (``n x n`` for ``n`` parameters) and solves
    by Cholesky. Where ``H + damping I`` is not positive definite the pure Newton step
    points to a saddle or a maximum, and ``nonconvex`` selects the textbook repair:

    * ``'abs'`` (default): ``H = Q diag(lambda) Q^T`` is replaced by ``Q diag(|lambda|) Q^T``,
      which keeps the step length along each eigenvector but turns ascent into descent
      (Gill, Murray & Wright (1981), "Practical Optimization", section 4.4.2; Dauphin et
      al. (2014), "saddle-free Newton"). Eigenvalues below ``n eps max|lambda|`` are dropped.
    * ``'shift'``: ``H + (damping + tau) I`` with the smallest ``tau`` of
      ``tau_0, 2 tau_0, 4 tau_0, ...`` that factorises, ``tau_0 = initial_shift`` or
      ``initial_shift - min_i H_ii`` (Nocedal & Wright (2006), Algorithm 3.3).
    * ``'none'``: the unmodified step, by an LU solve.

    ``damping`` adds ``damping I`` in every case (Levenberg (1944); Marquardt (1963)),
    shortening the step towards ``g / damping``.

    ``solver='cg'`` is matrix-free (Newton-CG, Nocedal & Wright, Algorithm 7.1): conjugate
    gradients on ``v -> H v + damping v`` until ``||r|| <= cg_tol ||g||`` (``cg_tol=None``:
    the forcing sequence ``min(0.5, sqrt(||g||)) ||g||``, which gives superlinear
    convergence with inexact solves), at most ``cg_maxiter`` products (default ``20 n``, as
    scipy). A direction ``p`` with ``p^T H p <= 0`` stops CG: the iterate so far is
    returned, or ``g`` itself (steepest descent) if it is the first direction.
    ``nonconvex`` does not apply to CG.

    On a strictly convex quadratic, ``newton()`` (learning rate 1) reaches the minimiser in
    one step. Far from a minimiser combine with a line search:
    ``chain(newton(), scale_by_backtracking_linesearch(20))``.
    Real parameters only. ``update`` needs ``params``.

    Args:
        damping: added to the Hessian's diagonal; ``>= 0`` (default 0).
        hessian_fn: a function ``(params, **kw) -> (n, n)`` Hessian, in the order of
            ``ravel_pytree(params)``; None (default) to use the ``hvp_fn=`` or ``value_fn=``
            keyword of ``update``.
        solver: ``'cholesky'`` (default, dense) or ``'cg'`` (matrix-free).
        nonconvex: the repair where ``H + damping I`` is not positive definite, for the
            dense solver: ``'abs'`` (default), ``'shift'`` or ``'none'``.
        initial_shift: ``tau_0`` of ``nonconvex='shift'``; positive (default 1e-3).
        cg_tol: the relative residual at which CG stops; ``>= 0``, or None for the forcing
            sequence (default 1e-10).
        cg_maxiter: the most Hessian-vector products per CG solve; a positive int, or None
            (default) for ``20 n``.

    Returns:
        A ``GradientTransformation`` whose state is a ``ScaleByNewtonState``.

    Raises:
        ValueError: for a hyperparameter outside its range, or an ``update`` without
            ``params`` or a source of curvature.
        TypeError: if ``hessian_fn`` is given and not callable.
    """
    validate.non_negative("damping", damping)
    validate.one_of("solver", solver, _SOLVERS)
    validate.one_of("nonconvex", nonconvex, _NONCONVEX)
    validate.positive("initial_shift", initial_shift)
    if cg_tol is not None:
        validate.non_negative("cg_tol", cg_tol)
    if cg_maxiter is not None:
        validate.positive_int("cg_maxiter", cg_maxiter)
    if hessian_fn is not None and not callable(hessian_fn):
        raise TypeError(f"hessian_fn must be callable, got {type(hessian_fn).__name__}")

    def init(params):
        del params
        return ScaleByNewtonState(
            count=jnp.zeros([], jnp.int32),
            negative_curvature=jnp.asarray(False),
            num_cg_steps=jnp.zeros([], jnp.int32),
        )

    def dense_hessian(params, value_fn, hvp_fn, extra):
        flat, unravel = ravel_pytree(params)
        n = flat.shape[0]
        if hessian_fn is not None:
            hessian = jnp.reshape(hessian_fn(params, **kwargs_for(hessian_fn, extra)), (n, n))
        elif hvp_fn is not None:
            hvp = functools.partial(hvp_fn, **kwargs_for(hvp_fn, extra))
            column = lambda e: ravel_pytree(hvp(params, unravel(e)))[0]
            hessian = jax.vmap(column)(jnp.eye(n, dtype=flat.dtype))
        else:
            objective = functools.partial(value_fn, **kwargs_for(value_fn, extra))
            hessian = jax.hessian(lambda x: objective(unravel(x)))(flat)
        # Automatic differentiation leaves round-off asymmetry; the solvers assume symmetry.
        return 0.5 * (hessian + hessian.T)

    def hessian_product(params, value_fn, hvp_fn, extra):
        if hessian_fn is not None:
            flat, unravel = ravel_pytree(params)
            hessian = jnp.reshape(
                hessian_fn(params, **kwargs_for(hessian_fn, extra)), (flat.size, flat.size)
            )
            return lambda v: unravel(hessian @ ravel_pytree(v)[0])
        if hvp_fn is not None:
            hvp = functools.partial(hvp_fn, **kwargs_for(hvp_fn, extra))
            return lambda v: hvp(params, v)
        objective = functools.partial(value_fn, **kwargs_for(value_fn, extra))
        # Linearise the gradient once; each product is then one forward pass through it.
        _, product = jax.linearize(jax.grad(objective), params)
        return product

    def solve_dense(g_tree, hessian):
        g, unravel = ravel_pytree(g_tree)
        hessian = hessian.astype(g.dtype)
        damped = hessian + damping * jnp.eye(g.shape[0], dtype=g.dtype)
        factor = jnp.linalg.cholesky(damped)
        positive_definite = jnp.all(jnp.isfinite(factor))
        if nonconvex == "abs":
            repair = lambda: _eigen_abs_solve(hessian, g, damping)
        elif nonconvex == "shift":
            repair = lambda: _shifted_cholesky_solve(damped, g, initial_shift)
        else:
            repair = lambda: jnp.linalg.solve(damped, g)
        direction = jax.lax.cond(
            positive_definite,
            lambda: jax.scipy.linalg.cho_solve((factor, True), g),
            repair,
        )
        return unravel(direction), ~positive_definite

    def solve_cg(g, product):
        n = tree_ops.size(g)
        maxiter = 20 * n if cg_maxiter is None else cg_maxiter
        g_norm = tree_ops.norm(g)
        if cg_tol is None:
            tolerance = jnp.minimum(0.5, jnp.sqrt(g_norm)) * g_norm
        else:
            tolerance = cg_tol * g_norm

        def matvec(v):
            return tree_ops.add_scale(tree_ops.cast_like(product(v), v), damping, v)

        def keep_going(carry):
            steps, _, _, _, rr, stop = carry
            return ~stop & (steps < maxiter) & (jnp.sqrt(rr) > tolerance)

        def cg_step(carry):
            steps, x, r, p, rr, _ = carry
            hp = matvec(p)
            curvature = tree_ops.real(tree_ops.vdot(p, hp))
            negative = curvature <= 0.0
            alpha = rr / jnp.where(negative, 1.0, curvature)
            x_next = tree_ops.add_scale(x, alpha, p)
            r_next = tree_ops.add_scale(r, -alpha, hp)
            rr_next = tree_ops.real(tree_ops.vdot(r_next, r_next))
            p_next = tree_ops.add_scale(r_next, rr_next / rr, p)
            # Non-positive curvature: stop with the iterate so far, or with the steepest
            # descent direction if no iterate has been made (Algorithm 7.1).
            x_stop = tree_ops.where(steps == 0, g, x)
            x, r, p, rr = tree_ops.where(
                negative, (x_stop, r, p, rr), (x_next, r_next, p_next, rr_next)
            )
            return steps + 1, x, r, p, rr, negative

        rr0 = tree_ops.real(tree_ops.vdot(g, g))
        carry = (jnp.zeros([], jnp.int32), tree_ops.zeros_like(g), g, g, rr0, jnp.asarray(False))
        steps, x, _, _, _, negative = jax.lax.while_loop(keep_going, cg_step, carry)
        return x, negative, steps

    def update(updates, state, params=None, *, value_fn=None, hvp_fn=None, **extra):
        if params is None:
            raise ValueError("scale_by_newton needs params: call update(g, state, params)")
        if hessian_fn is None and hvp_fn is None and value_fn is None:
            raise ValueError(
                "scale_by_newton needs curvature: pass value_fn= or hvp_fn= to update, or "
                "hessian_fn= to scale_by_newton"
            )
        base.check_same_structure(updates, params, "params")
        _check_real(updates)
        if solver == "cholesky":
            hessian = dense_hessian(params, value_fn, hvp_fn, extra)
            direction, negative = solve_dense(updates, hessian)
            steps = jnp.zeros([], jnp.int32)
        else:
            product = hessian_product(params, value_fn, hvp_fn, extra)
            direction, negative, steps = solve_cg(updates, product)
        direction = tree_ops.cast_like(direction, updates)
        return direction, ScaleByNewtonState(
            count=numerics.safe_increment(state.count),
            negative_curvature=negative,
            num_cg_steps=steps.astype(jnp.int32),
        )

    return base.GradientTransformation(init, update)


def newton(
    learning_rate: base.ScalarOrSchedule = 1.0,
    damping: jax.typing.ArrayLike = 0.0,
    hessian_fn: Callable[..., jax.Array] | None = None,
    solver: str = "cholesky",
    nonconvex: str = "abs",
    initial_shift: jax.typing.ArrayLike = 1e-3,
    cg_tol: jax.typing.ArrayLike | None = 1e-10,
    cg_maxiter: int | None = None,
) -> base.GradientTransformation:
    """Newton's method: ``w <- w - lr (H + damping I)^{-1} grad f(w)``.

    ``chain(scale_by_newton(damping, hessian_fn, solver, nonconvex, initial_shift, cg_tol,
    cg_maxiter), scale_by_learning_rate(learning_rate))``; see ``scale_by_newton`` for the
    curvature sources (``value_fn=`` or ``hvp_fn=`` keywords of ``update``, or
    ``hessian_fn``), the solvers and the non-convex repairs. With ``lr = 1`` it minimises a
    strictly convex quadratic in one step; damped (``damping > 0``) it is
    Levenberg-Marquardt.

    Nocedal & Wright (2006), "Numerical Optimization", chapters 3.3-3.4 and 7.1.

    Args:
        learning_rate: the factor on the Newton step, a number or a schedule (default 1).
        damping: added to the Hessian's diagonal; ``>= 0`` (default 0).
        hessian_fn: a function ``(params, **kw) -> (n, n)`` Hessian; None (default) to use
            the ``hvp_fn=`` or ``value_fn=`` keyword of ``update``.
        solver: ``'cholesky'`` (default) or ``'cg'``.
        nonconvex: ``'abs'`` (default), ``'shift'`` or ``'none'``; see ``scale_by_newton``.
        initial_shift: the first shift of ``nonconvex='shift'``; positive (default 1e-3).
        cg_tol: the relative residual at which CG stops; ``>= 0`` or None (default 1e-10).
        cg_maxiter: the most Hessian-vector products per CG solve; a positive int or None
            (default, ``20 n``).

    Returns:
        A ``GradientTransformation``; its state is the tuple of ``ScaleByNewtonState`` and
        the learning-rate scaling's state.
    """
    return chain(
        scale_by_newton(damping, hessian_fn, solver, nonconvex, initial_shift, cg_tol, cg_maxiter),
        scale_by_learning_rate(learning_rate),
    )
