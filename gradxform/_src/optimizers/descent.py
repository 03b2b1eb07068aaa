"""The shape of every optimizer alias: a scaling, optional decoupled weight decay, then
the learning rate."""

from __future__ import annotations

from gradxform._src import base
from gradxform._src.combine import chain
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def descent(
    scaling: base.GradientTransformation,
    learning_rate: base.ScalarOrSchedule,
    weight_decay: base.ScalarOrSchedule | None = None,
    mask: base.MaskOrFn = None,
) -> base.GradientTransformation:
    """``chain(scaling, [add_decayed_weights(wd, mask)], scale_by_learning_rate(lr))``.

    ``x <- x - lr (scaling(g) + wd x)``, without the decay term when ``weight_decay`` is
    None: optax's aliases, e.g. ``adamw``, are this chain.

    Args:
      scaling: the transformation that turns gradients into a direction (e.g.
        ``scale_by_adam()``).
      learning_rate: ``lr``, a scalar or a schedule of the step.
      weight_decay: ``wd``, the decoupled weight decay, a scalar or a schedule of the step,
        or None (default) for no decay term.
      mask: which leaves decay: a tree of bools like the params, or a function of the
        params giving one; None (default) decays every leaf.

    Returns:
      The ``GradientTransformation``. Each stateful member counts its own steps, so the
      state nests as optax's, e.g. ``(ScaleByAdamState(count, mu, nu), EmptyState(),
      ScaleByScheduleState(count))``.
    """
    decay = [] if weight_decay is None else [add_decayed_weights(weight_decay, mask)]
    return chain(scaling, *decay, scale_by_learning_rate(learning_rate))
