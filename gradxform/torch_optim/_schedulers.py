"""``torch.optim.lr_scheduler`` as pure functions of the number of ``scheduler.step()`` calls.

``s(t)`` equals torch's ``optimizer.param_groups[0]["lr"]`` after ``t`` calls of
``scheduler.step()`` (``s(0)`` is the learning rate right after the scheduler is built).
In the usual torch loop (``optimizer.step()`` then ``scheduler.step()``) the k-th
optimizer step (0-based) uses ``s(k)``, which is what ``scale_by_schedule`` and every
``lr``-as-schedule argument do with their 0-based count.

torch updates most learning rates recursively (``lr <- lr * ratio``); these are the closed
forms, equal to torch's recursion up to float64 round-off (within a relative 4e-14 over
100 steps in the tests). Every function takes ``base_lr`` first, except ``cyclic_lr`` and
``one_cycle_lr``, which keep torch's own leading arguments. Momentum cycling (``CyclicLR``
and ``OneCycleLR``'s ``cycle_momentum``) is not reproduced: only the learning rate is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, validate
from gradxform._src.schedules.decay import as_float, broadcast_float, check_steps


def step_lr(base_lr: float, step_size: int, gamma: float = 0.1) -> base.Schedule:
    """``StepLR``: ``lr(t) = base_lr * gamma ** floor(t / step_size)``.

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        step_size: the number of steps between two decays; a positive int.
        gamma: the factor of each decay; ``>= 0`` (default 0.1).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.

    Examples:
        >>> s = gx.torch_optim.step_lr(0.1, step_size=2)
        >>> print(np.asarray(s(jnp.arange(5))).round(4))
        [0.1   0.1   0.01  0.01  0.001]
    """
    validate.non_negative("base_lr", base_lr)
    validate.positive_int("step_size", step_size)
    validate.non_negative("gamma", gamma)

    def schedule(count):
        return base_lr * jnp.power(gamma, as_float(jnp.floor_divide(count, step_size)))

    return schedule


def multi_step_lr(base_lr: float, milestones: Iterable[int], gamma: float = 0.1) -> base.Schedule:
    """``MultiStepLR``: ``lr(t) = base_lr * gamma ** #{m in milestones : m <= t}``.

    A milestone listed twice counts twice, as in torch.

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        milestones: the steps at which the rate is multiplied by ``gamma``; ints ``>= 0``,
            in any order.
        gamma: the factor at each milestone; ``>= 0`` (default 0.1).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.
    """
    validate.non_negative("base_lr", base_lr)
    validate.non_negative("gamma", gamma)
    milestones = tuple(sorted(milestones))
    for m in milestones:
        check_steps("milestones", m)

    def schedule(count):
        passed = jnp.zeros(jnp.shape(count), jnp.int32)
        for m in milestones:
            passed = passed + (jnp.asarray(count) >= m).astype(jnp.int32)
        return base_lr * jnp.power(gamma, as_float(passed))

    return schedule


def constant_lr(base_lr: float, factor: float = 1.0 / 3, total_iters: int = 5) -> base.Schedule:
    """``ConstantLR``: ``lr(t) = base_lr * factor`` for ``t < total_iters``, ``base_lr`` after.

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        factor: the factor applied before ``total_iters``; in ``[0, 1]`` (default 1/3).
        total_iters: the number of steps the factor applies; an int ``>= 1`` (default 5;
            torch keeps ``base_lr * factor`` forever with 0).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.
    """
    validate.non_negative("base_lr", base_lr)
    validate.in_range("factor", factor, 0.0, 1.0)
    validate.positive_int("total_iters", total_iters)

    def schedule(count):
        return as_float(jnp.where(count < total_iters, base_lr * factor, base_lr))

    return schedule


def linear_lr(
    base_lr: float,
    start_factor: float = 1.0 / 3,
    end_factor: float = 1.0,
    total_iters: int = 5,
) -> base.Schedule:
    """``LinearLR``: ``lr(t) = base_lr * (start + (end - start) * min(t, T) / T)``.

    ``T = total_iters``, ``start = start_factor``, ``end = end_factor``.

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        start_factor: the factor at step 0; in ``(0, 1]`` (default 1/3), as torch requires.
        end_factor: the factor from step ``total_iters`` on; in ``[0, 1]`` (default 1).
        total_iters: ``T``, the length of the ramp; an int ``>= 1`` (default 5; torch keeps
            ``start_factor`` forever with 0).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.

    Examples:
        >>> s = gx.torch_optim.linear_lr(1.0, total_iters=4)
        >>> print(np.asarray(s(jnp.arange(6))).round(4))
        [0.3333 0.5    0.6667 0.8333 1.     1.    ]
    """
    validate.non_negative("base_lr", base_lr)
    validate.in_range("start_factor", start_factor, 0.0, 1.0, low_open=True)
    validate.unit_interval("end_factor", end_factor)
    validate.positive_int("total_iters", total_iters)

    def schedule(count):
        c = jnp.minimum(as_float(count), total_iters)
        return as_float(base_lr * (start_factor + (end_factor - start_factor) * c / total_iters))

    return schedule


def exponential_lr(base_lr: float, gamma: float) -> base.Schedule:
    """``ExponentialLR``: ``lr(t) = base_lr * gamma ** t``.

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        gamma: the factor per step; ``>= 0``.

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.
    """
    validate.non_negative("base_lr", base_lr)
    validate.non_negative("gamma", gamma)

    def schedule(count):
        return base_lr * jnp.power(gamma, as_float(count))

    return schedule


def polynomial_lr(base_lr: float, total_iters: int = 5, power: float = 1.0) -> base.Schedule:
    """``PolynomialLR``: ``lr(t) = base_lr * (1 - min(t, T) / T) ** power``, ``T = total_iters``.

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        total_iters: ``T``, the number of steps to reach 0; a positive int (default 5).
        power: the exponent; ``>= 0`` (default 1).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.
    """
    validate.non_negative("base_lr", base_lr)
    validate.positive_int("total_iters", total_iters)
    validate.non_negative("power", power)

    def schedule(count):
        c = jnp.minimum(as_float(count), total_iters)
        # (T - c) / T is exactly 0 at c = T, also under jit (see polynomial_schedule).
        return as_float(base_lr * ((total_iters - c) / total_iters) ** power)

    return schedule


def _cosine_annealed(base_lr: Any, eta_min: Any, t: Any, period: Any) -> Any:
    """``eta_min + (base_lr - eta_min) (1 + cos(pi t / period)) / 2``."""
    return eta_min + (base_lr - eta_min) * (1 + jnp.cos(jnp.pi * t / period)) / 2


def cosine_annealing_lr(
    base_lr: float,
    T_max: int,
    eta_min: float = 0.0,
) -> base.Schedule:
    """``CosineAnnealingLR`` (Loshchilov & Hutter, SGDR, arXiv:1608.03983), without restarts::

        lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    **Not clamped** past ``T_max``: like torch's recursion, the rate rises back to
    ``base_lr`` at ``2 T_max`` and keeps oscillating (``optax.cosine_decay_schedule`` stays
    at its floor instead).

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        T_max: the half-period, the step at which ``eta_min`` is reached; a positive int.
        eta_min: the lowest rate; ``>= 0`` (default 0).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.

    Examples:
        >>> s = gx.torch_optim.cosine_annealing_lr(1.0, T_max=4)
        >>> print(np.asarray(s(jnp.arange(9))).round(4))
        [1.     0.8536 0.5    0.1464 0.     0.1464 0.5    0.8536 1.    ]
    """
    validate.non_negative("base_lr", base_lr)
    validate.positive_int("T_max", T_max)
    validate.non_negative("eta_min", eta_min)

    def schedule(count):
        return _cosine_annealed(base_lr, eta_min, as_float(count), T_max)

    return schedule


def cosine_annealing_warm_restarts(
    base_lr: float,
    T_0: int,
    T_mult: int = 1,
    eta_min: float = 0.0,
) -> base.Schedule:
    """``CosineAnnealingWarmRestarts`` (SGDR, Loshchilov & Hutter, arXiv:1608.03983).

    Cycle ``i`` lasts ``T_i = T_0 * T_mult ** i`` steps; with ``T_cur`` the steps since the
    last restart, ``lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``.
    Cycle ``i`` starts at ``t = T_0 * (T_mult ** i - 1) / (T_mult - 1)`` (``T_0 * i`` when
    ``T_mult == 1``).

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        T_0: the length of the first cycle; a positive int.
        T_mult: the factor by which each cycle is longer than the previous; a positive int
            (default 1).
        eta_min: the lowest rate; ``>= 0`` (default 0).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.
    """
    validate.non_negative("base_lr", base_lr)
    validate.positive_int("T_0", T_0)
    validate.positive_int("T_mult", T_mult)
    validate.non_negative("eta_min", eta_min)

    def schedule(count):
        t = as_float(count)
        if T_mult == 1:
            t_i = jnp.full_like(t, T_0)
            t_cur = jnp.mod(t, T_0)
        else:
            m = float(T_mult)
            start = lambda k: T_0 * (m**k - 1) / (m - 1)
            # The cycle index from a logarithm, then nudged to the exact integer boundary.
            k = jnp.floor(jnp.log(t * (m - 1) / T_0 + 1) / math.log(m))
            k = jnp.where(t < start(k), k - 1, k)
            k = jnp.where(t >= start(k + 1), k + 1, k)
            t_i = T_0 * m**k
            t_cur = t - start(k)
        return _cosine_annealed(base_lr, eta_min, t_cur, t_i)

    return schedule


def cyclic_lr(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable | None = None,
    scale_mode: str = "cycle",
) -> base.Schedule:
    """``CyclicLR`` (Smith, "Cyclical learning rates", WACV 2017, arXiv:1506.01186).

    With ``S = step_size_up + step_size_down`` and ``r = step_size_up / S``::

        cycle = floor(1 + t / S);  x = 1 + t / S - cycle
        h = x / r if x <= r else (x - 1) / (r - 1)
        lr(t) = base_lr + (max_lr - base_lr) * h * scale

    ``scale`` is 1 (``"triangular"``), ``1 / 2 ** (cycle - 1)`` (``"triangular2"``) or
    ``gamma ** t`` (``"exp_range"``); a custom ``scale_fn`` (jittable) is called with
    ``cycle`` or with ``t`` per ``scale_mode``.

    Args:
        base_lr: the lower end of the cycle; ``>= 0``.
        max_lr: the upper end of the cycle; ``>= 0``.
        step_size_up: the steps from ``base_lr`` to ``max_lr``; positive (default 2000).
        step_size_down: the steps back down; ``>= 0``, or None (default) for
            ``step_size_up``.
        mode: ``"triangular"`` (default), ``"triangular2"`` or ``"exp_range"``; ignored when
            ``scale_fn`` is given.
        gamma: the factor per step of ``"exp_range"`` (default 1).
        scale_fn: a jittable function of ``cycle`` or ``t`` giving ``scale``; None (default)
            to use ``mode``.
        scale_mode: what ``scale_fn`` is called with: ``"cycle"`` (default) or
            ``"iterations"`` (``t``); used only with ``scale_fn``.

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.
    """
    validate.non_negative("base_lr", base_lr)
    validate.non_negative("max_lr", max_lr)
    validate.positive("step_size_up", step_size_up)
    if step_size_down is not None:
        validate.non_negative("step_size_down", step_size_down)
    if scale_fn is None:
        validate.one_of("mode", mode, ("triangular", "triangular2", "exp_range"))
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
        if mode == "triangular":
            scale_fn = lambda x: 1.0
        elif mode == "triangular2":
            scale_fn = lambda x: 1 / (2.0 ** (x - 1))
        else:
            scale_fn = lambda x: gamma**x
    else:
        validate.one_of("scale_mode", scale_mode, ("cycle", "iterations"))
    up = float(step_size_up)
    down = float(step_size_down) if step_size_down is not None else up
    total = up + down
    ratio = up / total

    def schedule(count):
        t = as_float(count)
        cycle = jnp.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        height = jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        scale = scale_fn(cycle if scale_mode == "cycle" else t)
        return as_float(base_lr + (max_lr - base_lr) * height * scale)

    return schedule


def one_cycle_lr(
    max_lr: float,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> base.Schedule:
    """``OneCycleLR`` (Smith & Topin, Super-Convergence, arXiv:1708.07120).

    With ``N = total_steps`` (or ``epochs * steps_per_epoch``), ``lr0 = max_lr / div_factor``,
    ``lr_min = lr0 / final_div_factor`` and ``p = pct_start * N``, the phases
    (each annealed from its start to its end value, by cosine ``end + (start - end) *
    (1 + cos(pi * f)) / 2`` or linearly, ``f`` the fraction of the phase done) are:

    - two phases: ``lr0 -> max_lr`` on ``[0, p - 1]``, ``max_lr -> lr_min`` on
      ``[p - 1, N - 1]``;
    - ``three_phase``: ``lr0 -> max_lr`` on ``[0, p - 1]``, ``max_lr -> lr0`` on
      ``[p - 1, 2p - 2]``, ``lr0 -> lr_min`` on ``[2p - 2, N - 1]``.

    The schedule ends at ``t = N - 1``; torch raises past ``t = N``, here the last phase's
    formula simply continues.

    Args:
        max_lr: the peak rate; positive.
        total_steps: ``N``, a positive int; or None (default) to use
            ``epochs * steps_per_epoch``.
        epochs: the number of epochs, a positive int, used with ``steps_per_epoch`` when
            ``total_steps`` is None (default None).
        steps_per_epoch: the steps per epoch, a positive int (default None).
        pct_start: the fraction of the steps spent rising; in ``[0, 1]`` (default 0.3), and no
            phase may have length 0.
        anneal_strategy: ``"cos"`` (default) or ``"linear"``.
        div_factor: ``max_lr / lr0``; positive (default 25).
        final_div_factor: ``lr0 / lr_min``; positive (default 1e4).
        three_phase: fall back to ``lr0`` before the final annealing (default False).

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.

    Raises:
        ValueError: without ``total_steps`` nor both ``epochs`` and ``steps_per_epoch``, for a
            hyperparameter outside its range, or a phase of length 0.

    Examples:
        >>> s = gx.torch_optim.one_cycle_lr(1.0, total_steps=10)
        >>> print(np.asarray(s(jnp.array([0, 2, 9]))).round(6))
        [4.e-02 1.e+00 4.e-06]
    """
    if total_steps is not None:
        validate.positive_int("total_steps", total_steps)
    elif epochs is not None and steps_per_epoch is not None:
        validate.positive_int("epochs", epochs)
        validate.positive_int("steps_per_epoch", steps_per_epoch)
        total_steps = epochs * steps_per_epoch
    else:
        raise ValueError("one_cycle_lr needs total_steps, or both epochs and steps_per_epoch")
    validate.positive("max_lr", max_lr)
    validate.unit_interval("pct_start", pct_start)
    validate.one_of("anneal_strategy", anneal_strategy, ("cos", "linear"))
    validate.positive("div_factor", div_factor)
    validate.positive("final_div_factor", final_div_factor)
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    end_1 = float(pct_start * total_steps) - 1
    if three_phase:
        phases = [
            (end_1, initial_lr, max_lr),
            (float(2 * pct_start * total_steps) - 2, max_lr, initial_lr),
            (total_steps - 1, initial_lr, min_lr),
        ]
    else:
        phases = [(end_1, initial_lr, max_lr), (total_steps - 1, max_lr, min_lr)]
    starts = [0.0] + [end for end, _, _ in phases[:-1]]
    for start, (end, _, _) in zip(starts, phases):
        # A phase ending where it starts is reached at that step (or skipped when it lies
        # below 0); torch divides by zero there.
        if end == start and end >= 0:
            raise ValueError(
                f"pct_start={pct_start!r} with total_steps={total_steps} gives a phase of "
                "length 0 (torch divides by zero there)"
            )

    def anneal(start, end, pct):
        if anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)
        return (end - start) * pct + start

    def schedule(count):
        t = as_float(count)
        lr = None
        # From the last phase back, so the first phase with t <= end wins.
        for start, (end, lo, hi) in reversed(list(zip(starts, phases))):
            value = anneal(lo, hi, (t - start) / (end - start))
            lr = value if lr is None else jnp.where(t <= end, value, lr)
        return as_float(lr)

    return schedule


def lambda_lr(base_lr: float, lr_lambda: Callable) -> base.Schedule:
    """``LambdaLR``: ``lr(t) = base_lr * lr_lambda(t)``.

    Args:
        base_lr: the learning rate the optimizer was built with; ``>= 0``.
        lr_lambda: a jittable function of the step count ``t`` giving the factor.

    Returns:
        A schedule ``t -> lr(t)``, ``t`` the number of ``scheduler.step()`` calls; a float
        array of ``t``'s shape.

    Raises:
        TypeError: if ``lr_lambda`` is not callable.
    """
    validate.non_negative("base_lr", base_lr)
    if not callable(lr_lambda):
        raise TypeError(f"lr_lambda must be callable, got {type(lr_lambda).__name__}")

    def schedule(count):
        return broadcast_float(base_lr * lr_lambda(count), count)

    return schedule


class ReduceLROnPlateauState(NamedTuple):
    """State of ``reduce_lr_on_plateau`` (torch's scheduler attributes).

    Attributes:
        lr: the current rate, torch's ``param_groups[0]["lr"]``; a scalar of JAX's default
            float dtype.
        best: the best metric so far (``+inf`` in ``"min"`` mode, ``-inf`` in ``"max"``).
        num_bad_epochs: the evaluations without improvement since the last one; int32.
        cooldown_counter: evaluations left in the cooldown; int32.
        last_epoch: the number of ``scheduler.step(metric)`` calls; int32.
    """

    lr: jax.Array  # torch's param_groups[0]["lr"]
    best: jax.Array  # the best metric so far (+inf in "min" mode, -inf in "max")
    num_bad_epochs: jax.Array  # int32
    cooldown_counter: jax.Array  # int32
    last_epoch: jax.Array  # int32: the number of scheduler.step(metric) calls


def reduce_lr_on_plateau(
    base_lr: float,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    eps: float = 1e-8,
) -> base.GradientTransformation:
    """``ReduceLROnPlateau`` as a transformation: ``update(u, state, value=metric)``.

    Each update plays one ``scheduler.step(metric)`` and then returns
    ``u * lr / base_lr``, so ``chain(torch_optimizer(base_lr), reduce_lr_on_plateau(base_lr))``
    steps with the reduced rate. One ``scheduler.step(metric)``::

        better = metric < best * (1 - threshold)   ("min", "rel")
                 metric < best - threshold         ("min", "abs")
                 metric > best * (1 + threshold)   ("max", "rel")
                 metric > best + threshold         ("max", "abs")
        best, bad <- (metric, 0) if better else (best, bad + 1)
        if cooldown_counter > 0: cooldown_counter -= 1; bad <- 0
        if bad > patience:
            new = max(lr * factor, min_lr); lr <- new if lr - new > eps
            cooldown_counter <- cooldown; bad <- 0

    The reduction comes when the bad evaluations *exceed* ``patience`` (optax.contrib's
    ``reduce_on_plateau`` reduces when they reach it). In torch the metric passed after
    optimizer step ``k`` changes the rate of step ``k + 1``: pass here the metric measured
    before this update.

    Args:
        base_lr: the learning rate of the optimizer this follows; positive.
        mode: ``"min"`` (default: lower is better) or ``"max"``.
        factor: the factor of a reduction; in ``[0, 1)`` (default 0.1).
        patience: the bad evaluations tolerated before a reduction; an int ``>= 0``
            (default 10).
        threshold: the margin an improvement must clear; ``>= 0`` (default 1e-4).
        threshold_mode: ``"rel"`` (default, relative to ``best``) or ``"abs"``.
        cooldown: evaluations after a reduction during which bad ones are not counted; an
            int ``>= 0`` (default 0).
        min_lr: the floor of the rate; ``>= 0`` (default 0).
        eps: reductions smaller than this are skipped; ``>= 0`` (default 1e-8).

    Returns:
        A ``GradientTransformation`` needing ``value=`` as ``gradxform.reduce_on_plateau``
        does, with this module's ``ReduceLROnPlateauState`` (torch's fields) as its state.

    Raises:
        ValueError: as ``gradxform.reduce_on_plateau``.
    """
    validate.positive("base_lr", base_lr)
    validate.one_of("mode", mode, ("min", "max"))
    validate.in_range("factor", factor, 0.0, 1.0, high_open=True)
    check_steps("patience", patience)
    validate.non_negative("threshold", threshold)
    validate.one_of("threshold_mode", threshold_mode, ("rel", "abs"))
    check_steps("cooldown", cooldown)
    validate.non_negative("min_lr", min_lr)
    validate.non_negative("eps", eps)

    def is_better(a, best):
        if mode == "min" and threshold_mode == "rel":
            return a < best * (1.0 - threshold)
        if mode == "min":
            return a < best - threshold
        if threshold_mode == "rel":
            return a > best * (threshold + 1.0)
        return a > best + threshold

    def init(params):
        del params
        dtype = jnp.result_type(float)
        return ReduceLROnPlateauState(
            lr=jnp.asarray(base_lr, dtype),
            best=jnp.asarray(math.inf if mode == "min" else -math.inf, dtype),
            num_bad_epochs=jnp.zeros([], jnp.int32),
            cooldown_counter=jnp.zeros([], jnp.int32),
            last_epoch=jnp.zeros([], jnp.int32),
        )

    def update(updates, state, params=None, *, value=None, **extra):
        del params, extra
        base.required_value("reduce_lr_on_plateau", value, "the metric")
        current = jnp.asarray(value).astype(state.best.dtype)
        better = is_better(current, state.best)
        best = jnp.where(better, current, state.best)
        bad = jnp.where(better, 0, state.num_bad_epochs + 1)
        cooling = state.cooldown_counter > 0
        cooldown_counter = jnp.where(cooling, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(cooling, 0, bad)
        reduce = bad > patience
        new_lr = jnp.maximum(state.lr * factor, min_lr)
        lr = jnp.where(jnp.logical_and(reduce, state.lr - new_lr > eps), new_lr, state.lr)
        state = ReduceLROnPlateauState(
            lr=lr.astype(state.lr.dtype),
            best=best,
            num_bad_epochs=jnp.where(reduce, 0, bad).astype(jnp.int32),
            cooldown_counter=jnp.where(reduce, cooldown, cooldown_counter).astype(jnp.int32),
            last_epoch=state.last_epoch + 1,
        )
        ratio = state.lr / base_lr
        updates = jax.tree.map(lambda u: jnp.asarray(ratio, u.dtype) * u, updates)
        return updates, state

    return base.GradientTransformation(init, update)
