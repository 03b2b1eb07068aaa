"""gradxform: optimizers built from composable gradient transformations.

Every public name lives here, at ``gradxform.<name>``; the namespaces ``gradxform.tree``,
``gradxform.schedules``, ``gradxform.projections``, ``gradxform.torch_optim``,
``gradxform.contrib`` and ``gradxform.sharding`` group the rest. Modules under
``gradxform._src`` are private.
"""

# Imports sorted by module path: each _src module is one topic (see its docstring).
from gradxform import (
    contrib,  # optax.contrib's optimizers live only there
    microbatching,
    projections,
    schedules,
    sharding,
    torch_optim,
    tree,
)
from gradxform._src.base import (
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    MaskOrFn,
    OptState,
    Params,
    ScalarOrSchedule,
    Schedule,
    StatefulSchedule,
    TransformInitFn,
    TransformUpdateExtraArgsFn,
    TransformUpdateFn,
    Updates,
    apply_updates,
    as_transformation,
    elementwise,
    identity,
    init_empty_state,
    set_to_zero,
    stateless,
    stateless_with_tree_map,
    with_extra_args_support,
)
from gradxform._src.combine import chain, divide, named_chain
from gradxform._src.conditional import (
    ConditionallyMaskState,
    ConditionallyTransformState,
    conditionally_mask,
    conditionally_transform,
)
from gradxform._src.flatten import flatten
from gradxform._src.freeze import freeze, selective_transform
from gradxform._src.grouping import GroupedState, grouped
from gradxform._src.inject import (
    InjectStatefulHyperparamsState,
    WrappedSchedule,
    inject_hyperparams,
    inject_stateful_hyperparams,
)
from gradxform._src.kronecker.blocking import BlockLayout, block_layout, merge_small_dims
from gradxform._src.kronecker.eigenbasis import eigenbasis, project, qr_power_step
from gradxform._src.kronecker.grafting import GraftState, graft, graft_norm, graft_step
from gradxform._src.kronecker.psgd import (
    balance,
    fit_factors,
    init_factors,
    norm_lower_bound,
    precondition,
    triangular_axes,
)
from gradxform._src.kronecker.psgd_kron import (
    ScaleByPsgdKronState,
    precond_update_prob_schedule,
    psgd_kron,
    scale_by_psgd_kron,
)
from gradxform._src.kronecker.refresh import is_refresh_step, refresh_every
from gradxform._src.kronecker.roots import (
    coupled_newton_inverse_root,
    largest_eigenvalue,
    matrix_inverse_pth_root,
    matrix_inverse_pth_root_eigh,
    power_iteration,
    robust_matrix_inverse_pth_root,
)
from gradxform._src.kronecker.shampoo import ShampooState, shampoo
from gradxform._src.kronecker.soap import ScaleBySoapState, scale_by_soap, soap
from gradxform._src.kronecker.statistics import accumulate as accumulate_statistic
from gradxform._src.kronecker.statistics import axis_gram, block_grams
from gradxform._src.lookahead import LookaheadParams, LookaheadState, lookahead
from gradxform._src.microbatching import microbatch
from gradxform._src.multi_normal import multi_normal
from gradxform._src.multi_steps import (
    ApplyEvery,
    MultiSteps,
    MultiStepsState,
    ShouldSkipUpdateFunction,
    apply_every,
)
from gradxform._src.nnls import nnls
from gradxform._src.non_finite import (
    ApplyIfFiniteState,
    ZeroNansState,
    apply_if_finite,
    skip_large_updates,
    skip_not_finite,
    zero_nans,
)
from gradxform._src.numerics import (
    abs_sq,
    global_norm,
    safe_increment,
    safe_int32_increment,
    safe_norm,
    safe_root_mean_squares,
)
from gradxform._src.optimizers.adagrad import adagrad
from gradxform._src.optimizers.adam import adam, adamw
from gradxform._src.optimizers.adam_variants import (
    adabelief,
    adamax,
    adamaxw,
    amsgrad,
    nadam,
    nadamw,
    radam,
    yogi,
)
from gradxform._src.optimizers.adan import adan
from gradxform._src.optimizers.factored import adafactor, sm3
from gradxform._src.optimizers.layerwise import fromage, lamb, lars, novograd
from gradxform._src.optimizers.noisy import noisy_sgd
from gradxform._src.optimizers.optimistic import (
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
)
from gradxform._src.optimizers.rms import adadelta, rmsprop
from gradxform._src.optimizers.rprop import rprop
from gradxform._src.optimizers.sgd import ema_momentum, momentum, sgd
from gradxform._src.optimizers.sign import lion, sign_sgd, signum
from gradxform._src.packing import Packed, pack
from gradxform._src.partition import (
    MaskedNode,
    MaskedState,
    MultiTransformState,
    PartitionState,
    masked,
    multi_transform,
    partition,
)
from gradxform._src.scale_gradient import scale_gradient
from gradxform._src.second_order.lbfgs import ScaleByLBFGSState, lbfgs, scale_by_lbfgs
from gradxform._src.second_order.linesearch import (
    BacktrackingLinesearchInfo,
    ScaleByBacktrackingLinesearchState,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_backtracking_linesearch,
    scale_by_zoom_linesearch,
    value_and_grad_from_state,
)
from gradxform._src.second_order.newton import ScaleByNewtonState, newton, scale_by_newton
from gradxform._src.second_order.polyak import polyak_sgd, scale_by_polyak
from gradxform._src.second_order.projected import projected
from gradxform._src.state_access import map_params as tree_map_params  # optax's name
from gradxform._src.target_updates import incremental_update, periodic_update
from gradxform._src.train_step import TrainState, TrainStep, train_step
from gradxform._src.transforms.adadelta import ScaleByAdaDeltaState, scale_by_adadelta
from gradxform._src.transforms.adagrad_rmsprop import (
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from gradxform._src.transforms.adam import (
    NesterovEmaState,
    ScaleByAdamState,
    nesterov_ema,
    scale_by_adam,
    second_moment_root,
)
from gradxform._src.transforms.adam_variants import (
    ScaleByAmsgradState,
    ScaleByBeliefState,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)
from gradxform._src.transforms.adan import ScaleByAdanState, scale_by_adan
from gradxform._src.transforms.centralization import centralize
from gradxform._src.transforms.clipping import (
    adaptive_grad_clip,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
    unitwise_clip,
    unitwise_norm,
)
from gradxform._src.transforms.constrain import keep_params_nonnegative
from gradxform._src.transforms.distance_over_gradients import (
    ScaleByDistanceOverGradientsState,
    scale_by_distance_over_gradients,
)
from gradxform._src.transforms.factored import (
    FactoredState,
    ScaleBySM3State,
    scale_by_factored_rms,
    scale_by_sm3,
)
from gradxform._src.transforms.layerwise import (
    ScaleByNovogradState,
    scale_by_novograd,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
)
from gradxform._src.transforms.lion import ScaleByLionState, scale_by_lion
from gradxform._src.transforms.momentum import (
    BiasCorrectionState,
    EmaState,
    TraceState,
    bias_correction,
    ema,
    trace,
)
from gradxform._src.transforms.monitor import (
    MonitorState,
    SnapshotState,
    measure_with_ema,
    monitor,
    snapshot,
)
from gradxform._src.transforms.noise import AddNoiseState, add_noise
from gradxform._src.transforms.optimistic import (
    ScaleByOptimisticGradientState,
    scale_by_optimistic_gradient,
)
from gradxform._src.transforms.rprop import ScaleByRpropState, scale_by_rprop
from gradxform._src.transforms.scaling import (
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)
from gradxform._src.transforms.sign import scale_by_sign
from gradxform._src.transforms.trust_ratio import scale_by_trust_ratio
from gradxform._src.transforms.update_norm import normalize_by_update_norm
from gradxform._src.transforms.weight_decay import WeightDecaySchedule, add_decayed_weights
from gradxform.schedules import (
    constant_schedule,
    cosine_decay_schedule,
    cosine_onecycle_schedule,
    exponential_decay,
    factor_schedule,
    inverse_power_decay,
    join_schedules,
    linear_onecycle_schedule,
    linear_schedule,
    multi_factor_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    sgdr_schedule,
    square_root_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)

InjectHyperparamsState = InjectStatefulHyperparamsState  # optax's older name for the same state

__version__ = "0.1.0"

__all__ = [
    "AddNoiseState",
    "ApplyEvery",
    "ApplyIfFiniteState",
    "BacktrackingLinesearchInfo",
    "BiasCorrectionState",
    "BlockLayout",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "EmaState",
    "EmptyState",
    "FactoredState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "GraftState",
    "GroupedState",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MaskOrFn",
    "MaskedNode",
    "MaskedState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "NesterovEmaState",
    "OptState",
    "Packed",
    "Params",
    "PartitionState",
    "ScalarOrSchedule",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByBeliefState",
    "ScaleByDistanceOverGradientsState",
    "ScaleByLBFGSState",
    "ScaleByLionState",
    "ScaleByNewtonState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByPsgdKronState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "ScaleBySM3State",
    "ScaleByScheduleState",
    "ScaleBySoapState",
    "ScaleByZoomLinesearchState",
    "Schedule",
    "ShampooState",
    "ShouldSkipUpdateFunction",
    "SnapshotState",
    "StatefulSchedule",
    "TraceState",
    "TrainState",
    "TrainStep",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
    "WeightDecaySchedule",
    "WrappedSchedule",
    "ZeroNansState",
    "ZoomLinesearchInfo",
    "abs_sq",
    "accumulate_statistic",
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "amsgrad",
    "apply_every",
    "apply_if_finite",
    "apply_updates",
    "as_transformation",
    "axis_gram",
    "balance",
    "bias_correction",
    "block_grams",
    "block_layout",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_mask",
    "conditionally_transform",
    "constant_schedule",
    "contrib",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "coupled_newton_inverse_root",
    "divide",
    "eigenbasis",
    "elementwise",
    "ema",
    "ema_momentum",
    "exponential_decay",
    "factor_schedule",
    "fit_factors",
    "flatten",
    "freeze",
    "fromage",
    "global_norm",
    "graft",
    "graft_norm",
    "graft_step",
    "grouped",
    "identity",
    "incremental_update",
    "init_empty_state",
    "init_factors",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "inverse_power_decay",
    "is_refresh_step",
    "join_schedules",
    "keep_params_nonnegative",
    "lamb",
    "largest_eigenvalue",
    "lars",
    "lbfgs",
    "linear_onecycle_schedule",
    "linear_schedule",
    "lion",
    "lookahead",
    "masked",
    "matrix_inverse_pth_root",
    "matrix_inverse_pth_root_eigh",
    "measure_with_ema",
    "merge_small_dims",
    "microbatch",
    "microbatching",
    "momentum",
    "monitor",
    "multi_factor_schedule",
    "multi_normal",
    "multi_transform",
    "nadam",
    "nadamw",
    "named_chain",
    "nesterov_ema",
    "newton",
    "nnls",
    "noisy_sgd",
    "norm_lower_bound",
    "normalize_by_update_norm",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "pack",
    "partition",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "periodic_update",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polyak_sgd",
    "polynomial_schedule",
    "power_iteration",
    "precond_update_prob_schedule",
    "precondition",
    "project",
    "projected",
    "projections",
    "psgd_kron",
    "qr_power_step",
    "radam",
    "refresh_every",
    "rmsprop",
    "robust_matrix_inverse_pth_root",
    "rprop",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "scale",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_backtracking_linesearch",
    "scale_by_belief",
    "scale_by_distance_over_gradients",
    "scale_by_factored_rms",
    "scale_by_lbfgs",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_newton",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_polyak",
    "scale_by_psgd_kron",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_soap",
    "scale_by_stddev",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "scale_by_zoom_linesearch",
    "scale_gradient",
    "schedules",
    "second_moment_root",
    "selective_transform",
    "set_to_zero",
    "sgd",
    "sgdr_schedule",
    "shampoo",
    "sharding",
    "sign_sgd",
    "signum",
    "skip_large_updates",
    "skip_not_finite",
    "sm3",
    "snapshot",
    "soap",
    "square_root_schedule",
    "stateless",
    "stateless_with_tree_map",
    "torch_optim",
    "trace",
    "train_step",
    "tree",
    "tree_map_params",
    "triangular_axes",
    "unitwise_clip",
    "unitwise_norm",
    "value_and_grad_from_state",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "with_extra_args_support",
    "yogi",
    "zero_nans",
]
