"""Many independent problems at once: :func:`batched` runs one optimizer over a batch
of starting points (multi-start, hyperparameter sweeps over data) in lock-step, with
each problem stopping on its own.

The batch is a leading axis on every leaf of the params: problem ``i`` is
``tree.map(lambda x: x[i], params)``. The gradient provider is evaluated once per step
for the whole batch:

* NumPy: ``grad_fn`` is written for the batch (vectorised over the leading axis) and
  returns the per-problem losses, shape ``(B,)``, and the gradients;
* torch: ``grad_fn`` is the provider of *one* problem (e.g.
  :func:`fnopt.grad.torch_func`) and :func:`torch.func.vmap` maps it over the batch
  (``vmap=True``, the default on torch), or a batched provider as on NumPy
  (``vmap=False``).

The optimizer's pure step then runs once on the stacked arrays. That is exact for the
element-wise optimizers (every first-order optimizer of :mod:`fnopt.optimizers`:
the update of one element depends only on that element's history), whose step count
is shared by the batch anyway. An optimizer that couples the problems (a line search or
second-order method, or a norm, trust ratio or clipping threshold over the whole batch:
lamb, lars, muon, adafactor, ``clip_by_global_norm`` in a chain) is refused with a
``ValueError`` naming ``opt`` (see :func:`_couples_problems`). Each problem is checked
against ``stop`` at every iterate, as :func:`fnopt.fixed_point` does (loss and
gradient norm *per problem*), and once its criterion holds it is frozen: its params,
loss, iteration count and reason are recorded and it takes no further part (the batch
is compacted as problems stop).
"""

from __future__ import annotations

import math
import time
from typing import Any

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import stop as _stop
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
    check_grads,
    check_params,
    guarded_call,
    is_optimizer,
    reads_step_loss,
)
from fnopt.stop import Reason

__all__ = ["batched", "BatchedResult"]


@attrs.frozen(slots=True)
class BatchedResult:
    """What :func:`batched` returns; every array has one entry per problem.

    Attributes:
      params: each problem's final iterate (the params pytree with the batch axis).
      value: the loss at ``params``, shape ``(B,)`` (NumPy).
      grad_norm: the gradient norm there, shape ``(B,)``.
      iterations: steps each problem took, shape ``(B,)``.
      converged: whether each problem's reason counts as convergence, ``(B,)``.
      reason: the :class:`fnopt.stop.Reason` of each problem, ``(B,)`` (object array).
      steps: steps the batch took (the largest of ``iterations``).
      n_evals: batched ``grad_fn`` calls.
      elapsed: seconds spent.
    """

    params: Any
    value: np.ndarray
    grad_norm: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    reason: np.ndarray
    steps: int
    n_evals: int
    elapsed: float


# -- criteria, vectorised over the problems ------------------------------------------


class _Checker:
    """Asks a criterion about all live problems at once (``Criterion.check_batch``).

    ``fired(k, values, gnorms, elapsed)`` returns a bool (the same answer for every
    problem) or a bool array; ``reasons(mask)`` then names, for the problems in
    ``mask``, the first leaf criterion that holds there (convergence criteria first, as
    the loop; a leaf under ``&`` counts only where the whole ``&`` holds).
    """

    def __init__(self, stop: _stop.Criterion) -> None:
        self.stop = stop
        self.needs_gnorm = "grad_norm" in stop.reads
        self.state = stop.init()
        self.hits: list[tuple[_stop.Criterion, Any]] = []

    def compact(self, keep: np.ndarray) -> None:
        """Drop the stopped problems from the criteria's per-problem state."""

        def f(leaf: Any) -> Any:
            return leaf[keep] if isinstance(leaf, np.ndarray) and leaf.ndim else leaf

        self.state = optree.tree_map(f, self.state, none_is_leaf=False)

    def fired(self, k: int, v: np.ndarray, g: Any, t: float) -> Any:
        info = _stop.BatchInfo(k, v, g, t)
        out, self.hits, self.state = self.stop.check_batch(info, self.state)
        return out

    def reasons(self, mask: np.ndarray) -> np.ndarray:
        out = np.empty(int(mask.sum()), dtype=object)
        todo = np.ones(out.shape, dtype=bool)
        ordered = [h for h in self.hits if h[0].reason.converged] + [
            h for h in self.hits if not h[0].reason.converged
        ]
        for c, m in ordered:
            hit = np.broadcast_to(m, mask.shape)[mask] & todo
            out[hit] = c.reason
            todo &= ~hit
        return out


# -- the driver ------------------------------------------------------------------------


