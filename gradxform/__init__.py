"""gradxform: optimizers built from composable gradient transformations.

Every public name lives here, at ``gradxform.<name>``; the namespaces ``gradxform.tree``,
``gradxform.schedules``, ``gradxform.projections``, ``gradxform.torch_optim`` and
``gradxform.sharding`` group the rest. Modules under ``gradxform._src`` are private.
"""

from gradxform import tree
from gradxform._src.base import (
    EmptyState,
    GradientTransformation,
    OptState,
    Params,
    Schedule,
    ScalarOrSchedule,
    Updates,
    apply_updates,
    as_transformation,
    elementwise,
    identity,
    set_to_zero,
    stateless,
    stateless_with_tree_map,
)
from gradxform._src.combine import chain, divide, named_chain
from gradxform._src.numerics import (
    abs_sq,
    global_norm,
    safe_increment,
    safe_int32_increment,
    safe_norm,
    safe_root_mean_squares,
)
from gradxform._src.partition import MaskedNode, masked, multi_transform, partition
from gradxform._src.transforms.accumulation import bias_correction, ema, trace
from gradxform._src.transforms.adaptive import (
    nesterov_ema,
    scale_by_adam,
    scale_by_rms,
    second_moment_root,
)
from gradxform._src.transforms.scaling import scale, scale_by_learning_rate, scale_by_schedule
from gradxform._src.transforms.weight_decay import add_decayed_weights
from gradxform._src.optimizers.adam import adam, adamw
from gradxform._src.optimizers.sgd import ema_momentum, momentum, sgd

# --- foundation: remaining combinators and primitives ---

# --- catalogue ---

# --- schedules ---

# --- second order ---

__version__ = "0.1.0"
