"""The driver: :func:`fixed_point` checks its arguments, builds a runner
(:mod:`fnopt.loop.runners`), and runs the while loop — evaluate, accept, check, step —
with checkpoints, callbacks and data as hooks (:mod:`fnopt.loop.hooks`).

The sections below are the reference for :func:`fixed_point`'s options.

**Loop-owned buffers.** With a first-order optimizer (a :class:`fnopt.Descent`: every
alias and chain), no ``callback`` and ``differentiable=False``, the loop copies
``params`` (and a given ``state``) once and runs every update into its own buffers
(``opt.apply(..., out=...)``): two params buffers in turn, so the previous iterate
survives one step, and the optimizer state in place. The numbers are those of the
pure steps, and so is the state paired with every iterate: before each update the
loop copies the state buffers the update overwrites in place (adam's moments, a
momentum buffer; nothing for plain ``sgd``), so a stop at the previous iterate (a
``non_finite`` loss at the next one, an update that raised) returns and saves that
iterate with its own state. With ``check_every > 1`` ("Host syncs") that copy is
not made: the copy of the last checked iterate, one per check, takes its place (an
update that raises then ends the run there). The gradient norm is computed only when a criterion
(:func:`fnopt.stop.grad_norm_below`), a callback or ``record=True`` reads it, and for
the Result's final iterate.

**Host syncs** (``check_every``). Reading a loss to a Python float is a device-to-host
read that stalls a GPU's queue. A first-order optimizer's loop reads the losses only
at every iteration that is a multiple of ``check_every`` (at the first iteration, and
at each ``checkpoint_every`` multiple too), all the losses since the last check at
once, in one read; the ones in between wait on the device. ``max_iters``,
``time_limit`` and other criteria that read only the iteration, the time or the epoch
are asked at every iteration and need no read: with them the loop makes no host sync
between checks (a few per run: the params' finiteness at the start, the losses left
and the gradient norm at the end). Criteria that read the loss, the gradient norm or
the params are asked only at the checks (a run with ``loss_below`` stops at the first
check where it holds; the gradient norm is one more read there); the previous loss
they see is the one read at the check before. The default ``check_every=None`` is 1
for NumPy params and CPU tensors (a read there stalls nothing, and every guarantee
is per iteration) and whenever a callback, ``on_epoch`` or ``record=True`` reads every
loss (a value above 1 is then a ``ValueError``), and ``DEVICE_CHECK_EVERY`` (20) for a
first-order optimizer on an accelerator. With ``check_every=k > 1`` the guarantees
become:

* *last finite iterate*: a non-finite loss is noticed at the next check (or at the
  end of the run, whatever ends it); the run then returns, and checkpoints, the last
  *checked* iterate (at most ``k`` iterations before the first non-finite loss, all
  losses up to it finite) with its own state, reason ``non_finite`` (an error or
  Ctrl-C keeps its reason and says so); resuming from it is bitwise the run that
  never saw the non-finite loss. To keep it the loop copies the params and state at
  each check (one copy per ``k`` steps; one more params-and-state of memory).
* *best iterate* (``Result.best_params``/``best_value``): the best among the checked
  iterates.
* ``Result.value`` is still the loss at ``Result.params`` (read at the end).

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

**How a run ends.** However the run ends, the last good iterate (params with their
own state) is kept, and saved as the final checkpoint when ``checkpoint_path`` is
given:

* a criterion, ``data`` running out, a callback's truthy return, a ``non_finite``
  loss, a failed line search: the :class:`Result` is returned (with
  ``on_failure="raise"``, a failure raises :class:`OptimizationError` carrying it);
* Ctrl-C (``KeyboardInterrupt``): the Result of the last completed iterate is
  returned, reason ``interrupted``;
* an ``Exception`` raised by ``grad_fn``, the step, ``data`` (the loader), a
  callback, ``on_epoch`` or a criterion, or a callback's return value that is
  neither true nor false (a vector): :class:`OptimizationError`, chained from it,
  whose ``result`` is the Result of the last good iterate (reason ``error``); a
  malformed output of ``grad_fn`` is re-raised as the ``ValueError``/``TypeError``
  it is, with that ``result`` attribute;
* any other ``BaseException`` (``SystemExit``, ``GeneratorExit``, ...): the same
  exception is re-raised, never swallowed, with the Result as its ``result``
  attribute.

**Checkpoints and resuming.** With ``checkpoint_every``, the iterate (params, state,
iteration) is saved to ``checkpoint_path`` with :func:`fnopt.save` at every iteration
that is a multiple of it, with the stop criterion's state (early stopping's best
value, best params and counter); the final iterate is saved too, whatever the reason the run
stops (errors of ``grad_fn``, ``data`` or a callback, ``SystemExit`` and any
other ``BaseException``, ``non_finite`` and Ctrl-C included: see "How a run ends"),
always params with the state that belongs to them. Writes are atomic.
``checkpoint_path`` given alone saves only the final iterate. Params and state that
cannot be saved fail at the start of the run (:func:`fnopt.checkpoint.check_saveable`),
not at the first save. To resume, ``ck = fnopt.load(path)`` and pass ``ck.params, grad_fn, ck.state,
start_iteration=ck.iteration, stop_state=ck.stop_state``: the trajectory continues
bitwise identically to an uninterrupted run, and early stopping
(:func:`fnopt.stop.no_improvement`) stops at the same iteration with the same restored
params (a state whose step count is not ``start_iteration`` is refused; without
``stop_state`` the criteria start afresh; with ``data``, pass the batches from number
``ck.iteration`` on: one batch per iteration).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np

from fnopt import backend as _backend
from fnopt import distributed as _distributed
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

# what the loop was doing when an exception ended the run (:meth:`_Run.ended`)
_DATA, _STEP, _UPDATE = "data", "step", "update"
_OBSERVE, _END = "stop criterion", "stop criterion at the end of the data"

#: The :class:`Info` fields a criterion may read without a value from the device.
_CHEAP = frozenset({"iteration", "elapsed", "epoch"})

#: ``check_every``'s default for a first-order optimizer on an accelerator.
DEVICE_CHECK_EVERY = 20


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
    start_iteration: int | None = None,
    epochs: int | None = None,
    on_epoch: Callable[[Info], Any] | None = None,
    stop_state: Any = None,
    check_every: int | None = None,
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
    a finite loss and the state paired with it (a non-finite *gradient* alone does not
    stop it: a transform such as :func:`fnopt.apply_if_finite` may skip the step and go
    on); resuming from it continues exactly as a run that never saw the NaN.

    However the run ends, the last good iterate and its state are kept (and saved as
    the final checkpoint): a stop returns the :class:`Result`; Ctrl-C returns it with
    reason ``interrupted``; an ``Exception`` from ``grad_fn``, ``data``, a callback or
    a criterion raises :class:`OptimizationError` carrying it as ``.result``; any other
    ``BaseException`` (``SystemExit``, ...) is re-raised with it as ``.result``.
    :mod:`fnopt.loop.driver` documents how a run ends, loop-owned buffers, data,
    differentiating through the loop, host syncs and resuming.

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
      epochs: ``epochs`` passes over a re-iterable ``data`` (``fnopt.epochs``).
      callback: called with an :class:`fnopt.stop.Info` at every iterate; a truthy
        return stops the run with reason ``callback``; an exception it raises is
        re-raised as :class:`OptimizationError` whose ``result`` is that iterate.
      record: keep each iteration's loss and gradient norm in ``Result.history``.
      on_failure: ``"return"`` (default) or ``"raise"`` (:class:`OptimizationError`)
        for a failed run.
      differentiable: torch only: keep the autograd graph through every step, so
        ``Result.params`` can be differentiated (``grad_fn`` must keep its graph too).
      checkpoint_every: save to ``checkpoint_path`` every this many iterations, and the
        final iterate whatever the reason the run stops.
      checkpoint_path: the checkpoint file; given alone, only the final iterate is saved.
      on_epoch: called with the :class:`fnopt.stop.Info` of the params at the end of
        each epoch (when ``Info.epoch`` changes, and once more after the last batch),
        e.g. to evaluate on a validation set; ``info.params`` is a copy the hook may
        keep. A truthy return stops the run with reason ``callback``.
      start_iteration: the iteration number of ``params`` (default 0; ``max_iters`` and
        ``checkpoint_every`` count from it); resume from ``ck = fnopt.load(path)`` with
        ``start_iteration=ck.iteration``. Given with a ``state`` of an optimizer, the
        state's step count (``state.count``) must equal it (``ValueError``: a
        mismatched ``(params, state, start_iteration)`` is refused).
      stop_state: the state of ``stop`` to start from (default ``stop.init()``), e.g.
        ``ck.stop_state`` (early stopping resumes with its best params and counter).
      check_every: read the losses to the host every this many iterations, all at
        once (default ``None``: see :mod:`fnopt.loop.driver`, "Host syncs").

    Returns:
      A :class:`Result`.

    >>> import numpy as np, fnopt; task = fnopt.tasks.rosenbrock()
    >>> r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
    ...                       stop=fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10_000))
    >>> r.iterations, r.reason, np.round(r.params, 4)
    (5771, <Reason.LOSS_BELOW: 'loss_below'>, array([0.9684, 0.9377]))
    """
    data = data if epochs is None else _epochs_of(data, epochs)
    return _Run(opt_or_step, params, grad_fn, state, stop=stop, data=data, callback=callback,
                on_epoch=on_epoch, record=record, on_failure=on_failure, check_every=check_every,
                differentiable=differentiable, checkpoint_every=checkpoint_every,
                checkpoint_path=checkpoint_path, start_iteration=start_iteration,
                stop_state=stop_state).drive()


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
                 checkpoint_path: str | os.PathLike[str] | None,
                 start_iteration: int | None, stop_state: Any = None,
                 check_every: int | None = None) -> None:
        if isinstance(opt, Transform) and not is_optimizer(opt):
            opt = Descent(opt)  # a hand-built chain: lifted as fnopt.descent does
        be = check_params(params, low_precision=isinstance(opt, Descent))
        fresh = state is None
        checks.check_checkpoint_args(checkpoint_every, checkpoint_path, start_iteration)
        if is_optimizer(opt):
            if state is None:
                state = opt.init(params)
            else:
                checks.check_state(state, opt.init(params))
                if start_iteration is not None:
                    checks.check_step_count(state, start_iteration)
        else:
            check_callable(opt, "opt_or_step")
            if state is None:
                raise ValueError("state: required when opt_or_step is a bare step function")
        _check_args(grad_fn, stop, callback, on_failure, data, differentiable, be)
        if on_epoch is not None:
            check_callable(on_epoch, "on_epoch")
        start_iteration = start_iteration or 0
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
        # uneven data-parallel shards: every rank stops after the shortest together
        self.batches = Batches(_distributed.loop_data(data, grad_fn))
        self.ckpt = Checkpointer(checkpoint_path, checkpoint_every, start_iteration)
        self.losses: list[float] = []
        self.norms: list[float] = []
        to_float = _float_detached if differentiable else float
        self.owned = isinstance(opt, Descent) and callback is None and not differentiable
        self.runner: FirstOrder | Stepper
        self.every = checks.check_every_arg(
            check_every, be.on_host(_tree.leaves(params)[0]),
            isinstance(opt, Descent) and callback is None and on_epoch is None and not record,
        )
        # the criteria that need no value read from the device: asked at every iteration
        self.cheap_stop = stop.reads <= _CHEAP
        self.snap_grads: Any = None  # the grads at the last checked iterate (every > 1)
        if isinstance(opt, Descent):
            need_gnorm = "grad_norm" in stop.reads or record or callback is not None
            if self.owned and not fresh:
                state = clone_buffers(state)
            self.runner = FirstOrder(opt, params, state, self.grads, start=start_iteration,
                                     owned=self.owned, need_gnorm=need_gnorm,
                                     to_float=to_float, differentiable=differentiable,
                                     check_every=self.every, due=self.ckpt.due)
        else:
            step = opt.step if is_optimizer(opt) else opt
            value_at = opt.value_at if is_optimizer(opt) else "input"
            self.runner = Stepper(step, value_at, params, state, self.grads,
                                  start=start_iteration, to_float=to_float,
                                  differentiable=differentiable)
        start = Iterate(self.runner.x, state, math.nan, math.nan, start_iteration)
        self.tracker = Tracker(start)
        self.crit_state = stop.init()
        if stop_state is not None:
            checks.check_stop_state(stop_state, self.crit_state)
            self.crit_state = stop_state
        # the criteria's state before they saw the last iterate checked: what a checkpoint
        # of that iterate saves, so that a run resumed from it checks it exactly once
        self.crit_before, self.checked_at = self.crit_state, -1
        self.guard = InterruptGuard(active=True)
        self.finishing = False  # set once the run's Result is being made
        self.t0 = time.perf_counter()

    # -- the loop -------------------------------------------------------------------
    def drive(self) -> Result:
        try:
            with self.guard:
                return self._loop()
        except KeyboardInterrupt:  # one that arrived outside the loop's own handler
            if self.finishing:
                raise
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
        where, cur = _DATA, None
        try:
            while True:
                where = _DATA
                batch = self.batches.next()
                if batch is None:
                    where = _END
                    return self.exhausted()
                where = _STEP
                try:
                    cur = runner.evaluate(batch)
                except StepFailed as exc:
                    msg = f"{exc.reason.message}: {exc.message}"
                    return self.finish(tracker.last, exc.reason, msg)
                if not runner.checked:  # the loss waits on the device (check_every)
                    where = _OBSERVE
                    done = self.observe_unchecked(cur)
                elif not math.isfinite(cur.value):
                    return self.finish(tracker.last, Reason.NON_FINITE,
                                       f"{Reason.NON_FINITE.message} (loss {cur.value} at "
                                       f"iteration {cur.iteration})")
                else:
                    tracker.accept(cur if self.every == 1 else self.kept(cur))
                    where = _OBSERVE
                    done = self.observe(cur)
                if done is not None:
                    return done
                if runner.checked:
                    tracker.moved_on(cur)
                else:  # the previous loss stays the last one read
                    tracker.prev_params = cur.params
                tracker.protect(runner.overwrites())
                where = _UPDATE
                guard.critical = True
                runner.advance()
                guard.release()
        except BaseException as exc:
            guard.critical = False
            if self.finishing:  # raised by or after the end of the run: as it is
                raise
            it = cur if where in (_OBSERVE, _UPDATE) and cur is not None else self.current()
            if where == _UPDATE and self.every != 1:  # no state copy per step: the last
                it = tracker.last  # checked iterate (its own copy) is the last good one
            return self.ended(exc, where, it)

    def kept(self, cur: Iterate) -> Iterate:
        """With ``check_every > 1``: a copy of the checked iterate ``cur`` (params and
        the state paired with them), the last good iterate until the next check (the
        loop's own buffers move on meanwhile)."""
        runner = self.runner
        assert isinstance(runner, FirstOrder)  # check_every > 1 needs one
        self.snap_grads = runner.grads_at_x
        return Iterate(_tree.clone(cur.params), clone_buffers(cur.state), cur.value,
                       cur.grad_norm, cur.iteration)

    def observe_unchecked(self, cur: Iterate) -> Result | None:
        """At an iterate whose loss was not read (``check_every``): the criteria, when
        they read nothing from the device (``max_iters``, ``time_limit``)."""
        return self.criteria(self.info(cur), cur) if self.cheap_stop else None

    def settle(self, it: Iterate, reason: Reason, message: str) -> tuple[Iterate, Reason, str]:
        """With ``check_every > 1``, at the end: the losses not read yet are read (one
        device-to-host read). All finite: ``it`` gets its loss if it is the newest
        evaluated iterate. One is not: the run ends at the last checked iterate
        (``tracker.last``), reason ``non_finite`` (an error or Ctrl-C keeps its own)."""
        runner = self.runner
        if self.every == 1 or not isinstance(runner, FirstOrder) or not runner.pending:
            return it, reason, message
        newest = runner.pending[-1][0]
        at, value = runner.read_pending()
        if math.isfinite(value):
            if at == newest and math.isnan(it.value) and it.params is runner.x and (
                it.iteration in (at, at + 1)  # evaluated there, or just updated from it
            ):
                it = it._replace(value=value)
            return it, reason, message
        last = self.tracker.last
        bad = (f"{Reason.NON_FINITE.message} (loss {value} at iteration {at}; the losses "
               f"are read every {self.every} iterations: the last checked iterate, "
               f"{last.iteration}, is kept)")
        if reason in (Reason.ERROR, Reason.INTERRUPTED):
            return last, reason, f"{message}; {bad}"
        return last, Reason.NON_FINITE, bad

    def observe(self, cur: Iterate) -> Result | None:
        """Checkpoint, record, callback and criteria at an accepted iterate; the Result
        when the run stops there."""
        if self.ckpt.due(cur.iteration):
            self.ckpt.save(cur, self.grads.n, self.batches.epoch, self.crit_state)
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
        self.crit_before, self.checked_at = self.crit_state, info.iteration
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
             copy: bool = True) -> bool:
        """Call a user hook (the callback, ``on_epoch``: with a copy of the params, which
        it may keep): whether it asks to stop. What it raises (or a return value that is
        neither true nor false, such as a vector) ends the run at ``cur``
        (:meth:`ended`)."""
        name = "callback" if fn is self.callback else getattr(fn, "__name__", "hook")
        try:
            return checks.truth(name, fn(
                info._replace(params=_tree.clone(info.params)) if copy else info))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self.ended(exc, name, cur)
            raise  # not reached: ended raises

    def exhausted(self) -> Result:
        """The data ran out: the params after the last update, checked once more at the
        end of the last epoch (for per-epoch hooks and early stopping)."""
        runner, last = self.runner, self.tracker.last
        value = last.value
        if self.every != 1 and isinstance(runner, FirstOrder) and runner.pending:
            at, value = runner.read_pending()  # the last batch's loss, if all were finite
            if not math.isfinite(value):
                return self.finish(last, Reason.NON_FINITE,
                                   f"{Reason.NON_FINITE.message} (loss {value} at "
                                   f"iteration {at})")
        final = Iterate(runner.x, runner.s, value, last.grad_norm, runner.k)
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
        self.finishing = True
        runner, tracker = self.runner, self.tracker
        it, reason, message = self.settle(it, reason, message)
        if self.owned:  # an overwritten state comes back from its copy
            it = it._replace(state=runner.paired_state(it))
        if math.isnan(it.grad_norm) and it.params is runner.x:
            it = it._replace(grad_norm=runner.grad_norm_now())
        elif math.isnan(it.grad_norm) and it is tracker.last and self.snap_grads is not None:
            it = it._replace(grad_norm=float(_tree.global_norm(self.snap_grads)))
        crit = self.crit_before if it.iteration == self.checked_at else self.crit_state
        self.ckpt.save(it, self.grads.n, self.batches.epoch, crit)
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

    def ended(self, exc: BaseException, source: str, it: Iterate) -> Result:
        """The one place where a run that ends by an exception keeps its last good
        iterate ``it`` (the params and state that go together), saves it as the final
        checkpoint, and says so; ``source`` is what raised (:data:`_DATA`, :data:`_STEP`,
        ... or a hook's name).

        * ``KeyboardInterrupt`` (Ctrl-C): returns the Result, reason ``interrupted``.
        * An ``Exception`` from the user's code (``grad_fn``, the step, ``data``, a
          callback, a criterion): raises :class:`OptimizationError` chained from it,
          whose ``result`` is that Result (reason ``error``); a bad output of
          ``grad_fn`` is re-raised as the ``ValueError``/``TypeError`` it is.
        * Any other ``BaseException`` (``SystemExit``, ``GeneratorExit``, ...): the
          same exception is re-raised, never swallowed, with the Result as its
          ``result`` attribute.
        """
        if isinstance(exc, KeyboardInterrupt):
            return self.finish(self.current(), Reason.INTERRUPTED, Reason.INTERRUPTED.message)
        error = exc.error if isinstance(exc, _BadGradFn) else exc
        what = f"{type(error).__name__}: {error}"
        k = it.iteration
        if source in (_STEP, _UPDATE):
            message = what
            head = f"step {k + 1} (from iteration {k}) raised {what}; last good iterate"
        elif source == _DATA:
            message = f"data raised {what}"
            head = (f"data raised {what} while giving the batch for step {k + 1} (from "
                    f"iteration {k}); last good iterate")
        else:
            message = f"{source} raised {what}"
            head = f"at iteration {k} the {source} raised {what}; this iterate"
        partial = self.finish(it, Reason.ERROR, message, raise_failure=False)
        bad_output = isinstance(exc, (_BadGradFn, OutputValueError, OutputTypeError))
        if isinstance(error, Exception) and not bad_output:
            raise OptimizationError(f"fixed_point: {head} is in .result", partial, k) from error
        with contextlib.suppress(AttributeError, TypeError):
            error.result = partial  # type: ignore[attr-defined]
        if error is exc:
            raise error
        raise error from None


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
