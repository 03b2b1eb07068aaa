"""A compiled training step that donates its state and traces its hyperparameters.

Three habits make an optimizer step cheap, and ``train_step`` applies all of them:

- *donation*: params and optimizer state are passed with ``donate_argnums`` so XLA
  updates them in place; without it every step allocates (and page-faults) a fresh copy
  of both, which on CPU costs more than the arithmetic;
- *hyperparameters as data*: float hyperparameters are arguments of the compiled
  function, not constants baked into it, so changing the learning rate or a decay
  between steps never recompiles;
- *mixed precision*: with ``master_dtype`` the optimizer updates a float32 master copy
  of the params and the model sees them cast to their own (e.g. bfloat16) dtype.

The same pattern by hand::

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, batch, learning_rate):
        tx = gx.adam(learning_rate)          # built inside: learning_rate is traced
        grads = jax.grad(loss_fn)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return gx.apply_updates(params, updates), opt_state
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._src import base
from gradxform._src.grouping import grouped
from gradxform._src.packing import pack as pack_tree


class TrainState(NamedTuple):
    """``params``: what the model sees (a ``Packed`` value with ``pack=True``: its
    ``unpack()`` is the tree); ``opt_state``: the optimizer's state; ``master``: the
    full-precision copy the optimizer updates (``None`` without ``master_dtype``).

    Attributes:
      params: The parameters the model sees (a ``Packed`` value with ``pack=True``).
      opt_state: The optimizer's state.
      master: The full-precision copy of the params the optimizer updates, or ``None``
        without ``master_dtype`` (default).
    """

    params: Any
    opt_state: Any
    master: Any = None


def _is_dynamic(value: Any) -> bool:
    """Floats and float arrays become traced arguments; everything else stays static."""
    if isinstance(value, bool) or callable(value) or value is None:
        return False
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return True
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return bool(jnp.issubdtype(jnp.result_type(value), jnp.floating))
    return False


def _like(value: Any, default: jax.Array) -> jax.Array:
    """``value`` with the aval of ``default`` (dtype, shape, weak type): same program.

    A Python float stays weakly typed, as optax's baked-in constants are: ``lr * u``
    then keeps ``u``'s dtype instead of widening it to the default float.
    """
    if getattr(default, "weak_type", False) and isinstance(value, numbers.Real):
        out = jnp.asarray(value)
        if out.dtype == default.dtype and out.shape == default.shape:
            return out
    return jnp.asarray(value, default.dtype).reshape(default.shape)


class TrainStep:
    """``state, loss = step(state, *batch, **hyperparams)``; see ``train_step``.

    Build it with ``train_step``, which checks the hyperparameters against the factory's
    signature; all arguments here are required.

    Args:
      loss_fn: ``loss_fn(params, *batch) -> loss`` (or ``(loss, aux)`` with
        ``has_aux``), the scalar to minimise.
      optimizer: A transformation, or a factory such as ``gx.adam`` called with
        ``hyperparams`` (else ``TypeError``). A built transformation with
        ``hyperparams`` raises ``TypeError``.
      hyperparams: The factory's keyword arguments: float ones become traced arguments
        each call may override, the others are fixed.
      has_aux: As in ``train_step``.
      master_dtype: As in ``train_step`` (None: no master copy).
      group: As in ``train_step``.
      pack: As in ``train_step``.
      donate: As in ``train_step``.

    Attributes:
      hyperparams: The current default hyperparameters (the float ones as arrays).

    ``init(params)`` returns the first ``TrainState``; ``transformation(**dynamic)`` the
    optimizer for given float hyperparameters. Calling the step with a keyword that is
    not a float hyperparameter raises ``TypeError``.
    """

    def __init__(
        self,
        loss_fn: Callable,
        optimizer: Any,
        hyperparams: dict,
        has_aux: bool,
        master_dtype: Any,
        group: bool,
        pack: bool,
        donate: bool,
    ):
        if isinstance(optimizer, base.GradientTransformation) or (
            hasattr(optimizer, "init") and hasattr(optimizer, "update")
        ):
            if hyperparams:
                raise TypeError(
                    "train_step: hyperparameters need an optimizer factory such as gx.adam, "
                    "not a built transformation"
                )
            self._factory: Callable | None = None
            self._built: base.GradientTransformation | None = base.as_transformation(optimizer)
        elif callable(optimizer):
            self._factory = optimizer
            self._built = None
        else:
            raise TypeError(
                f"train_step: optimizer must be a transformation or a factory, got {optimizer!r}"
            )
        self._static = {k: v for k, v in hyperparams.items() if not _is_dynamic(v)}
        self._dynamic = {k: jnp.asarray(v) for k, v in hyperparams.items() if _is_dynamic(v)}
        self._loss_fn = loss_fn
        self._has_aux = has_aux
        self._master_dtype = None if master_dtype is None else jnp.dtype(master_dtype)
        self._group = group or pack
        self._pack = pack
        self._compiled = jax.jit(self._step, donate_argnums=(0,) if donate else ())

    @property
    def hyperparams(self) -> dict:
        """The current default hyperparameters (the dynamic ones as arrays)."""
        return {**self._static, **self._dynamic}

    def transformation(self, **dynamic) -> base.GradientTransformation:
        """The optimizer for the given dynamic hyperparameters (defaults otherwise)."""
        if self._factory is None:
            assert self._built is not None  # __init__ sets exactly one of the two
            tx = self._built
        else:
            dynamic = {**self._dynamic, **dynamic}
            tx = base.as_transformation(self._factory(**self._static, **dynamic))
        return grouped(tx) if self._group else tx

    def init(self, params) -> TrainState:
        """The state to start from: params, optimizer state and (optionally) master copy."""
        if self._pack:
            params = pack_tree(params)
        master = None
        if self._master_dtype is not None:
            # A copy even where the dtypes agree: params and master are donated together,
            # and one buffer cannot be donated twice.
            master = jax.tree.map(lambda p: jnp.array(p, self._master_dtype, copy=True), params)
        opt_state = self.transformation().init(params if master is None else master)
        return TrainState(params=params, opt_state=opt_state, master=master)

    def _step(self, state: TrainState, dynamic: dict, *batch):
        tx = self.transformation(**dynamic)
        loss_fn = self._loss_fn
        if self._pack:
            # Differentiating through unpack gives the gradient as a Packed value: the
            # optimizer reads and writes stacks, never one buffer per leaf.
            def loss_fn(packed, *batch):
                return self._loss_fn(packed.unpack(), *batch)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=self._has_aux)
        value, grads = grad_fn(state.params, *batch)
        loss = value[0] if self._has_aux else value
        if state.master is None:
            updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
            params, master = base.apply_updates(state.params, updates), None
        else:
            grads = jax.tree.map(lambda g, m: g.astype(m.dtype), grads, state.master)
            updates, opt_state = tx.update(grads, state.opt_state, state.master, value=loss)
            master = base.apply_updates(state.master, updates)
            params = jax.tree.map(lambda m, p: m.astype(p.dtype), master, state.params)
        new_state = TrainState(params=params, opt_state=opt_state, master=master)
        return (new_state, *value) if self._has_aux else (new_state, value)

    def __call__(self, state: TrainState, *batch, **dynamic):
        unknown = set(dynamic) - set(self._dynamic)
        if unknown:
            raise TypeError(
                f"train_step: {sorted(unknown)} are not float hyperparameters of this step "
                f"(those are {sorted(self._dynamic)}); static ones are fixed at construction"
            )
        # Same dtype and shape as the defaults: a new value is new data, not a new program.
        values = {
            k: v if k not in dynamic else _like(dynamic[k], v) for k, v in self._dynamic.items()
        }
        return self._compiled(state, values, *batch)


def train_step(
    loss_fn: Callable,
    optimizer: Any,
    *,
    has_aux: bool = False,
    master_dtype: Any = None,
    group: bool = False,
    pack: bool = False,
    donate: bool = True,
    **hyperparams: Any,
) -> TrainStep:
    """A jitted step ``state, loss = step(state, *batch, **hyperparams)``.

    Computes ``loss, g = value_and_grad(loss_fn)(state.params, *batch)``, then
    ``u, s = tx.update(g, opt_state, x, value=loss)`` and ``x <- x + u``, where ``x`` is
    the params, or with ``master_dtype`` the master copy (``g`` cast to its dtype, the
    params then ``x`` cast back to their own dtype). The state (params, optimizer state,
    master copy) is donated: do not reuse the ``state`` passed in.

    ``optimizer`` is a transformation, or a factory such as ``gx.adam`` called with
    ``hyperparams``: float ones (``learning_rate=1e-3``, ``b1=0.9``) become traced
    arguments that each call may override (``step(state, batch, learning_rate=3e-4)``)
    without recompiling; the others (bools, ints, schedules) are fixed. ``group=True``
    wraps the optimizer in ``grouped``; ``pack=True`` also holds the params as a
    ``Packed`` value (``state.params.unpack()`` is the tree; ``loss_fn`` still receives
    the tree), so that with many small leaves a step passes a few stacks instead of one
    buffer per leaf. With ``has_aux`` the loss function returns
    ``(loss, aux)`` and the step ``(state, loss, aux)``. ``step.init(params)`` builds the
    first state.

    Args:
      loss_fn: ``loss_fn(params, *batch) -> loss`` (or ``(loss, aux)`` with
        ``has_aux``), the scalar to minimise; ``params`` is the tree even with ``pack``.
      optimizer: A transformation, or a factory such as ``gx.adam`` (anything callable
        without ``init``). Anything else raises ``TypeError``.
      has_aux: If True, ``loss_fn`` returns ``(loss, aux)`` and the step returns
        ``(state, loss, aux)``. Default False.
      master_dtype: If not None, the optimizer updates a copy of the params in this
        dtype (e.g. ``jnp.float32`` for bfloat16 params) and the model sees it cast back
        to each param's dtype. Default None: no master copy.
      group: If True, the optimizer is wrapped in ``grouped``. Default False.
      pack: If True, the params are held as a ``Packed`` value (implies ``group``).
        Default False.
      donate: If True (default), the state passed to the step is donated to XLA, which
        updates it in place; do not reuse it after the call.
      **hyperparams: Keyword arguments for the factory (``TypeError`` with a built
        transformation, or when the factory's signature does not take them).

    Returns:
      A ``TrainStep``: call it as ``step(state, *batch, **float_hyperparams)`` to get
      ``(state, loss)`` (``(state, loss, aux)`` with ``has_aux``); ``step.init(params)``
      gives the first ``TrainState``.

    Examples:
      >>> def loss_fn(w, x):
      ...     return jnp.sum((w - x) ** 2)
      >>> step = gx.train_step(loss_fn, gx.sgd, learning_rate=0.25)
      >>> state = step.init(jnp.array([1.0, 2.0]))
      >>> state, loss = step(state, jnp.zeros(2))
      >>> print(np.asarray(state.params).round(4), np.asarray(loss).round(4))
      [0.5 1. ] 5.0
      >>> state, loss = step(state, jnp.zeros(2), learning_rate=0.5)
      >>> print(np.asarray(state.params).round(4), np.asarray(loss).round(4))
      [0. 0.] 1.25
    """
    if hyperparams and not callable(optimizer):
        raise TypeError("train_step: hyperparameters need an optimizer factory")
    if callable(optimizer) and not hasattr(optimizer, "init"):
        try:
            inspect.signature(optimizer).bind_partial(**hyperparams)
        except TypeError as e:
            raise TypeError(f"train_step: {e}") from None
    return TrainStep(loss_fn, optimizer, hyperparams, has_aux, master_dtype, group, pack, donate)