def _row_norms(be: _backend.Backend, grads: Any, n: int) -> np.ndarray:
    total = None
    for g in _tree.leaves(grads):
        sq = (g * g).reshape(n, -1).sum(1)
        total = sq if total is None else total + sq
    return np.sqrt(be.to_numpy(total))


def batched(
    opt: Optimizer,
    params: Params,
    grad_fn: GradFn,
    state: State | None = None,
    *,
    stop: _stop.Criterion,
    vmap: bool | None = None,
) -> BatchedResult:
    """Run ``opt`` on a batch of independent problems until each one's ``stop`` holds.

    Problem ``i`` is slice ``i`` of the leading axis of every leaf of ``params``. At
    each iterate :math:`x_k` the batch's gradients are evaluated once; the problems
    whose criterion holds at :math:`x_k` are frozen there (their loss is the loss at
    their params, as in :func:`fnopt.fixed_point`), the problems whose loss or
    gradient is not finite are frozen at their previous iterate (reason
    ``non_finite``), and the rest take one step. The run ends when every problem has
    stopped.

    Args:
      opt: an element-wise first-order :class:`fnopt.Optimizer` (``sgd``, ``adam``,
        ...: any whose update of an element depends only on that element); one that
        couples the problems is refused (``ValueError``).
      params: the starting points, stacked on a leading axis of size ``B``.
      grad_fn: NumPy (or ``vmap=False``): ``grad_fn(params) -> (values, grads)`` for
        the whole batch, ``values`` of shape ``(B,)``. torch with ``vmap=True``: the
        provider of one problem, mapped over the batch with ``torch.func.vmap``.
      state: the batch's optimizer state (default ``opt.init(params)``).
      stop: built from :func:`fnopt.stop.max_iters`, ``loss_below``,
        ``grad_norm_below``, ``loss_change_below``, ``time_limit`` with ``|``/``&``.
      vmap: map ``grad_fn`` with ``torch.func.vmap`` (torch only; the default there).

    Returns:
      A :class:`BatchedResult` with per-problem ``iterations``, ``converged``,
      ``reason``.

    >>> import numpy as np, fnopt
    >>> def grad_fn(x):  # 2-D Rosenbrock, vectorised over the rows of x
    ...     x0, x1 = x[:, 0], x[:, 1]
    ...     t = x1 - x0 * x0
    ...     g = np.stack([-2 * (1 - x0) - 400 * x0 * t, 200 * t], axis=1)
    ...     return (1 - x0) ** 2 + 100 * (t * t), g
    >>> starts = np.array([[0.0, 0.0], [0.9, 0.8], [-1.0, 1.0]])
    >>> r = fnopt.batched(fnopt.sgd(1e-3), starts, grad_fn,
    ...                   stop=fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10_000))
    >>> r.iterations, [str(x) for x in r.reason]
    (array([5771, 2705, 6502]), ['loss_below', 'loss_below', 'loss_below'])
    """
    be, n_all = _check_batch(opt, params, stop)
    grad_fn = _batch_provider(grad_fn, vmap, be)
    checker = _Checker(stop)  # a TypeError now for criteria that cannot run per problem
    if state is None:
        state = opt.init(params)
    return _BatchRun(opt, be, grad_fn, checker, n_all).run(params, state)


def _check_batch(opt: Optimizer, params: Params, stop: Any) -> tuple[_backend.Backend, int]:
    """The backend and the batch size of ``params``; named errors for arguments
    :func:`batched` cannot run (an optimizer that couples the problems included)."""
    if not is_optimizer(opt):
        raise TypeError(f"opt: expected an fnopt.Optimizer, got {type(opt).__name__}")
    if not isinstance(stop, _stop.Criterion):
        raise TypeError(f"stop: expected a criterion from fnopt.stop, got {type(stop).__name__}")
    be = check_params(params)
    leaves = _tree.leaves(params)
    if any(leaf.ndim == 0 for leaf in leaves):
        raise ValueError("params: every leaf needs a leading batch axis (got a 0-d leaf)")
    n_all = int(leaves[0].shape[0])
    if any(int(leaf.shape[0]) != n_all for leaf in leaves):
        shapes = [tuple(leaf.shape) for leaf in leaves]
        raise ValueError(f"params: leaves disagree on the batch size (shapes {shapes})")
    coupling = _couples_problems(opt, params)
    if coupling is not None:
        raise ValueError(
            f"opt: batched runs one step on the stacked problems, which is exact only for "
            f"an element-wise optimizer, but this one couples the problems of the batch "
            f"({coupling}); run fnopt.fixed_point on each problem instead"
        )
    return be, n_all


