"""A Gaussian with a diagonal covariance, parametrized by its mean and log standard deviation.

The search distribution of evolution strategies and of the perturbation-based gradient
estimators: ``x = mu + exp(rho) * eps`` with ``eps ~ N(0, I)``, where optimizing
``(mu, rho)`` keeps the standard deviation positive without a constraint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp


class MultiNormalDiagFromLogScale:
    """The normal distribution ``N(mu, diag(exp(rho))^2)`` over arrays of one shape.

    ``mu`` and ``rho`` broadcast against each other to the distribution's shape ``S``;
    every element of a sample is an independent normal variable
    ``x_i = mu_i + exp(rho_i) * eps_i``, and a sample's log-density is the sum over ``S``

        log p(x) = sum_i [ -(x_i - mu_i)^2 / (2 exp(2 rho_i)) - rho_i - log(2 pi) / 2 ].

    Attributes:
        loc: the mean ``mu``, an array (or scalar) of floats.
        log_scale: ``rho``, the natural log of the standard deviation, an array (or
            scalar) of floats that broadcasts with ``loc``; any real value (the standard
            deviation ``exp(rho)`` is then positive). Shapes that do not broadcast raise
            ``ValueError``.
    """

    def __init__(self, loc: jax.typing.ArrayLike, log_scale: jax.typing.ArrayLike):
        self._loc = jnp.asarray(loc)
        self._log_scale = jnp.asarray(log_scale)
        self._param_shape = jnp.broadcast_shapes(self._loc.shape, self._log_scale.shape)

    def sample(self, shape: Sequence[int], key: jax.Array) -> jax.Array:
        """Draws independent samples ``mu + exp(rho) * eps``, ``eps ~ N(0, I)``.

        Args:
            shape: the leading (batch) shape of the draw, a tuple or list of ints; ``()``
                for a single sample.
            key: a JAX random key (``jax.random.key`` or ``jax.random.PRNGKey``).

        Returns:
            An array of shape ``tuple(shape) + S`` (``S`` the broadcast shape of
            ``loc`` and ``log_scale``), in their common float dtype.
        """
        dtype = jnp.result_type(self._loc, self._log_scale, float)
        eps = jax.random.normal(key, shape=tuple(shape) + self._param_shape, dtype=dtype)
        return eps * jnp.exp(self._log_scale) + self._loc

    def log_prob(self, x: jax.typing.ArrayLike) -> jax.Array:
        """The log-density of ``x``, summed over the distribution's shape ``S``.

        Args:
            x: an array whose trailing axes broadcast with ``S``; leading axes are a batch.

        Returns:
            ``log p(x)`` as in the class docstring, with the trailing ``len(S)`` axes
            summed out (a scalar for ``x`` of shape ``S``).
        """
        z = (jnp.asarray(x) - self._loc) * jnp.exp(-self._log_scale)
        per_element = -0.5 * z * z - self._log_scale - 0.5 * math.log(2 * math.pi)
        axes = tuple(range(-len(self._param_shape), 0))
        return jnp.sum(per_element, axis=axes)

    @property
    def log_scale(self) -> jax.Array:
        """``rho``, the log standard deviation, as given (not broadcast)."""
        return self._log_scale

    @property
    def params(self) -> list[jax.Array]:
        """``[loc, log_scale]``, the parameters as given (not broadcast)."""
        return [self._loc, self._log_scale]


def multi_normal(
    loc: jax.typing.ArrayLike, log_scale: jax.typing.ArrayLike
) -> MultiNormalDiagFromLogScale:
    """A diagonal Gaussian ``N(loc, diag(exp(log_scale))^2)``, optax's ``multi_normal``.

    Args:
        loc: the mean, an array (or scalar) of floats.
        log_scale: the natural log of the standard deviation, an array (or scalar) of
            floats, any real value, that broadcasts with ``loc`` (``ValueError`` if the
            shapes do not broadcast).

    Returns:
        A ``MultiNormalDiagFromLogScale`` with ``sample(shape, key)``, ``log_prob(x)``
        and the properties ``params`` (``[loc, log_scale]``) and ``log_scale``.
    """
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)
