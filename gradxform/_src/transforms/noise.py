"""Annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradxform._src import base, numerics, prng, validate


class AddNoiseState(NamedTuple):
    """The state of ``add_noise`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        rng_key: the typed PRNG key the next step splits.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    rng_key: jax.Array


def add_noise(
    eta: jax.typing.ArrayLike,
    gamma: jax.typing.ArrayLike,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> base.GradientTransformation:
    """Adds annealed Gaussian noise: ``u <- u + sqrt(eta / t**gamma) * n_t``, ``n_t ~ N(0, I)``.

    ``t`` is the 1-based step. Each step splits the state's key into the next key and
    one sampling key, which is split once more into one key per leaf (in tree order);
    the noise has each leaf's dtype, so with the same key the draws equal optax's.
    Neelakantan et al. (2015), "Adding Gradient Noise Improves Learning for Very Deep
    Networks".

    Args:
      eta: the base variance ``eta``, ``>= 0``.
      gamma: the decay exponent of the variance, finite (the paper uses 0.55).
      key: a PRNG key (typed, or a raw ``uint32`` key) or an int seed; default None
        uses key 0 with a warning.
      seed: deprecated spelling of ``key`` (warns; passing both raises ``ValueError``).

    Returns:
      The ``GradientTransformation``; its state is ``AddNoiseState(count, rng_key)``.
    """
    validate.non_negative("eta", eta)
    validate.finite("gamma", gamma)
    key = prng.key_or_seed("add_noise", key, seed)

    def init(params):
        base.check_float_leaves(params, "add_noise")
        return AddNoiseState(count=jnp.zeros([], jnp.int32), rng_key=prng.as_key(key))

    def update(updates, state, params=None, **extra):
        del params, extra
        count = numerics.safe_increment(state.count)
        std = jnp.sqrt(eta / count**gamma)
        rng_key, sample_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(leaves))
        noisy = [
            u + std * jax.random.normal(k, jnp.shape(u), jnp.asarray(u).dtype)
            for u, k in zip(leaves, keys)
        ]
        return jax.tree.unflatten(treedef, noisy), AddNoiseState(count=count, rng_key=rng_key)

    return base.GradientTransformation(init, update)
