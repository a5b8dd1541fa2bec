"""Stopping criteria for :func:`fnopt.fixed_point`.

A criterion is a small frozen object that evaluates itself. It says what it reads
(``reads``: names of :class:`Info` fields, so the loop computes the gradient norm only
when something reads it), and the loop calls ``init()`` once and then
``check(info, state) -> (fired, state)`` after each iterate, where ``info`` is an
:class:`Info` describing the iterate (its loss, gradient norm, params, ...) and
``fired`` is a tuple of the leaf criteria that hold (empty when none does).
:func:`fnopt.batched` asks ``check_batch(binfo, state)`` instead, with a
:class:`BatchInfo` of per-problem arrays, and :func:`fnopt.distributed.agree` asks
``leaves()`` which criteria to agree on across ranks. Criteria combine with ``|``
(either holds) and ``&`` (both hold at the same iterate). A plain function becomes one
with :func:`criterion`.

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
    "BatchInfo",
    "Criterion",
    "criterion",
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
    NO_IMPROVEMENT = "no_improvement"
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
    Reason.NO_IMPROVEMENT: "the validation metric stopped improving; best params restored",
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
      epoch: with ``data=fnopt.epochs(loader, n)`` (or ``fixed_point(..., epochs=n)``),
        the number of full passes over the data behind ``params``; else ``None``.
    """

    iteration: int
    value: float
    grad_norm: float
    params: Any
    state: Any
    prev_params: Any
    prev_value: float
    elapsed: float
    epoch: int | None = None

    @property
    def learning_rate(self) -> Any:
        """The learning rate of the next step (:func:`fnopt.learning_rate_of`): a
        float, a dict ``label -> rate`` for parameter groups, or ``None``."""
        return learning_rate_of(self.state)

    @property
    def loss(self) -> float:
        """Alias of ``value``: the loss at ``params``."""
        return self.value


class BatchInfo(NamedTuple):
    """What :func:`fnopt.batched` knows about the live problems at one iterate.

    Attributes:
      iteration: number of steps taken (the same for every live problem).
      value: the loss of each live problem, a NumPy array ``(n,)``.
      grad_norm: the gradient norm of each live problem ``(n,)``, or ``None`` when no
        criterion reads it.
      elapsed: seconds since the run started.
    """

    iteration: int
    value: Any
    grad_norm: Any
    elapsed: float


class Criterion:
    """Base of all stopping criteria; see the module docstring for the protocol.

    A subclass sets ``reason`` and ``reads`` and implements :meth:`check` (and
    :meth:`check_batch` to run under :func:`fnopt.batched`). A criterion whose answer
    is a function of ``(iteration, value, grad_norm, elapsed)`` alone may implement
    :meth:`holds` instead: it then serves both :meth:`check` and :meth:`check_batch`.
    """

    reason: Reason = Reason.CALLBACK
    #: The :class:`Info` fields the criterion reads.
    reads: frozenset[str] = frozenset(Info._fields)

    def init(self) -> Any:
        return None

    def holds(self, iteration: int, value: Any, grad_norm: Any, elapsed: float) -> Any:
        """Whether a stateless criterion holds: a bool, or a bool array when ``value``
        and ``grad_norm`` are per-problem arrays."""
        raise NotImplementedError

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        hit = self.holds(info.iteration, info.value, info.grad_norm, info.elapsed)
        return ((self,) if hit else ()), state

    def check_batch(
        self, info: BatchInfo, state: Any
    ) -> tuple[Any, list[tuple[Criterion, Any]], Any]:
        """Per problem: ``(mask, hits, state)`` where ``mask`` is a bool (the same for
        every problem) or a bool array, and ``hits`` pairs each leaf criterion with
        where it holds."""
        try:
            hit = self.holds(info.iteration, info.value, info.grad_norm, info.elapsed)
        except NotImplementedError:
            raise TypeError(
                f"stop: {self!r} cannot be evaluated per problem (fnopt.batched); it "
                "needs check_batch or holds"
            ) from None
        return hit, [(self, hit)], state

    def leaves(self) -> tuple[Criterion, ...]:
        """The leaf criteria (itself, for a leaf)."""
        return (self,)

    def best(self, state: Any) -> tuple[Any, float] | None:
        """``(params, metric)`` the loop restores when this criterion stops the run
        (early stopping keeps the best params it saw); ``None``: nothing to restore."""
        return None

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


