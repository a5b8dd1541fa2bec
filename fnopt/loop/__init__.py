"""The generic loop: :func:`fixed_point` drives any optimizer or step function until a
stopping criterion holds, and returns a :class:`Result` that says why it stopped.

Inside: :mod:`~fnopt.loop.driver` (the while loop), :mod:`~fnopt.loop.runners` (how
steps are taken: first-order on loop-owned buffers, or any step function),
:mod:`~fnopt.loop.tracking` (the last finite and the best iterate),
:mod:`~fnopt.loop.hooks` (data, checkpoints, Ctrl-C) and :mod:`~fnopt.loop.result`.
"""

from fnopt.loop.driver import fixed_point as fixed_point
from fnopt.loop.result import History as History
from fnopt.loop.result import OptimizationError as OptimizationError
from fnopt.loop.result import Result as Result
from fnopt.loop.result import StepFailed as StepFailed

__all__ = ["History", "OptimizationError", "Result", "StepFailed", "fixed_point"]
