"""Composition: run transformations one after another, or side by side and divide."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base


def chain(*transformations: Any) -> base.GradientTransformation:
    """``u <- t_n(...t_2(t_1(u)))``; the state is the tuple of the members' states.

    Every member receives the same ``params`` and extra keyword arguments. Members may be
    any ``(init, update)`` pair, optax transformations included.

    Args:
      *transformations: The members, applied in the order given; none is allowed (the
        chain is then the identity).

    Returns:
      A ``GradientTransformation`` whose state is the tuple of the members' states, in
      order; ``update`` raises ``ValueError`` when handed a state of another length.

    Examples:
      >>> opt = gx.chain(gx.clip_by_global_norm(1.0), gx.scale(-0.5))
      >>> params = jnp.array([0.0, 0.0])
      >>> state = opt.init(params)
      >>> updates, state = opt.update(jnp.array([3.0, 4.0]), state, params)
      >>> print(np.asarray(updates).round(4))
      [-0.3 -0.4]
    """
    txs = tuple(base.as_transformation(t) for t in transformations)

    def init(params):
        return tuple(t.init(params) for t in txs)

    def update(updates, state, params=None, **extra):
        if not isinstance(state, tuple) or len(state) != len(txs):
            raise ValueError(
                f"chain of {len(txs)} transformations got a state that is not a tuple of "
                f"{len(txs)} states: {jax.tree.structure(state)}"
            )
        new_state = []
        for t, s in zip(txs, state):
            updates, s = t.update(updates, s, params, **extra)
            new_state.append(s)
        return updates, tuple(new_state)

    return base.GradientTransformation(init, update)


def named_chain(*transformations: tuple[str, Any]) -> base.GradientTransformation:
    """``chain`` whose state is a dict keyed by the given names.

    Args:
      *transformations: ``(name, transformation)`` pairs, applied in the order given;
        the names must be unique (else ``ValueError``).

    Returns:
      A ``GradientTransformation`` whose state is ``{name: member_state}``.
    """
    names = [name for name, _ in transformations]
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain: names must be unique, got {names}")
    txs = {name: base.as_transformation(t) for name, t in transformations}

    def init(params):
        return {name: t.init(params) for name, t in txs.items()}

    def update(updates, state, params=None, **extra):
        if not isinstance(state, dict) or set(state) != set(names):
            raise ValueError(f"named_chain expects a state dict with keys {names}")
        new_state = {}
        for name, t in txs.items():
            updates, new_state[name] = t.update(updates, state[name], params, **extra)
        return updates, new_state

    return base.GradientTransformation(init, update)


class DivideState(NamedTuple):
    """The state of ``divide``.

    Attributes:
      numerator: The numerator branch's state.
      denominator: The denominator branch's state.
    """

    numerator: Any
    denominator: Any


def divide(numerator: Any, denominator: Any) -> base.GradientTransformation:
    """``u <- N(u) / D(u)``: both branches see the same input, their outputs are divided.

    The quotient takes the numerator's dtype (a float32 denominator may guard a
    half-precision numerator against underflow).

    This is how a preconditioned method is written as primitives, e.g. Adam:
    ``divide(chain(ema(b1), ...), chain(elementwise(abs_sq), ema(b2), ...))``.

    Args:
      numerator: The transformation ``N`` whose output is divided.
      denominator: The transformation ``D`` dividing it; it must return a tree of the
        same structure (it is never guarded against zero: add ``eps`` inside it).

    Returns:
      A ``GradientTransformation`` whose state is ``DivideState(numerator, denominator)``,
      the two branches' states.
    """
    num = base.as_transformation(numerator)
    den = base.as_transformation(denominator)

    def init(params):
        return DivideState(num.init(params), den.init(params))

    def update(updates, state, params=None, **extra):
        top, num_state = num.update(updates, state.numerator, params, **extra)
        bottom, den_state = den.update(updates, state.denominator, params, **extra)
        out = jax.tree.map(
            lambda a, b: None if a is None else (a / b).astype(jnp.result_type(a)),
            top,
            bottom,
            is_leaf=lambda x: x is None,
        )
        return out, DivideState(num_state, den_state)

    return base.GradientTransformation(init, update)
