"""Differentially private aggregation of per-example gradients: clip, sum, add noise."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradxform._src import base, numerics, prng, validate
from gradxform._src.transforms.clipping import per_example_global_norm_clip


class DifferentiallyPrivateAggregateState(NamedTuple):
    """The state of ``differentially_private_aggregate``.

    Attributes:
        rng_key: the typed PRNG key of the next step's noise.
    """

    rng_key: jax.Array


def differentially_private_aggregate(
    l2_norm_clip: jax.typing.ArrayLike,
    noise_multiplier: jax.typing.ArrayLike,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> base.GradientTransformation:
    """The DP-SGD aggregation (Abadi et al. 2016, "Deep Learning with Differential
    Privacy"): the incoming updates carry a leading batch axis of ``B`` per-example
    gradients ``g_b``.

    ``u = (sum_b min(1, C / ||g_b||) g_b + sigma C xi) / B``, ``||g_b||`` the global norm of
    example ``b``'s gradient, ``xi`` standard normal noise per leaf (in the leaf's dtype).
    Each step splits the key into the next key and one key per leaf (in tree order), as
    optax, so the same key draws the same noise.

    Args:
      l2_norm_clip: the clipping norm ``C``, ``>= 0``.
      noise_multiplier: ``sigma``, ``>= 0``.
      key: a PRNG key or an int seed; default ``None``: key 0, with a warning (the
        privacy guarantee needs fresh randomness per run).
      seed: deprecated spelling of an int ``key``; default ``None``.

    Returns:
      A ``GradientTransformation`` with state ``DifferentiallyPrivateAggregateState``;
      its updates drop the batch axis.
    """
    validate.non_negative("l2_norm_clip", l2_norm_clip)
    validate.non_negative("noise_multiplier", noise_multiplier)
    key = prng.as_key(prng.key_or_seed("differentially_private_aggregate", key, seed))
    noise_std = l2_norm_clip * noise_multiplier

    def init(params):
        del params
        return DifferentiallyPrivateAggregateState(rng_key=key)

    def update(updates, state, params=None, **extra):
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        clipped, _ = per_example_global_norm_clip(leaves, l2_norm_clip)
        batch = leaves[0].shape[0]
        next_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)

        def noised(g, c, k):
            wide = numerics.upcast(c)
            noise = numerics.upcast(jax.random.normal(k, c.shape, g.dtype))
            return ((wide + noise_std * noise) / batch).astype(g.dtype)

        out = [noised(g, c, k) for g, c, k in zip(leaves, clipped, keys)]
        return jax.tree.unflatten(treedef, out), DifferentiallyPrivateAggregateState(next_key)

    return base.GradientTransformation(init, update)
