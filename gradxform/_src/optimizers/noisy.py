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
    The same key gives optax's draws.

    Args:
        learning_rate: ``lr``, a number ``>= 0`` or a schedule of the step count.
        eta: the initial noise variance, ``>= 0``. Default 0.01.
        gamma: the decay exponent of the variance, any finite number. Default 0.55.
        key: a PRNG key (typed, or a raw ``uint32`` key) or an int seed; ``None``
            (default) uses key 0 with a warning.
        seed: deprecated spelling of ``key`` (warns; passing both raises ``ValueError``).

    Returns:
        A ``GradientTransformation`` with state ``(AddNoiseState(count, rng_key),
        EmptyState())`` (``ScaleByScheduleState(count)`` last for a scheduled ``lr``).
    """
    step = scale_by_learning_rate(learning_rate)  # a bad learning rate fails before any warning
    return chain(add_noise(eta, gamma, key, seed=seed), step)
