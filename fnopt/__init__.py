"""fnopt: pure-function optimizers for NumPy and PyTorch.

Optimizers are pure step functions ``(params, grad_fn, state) -> (params, state)``;
gradients come from interchangeable providers (:mod:`fnopt.grad`); one loop,
:func:`fixed_point`, drives any of them until a criterion from :mod:`fnopt.stop` holds.
"""

import sys as _sys

from fnopt import backend as backend
from fnopt import callbacks as callbacks
from fnopt import datasets as datasets
from fnopt import distributed as distributed
from fnopt import grad as grad
from fnopt import implicit as implicit
from fnopt import objectives as objectives
from fnopt import schedules as schedules
from fnopt import stop as stop
from fnopt import testing as testing
from fnopt import tree as tree
from fnopt._base import Descent as Descent
from fnopt._base import DescentState as DescentState
from fnopt._base import GradFn as GradFn
from fnopt._base import Optimizer as Optimizer
from fnopt._base import ParamsModifiedError as ParamsModifiedError
from fnopt._base import Transform as Transform
from fnopt._base import learning_rate_of as learning_rate_of
from fnopt.batched import BatchedResult as BatchedResult
from fnopt.batched import batched as batched
from fnopt.checkpoint import Checkpoint as Checkpoint
from fnopt.checkpoint import CheckpointError as CheckpointError
from fnopt.checkpoint import load as load
from fnopt.checkpoint import save as save
from fnopt.checkpoint import to_numpy as to_numpy
from fnopt.checkpoint import to_torch as to_torch
from fnopt.loop import History as History
from fnopt.loop import OptimizationError as OptimizationError
from fnopt.loop import Result as Result
from fnopt.loop import StepFailed as StepFailed
from fnopt.loop import fixed_point as fixed_point
from fnopt.minimize import LbfgsInvHessProduct as LbfgsInvHessProduct
from fnopt.minimize import OptimizeResult as OptimizeResult
from fnopt.minimize import OptimizeWarning as OptimizeWarning
from fnopt.minimize import minimize as minimize
from fnopt.objectives import problems as problems
from fnopt.objectives import tasks as tasks
from fnopt.optimizers import adabelief as adabelief
from fnopt.optimizers import adadelta as adadelta
from fnopt.optimizers import adafactor as adafactor
from fnopt.optimizers import adagrad as adagrad
from fnopt.optimizers import adam as adam
from fnopt.optimizers import adamax as adamax
from fnopt.optimizers import adamw as adamw
from fnopt.optimizers import asgd as asgd
from fnopt.optimizers import descent as descent
from fnopt.optimizers import lamb as lamb
from fnopt.optimizers import lars as lars
from fnopt.optimizers import lion as lion
from fnopt.optimizers import muon as muon
from fnopt.optimizers import nadam as nadam
from fnopt.optimizers import radam as radam
from fnopt.optimizers import rmsprop as rmsprop
from fnopt.optimizers import rprop as rprop
from fnopt.optimizers import sgd as sgd
from fnopt.optimizers.lbfgsb import lbfgsb as lbfgsb
from fnopt.optimizers.linesearch import LineSearchResult as LineSearchResult
from fnopt.optimizers.linesearch import LineSearchStatus as LineSearchStatus
from fnopt.optimizers.linesearch import backtracking as backtracking
from fnopt.optimizers.linesearch import line_search as line_search
from fnopt.optimizers.linesearch import strong_wolfe as strong_wolfe
from fnopt.optimizers.second_order import bfgs as bfgs
from fnopt.optimizers.second_order import lbfgs as lbfgs
from fnopt.optimizers.second_order import newton as newton
from fnopt.optimizers.second_order import newton_cg as newton_cg
from fnopt.optimizers.second_order import nonlinear_cg as nonlinear_cg
from fnopt.stop import Reason as Reason
from fnopt.transforms import accumulate as accumulate
from fnopt.transforms import add_decayed_weights as add_decayed_weights
from fnopt.transforms import apply_if_finite as apply_if_finite
from fnopt.transforms import chain as chain
from fnopt.transforms import clip as clip
from fnopt.transforms import clip_by_global_norm as clip_by_global_norm
from fnopt.transforms import identity as identity
from fnopt.transforms import inject_hyperparams as inject_hyperparams
from fnopt.transforms import lookahead as lookahead
from fnopt.transforms import masked as masked
from fnopt.transforms import partition as partition
from fnopt.transforms import polyak_average as polyak_average
from fnopt.transforms import projections as projections
from fnopt.transforms import scale as scale
from fnopt.transforms import scale_by_adadelta as scale_by_adadelta
from fnopt.transforms import scale_by_adagrad as scale_by_adagrad
from fnopt.transforms import scale_by_adam as scale_by_adam
from fnopt.transforms import scale_by_adamax as scale_by_adamax
from fnopt.transforms import scale_by_belief as scale_by_belief
from fnopt.transforms import scale_by_factored_rms as scale_by_factored_rms
from fnopt.transforms import scale_by_learning_rate as scale_by_learning_rate
from fnopt.transforms import scale_by_lion as scale_by_lion
from fnopt.transforms import scale_by_muon as scale_by_muon
from fnopt.transforms import scale_by_nadam as scale_by_nadam
from fnopt.transforms import scale_by_param_block_rms as scale_by_param_block_rms
from fnopt.transforms import scale_by_radam as scale_by_radam
from fnopt.transforms import scale_by_rms as scale_by_rms
from fnopt.transforms import scale_by_rprop as scale_by_rprop
from fnopt.transforms import scale_by_stddev as scale_by_stddev
from fnopt.transforms import scale_by_trust_ratio as scale_by_trust_ratio
from fnopt.transforms import trace as trace

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # ``fnopt.torch`` imports torch, so it is loaded on first use, never by ``import fnopt``.
    if name == "torch":
        import importlib

        return importlib.import_module("fnopt.torch")
    raise AttributeError(f"module 'fnopt' has no attribute {name!r}")

