"""Stopping criteria for :func:`fnopt.fixed_point`.

A criterion is a small frozen object. The loop calls ``init()`` once and then
``check(info, state) -> (fired, state)`` after each iterate, where ``info`` is an
:class:`Info` describing the iterate (its loss, gradient norm, params, ...) and
``fired`` is a tuple of the leaf criteria that hold (empty when none does).
Criteria combine with ``|`` (either holds) and ``&`` (both hold at the same iterate).

>>> from fnopt import stop
>>> rule = stop.loss_below(1e-3) | stop.max_iters(10_000)
>>> rule
loss_below(0.001) | max_iters(10000)
"""

from __future__ import annotations

import enum
import math
from typing import Any, NamedTuple

import attrs

from fnopt import tree as _tree
from fnopt._base import learning_rate_of

__all__ = [
    "Reason",
    "Info",
    "Criterion",
    "max_iters",
    "loss_below",
    "grad_norm_below",
    "param_change_below",
    "loss_change_below",
    "time_limit",
    "AnyOf",
    "AllOf",
]


class Reason(str, enum.Enum):
    """Why :func:`fnopt.fixed_point` stopped. Compares equal to its lower-case name."""

    MAX_ITERS = "max_iters"
    LOSS_BELOW = "loss_below"
    GRAD_NORM_BELOW = "grad_norm_below"
    PARAM_CHANGE_BELOW = "param_change_below"
    LOSS_CHANGE_BELOW = "loss_change_below"
    TIME_LIMIT = "time_limit"
    NON_FINITE = "non_finite"
    INTERRUPTED = "interrupted"
    LINE_SEARCH_FAILED = "line_search_failed"
    CALLBACK = "callback"
    DATA_EXHAUSTED = "data_exhausted"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def converged(self) -> bool:
        """Whether stopping for this reason counts as convergence."""
        return self in _CONVERGED

    @property
    def is_failure(self) -> bool:
        """Whether this reason is a failure (``on_failure="raise"`` raises on it)."""
        return self in _FAILURES

    @property
    def message(self) -> str:
        """A readable sentence for the reason."""
        return _MESSAGES[self]


_CONVERGED = frozenset(
    {Reason.LOSS_BELOW, Reason.GRAD_NORM_BELOW, Reason.PARAM_CHANGE_BELOW, Reason.LOSS_CHANGE_BELOW}
)
_FAILURES = frozenset({Reason.NON_FINITE, Reason.LINE_SEARCH_FAILED, Reason.ERROR})
_MESSAGES = {
    Reason.MAX_ITERS: "reached the maximum number of iterations",
    Reason.LOSS_BELOW: "the loss fell below the tolerance",
    Reason.GRAD_NORM_BELOW: "the gradient norm fell below the tolerance",
    Reason.PARAM_CHANGE_BELOW: "the params stopped changing",
    Reason.LOSS_CHANGE_BELOW: "the loss stopped changing",
    Reason.TIME_LIMIT: "ran out of time",
    Reason.NON_FINITE: "the loss or gradient became NaN or infinite; last finite iterate kept",
    Reason.INTERRUPTED: "interrupted (KeyboardInterrupt); last completed iterate kept",
    Reason.LINE_SEARCH_FAILED: "the line search found no acceptable step; last good iterate kept",
    Reason.CALLBACK: "the callback asked to stop",
    Reason.DATA_EXHAUSTED: "the data iterable ran out of batches",
    Reason.ERROR: "grad_fn or the step raised an exception",
}


class Info(NamedTuple):
    """What the loop knows about one iterate; passed to criteria and callbacks.

    Immutable (a ``NamedTuple``: the loop makes one per iteration, so it is cheap).

    Attributes:
      iteration: number of steps taken to reach ``params``.
      value: the loss at ``params`` (a Python float).
      grad_norm: the gradient norm at ``params`` (a Python float).
      params: the iterate.
      state: the optimizer state paired with ``params``.
      prev_params: the previous iterate (``None`` at the first one checked).
      prev_value: the loss at ``prev_params`` (NaN when unknown).
      elapsed: seconds since the loop started.
    """

    iteration: int
    value: float
    grad_norm: float
    params: Any
    state: Any
    prev_params: Any
    prev_value: float
    elapsed: float

    @property
    def learning_rate(self) -> float | None:
        """The learning rate used by the last step, if the state records one."""
        return learning_rate_of(self.state)

    @property
    def loss(self) -> float:
        """Alias of ``value``: the loss at ``params``."""
        return self.value


