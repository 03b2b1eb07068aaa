"""Frontier optimizers, as ``optax.contrib`` has them: ``gradxform.contrib.<name>``.

Every name of optax 0.2.8's ``optax.contrib`` lives here with optax's signature, defaults
and state layout (the same named tuples and field names, so ``jax.tree_util`` key paths
match), and only here: a name that optax keeps in ``contrib`` is not at ``gradxform``'s top
level either. ``dpsgd`` and ``differentially_private_aggregate`` are here too (optax's
top-level aliases of them are deprecated). Each optimizer is a short ``chain`` of the
primitives beside it.

What is here, by kind (each name's docstring gives its equations, paper, every argument
with its default and valid range, and the state it keeps):

- Adaptive: ``acprop``, ``ademamix``, ``simplified_ademamix``, ``adopt``, ``madgrad``,
  ``sophia`` (its Hessian estimate needs the loss function through
  ``update(..., obj_fn=...)``; ``hutchinson_estimator_diag_hessian`` is that estimate).
- Parameter-free (the step size is estimated): ``cocob``, ``dog``, ``dowg``,
  ``dadapt_adamw``, ``prodigy``, ``mechanize`` (tunes the scale of any optimizer).
- Polyak-type steps from the loss value: ``momo`` and ``momo_adam`` (they need it
  through ``update(..., value=...)``).
- Schedule-free: ``schedule_free_sgd``, ``schedule_free_adamw``, the ``schedule_free``
  wrapper; evaluate at ``schedule_free_eval_params(state, params)``.
- Matrix-aware: ``muon`` (Newton-Schulz orthogonalised momentum on matrices, AdamW
  elsewhere; ``orthogonalize_via_newton_schulz`` and ``MuonDimensionNumbers`` are its
  parts), ``galore`` (low-rank projected gradients; ``GaLoreDimensionNumbers``).
- Wrappers and helpers: ``normalize`` (divides the updates by their global norm),
  ``sam`` (sharpness-aware minimisation), ``reduce_on_plateau`` (a learning-rate
  scale driven by ``update(..., value=...)``), ``split_real_and_imaginary`` (runs a
  real-only transformation on complex parameters).
- Private training: ``dpsgd`` and ``differentially_private_aggregate`` (per-example
  gradients, a leading batch axis, clipped and noised).
- The ``scale_by_*`` primitives the optimizers are built from, and their ``*State`` named
  tuples.

Use them as any other transformation::

    import gradxform as gx

    opt = gx.contrib.prodigy()              # or gx.contrib.muon(0.02), ...
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = gx.apply_updates(params, updates)
"""

from gradxform._src.optimizers.contrib.acprop import acprop
from gradxform._src.optimizers.contrib.ademamix import ademamix, simplified_ademamix
from gradxform._src.optimizers.contrib.adopt import adopt
from gradxform._src.optimizers.contrib.cocob import cocob
from gradxform._src.optimizers.contrib.dadapt_adamw import DAdaptAdamWState, dadapt_adamw
from gradxform._src.optimizers.contrib.dog import dog, dowg
from gradxform._src.optimizers.contrib.dpsgd import dpsgd
from gradxform._src.optimizers.contrib.galore import galore
from gradxform._src.optimizers.contrib.madgrad import madgrad
from gradxform._src.optimizers.contrib.mechanic import MechanicState, mechanize
from gradxform._src.optimizers.contrib.momo import MomoAdamState, MomoState, momo, momo_adam
from gradxform._src.optimizers.contrib.muon import muon
from gradxform._src.optimizers.contrib.prodigy import prodigy
from gradxform._src.optimizers.contrib.sam import SAMState, sam
from gradxform._src.optimizers.contrib.schedule_free import schedule_free_adamw, schedule_free_sgd
from gradxform._src.optimizers.contrib.sophia import sophia
from gradxform._src.schedules.reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau
from gradxform._src.transforms.acprop import scale_by_acprop
from gradxform._src.transforms.ademamix import (
    ScaleByAdemamixState,
    ScaleBySimplifiedAdEMAMixState,
    scale_by_ademamix,
    scale_by_simplified_ademamix,
)
from gradxform._src.transforms.adopt import ScaleByAdoptState, scale_by_adopt
from gradxform._src.transforms.cocob import COCOBState, scale_by_cocob
from gradxform._src.transforms.dog import DoGState, DoWGState, scale_by_dog, scale_by_dowg
from gradxform._src.transforms.galore import (
    GaLoreDimensionNumbers,
    GaLoreState,
    scale_by_galore,
)
from gradxform._src.transforms.madgrad import MadgradState, scale_by_madgrad
from gradxform._src.transforms.normalize import NormalizeState, normalize
from gradxform._src.transforms.orthogonalize import (
    MuonDimensionNumbers,
    MuonState,
    orthogonalize_via_newton_schulz,
    scale_by_muon,
    scale_by_shape,
)
from gradxform._src.transforms.private_aggregate import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
)
from gradxform._src.transforms.prodigy import ProdigyState, scale_by_prodigy
from gradxform._src.transforms.schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_eval_params,
)
from gradxform._src.transforms.sophia import (
    HutchinsonState,
    SophiaState,
    hutchinson_estimator_diag_hessian,
    scale_by_sophia,
)
from gradxform._src.transforms.split_complex import (
    SplitRealAndImaginaryState,
    split_real_and_imaginary,
)

__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DifferentiallyPrivateAggregateState",
    "DoGState",
    "DoWGState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "HutchinsonState",
    "MadgradState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScaleByAdoptState",
    "ScaleBySimplifiedAdEMAMixState",
    "ScheduleFreeState",
    "SophiaState",
    "SplitRealAndImaginaryState",
    "acprop",
    "ademamix",
    "adopt",
    "cocob",
    "dadapt_adamw",
    "differentially_private_aggregate",
    "dog",
    "dowg",
    "dpsgd",
    "galore",
    "hutchinson_estimator_diag_hessian",
    "madgrad",
    "mechanize",
    "momo",
    "momo_adam",
    "muon",
    "normalize",
    "orthogonalize_via_newton_schulz",
    "prodigy",
    "reduce_on_plateau",
    "sam",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_galore",
    "scale_by_madgrad",
    "scale_by_muon",
    "scale_by_prodigy",
    "scale_by_shape",
    "scale_by_simplified_ademamix",
    "scale_by_sophia",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "simplified_ademamix",
    "sophia",
    "split_real_and_imaginary",
]
