"""The dogleg method with rectangular trust regions for bounded least squares (scipy's
``least_squares(method="dogbox")``).

At :math:`x` with gradient :math:`g = J^T r`, the variables held at a bound that the
anti-gradient pushes against are fixed for this iteration; over the free ones, the
trust region :math:`|p_i| \\le \\Delta s_i` (``s`` = ``x_scale``) intersected with the
bounds is a box, and the step is Powell's dogleg inside it: the Gauss–Newton step if
it fits, otherwise the point where the path from the Cauchy point (the model's
minimum along :math:`-g`, within the box) towards the Gauss–Newton step leaves the box.
A variable whose step ends on a bound is put exactly there and counted as held. The
radius and the convergence tests are those of :func:`fnopt.trust_region_reflective`
(with :math:`\\|\\cdot\\|_\\infty` in scaled variables for the radius).

Reference: C. Voglis and I. E. Lagaris, "A rectangular trust region dogleg approach for
unconstrained and bound constrained nonlinear optimization", WSEAS International
Conference on Applied Mathematics (2004).

>>> import numpy as np, fnopt
>>> res = fnopt.grad.residuals_from_functions(lambda p: p - 2.0, lambda p: np.eye(2))
>>> opt = fnopt.dogbox(bounds=(0.0, [1.0, 5.0]))
>>> r = fnopt.fixed_point(opt, np.array([0.5, 0.5]), res, stop=fnopt.stop.max_iters(50))
>>> np.round(r.params, 6)
array([1., 2.])
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from fnopt._base import Optimizer, Params
from fnopt.optimizers import _lsq_kernels as _k
from fnopt.optimizers import lsq as _l
from fnopt.optimizers._lsq_loss import RobustLoss, robust_loss

__all__ = ["dogbox"]


class _Dogleg(NamedTuple):
    step: np.ndarray
    hits: np.ndarray
    tr_hit: bool


def _to_box(x: np.ndarray, s: np.ndarray, lo: np.ndarray, hi: np.ndarray
            ) -> tuple[float, np.ndarray]:
    """The stride from ``x`` along ``s`` to the box and the sign of each bound reached."""
    t, hit = _k.stride_to_bound(x, s, lo, hi)
    return t, np.where(hit, np.sign(s), 0.0)


def _dogleg(gn: np.ndarray, g: np.ndarray, jf: np.ndarray, radius: np.ndarray,
            lo: np.ndarray, hi: np.ndarray) -> _Dogleg:
    """The dogleg step in the box ``[max(lo, -radius), min(hi, radius)]`` (``lo``/``hi``
    the bounds relative to ``x``)."""
    lo_t, hi_t = np.maximum(lo, -radius), np.minimum(hi, radius)
    hits = np.zeros(g.size, dtype=int)
    if np.all((gn >= lo_t) & (gn <= hi_t)):
        return _Dogleg(gn, hits, False)
    t_max, _ = _to_box(np.zeros(g.size), -g, lo_t, hi_t)
    jg = jf @ g
    a, b = 0.5 * float(jg @ jg), -float(g @ g)  # the model along -g: a t^2 + b t
    ts = [0.0, t_max] + ([-b / (2 * a)] if a > 0 and 0 < -b / (2 * a) < t_max else [])
    t = min(ts, key=lambda u: a * u * u + b * u)
    cauchy = -t * g
    diff = gn - cauchy
    size, signs = _to_box(cauchy, diff, lo_t, hi_t)
    on_lo, on_hi = lo_t == lo, hi_t == hi
    hits[(signs < 0) & on_lo], hits[(signs > 0) & on_hi] = -1, 1
    tr_hit = bool(np.any(((signs < 0) & ~on_lo) | ((signs > 0) & ~on_hi)))
    return _Dogleg(cauchy + size * diff, hits, tr_hit)


class _Accepted(NamedTuple):
    trial: Any
    hits: np.ndarray
    free: np.ndarray


def _trials(state: _l.LeastSquaresState, flat: Any, res_fn: Any, batch: tuple[Any, ...],
            hp: Any, lb: np.ndarray, ub: np.ndarray, loss: RobustLoss | None,
            rs: np.ndarray, js: np.ndarray, g: np.ndarray, free: np.ndarray) -> _Accepted:
    x, delta, n_fev, cost = flat.x, state.delta, state.n_fev, float(state.value)
    jf, gf = js[:, free], g[free]
    gn = np.linalg.lstsq(jf, -rs, rcond=None)[0]
    trial, hits = None, np.zeros(int(free.sum()), dtype=int)
    while n_fev < hp.max_nfev:
        d = _dogleg(gn, gf, jf, delta / state.scale[free], lb[free] - x[free],
                    ub[free] - x[free])
        step = np.zeros(x.size)
        step[free] = d.step
        jp = jf @ d.step
        predicted = -(0.5 * float(jp @ jp) + float(gf @ d.step))
        x_new = np.clip(x + step, lb, ub)
        lin = _l._evaluate(res_fn, _l._unflatten(x_new, flat), batch, flat)
        n_fev += 1
        r_new = _l._residuals_host(lin)
        h_norm = float(np.max(np.abs(step * state.scale), initial=0.0))
        if not np.all(np.isfinite(r_new)):
            delta = 0.25 * h_norm
            continue
        actred = cost - _l._cost(r_new, loss)
        ratio = actred / predicted if predicted > 0 else (
            1.0 if predicted == actred == 0 else 0.0)
        if ratio < 0.25:
            delta = 0.25 * h_norm
        elif ratio > 0.75 and d.tr_hit:
            delta *= 2.0
        step_norm = float(np.linalg.norm(step))
        f_ok = actred < hp.ftol * cost and ratio > 0.25
        x_ok = step_norm < hp.xtol * (hp.xtol + float(np.linalg.norm(x)))
        status = 4 if (f_ok and x_ok) else (2 if f_ok else (3 if x_ok else 0))
        trial = _l._Trial(actred > 0, x_new, None, lin, r_new, delta, 0.0, n_fev, status,
                          actred, predicted, step_norm)
        hits = d.hits
        if status or actred > 0:
            return _Accepted(trial, hits, free)
    if trial is None:
        trial = _l._Trial(False, x, None, None, state.residuals, delta, 0.0, n_fev, 0, 0.0,
                          0.0, 0.0)
    return _Accepted(trial._replace(delta=delta, n_fev=n_fev, status=trial.status or 5),
                     hits, free)


def dogbox(
    *,
    bounds: tuple[Any, Any] = (-math.inf, math.inf),
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: int | None = None,
    x_scale: Any = 1.0,
    loss: Any = "linear",
    f_scale: float = 1.0,
) -> Optimizer:
    """The dogbox least-squares method (module docstring) with bounds ``l <= x <= u``.

    Convergence: ``gtol``: :math:`\\|g\\|_\\infty <` ``gtol`` over the variables not
    held at a bound; ``ftol``, ``xtol`` and ``max_nfev`` as
    :func:`fnopt.trust_region_reflective`, and ``loss``/``f_scale`` as there.

    Args:
      bounds: ``(lower, upper)`` (see :func:`fnopt.optimizers.lsq.parse_bounds`).
      ftol, xtol, gtol, max_nfev: the tests above.
      x_scale: ``1.0``, ``n`` numbers or ``"jac"``.
      loss, f_scale: a robust loss and its scale (see :mod:`fnopt.optimizers._lsq_loss`).

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``) taking a residual provider.
    """
    hp = _l._hyper(ftol, xtol, gtol, max_nfev, x_scale)
    hp = hp._replace(max_nfev=2**62 if hp.max_nfev is None else hp.max_nfev)
    rl = robust_loss(loss, f_scale)

    def step(params: Params, grad_fn: Any, state: Any, *batch: Any) -> tuple[Params, Any]:
        if state.status:
            raise _l.LeastSquaresStop(state)
        flat = _l._flatten(params)
        lb, ub = _l.parse_bounds(bounds, params)
        if state.residuals is None:
            state = _start(flat, grad_fn, batch, hp, lb, ub, rl)
        rs, js, _ = _l._robust(state.residuals, state.jacobian, rl)
        g = js.T @ rs
        free = ~(state.on_bound * g < 0)
        if float(np.max(np.abs(np.where(free, g, 0.0)), initial=0.0)) < hp.gtol:
            raise _l.LeastSquaresStop(state._replace(status=1))
        if state.n_fev >= hp.max_nfev:
            raise _l.LeastSquaresStop(state._replace(status=5))
        acc = _trials(state, flat, grad_fn, batch, hp, lb, ub, rl, rs, js, g, free)
        return _accept(state, acc, flat, lb, ub, hp, rl)

    return Optimizer(_l._init, step, "output")


def _start(flat: Any, res_fn: Any, batch: tuple[Any, ...], hp: Any, lb: np.ndarray,
           ub: np.ndarray, loss: RobustLoss | None) -> _l.LeastSquaresState:
    x = flat.x
    if np.any((x < lb) | (x > ub)):
        raise ValueError("params: the start point is outside the bounds")
    lin = _l._evaluate(res_fn, _l._unflatten(x, flat), batch, flat)
    r = _l._residuals_host(lin)
    if not np.all(np.isfinite(r)):
        raise _l.NonFiniteStart("the residuals at the start point are not finite")
    j = _l._jac_host(lin, r.size, x.size)
    rs, js, cost = _l._robust(r, j, loss)
    if isinstance(hp.x_scale, str):
        cols = _l._col_norms(js)
        scale_inv = np.where(cols == 0.0, 1.0, cols)
    else:
        scale_inv = 1.0 / _l._fixed_scale(hp, x.size)
    delta = float(np.max(np.abs(x * scale_inv), initial=0.0)) or 1.0
    on_bound = np.where(x == lb, -1, np.where(x == ub, 1, 0))
    _, gnorm = _l._finish_value(rs, js)
    return _l.LeastSquaresState(0, np.asarray(cost), gnorm, r, j, delta, 0.0, scale_inv, 1, 1,
                                on_bound=on_bound)


def _accept(state: _l.LeastSquaresState, acc: _Accepted, flat: Any, lb: np.ndarray,
            ub: np.ndarray, hp: Any, loss: RobustLoss | None) -> tuple[Params, Any]:
    t = acc.trial
    new = state._replace(delta=t.delta, n_fev=t.n_fev, status=t.status,
                         actual_reduction=t.actred, predicted_reduction=t.prered)
    if not t.accepted:
        raise _l.LeastSquaresStop(new)
    on_bound = state.on_bound.copy()
    on_bound[acc.free] = acc.hits
    x = t.x.copy()
    x[on_bound == -1], x[on_bound == 1] = lb[on_bound == -1], ub[on_bound == 1]
    params = _l._unflatten(x, flat)
    assert t.lin is not None
    j = _l._jac_host(t.lin, t.r.size, x.size)
    rs, js, cost = _l._robust(t.r, j, loss)
    scale = np.maximum(state.scale, _l._col_norms(js)) if isinstance(hp.x_scale, str) else (
        state.scale)
    _, gnorm = _l._finish_value(rs, js)
    return params, new._replace(
        count=state.count + 1, value=np.asarray(cost), grad_norm=gnorm, residuals=t.r,
        jacobian=j, n_jev=state.n_jev + 1, step_norm=t.step_norm, scale=scale,
        on_bound=on_bound,
    )
