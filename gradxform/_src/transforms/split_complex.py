"""Running a real-only transformation on complex parameters, as pairs of reals."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base


class SplitRealAndImaginaryArrays(NamedTuple):
    """A complex leaf as its two real parts (the inner transformation's leaves)."""

    real: Any
    imaginary: Any


class SplitRealAndImaginaryState(NamedTuple):
    """The state of ``split_real_and_imaginary``.

    Attributes:
        inner_state: the inner transformation's state over the split (all-real) tree.
    """

    inner_state: Any


def _split(x: Any) -> Any:
    if jnp.iscomplexobj(x):
        return SplitRealAndImaginaryArrays(jnp.real(x), jnp.imag(x))
    return x


def _join(x: Any) -> Any:
    if isinstance(x, SplitRealAndImaginaryArrays):
        return jax.lax.complex(x.real, x.imaginary)
    return x


def split_real_and_imaginary(inner: base.GradientTransformation) -> base.GradientTransformation:
    """Runs ``inner`` on the real and imaginary parts of every complex leaf as two real
    leaves (real leaves pass as they are), and joins its updates back:
    ``z = a + ib  ->  (a, b)``, ``inner``, ``(u_a, u_b) -> u_a + i u_b``. Second moments
    then see ``a^2`` and ``b^2`` apart, where a complex-aware optimizer would see
    ``|z|^2`` (Alegria et al. 2023 for the complex-valued setting).

    Args:
      inner: the transformation run on the split tree (any extra arguments are passed).

    Returns:
      A ``GradientTransformation`` with state ``SplitRealAndImaginaryState``.
    """
    inner = base.as_transformation(inner)

    def init(params):
        return SplitRealAndImaginaryState(inner.init(jax.tree.map(_split, params)))

    def update(updates, state, params=None, **extra):
        split_updates = jax.tree.map(_split, updates)
        split_params = None if params is None else jax.tree.map(_split, params)
        out, inner_state = inner.update(split_updates, state.inner_state, split_params, **extra)
        out = jax.tree.map(_join, out, is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays))
        return out, SplitRealAndImaginaryState(inner_state)

    return base.GradientTransformation(init, update)