class Criterion:
    """Base of all stopping criteria; see the module docstring for the protocol."""

    reason: Reason

    def init(self) -> Any:
        return None

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        raise NotImplementedError

    def describe(self, info: Info) -> str:
        """One line saying why this criterion holds at ``info``."""
        return self.reason.message

    def __or__(self, other: Criterion) -> Criterion:
        _check_criterion(other, "|")
        return AnyOf(self, other)

    def __and__(self, other: Criterion) -> Criterion:
        _check_criterion(other, "&")
        return AllOf(self, other)


def _check_criterion(other: object, op: str) -> None:
    if not isinstance(other, Criterion):
        raise TypeError(
            f"stop criteria combine with {op} only with criteria, got {type(other).__name__}"
        )


def _check_tol(name: str, value: Any, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a number >= 0, got {value}")
    return float(value)


@attrs.frozen(slots=True, repr=False)
class AnyOf(Criterion):
    """Holds when either side holds (``a | b``)."""

    left: Criterion
    right: Criterion

    def init(self) -> Any:
        return (self.left.init(), self.right.init())

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        fl, sl = self.left.check(info, state[0])
        fr, sr = self.right.check(info, state[1])
        return fl + fr, (sl, sr)

    def __repr__(self) -> str:
        return f"{self.left!r} | {self.right!r}"


@attrs.frozen(slots=True, repr=False)
class AllOf(Criterion):
    """Holds when both sides hold at the same iterate (``a & b``)."""

    left: Criterion
    right: Criterion

    def init(self) -> Any:
        return (self.left.init(), self.right.init())

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        fl, sl = self.left.check(info, state[0])
        fr, sr = self.right.check(info, state[1])
        return (fl + fr if fl and fr else ()), (sl, sr)

    def __repr__(self) -> str:
        return f"({self.left!r} & {self.right!r})"


@attrs.frozen(slots=True)
class _MaxIters(Criterion):
    n: int
    reason = Reason.MAX_ITERS

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        return ((self,) if info.iteration >= self.n else ()), state

    def describe(self, info: Info) -> str:
        return f"reached max_iters={self.n}"

    def __repr__(self) -> str:
        return f"max_iters({self.n})"


def max_iters(n: int) -> Criterion:
    """Holds once ``n`` steps have been taken.

    >>> max_iters(100)
    max_iters(100)
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n}")
    return _MaxIters(n)


@attrs.frozen(slots=True)
class _LossBelow(Criterion):
    tol: float
    reason = Reason.LOSS_BELOW

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        return ((self,) if info.value <= self.tol else ()), state

    def describe(self, info: Info) -> str:
        return f"loss {info.value:.6g} <= {self.tol:g}"

    def __repr__(self) -> str:
        return f"loss_below({self.tol!r})"


def loss_below(tol: float) -> Criterion:
    """Holds when the loss at the iterate is ``<= tol``."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or math.isnan(tol):
        raise TypeError(f"tol: expected a number, got {tol!r}")
    return _LossBelow(float(tol))


@attrs.frozen(slots=True)
class _GradNormBelow(Criterion):
    tol: float
    reason = Reason.GRAD_NORM_BELOW

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        return ((self,) if info.grad_norm <= self.tol else ()), state

    def describe(self, info: Info) -> str:
        return f"gradient norm {info.grad_norm:.6g} <= {self.tol:g}"

    def __repr__(self) -> str:
        return f"grad_norm_below({self.tol!r})"


def grad_norm_below(tol: float) -> Criterion:
    """Holds when the Euclidean norm of the gradient at the iterate is ``<= tol``."""
    return _GradNormBelow(_check_tol("tol", tol))


@attrs.frozen(slots=True)
class _ParamChangeBelow(Criterion):
    atol: float
    rtol: float
    reason = Reason.PARAM_CHANGE_BELOW

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        if info.prev_params is None:
            return (), state
        change = float(_tree.global_norm(_tree.sub(info.params, info.prev_params)))
        bound = self.atol
        if self.rtol:
            bound += self.rtol * float(_tree.global_norm(info.params))
        return ((self,) if change <= bound else ()), state

    def describe(self, info: Info) -> str:
        return f"params changed by <= {self.atol:g} + {self.rtol:g}*|params|"

    def __repr__(self) -> str:
        return f"param_change_below({self.atol!r}, rtol={self.rtol!r})"


def param_change_below(atol: float, rtol: float = 0.0) -> Criterion:
    """Holds when ``|x_k - x_{k-1}| <= atol + rtol * |x_k|`` (Euclidean norms)."""
    return _ParamChangeBelow(_check_tol("atol", atol), _check_tol("rtol", rtol))


@attrs.frozen(slots=True)
class _LossChangeBelow(Criterion):
    atol: float
    rtol: float
    patience: int
    reason = Reason.LOSS_CHANGE_BELOW

    def init(self) -> int:
        return 0

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        if math.isnan(info.prev_value):
            return (), 0
        small = abs(info.value - info.prev_value) <= self.atol + self.rtol * abs(info.prev_value)
        run = state + 1 if small else 0
        return ((self,) if run >= self.patience else ()), run

    def describe(self, info: Info) -> str:
        return (
            f"loss changed by <= {self.atol:g} + {self.rtol:g}*|loss| "
            f"for {self.patience} iteration(s)"
        )

    def __repr__(self) -> str:
        return f"loss_change_below({self.atol!r}, rtol={self.rtol!r}, patience={self.patience})"


def loss_change_below(atol: float, rtol: float = 0.0, patience: int = 1) -> Criterion:
    """Holds when ``|f_k - f_{k-1}| <= atol + rtol * |f_{k-1}|`` for ``patience``
    consecutive iterates."""
    if isinstance(patience, bool) or not isinstance(patience, int):
        raise TypeError(f"patience: expected an int, got {type(patience).__name__}")
    if patience < 1:
        raise ValueError(f"patience: expected an int >= 1, got {patience}")
    return _LossChangeBelow(_check_tol("atol", atol), _check_tol("rtol", rtol), patience)


@attrs.frozen(slots=True)
class _TimeLimit(Criterion):
    seconds: float
    reason = Reason.TIME_LIMIT

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        return ((self,) if info.elapsed >= self.seconds else ()), state

    def describe(self, info: Info) -> str:
        return f"ran {info.elapsed:.3g} s >= time_limit {self.seconds:g} s"

    def __repr__(self) -> str:
        return f"time_limit({self.seconds!r})"


def time_limit(seconds: float) -> Criterion:
    """Holds once the loop has run for ``seconds`` (wall clock)."""
    return _TimeLimit(_check_tol("seconds", seconds, allow_zero=False))


# -- early stopping on a validation metric ------------------------------------------------


class NoImprovementState(NamedTuple):
    """State of :func:`no_improvement`.

    Attributes:
      best: the best metric value so far (``+inf`` for ``mode="min"`` and ``-inf`` for
        ``"max"`` before the first evaluation).
      best_params: a copy of the params that scored ``best`` (``None`` before).
      best_at: the epoch (``every="epoch"``) or iteration (``every=N``) of ``best``.
      bad: evaluations since the last improvement.
      last: the epoch or iteration last seen (evaluations happen when it changes).
      history: the metric values evaluated so far, in order.
    """

    best: float
    best_params: Any
    best_at: int | None
    bad: int
    last: int | None
    history: tuple[float, ...]


@attrs.frozen(slots=True, repr=False)
class _NoImprovement(Criterion):
    metric_fn: Any
    patience: int
    every: str | int
    mode: str
    min_delta: float
    # Early stopping is not convergence of the training loss; the closest existing
    # reason until the loop gets its own (``Reason.NO_IMPROVEMENT``):
    reason = Reason.LOSS_CHANGE_BELOW

    def init(self) -> NoImprovementState:
        worst = math.inf if self.mode == "min" else -math.inf
        return NoImprovementState(worst, None, None, 0, None, ())

    def _key(self, info: Info) -> int | None:
        """The epoch or iteration at which to evaluate ``info``, or None to skip it."""
        if self.every == "epoch":
            epoch = getattr(info, "epoch", None)
            if epoch is None:
                raise ValueError(
                    "no_improvement(every='epoch'): the loop gave no epoch number "
                    "(info.epoch); pass data=fnopt.epochs(loader, n) to a loop that reports "
                    "epochs, or use every=<iterations per epoch>"
                )
            return int(epoch) if epoch >= 1 else None
        assert isinstance(self.every, int)
        k = info.iteration
        return k if k >= 1 and k % self.every == 0 else None

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        key = self._key(info)
        if key is None or key == state.last:
            return (), state
        metric = float(self.metric_fn(info.params))
        if self.mode == "min":
            improved = metric < state.best - self.min_delta
        else:
            improved = metric > state.best + self.min_delta
        history = (*state.history, metric)
        if improved:
            # a copy: a loop may update the iterate it passed in place afterwards
            state = NoImprovementState(metric, _tree.clone(info.params), key, 0, key, history)
        else:
            state = state._replace(bad=state.bad + 1, last=key, history=history)
        return ((self,) if state.bad >= self.patience else ()), state

    def best(self, state: NoImprovementState) -> tuple[Any, float]:
        """``(best_params, best)`` from this criterion's state: the params to restore."""
        return state.best_params, state.best

    def describe(self, info: Info) -> str:
        unit = "epoch(s)" if self.every == "epoch" else f"evaluation(s) (every {self.every} it.)"
        return (
            f"the validation metric did not improve ({self.mode}, min_delta={self.min_delta:g}) "
            f"for {self.patience} {unit}"
        )

    def __repr__(self) -> str:
        name = getattr(self.metric_fn, "__name__", type(self.metric_fn).__name__)
        return (
            f"no_improvement({name}, patience={self.patience}, every={self.every!r}, "
            f"mode={self.mode!r}, min_delta={self.min_delta!r})"
        )


def no_improvement(
    metric_fn: Any,
    *,
    patience: int = 3,
    every: str | int = "epoch",
    mode: str = "min",
    min_delta: float = 0.0,
) -> Criterion:
    """Early stopping: holds after ``patience`` evaluations of ``metric_fn`` without
    improvement.

    At each epoch end (``every="epoch"``) or every ``every`` iterations, the criterion
    calls :math:`m_j = ` ``metric_fn(info.params)`` (e.g. the loss or the accuracy on a
    validation set). With :math:`m^*` the best value so far, evaluation :math:`j`
    improves when :math:`m_j < m^* - \\delta` (``mode="min"``) or
    :math:`m_j > m^* + \\delta` (``mode="max"``), :math:`\\delta` = ``min_delta``; the
    criterion holds once ``patience`` evaluations in a row have not improved (Keras'
    ``EarlyStopping``). Its state (:class:`NoImprovementState`) keeps a copy of the
    params that scored best, so a loop can restore them (``best_params``).

    What it reads: ``info.params``; with ``every="epoch"``, ``info.epoch``, the number
    of full epochs behind ``info.params`` (an evaluation happens each time it changes,
    from 1 on; as set by :class:`fnopt.Epochs`, ``ValueError`` when absent); with
    ``every=N``, ``info.iteration`` (multiples of ``N`` from ``N`` on: with one batch
    per step and ``N`` batches per epoch, the params at each epoch end).

    Args:
      metric_fn: ``metric_fn(params) -> float`` (or a 0-d array or tensor).
      patience: evaluations without improvement before it holds, >= 1.
      every: ``"epoch"`` or an int >= 1 (iterations).
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
      min_delta: the smallest change that counts as an improvement, >= 0.

    Returns:
      A :class:`Criterion` (combine with ``|``, e.g. ``| max_iters(n)``).

    >>> import numpy as np
    >>> rule = no_improvement(lambda p: float(abs(p[0] - 3.0)), patience=2, every=1)
    >>> state = rule.init()
    >>> for k, x in enumerate([0.0, 2.0, 4.0, 5.0, 6.0], start=1):
    ...     info = Info(iteration=k, value=0.0, grad_norm=0.0, params=np.array([x]),
    ...                 state=None, prev_params=None, prev_value=math.nan, elapsed=0.0)
    ...     fired, state = rule.check(info, state)
    ...     if fired:
    ...         break
    >>> k, state.best, state.best_params, state.history
    (4, 1.0, array([2.]), (3.0, 1.0, 1.0, 2.0))

    Prechelt, "Early Stopping — But When?", Neural Networks: Tricks of the Trade, 1998.
    """
    if not callable(metric_fn):
        raise TypeError(f"metric_fn: expected a callable, got {type(metric_fn).__name__}")
    if isinstance(patience, bool) or not isinstance(patience, int):
        raise TypeError(f"patience: expected an int, got {type(patience).__name__}")
    if patience < 1:
        raise ValueError(f"patience: expected an int >= 1, got {patience}")
    if isinstance(every, str):
        if every != "epoch":
            raise ValueError(f"every: expected 'epoch' or an int >= 1, got {every!r}")
    elif isinstance(every, bool) or not isinstance(every, int):
        raise TypeError(f"every: expected 'epoch' or an int, got {type(every).__name__}")
    elif every < 1:
        raise ValueError(f"every: expected 'epoch' or an int >= 1, got {every}")
    if mode not in ("min", "max"):
        raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
    return _NoImprovement(metric_fn, patience, every, mode, _check_tol("min_delta", min_delta))


__all__ += ["no_improvement", "NoImprovementState"]
