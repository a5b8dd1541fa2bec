"""fnopt: pure-function optimizers for NumPy and PyTorch.

Optimizers are pure step functions ``(params, grad_fn, state) -> (params, state)``;
gradients come from interchangeable providers (:mod:`fnopt.grad`); one loop,
:func:`fixed_point`, drives any of them until a criterion from :mod:`fnopt.stop` holds.
"""

from fnopt import backend as backend
from fnopt import datasets as datasets
from fnopt import grad as grad
from fnopt import stop as stop
from fnopt import tasks as tasks
from fnopt import tree as tree
from fnopt._base import DescentState as DescentState
from fnopt._base import GradFn as GradFn
from fnopt._base import Optimizer as Optimizer
from fnopt._base import Transform as Transform
from fnopt._base import learning_rate_of as learning_rate_of
from fnopt.loop import History as History
from fnopt.loop import OptimizationError as OptimizationError
from fnopt.loop import Result as Result
from fnopt.loop import StepFailed as StepFailed
from fnopt.loop import fixed_point as fixed_point
from fnopt.optimizers import descent as descent
from fnopt.optimizers import sgd as sgd
from fnopt.stop import Reason as Reason
from fnopt.transform import add_decayed_weights as add_decayed_weights
from fnopt.transform import chain as chain
from fnopt.transform import identity as identity
from fnopt.transform import scale as scale
from fnopt.transform import scale_by_learning_rate as scale_by_learning_rate
from fnopt.transform import trace as trace

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # ``fnopt.torch`` imports torch, so it is loaded on first use, never by ``import fnopt``.
    if name == "torch":
        import importlib

        return importlib.import_module("fnopt.torch")
    raise AttributeError(f"module 'fnopt' has no attribute {name!r}")

__all__ = [
    "DescentState",
    "GradFn",
    "History",
    "OptimizationError",
    "Optimizer",
    "Reason",
    "Result",
    "StepFailed",
    "Transform",
    "add_decayed_weights",
    "backend",
    "datasets",
    "chain",
    "descent",
    "fixed_point",
    "grad",
    "identity",
    "learning_rate_of",
    "scale",
    "scale_by_learning_rate",
    "sgd",
    "stop",
    "tasks",
    "trace",
    "tree",
]
