"""Line searches: scale a descent direction by a step size found by evaluating the objective.

Both searches are transformations placed after the member that produces the direction
``u`` (e.g. ``chain(sgd(1.0), scale_by_backtracking_linesearch(15))``); their ``update``
takes the keyword arguments ``value=f(w)``, ``grad=grad f(w)`` and ``value_fn=f``, and
passes to ``value_fn`` the other keyword arguments that ``value_fn`` names (data batches).
Keyword arguments that ``value_fn`` does not name are ignored (optax raises on them).
The whole search is a ``jax.lax.while_loop``: it runs under ``jit``.

References: Nocedal & Wright (2006), "Numerical Optimization", 2nd ed., chapter 3
(Armijo condition (3.4), strong Wolfe conditions (3.7), Algorithms 3.5 and 3.6);
Hager & Zhang (2006), "Algorithm 851: CG_DESCENT", approximate Wolfe conditions (23).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import value_dtype
from gradxform._src.second_order.fn_kwargs import kwargs_for


def _check_steps(name: str, value: Any) -> None:
    """A number of evaluations: an int ``>= 0`` (a traced array passes unchecked)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    elif not isinstance(value, jax.Array):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _nan_to_inf(error: jax.Array) -> jax.Array:
    """A violation in ``[0, inf]``: NaN (a step out of the domain) counts as infinite."""
    error = jnp.maximum(error, 0.0)
    return jnp.where(jnp.isnan(error), jnp.inf, error)


def _first_state(state_type: Any, info_type: Any, params: Any, grad: Any) -> Any:
    """A search's state before its first step: ``eta = 1``, value and every error ``+inf``,
    no evaluation made; scalars in the params' real dtype."""
    dtype = value_dtype(params)
    errors = {f: jnp.asarray(jnp.inf, dtype) for f in info_type._fields if f.endswith("_error")}
    return state_type(
        learning_rate=jnp.asarray(1.0, dtype),
        value=jnp.asarray(jnp.inf, dtype),
        grad=grad,
        info=info_type(num_linesearch_steps=jnp.zeros([], jnp.int32), **errors),
    )


# ------------------------------------------------------------------------------------------
# Backtracking (Armijo)
# ------------------------------------------------------------------------------------------


