"""Sequential quadratic programming for :func:`fnopt.minimize`'s ``method="SLSQP"``.

Each iteration solves the quadratic program

.. math::
    \\min_d \\tfrac12 d^T B d + g^T d \\quad \\text{s.t.} \\quad
    c_E + J_E d = 0,\\; c_I + J_I d \\ge 0,\\; l - x \\le d \\le u - x

with :func:`solve_qp` (a dense primal-dual interior-point method, Mehrotra's
predictor-corrector, which needs no feasible start), then searches along :math:`d` on
the :math:`\\ell_1` merit function :math:`f + \\rho\\,(\\|c_E\\|_1 + \\|\\min(c_I,0)\\|_1)`
(Han–Powell, :math:`\\rho` from the QP multipliers) and updates :math:`B` by BFGS on
the Lagrangian's gradient with Powell's damping, so :math:`B` stays positive definite.
This is the scheme of Kraft's SLSQP (scipy's ``SLSQP``) with another QP solver; every
point evaluated lies inside the bounds.

Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 18.3 and 16.7
(Mehrotra), eq. 18.22 (damped BFGS); D. Kraft, DFVLR-FB 88-28 (1988).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import numpy as np

__all__ = ["solve_qp", "sqp", "SqpResult", "Constraints"]

Vec = np.ndarray


def _kkt_solve(h: Vec, a: Vec, r1: Vec, r2: Vec) -> tuple[Vec, Vec]:
    """Solve ``[[h, a^T], [a, 0]] [u; v] = [r1; r2]`` (least squares if singular)."""
    n, m = h.shape[0], a.shape[0]
    k = np.zeros((n + m, n + m))
    k[:n, :n], k[:n, n:], k[n:, :n] = h, a.T, a
    rhs = np.concatenate([r1, r2])
    try:
        sol = np.linalg.solve(k, rhs)
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(k, rhs, rcond=None)[0]
    return sol[:n], sol[n:]


def _max_step(v: Vec, dv: Vec) -> float:
    """The largest :math:`\\alpha \\le 1` keeping ``v + alpha dv >= 0`` (times 0.995)."""
    neg = dv < 0
    if not neg.any():
        return 1.0
    return min(1.0, 0.995 * float(np.min(-v[neg] / dv[neg])))


def _newton_direction(h: Vec, a_eq: Vec, c_in: Vec, s: Vec, z: Vec,
                      res: tuple[Vec, Vec, Vec], r_c: Vec) -> tuple[Vec, Vec, Vec, Vec]:
    """The primal-dual Newton direction ``(dd, dy, ds, dz)`` for the residuals
    ``res = (r_dual, r_eq, r_ineq)`` and complementarity target ``r_c``, from the
    reduced system with ``h = B + C^T (Z/S) C``."""
    r_d, r_e, r_i = res
    rhs = -r_d - c_in.T @ ((r_c + z * r_i) / s)
    dd, neg_dy = _kkt_solve(h, a_eq, rhs, -r_e)
    ds = c_in @ dd + r_i
    dz = -(r_c + z * ds) / s
    return dd, -neg_dy, ds, dz


def _polish(b: Vec, g: Vec, a_eq: Vec, b_eq: Vec, c_in: Vec, e_in: Vec, d: Vec, y: Vec,
            z: Vec, s: Vec) -> tuple[Vec, Vec, Vec]:
    """The interior-point answer made exact on its active set: the equality-constrained
    QP with the active inequalities (``z > s``) as equalities, kept when it is feasible
    with non-negative multipliers (else the interior-point answer)."""
    active = z > s
    a = np.vstack([a_eq, c_in[active]])
    d2, lam = _kkt_solve(b, a, -g, np.concatenate([b_eq, e_in[active]]))
    lam = -lam
    y2, z_act = lam[:a_eq.shape[0]], lam[a_eq.shape[0]:]
    slack = c_in @ d2 - e_in
    tol = 1e-9 * (1.0 + float(np.abs(e_in).max(initial=0)))
    if np.all(np.isfinite(d2)) and np.all(z_act >= -tol) and np.all(slack >= -tol):
        z2 = np.zeros_like(z)
        z2[active] = np.maximum(z_act, 0.0)
        return d2, y2, z2
    return d, y, z


def solve_qp(b: Vec, g: Vec, a_eq: Vec, b_eq: Vec, c_in: Vec, e_in: Vec, *,
             tol: float = 1e-11, maxiter: int = 60) -> tuple[Vec, Vec, Vec, bool]:
    """:math:`\\min \\tfrac12 d^TBd + g^Td` s.t. ``a_eq d = b_eq``, ``c_in d >= e_in``
    (``b`` positive definite). Returns ``(d, y_eq, z_in, converged)`` with the
    multipliers of the equalities and (non-negative) inequalities.

    >>> d, y, z, ok = solve_qp(np.eye(2), np.array([-2.0, -2.0]), np.zeros((0, 2)),
    ...                        np.zeros(0), np.array([[-1.0, 0.0]]), np.array([-1.0]))
    >>> np.round(d, 6), np.round(z, 6), ok
    (array([1., 2.]), array([1.]), True)
    """
    n, mi = g.size, e_in.size
    d = np.zeros(n)
    y = np.zeros(a_eq.shape[0])
    s = np.maximum(c_in @ d - e_in, 1.0)
    z = np.ones(mi)
    scale = 1.0 + max(float(np.abs(g).max(initial=0)), float(np.abs(b_eq).max(initial=0)),
                      float(np.abs(e_in).max(initial=0)))
    for _ in range(maxiter):
        r_d = b @ d + g - a_eq.T @ y - c_in.T @ z
        r_e = a_eq @ d - b_eq
        r_i = c_in @ d - e_in - s
        mu = float(s @ z) / mi if mi else 0.0
        res = max(float(np.abs(r_d).max(initial=0)), float(np.abs(r_e).max(initial=0)),
                  float(np.abs(r_i).max(initial=0)))
        if res <= tol * scale and mu <= tol * scale:
            return (*_polish(b, g, a_eq, b_eq, c_in, e_in, d, y, z, s), True)
        h = b + c_in.T @ ((z / s)[:, None] * c_in)
        res_ = (r_d, r_e, r_i)
        dd, dy, ds, dz = _newton_direction(h, a_eq, c_in, s, z, res_, s * z)
        if mi:
            a_aff = min(_max_step(s, ds), _max_step(z, dz))
            mu_aff = float((s + a_aff * ds) @ (z + a_aff * dz)) / mi
            sigma = (mu_aff / mu) ** 3 if mu > 0 else 0.0
            dd, dy, ds, dz = _newton_direction(h, a_eq, c_in, s, z, res_,
                                               s * z + ds * dz - sigma * mu)
            alpha = min(_max_step(s, ds), _max_step(z, dz))
        else:
            alpha = 1.0
        d, y, s, z = d + alpha * dd, y + alpha * dy, s + alpha * ds, z + alpha * dz
    return d, y, z, False


@attrs.frozen
class Constraints:
    """The constraints at a point: ``c_eq`` (``= 0``), ``c_in`` (``>= 0``) and their
    Jacobians (rows per constraint)."""

    c_eq: Vec
    j_eq: Vec
    c_in: Vec
    j_in: Vec

    def violation(self) -> float:
        """:math:`\\|c_E\\|_1 + \\|\\min(c_I, 0)\\|_1`."""
        return float(np.abs(self.c_eq).sum() + np.maximum(-self.c_in, 0).sum())


@attrs.frozen
class SqpResult:
    """The end of :func:`sqp`: iterate, loss, gradient, iterations, status (0
    converged, 9 iteration limit, 8 the line search failed, 4 the QP is infeasible),
    message and the multipliers of the (equality, inequality) constraints."""

    x: Vec
    fun: float
    jac: Vec
    nit: int
    status: int
    message: str
    multipliers: tuple[Vec, Vec]


_MESSAGES = {
    0: "Optimization terminated successfully",
    4: "Inequality constraints incompatible",
    8: "Positive directional derivative for linesearch",
    9: "Iteration limit reached",
    99: "`callback` raised `StopIteration`.",
}


def _bound_rows(x: Vec, lb: Vec, ub: Vec) -> tuple[Vec, Vec]:
    """Bounds as rows of ``C d >= e`` for the step ``d`` from ``x``."""
    n = x.size
    eye = np.eye(n)
    lo, hi = np.isfinite(lb), np.isfinite(ub)
    return (np.vstack([eye[lo], -eye[hi]]),
            np.concatenate([lb[lo] - x[lo], x[hi] - ub[hi]]))


def _sqp_direction(b: Vec, g: Vec, c: Constraints, x: Vec, lb: Vec,
                   ub: Vec) -> tuple[Vec, Vec, Vec]:
    """The QP step and multipliers; when the linearised constraints are inconsistent,
    the step of the relaxed QP (Kraft's augmentation: the violated constraints scaled
    by :math:`1 - \\delta`, :math:`0 \\le \\delta \\le 1`, :math:`\\delta^2` penalised),
    which always has a feasible point."""
    n = x.size
    cb_rows, eb = _bound_rows(x, lb, ub)
    c_rows, e_rows = np.vstack([c.j_in, cb_rows]), np.concatenate([-c.c_in, eb])
    d, y_eq, z_all, ok = solve_qp(b, g, c.j_eq, -c.c_eq, c_rows, e_rows)
    if ok:
        return d, y_eq, z_all[:c.c_in.size]
    rho = 1e6 * max(1.0, float(np.abs(np.diag(b)).max()))
    b2 = np.zeros((n + 1, n + 1))
    b2[:n, :n], b2[n, n] = b, rho
    g2 = np.concatenate([g, [0.0]])
    a_eq = np.hstack([c.j_eq, -c.c_eq[:, None]])
    viol_in = np.where(c.c_in < 0, c.c_in, 0.0)
    c_in2 = np.vstack([np.hstack([c.j_in, -viol_in[:, None]]),
                       np.hstack([cb_rows, np.zeros((cb_rows.shape[0], 1))]),
                       np.eye(1, n + 1, n), -np.eye(1, n + 1, n)])
    e_in2 = np.concatenate([-c.c_in, eb, [0.0], [-1.0]])
    d2, y_eq, z_all, _ = solve_qp(b2, g2, a_eq, -c.c_eq, c_in2, e_in2)
    return d2[:n], y_eq, z_all[:c.c_in.size]


def _penalty(c: Constraints, mu: Vec) -> float:
    r""":math:`\sum_j \mu_j |c_j|` (equalities) :math:`+ \sum_j \mu_j \max(-c_j, 0)`
    (inequalities): the :math:`\ell_1` penalty with one weight per constraint."""
    k = c.c_eq.size
    return float(mu[:k] @ np.abs(c.c_eq) + mu[k:] @ np.maximum(-c.c_in, 0))


def _damped_bfgs(b: Vec, s: Vec, y: Vec) -> Vec:
    """Powell-damped BFGS update of ``b`` (stays positive definite)."""
    bs = b @ s
    sbs = float(s @ bs)
    if sbs <= 0:
        return b
    sy = float(s @ y)
    if sy < 0.2 * sbs:
        theta = 0.8 * sbs / (sbs - sy)
        y = theta * y + (1 - theta) * bs
        sy = float(s @ y)
    return b - np.outer(bs, bs) / sbs + np.outer(y, y) / sy


def sqp(value: Callable[[Vec], float], gradient: Callable[[Vec, float], Vec],
        cons: Callable[..., Constraints], x0: Vec, lb: Vec, ub: Vec, *,
        maxiter: int = 100, ftol: float = 1e-6,
        callback: Callable[[Vec, float], bool] | None = None) -> SqpResult:
    """Minimise with constraints by SQP (see the module docstring).

    Args:
      value: ``x -> f``; gradient: ``(x, f) -> g`` (at a point whose loss is known).
      cons: ``cons(x, with_jac=True) -> Constraints`` (values, and Jacobians unless
        ``with_jac`` is false).
      x0, lb, ub: start and bounds (flat; ``±inf`` for none).
      maxiter: iterations; ftol: the accuracy of the loss and of the constraints.
      callback: ``callback(x, f) -> stop``.

    >>> r = sqp(lambda x: float(x @ x), lambda x, f: 2 * x,
    ...         lambda x, with_jac=True: Constraints(np.array([x.sum() - 1]), np.ones((1, 2)),
    ...                               np.zeros(0), np.zeros((0, 2))),
    ...         np.array([2.0, 0.0]), np.full(2, -np.inf), np.full(2, np.inf))
    >>> np.round(r.x, 6), r.status
    (array([0.5, 0.5]), 0)
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), lb, ub)
    f = value(x)
    g = gradient(x, f)
    c = cons(x)
    b = np.eye(x.size)
    mu: Vec | None = None
    status, k = 9, 0
    y_eq, z_in = np.zeros(c.c_eq.size), np.zeros(c.c_in.size)
    while k < maxiter:
        d, y_eq, z_in = _sqp_direction(b, g, c, x, lb, ub)
        if not np.all(np.isfinite(d)):
            status = 4
            break
        k += 1
        viol = c.violation()
        kkt = abs(float(g @ d)) + float(np.abs(y_eq * c.c_eq).sum() + np.abs(z_in * c.c_in).sum())
        if kkt < ftol and viol < ftol:
            status = 0
            if callback is not None:  # this iteration counts (nit), as scipy's
                callback(x, f)
            break
        lam = np.abs(np.concatenate([y_eq, z_in]))
        mu = lam if mu is None else np.maximum(lam, 0.5 * (mu + lam))
        merit0 = f + _penalty(c, mu)
        slope = float(g @ d) - _penalty(c, mu)
        alpha, x_new, f_new, c_new = 1.0, x, f, c
        for _ in range(10):
            x_new = np.clip(x + alpha * d, lb, ub)
            f_new, c_new = value(x_new), cons(x_new, False)
            merit = f_new + _penalty(c_new, mu)
            if merit <= merit0 + 0.1 * alpha * min(slope, 0.0) or not slope < 0:
                break
            alpha = max(0.1 * alpha, -0.5 * alpha * alpha * slope /
                        max(merit - merit0 - alpha * slope, 1e-300))
        else:
            status = 8
        g_new = gradient(x_new, f_new)
        c_new = cons(x_new)
        lag = g - c.j_eq.T @ y_eq - c.j_in.T @ z_in
        lag_new = g_new - c_new.j_eq.T @ y_eq - c_new.j_in.T @ z_in
        step = x_new - x
        b = _damped_bfgs(b, step, lag_new - lag)
        f_old, x, f, g, c = f, x_new, f_new, g_new, c_new
        if callback is not None and callback(x, f):
            status = 99
            break
        if status == 8:
            break
        if abs(f - f_old) < ftol and c.violation() < ftol and \
                float(np.linalg.norm(step)) < math.sqrt(ftol):
            status = 0
            break
    return SqpResult(x, float(f), g, k, status, _MESSAGES[status], (y_eq, z_in))