__all__ = [
    "adadelta",
    "adafactor",
    "muon",
    "scale_by_muon",
    "lamb",
    "lars",
    "adabelief",
    "scale_by_trust_ratio",
    "scale_by_belief",
    "scale_by_factored_rms",
    "scale_by_param_block_rms",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "lion",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "accumulate",
    "apply_if_finite",
    "clip",
    "clip_by_global_norm",
    "inject_hyperparams",
    "lookahead",
    "masked",
    "partition",
    "polyak_average",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_lion",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_stddev",
    "schedules",
    "Checkpoint",
    "CheckpointError",
    "BatchedResult",
    "Descent",
    "DescentState",
    "GradFn",
    "History",
    "LineSearchResult",
    "LineSearchStatus",
    "OptimizationError",
    "Optimizer",
    "ParamsModifiedError",
    "Reason",
    "Result",
    "StepFailed",
    "Transform",
    "add_decayed_weights",
    "backend",
    "batched",
    "callbacks",
    "backtracking",
    "bfgs",
    "lbfgs",
    "newton",
    "newton_cg",
    "nonlinear_cg",
    "line_search",
    "strong_wolfe",
    "datasets",
    "chain",
    "descent",
    "distributed",
    "fixed_point",
    "grad",
    "implicit",
    "identity",
    "learning_rate_of",
    "load",
    "save",
    "to_numpy",
    "to_torch",
    "scale",
    "scale_by_learning_rate",
    "sgd",
    "objectives",
    "problems",
    "stop",
    "tasks",
    "testing",
    "trace",
    "tree",
    "projections",
    "lbfgsb",
    "minimize",
    "OptimizeResult",
    "OptimizeWarning",
    "LbfgsInvHessProduct",
]