def _batch_provider(grad_fn: GradFn, vmap: bool | None, be: _backend.Backend) -> GradFn:
    """``grad_fn`` mapped over the batch (``vmap``; by default where the backend can),
    or as given (a provider already vectorised over the batch)."""
    if vmap is False:
        return grad_fn
    mapped = be.vmap(grad_fn)
    if mapped is None:
        if vmap:
            raise ValueError("vmap: needs torch params (NumPy has no vmap); pass a "
                             "vectorised grad_fn with vmap=False")
        return grad_fn
    return mapped


class _BatchRun:
    """One call of :func:`batched`: the live batch, the problems frozen so far, and the
    loop that evaluates, freezes the stopped problems, compacts and steps.

    ``idx`` holds the original index of each row still in the batch; the ``out_*``
    arrays (one entry per original problem) are filled as problems stop.
    """

    def __init__(self, opt: Optimizer, be: _backend.Backend, grad_fn: GradFn,
                 checker: _Checker, n_all: int) -> None:
        self.opt, self.be, self.grad_fn, self.checker = opt, be, grad_fn, checker
        self.apply = opt.apply if isinstance(opt, Descent) else None
        self.idx = np.arange(n_all)
        self.out_params: Any = None
        self.out_value = np.full(n_all, math.nan)
        self.out_gnorm = np.full(n_all, math.nan)
        self.out_iters = np.zeros(n_all, dtype=np.int64)
        self.out_reason = np.empty(n_all, dtype=object)
        self.k = self.n_evals = 0
        self.t0 = time.perf_counter()

    def run(self, x: Any, s: Any) -> BatchedResult:
        prev: tuple[Any, Any, Any] | None = None  # (params, losses, grad norms) at k - 1
        x = _tree.clone(x)  # grad_fn is never handed the caller's arrays
        while True:
            v_raw, v, g, gn = self.evaluate(x)
            dead = self.stopped(x, v, gn, prev)
            if dead is not None and dead.any():
                if dead.all():
                    break
                keep = ~dead  # compact: the stopped problems leave the batch
                at = np.flatnonzero(keep)
                n = self.idx.size
                x, g, s, v_raw = (_take(self.be, t, at, n) for t in (x, g, s, v_raw))
                v, self.idx = v[keep], self.idx[keep]
                gn = gn[keep] if gn is not None else None
                self.checker.compact(keep)
            prev = (x, v, gn)
            if self.apply is not None:  # the pure update (new arrays: prev's x stays valid)
                x, s = self.apply(x, v_raw, g, s, grad_norm=math.nan)
            else:
                x, s = self.opt.step(x, _Fixed(g), s)
            self.k += 1
        return self.result()

    def evaluate(self, x: Any) -> tuple[Any, np.ndarray, Any, np.ndarray | None]:
        """``grad_fn`` at the live batch: the raw losses, the losses as a NumPy ``(n,)``
        array, the gradients and (when a criterion reads them) the gradient norms."""
        n = self.idx.size
        out = guarded_call(self.grad_fn, x, what="grad_fn")  # it cannot modify x
        if not (isinstance(out, tuple) and len(out) == 2):
            raise OutputTypeError(f"grad_fn: must return a (values, grads) pair, got "
                                  f"{type(out).__name__}")
        v_raw, g = out
        self.n_evals += 1
        g = check_grads(x, g, what="grad_fn grads")  # every call: named errors
        # a copy: kept (as the previous iterate's losses) across the next call
        v = np.array(self.be.to_numpy(v_raw), copy=True).reshape(-1)
        if v.shape != (n,):
            raise OutputValueError(f"grad_fn: must return one loss per problem, shape ({n},); "
                             f"got {v.shape}")
        if v.dtype.kind not in "fiu":
            raise OutputTypeError(f"grad_fn: the losses must be real numbers, got dtype "
                                  f"{v.dtype}")
        gn = _row_norms(self.be, g, n) if self.checker.needs_gnorm else None
        return v_raw, v, g, gn

    def stopped(self, x: Any, v: np.ndarray, gn: np.ndarray | None,
                prev: tuple[Any, Any, Any] | None) -> np.ndarray | None:
        """Freeze the problems that stop at this iterate and return their mask (``None``
        when none does, the common case): those whose loss or gradient is not finite, at
        the previous iterate, then those whose criterion holds, here."""
        k, n = self.k, self.idx.size
        dead = None
        bad_any = not math.isfinite(float(v.sum()))
        if gn is not None:
            bad_any = bad_any or not math.isfinite(float(gn.sum()))
        if bad_any:
            finite = np.isfinite(v) if gn is None else np.isfinite(v) & np.isfinite(gn)
            dead = ~finite
            if prev is None:  # the start itself: kept, loss unknown
                self.record(dead, x, None, None, k, Reason.NON_FINITE)
            else:
                self.record(dead, *prev, k - 1, Reason.NON_FINITE)
        fired = self.checker.fired(k, v, gn, time.perf_counter() - self.t0)
        if fired is True or (fired is not False and bool(fired.any())):
            mask = np.broadcast_to(fired, (n,))
            mask = mask & ~dead if dead is not None else mask
            if mask.any():
                self.record(mask, x, v, gn, k, self.checker.reasons(mask))
            dead = mask if dead is None else dead | mask
        return dead

    def record(self, rows: np.ndarray, src: Any, values: Any, gnorms: Any, it: int,
               reasons: Any) -> None:
        """Freeze the problems at ``rows`` (a mask over the live batch)."""
        be = self.be
        if self.out_params is None:
            self.out_params = _tree.clone(src)  # placeholder rows, overwritten below
        at = np.flatnonzero(rows)
        sel = self.idx[at]
        for o, leaf in zip(_tree.leaves(self.out_params), _tree.leaves(src)):
            be.put_rows(o, sel, be.take_rows(leaf, at))
        self.out_value[sel] = values[rows] if values is not None else math.nan
        self.out_gnorm[sel] = gnorms[rows] if gnorms is not None else math.nan
        self.out_iters[sel] = it
        self.out_reason[sel] = reasons

    def result(self) -> BatchedResult:
        assert self.out_params is not None
        return BatchedResult(
            params=self.out_params,
            value=self.out_value,
            grad_norm=self.out_gnorm,
            iterations=self.out_iters,
            converged=np.array([r.converged for r in self.out_reason], dtype=bool),
            reason=self.out_reason,
            steps=self.k,
            n_evals=self.n_evals,
            elapsed=time.perf_counter() - self.t0,
        )