class BacktrackingLinesearchInfo(NamedTuple):
    """Diagnostics of ``scale_by_backtracking_linesearch``'s last search.

    Attributes:
        num_linesearch_steps: the objective evaluations made; int32 scalar.
        decrease_error: the Armijo violation left at the accepted step, 0 on success; a
            scalar of the value dtype.
    """

    num_linesearch_steps: jax.Array  # int32
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of ``scale_by_backtracking_linesearch``.

    Attributes:
        learning_rate: the accepted step size ``eta`` (1 at the start); a scalar of the real
            dtype of the params.
        value: ``f`` at the accepted point (``+inf`` at the start).
        grad: the gradient at the accepted point (zeros at the start), a pytree like the
            params; None unless ``store_grad``.
        info: a ``BacktrackingLinesearchInfo``.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Any  # None unless store_grad
    info: BacktrackingLinesearchInfo


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: jax.typing.ArrayLike = 1e-4,
    decrease_factor: jax.typing.ArrayLike = 0.8,
    increase_factor: jax.typing.ArrayLike = 1.5,
    max_learning_rate: jax.typing.ArrayLike = 1.0,
    atol: jax.typing.ArrayLike = 0.0,
    rtol: jax.typing.ArrayLike = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> base.GradientTransformation:
    """Backtracking line search for the Armijo sufficient-decrease condition.

    Finds ``eta`` with ``f(w + eta u) <= (1 + rtol) f(w) + eta c <u, grad f(w)> + atol``
    (``c = slope_rtol``). The first trial is ``eta_0 = min(increase_factor * eta_prev,
    max_learning_rate)`` (``eta_prev = 1`` initially); each failure multiplies ``eta`` by
    ``decrease_factor``, for at most ``max_backtracking_steps`` reductions. Returns
    ``u <- eta u``; if every trial gave NaN or ``inf``, ``eta = 0`` (no step).
    ``u`` must be a descent direction (``<u, grad f(w)> < 0``), e.g. ``-grad``.

    With ``store_grad`` the gradient at the accepted point is computed (by transposing the
    linearisation used for the value) and kept in the state with the value, so that
    ``value_and_grad_from_state`` can reuse both at the next iteration. ``update`` needs
    ``params`` and the keywords ``value=f(w)``, ``grad=grad f(w)`` and ``value_fn=f``.

    Armijo (1966), "Minimization of functions having Lipschitz continuous first partial
    derivatives"; Nocedal & Wright (2006), section 3.1; Vaswani et al. (2019), "Painless
    Stochastic Gradient".

    Args:
        max_backtracking_steps: the most reductions of ``eta`` per search; an int ``>= 0``.
        slope_rtol: ``c``, the fraction of the linear decrease required; in ``[0, 1)``
            (default 1e-4, optax's).
        decrease_factor: the factor ``eta`` is multiplied by after a failed trial; in the
            open interval ``(0, 1)`` (default 0.8).
        increase_factor: the factor on the previous step that gives the first trial;
            ``>= 1`` (default 1.5).
        max_learning_rate: the cap of the first trial; positive (default 1).
        atol: absolute slack of the decrease condition; ``>= 0`` (default 0).
        rtol: relative slack of the decrease condition; ``>= 0`` (default 0).
        store_grad: keep the gradient at the accepted point in the state (default False).
        verbose: print a note when the search fails (default False).

    Returns:
        A ``GradientTransformation`` whose state is a ``ScaleByBacktrackingLinesearchState``.

    Raises:
        ValueError: for a hyperparameter outside its range, or an ``update`` without
            ``params``.
        TypeError: if ``max_backtracking_steps`` is not an int.
    """
    _check_steps("max_backtracking_steps", max_backtracking_steps)
    validate.in_range("slope_rtol", slope_rtol, 0.0, 1.0, high_open=True)
    validate.in_range("decrease_factor", decrease_factor, 0.0, 1.0, low_open=True, high_open=True)
    validate.in_range("increase_factor", increase_factor, 1.0)
    validate.positive("max_learning_rate", max_learning_rate)
    validate.non_negative("atol", atol)
    validate.non_negative("rtol", rtol)

    def init(params):
        return _first_state(
            ScaleByBacktrackingLinesearchState,
            BacktrackingLinesearchInfo,
            params,
            tree_ops.zeros_like(params) if store_grad else None,
        )

    def update(updates, state, params=None, *, value, grad, value_fn, **extra):
        if params is None:
            raise ValueError("scale_by_backtracking_linesearch needs params")
        if store_grad:
            base.check_same_structure(updates, state.grad, "stored gradient")
        objective = functools.partial(value_fn, **kwargs_for(value_fn, extra))
        # The dtype init chose, from the params: state.learning_rate may be a plain float
        # written by tree.set.
        dtype = value_dtype(params)
        value = jnp.asarray(value, dtype)
        # d/d eta f(w + eta u) at 0; negative for a descent direction.
        slope = tree_ops.real(tree_ops.vdot(updates, tree_ops.conj(grad)))

        def violation(stepsize, new_value):
            excess = new_value - (1.0 + rtol) * value - stepsize * slope_rtol * slope
            return _nan_to_inf(excess).astype(dtype)

        def keep_searching(carry):
            _, _, _, error, tries = carry
            return (~(error <= atol)) & (tries <= max_backtracking_steps)

        def try_step(carry):
            stepsize, _, new_grad, _, tries = carry
            stepsize = jnp.where(tries > 0, decrease_factor * stepsize, stepsize).astype(dtype)
            candidate = tree_ops.add_scale(params, stepsize, updates)
            if store_grad:
                new_value, pullback = jax.vjp(objective, candidate)
                error = violation(stepsize, new_value)
                # The reverse pass is paid only once, at the point the search returns.
                last = (error <= atol) | (tries == max_backtracking_steps)
                new_grad = jax.lax.cond(
                    last,
                    lambda: tree_ops.cast_like(pullback(jnp.ones_like(new_value))[0], new_grad),
                    lambda: new_grad,
                )
            else:
                new_value = objective(candidate)
                error = violation(stepsize, new_value)
            return stepsize, jnp.asarray(new_value, dtype), new_grad, error, tries + 1

        previous = jnp.asarray(state.learning_rate, dtype)
        first_try = jnp.minimum(increase_factor * previous, max_learning_rate)
        carry = (
            jnp.asarray(first_try, dtype),
            value,
            tree_ops.zeros_like(params) if store_grad else None,
            jnp.asarray(jnp.inf, dtype),
            jnp.zeros([], jnp.int32),
        )
        stepsize, new_value, new_grad, error, tries = jax.lax.while_loop(
            keep_searching, try_step, carry
        )
        # Only NaN/inf everywhere leaves an infinite error: then do not move at all.
        stepsize = jnp.where(jnp.isinf(error), jnp.zeros_like(stepsize), stepsize)
        if verbose:
            _print_if(
                error > atol,
                "gradxform.scale_by_backtracking_linesearch: no step size with sufficient "
                "decrease found; value {value}, slope {slope}, step size {stepsize}, "
                "decrease error {error}",
                value=value,
                slope=slope,
                stepsize=stepsize,
                error=error,
            )
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=stepsize,
            value=new_value,
            grad=new_grad,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=tries, decrease_error=error),
        )
        return tree_ops.scale(stepsize, updates), new_state

    return base.GradientTransformation(init, update)


