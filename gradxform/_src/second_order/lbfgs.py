"""L-BFGS: a quasi-Newton preconditioner built from the last ``m`` secant pairs."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.combine import chain
from gradxform._src.dtypes import value_dtype
from gradxform._src.second_order.linesearch import scale_by_zoom_linesearch
from gradxform._src.transforms.scaling import scale, scale_by_learning_rate


class ScaleByLBFGSState(NamedTuple):
    """State of ``scale_by_lbfgs``.

    Attributes:
        count: updates so far; int32 scalar.
        params: the params of the previous call, a pytree like the params.
        updates: the updates (gradient) of the previous call, a pytree like the params.
        diff_params_memory: the secant vectors ``s_i``, each leaf stacked along a leading
            axis of size ``memory_size`` (a ring buffer).
        diff_updates_memory: the gradient differences ``y_i``, stacked as
            ``diff_params_memory``.
        weights_memory: ``rho_i = 1 / <y_i, s_i>`` (0 for an empty or degenerate slot); a
            ``(memory_size,)`` array of the params' real dtype.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; int32
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array


def _two_loop(updates, s_memory, y_memory, rhos, gamma, newest):
    """``H u`` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4).

    Slots are visited from the newest (``newest - 1``) to the oldest and back; an empty
    slot has ``rho = 0`` and ``s = y = 0`` and so leaves the vector unchanged.
    """
    memory_size = rhos.shape[0]
    order = (newest + jnp.arange(memory_size)) % memory_size
    take = lambda i: jax.tree.map(lambda x: x[i], (s_memory, y_memory))

    def backward(q, i):
        s, y = take(i)
        alpha = rhos[i] * tree_ops.real(tree_ops.vdot(s, q))
        return tree_ops.cast_like(tree_ops.add_scale(q, -alpha, y), q), alpha

    q, alphas = jax.lax.scan(backward, updates, order, reverse=True)
    r = tree_ops.scale(gamma, q)

    def forward(r, i_alpha):
        i, alpha = i_alpha
        s, y = take(i)
        beta = rhos[i] * tree_ops.real(tree_ops.vdot(y, r))
        return tree_ops.cast_like(tree_ops.add_scale(r, alpha - beta, s), r), None

    r, _ = jax.lax.scan(forward, r, (order, alphas))
    return r


def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> base.GradientTransformation:
    """L-BFGS direction ``u <- H_k u`` with ``H_k`` the limited-memory inverse-Hessian estimate.

    With ``s_i = w_{i+1} - w_i``, ``y_i = u_{i+1} - u_i`` (``u`` the incoming updates, the
    gradient) and ``rho_i = 1 / <y_i, s_i>`` for the last ``m = memory_size`` pairs:
    ``H_k = V_{k-1}^T ... V_{k-m}^T (gamma_k I) V_{k-m} ... V_{k-1} + sum rho_i s_i s_i^T``
    (nested), ``V_i = I - rho_i y_i s_i^T``, applied by the two-loop recursion.
    ``gamma_k = <s_{k-1}, y_{k-1}> / <y_{k-1}, y_{k-1}>`` with ``scale_init_precond``
    (``1`` without); on the first step ``gamma_0 = min(1, 1 / ||u_0||)``, so the first
    step is at most 1 long. A pair with ``<y, s> = 0`` gets weight 0.

    The memory is updated before the direction is computed, from the params and updates
    of this call and the previous one, so a line search after this member has already
    fixed the step the pair describes. The weights ``rho`` are kept in the params' real
    dtype (optax keeps them in JAX's default float dtype, so the two differ at float32
    round-off for float32 params under x64). ``update`` needs ``params``.

    Nocedal (1980), "Updating quasi-Newton matrices with limited storage"; Liu & Nocedal
    (1989), "On the limited memory BFGS method for large scale optimization"; Nocedal &
    Wright (2006), Algorithms 7.4 and 7.5.

    Args:
        memory_size: ``m``, the number of secant pairs kept; a positive int (default 10).
        scale_init_precond: scale the initial inverse Hessian by ``gamma_k`` (default True);
            False uses the identity.

    Returns:
        A ``GradientTransformation`` whose state is a ``ScaleByLBFGSState``.

    Raises:
        ValueError: for ``memory_size`` not a positive int, or an ``update`` without
            ``params``.
    """
    validate.positive_int("memory_size", memory_size)

    def init(params):
        stacked = lambda x: jnp.zeros((memory_size, *jnp.shape(x)), jnp.asarray(x).dtype)
        return ScaleByLBFGSState(
            count=jnp.zeros([], jnp.int32),
            params=tree_ops.zeros_like(params),
            updates=tree_ops.zeros_like(params),
            diff_params_memory=jax.tree.map(stacked, params),
            diff_updates_memory=jax.tree.map(stacked, params),
            weights_memory=jnp.zeros(memory_size, value_dtype(params)),
        )

    def update(updates, state, params=None, **extra):
        del extra
        base.check_update_inputs(
            "scale_by_lbfgs", updates, params, state.updates, "previous updates"
        )
        first = state.count == 0
        newest = state.count % memory_size
        slot = (state.count - 1) % memory_size

        s = tree_ops.sub(params, state.params)
        y = tree_ops.sub(updates, state.updates)
        sy = tree_ops.real(tree_ops.vdot(y, s))
        rho = jnp.where(sy == 0.0, 0.0, 1.0 / sy)
        # There is no pair before the first step: store zeros, which the recursion skips.
        s, y, rho = jax.tree.map(lambda x: jnp.where(first, jnp.zeros_like(x), x), (s, y, rho))
        store = lambda memory, x: memory.at[slot].set(x)
        s_memory = jax.tree.map(store, state.diff_params_memory, s)
        y_memory = jax.tree.map(store, state.diff_updates_memory, y)
        rhos = store(state.weights_memory, rho.astype(state.weights_memory.dtype))

        if scale_init_precond:
            yy = tree_ops.norm(y, squared=True)
            gamma = jnp.where(yy > 0.0, tree_ops.real(tree_ops.vdot(y, s)) / yy, 1.0)
            first_gamma = jnp.minimum(1.0, 1.0 / tree_ops.norm(jax.lax.stop_gradient(updates)))
            gamma = jnp.where(first, first_gamma, gamma)
        else:
            gamma = 1.0

        direction = _two_loop(updates, s_memory, y_memory, rhos, gamma, newest)
        return direction, ScaleByLBFGSState(
            count=numerics.safe_increment(state.count),
            params=params,
            updates=updates,
            diff_params_memory=s_memory,
            diff_updates_memory=y_memory,
            weights_memory=rhos,
        )

    return base.GradientTransformation(init, update)