# the optimizers people moved to after Adam, and the small optax transforms
from fnopt.optimizers import adan as adan  # noqa: E402
from fnopt.optimizers import ademamix as ademamix  # noqa: E402
from fnopt.optimizers import adopt as adopt  # noqa: E402
from fnopt.optimizers import dadapt_adam as dadapt_adam  # noqa: E402
from fnopt.optimizers import novograd as novograd  # noqa: E402
from fnopt.optimizers import prodigy as prodigy  # noqa: E402
from fnopt.optimizers import sam as sam  # noqa: E402
from fnopt.optimizers import schedule_free_adamw as schedule_free_adamw  # noqa: E402
from fnopt.optimizers import schedule_free_eval_params as schedule_free_eval_params  # noqa: E402
from fnopt.optimizers import schedule_free_sgd as schedule_free_sgd  # noqa: E402
from fnopt.optimizers import yogi as yogi  # noqa: E402
from fnopt.optimizers.recent import scale_by_adan as scale_by_adan  # noqa: E402
from fnopt.optimizers.recent import scale_by_ademamix as scale_by_ademamix  # noqa: E402
from fnopt.optimizers.recent import scale_by_adopt as scale_by_adopt  # noqa: E402
from fnopt.optimizers.recent import scale_by_dadapt_adam as scale_by_dadapt_adam  # noqa: E402
from fnopt.optimizers.recent import scale_by_novograd as scale_by_novograd  # noqa: E402
from fnopt.optimizers.recent import scale_by_prodigy as scale_by_prodigy  # noqa: E402
from fnopt.optimizers.recent import scale_by_schedule_free as scale_by_schedule_free  # noqa: E402
from fnopt.optimizers.recent import scale_by_yogi as scale_by_yogi  # noqa: E402
from fnopt.transforms.extra import adaptive_grad_clip as adaptive_grad_clip  # noqa: E402
from fnopt.transforms.extra import add_noise as add_noise  # noqa: E402
from fnopt.transforms.extra import centralize as centralize  # noqa: E402
from fnopt.transforms.extra import keep_params_nonnegative as keep_params_nonnegative  # noqa: E402
from fnopt.transforms.extra import scale_by_schedule as scale_by_schedule  # noqa: E402
from fnopt.transforms.extra import set_to_zero as set_to_zero  # noqa: E402
from fnopt.transforms.extra import zero_nans as zero_nans  # noqa: E402

__all__ += [
    "adan", "ademamix", "adopt", "dadapt_adam", "novograd", "prodigy", "sam",
    "schedule_free_adamw", "schedule_free_eval_params", "schedule_free_sgd", "yogi",
    "scale_by_adan", "scale_by_ademamix", "scale_by_adopt", "scale_by_dadapt_adam",
    "scale_by_novograd", "scale_by_prodigy", "scale_by_schedule_free", "scale_by_yogi",
    "adaptive_grad_clip", "add_noise", "centralize", "keep_params_nonnegative",
    "scale_by_schedule", "set_to_zero", "zero_nans",
]

from fnopt.data import Epochs as Epochs  # noqa: E402
from fnopt.data import epochs as epochs  # noqa: E402

__all__ += ["Epochs", "epochs"]

from fnopt.transforms.plateau import ReduceLROnPlateauState as ReduceLROnPlateauState  # noqa: E402
from fnopt.transforms.plateau import reduce_on_plateau as reduce_on_plateau  # noqa: E402

__all__ += ["ReduceLROnPlateauState", "reduce_on_plateau"]

# least squares (fnopt.residuals, fnopt.lsq, fnopt._lsq_api)
from fnopt._lsq_api import LeastSquaresResult as LeastSquaresResult  # noqa: E402
from fnopt._lsq_api import covariance as covariance  # noqa: E402
from fnopt._lsq_api import curve_fit as curve_fit  # noqa: E402
from fnopt._lsq_api import least_squares as least_squares  # noqa: E402
from fnopt.grad import residuals as residuals  # noqa: E402
from fnopt.optimizers.dogbox import dogbox as dogbox  # noqa: E402
from fnopt.optimizers.lsq import LeastSquaresState as LeastSquaresState  # noqa: E402
from fnopt.optimizers.lsq import LeastSquaresStop as LeastSquaresStop  # noqa: E402
from fnopt.optimizers.lsq import gauss_newton as gauss_newton  # noqa: E402
from fnopt.optimizers.lsq import levenberg_marquardt as levenberg_marquardt  # noqa: E402
from fnopt.optimizers.lsq import levenberg_marquardt_cg as levenberg_marquardt_cg  # noqa: E402
from fnopt.optimizers.lsq import trust_region_reflective as trust_region_reflective  # noqa: E402