# ------------------------------------------------------------------------------------------
# Zoom (strong Wolfe)
# ------------------------------------------------------------------------------------------


class ZoomLinesearchInfo(NamedTuple):
    """Diagnostics of ``scale_by_zoom_linesearch``'s last search.

    Attributes:
        num_linesearch_steps: the objective evaluations made; int32 scalar.
        decrease_error: the violation of the sufficient-decrease condition, 0 on success.
        curvature_error: the violation of the curvature condition, 0 on success.
    """

    num_linesearch_steps: jax.Array  # int32
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """State of ``scale_by_zoom_linesearch``.

    Attributes:
        learning_rate: as in ``ScaleByBacktrackingLinesearchState``.
        value: as in ``ScaleByBacktrackingLinesearchState``.
        grad: the gradient at the accepted point (zeros at the start), a pytree like the
            params.
        info: a ``ZoomLinesearchInfo``.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    info: ZoomLinesearchInfo


class _Point(NamedTuple):
    """A step size on the line with ``phi(eta) = f(w + eta u)`` and ``phi'(eta)``."""

    stepsize: jax.Array
    value: jax.Array
    slope: jax.Array


class _ZoomSearch(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; evaluations so far
    last: _Point  # the latest evaluated point
    grad: Any  # gradient at ``last``
    decrease_error: jax.Array
    curvature_error: jax.Array
    bracketed: jax.Array  # phase 2 (zoom) once an interval is known to hold a point
    done: jax.Array
    failed: jax.Array
    # The bracket: ``phi(low) <= phi(high)`` (low is not necessarily the smaller step).
    low: _Point
    high: _Point
    # A third point for the cubic interpolant (the previous low or high).
    cubic_ref: _Point
    # The best point seen with sufficient decrease, returned if curvature cannot be met.
    safe: _Point
    safe_grad: Any


def _cubic_minimizer(a: _Point, b: _Point, c: _Point) -> jax.Array:
    """Critical point of the cubic through ``(a, phi_a)``, ``(b, phi_b)``, ``(c, phi_c)``
    with ``phi'(a)``; NaN when it has none (then it is rejected as out of the bracket)."""
    slope = a.slope
    db = b.stepsize - a.stepsize
    dc = c.stepsize - a.stepsize
    rb = b.value - a.value - slope * db
    rc = c.value - a.value - slope * dc
    denom = (db * dc) ** 2 * (db - dc)
    # Solve the 2x2 system for the cubic and quadratic coefficients as one product, so the
    # rounding matches scipy's and optax's formulation.
    inverse = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    cube, square = (
        jnp.dot(inverse, jnp.array([rb, rc]), precision=jax.lax.Precision.HIGHEST) / denom
    )
    radical = square * square - 3.0 * cube * slope
    return a.stepsize + (-square + jnp.sqrt(radical)) / (3.0 * cube)


def _quadratic_minimizer(a: _Point, b: _Point) -> jax.Array:
    """Critical point of the parabola through ``(a, phi_a)``, ``(b, phi_b)`` with ``phi'(a)``."""
    db = b.stepsize - a.stepsize
    curvature = (b.value - a.value - a.slope * db) / db**2
    return a.stepsize - a.slope / (2.0 * curvature)


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: jax.typing.ArrayLike | None = None,
    tol: jax.typing.ArrayLike = 0.0,
    increase_factor: jax.typing.ArrayLike = 2.0,
    slope_rtol: jax.typing.ArrayLike = 1e-4,
    curv_rtol: jax.typing.ArrayLike = 0.9,
    approx_dec_rtol: jax.typing.ArrayLike | None = 1e-6,
    stepsize_precision: jax.typing.ArrayLike = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> base.GradientTransformation:
    """Line search for the strong Wolfe conditions: bracketing, then zoom.

    With ``phi(eta) = f(w + eta u)``, ``c1 = slope_rtol``, ``c2 = curv_rtol``, finds ``eta``
    with sufficient decrease ``phi(eta) <= phi(0) + c1 eta phi'(0) + tol`` and small
    curvature ``|phi'(eta)| <= c2 |phi'(0)| + tol``, and returns ``u <- eta u``.
    Near a minimiser, where ``phi(eta) <= phi(0) + approx_dec_rtol |phi(0)|``, the decrease
    condition may instead be met in Hager and Zhang's approximate form
    ``phi'(eta) <= (2 c1 - 1) phi'(0)`` (exact to machine precision where the Armijo test
    is only exact to its square root); ``approx_dec_rtol=None`` turns this off.

    Phase 1 (Nocedal & Wright, Algorithm 3.5) tries ``eta_0`` (1 with
    ``initial_guess_strategy='one'``, the previous step with ``'keep'``), then multiplies
    by ``increase_factor`` (capped at ``max_learning_rate``) until an interval is found
    that holds a Wolfe point. Phase 2 (Algorithm 3.6) shrinks it, taking the cubic
    interpolant's minimiser when it lies in the middle 60% of the interval, else the
    quadratic's when in the middle 80%, else bisecting. After ``max_linesearch_steps``
    evaluations, or once the interval is shorter than ``stepsize_precision``, the best
    point with sufficient decrease is returned (or the last point if there is none).
    The value and gradient at the returned point are kept in the state for
    ``value_and_grad_from_state``. ``update`` needs ``params`` and the keywords
    ``value=f(w)``, ``grad=grad f(w)`` and ``value_fn=f``. Defaults are optax's.

    Args:
        max_linesearch_steps: the most objective evaluations per search; an int ``>= 0``.
        max_learning_rate: the cap of the trial step sizes; positive, or None (default) for
            no cap.
        tol: absolute slack of both conditions; ``>= 0`` (default 0).
        increase_factor: the factor of each bracketing step; ``> 1`` (default 2).
        slope_rtol: ``c1``, the sufficient-decrease constant; in ``[0, 1)`` (default 1e-4).
        curv_rtol: ``c2``, the curvature constant; ``>= 0``, and ``c1 < c2 < 1`` for the
            strong Wolfe theory (default 0.9).
        approx_dec_rtol: the relative band in which the approximate decrease condition is
            accepted; ``>= 0``, or None to turn it off (default 1e-6).
        stepsize_precision: the interval length below which the zoom stops; ``>= 0``
            (default 1e-5).
        initial_guess_strategy: ``'one'`` (try 1 first) or ``'keep'`` (try the previous
            step first, the default).
        verbose: print a note when the search fails (default False).

    Returns:
        A ``GradientTransformation`` whose state is a ``ScaleByZoomLinesearchState``.

    Raises:
        ValueError: as ``scale_by_backtracking_linesearch``.
        TypeError: if ``max_linesearch_steps`` is not an int.
    """
    _check_steps("max_linesearch_steps", max_linesearch_steps)
    if max_learning_rate is not None:
        validate.positive("max_learning_rate", max_learning_rate)
    validate.non_negative("tol", tol)
    validate.in_range("increase_factor", increase_factor, 1.0, low_open=True)
    validate.in_range("slope_rtol", slope_rtol, 0.0, 1.0, high_open=True)
    validate.non_negative("curv_rtol", curv_rtol)
    if approx_dec_rtol is not None:
        validate.non_negative("approx_dec_rtol", approx_dec_rtol)
    validate.non_negative("stepsize_precision", stepsize_precision)
    validate.one_of("initial_guess_strategy", initial_guess_strategy, ("one", "keep"))

    def init(params):
        return _first_state(
            ScaleByZoomLinesearchState, ZoomLinesearchInfo, params, tree_ops.zeros_like(params)
        )

    def update(updates, state, params=None, *, value, grad, value_fn, **extra):
        base.check_update_inputs(
            "scale_by_zoom_linesearch", updates, params, state.grad, "stored gradient"
        )
        value_and_grad = jax.value_and_grad(
            functools.partial(value_fn, **kwargs_for(value_fn, extra))
        )
        dtype = value_dtype(params)  # not state.learning_rate's: tree.set may put a float
        scalar = lambda x: jnp.asarray(x, dtype)
        value0 = scalar(value)
        slope0 = scalar(tree_ops.real(tree_ops.vdot(updates, grad)))
        guess = scalar(1.0 if initial_guess_strategy == "one" else state.learning_rate)

        def evaluate(stepsize):
            new_value, new_grad = value_and_grad(tree_ops.add_scale(params, stepsize, updates))
            new_grad = tree_ops.cast_like(new_grad, grad)
            slope = tree_ops.real(tree_ops.vdot(tree_ops.conj(new_grad), updates))
            return _Point(stepsize, scalar(new_value), scalar(slope)), new_grad

        def errors(point):
            decrease = point.value - value0 - slope_rtol * point.stepsize * slope0
            if approx_dec_rtol is not None:
                # Hager-Zhang: only trusted close to a minimiser, where phi(eta) barely
                # exceeds phi(0) relative to its size.
                approx = jnp.maximum(
                    point.slope - (2 * slope_rtol - 1.0) * slope0,
                    point.value - value0 - approx_dec_rtol * jnp.abs(value0),
                )
                decrease = jnp.minimum(approx, decrease)
            curvature = jnp.abs(point.slope) - curv_rtol * jnp.abs(slope0)
            return _nan_to_inf(decrease).astype(dtype), _nan_to_inf(curvature).astype(dtype)

        def select(cond, new, old):
            return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)

        def measured(s: _ZoomSearch, stepsize) -> _ZoomSearch:
            """``s`` with ``phi`` evaluated at ``stepsize``: the new point, its gradient
            and its errors recorded, one more evaluation counted; the rest as in ``s``."""
            new, new_grad = evaluate(stepsize)
            dec_err, curv_err = errors(new)
            return s._replace(
                count=numerics.safe_increment(s.count),
                last=new,
                grad=new_grad,
                decrease_error=dec_err,
                curvature_error=curv_err,
            )

        def bracket(s: _ZoomSearch) -> _ZoomSearch:
            prev = s.last
            stepsize = jnp.where(s.count == 0, guess, increase_factor * prev.stepsize)
            stepsize = stepsize.astype(dtype)
            if max_learning_rate is not None:
                at_max = stepsize >= max_learning_rate
                stepsize = jnp.minimum(stepsize, max_learning_rate).astype(dtype)
            else:
                at_max = jnp.asarray(False)
            t = measured(s, stepsize)
            new, new_grad, dec_err, curv_err = t.last, t.grad, t.decrease_error, t.curvature_error
            good = jnp.maximum(dec_err, curv_err) <= tol
            safe, safe_grad = select(dec_err <= tol, (new, new_grad), (s.safe, s.safe_grad))
            # Algorithm 3.5: too high or no lower than before -> the minimum is behind us;
            # rising slope -> it is between prev and new, approached from new.
            high_is_new = (dec_err > 0.0) | ((new.value >= prev.value) & (s.count > 0))
            low_is_new = (new.slope >= 0.0) & ~high_is_new
            low, high = select(low_is_new, (new, prev), (prev, new))
            bracketed = high_is_new | low_is_new | good
            # At the cap with no bracket, larger steps cannot be tried: settle for it.
            done = good | (at_max & ~bracketed)
            if verbose:
                _print_if(
                    at_max & ~bracketed,
                    "gradxform.scale_by_zoom_linesearch: the maximal step size "
                    "{stepsize} still decreases the objective; the curvature condition "
                    "is not satisfied. Consider a larger max_learning_rate.",
                    stepsize=stepsize,
                )
            return t._replace(
                bracketed=bracketed,
                done=done,
                failed=(s.count + 1 >= max_linesearch_steps) & ~done,
                low=low,
                high=high,
                cubic_ref=low,
                safe=safe,
                safe_grad=safe_grad,
            )

        def zoom(s: _ZoomSearch) -> _ZoomSearch:
            low, high = s.low, s.high
            width = jnp.abs(high.stepsize - low.stepsize)
            left = jnp.minimum(high.stepsize, low.stepsize)
            right = jnp.maximum(high.stepsize, low.stepsize)
            inside = lambda x, margin: (x > left + margin) & (x < right - margin)
            cubic = _cubic_minimizer(low, high, s.cubic_ref)
            quadratic = _quadratic_minimizer(low, high)
            use_cubic = inside(cubic, 0.2 * width)
            use_quadratic = ~use_cubic & inside(quadratic, 0.1 * width)
            trial = jnp.where(
                use_cubic,
                cubic,
                jnp.where(use_quadratic, quadratic, (low.stepsize + high.stepsize) / 2.0),
            ).astype(dtype)
            t = measured(s, trial)
            new, new_grad, dec_err, curv_err = t.last, t.grad, t.decrease_error, t.curvature_error
            done = jnp.maximum(dec_err, curv_err) <= tol
            better = (dec_err <= tol) & (new.value < s.safe.value)
            safe, safe_grad = select(better, (new, new_grad), (s.safe, s.safe_grad))
            # Algorithm 3.6: the new point replaces high if it is no better than low;
            # otherwise it becomes low, and high moves to the old low if the slope at
            # the new point says the minimum lies on the old low's side.
            high_is_new = (dec_err > 0.0) | (new.value >= low.value)
            high_is_low = (new.slope * (high.stepsize - low.stepsize) >= 0.0) & ~high_is_new
            new_high = select(high_is_new, new, select(high_is_low, low, high))
            new_low = select(high_is_new, low, new)
            cubic_ref = select(high_is_new | high_is_low, high, low)
            too_narrow = width <= stepsize_precision
            failed = (
                (s.count + 1 >= max_linesearch_steps) | (too_narrow & (safe.stepsize > 0.0))
            ) & ~done
            return t._replace(
                done=done,
                failed=failed,
                low=new_low,
                high=new_high,
                cubic_ref=cubic_ref,
                safe=safe,
                safe_grad=safe_grad,
            )

        def fall_back(s: _ZoomSearch) -> _ZoomSearch:
            # Out of evaluations: return the best point with sufficient decrease, if any;
            # if the last point is out of the domain, the safe point (maybe eta = 0).
            use_safe = (s.safe.stepsize > 0.0) | jnp.isinf(s.decrease_error)
            if verbose:
                _print_if(
                    ~(s.safe.stepsize > 0.0),
                    "gradxform.scale_by_zoom_linesearch: no step size with sufficient "
                    "decrease found (slope at 0: {slope}, last step size {stepsize}); "
                    "is the direction a descent direction?",
                    slope=slope0,
                    stepsize=s.last.stepsize,
                )
            last, grad_ = select(use_safe, (s.safe, s.safe_grad), (s.last, s.grad))
            return s._replace(last=last, grad=grad_)

        def step(s):
            s = jax.lax.cond(s.bracketed, zoom, bracket, s)
            return jax.lax.cond(s.failed, fall_back, lambda x: x, s)

        origin = _Point(scalar(0.0), value0, slope0)
        inf = scalar(jnp.inf)
        search = _ZoomSearch(
            count=jnp.zeros([], jnp.int32),
            last=origin,
            grad=grad,
            decrease_error=inf,
            curvature_error=inf,
            bracketed=jnp.asarray(False),
            done=jnp.asarray(False),
            failed=jnp.asarray(False),
            low=origin,
            high=origin,
            cubic_ref=origin,
            safe=origin,
            safe_grad=grad,
        )
        search = jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, search)
        stepsize = search.last.stepsize
        new_state = ScaleByZoomLinesearchState(
            learning_rate=stepsize,
            value=search.last.value,
            grad=search.grad,
            info=ZoomLinesearchInfo(
                num_linesearch_steps=search.count,
                decrease_error=search.decrease_error,
                curvature_error=search.curvature_error,
            ),
        )
        return tree_ops.scale(stepsize, updates), new_state

    return base.GradientTransformation(init, update)


