"""Least-squares optimizers: Gauss–Newton, Levenberg–Marquardt and a bounded,
reflective trust-region method.

They minimise :math:`F(x) = \\tfrac12 \\|r(x)\\|^2` for residuals :math:`r` with
Jacobian :math:`J`, and their ``grad_fn`` is a *residual provider* from
:mod:`fnopt.residuals` (re-exported in :mod:`fnopt.grad`):
``res_fn(params, *batch) -> Linearization`` (residuals now, ``J`` on demand), so::

    fnopt.fixed_point(fnopt.levenberg_marquardt(), x0, fnopt.grad.residuals_torch(r),
                      stop=fnopt.stop.max_iters(100))

Every call of the provider is one residual evaluation (``n_fev``, and
``Result.n_evals`` in :func:`fnopt.fixed_point`); forming ``J`` is counted in
``state.n_jev``. A trial point that is rejected costs its residuals only.

The state records ``value`` (:math:`\\tfrac12\\|r\\|^2`) and ``grad_norm``
(:math:`\\|J^T r\\|`). The dense linear algebra (an SVD of the scaled ``m x n`` Jacobian
per accepted step) runs on the host in NumPy float64 for both backends; params,
residuals and Jacobians come from and go back to the params' backend and dtype (so a
GPU Jacobian is copied to the host once per accepted step). :func:`gauss_newton`
with ``solver="cg"`` stays on the params' backend and never forms ``J``.

The Levenberg–Marquardt and reflective methods test for convergence as MINPACK and
scipy do (``ftol``, ``xtol``, ``gtol``, ``max_nfev``); when a test holds, the step that
made it hold returns normally and the *next* step raises :class:`LeastSquaresStop` (a
:class:`fnopt.StepFailed` whose ``reason`` is ``loss_change_below``,
``param_change_below`` or ``grad_norm_below``: a converged reason, or ``max_iters`` for
``max_nfev``), so :func:`fnopt.fixed_point` stops there with the last accepted
iterate. The state then holds the residuals and, except after a final accepted step,
the Jacobian at the returned params. A state made by a step is not accepted by
``fixed_point(state=...)`` (its cached residuals have grown from the empty ones of
``init``); restart from the params instead.

>>> import numpy as np, fnopt
>>> t = np.linspace(0.0, 1.0, 8); y = 2.0 * np.exp(-1.5 * t)
>>> res = fnopt.grad.residuals_from_functions(
...     lambda p: p[0] * np.exp(-p[1] * t) - y,
...     lambda p: np.stack([np.exp(-p[1] * t), -p[0] * t * np.exp(-p[1] * t)], 1))
>>> r = fnopt.fixed_point(fnopt.levenberg_marquardt(), np.array([1.0, 1.0]), res,
...                       stop=fnopt.stop.max_iters(50))
>>> r.converged, np.round(r.params, 6)
(True, array([2. , 1.5]))
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, NamedTuple

import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import Optimizer, Params, check_params, guarded_call
from fnopt.grad.residuals import Linearization, ravel_residuals
from fnopt.loop import StepFailed
from fnopt.optimizers import _lsq_kernels as _k
from fnopt.optimizers._lsq_loss import RobustLoss, robust_loss
from fnopt.stop import Reason

__all__ = [
    "LeastSquaresState",
    "LeastSquaresStop",
    "gauss_newton",
    "levenberg_marquardt",
    "levenberg_marquardt_cg",
    "trust_region_reflective",
    "STATUS_MESSAGES",
    "NonFiniteStart",
    "parse_bounds",
]

# status codes as scipy.optimize.least_squares reports them (0 = still running here)
STATUS_MESSAGES = {
    1: "`gtol` termination condition is satisfied.",
    2: "`ftol` termination condition is satisfied.",
    3: "`xtol` termination condition is satisfied.",
    4: "Both `ftol` and `xtol` termination conditions are satisfied.",
    5: "The maximum number of function evaluations is exceeded.",
}
_REASONS = {
    1: Reason.GRAD_NORM_BELOW,
    2: Reason.LOSS_CHANGE_BELOW,
    3: Reason.PARAM_CHANGE_BELOW,
    4: Reason.PARAM_CHANGE_BELOW,
    5: Reason.MAX_ITERS,
}


class LeastSquaresState(NamedTuple):
    """State of :func:`gauss_newton`, :func:`levenberg_marquardt` and
    :func:`trust_region_reflective`.

    Attributes:
      count: accepted steps.
      value: :math:`\\tfrac12\\|r\\|^2` at the returned params (at the input params
        for Gauss–Newton), a 0-d float64 array.
      grad_norm: :math:`\\|J^T r\\|` there.
      residuals: the residuals (host float64) at the returned params; ``None`` until
        the first step.
      jacobian: the Jacobian (host float64) there; ``None`` when not formed.
      delta: the trust-region radius :math:`\\Delta` (scaled variables).
      lam: the last Levenberg–Marquardt parameter :math:`\\lambda`.
      scale: the variable scaling: MINPACK's ``diag`` (LM) or the inverse scale
        (reflective method), host float64 of length ``n``.
      n_fev: residual evaluations (provider calls) so far.
      n_jev: Jacobian evaluations so far.
      status: 0 while running, else the scipy code of the test that held (1 gtol,
        2 ftol, 3 xtol, 4 ftol and xtol, 5 max_nfev; see ``STATUS_MESSAGES``).
      actual_reduction, predicted_reduction: of the cost at the last trial.
      step_norm: the norm of the last accepted step.
      last_jacobian: Levenberg–Marquardt only: after a final accepted step (no Jacobian
        at the returned params), the Jacobian at the previous iterate, the one MINPACK's
        ``fjac`` (and leastsq's covariance) is factored from.
      on_bound: :func:`fnopt.dogbox`'s -1 / +1 per parameter held at its lower / upper
        bound (``None`` for the other methods).
      nu: the damping growth factor of the matrix-free Levenberg–Marquardt
        (``solver="cg"``; there ``jacobian`` holds the provider's
        :class:`fnopt.residuals.Linearization` at the returned params and
        ``residuals`` the residuals on the params' backend).
    """

    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    residuals: Any = None
    jacobian: Any = None
    delta: float = math.nan
    lam: float = 0.0
    scale: Any = None
    n_fev: int = 0
    n_jev: int = 0
    status: int = 0
    actual_reduction: float = math.nan
    predicted_reduction: float = math.nan
    step_norm: float = math.nan
    nu: float = 2.0
    on_bound: Any = None
    last_jacobian: Any = None


class NonFiniteStart(StepFailed):
    """The residuals at the start point are not finite (reason ``non_finite``)."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.NON_FINITE, message)


class LeastSquaresStop(StepFailed):
    """Raised by a step once a convergence test (or ``max_nfev``) has held; ``state``
    is the final state (``state.status`` the scipy code)."""

    def __init__(self, state: LeastSquaresState) -> None:
        super().__init__(_REASONS[state.status], STATUS_MESSAGES[state.status])
        self.state = state


# -- host helpers ------------------------------------------------------------------------


class _Flat(NamedTuple):
    x: np.ndarray
    leaves: list[Any]
    spec: Any
    be: _backend.Backend


def _flatten(params: Params) -> _Flat:
    be = check_params(params)
    leaves, spec = optree.tree_flatten(params)
    x = np.concatenate([_backend.to_numpy(v).astype(np.float64).reshape(-1) for v in leaves])
    return _Flat(x, leaves, spec, be)


def _unflatten(xh: np.ndarray, flat: _Flat) -> Params:
    out, i = [], 0
    for leaf in flat.leaves:
        n = flat.be.size(leaf)
        out.append(flat.be.from_numpy(xh[i : i + n].reshape(tuple(leaf.shape)), leaf))
        i += n
    return flat.spec.unflatten(out)


def _evaluate(res_fn: Any, params: Params, batch: tuple[Any, ...], flat: _Flat) -> Linearization:
    out = guarded_call(res_fn, params, batch, what="grad_fn")  # cannot modify params
    if isinstance(out, Linearization):
        return out
    if isinstance(out, tuple) and len(out) == 2:  # a plain (residuals, J) pair
        like = flat.leaves[0].reshape(-1)
        r = ravel_residuals(out[0], like, what="grad_fn residuals")
        jac = out[1]  # kept while other points are evaluated: fnopt's own copy
        jac = _backend.of_value(jac).clone([jac])[0] if _backend.is_array(jac) else jac
        return Linearization(r, flat.x.size, jacobian=lambda: jac)
    raise TypeError(
        "grad_fn: a least-squares optimizer needs a residual provider returning a "
        "fnopt.residuals.Linearization or a (residuals, jacobian) pair (see "
        f"fnopt.grad.residuals_from_functions), got {type(out).__name__}"
    )


def _host(a: Any) -> np.ndarray:
    return _backend.to_numpy(a).astype(np.float64)


def _jac_host(lin: Linearization, m: int, n: int) -> np.ndarray:
    j = _host(lin.jacobian())
    if j.shape != (m, n):
        raise ValueError(
            f"jac: expected an ({m}, {n}) Jacobian ({m} residuals x {n} params), got "
            f"shape {j.shape}"
        )
    if not np.all(np.isfinite(j)):
        raise StepFailed(Reason.NON_FINITE, "the Jacobian is not finite")
    return j


def _residuals_host(lin: Linearization) -> np.ndarray:
    r = _host(lin.residuals)
    if r.ndim != 1:
        raise ValueError(f"grad_fn: residuals must flatten to 1-D, got shape {r.shape}")
    return r


def _col_norms(j: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->j", j, j))


def _finish_value(r: np.ndarray, j: np.ndarray) -> tuple[Any, Any]:
    return np.asarray(0.5 * float(r @ r)), np.asarray(float(np.linalg.norm(j.T @ r)))


def _check_tol(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return v


class _Hp(NamedTuple):
    ftol: float
    xtol: float
    gtol: float
    max_nfev: int | None
    x_scale: Any  # "jac" or a host float64 array / float


def _hyper(ftol: Any, xtol: Any, gtol: Any, max_nfev: Any, x_scale: Any) -> _Hp:
    tols = [_check_tol(n, v) for n, v in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol))]
    if max_nfev is not None and (
        isinstance(max_nfev, bool) or not isinstance(max_nfev, int) or max_nfev < 1
    ):
        raise ValueError(f"max_nfev: expected None or an int >= 1, got {max_nfev!r}")
    if not (isinstance(x_scale, str) and x_scale == "jac"):
        if isinstance(x_scale, str):
            raise TypeError(f"x_scale: expected 'jac' or positive numbers, got {x_scale!r}")
        if isinstance(x_scale, bytes):
            raise TypeError("x_scale: expected 'jac' or positive numbers, got bytes")
        xs = _host(x_scale)
        if not (np.all(np.isfinite(xs)) and np.all(xs > 0)):
            raise ValueError("x_scale: expected 'jac' or finite numbers > 0")
        x_scale = xs
    return _Hp(tols[0], tols[1], tols[2], max_nfev, x_scale)


def _fixed_scale(hp: _Hp, n: int) -> np.ndarray:
    xs = np.broadcast_to(hp.x_scale, (n,)) if np.ndim(hp.x_scale) <= 1 else None
    if xs is None or xs.shape != (n,):
        raise ValueError(f"x_scale: expected a scalar or {n} numbers (one per parameter)")
    return np.array(xs, dtype=np.float64)


def _init(params: Params) -> LeastSquaresState:
    check_params(params)
    nan = np.asarray(math.nan)
    return LeastSquaresState(0, nan, nan)


# -- Gauss-Newton ----------------------------------------------------------------------------


def gauss_newton(
    *, solver: Literal["dense", "cg"] = "dense", cg_maxiter: int | None = None,
    cg_tol: float = 1e-10,
) -> Optimizer:
    """The Gauss–Newton method: :math:`x_{k+1} = x_k + p_k` with
    :math:`p_k = \\arg\\min_p \\|r_k + J_k p\\|` (the minimum-norm solution).

    No damping and no line search: on a linear model it lands on the least-squares
    solution in one step; on nonlinear ones it can diverge where
    :func:`levenberg_marquardt` would not. One provider call (and one ``J``) per step;
    the state's ``value`` and ``grad_norm`` are those at the input params
    (``value_at="input"``).

    Args:
      solver: ``"dense"`` (an SVD of ``J`` on the host, float64), or ``"cg"``: CGLS
        (conjugate gradients on the normal equations) with the provider's ``jvp`` and
        ``vjp``, on the params' backend, never forming ``J`` (matrix-free, for large
        problems; with :func:`fnopt.grad.residuals_torch` the products are exact).
      cg_maxiter: CGLS iterations per step (default ``n``, the number of params).
      cg_tol: stop CGLS when :math:`\\|J^T(r + Jp)\\| \\le` ``cg_tol`` :math:`\\|J^T r\\|`.

    Returns:
      An :class:`fnopt.Optimizer` taking a residual provider as its ``grad_fn``.

    >>> import numpy as np, fnopt
    >>> a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]); y = np.array([1.0, 2.0, 2.0])
    >>> res = fnopt.grad.residuals_from_functions(lambda p: a @ p - y, lambda p: a)
    >>> opt = fnopt.gauss_newton()
    >>> x1, _ = opt.step(np.zeros(2), res, opt.init(np.zeros(2)))
    >>> np.allclose(x1, np.linalg.lstsq(a, y, rcond=None)[0])
    True

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., section 10.3.
    """
    if solver not in ("dense", "cg"):
        raise ValueError(f"solver: expected 'dense' or 'cg', got {solver!r}")
    if cg_maxiter is not None and (isinstance(cg_maxiter, bool) or not isinstance(
            cg_maxiter, int) or cg_maxiter < 1):
        raise ValueError(f"cg_maxiter: expected None or an int >= 1, got {cg_maxiter!r}")
    _check_tol("cg_tol", cg_tol)

    def step(params: Params, grad_fn: Any, state: Any, *batch: Any) -> tuple[Params, Any]:
        flat = _flatten(params)
        lin = _evaluate(grad_fn, params, batch, flat)
        if solver == "cg":
            p, value, gnorm = _cgls(lin, 0.0, cg_maxiter or flat.x.size, cg_tol)
            ph = _host(p)
            n_jev = state.n_jev
        else:
            r = _residuals_host(lin)
            if not np.all(np.isfinite(r)):
                raise StepFailed(Reason.NON_FINITE, "the residuals are not finite")
            j = _jac_host(lin, r.size, flat.x.size)
            ph = _k.step_at(_k.svd(j, r), 0.0)
            value, gnorm = _finish_value(r, j)
            n_jev = state.n_jev + 1
        new = LeastSquaresState(
            state.count + 1, value, gnorm, n_fev=state.n_fev + 1, n_jev=n_jev,
            step_norm=float(np.linalg.norm(ph)),
        )
        return _unflatten(flat.x + ph, flat), new

    return Optimizer(_init, step, "input")


def _cgls(lin: Linearization, lam: float, maxiter: int, tol: float) -> tuple[Any, Any, Any]:
    """CGLS for :math:`\\min_p \\|r + Jp\\|^2 + \\lambda\\|p\\|^2` with products only (on
    the params' backend); returns ``(p, cost, ||J^T r||)``."""
    r = lin.residuals
    s = -r
    g = lin.vjp(s)
    p = g * 0.0
    d = g
    gamma = g @ g
    g0 = math.sqrt(float(gamma))
    value = np.asarray(0.5 * float(r @ r))
    if g0 == 0.0:
        return p, value, np.asarray(0.0)
    for _ in range(maxiter):
        q = lin.jvp(d)
        qq = q @ q + lam * (d @ d)
        if float(qq) == 0.0:
            break
        alpha = gamma / qq
        p = p + alpha * d
        s = s - alpha * q
        g = lin.vjp(s) - lam * p
        gamma_new = g @ g
        if math.sqrt(float(gamma_new)) <= tol * g0:
            break
        d = g + (gamma_new / gamma) * d
        gamma = gamma_new
    return p, value, np.asarray(g0)


# -- Levenberg-Marquardt (MINPACK's LMDER strategy) ------------------------------------------


class _Trial(NamedTuple):
    accepted: bool
    x: np.ndarray
    params: Params
    lin: Linearization | None
    r: np.ndarray
    delta: float
    lam: float
    n_fev: int
    status: int
    actred: float
    prered: float
    step_norm: float


def _minpack_tests(
    actred: float, prered: float, ratio: float, delta: float, xnorm: float, gnorm: float,
    n_fev: int, hp: _Hp,
) -> int:
    """MINPACK's tests after a trial, as scipy codes (``0`` = none holds)."""
    f_ok = abs(actred) <= hp.ftol and prered <= hp.ftol and 0.5 * ratio <= 1.0
    x_ok = delta <= hp.xtol * xnorm
    if f_ok or x_ok:
        return 4 if (f_ok and x_ok) else (2 if f_ok else 3)
    if hp.max_nfev is not None and n_fev >= hp.max_nfev:
        return 5
    eps = _k.EPS  # tolerances below machine precision: no further progress possible
    if abs(actred) <= eps and prered <= eps and 0.5 * ratio <= 1.0:
        return 2
    if delta <= eps * xnorm:
        return 3
    return 1 if gnorm <= eps else 0


def _minpack_gnorm(r: np.ndarray, j: np.ndarray, cols: np.ndarray) -> float:
    """MINPACK's scale-free gradient test: the largest cosine between ``r`` and a
    column of ``J``."""
    fnorm = float(np.linalg.norm(r))
    if fnorm == 0.0:
        return 0.0
    g = j.T @ r
    ok = cols > 0
    return float(np.max(np.abs(g[ok]) / (cols[ok] * fnorm))) if np.any(ok) else 0.0


def _lm_trials(
    state: LeastSquaresState, flat: _Flat, res_fn: Any, batch: tuple[Any, ...], hp: _Hp,
    gnorm: float,
) -> _Trial:
    """MINPACK's inner loop: trial steps with shrinking radius until one reduces the
    cost enough (``ratio >= 1e-4``) or a test holds."""
    r, j, diag = state.residuals, state.jacobian, state.scale
    x, delta, lam, n_fev = flat.x, state.delta, state.lam, state.n_fev
    fnorm = float(np.linalg.norm(r))
    d = _k.svd(j / diag, r)
    while True:
        lam, z = _k.lm_parameter(d, delta, lam)
        p = z / diag
        pnorm = float(np.linalg.norm(z))
        if state.count == 0:
            delta = min(delta, pnorm)
        x_new = x + p
        params_new = _unflatten(x_new, flat)
        lin = _evaluate(res_fn, params_new, batch, flat)
        n_fev += 1
        r_new = _residuals_host(lin)
        fnorm1 = float(np.linalg.norm(r_new)) if np.all(np.isfinite(r_new)) else math.inf
        actred = 1.0 - (fnorm1 / fnorm) ** 2 if 0.1 * fnorm1 < fnorm else -1.0
        t1 = float(np.linalg.norm(j @ p)) / fnorm
        t2 = math.sqrt(lam) * pnorm / fnorm
        prered = t1 * t1 + 2.0 * t2 * t2
        dirder = -(t1 * t1 + t2 * t2)
        ratio = actred / prered if prered != 0.0 else 0.0
        if ratio <= 0.25:
            temp = 0.5 if actred >= 0 else 0.5 * dirder / (dirder + 0.5 * actred)
            if 0.1 * fnorm1 >= fnorm or temp < 0.1:
                temp = 0.1
            delta, lam = temp * min(delta, pnorm / 0.1), lam / temp
        elif lam == 0.0 or ratio >= 0.75:
            delta, lam = pnorm / 0.5, 0.5 * lam
        accepted = ratio >= 1e-4
        xnorm = float(np.linalg.norm(diag * (x_new if accepted else x)))
        status = _minpack_tests(actred, prered, ratio, delta, xnorm, gnorm, n_fev, hp)
        if accepted or status:
            return _Trial(accepted, x_new, params_new, lin, r_new, delta, lam, n_fev,
                          status, actred, prered, float(np.linalg.norm(p)))


def _lm_start(
    params: Params, flat: _Flat, res_fn: Any, batch: tuple[Any, ...], hp: _Hp, factor: float
) -> LeastSquaresState:
    """Evaluate ``r`` and ``J`` at the start point; MINPACK's initial ``diag`` and
    radius :math:`\\Delta = ` ``factor`` :math:`\\|D x_0\\|`."""
    lin = _evaluate(res_fn, params, batch, flat)
    r = _residuals_host(lin)
    if not np.all(np.isfinite(r)):
        raise NonFiniteStart("the residuals at the start point are not finite")
    j = _jac_host(lin, r.size, flat.x.size)
    cols = _col_norms(j)
    if isinstance(hp.x_scale, str):
        diag = np.where(cols == 0.0, 1.0, cols)
    else:
        diag = 1.0 / _fixed_scale(hp, flat.x.size)
    xnorm = float(np.linalg.norm(diag * flat.x))
    delta = factor * xnorm if xnorm != 0.0 else factor
    value, gnorm = _finish_value(r, j)
    status = 1 if _minpack_gnorm(r, j, cols) <= hp.gtol else 0
    return LeastSquaresState(0, value, gnorm, r, j, delta, 0.0, diag, 1, 1, status)


def levenberg_marquardt(
    *,
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: int | None = None,
    factor: float = 100.0,
    x_scale: Any = "jac",
    bounds: tuple[Any, Any] | None = None,
) -> Optimizer:
    """Levenberg–Marquardt with MINPACK's (LMDER) trust-region strategy.

    Each step solves :math:`\\min_p \\|r + Jp\\|` subject to :math:`\\|Dp\\| \\le
    \\Delta`, i.e. :math:`(J^T J + \\lambda D^2) p = -J^T r` with the
    Levenberg–Marquardt parameter :math:`\\lambda` from Moré's iteration (see
    :mod:`fnopt._lsq_kernels`). With ``ratio`` = actual / predicted reduction of the
    cost: ``ratio <= 0.25`` shrinks :math:`\\Delta` (by 0.1–0.5), ``ratio >= 0.75``
    (or :math:`\\lambda = 0`) doubles it (:math:`\\Delta = 2\\|Dp\\|`), and the step is
    accepted when ``ratio >= 1e-4``; otherwise the step tries again from the same point
    with the smaller radius (no new Jacobian). :math:`D` is ``diag`` of the column norms
    of :math:`J`, kept as their running maximum (``x_scale="jac"``), and
    :math:`\\Delta_0` = ``factor`` :math:`\\|D x_0\\|`.

    Convergence tests (as MINPACK): ``ftol``: both the actual and predicted relative
    reductions of :math:`\\|r\\|^2` are at most ``ftol``; ``xtol``: :math:`\\Delta \\le`
    ``xtol`` :math:`\\|Dx\\|`; ``gtol``: the largest cosine between :math:`r` and a
    column of :math:`J` is at most ``gtol``. See the module docstring for how they stop
    :func:`fnopt.fixed_point`.

    Args:
      ftol, xtol, gtol: the tolerances above (>= 0).
      max_nfev: stop after this many residual evaluations (``None``: no limit).
      factor: the initial radius factor (MINPACK's ``factor``, > 0).
      x_scale: ``"jac"``, or the characteristic scale of each parameter (a number or
        ``n`` numbers; then :math:`D = 1 / x_{scale}`, fixed).
      bounds: ``(lower, upper)``; when given, the step is the bounded, reflective
        trust-region step of :func:`trust_region_reflective` (with these options).

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``) taking a residual provider
      (:mod:`fnopt.residuals`) as its ``grad_fn``.

    >>> import numpy as np, fnopt
    >>> res = fnopt.grad.residuals_from_functions(          # Rosenbrock as least squares
    ...     lambda p: np.array([10 * (p[1] - p[0] ** 2), 1 - p[0]]),
    ...     lambda p: np.array([[-20 * p[0], 10.0], [-1.0, 0.0]]))
    >>> r = fnopt.fixed_point(fnopt.levenberg_marquardt(), np.array([-1.2, 1.0]), res,
    ...                       stop=fnopt.stop.max_iters(100))
    >>> r.reason.value, np.round(r.params, 8), r.n_evals
    ('grad_norm_below', array([1., 1.]), 21)

    Reference: J. J. Moré, "The Levenberg–Marquardt algorithm: implementation and
    theory", Lecture Notes in Mathematics 630 (1978); MINPACK-1 (Moré, Garbow,
    Hillstrom, 1980), ``lmder``.
    """
    if bounds is not None:
        return trust_region_reflective(
            bounds=bounds, ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev, x_scale=x_scale
        )
    hp = _hyper(ftol, xtol, gtol, max_nfev, x_scale)
    fac = _check_tol("factor", factor)
    if fac == 0:
        raise ValueError("factor: expected a number > 0, got 0")

    def step(params: Params, grad_fn: Any, state: Any, *batch: Any) -> tuple[Params, Any]:
        if state.status:
            raise LeastSquaresStop(state)
        flat = _flatten(params)
        if state.residuals is None:
            state = _lm_start(params, flat, grad_fn, batch, hp, fac)
            if state.status:
                raise LeastSquaresStop(state)
        diag = state.scale
        if isinstance(hp.x_scale, str):
            diag = np.maximum(diag, _col_norms(state.jacobian))
        state = state._replace(scale=diag)
        gnorm = _minpack_gnorm(state.residuals, state.jacobian, _col_norms(state.jacobian))
        t = _lm_trials(state, flat, grad_fn, batch, hp, gnorm)
        return t.params, _lm_accept(state, t, flat.x.size, hp)

    return Optimizer(_init, step, "output")


def _lm_accept(state: LeastSquaresState, t: _Trial, n: int, hp: _Hp) -> LeastSquaresState:
    """The state after the trials ``t`` of a Levenberg–Marquardt step from ``state``
    (``n`` parameters): :class:`LeastSquaresStop` when no trial was accepted; the
    Jacobian at the new point when the next step needs it, and then ``gtol`` tested
    there."""
    new = state._replace(
        delta=t.delta, lam=t.lam, n_fev=t.n_fev, status=t.status,
        actual_reduction=t.actred, predicted_reduction=t.prered,
    )
    if not t.accepted:
        raise LeastSquaresStop(new)
    j, n_jev = None, state.n_jev
    if t.status == 0:  # the next step needs J here (MINPACK: the next outer iteration)
        assert t.lin is not None
        j, n_jev = _jac_host(t.lin, t.r.size, n), n_jev + 1
        if _minpack_gnorm(t.r, j, _col_norms(j)) <= hp.gtol:
            new = new._replace(status=1)
    value, gnorm = _finish_value(t.r, state.jacobian if j is None else j)
    return new._replace(
        count=state.count + 1, value=value, grad_norm=gnorm, residuals=t.r,
        jacobian=j, n_jev=n_jev, step_norm=t.step_norm,
        last_jacobian=state.jacobian if j is None else None,
    )


# -- the bounded, reflective trust-region method ----------------------------------------------


def parse_bounds(bounds: Any, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` as two host float64 vectors over the flattened params.

    Each side may be a number (every parameter), ``n`` numbers (the flattened params)
    or a pytree with the structure and shapes of ``params``; ``-inf``/``inf`` mean no
    bound. ``ValueError`` naming ``bounds`` for a wrong shape or ``lower >= upper``.

    >>> parse_bounds((0.0, {"a": np.array([1.0, 2.0]), "b": np.array(5.0)}),
    ...              {"a": np.zeros(2), "b": np.array(0.5)})
    (array([0., 0., 0.]), array([1., 2., 5.]))
    """
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ValueError("bounds: expected a (lower, upper) pair")
    leaves, spec = optree.tree_flatten(params)
    n = sum(_backend.of_value(v).size(v) for v in leaves)
    out = []
    for side, b in zip(("lower", "upper"), bounds):
        b_leaves, b_spec = optree.tree_flatten(b)
        if (b_spec == spec and len(leaves) > 1) or (
            b_spec == spec and _backend.is_array(b) and tuple(b.shape) == tuple(leaves[0].shape)
        ):
            arr = np.concatenate([_host(v).reshape(-1) for v in b_leaves])
        else:
            try:
                arr = _host(b)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"bounds: {side} must be numbers or arrays, got {b!r}") from exc
            if arr.ndim == 0:
                arr = np.full(n, float(arr))
            elif arr.shape != (n,):
                raise ValueError(
                    f"bounds: {side} has shape {arr.shape}; expected a scalar, ({n},) over "
                    "the flattened params, or a pytree shaped like the params"
                )
        if np.any(np.isnan(arr)):
            raise ValueError(f"bounds: {side} contains NaN")
        out.append(arr)
    lb, ub = out
    if np.any(lb >= ub):
        i = int(np.argmax(lb >= ub))
        raise ValueError(
            f"bounds: each lower bound must be < its upper bound; element {i} has "
            f"lower {lb[i]} >= upper {ub[i]}"
        )
    return lb, ub


def _robust(r: np.ndarray, j: np.ndarray, loss: RobustLoss | None) -> tuple[
        np.ndarray, np.ndarray, float]:
    """The residuals and Jacobian the trust-region model uses (scaled for a robust
    ``loss``, see :mod:`fnopt.optimizers._lsq_loss`) and the cost."""
    if loss is None:
        return r, j, 0.5 * float(r @ r)
    rs, js = loss.scale(r, j)
    return rs, js, loss.cost(r)


def _cost(r: np.ndarray, loss: RobustLoss | None) -> float:
    return 0.5 * float(r @ r) if loss is None else loss.cost(r)


def _trf_start(
    flat: _Flat, res_fn: Any, batch: tuple[Any, ...], hp: _Hp, lb: np.ndarray, ub: np.ndarray,
    loss: RobustLoss | None = None,
) -> tuple[_Flat, Params, LeastSquaresState]:
    if np.any((flat.x < lb) | (flat.x > ub)):
        raise ValueError("params: the start point is outside the bounds")
    x = _k.strictly_inside(flat.x, lb, ub, 1e-10)
    flat = flat._replace(x=x)
    params = _unflatten(x, flat)
    lin = _evaluate(res_fn, params, batch, flat)
    r = _residuals_host(lin)
    if not np.all(np.isfinite(r)):
        raise NonFiniteStart("the residuals at the start point are not finite")
    j = _jac_host(lin, r.size, x.size)
    rs, js, cost = _robust(r, j, loss)
    if isinstance(hp.x_scale, str):
        cols = _col_norms(js)
        scale_inv = np.where(cols == 0.0, 1.0, cols)
    else:
        scale_inv = 1.0 / _fixed_scale(hp, x.size)
    v, dv = _k.scaling_vector(x, js.T @ rs, lb, ub)
    v[dv != 0] *= scale_inv[dv != 0]
    delta = float(np.linalg.norm(x * scale_inv / np.sqrt(v))) or 1.0
    _, gnorm = _finish_value(rs, js)
    return flat, params, LeastSquaresState(0, np.asarray(cost), gnorm, r, j, delta, 0.0,
                                           scale_inv, 1, 1)


class _Scaled(NamedTuple):
    d: np.ndarray
    jh: np.ndarray
    gh: np.ndarray
    diag_h: np.ndarray
    svd: _k.Svd
    theta: float
    augmented: bool


def _trf_scaled(
    state: LeastSquaresState, x: np.ndarray, lb: np.ndarray, ub: np.ndarray, g: np.ndarray,
    g_inf: float, rs: np.ndarray, js: np.ndarray,
) -> _Scaled:
    """The Coleman–Li scaled problem at ``x``: :math:`d = \\sqrt{v}` times the scale,
    :math:`J_h = J\\,\\mathrm{diag}(d)`, and the extra diagonal :math:`C = g\\,dv\\,` scale."""
    scale_inv = state.scale
    v, dv = _k.scaling_vector(x, g, lb, ub)
    v[dv != 0] *= scale_inv[dv != 0]
    d = np.sqrt(v) / scale_inv
    diag_h = g * dv / scale_inv
    jh = js * d
    augmented = bool(np.any(diag_h != 0))
    if augmented:
        a = np.vstack([jh, np.diag(np.sqrt(diag_h))])
        svd = _k.svd(a, np.concatenate([rs, np.zeros(x.size)]))
    else:
        svd = _k.svd(jh, rs)
    return _Scaled(d, jh, d * g, diag_h, svd, max(0.995, 1.0 - g_inf), augmented)


def _trf_trials(
    state: LeastSquaresState, flat: _Flat, res_fn: Any, batch: tuple[Any, ...], hp: _Hp,
    lb: np.ndarray, ub: np.ndarray, sc: _Scaled, loss: RobustLoss | None = None,
) -> _Trial:
    """Trial steps until the cost decreases, a test holds or ``max_nfev`` is reached."""
    x, delta, alpha, n_fev = flat.x, state.delta, state.lam, state.n_fev
    cost = float(state.value)
    trial = None
    while hp.max_nfev is None or n_fev < hp.max_nfev:
        alpha, p_h = _k.tr_parameter(sc.svd, sc.jh.shape[0] + sc.augmented * x.size, delta,
                                     alpha)
        c = _k.reflective_step(x, lb, ub, sc.d, p_h, sc.jh, sc.gh, sc.diag_h, delta, sc.theta)
        x_new = _k.strictly_inside(x + c.step, lb, ub, 0.0)
        params_new = _unflatten(x_new, flat)
        lin = _evaluate(res_fn, params_new, batch, flat)
        n_fev += 1
        r_new = _residuals_host(lin)
        h_norm = float(np.linalg.norm(c.step_h))
        if not np.all(np.isfinite(r_new)):
            delta = 0.25 * h_norm
            continue
        actred = cost - _cost(r_new, loss)
        pred = c.predicted
        ratio = actred / pred if pred > 0 else (1.0 if pred == actred == 0 else 0.0)
        if ratio < 0.25:
            new_delta = 0.25 * h_norm
        elif ratio > 0.75 and h_norm > 0.95 * delta:
            new_delta = 2.0 * delta
        else:
            new_delta = delta
        step_norm = float(np.linalg.norm(c.step))
        f_ok = actred < hp.ftol * cost and ratio > 0.25
        x_ok = step_norm < hp.xtol * (hp.xtol + float(np.linalg.norm(x)))
        status = 4 if (f_ok and x_ok) else (2 if f_ok else (3 if x_ok else 0))
        trial = _Trial(actred > 0, x_new, params_new, lin, r_new, delta, alpha, n_fev,
                       status, actred, pred, step_norm)
        if status:
            return trial
        alpha *= delta / new_delta if new_delta > 0 else 1.0
        delta = new_delta
        if actred > 0:
            return trial._replace(delta=delta, lam=alpha)
    base = trial if trial is not None else _Trial(
        False, x, None, None, state.residuals, delta, alpha, n_fev, 0, 0.0, 0.0, 0.0)
    accepted = base.accepted
    return base._replace(delta=delta, lam=alpha, n_fev=n_fev, status=base.status or 5,
                         accepted=accepted)


def trust_region_reflective(
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
    """A trust-region reflective least-squares method with bounds
    :math:`l \\le x \\le u` (the method of scipy's ``least_squares(method="trf")``).

    At :math:`x` with gradient :math:`g = J^T r`, the Coleman–Li scaling
    :math:`v_i` (the distance to the bound the anti-gradient points at, 1 if none)
    turns the bounded problem into a trust-region problem in the variables
    :math:`h = x / d`, :math:`d = \\sqrt{v}`: minimise
    :math:`\\tfrac12\\|r + J_h h\\|^2 + \\tfrac12 h^T C h` with :math:`J_h = J
    \\,\\mathrm{diag}(d)`, :math:`C = \\mathrm{diag}(g \\cdot \\partial v)`, subject to
    :math:`\\|h\\| \\le \\Delta` (solved as in :func:`levenberg_marquardt`). The step is
    kept strictly feasible: when it leaves the box, the best (by the model) of the step
    cut at the boundary (times :math:`\\theta = \\max(0.995, 1 - \\|v g\\|_\\infty)`),
    the best point along its reflection at the boundary, and the best point along the
    scaled anti-gradient is taken. A step is accepted when the cost decreases; ratio
    < 0.25 shrinks :math:`\\Delta` to a quarter of the step, ratio > 0.75 with a step at
    the boundary of the region doubles it. Without bounds this is a plain trust-region
    Gauss–Newton method.

    Convergence (as scipy's ``trf``): ``gtol``: :math:`\\|v g\\|_\\infty <` ``gtol``;
    ``ftol``: :math:`dF <` ``ftol`` :math:`F` with ratio > 0.25; ``xtol``:
    :math:`\\|dx\\| <` ``xtol`` :math:`(` ``xtol`` :math:`+ \\|x\\|)`.

    Args:
      bounds: ``(lower, upper)``: numbers, ``n`` numbers, or pytrees like the params
        (see :func:`parse_bounds`); a start point on a bound is moved inside.
      ftol, xtol, gtol, max_nfev: as above (``max_nfev`` counts residual evaluations).
      x_scale: ``1.0`` (default, as scipy), ``n`` numbers, or ``"jac"`` (the running
        maximum of the column norms of :math:`J`).
      loss, f_scale: a robust loss (``"linear"``, ``"soft_l1"``, ``"huber"``, ``"cauchy"``,
        ``"arctan"`` or ``rho(z) -> (3, m)``) and its scale (see
        :mod:`fnopt.optimizers._lsq_loss`); ``state.value`` is then the robust cost.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``) taking a residual provider.

    >>> import numpy as np, fnopt
    >>> res = fnopt.grad.residuals_from_functions(lambda p: p - 2.0, lambda p: np.eye(2))
    >>> opt = fnopt.trust_region_reflective(bounds=(0.0, [1.0, 5.0]))
    >>> r = fnopt.fixed_point(opt, np.array([0.5, 0.5]), res, stop=fnopt.stop.max_iters(50))
    >>> np.round(r.params, 6)
    array([1., 2.])

    Reference: M. A. Branch, T. F. Coleman and Y. Li, "A subspace, interior, and
    conjugate gradient method for large-scale bound-constrained minimization
    problems", SIAM J. Sci. Comput. 21 (1999) 1–23.
    """
    hp = _hyper(ftol, xtol, gtol, max_nfev, x_scale)
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ValueError("bounds: expected a (lower, upper) pair")
    rl = robust_loss(loss, f_scale)

    def step(params: Params, grad_fn: Any, state: Any, *batch: Any) -> tuple[Params, Any]:
        if state.status:
            raise LeastSquaresStop(state)
        flat = _flatten(params)
        lb, ub = parse_bounds(bounds, params)
        if state.residuals is None:
            flat, params, state = _trf_start(flat, grad_fn, batch, hp, lb, ub, rl)
        rs, js, _ = _robust(state.residuals, state.jacobian, rl)
        g = js.T @ rs
        v, _ = _k.scaling_vector(flat.x, g, lb, ub)
        g_inf = float(np.max(np.abs(g * v)))
        if g_inf < hp.gtol:
            raise LeastSquaresStop(state._replace(status=1))
        if hp.max_nfev is not None and state.n_fev >= hp.max_nfev:
            raise LeastSquaresStop(state._replace(status=5))
        sc = _trf_scaled(state, flat.x, lb, ub, g, g_inf, rs, js)
        t = _trf_trials(state, flat, grad_fn, batch, hp, lb, ub, sc, rl)
        new = state._replace(
            delta=t.delta, lam=t.lam, n_fev=t.n_fev, status=t.status,
            actual_reduction=t.actred, predicted_reduction=t.prered,
        )
        if not t.accepted:
            raise LeastSquaresStop(new)
        assert t.lin is not None
        j = _jac_host(t.lin, t.r.size, flat.x.size)
        rs, js, cost = _robust(t.r, j, rl)
        scale = np.maximum(state.scale, _col_norms(js)) if isinstance(hp.x_scale, str) else (
            state.scale)
        _, gnorm = _finish_value(rs, js)
        new = new._replace(
            count=state.count + 1, value=np.asarray(cost), grad_norm=gnorm, residuals=t.r,
            jacobian=j, n_jev=state.n_jev + 1, step_norm=t.step_norm, scale=scale,
        )
        return t.params, new

    return Optimizer(_init, step, "output")


# -- matrix-free Levenberg-Marquardt (products only) ----------------------------------------


def _lm_cg_start(params: Params, res_fn: Any, batch: tuple[Any, ...]) -> LeastSquaresState:
    lin = _evaluate(res_fn, params, batch, _flatten(params))
    r = lin.residuals
    cost = 0.5 * float(r @ r)
    if not math.isfinite(cost):
        raise NonFiniteStart("the residuals at the start point are not finite")
    g = lin.vjp(r)
    gg = float(g @ g)
    if not math.isfinite(gg):
        raise StepFailed(Reason.NON_FINITE, "the Jacobian is not finite")
    jg = lin.jvp(g)
    lam = 1e-3 * float(jg @ jg) / gg if gg > 0 else 1e-3  # 1e-3 x a Rayleigh quotient of J^T J
    return LeastSquaresState(0, np.asarray(cost), np.asarray(math.sqrt(gg)), r, lin, math.nan,
                             lam, None, 1, 1)


def _lm_cg_step(
    params: Params, res_fn: Any, state: LeastSquaresState, batch: tuple[Any, ...], hp: _Hp,
    maxiter: int | None, tol: float,
) -> tuple[Params, LeastSquaresState]:
    """Damped Gauss–Newton steps (CGLS) with Nielsen's update of :math:`\\lambda` until
    one reduces the cost (gain ratio > 1e-4) or a test holds."""
    leaves, spec = optree.tree_flatten(params)
    be = _backend.of_leaves(leaves)
    x = be.ravel(leaves)
    lin, lam, nu, n_fev = state.jacobian, state.lam, state.nu, state.n_fev
    cost = float(state.value)
    x_norm = math.sqrt(float(x @ x))
    while True:
        p, _, _ = _cgls(lin, lam, maxiter or int(x.shape[0]), tol)
        jp = lin.jvp(p)
        pred = -float(lin.vjp(lin.residuals) @ p) - 0.5 * float(jp @ jp)
        params_new = spec.unflatten(be.unravel(x + p, leaves))
        lin_new = _evaluate(res_fn, params_new, batch, _flatten(params_new))
        n_fev += 1
        r_new = lin_new.residuals
        cost_new = 0.5 * float(r_new @ r_new)
        actred = cost - cost_new if math.isfinite(cost_new) else -math.inf
        rho = actred / pred if pred > 0 else -1.0
        p_norm = math.sqrt(float(p @ p))
        x_ok = p_norm <= hp.xtol * (hp.xtol + x_norm)
        if rho > 1e-4:
            lam *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            g = lin_new.vjp(r_new)
            g_inf = float(abs(g).max())
            f_ok = actred <= hp.ftol * cost and pred <= hp.ftol * cost and rho > 0.25
            status = 4 if f_ok and x_ok else 2 if f_ok else 3 if x_ok else (
                1 if g_inf <= hp.gtol else 0)
            if not status and hp.max_nfev is not None and n_fev >= hp.max_nfev:
                status = 5
            return params_new, LeastSquaresState(
                state.count + 1, np.asarray(cost_new), np.asarray(math.sqrt(float(g @ g))),
                r_new, lin_new, math.nan, lam, None, n_fev, state.n_jev + 1, status, actred,
                pred, p_norm, 2.0)
        lam, nu = lam * nu, 2.0 * nu
        status = 3 if x_ok else (5 if hp.max_nfev is not None and n_fev >= hp.max_nfev else 0)
        if status:
            raise LeastSquaresStop(state._replace(lam=lam, nu=nu, n_fev=n_fev, status=status))


def levenberg_marquardt_cg(
    *,
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: int | None = None,
    cg_maxiter: int | None = None,
    cg_tol: float = 1e-10,
) -> Optimizer:
    """Matrix-free Levenberg–Marquardt: Jacobian products only, on the params' backend.

    Each step solves :math:`\\min_p \\|r + Jp\\|^2 + \\lambda\\|p\\|^2` by CGLS with the
    provider's ``jvp``/``vjp`` (``J`` is never formed, nothing leaves the device), tries
    :math:`x + p`, and updates :math:`\\lambda` from the gain ratio
    :math:`\\rho` = actual / predicted reduction (Nielsen): accepted (:math:`\\rho >
    10^{-4}`): :math:`\\lambda \\leftarrow \\lambda\\max(1/3, 1 - (2\\rho - 1)^3)`;
    rejected: :math:`\\lambda \\leftarrow \\nu\\lambda`, :math:`\\nu \\leftarrow 2\\nu`.
    :math:`\\lambda_0 = 10^{-3}\\, \\|Jg\\|^2 / \\|g\\|^2` with :math:`g = J^T r`.
    Tests: ``ftol`` (actual reduction :math:`\\le` ``ftol`` cost), ``xtol``
    (:math:`\\|p\\| \\le` ``xtol`` :math:`(` ``xtol`` :math:`+ \\|x\\|)`), ``gtol``
    (:math:`\\|J^T r\\|_\\infty \\le` ``gtol``), ``max_nfev``, stopping
    :func:`fnopt.fixed_point` as :func:`levenberg_marquardt` does. Use it with
    :func:`fnopt.grad.residuals_torch` for large problems (exact products by
    ``torch.func``); with finite differences ``vjp`` forms ``J``.

    Args:
      ftol, xtol, gtol, max_nfev: as above.
      cg_maxiter: CGLS iterations per trial (default ``n``).
      cg_tol: CGLS relative tolerance on the normal-equation residual.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``) taking a residual provider.

    >>> import numpy as np, fnopt
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]]); b = np.array([1.0, 0.0, 2.0])
    >>> res = fnopt.grad.residuals_matrix_free(
    ...     lambda p: a @ p - b + 0.1 * p @ p, lambda p, v: a @ v + 0.2 * (p @ v),
    ...     lambda p, u: u @ a + 0.2 * u.sum() * p)
    >>> r = fnopt.fixed_point(fnopt.levenberg_marquardt_cg(), np.zeros(2), res,
    ...                       stop=fnopt.stop.max_iters(100))
    >>> r.converged, np.round(r.params, 4)
    (True, array([-1.0138,  0.9157]))

    Reference: K. Madsen, H. B. Nielsen and O. Tingleff, *Methods for Non-Linear Least
    Squares Problems* (2004), Algorithm 3.16; CGLS: Björck, *Numerical Methods for
    Least Squares Problems* (1996), section 7.4.
    """
    hp = _hyper(ftol, xtol, gtol, max_nfev, "jac")
    if cg_maxiter is not None and (isinstance(cg_maxiter, bool) or not isinstance(
            cg_maxiter, int) or cg_maxiter < 1):
        raise ValueError(f"cg_maxiter: expected None or an int >= 1, got {cg_maxiter!r}")
    _check_tol("cg_tol", cg_tol)

    def step(params: Params, grad_fn: Any, state: Any, *batch: Any) -> tuple[Params, Any]:
        if state.status:
            raise LeastSquaresStop(state)
        if state.residuals is None:
            state = _lm_cg_start(params, grad_fn, batch)
            if float(state.grad_norm) <= hp.gtol:
                raise LeastSquaresStop(state._replace(status=1))
        return _lm_cg_step(params, grad_fn, state, batch, hp, cg_maxiter, cg_tol)

    return Optimizer(_init, step, "output")