_DEFAULT_LINESEARCH = scale_by_zoom_linesearch(
    max_linesearch_steps=20, initial_guess_strategy="one"
)


def lbfgs(
    learning_rate: base.ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = _DEFAULT_LINESEARCH,
) -> base.GradientTransformation:
    """L-BFGS with a line search: ``w <- w - eta_k lr H_k grad f(w)``.

    ``chain(scale_by_lbfgs(memory_size, scale_init_precond), scale(-1) or
    scale_by_learning_rate(learning_rate), linesearch)``; ``eta_k`` comes from
    ``linesearch``, by default the strong Wolfe conditions that keep ``H_k`` positive
    definite. ``update`` needs ``params`` and, for the line search, ``value=``, ``grad=``
    and ``value_fn=``; use ``value_and_grad_from_state(f)`` to reuse the search's last
    evaluation.

    Liu & Nocedal (1989); Nocedal & Wright (2006), Algorithm 7.5.

    Args:
        learning_rate: a fixed factor on the step, a number or a schedule; None (default)
            for 1, leaving the step length to the line search.
        memory_size: the number of secant pairs kept; a positive int (default 10).
        scale_init_precond: scale the initial inverse Hessian by
            ``<s, y> / <y, y>`` (default True).
        linesearch: the transformation that scales the direction (default
            ``scale_by_zoom_linesearch(max_linesearch_steps=20,
            initial_guess_strategy='one')``); None takes the unit step.

    Returns:
        A ``GradientTransformation``; its state is the tuple of the states of
        ``scale_by_lbfgs`` (``ScaleByLBFGSState``), the step scaling and the line search
        (``ScaleByZoomLinesearchState`` by default).

    Examples:
        >>> f = lambda w: jnp.sum(jnp.array([1.0, 10.0]) * (w - jnp.array([1.0, 2.0])) ** 2)
        >>> opt = gx.lbfgs()
        >>> value_and_grad = gx.value_and_grad_from_state(f)
        >>> @jax.jit
        ... def step(w, state):
        ...     value, grad = value_and_grad(w, state=state)
        ...     updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
        ...     return gx.apply_updates(w, updates), state
        >>> w = jnp.zeros(2)
        >>> state = opt.init(w)
        >>> for _ in range(5):
        ...     w, state = step(w, state)
        >>> print(np.asarray(w).round(4))
        [1. 2.]
    """
    step = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    return chain(
        scale_by_lbfgs(memory_size, scale_init_precond),
        step,
        base.identity() if linesearch is None else linesearch,
    )
