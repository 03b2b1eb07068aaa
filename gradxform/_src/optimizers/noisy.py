"""SGD with annealed Gaussian gradient noise."""

from __future__ import annotations

import jax

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.noise import add_noise
from gradxform._src.transforms.scaling import scale_by_learning_rate


def noisy_sgd(
    learning_rate: base.ScalarOrSchedule,
    eta: jax.typing.ArrayLike = 0.01,
    gamma: jax.typing.ArrayLike = 0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> base.GradientTransformation:
    """Noisy SGD (Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for
    Very Deep Networks").

    ``x <- x - lr (g + n_t)``, ``n_t ~ N(0, eta / t^gamma)`` with ``t`` the 1-based step.
    Defaults ``eta=0.01, gamma=0.55``; ``key`` a PRNG key or int seed (default 0, with a
    warning; ``seed`` is its deprecated spelling). The same key gives optax's draws.
    """
    step = scale_by_learning_rate(learning_rate)  # a bad learning rate fails before any warning
    return chain(add_noise(eta, gamma, key, seed=seed), step)