def _either(a: Any, b: Any) -> Any:
    """``a | b`` for bools or bool arrays, with no array op when one side is False."""
    return b if a is False else a if b is False else a | b


def _both(a: Any, b: Any) -> Any:
    return b if a is True else a if b is True else a & b


class _Pair(Criterion):
    left: Criterion
    right: Criterion

    @property
    def reads(self) -> frozenset[str]:  # type: ignore[override]
        return self.left.reads | self.right.reads

    @property
    def reason(self) -> Reason:  # type: ignore[override]
        return self.left.reason

    def init(self) -> Any:
        return (self.left.init(), self.right.init())

    def leaves(self) -> tuple[Criterion, ...]:
        return self.left.leaves() + self.right.leaves()

    def best(self, state: Any) -> tuple[Any, float] | None:
        found = self.left.best(state[0])
        return found if found is not None else self.right.best(state[1])


@attrs.frozen(slots=True, repr=False)
class AnyOf(_Pair):
    """Holds when either side holds (``a | b``)."""

    left: Criterion
    right: Criterion

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        fl, sl = self.left.check(info, state[0])
        fr, sr = self.right.check(info, state[1])
        return fl + fr, (sl, sr)

    def check_batch(
        self, info: BatchInfo, state: Any
    ) -> tuple[Any, list[tuple[Criterion, Any]], Any]:
        a, ha, sl = self.left.check_batch(info, state[0])
        b, hb, sr = self.right.check_batch(info, state[1])
        return _either(a, b), ha + hb, (sl, sr)

    def __repr__(self) -> str:
        return f"{self.left!r} | {self.right!r}"


@attrs.frozen(slots=True, repr=False)
class AllOf(_Pair):
    """Holds when both sides hold at the same iterate (``a & b``)."""

    left: Criterion
    right: Criterion

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        fl, sl = self.left.check(info, state[0])
        fr, sr = self.right.check(info, state[1])
        return (fl + fr if fl and fr else ()), (sl, sr)

    def check_batch(
        self, info: BatchInfo, state: Any
    ) -> tuple[Any, list[tuple[Criterion, Any]], Any]:
        a, ha, sl = self.left.check_batch(info, state[0])
        b, hb, sr = self.right.check_batch(info, state[1])
        both = _both(a, b)  # a leaf under & counts only where the whole & holds
        return both, [(leaf, _both(m, both)) for leaf, m in ha + hb], (sl, sr)

    def __repr__(self) -> str:
        return f"({self.left!r} & {self.right!r})"


@attrs.frozen(slots=True)
class _MaxIters(Criterion):
    n: int
    reason = Reason.MAX_ITERS
    reads = frozenset({"iteration"})

    def holds(self, iteration: int, value: Any, grad_norm: Any, elapsed: float) -> Any:
        return iteration >= self.n

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
    reads = frozenset({"value"})

    def holds(self, iteration: int, value: Any, grad_norm: Any, elapsed: float) -> Any:
        return value <= self.tol

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
    reads = frozenset({"grad_norm"})

    def holds(self, iteration: int, value: Any, grad_norm: Any, elapsed: float) -> Any:
        return grad_norm <= self.tol

    def describe(self, info: Info) -> str:
        return f"gradient norm {info.grad_norm:.6g} <= {self.tol:g}"

    def __repr__(self) -> str:
        return f"grad_norm_below({self.tol!r})"


def grad_norm_below(tol: float) -> Criterion:
    """Holds when the Euclidean norm of the gradient at the iterate is ``<= tol``.

    The loop computes the gradient norm only when a criterion like this one (or a
    callback, ``record=True``) reads it. For an optimizer with bounds
    (:func:`fnopt.lbfgsb`, ``fnopt.lbfgs(bounds=...)``), the state's ``grad_norm`` is the
    Euclidean norm of the *projected* gradient, :math:`\\|P(x - g) - x\\|_2`, so this
    criterion means the projected gradient there: 0 exactly at a first-order stationary
    point within the bounds (its max-norm, scipy's L-BFGS-B ``pgtol`` measure, is
    ``state.pg_max``).
    """
    return _GradNormBelow(_check_tol("tol", tol))


