"""The driver: :func:`fixed_point` checks its arguments, builds a runner
(:mod:`fnopt.loop.runners`), and runs the while loop — evaluate, accept, check, step —
with checkpoints, callbacks and data as hooks (:mod:`fnopt.loop.hooks`).

The sections below are the reference for :func:`fixed_point`'s options.

**Loop-owned buffers.** With a first-order optimizer (a :class:`fnopt.Descent`: every
alias and chain), no ``callback`` and ``differentiable=False``, the loop copies
``params`` (and a given ``state``) once and runs every update into its own buffers
(``opt.apply(..., out=...)``): two params buffers in turn, so the previous iterate
survives one step, and the optimizer state in place. The numbers are those of the
pure steps. One difference: after a ``non_finite`` stop, ``Result.state`` is the
state after the last update (the loop keeps one copy of the state), where the pure
path returns the state paired with the returned params. The gradient norm is
computed only when a criterion (:func:`fnopt.stop.grad_norm_below`), a callback or
``record=True`` reads it, and for the Result's final iterate.

**Data and epochs.** With ``data``, each batch (a tuple/list is unpacked) is passed to
``grad_fn`` after the params, one batch per step: ``N`` batches make ``N`` updates, as
a torch epoch does. The run then stops with ``data_exhausted`` at the params after the
last update; ``Result.value`` is then the last batch's loss (evaluated before its
update). ``fnopt.epochs(loader, n)`` (or ``epochs=n``) makes ``n`` passes and tells the
loop the epoch (``Info.epoch``, checkpoints, ``on_epoch``).

**Differentiating through the loop** (``differentiable=True``, torch only). The loop
keeps the autograd graph through every step, so ``Result.params`` can be
differentiated (unrolled, reverse mode) with respect to anything the steps used
(hyperparameters given as tensors with ``requires_grad=True``, the data, the start
point). ``grad_fn`` must keep its graph too, e.g.
``fnopt.grad.torch_autograd(loss_fn, create_graph=True)``. Memory grows with the
number of iterations; :func:`fnopt.implicit.fixed_point` is the constant-memory
alternative at a converged solution.

**Checkpoints and resuming.** With ``checkpoint_every``, the iterate (params, state,
iteration) is saved to ``checkpoint_path`` with :func:`fnopt.save` at every iteration
that is a multiple of it; the final iterate is saved too, whatever the reason the run
stops (error and Ctrl-C included). Writes are atomic. ``checkpoint_path`` given alone
saves only the final iterate. Params and state that cannot be saved fail at the start
of the run (:func:`fnopt.checkpoint.check_saveable`), not at the first save. To
resume, ``ck = fnopt.load(path)`` and pass ``ck.params, grad_fn, ck.state,
start_iteration=ck.iteration``: the trajectory continues bitwise identically to an
uninterrupted run (criteria that look back, such as ``param_change_below``, start
afresh; with ``data``, pass the batches from number ``ck.iteration`` on: one batch per
iteration).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np

from fnopt import backend as _backend
from fnopt import tree as _tree
from fnopt._base import (
    Descent,
    GradFn,
    Optimizer,
    OutputTypeError,
    OutputValueError,
    Params,
    State,
    Transform,
    check_callable,
    check_int,
    check_params,
    is_optimizer,
)
from fnopt.loop import checks
from fnopt.loop.hooks import Batches, Checkpointer, InterruptGuard
from fnopt.loop.result import History, Iterate, OptimizationError, Result, StepFailed, _BadGradFn
from fnopt.loop.runners import Counter, FirstOrder, Stepper, clone_buffers
from fnopt.loop.tracking import Tracker
from fnopt.stop import Criterion, Info, Reason

__all__ = ["fixed_point"]

_new: Callable[..., Any] = tuple.__new__


def fixed_point(
    opt_or_step: Optimizer | Transform | Callable[..., tuple[Params, State]],
    params: Params,
    grad_fn: GradFn,
    state: State | None = None,
    *,
    stop: Criterion,
    data: Iterable[Any] | None = None,
    callback: Callable[[Info], Any] | None = None,
    record: bool = False,
    on_failure: Literal["return", "raise"] = "return",
    differentiable: bool = False,
    checkpoint_every: int | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    start_iteration: int = 0,
    epochs: int | None = None,
    on_epoch: Callable[[Info], Any] | None = None,
) -> Result:
    """Run an optimizer (or a bare step function) until ``stop`` holds.

    Each iterate :math:`x_k` is paired with its own loss (and gradient norm, when
    something reads it); ``stop`` is checked on that pair, so ``Result.value`` is the
    loss at ``Result.params``. A first-order method evaluates ``grad_fn`` at
    :math:`x_k`, the loop checks the criteria, and only then updates to
    :math:`x_{k+1}`; when the run stops at :math:`x_k` that last evaluation is counted
    in ``n_evals`` and no update is made. ``grad_fn`` is called exactly as often as the
    optimizer asks, never again to recover an iterate.

    The caller's ``params`` are never modified. The run stops with reason
    ``non_finite`` when the loss at an iterate is NaN/inf, keeping the last iterate with
    a finite loss (a non-finite *gradient* alone does not stop it: a transform such as
    :func:`fnopt.apply_if_finite` may skip the step and go on). Ctrl-C returns the last
    completed iterate with reason ``interrupted``. A first-order optimizer updates
    buffers the loop owns; :mod:`fnopt.loop.driver` documents that, data and epochs,
    differentiating through the loop, and checkpoints and resuming.

    Args:
      opt_or_step: an optimizer (:class:`fnopt.Optimizer`, a first-order alias or any
        :class:`fnopt.Transform`, lifted with :func:`fnopt.descent`), or a bare
        ``step(params, grad_fn, state, *batch)`` whose state records ``value`` and
        ``grad_norm`` at its input.
      params: the starting point (a pytree of float32/float64 arrays or tensors). Torch
        tensors that require grad are detached: without ``differentiable`` the loop
        records no autograd graph, and the Result's tensors do not require grad.
      grad_fn: ``grad_fn(params, *batch) -> (value, grads)``.
      state: the state to start from (default ``opt.init(params)``; required with a
        bare step function), checked against ``opt.init(params)`` (``ValueError``).
      stop: a criterion from :mod:`fnopt.stop`, e.g.
        ``stop.loss_below(1e-3) | stop.max_iters(10_000)``.
      data: an iterable of batches, one per step, passed to ``grad_fn`` after the
        params; the run stops with ``data_exhausted`` after the last update.
      epochs: shorthand for ``data=fnopt.epochs(data, epochs)``: ``epochs`` passes over
        a re-iterable ``data`` (a ``DataLoader`` reshuffles each pass).
      callback: called with an :class:`fnopt.stop.Info` at every iterate; a truthy
        return stops the run with reason ``callback``; an exception it raises is
        re-raised as :class:`OptimizationError` whose ``result`` is that iterate.
      record: keep the per-iteration loss and gradient norm in ``Result.history``.
      on_failure: ``"return"`` (default) returns the Result of a failed run;
        ``"raise"`` raises :class:`OptimizationError` carrying it.
      differentiable: torch only: keep the autograd graph through every step, so
        ``Result.params`` can be differentiated (``grad_fn`` must keep its graph too).
      checkpoint_every: save the iterate to ``checkpoint_path`` at every iteration that
        is a multiple of this, and the final iterate whatever the reason the run stops.
      checkpoint_path: the checkpoint file; given alone, only the final iterate is saved.
      on_epoch: called with the :class:`fnopt.stop.Info` of the params at the end of
        each epoch (when ``Info.epoch`` changes, and once more after the last batch),
        e.g. to evaluate on a validation set; ``info.params`` is a copy the hook may
        keep. A truthy return stops the run with reason ``callback``.
      start_iteration: the iteration number of ``params`` (``max_iters`` and
        ``checkpoint_every`` count from it); resume from ``ck = fnopt.load(path)`` with
        ``start_iteration=ck.iteration``.

    Returns:
      A :class:`Result`.

    >>> import numpy as np, fnopt
    >>> task = fnopt.tasks.rosenbrock()
    >>> r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
    ...                       stop=fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10_000))
    >>> r.iterations, r.reason, np.round(r.params, 4)
    (5771, <Reason.LOSS_BELOW: 'loss_below'>, array([0.9684, 0.9377]))
    """
    if epochs is not None:
        data = _epochs_of(data, epochs)
    return _Run(opt_or_step, params, grad_fn, state, stop=stop, data=data, callback=callback,
                on_epoch=on_epoch, record=record, on_failure=on_failure,
                differentiable=differentiable, checkpoint_every=checkpoint_every,
                checkpoint_path=checkpoint_path, start_iteration=start_iteration).drive()


def _epochs_of(data: Iterable[Any] | None, epochs: int) -> Iterable[Any]:
    """``epochs`` passes over ``data`` (``fixed_point(..., epochs=)``)."""
    from fnopt.data import epochs as _epochs

    check_int("epochs", epochs, 1)
    if data is None:
        raise ValueError("epochs: needs data (a re-iterable loader) to pass over")
    return _epochs(data, epochs)


def _float_detached(x: Any) -> float:
    return float(x.detach())


class _Run:
    """One call of :func:`fixed_point`: its runner, tracker and hooks."""

    def __init__(self, opt: Any, params: Params, grad_fn: GradFn, state: State | None, *,
                 stop: Criterion, data: Iterable[Any] | None,
                 callback: Callable[[Info], Any] | None,
                 on_epoch: Callable[[Info], Any] | None, record: bool, on_failure: str,
                 differentiable: bool, checkpoint_every: int | None,
                 checkpoint_path: str | os.PathLike[str] | None, start_iteration: int) -> None:
        if isinstance(opt, Transform) and not is_optimizer(opt):
            opt = Descent(opt)  # a hand-built chain: lifted as fnopt.descent does
        be = check_params(params)
        fresh = state is None
        if is_optimizer(opt):
            if state is None:
                state = opt.init(params)
            else:
                checks.check_state(state, opt.init(params))
        else:
            check_callable(opt, "opt_or_step")
            if state is None:
                raise ValueError("state: required when opt_or_step is a bare step function")
        _check_args(grad_fn, stop, callback, on_failure, data, differentiable, be)
        if on_epoch is not None:
            check_callable(on_epoch, "on_epoch")
        checks.check_checkpoint_args(checkpoint_every, checkpoint_path, start_iteration)
        if checkpoint_path is not None:  # a state save cannot write fails now, not later
            from fnopt.checkpoint import check_saveable

            check_saveable(params, state)
        checks.check_finite_params(params, be)
        if not differentiable:  # no autograd graph through the loop (nn.Parameters)
            params = _tree.detach(params)
        self.x0 = params
        self.stop, self.callback, self.record = stop, callback, record
        self.on_epoch = on_epoch
        self.epoch_seen: int | None = None
        self.on_failure = on_failure
        self.grads = Counter(grad_fn)
        self.batches = Batches(data)
        self.ckpt = Checkpointer(checkpoint_path, checkpoint_every, start_iteration)
        self.losses: list[float] = []
        self.norms: list[float] = []
        to_float = _float_detached if differentiable else float
        self.owned = isinstance(opt, Descent) and callback is None and not differentiable
        self.runner: FirstOrder | Stepper
        if isinstance(opt, Descent):
            need_gnorm = "grad_norm" in stop.reads or record or callback is not None
            if self.owned and not fresh:
                state = clone_buffers(state)
            self.runner = FirstOrder(opt, params, state, self.grads, start=start_iteration,
                                     owned=self.owned, need_gnorm=need_gnorm,
                                     to_float=to_float, differentiable=differentiable)
        else:
            step = opt.step if is_optimizer(opt) else opt
            value_at = opt.value_at if is_optimizer(opt) else "input"
            self.runner = Stepper(step, value_at, params, state, self.grads,
                                  start=start_iteration, to_float=to_float,
                                  differentiable=differentiable)
        start = Iterate(self.runner.x, state, math.nan, math.nan, start_iteration)
        self.tracker = Tracker(start)
        self.crit_state = stop.init()
        self.guard = InterruptGuard(active=True)
        self.t0 = time.perf_counter()

    # -- the loop -------------------------------------------------------------------
    def drive(self) -> Result:
        try:
            with self.guard:
                return self._loop()
        except KeyboardInterrupt:
            return self.finish(self.current(), Reason.INTERRUPTED, Reason.INTERRUPTED.message)

    def current(self) -> Iterate:
        """The last complete iterate: the runner's params and state (their loss unknown
        when they were not evaluated yet), or the last accepted iterate if it is that."""
        runner, last = self.runner, self.tracker.last
        if last.iteration == runner.k and last.params is runner.x:
            return last
        return Iterate(runner.x, runner.s, math.nan, math.nan, runner.k)

    def _loop(self) -> Result:
        runner, tracker, guard = self.runner, self.tracker, self.guard
        while True:
            batch = self.batches.next()
            if batch is None:
                return self.exhausted()
            try:
                cur = runner.evaluate(batch)
            except _BadGradFn as bad:
                raise bad.error from None
            except StepFailed as exc:
                msg = f"{exc.reason.message}: {exc.message}"
                return self.finish(tracker.last, exc.reason, msg)
            except (OutputValueError, OutputTypeError):  # a user function's bad output
                raise
            except Exception as exc:
                raise self.step_error(exc, runner.k) from exc
            if not math.isfinite(cur.value):
                return self.finish(tracker.last, Reason.NON_FINITE,
                                   f"{Reason.NON_FINITE.message} (loss {cur.value} at "
                                   f"iteration {cur.iteration})")
            tracker.accept(cur)
            done = self.observe(cur)
            if done is not None:
                return done
            tracker.moved_on(cur)
            tracker.protect(runner.overwrites())
            guard.critical = True
            try:
                runner.advance()
            except Exception as exc:  # the update raised: its iterate is the last good one
                guard.critical = False
                raise self.step_error(exc, cur.iteration, cur) from exc
            guard.release()

    def observe(self, cur: Iterate) -> Result | None:
        """Checkpoint, record, callback and criteria at an accepted iterate; the Result
        when the run stops there."""
        if self.ckpt.due(cur.iteration):
            self.ckpt.save(cur, self.grads.n, self.batches.epoch)
        if self.record:
            self.losses.append(cur.value)
            self.norms.append(cur.grad_norm)
        info = self.info(cur)
        if self.on_epoch is not None and info.epoch is not None and info.epoch >= 1 and (
            info.epoch != self.epoch_seen
        ):
            self.epoch_seen = info.epoch
            if self.hook(self.on_epoch, info, cur):
                return self.finish(cur, Reason.CALLBACK, Reason.CALLBACK.message)
        if self.callback is not None and self.hook(self.callback, info, cur, copy=False):
            return self.finish(cur, Reason.CALLBACK, Reason.CALLBACK.message)
        return self.criteria(info, cur)

    def info(self, cur: Iterate) -> Info:
        tracker = self.tracker
        return _new(Info, (cur.iteration, cur.value, cur.grad_norm, cur.params, cur.state,
                           tracker.prev_params, tracker.prev_value,
                           time.perf_counter() - self.t0, self.batches.epoch))

    def criteria(self, info: Info, cur: Iterate) -> Result | None:
        """Ask ``stop`` about ``cur``; the Result when it holds. A criterion that keeps
        the best params it saw (early stopping) has them restored."""
        fired, self.crit_state = self.stop.check(info, self.crit_state)
        if not fired:
            return None
        message = "; ".join(c.describe(info) for c in fired)
        # converged when any convergence criterion holds here (e.g. loss_below and
        # max_iters firing together); the reason then names it
        conv = [c for c in fired if c.reason.converged]
        reason = (conv or fired)[0].reason
        restored = self.stop.best(self.crit_state) if reason is Reason.NO_IMPROVEMENT else None
        if restored is not None:
            params, metric = restored
            message += f"; restored the params that scored {metric:.6g}"
            cur = Iterate(params, cur.state, math.nan, math.nan, cur.iteration)
        return self.finish(cur, reason, message, reason.converged)

    def hook(self, fn: Callable[[Info], Any], info: Info, cur: Iterate, *,
             copy: bool = True) -> Any:
        """Call a user hook (the callback, ``on_epoch``: with a copy of the params, which
        it may keep); its exception becomes an OptimizationError at ``cur``."""
        try:
            return fn(info._replace(params=_tree.clone(info.params)) if copy else info)
        except Exception as exc:
            name = "callback" if fn is self.callback else getattr(fn, "__name__", "hook")
            msg = f"{name} raised {type(exc).__name__}: {exc}"
            partial = self.finish(cur, Reason.ERROR, msg, raise_failure=False)
            raise OptimizationError(
                f"fixed_point: at iteration {cur.iteration} the {msg}; this iterate is in "
                ".result", partial, cur.iteration,
            ) from exc

    def exhausted(self) -> Result:
        """The data ran out: the params after the last update, checked once more at the
        end of the last epoch (for per-epoch hooks and early stopping)."""
        runner, last = self.runner, self.tracker.last
        final = Iterate(runner.x, runner.s, last.value, last.grad_norm, runner.k)
        if self.batches.epoch is not None and runner.k != last.iteration:
            info = self.info(final)
            if self.on_epoch is not None and info.epoch != self.epoch_seen:
                self.epoch_seen = info.epoch
                if self.hook(self.on_epoch, info, final):
                    return self.finish(final, Reason.CALLBACK, Reason.CALLBACK.message)
            done = self.criteria(info, final)
            if done is not None:
                return done
        return self.finish(final, Reason.DATA_EXHAUSTED, Reason.DATA_EXHAUSTED.message)

    # -- the end --------------------------------------------------------------------
    def finish(self, it: Iterate, reason: Reason, message: str,
               converged: bool | None = None, raise_failure: bool = True) -> Result:
        runner, tracker = self.runner, self.tracker
        if self.owned and it.iteration != runner.k:  # its state was updated in place
            it = it._replace(state=runner.s)
        if math.isnan(it.grad_norm) and it.params is runner.x:
            it = it._replace(grad_norm=runner.grad_norm_now())
        self.ckpt.save(it, self.grads.n, self.batches.epoch)
        params_out = it.params
        if params_out is self.x0:  # never hand the caller's own arrays back
            params_out = _tree.clone(params_out)
        best = tracker.best_params
        if best is it.params:
            best = params_out
        elif best is self.x0:
            best = _tree.clone(best)
        hist = None
        if self.record:
            hist = History(np.asarray(self.losses, dtype=float),
                           np.asarray(self.norms, dtype=float))
        result = Result(
            params=params_out, state=it.state, value=it.value, grad_norm=it.grad_norm,
            iterations=it.iteration,
            converged=reason.converged if converged is None else converged,
            reason=reason, message=message, n_evals=self.grads.n, history=hist,
            best_params=best, best_value=tracker.best_value,
            elapsed=time.perf_counter() - self.t0, stop_state=self.crit_state,
        )
        if raise_failure and self.on_failure == "raise" and reason.is_failure:
            raise OptimizationError(
                f"fixed_point failed at iteration {it.iteration}: {message}", result,
                it.iteration,
            )
        return result

    def step_error(self, exc: Exception, k: int, it: Iterate | None = None) -> OptimizationError:
        """The error for a step (``grad_fn`` or the update) that raised at iteration k;
        its ``result`` is ``it`` (default: the last complete iterate, whose params and
        state go together, so a run can resume from it)."""
        partial = self.finish(self.current() if it is None else it, Reason.ERROR,
                              f"{type(exc).__name__}: {exc}", raise_failure=False)
        return OptimizationError(
            f"fixed_point: step {k + 1} (from iteration {k}) raised "
            f"{type(exc).__name__}: {exc}; last good iterate is in .result",
            partial, k,
        )


def _check_args(grad_fn: Any, stop: Any, callback: Any, on_failure: Any, data: Any,
                differentiable: bool, be: _backend.Backend) -> None:
    check_callable(grad_fn, "grad_fn")
    if not isinstance(stop, Criterion):
        raise TypeError(f"stop: expected a criterion from fnopt.stop, got {type(stop).__name__}")
    if callback is not None:
        check_callable(callback, "callback")
    if on_failure not in ("return", "raise"):
        raise ValueError(f"on_failure: expected 'return' or 'raise', got {on_failure!r}")
    if data is not None and not isinstance(data, Iterable):
        raise TypeError(f"data: expected an iterable of batches, got {type(data).__name__}")
    if differentiable and not be.has_autodiff:
        raise ValueError("differentiable: needs torch params (autograd); got NumPy params")
