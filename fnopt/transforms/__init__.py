"""Gradient transforms (:class:`fnopt.Transform`): the first-order building blocks.

Modules: :mod:`~fnopt.transforms.scaling` (scale, learning rate, momentum, weight decay,
averaging), :mod:`~fnopt.transforms.adaptive` (Adam and the other moment-based
scalings), :mod:`~fnopt.transforms.layerwise` (factored / block / orthogonalised /
trust-ratio scalings), :mod:`~fnopt.transforms.clipping`, :mod:`~fnopt.transforms.combine`
(chain, masked, partition), :mod:`~fnopt.transforms.wrappers` (apply_if_finite,
accumulate, lookahead, inject_hyperparams), :mod:`~fnopt.transforms.extra` (the small
optax transforms), :mod:`~fnopt.transforms.plateau` (reduce_on_plateau) and
:mod:`~fnopt.transforms.projections` (feasible sets). :mod:`~fnopt.transforms.fused`
recognises chains torch has a fused kernel for.

Each factory captures its hyperparameters and returns ``Transform(init, update)``;
``update(grads, state, params) -> (updates, state)`` is pure. Updates are *added* to
params, so the transform that applies the learning rate carries the minus sign. The
math is written once over the flat list of leaves with the list-level ops of the
backend chosen from the leaves (:mod:`fnopt.backend`); every built-in ``update`` also
takes ``inplace`` (one expression, two destinations: with ``inplace=True`` the same
arithmetic lands in the state buffers the caller gave up).
"""

from __future__ import annotations

from fnopt.transforms import extra as _extra
from fnopt.transforms import plateau as _plateau
from fnopt.transforms import projections as projections
from fnopt.transforms._common import Direction as Direction
from fnopt.transforms._common import EmptyState as EmptyState
from fnopt.transforms.adaptive import ScaleByAdadeltaState as ScaleByAdadeltaState
from fnopt.transforms.adaptive import ScaleByAdagradState as ScaleByAdagradState
from fnopt.transforms.adaptive import ScaleByAdamaxState as ScaleByAdamaxState
from fnopt.transforms.adaptive import ScaleByAdamState as ScaleByAdamState
from fnopt.transforms.adaptive import ScaleByBeliefState as ScaleByBeliefState
from fnopt.transforms.adaptive import ScaleByLionState as ScaleByLionState
from fnopt.transforms.adaptive import ScaleByNadamState as ScaleByNadamState
from fnopt.transforms.adaptive import ScaleByRadamState as ScaleByRadamState
from fnopt.transforms.adaptive import ScaleByRmsState as ScaleByRmsState
from fnopt.transforms.adaptive import ScaleByRpropState as ScaleByRpropState
from fnopt.transforms.adaptive import ScaleByStddevState as ScaleByStddevState
from fnopt.transforms.adaptive import scale_by_adadelta as scale_by_adadelta
from fnopt.transforms.adaptive import scale_by_adagrad as scale_by_adagrad
from fnopt.transforms.adaptive import scale_by_adam as scale_by_adam
from fnopt.transforms.adaptive import scale_by_adamax as scale_by_adamax
from fnopt.transforms.adaptive import scale_by_belief as scale_by_belief
from fnopt.transforms.adaptive import scale_by_lion as scale_by_lion
from fnopt.transforms.adaptive import scale_by_nadam as scale_by_nadam
from fnopt.transforms.adaptive import scale_by_radam as scale_by_radam
from fnopt.transforms.adaptive import scale_by_rms as scale_by_rms
from fnopt.transforms.adaptive import scale_by_rprop as scale_by_rprop
from fnopt.transforms.adaptive import scale_by_stddev as scale_by_stddev
from fnopt.transforms.clipping import clip as clip
from fnopt.transforms.clipping import clip_by_global_norm as clip_by_global_norm
from fnopt.transforms.combine import MaskedState as MaskedState
from fnopt.transforms.combine import PartitionState as PartitionState
from fnopt.transforms.combine import chain as chain
from fnopt.transforms.combine import identity as identity
from fnopt.transforms.combine import masked as masked
from fnopt.transforms.combine import partition as partition
from fnopt.transforms.extra import AddNoiseState as AddNoiseState
from fnopt.transforms.extra import ScaleByScheduleState as ScaleByScheduleState
from fnopt.transforms.extra import ZeroNansState as ZeroNansState
from fnopt.transforms.extra import adaptive_grad_clip as adaptive_grad_clip
from fnopt.transforms.extra import add_noise as add_noise
from fnopt.transforms.extra import centralize as centralize
from fnopt.transforms.extra import keep_params_nonnegative as keep_params_nonnegative
from fnopt.transforms.extra import scale_by_schedule as scale_by_schedule
from fnopt.transforms.extra import set_to_zero as set_to_zero
from fnopt.transforms.extra import zero_nans as zero_nans
from fnopt.transforms.layerwise import ScaleByFactoredRmsState as ScaleByFactoredRmsState
from fnopt.transforms.layerwise import ScaleByMuonState as ScaleByMuonState
from fnopt.transforms.layerwise import scale_by_factored_rms as scale_by_factored_rms
from fnopt.transforms.layerwise import scale_by_muon as scale_by_muon
from fnopt.transforms.layerwise import scale_by_param_block_rms as scale_by_param_block_rms
from fnopt.transforms.layerwise import scale_by_trust_ratio as scale_by_trust_ratio
from fnopt.transforms.plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from fnopt.transforms.plateau import reduce_on_plateau as reduce_on_plateau
from fnopt.transforms.scaling import PolyakAverageState as PolyakAverageState
from fnopt.transforms.scaling import ScaleByLearningRateState as ScaleByLearningRateState
from fnopt.transforms.scaling import TraceState as TraceState
from fnopt.transforms.scaling import add_decayed_weights as add_decayed_weights
from fnopt.transforms.scaling import polyak_average as polyak_average
from fnopt.transforms.scaling import scale as scale
from fnopt.transforms.scaling import scale_by_learning_rate as scale_by_learning_rate
from fnopt.transforms.scaling import trace as trace
from fnopt.transforms.wrappers import AccumulateState as AccumulateState
from fnopt.transforms.wrappers import ApplyIfFiniteState as ApplyIfFiniteState
from fnopt.transforms.wrappers import InjectHyperparamsOptState as InjectHyperparamsOptState
from fnopt.transforms.wrappers import InjectHyperparamsState as InjectHyperparamsState
from fnopt.transforms.wrappers import LookaheadState as LookaheadState
from fnopt.transforms.wrappers import accumulate as accumulate
from fnopt.transforms.wrappers import apply_if_finite as apply_if_finite
from fnopt.transforms.wrappers import inject_hyperparams as inject_hyperparams
from fnopt.transforms.wrappers import lookahead as lookahead

