"""Scaling a gradient on its way back, leaving the forward value alone."""

from __future__ import annotations

from typing import Any

import jax


@jax.custom_vjp
def _scaled(inputs: Any, scale: jax.typing.ArrayLike) -> Any:
    del scale
    return inputs


def _scaled_forward(inputs, scale):
    return inputs, scale


def _scaled_backward(scale, cotangents):
    # scale gets no gradient: it is a constant of the backward pass.
    return jax.tree.map(lambda g: g * scale, cotangents), None


_scaled.defvjp(_scaled_forward, _scaled_backward)


def scale_gradient(inputs: Any, scale: jax.typing.ArrayLike) -> Any:
    """The identity on ``inputs`` whose backward pass multiplies the cotangent by
    ``scale``: ``f(x) = x``, ``df/dx = scale``. ``scale = 0`` is ``lax.stop_gradient``.

    Args:
      inputs: A pytree of arrays.
      scale: The factor applied to the gradient flowing back through ``inputs`` (a
        scalar; a concrete ``1`` or ``0`` is handled without a custom VJP).

    Returns:
      ``inputs`` unchanged.
    """
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        if scale == 1.0:
            return inputs
        if scale == 0.0:
            return jax.lax.stop_gradient(inputs)
    return _scaled(inputs, scale)
