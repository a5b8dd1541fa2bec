"""The generic loop: :func:`fixed_point` drives any step function until a stopping
criterion holds, and returns a :class:`Result` that says why it stopped."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

import attrs
import numpy as np
import optree

from fnopt import _inplace
from fnopt import backend as _backend
from fnopt import tree as _tree
from fnopt._base import (
    GradFn,
    Optimizer,
    Params,
    State,
    check_callable,
    check_grad_fn_output,
    check_params,
)
from fnopt.residuals import Linearization  # least-squares optimizers' grad_fn
from fnopt.stop import Criterion, Info, Reason

__all__ = ["fixed_point", "Result", "History", "OptimizationError", "StepFailed"]


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

    # scipy.optimize.OptimizeResult-style aliases
    @property
    def x(self) -> Any:
        """Alias of ``params`` (scipy's name)."""
        return self.params

    @property
    def fun(self) -> float:
        """Alias of ``value`` (scipy's name)."""
        return self.value

    @property
    def nit(self) -> int:
        """Alias of ``iterations`` (scipy's name)."""
        return self.iterations

    @property
    def success(self) -> bool:
        """Alias of ``converged`` (scipy's name)."""
        return self.converged


class OptimizationError(RuntimeError):
    """A run that failed; ``result`` holds the last good :class:`Result`.

    Raised when ``grad_fn`` or the step raises (chained from that exception, with the
    iteration number), and with ``on_failure="raise"`` when the run fails.
    """

    def __init__(self, message: str, result: Result, iteration: int) -> None:
        super().__init__(message)
        self.result = result
        self.iteration = iteration


class _Iterate(NamedTuple):  # a NamedTuple: built every iteration, so cheap to make
    params: Any
    state: Any
    value: float
    grad_norm: float
    iteration: int


class _NotScalar(Exception):
    pass


def _scalar_predicate(
    stop: Criterion,
) -> tuple[Callable[[int, float, float, float], bool] | None, bool]:
    """``stop`` as one Python expression of ``(iteration, loss, grad_norm, elapsed)``
    that holds exactly when ``stop.check`` fires, for criteria built from ``max_iters``,
    ``loss_below``, ``grad_norm_below`` and ``time_limit`` with ``|``/``&`` (stateless,
    reading only scalars); ``(None, False)`` for any other. The second item says whether
    the expression reads the elapsed time.

    Per iteration this replaces building an :class:`Info` and walking the criterion
    tree (a few microseconds that dominate tiny problems) by one call.
    """
    from fnopt import stop as _stop

    consts: dict[str, Any] = {}
    uses_time = False

    def expr(c: Criterion) -> str:
        nonlocal uses_time
        if type(c) is _stop.AnyOf:
            return f"({expr(c.left)} or {expr(c.right)})"
        if type(c) is _stop.AllOf:
            return f"({expr(c.left)} and {expr(c.right)})"
        name = f"c{len(consts)}"
        if type(c) is _stop._LossBelow:
            consts[name] = c.tol
            return f"v <= {name}"
        if type(c) is _stop._GradNormBelow:
            consts[name] = c.tol
            return f"g <= {name}"
        if type(c) is _stop._MaxIters:
            consts[name] = c.n
            return f"k >= {name}"
        if type(c) is _stop._TimeLimit:
            consts[name] = c.seconds
            uses_time = True
            return f"e >= {name}"
        raise _NotScalar

    try:
        source = f"lambda k, v, g, e: {expr(stop)}"
    except _NotScalar:
        return None, False
    return eval(source, {"__builtins__": {}, **consts}), uses_time


# ``NamedTuple(a, b)`` runs a Python-level ``__new__``; the loop builds two per
# iteration, and ``tuple.__new__(cls, values)`` makes the same object at half the cost.
_new: Callable[..., Any] = tuple.__new__


def _as_args(batch: Any) -> tuple[Any, ...]:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def fixed_point(
    opt_or_step: Optimizer | Callable[..., tuple[Params, State]],
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
) -> Result:
    """Run an optimizer (or a bare step function) until ``stop`` holds.

    Each iterate :math:`x_k` is paired with its own loss and gradient norm; ``stop``
    is checked on that pair, so ``Result.value`` is always the loss at
    ``Result.params``. First-order methods evaluate the loss at the params they are
    given, so learning it for :math:`x_k` takes the step from :math:`x_k`; that step's
    result is discarded when the run stops at :math:`x_k` (its evaluation is counted in
    ``n_evals``).

    The caller's ``params`` are never modified. The loop stops with reason
    ``non_finite`` when the loss or gradient turns NaN/inf, keeping the last finite
    iterate; Ctrl-C returns the last completed iterate with reason ``interrupted``.

    Loop-owned buffers: with an optimizer whose step can donate its buffers
    (:func:`fnopt.sgd`, :func:`fnopt.adam`), and no ``callback``, ``data``, criterion
    that reads params or ``differentiable``, the loop copies ``params`` (and a given
    ``state``) once, then at each iterate evaluates the gradient, checks ``stop`` and
    updates its copies in place. The Result is bitwise the one the pure steps give; an
    overwritten iterate the Result needs (the last finite one after a NaN, the best one
    when it is not the last) is recomputed by replaying the run from ``params``, which
    calls ``grad_fn`` again (counted in ``n_evals``; not after Ctrl-C, where
    ``best_params`` is the returned iterate).

    Args:
      opt_or_step: an :class:`fnopt.Optimizer`, or a bare ``step(params, grad_fn,
        state, *batch)`` whose state records ``value`` and ``grad_norm`` at its input.
      params: the starting point (a pytree of float32/float64 arrays or tensors).
      grad_fn: ``grad_fn(params, *batch) -> (value, grads)``.
      state: the optimizer state to start from (default ``opt.init(params)``;
        required with a bare step function). With an optimizer it is checked against
        ``opt.init(params)`` (state classes, dict keys, array shapes and backend): a
        state of another optimizer or for other params is a ``ValueError``.
      stop: a criterion from :mod:`fnopt.stop`, e.g.
        ``stop.loss_below(1e-3) | stop.max_iters(10_000)``.
      data: an iterable of batches; each batch (a tuple/list is unpacked) is passed to
        ``grad_fn`` after the params. The run stops with ``data_exhausted`` at its end.
      callback: called with an :class:`fnopt.stop.Info` at every iterate; returning a
        truthy value stops the run with reason ``callback``. An exception it raises
        is re-raised as :class:`OptimizationError` whose ``result`` is that iterate.
      record: keep the per-iteration loss and gradient norm in ``Result.history``.
      on_failure: ``"return"`` (default) returns the Result of a failed run;
        ``"raise"`` raises :class:`OptimizationError` carrying it.
      differentiable: torch only. Keep the autograd graph through every step, so
        ``Result.params`` can be differentiated (unrolled, reverse mode) with respect
        to anything the steps used: hyperparameters given as tensors with
        ``requires_grad=True`` (e.g. ``fnopt.sgd(lr_tensor)``), the data, or the
        start point. ``grad_fn`` must keep its graph too, e.g.
        ``fnopt.grad.torch_autograd(loss_fn, create_graph=True)``. Steps run under
        ``torch.enable_grad()`` and the loop uses no in-place buffers. Memory grows
        with the number of iterations; :func:`fnopt.implicit.fixed_point` is the
        constant-memory alternative at a converged solution.
      checkpoint_every: save the iterate (params, state, iteration) to
        ``checkpoint_path`` with :func:`fnopt.save` at every iteration that is a
        multiple of this; the final iterate is saved too, whatever the reason the run
        stops (error and Ctrl-C included). Writes are atomic.
      checkpoint_path: the checkpoint file; given alone, only the final iterate is
        saved.
      start_iteration: the iteration number of ``params`` (``max_iters`` and
        ``checkpoint_every`` count from it). To resume,
        ``ck = fnopt.load(path)`` and pass ``ck.params, grad_fn, ck.state,
        start_iteration=ck.iteration``: the trajectory continues bitwise identically
        to an uninterrupted run (stop criteria that look back, such as
        ``param_change_below``, start afresh; with ``data``, one batch per step, pass
        the batches from number ``ck.iteration`` on: the checkpoint does not record
        them).

    Returns:
      A :class:`Result`.

    >>> import numpy as np, fnopt
    >>> task = fnopt.tasks.rosenbrock()
    >>> r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
    ...                       stop=fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10_000))
    >>> r.iterations, r.reason, np.round(r.params, 4)
    (5771, <Reason.LOSS_BELOW: 'loss_below'>, array([0.9684, 0.9377]))
    """
    fresh_state = state is None  # made here by opt.init: the loop owns it
    if isinstance(opt_or_step, Optimizer):
        step = opt_or_step.step
        value_at = opt_or_step.value_at
        be = check_params(params)
        if state is None:
            state = opt_or_step.init(params)
        else:
            _check_state(state, opt_or_step.init(params))
    else:
        check_callable(opt_or_step, "opt_or_step")
        step = opt_or_step
        value_at = "input"
        be = check_params(params)
        if state is None:
            raise ValueError("state: required when opt_or_step is a bare step function")
    check_callable(grad_fn, "grad_fn")
    if not isinstance(stop, Criterion):
        raise TypeError(
            f"stop: expected a criterion from fnopt.stop, got {type(stop).__name__}"
        )
    if callback is not None:
        check_callable(callback, "callback")
    if on_failure not in ("return", "raise"):
        raise ValueError(f"on_failure: expected 'return' or 'raise', got {on_failure!r}")
    _check_checkpoint_args(checkpoint_every, checkpoint_path, start_iteration)
    if data is not None and not isinstance(data, Iterable):
        raise TypeError(f"data: expected an iterable of batches, got {type(data).__name__}")
    if differentiable:  # no fast in-place path may run on this branch
        if be is not _backend.TORCH:
            raise ValueError("differentiable: needs torch params (autograd); got NumPy params")
        step = _with_grad_enabled(step)
    _check_finite_params(params, be)

    n_evals = 0

    def counted(p: Params, *batch: Any) -> tuple[Any, Any]:
        nonlocal n_evals
        n_evals += 1
        out = grad_fn(p, *batch)
        if n_evals == 1 and not isinstance(out, Linearization):  # residual providers
            try:
                return check_grad_fn_output(out, p)
            except (TypeError, ValueError) as exc:  # a bad grad_fn: re-raised as is
                raise _BadGradFn(exc) from exc
        return out

    quick, quick_time = (None, False) if callback is not None else _scalar_predicate(stop)
    to_float: Callable[[Any], float] = float  # 0-d arrays and tensors (a sync on GPUs)
    if differentiable:  # read the values without touching (or warning about) the graph
        to_float = _float_detached
    batches = iter(data) if data is not None else None
    crit_state = stop.init()
    losses: list[float] = []
    norms: list[float] = []
    t0 = time.perf_counter()

    # The loop keeps the params it started from private: steps are pure, so the
    # caller's arrays are only read. ``x``/``s`` is the current iterate.
    x, s, k = params, state, start_iteration
    # Loop-owned buffers (fnopt._inplace): for an optimizer with a DonatingStep, copy
    # the caller's params (and state) once; then at each iterate evaluate the gradient
    # at x_k, check the criteria on (x_k, f(x_k)), and only then update the buffers in
    # place to x_{k+1}. They hold one iterate, number ``held`` (-1 while an update is
    # half done); an earlier iterate that the Result needs (the last finite one after
    # a NaN, the best one) is recomputed by replaying the run from the caller's params,
    # bitwise the same because the update is the pure step's own arithmetic (those
    # grad_fn calls count in n_evals). After Ctrl-C nothing is replayed unless the
    # buffers are torn: best_params is then the returned iterate.
    update_: _inplace.UpdateFn | None = None
    if _inplace.loop_can_donate(
        opt_or_step, stop=stop, data=data, callback=callback, differentiable=differentiable
    ):
        update_ = opt_or_step.step.update  # type: ignore[union-attr]
        x = _tree.clone(params)
        s = state if fresh_state else _inplace.clone_buffers(state)
    held = k
    grads: Any = None
    start = _Iterate(x, s, math.nan, math.nan, start_iteration)

    def replay(it: _Iterate) -> _Iterate:
        """``it`` with the params and state of its iteration, recomputed."""
        assert update_ is not None and isinstance(opt_or_step, Optimizer)
        xr = _tree.clone(params)
        sr = opt_or_step.init(params) if fresh_state else _inplace.clone_buffers(state)
        for _ in range(it.iteration - start_iteration):
            v, g = counted(xr)  # real grad_fn calls: counted in n_evals
            xr, sr = update_(xr, g, sr, v, _tree.global_norm(g), True)
        return it._replace(params=xr, state=sr)
    saved_at = -1

    def save_checkpoint(it: _Iterate) -> None:
        nonlocal saved_at
        if checkpoint_path is not None and it.iteration != saved_at:
            from fnopt.checkpoint import save

            meta = {"value": it.value, "grad_norm": it.grad_norm, "n_evals": n_evals}
            try:
                save(checkpoint_path, it.params, it.state, iteration=it.iteration,
                     metadata=meta)
            except OSError as exc:  # a full disk must not cost the run: warn, go on
                warnings.warn(
                    f"checkpoint_path: could not save iteration {it.iteration} ({exc}); "
                    "the run goes on and the previous checkpoint is intact",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return
            saved_at = it.iteration
    last_good = start
    best = start
    prev_params: Any = None
    prev_value = math.nan

    def finish(
        it: _Iterate,
        reason: Reason,
        message: str,
        converged: bool | None = None,
        raise_failure: bool = True,
    ) -> Result:
        if update_ is not None and it.iteration != held:  # overwritten (or torn)
            it = replay(it)
        save_checkpoint(it)
        hist = None
        if record:
            hist = History(np.asarray(losses, dtype=float), np.asarray(norms, dtype=float))
        params_out = it.params
        if params_out is params:  # never hand the caller's own arrays back
            params_out = _tree.clone(params_out)
        best_params, best_value = best.params, best.value
        if best_params is params:  # the caller's arrays: a copy (shared with params_out)
            best_params = params_out if it.params is params else _tree.clone(params)
        if update_ is not None and best.iteration not in (held, it.iteration):
            if reason is Reason.INTERRUPTED:  # no replay after Ctrl-C: control back now
                best_params, best_value = params_out, it.value
            else:
                best_params = replay(best).params
        elif update_ is not None and best.iteration == it.iteration:
            best_params = params_out
        result = Result(
            params=params_out,
            state=it.state,
            value=it.value,
            grad_norm=it.grad_norm,
            iterations=it.iteration,
            converged=reason.converged if converged is None else converged,
            reason=reason,
            message=message,
            n_evals=n_evals,
            history=hist,
            best_params=best_params,
            best_value=best_value,
            elapsed=time.perf_counter() - t0,
        )
        if raise_failure and on_failure == "raise" and reason.is_failure:
            raise OptimizationError(
                f"fixed_point failed at iteration {it.iteration}: {message}", result, it.iteration
            )
        return result

    def step_error(exc: Exception) -> OptimizationError:
        """The error for a step (``grad_fn`` or the update) that raised at iteration k."""
        partial = finish(
            last_good, Reason.ERROR, f"{type(exc).__name__}: {exc}", raise_failure=False
        )
        return OptimizationError(
            f"fixed_point: step {k + 1} (from iteration {k}) raised "
            f"{type(exc).__name__}: {exc}; last good iterate is in .result",
            partial,
            k,
        )

    try:
        while True:
            if batches is not None:
                try:
                    batch = _as_args(next(batches))
                except StopIteration:
                    return finish(last_good, Reason.DATA_EXHAUSTED, Reason.DATA_EXHAUSTED.message)
            else:
                batch = ()
            try:
                if update_ is None:
                    x1, s1 = step(x, counted, s, *batch)
                    v1, gn1 = s1.value, s1.grad_norm
                else:  # the evaluation half of the step; the update comes after the checks
                    if n_evals:  # ``counted`` inlined: its output check is for the first
                        n_evals += 1
                        v1, grads = grad_fn(x, *batch)
                    else:
                        v1, grads = counted(x, *batch)
                    gn1 = _tree.global_norm(grads)
            except _BadGradFn as bad:
                raise bad.error from None
            except StepFailed as exc:
                return finish(last_good, exc.reason, f"{exc.reason.message}: {exc.message}")
            except Exception as exc:
                raise step_error(exc) from exc
            value = to_float(v1)
            gnorm = to_float(gn1)
            if value_at == "input":
                cur = _new(_Iterate, (x, s, value, gnorm, k))
            else:
                cur = _new(_Iterate, (x1, s1, value, gnorm, k + 1))
            if not (math.isfinite(value) and math.isfinite(gnorm)):
                return finish(
                    last_good,
                    Reason.NON_FINITE,
                    f"{Reason.NON_FINITE.message} (loss {value}, gradient norm {gnorm} "
                    f"at iteration {cur.iteration})",
                )
            last_good = cur
            if not value >= best.value:  # also true while best.value is NaN
                best = cur
            if checkpoint_every and cur.iteration % checkpoint_every == 0 and (
                cur.iteration != start_iteration
            ):
                save_checkpoint(cur)
            if record:
                losses.append(value)
                norms.append(gnorm)
            # Without a callback, a criterion that reads only scalars is first asked as
            # one compiled expression; Info and stop.check run when it holds.
            if quick is None or quick(
                cur.iteration, value, gnorm, time.perf_counter() - t0 if quick_time else 0.0
            ):
                info = _new(
                    Info,
                    (
                        cur.iteration,
                        value,
                        gnorm,
                        cur.params,
                        cur.state,
                        prev_params,
                        prev_value,
                        time.perf_counter() - t0,
                    ),
                )
                if callback is not None:
                    try:
                        stop_now = callback(info)
                    except Exception as exc:
                        msg = f"callback raised {type(exc).__name__}: {exc}"
                        partial = finish(cur, Reason.ERROR, msg, raise_failure=False)
                        raise OptimizationError(
                            f"fixed_point: at iteration {cur.iteration} the {msg}; this iterate "
                            "is in .result",
                            partial,
                            cur.iteration,
                        ) from exc
                    if stop_now:
                        return finish(cur, Reason.CALLBACK, Reason.CALLBACK.message)
                fired, crit_state = stop.check(info, crit_state)
                if fired:
                    message = "; ".join(c.describe(info) for c in fired)
                    # converged when any convergence criterion holds at this iterate (e.g.
                    # loss_below and max_iters firing together); the reason then names it
                    conv = [c for c in fired if c.reason.converged]
                    reason = (conv or fired)[0].reason
                    return finish(cur, reason, message, reason.converged)
            prev_params, prev_value = cur.params, value
            if update_ is None:
                x, s, k = x1, s1, k + 1
                continue
            held = -1
            try:
                x, s = update_(x, grads, s, v1, gn1, True)
            except Exception as exc:
                raise step_error(exc) from exc
            grads = None
            k += 1
            held = k

    except KeyboardInterrupt:
        # Steps are pure, so ``x``/``s`` is intact: the last completed iterate. (With
        # loop-owned buffers a half-done update is replayed by ``finish``.)
        if update_ is not None:
            done = last_good.iteration == k
        else:
            done = last_good.params is x
        cur = last_good if done else _Iterate(x, s, math.nan, math.nan, k)
        return finish(cur, Reason.INTERRUPTED, Reason.INTERRUPTED.message)


def _float_detached(x: Any) -> float:
    return float(x.detach())


def _with_grad_enabled(step: Callable[..., tuple[Params, State]]) -> Callable[..., Any]:
    """``step`` run under ``torch.enable_grad()`` (``differentiable=True``)."""
    import torch

    def graph_step(params: Params, grad_fn: GradFn, state: State, *batch: Any) -> Any:
        with torch.enable_grad():
            return step(params, grad_fn, state, *batch)

    return graph_step


def _check_state(state: Any, template: Any, where: str = "") -> None:
    """``state`` must be a state of this optimizer for these params: the NamedTuple
    classes, dict keys, ``None`` leaves, tuple lengths and array shapes of ``template``
    (``opt.init(params)``, which has the structure of every later state). Lenient only
    where leaf values legitimately change kind: numbers match numbers, and 0-d arrays
    match any dtype."""
    here = where or "<root>"

    def fail(msg: str) -> None:
        raise ValueError(
            f"state: {msg} at {here}; pass a state made by opt.init(params) (or a later "
            "step) of this optimizer for params of this structure"
        )

    if template is None:
        if state is not None:
            fail(f"expected None, got {type(state).__name__}")
        return
    if optree.is_namedtuple_instance(template):
        if type(state) is not type(template):
            fail(f"expected a {type(template).__name__}, got {type(state).__name__}")
        for f, a, b in zip(template._fields, state, template):
            _check_state(a, b, f"{where}.{f}")
    elif isinstance(template, (tuple, list)):
        if not isinstance(state, (tuple, list)) or len(state) != len(template):
            fail(f"expected a {type(template).__name__} of {len(template)} items, got "
                 f"{type(state).__name__}" + (f" of {len(state)}" if isinstance(
                     state, (tuple, list)) else ""))
        for i, (a, b) in enumerate(zip(state, template)):
            _check_state(a, b, f"{where}[{i}]")
    elif isinstance(template, dict):
        if not isinstance(state, dict) or set(state) != set(template):
            fail(f"expected a dict with keys {sorted(map(str, template))}")
        for key in template:
            _check_state(state[key], template[key], f"{where}[{key!r}]")
    elif isinstance(template, (np.ndarray, np.generic)) or _backend.is_tensor(template):
        if not (isinstance(state, (np.ndarray, np.generic)) or _backend.is_tensor(state)):
            fail(f"expected an array, got {type(state).__name__}")
        if _backend.is_tensor(state) != _backend.is_tensor(template):
            fail("holds an array of the other backend than the params")
        if tuple(state.shape) != tuple(template.shape):
            fail(f"shape {tuple(state.shape)} does not match {tuple(template.shape)}")
        if template.ndim and state.dtype != template.dtype:
            fail(f"dtype {state.dtype} does not match {template.dtype}")


def _check_checkpoint_args(every: Any, path: Any, start_iteration: Any) -> None:
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, int):
            raise TypeError(
                f"checkpoint_every: expected an int or None, got {type(every).__name__}"
            )
        if every < 1:
            raise ValueError(f"checkpoint_every: expected an int >= 1, got {every}")
        if path is None:
            raise ValueError("checkpoint_path: required when checkpoint_every is given")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint_path: expected a str or os.PathLike, got {type(path).__name__}"
        )
    if isinstance(start_iteration, bool) or not isinstance(start_iteration, int):
        raise TypeError(f"start_iteration: expected an int, got {type(start_iteration).__name__}")
    if start_iteration < 0:
        raise ValueError(f"start_iteration: expected an int >= 0, got {start_iteration}")


def _check_finite_params(params: Params, be: _backend.Backend) -> None:
    leaves = _tree.leaves(params)
    for path, leaf in zip(_tree.paths(params), leaves):
        if not be.all_finite([leaf]):
            raise ValueError(f"params: leaf {path} contains NaN or inf; start from finite values")
