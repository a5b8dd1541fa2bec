"""L-BFGS with ``torch.optim.LBFGS``'s semantics: one ``step`` runs up to ``max_iter``
inner iterations (:func:`torch_lbfgs`).

:func:`fnopt.lbfgs` is one L-BFGS iteration per step with a strong-Wolfe search (the
textbook method, and scipy's). A torch user's ``LBFGS(params, lr=1, max_iter=20,
line_search_fn="strong_wolfe").step(closure)`` does more in one call: it iterates until
``max_iter`` inner iterations, ``max_eval`` evaluations, a gradient below
``tolerance_grad`` (max-norm) or a change below ``tolerance_change``, and keeps its
history across calls. This module gives that behaviour as a pure optimizer, so the same
arguments give torch's trajectory (``fnopt.lbfgs(lr=..., max_iter=...)`` builds it).
The iteration works on the parameters raveled into one vector, with the backend's own
operators, so it runs on NumPy arrays and on torch tensors on any device.

>>> import numpy as np, fnopt
>>> a = np.diag([1.0, 10.0, 100.0])
>>> grad_fn = lambda x: (0.5 * x @ a @ x, a @ x)
>>> opt = fnopt.lbfgs(lr=1, max_iter=20, line_search_fn="strong_wolfe")
>>> x, s = opt.step(np.ones(3), grad_fn, opt.init(np.ones(3)))
>>> bool(np.abs(x).max() < 1e-6), s.func_evals <= 25
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import optree

from fnopt import backend as _backend
from fnopt._base import (
    GradFn,
    Optimizer,
    Params,
    check_grad_fn_output,
    check_int,
    check_nonnegative,
    check_params,
    check_positive,
)

__all__ = ["torch_lbfgs", "TorchLbfgsState"]


class TorchLbfgsState(NamedTuple):
    """State of :func:`torch_lbfgs` (torch.optim.LBFGS's ``state`` as a value).

    Attributes:
      count: steps taken (calls of ``step``).
      value: the loss at the params passed into the last step (``value_at="input"``;
        torch's ``step`` returns it).
      grad_norm: the gradient norm there.
      func_evals: evaluations of ``grad_fn`` over all steps.
      n_iter: inner iterations over all steps.
      d: the last search direction (raveled), ``None`` before the first iteration.
      t: the last step length.
      old_dirs, old_stps: the stored gradient differences ``y`` and steps ``s``.
      ro: ``1 / y's`` for each stored pair.
      h_diag: the scaling of the initial inverse Hessian, ``y's / y'y``.
      prev_flat_grad: the gradient at the start of the last inner iteration.
      prev_loss: the loss there.
    """

    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    func_evals: int
    n_iter: int
    d: Any
    t: float
    old_dirs: tuple[Any, ...]
    old_stps: tuple[Any, ...]
    ro: tuple[float, ...]
    h_diag: float
    prev_flat_grad: Any
    prev_loss: float | None


class _Settings(NamedTuple):
    lr: float
    max_iter: int
    max_eval: int
    tolerance_grad: float
    tolerance_change: float
    history_size: int
    strong_wolfe: bool


def torch_lbfgs(
    lr: float = 1.0,
    *,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> Optimizer:
    """L-BFGS as ``torch.optim.LBFGS``: each ``step`` runs up to ``max_iter`` iterations.

    Per inner iteration :math:`x \\leftarrow x + t\\,d`, :math:`d = -H g` from the stored
    pairs (a pair is kept when :math:`y^\\top s > 10^{-10}`; :math:`H_0 = (y^\\top s /
    y^\\top y) I`), :math:`t` = ``lr`` (the very first iteration: ``min(1, 1/|g|_1) *
    lr``) or, with ``line_search_fn="strong_wolfe"``, torch's cubic-interpolation
    strong-Wolfe search (c1 = 1e-4, c2 = 0.9) started there. A step returns at once,
    params unchanged, when the max-norm of the gradient is at most ``tolerance_grad``
    (a solved problem is a no-op step, as in torch); it stops iterating after
    ``max_iter`` iterations or ``max_eval`` evaluations, or when the gradient, the step
    or the loss change falls below its tolerance.

    Args:
      lr: the step length (torch's ``lr``), > 0.
      max_iter: inner iterations per step (>= 1).
      max_eval: evaluations per step; default ``max_iter * 5 // 4``.
      tolerance_grad: first-order optimality tolerance on ``max|g|``.
      tolerance_change: tolerance on the change of the loss and of the params.
      history_size: the number of stored pairs (>= 1).
      line_search_fn: ``None`` (fixed steps) or ``"strong_wolfe"``.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="input"``) with state
      :class:`TorchLbfgsState`.

    >>> import numpy as np
    >>> opt = torch_lbfgs(max_iter=5)
    >>> grad_fn = lambda x: (float(x @ x) * np.ones(()), 2 * x)
    >>> _, s = opt.step(np.zeros(2), grad_fn, opt.init(np.zeros(2)))
    >>> s.func_evals, s.n_iter  # solved at the start: one evaluation, no iteration
    (1, 0)

    Reference: torch.optim.LBFGS (after minFunc, M. Schmidt).
    """
    check_positive("lr", lr)
    max_iter = check_int("max_iter", max_iter, 1)
    max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
    max_eval = check_int("max_eval", max_eval, 1)
    check_nonnegative("tolerance_grad", tolerance_grad)
    check_nonnegative("tolerance_change", tolerance_change)
    history_size = check_int("history_size", history_size, 1)
    if line_search_fn not in (None, "strong_wolfe"):
        raise ValueError(f"line_search_fn: expected None or 'strong_wolfe', got {line_search_fn!r}")
    cfg = _Settings(float(lr), max_iter, max_eval, float(tolerance_grad),
                    float(tolerance_change), history_size, line_search_fn is not None)

    def init(params: Params) -> TorchLbfgsState:
        check_params(params)
        return TorchLbfgsState(0, None, None, 0, 0, None, 0.0, (), (), (), 1.0, None, None)

    def step(params: Params, grad_fn: GradFn, state: TorchLbfgsState, *batch: Any,
             ) -> tuple[Params, TorchLbfgsState]:
        leaves, spec = optree.tree_flatten(params)
        be = _backend.of_leaves(leaves)

        def evaluate(x: Any) -> tuple[Any, Any]:
            """The loss (0-d) and the raveled gradient at the raveled params ``x``."""
            p = spec.unflatten(be.unravel(x, leaves))
            value, grads = check_grad_fn_output(grad_fn(p, *batch), p)
            return value, be.ravel(spec.flatten_up_to(grads))

        x, s = _run(cfg, be.ravel(leaves), evaluate, state)
        new = params if x is None else spec.unflatten(be.unravel(x, leaves))
        return new, s

    return Optimizer(init, step, "input")


def _max_abs(v: Any) -> float:
    return float(abs(v).max())


def _run(cfg: _Settings, x: Any, evaluate: Callable[[Any], tuple[Any, Any]],
         state: TorchLbfgsState) -> tuple[Any, TorchLbfgsState]:
    """One torch ``LBFGS.step`` from the raveled params ``x``: the new raveled params
    (``None`` when the step returns at once) and the new state."""
    value, g = evaluate(x)
    loss, evals, count, grad_norm = float(value), 1, state.count + 1, (g @ g) ** 0.5
    if _max_abs(g) <= cfg.tolerance_grad:
        return None, state._replace(count=count, value=value, grad_norm=grad_norm,
                                    func_evals=state.func_evals + 1)
    h = _History(state.old_dirs, state.old_stps, state.ro, state.h_diag)
    d, t, prev_g, prev_loss, n_iter = state.d, state.t, state.prev_flat_grad, state.prev_loss, 0
    total_iter = state.n_iter
    while n_iter < cfg.max_iter:
        n_iter, total_iter = n_iter + 1, total_iter + 1
        if total_iter == 1:
            d, h = -g, _History((), (), (), 1.0)
        else:
            h = h.updated(g - prev_g, d * t, cfg.history_size)
            d = h.direction(g)
        prev_g, prev_loss = g, loss
        t = min(1.0, 1.0 / float(abs(g).sum())) * cfg.lr if total_iter == 1 else cfg.lr
        gtd = float(g @ d)
        if gtd > -cfg.tolerance_change:
            break
        solved = False
        if cfg.strong_wolfe:
            loss, g, t, used = _strong_wolfe(evaluate, x, t, d, loss, g, gtd,
                                             cfg.tolerance_change, cfg.max_eval - evals)
            x = x + t * d
            solved = _max_abs(g) <= cfg.tolerance_grad
        else:
            x, used = x + t * d, 0
            if n_iter != cfg.max_iter:
                at_x, g = evaluate(x)
                loss, used = float(at_x), 1
                solved = _max_abs(g) <= cfg.tolerance_grad
        evals += used
        if (n_iter == cfg.max_iter or evals >= cfg.max_eval or solved
                or _max_abs(d * t) <= cfg.tolerance_change
                or abs(loss - prev_loss) < cfg.tolerance_change):
            break
    return x, TorchLbfgsState(
        count, value=value, grad_norm=grad_norm, func_evals=state.func_evals + evals,
        n_iter=total_iter, d=d, t=t,
        old_dirs=h.dirs, old_stps=h.stps, ro=h.ro, h_diag=h.h_diag, prev_flat_grad=prev_g,
        prev_loss=prev_loss,
    )


class _History(NamedTuple):
    """The stored pairs and the initial scaling; updates return a new value."""

    dirs: tuple[Any, ...]
    stps: tuple[Any, ...]
    ro: tuple[float, ...]
    h_diag: float

    def updated(self, y: Any, s: Any, size: int) -> _History:
        ys = float(y @ s)
        if ys <= 1e-10:
            return self
        keep = slice(1, None) if len(self.dirs) == size else slice(None)
        return _History((*self.dirs[keep], y), (*self.stps[keep], s),
                        (*self.ro[keep], 1.0 / ys), ys / float(y @ y))

    def direction(self, g: Any) -> Any:
        """:math:`-H g` by the two-loop recursion."""
        q = -g
        al = [0.0] * len(self.dirs)
        for i in reversed(range(len(self.dirs))):
            al[i] = float(self.stps[i] @ q) * self.ro[i]
            q = q - al[i] * self.dirs[i]
        r = q * self.h_diag
        for i in range(len(self.dirs)):
            be_i = float(self.dirs[i] @ r) * self.ro[i]
            r = r + (al[i] - be_i) * self.stps[i]
        return r


def _cubic_min(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
               bounds: tuple[float, float] | None = None) -> float:
    """The minimiser of the cubic through two points with their slopes, clipped to
    ``bounds`` (default: the interval between the points); their midpoint when the
    cubic has no real minimiser."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        at = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        at = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(at, lo), hi)


class _Point(NamedTuple):
    t: float
    f: float
    g: Any
    gtd: float


def _strong_wolfe(
    evaluate: Callable[[Any], tuple[Any, Any]], x: Any, t: float, d: Any, f: float, g: Any,
    gtd: float, tolerance_change: float, max_ls: int, c1: float = 1e-4, c2: float = 0.9,
) -> tuple[float, Any, float, int]:
    """torch's strong-Wolfe search along ``d`` from ``x`` (loss ``f``, gradient ``g``,
    slope ``gtd``) starting at ``t``: the accepted ``(loss, gradient, t, evaluations)``."""

    def at(step: float) -> _Point:
        value, grad = evaluate(x + step * d)
        return _Point(step, float(value), grad, float(grad @ d))

    d_norm = _max_abs(d)
    start, prev, new = _Point(0.0, f, g, gtd), _Point(0.0, f, g, gtd), at(t)
    evals, ls_iter, done = 1, 0, False
    bracket: list[_Point] = []
    while ls_iter < max_ls:
        if new.f > f + c1 * new.t * gtd or (ls_iter > 1 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if abs(new.gtd) <= -c2 * gtd:
            bracket, done = [new], True
            break
        if new.gtd >= 0:
            bracket = [prev, new]
            break
        t = _cubic_min(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd,
                       bounds=(new.t + 0.01 * (new.t - prev.t), new.t * 10))
        prev, new = new, at(t)
        evals, ls_iter = evals + 1, ls_iter + 1
    if ls_iter == max_ls:
        bracket = [start, new]
    return _zoom(at, bracket, done, f, gtd, d_norm, tolerance_change, max_ls, ls_iter,
                 evals, c1, c2)


def _zoom(at: Callable[[float], _Point], bracket: list[_Point], done: bool, f: float,
          gtd: float, d_norm: float, tolerance_change: float, max_ls: int, ls_iter: int,
          evals: int, c1: float, c2: float) -> tuple[float, Any, float, int]:
    """Shrink the bracket by cubic interpolation until the strong Wolfe conditions
    hold (torch's zoom phase, with its guard against insufficient progress)."""
    insuf_progress = False
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    while not done and ls_iter < max_ls:
        a, b = bracket
        if abs(b.t - a.t) * d_norm < tolerance_change:
            break
        t = _cubic_min(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        top, bottom = max(a.t, b.t), min(a.t, b.t)
        eps = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < eps:
            if insuf_progress or t >= top or t <= bottom:
                t = top - eps if abs(t - top) < abs(t - bottom) else bottom + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        new = at(t)
        evals, ls_iter = evals + 1, ls_iter + 1
        if new.f > f + c1 * t * gtd or new.f >= bracket[low].f:
            bracket[high] = new
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if abs(new.gtd) <= -c2 * gtd:
                done = True
            elif new.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = new
    best = bracket[low]
    return best.f, best.g, best.t, evals


def wants_torch_semantics(aliases: dict[str, Any]) -> bool:
    """Whether :func:`fnopt.lbfgs` was given an argument only torch.optim.LBFGS has."""
    return any(k in aliases for k in _TORCH_ONLY)


_TORCH_ONLY = ("lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change",
               "line_search_fn")