__all__ += [
    "LeastSquaresResult",
    "LeastSquaresState",
    "LeastSquaresStop",
    "covariance",
    "curve_fit",
    "gauss_newton",
    "least_squares",
    "levenberg_marquardt",
    "dogbox",
    "levenberg_marquardt_cg",
    "residuals",
    "trust_region_reflective",
]
from fnopt.objectives import lsq_problems as lsq_problems  # noqa: E402
from fnopt.optimizers import lsq as lsq  # noqa: E402

__all__ += ["lsq", "lsq_problems"]

# optax's names (issue 21): the optax-only optimizers and transforms
from fnopt.optimizers import adamaxw as adamaxw  # noqa: E402
from fnopt.optimizers import amsgrad as amsgrad  # noqa: E402
from fnopt.optimizers import fromage as fromage  # noqa: E402
from fnopt.optimizers import nadamw as nadamw  # noqa: E402
from fnopt.optimizers import noisy_sgd as noisy_sgd  # noqa: E402
from fnopt.optimizers import optimistic_adam as optimistic_adam  # noqa: E402
from fnopt.optimizers import optimistic_adam_v2 as optimistic_adam_v2  # noqa: E402
from fnopt.optimizers import (  # noqa: E402
    optimistic_gradient_descent as optimistic_gradient_descent,
)
from fnopt.optimizers import polyak_sgd as polyak_sgd  # noqa: E402
from fnopt.optimizers import sign_sgd as sign_sgd  # noqa: E402
from fnopt.optimizers import signum as signum  # noqa: E402
from fnopt.optimizers import sm3 as sm3  # noqa: E402
from fnopt.transforms import MultiSteps as MultiSteps  # noqa: E402
from fnopt.transforms import MultiStepsState as MultiStepsState  # noqa: E402
from fnopt.transforms import apply_updates as apply_updates  # noqa: E402
from fnopt.transforms import clip_by_block_rms as clip_by_block_rms  # noqa: E402
from fnopt.transforms import ema as ema  # noqa: E402
from fnopt.transforms import incremental_update as incremental_update  # noqa: E402
from fnopt.transforms import named_chain as named_chain  # noqa: E402
from fnopt.transforms import periodic_update as periodic_update  # noqa: E402
from fnopt.transforms import scale_by_amsgrad as scale_by_amsgrad  # noqa: E402
from fnopt.transforms import (  # noqa: E402
    scale_by_optimistic_gradient as scale_by_optimistic_gradient,
)
from fnopt.transforms import scale_by_polyak as scale_by_polyak  # noqa: E402
from fnopt.transforms import scale_by_sign as scale_by_sign  # noqa: E402
from fnopt.transforms import scale_by_sm3 as scale_by_sm3  # noqa: E402
from fnopt.transforms import skip_not_finite as skip_not_finite  # noqa: E402

__all__ += [
    "adamaxw", "amsgrad", "fromage", "nadamw", "noisy_sgd", "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent", "polyak_sgd", "sign_sgd", "signum", "sm3",
    "clip_by_block_rms", "ema", "scale_by_amsgrad", "scale_by_optimistic_gradient",
    "scale_by_polyak", "scale_by_sign", "scale_by_sm3", "MultiSteps", "MultiStepsState",
    "apply_updates", "incremental_update", "named_chain", "periodic_update",
    "skip_not_finite",
]

# Public namespaces defined elsewhere in the package are importable under their public
# name too (``import fnopt.tasks``), always as the same module object.
for _name in ("tasks", "problems", "lsq_problems", "lsq", "residuals", "projections"):
    _sys.modules[f"{__name__}.{_name}"] = globals()[_name]
del _name
