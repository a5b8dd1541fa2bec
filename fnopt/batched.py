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
is shared by the batch anyway. Each problem is checked against ``stop`` at every
iterate, as :func:`fnopt.fixed_point` does (loss and gradient norm *per problem*), and
once its criterion holds it is frozen: its params, loss, iteration count and reason
are recorded and it takes no further part (the batch is compacted as problems stop).
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
from fnopt._base import Descent, GradFn, Optimizer, Params, State, check_params, is_optimizer
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


def _leaf_criteria(c: _stop.Criterion) -> list[_stop.Criterion]:
    if isinstance(c, (_stop.AnyOf, _stop.AllOf)):
        return _leaf_criteria(c.left) + _leaf_criteria(c.right)
    if not isinstance(
        c, (_stop._MaxIters, _stop._LossBelow, _stop._GradNormBelow, _stop._TimeLimit,
            _stop._LossChangeBelow)
    ):
        raise TypeError(
            f"stop: batched supports max_iters, loss_below, grad_norm_below, "
            f"loss_change_below and time_limit (combined with | and &), got {c!r}"
        )
    return [c]


class _Checker:
    """Evaluates a criterion for all live problems at once.

    ``fired(k, values, gnorms, elapsed)`` returns a bool (the same answer for every
    problem) or a bool array; ``reasons(mask)`` then names, for the problems in
    ``mask``, the first leaf criterion that holds there (convergence criteria first, as
    the loop; a leaf under ``&`` counts only where the whole ``&`` holds).
    """

    def __init__(self, stop: _stop.Criterion) -> None:
        self.stop = stop
        leaves = _leaf_criteria(stop)
        self.needs_gnorm = any(isinstance(c, _stop._GradNormBelow) for c in leaves)
        self.runs: dict[int, np.ndarray] = {}  # loss_change_below: consecutive counts
        self.prev: np.ndarray | None = None
        self.hits: list[tuple[_stop.Criterion, Any]] = []

    def compact(self, keep: np.ndarray) -> None:
        self.runs = {i: r[keep] for i, r in self.runs.items()}
        if self.prev is not None:
            self.prev = self.prev[keep]

    def _leaf(self, c: _stop.Criterion, k: int, v: np.ndarray, g: Any, t: float) -> Any:
        if isinstance(c, _stop._MaxIters):
            return k >= c.n
        if isinstance(c, _stop._LossBelow):
            return v <= c.tol
        if isinstance(c, _stop._GradNormBelow):
            return g <= c.tol
        if isinstance(c, _stop._TimeLimit):
            return t >= c.seconds
        assert isinstance(c, _stop._LossChangeBelow)
        run = self.runs.get(id(c))
        if self.prev is None or run is None:
            self.runs[id(c)] = np.zeros(v.shape, dtype=np.int64)
            return False
        small = np.abs(v - self.prev) <= c.atol + c.rtol * np.abs(self.prev)
        run = np.where(small, run + 1, 0)
        self.runs[id(c)] = run
        return run >= c.patience

    def _eval(
        self, c: _stop.Criterion, k: int, v: np.ndarray, g: Any, t: float
    ) -> tuple[Any, list[tuple[_stop.Criterion, Any]]]:
        if isinstance(c, (_stop.AnyOf, _stop.AllOf)):
            a, ha = self._eval(c.left, k, v, g, t)
            b, hb = self._eval(c.right, k, v, g, t)
            if isinstance(c, _stop.AnyOf):  # a Python bool on either side: no array op
                return (b if a is False else a if b is False else a | b), ha + hb
            both = b if a is True else a if b is True else a & b
            return both, [(leaf, m & both) for leaf, m in ha + hb]
        out = self._leaf(c, k, v, g, t)
        return out, [(c, out)]

    def fired(self, k: int, v: np.ndarray, g: Any, t: float) -> Any:
        out, self.hits = self._eval(self.stop, k, v, g, t)
        self.prev = v
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
        ...: any whose update of an element depends only on that element).
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
    if vmap is None:
        vmap = be is _backend.TORCH
    if vmap:
        if be is not _backend.TORCH:
            raise ValueError("vmap: needs torch params (NumPy has no vmap); pass a "
                             "vectorised grad_fn with vmap=False")
        import torch.func

        grad_fn = torch.func.vmap(grad_fn)
    checker = _Checker(stop)
    if state is None:
        state = opt.init(params)
    apply = opt.apply if isinstance(opt, Descent) else None

    t0 = time.perf_counter()
    x, s = params, state
    prev_x: Any = None
    prev_v: np.ndarray | None = None
    prev_g: np.ndarray | None = None
    idx = np.arange(n_all)  # the original index of each row still in the batch
    out_params = None
    out_value = np.full(n_all, math.nan)
    out_gnorm = np.full(n_all, math.nan)
    out_iters = np.zeros(n_all, dtype=np.int64)
    out_reason = np.empty(n_all, dtype=object)
    k = n_evals = 0

    def record(rows: np.ndarray, src: Any, values: Any, gnorms: Any, it: int,
               reasons: Any) -> None:
        """Freeze the problems at ``rows`` (positions in the live batch)."""
        nonlocal out_params
        if out_params is None:
            out_params = _tree.clone(src)  # placeholder rows, overwritten below
        at = np.flatnonzero(rows)
        sel = idx[at]
        for o, leaf in zip(_tree.leaves(out_params), _tree.leaves(src)):
            be.put_rows(o, sel, be.take_rows(leaf, at))
        out_value[sel] = values[rows] if values is not None else math.nan
        out_gnorm[sel] = gnorms[rows] if gnorms is not None else math.nan
        out_iters[sel] = it
        out_reason[sel] = reasons

    while True:
        n = idx.size
        v_raw, g = grad_fn(x)
        n_evals += 1
        v = be.to_numpy(v_raw).reshape(-1)
        if v.shape != (n,):
            raise ValueError(f"grad_fn: must return one loss per problem, shape ({n},); "
                             f"got {v.shape}")
        gn = _row_norms(be, g, n) if checker.needs_gnorm else None
        bad_any = not math.isfinite(float(v.sum()))
        if gn is not None:
            bad_any = bad_any or not math.isfinite(float(gn.sum()))
        dead = None  # problems that stop at this iterate (None: none; the common case)
        if bad_any:
            finite = np.isfinite(v) if gn is None else np.isfinite(v) & np.isfinite(gn)
            dead = ~finite
            if prev_x is None:  # the start itself: kept, loss unknown
                record(dead, x, None, None, k, Reason.NON_FINITE)
            else:
                record(dead, prev_x, prev_v, prev_g, k - 1, Reason.NON_FINITE)
        fired = checker.fired(k, v, gn, time.perf_counter() - t0)
        if fired is True or (fired is not False and bool(fired.any())):
            mask = np.broadcast_to(fired, (n,))
            mask = mask & ~dead if dead is not None else mask
            if mask.any():
                record(mask, x, v, gn, k, checker.reasons(mask))
            dead = mask if dead is None else dead | mask
        if dead is not None and dead.any():
            if dead.all():
                break
            keep = ~dead  # compact: the stopped problems leave the batch
            at = np.flatnonzero(keep)
            x, g, s = _take(be, x, at, n), _take(be, g, at, n), _take(be, s, at, n)
            v_raw = _take(be, v_raw, at, n)
            v, idx = v[keep], idx[keep]
            gn = gn[keep] if gn is not None else None
            checker.compact(keep)
        prev_x, prev_v, prev_g = x, v, gn
        if apply is not None:  # the pure update (new arrays: prev_x stays valid)
            x, s = apply(x, v_raw, g, s, grad_norm=math.nan)
        else:
            x, s = opt.step(x, _Fixed(g), s)
        k += 1

    assert out_params is not None
    return BatchedResult(
        params=out_params,
        value=out_value,
        grad_norm=out_gnorm,
        iterations=out_iters,
        converged=np.array([r.converged for r in out_reason], dtype=bool),
        reason=out_reason,
        steps=k,
        n_evals=n_evals,
        elapsed=time.perf_counter() - t0,
    )


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