# ------------------------------------------------------------------------------------------
# Reusing the search's last evaluation
# ------------------------------------------------------------------------------------------


def _find_field(state: Any, key: str) -> list[Any]:
    """Every value stored under the NamedTuple field or dict key ``key`` in ``state``."""
    found = []

    def walk(node):
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            items = zip(node._fields, node)
        elif isinstance(node, dict):
            items = node.items()
        elif isinstance(node, (tuple, list)):
            items = ((None, child) for child in node)
        else:
            return
        for name, child in items:
            if name == key:
                found.append(child)
            else:
                walk(child)

    walk(state)
    return found


def value_and_grad_from_state(
    value_fn: Callable[..., jax.Array],
) -> Callable[..., tuple[jax.Array, Any]]:
    """``jax.value_and_grad(value_fn)`` that reuses a line search's last evaluation.

    The returned function is called as ``f(params, *args, state=opt_state, **kwargs)``. It
    looks up the single ``value`` and ``grad`` fields in the optimizer state (as stored by
    ``scale_by_zoom_linesearch`` or ``scale_by_backtracking_linesearch(store_grad=True)``);
    if the stored value is finite it returns them, otherwise (the first iteration) it
    evaluates ``jax.value_and_grad(value_fn)``. Only valid for deterministic objectives: a
    new batch needs a new evaluation.

    Args:
        value_fn: the objective ``f(params, *args, **kwargs)``, returning a real scalar.

    Returns:
        A function ``(params, *args, state, **kwargs) -> (value, grad)``. It raises
        ``ValueError`` if the state holds no such fields (or ``grad`` is None), ``KeyError``
        if it holds several.
    """

    def value_and_grad(params, *fn_args, state, **fn_kwargs):
        values, grads = _find_field(state, "value"), _find_field(state, "grad")
        if len(values) > 1 or len(grads) > 1:
            raise KeyError("the optimizer state holds several 'value' or 'grad' fields")
        if not values or not grads or grads[0] is None:
            raise ValueError(
                "no value or gradient found in the optimizer state: use a line search that "
                "stores them (scale_by_zoom_linesearch, or "
                "scale_by_backtracking_linesearch(store_grad=True))"
            )
        value, grad = values[0], grads[0]
        return jax.lax.cond(
            jnp.isfinite(value),
            lambda p, a, k: (value, grad),
            lambda p, a, k: jax.value_and_grad(value_fn)(p, *a, **k),
            params,
            fn_args,
            fn_kwargs,
        )

    return value_and_grad


def _print_if(condition: jax.Array, message: str, **values: Any) -> None:
    jax.lax.cond(
        condition,
        lambda: jax.debug.print(message, ordered=True, **values),
        lambda: None,
    )
