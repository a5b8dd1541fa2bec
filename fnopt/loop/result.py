"""What :func:`fnopt.fixed_point` returns (:class:`Result`, :class:`History`) and the
exceptions of a run (:class:`OptimizationError`, :class:`StepFailed`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import attrs
import numpy as np

from fnopt.stop import Reason

__all__ = ["History", "OptimizationError", "Result", "StepFailed"]


class _BadGradFn(Exception):
    """Carries the validation error of ``grad_fn``'s first output out of the step."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class StepFailed(Exception):
    """Raised by a step that cannot proceed (e.g. a line search that found no step).

    :func:`fixed_point` catches it and stops with ``reason`` keeping the last good
    iterate; a caller driving steps by hand sees the exception and its message.
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@attrs.frozen(slots=True)
class History:
    """Per-iteration records (index = iteration): ``loss`` and ``grad_norm``."""

    loss: np.ndarray
    grad_norm: np.ndarray

    def __len__(self) -> int:
        return len(self.loss)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        """Iterate over ``(loss, grad_norm)`` pairs, one per iteration."""
        return iter(zip(self.loss.tolist(), self.grad_norm.tolist()))


def _alias(field: str) -> Any:
    """A read-only property returning the attribute ``field`` under scipy's name."""
    return property(lambda self: getattr(self, field),
                    doc=f"Alias of ``{field}`` (scipy.optimize.OptimizeResult's name).")


@attrs.frozen(slots=True)
class Result:
    """What :func:`fixed_point` returns.

    Attributes:
      params: the final iterate (fresh arrays, never the caller's).
      state: the optimizer state paired with ``params`` (resume from it).
      value: the loss at ``params`` (NaN if the run stopped before it was evaluated).
      grad_norm: the gradient norm at ``params`` (NaN likewise).
      iterations: number of steps taken to reach ``params``.
      converged: whether the reason counts as convergence.
      reason: a :class:`fnopt.stop.Reason` (compares equal to e.g. ``"max_iters"``).
      message: a readable sentence: which criterion fired and why.
      n_evals: number of ``grad_fn`` calls made (each gives value and gradient).
      history: a :class:`History` when ``record=True``, else ``None``.
      best_params: the iterate with the lowest finite loss seen.
      best_value: that loss.
      elapsed: seconds spent in the loop.
      stop_state: the stop criterion's state at the end (e.g. what
        :func:`fnopt.stop.no_improvement` recorded; with that criterion alone, its
        :class:`fnopt.stop.NoImprovementState`, whose ``best_params`` the loop restored).
    """

    params: Any
    state: Any
    value: float
    grad_norm: float
    iterations: int
    converged: bool
    reason: Reason
    message: str
    n_evals: int
    history: History | None = None
    best_params: Any = None
    best_value: float = math.nan
    elapsed: float = 0.0
    stop_state: Any = None

    # scipy.optimize.OptimizeResult-style aliases
    x = _alias("params")
    fun = _alias("value")
    nit = _alias("iterations")
    success = _alias("converged")


class OptimizationError(RuntimeError):
    """A run that failed; ``result`` holds the last good :class:`Result`.

    Raised when ``grad_fn``, the step, the data loader, a callback or a criterion raises
    an ``Exception`` (chained from it, with the iteration number), and with
    ``on_failure="raise"`` when the run fails. (Another ``BaseException``, such as
    ``SystemExit``, is re-raised as it is, with the same ``result`` attribute.)
    """

    def __init__(self, message: str, result: Result, iteration: int) -> None:
        super().__init__(message)
        self.result = result
        self.iteration = iteration


class Iterate(NamedTuple):
    """One iterate the loop has seen: params, the state paired with them, their loss and
    gradient norm (Python floats; NaN when not evaluated) and the step count."""

    params: Any
    state: Any
    value: float
    grad_norm: float
    iteration: int