@attrs.frozen(slots=True)
class _ParamChangeBelow(Criterion):
    atol: float
    rtol: float
    reason = Reason.PARAM_CHANGE_BELOW
    reads = frozenset({"params", "prev_params"})

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
    reads = frozenset({"value", "prev_value"})

    def init(self) -> Any:
        return (0, None)

    def _run(self, value: Any, prev: Any, run: Any) -> Any:
        small = abs(value - prev) <= self.atol + self.rtol * abs(prev)
        return run + 1 if small is True else 0 if small is False else (run + 1) * small

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        if math.isnan(info.prev_value):
            return (), (0, None)
        run = self._run(info.value, info.prev_value, state[0])
        return ((self,) if run >= self.patience else ()), (run, None)

    def check_batch(
        self, info: BatchInfo, state: Any
    ) -> tuple[Any, list[tuple[Criterion, Any]], Any]:
        run, prev = state
        if prev is None:  # the first iterate: nothing to compare with
            return False, [(self, False)], (0, info.value)
        run = self._run(info.value, prev, run)
        hit = run >= self.patience
        return hit, [(self, hit)], (run, info.value)

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
    reads = frozenset({"elapsed"})

    def holds(self, iteration: int, value: Any, grad_norm: Any, elapsed: float) -> Any:
        return elapsed >= self.seconds

    def describe(self, info: Info) -> str:
        return f"ran {info.elapsed:.3g} s >= time_limit {self.seconds:g} s"

    def __repr__(self) -> str:
        return f"time_limit({self.seconds!r})"


def time_limit(seconds: float) -> Criterion:
    """Holds once the loop has run for ``seconds`` (wall clock)."""
    return _TimeLimit(_check_tol("seconds", seconds, allow_zero=False))


@attrs.frozen(slots=True, repr=False)
class _FromFunction(Criterion):
    fn: Any
    reads: frozenset[str]
    reason: Reason
    name: str

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        return ((self,) if self.fn(info) else ()), state

    def describe(self, info: Info) -> str:
        return f"{self.name} holds"

    def __repr__(self) -> str:
        return f"criterion({self.name})"


def criterion(
    fn: Any,
    *,
    reads: Any = ("iteration", "value", "grad_norm", "params", "state"),
    reason: Reason | str = Reason.CALLBACK,
    name: str | None = None,
) -> Criterion:
    """A criterion from a function ``fn(info) -> bool`` (it holds when ``fn`` is true).

    Args:
      fn: called with the :class:`Info` of each iterate.
      reads: the :class:`Info` fields ``fn`` reads; the loop computes the gradient norm
        only when some criterion reads ``"grad_norm"``.
      reason: the :class:`Reason` reported when it fires (a Reason or its name).
      name: shown in the Result's message (default: ``fn``'s name).

    >>> from fnopt import stop
    >>> c = stop.criterion(lambda info: info.value < 0.5, reads=("value",), reason="loss_below")
    >>> c.reason, sorted(c.reads)
    (<Reason.LOSS_BELOW: 'loss_below'>, ['value'])
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    fields = frozenset(reads)
    unknown = fields - set(Info._fields)
    if unknown:
        raise ValueError(f"reads: unknown Info fields {sorted(unknown)}; expected some of "
                         f"{list(Info._fields)}")
    try:
        why = Reason(reason)
    except ValueError:
        raise ValueError(f"reason: expected a fnopt.stop.Reason, got {reason!r}") from None
    label = name if name is not None else getattr(fn, "__name__", "criterion")
    return _FromFunction(fn, fields, why, label)


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
    reason = Reason.NO_IMPROVEMENT
    reads = frozenset({"params", "iteration", "epoch"})

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

    def best(self, state: NoImprovementState) -> tuple[Any, float] | None:
        """``(best_params, best)`` from this criterion's state: the params to restore."""
        return None if state.best_params is None else (state.best_params, state.best)

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