# -- which optimizers batched can run -----------------------------------------------


# Steps of the probe: enough for step-size estimates that grow from a small start
# (Prodigy's and D-Adaptation's d) to move problem 1's step measurably.
_PROBE_STEPS = 5


def _couples_problems(opt: Optimizer, params: Params | None = None) -> str | None:
    """Why one step of ``opt`` on stacked problems would not be the step of each
    problem alone, or ``None`` when it is (as far as a probe can tell).

    * ``value_at == "output"``: a line-search or second-order method; it searches along
      one direction of the whole batch (one step length, one curvature model for all
      problems), so it always couples them.
    * Any other optimizer that is not a :class:`fnopt.Descent` (e.g. ``sam``) calls
      ``grad_fn`` itself, at points that depend on the whole batch.
    * A transform that declares ``whole_tree=True`` (Prodigy's and D-Adaptation's
      step-size estimate).
    * Otherwise a probe: five steps on a batch of two problems shaped like one problem
      of ``params`` (default: a vector of 3), where problem 2's params and gradients
      are about 1e3 and 1e8 times problem 1's, against five steps on problem 1 alone.
      Any norm, trust ratio, clipping threshold, factorisation or loss taken over the
      whole batch (lamb, lars, muon, adafactor, novograd, prodigy, dadapt_adam,
      ``clip_by_global_norm`` in a chain) changes problem 1's update and is reported.
      A probe can miss a coupling that its
      scales do not trigger (e.g. a clipping threshold above 1e8), and a step that
      raises on the probe is reported as a coupling.
    * A transform that reads the step's loss (``reduce_on_plateau``: one loss for the
      whole batch).
    * A decision for the whole tree on a non-finite gradient (``apply_if_finite``
      skips every problem's step when one problem's gradient is NaN): the probe runs
      once more with problem 2's first gradient NaN, and problem 1's steps must not
      change. (batched itself freezes a problem whose loss turns non-finite at its
      last finite iterate.)

    >>> import fnopt
    >>> _couples_problems(fnopt.adam(1e-3)) is None
    True
    >>> _couples_problems(fnopt.lamb(1e-3))
    "a norm or statistic over the whole batch: problem 1's step changes ..."
    """
    if opt.value_at == "output":
        return ("a line-search or second-order method (value_at='output'): it takes one "
                "step length and one curvature model for the whole batch")
    if not isinstance(opt, Descent):
        return ("not a first-order fnopt.Descent: its step calls grad_fn itself (sam "
                "evaluates it twice per step, at a point that depends on the whole batch)")
    declared = _whole_tree(opt)
    if declared is not None:
        return f"{declared} estimates one step size from sums over the whole batch"
    if reads_step_loss(opt):
        return ("a transform reads the step's loss (reduce_on_plateau): it would read one "
                "loss for the whole batch and scale every problem's step by it")
    return _probe(opt, params)