__all__ = [
    "chain",
    "identity",
    "scale",
    "scale_by_learning_rate",
    "trace",
    "add_decayed_weights",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adagrad",
    "scale_by_adadelta",
    "scale_by_lion",
    "scale_by_rprop",
    "scale_by_factored_rms",
    "scale_by_param_block_rms",
    "scale_by_muon",
    "scale_by_trust_ratio",
    "scale_by_belief",
    "polyak_average",
    "clip",
    "clip_by_global_norm",
    "masked",
    "partition",
    "apply_if_finite",
    "accumulate",
    "lookahead",
    "inject_hyperparams",
    "EmptyState",
    "Direction",
    "ScaleByLearningRateState",
    "TraceState",
    "ScaleByAdamState",
    "ScaleByAdamaxState",
    "ScaleByNadamState",
    "ScaleByRadamState",
    "ScaleByRmsState",
    "ScaleByStddevState",
    "ScaleByAdagradState",
    "ScaleByAdadeltaState",
    "ScaleByLionState",
    "ScaleByRpropState",
    "ScaleByFactoredRmsState",
    "ScaleByMuonState",
    "ScaleByBeliefState",
    "PolyakAverageState",
    "MaskedState",
    "PartitionState",
    "ApplyIfFiniteState",
    "AccumulateState",
    "LookaheadState",
    "InjectHyperparamsState",
    "InjectHyperparamsOptState",
    "projections",
    *_extra.__all__,
    *_plateau.__all__,
]

# optax's transforms (fnopt/transforms/{scaling,layerwise,clipping,stepsize,adam_optax}.py)
from fnopt.transforms.adam_optax import ScaleByAmsgradState as ScaleByAmsgradState
from fnopt.transforms.adam_optax import scale_by_amsgrad as scale_by_amsgrad
from fnopt.transforms.clipping import clip_by_block_rms as clip_by_block_rms
from fnopt.transforms.combine import named_chain as named_chain
from fnopt.transforms.layerwise import ScaleBySM3State as ScaleBySM3State
from fnopt.transforms.layerwise import scale_by_sm3 as scale_by_sm3
from fnopt.transforms.multi_steps import MultiSteps as MultiSteps
from fnopt.transforms.multi_steps import MultiStepsState as MultiStepsState
from fnopt.transforms.multi_steps import skip_not_finite as skip_not_finite
from fnopt.transforms.scaling import EmaState as EmaState
from fnopt.transforms.scaling import (
    ScaleByOptimisticGradientState as ScaleByOptimisticGradientState,
)
from fnopt.transforms.scaling import ema as ema
from fnopt.transforms.scaling import (
    scale_by_optimistic_gradient as scale_by_optimistic_gradient,
)
from fnopt.transforms.scaling import scale_by_sign as scale_by_sign
from fnopt.transforms.stepsize import scale_by_polyak as scale_by_polyak
from fnopt.transforms.updates import apply_updates as apply_updates
from fnopt.transforms.updates import incremental_update as incremental_update
from fnopt.transforms.updates import periodic_update as periodic_update

__all__ += [
    "ScaleByAmsgradState", "scale_by_amsgrad", "clip_by_block_rms", "ScaleBySM3State",
    "scale_by_sm3", "EmaState", "ScaleByOptimisticGradientState", "ema",
    "scale_by_optimistic_gradient", "scale_by_sign", "scale_by_polyak", "named_chain",
    "MultiSteps", "MultiStepsState", "skip_not_finite", "apply_updates",
    "incremental_update", "periodic_update",
]