def _probe(opt: Descent, params: Params | None) -> str | None:
    """The probe of :func:`_couples_problems`: five steps of problem 1 in a batch
    against five steps alone, with problem 2 far off scale, then with problem 2's
    first gradient NaN."""
    like: Any = np.zeros((1, 3)) if params is None else params
    leaves, spec = optree.tree_flatten(like)
    be = _backend.of_leaves(leaves)
    rng = np.random.default_rng(0)

    def probe(scale: float) -> Any:
        """Two problems shaped like one of ``params``: ~N(0, 1), ~N(scale, scale^2)."""
        out = []
        for x in leaves:
            shape = tuple(x.shape[1:])
            rows = [rng.standard_normal(shape) * s + (s - 1.0) for s in (1.0, scale)]
            out.append(be.from_numpy(np.stack(rows), x))
        return spec.unflatten(out)

    p2, g2s = probe(1e3), [probe(1e8) for _ in range(_PROBE_STEPS)]

    def first(t: Any) -> Any:
        return _tree.map(lambda x: x[0:1].reshape(tuple(x.shape[1:])), t)

    def nan_second(t: Any) -> Any:  # problem 2's gradient NaN, problem 1's as it was
        def f(x: Any) -> Any:
            rows = _backend.to_numpy(x, copy=True)
            rows[1:] = np.nan
            return be.from_numpy(rows, x)

        return _tree.map(f, t)

    # how far the steps take the params: the batch, problem 1 alone, the batch whose
    # problem 2 has a NaN gradient at the first step
    runs = ((p2, g2s), (first(p2), [first(g) for g in g2s]),
            (p2, [nan_second(g2s[0]), *g2s[1:]]))
    moves = []
    try:
        for p, gs in runs:
            s, q = opt.init(p), p
            for g in gs:
                q, s = opt.step(q, _Fixed(g), s)
            moves.append([be.to_numpy(b) - be.to_numpy(a)
                          for a, b in zip(_tree.leaves(p), _tree.leaves(q))])
    except Exception as exc:  # any failure on the probe refuses opt
        return f"its step raised {type(exc).__name__} on a probe batch: {exc}"
    for batch, alone, nan in zip(*moves):
        scale = float(np.abs(alone).max()) if alone.size else 0.0
        if not np.allclose(batch[0], alone, rtol=1e-12, atol=1e-14 * scale, equal_nan=True):
            return ("a norm or statistic over the whole batch: problem 1's step changes "
                    "when problem 2 is added")
        if not np.allclose(nan[0], alone, rtol=1e-12, atol=1e-14 * scale, equal_nan=True):
            return ("a decision for the whole batch on a non-finite gradient (such as "
                    "apply_if_finite, which skips every problem's step when one problem's "
                    "gradient is not finite): problem 1's step changes when problem 2's "
                    "gradient is NaN. batched already freezes a problem at its last finite "
                    "iterate (reason non_finite); leave the wrapper out")
    return None


def _whole_tree(t: Any) -> str | None:
    """The name of a transform in ``t`` (through ``Descent.inner`` and the transforms a
    combinator declares) that declares ``whole_tree=True``: one statistic over all
    leaves, such as Prodigy's and D-Adaptation's step size, which a probe of a few
    steps cannot see move."""
    stack = [t]
    while stack:
        x = stack.pop()
        if isinstance(x, Descent):
            stack.append(x.inner)
        elif isinstance(x, Transform):
            if x.hyperparams.get("whole_tree") is True:
                return x.name or "a transform"
            stack.extend(x.hyperparams.values())
        elif isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return None


class _Fixed:
    """A provider that returns precomputed gradients (for optimizers that are not a
    :class:`fnopt.Descent`); its loss is unused by the batch."""

    __slots__ = ("grads",)

    def __init__(self, grads: Any) -> None:
        self.grads = grads

    def __call__(self, params: Params, *batch: Any) -> tuple[Any, Any]:
        del params, batch
        return _tree.sq_norm(self.grads), self.grads


def _take(be: _backend.Backend, t: Any, at: np.ndarray, n: int) -> Any:
    """Rows ``at`` of every array leaf of ``t`` whose leading axis is the batch."""

    def f(leaf: Any) -> Any:
        if _backend.is_array(leaf) and leaf.ndim >= 1 and int(leaf.shape[0]) == n:
            return be.take_rows(leaf, at)
        return leaf

    return optree.tree_map(f, t)
