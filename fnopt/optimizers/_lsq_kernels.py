"""Dense kernels of the least-squares optimizers (host NumPy float64, private).

The trust-region subproblem of Levenberg–Marquardt and of the reflective method,

.. math:: \\min_z \\|r + A z\\|^2 \\ \\text{s.t.}\\ \\|z\\| \\le \\Delta
    \\quad\\Longleftrightarrow\\quad z(\\lambda) = -(A^T A + \\lambda I)^{-1} A^T r,

is solved from one SVD :math:`A = U S V^T` per Jacobian: :math:`z(\\lambda) = -V
\\,\\mathrm{diag}(s / (s^2 + \\lambda))\\, U^T r`, so each trial :math:`\\lambda` costs
``O(n^2)``. :math:`\\lambda` is found by Moré's safeguarded Newton iteration on
:math:`\\phi(\\lambda) = \\|z(\\lambda)\\| - \\Delta` (MINPACK's ``lmpar``: bounds
``parl``/``paru``, stop within 10 % of :math:`\\Delta`, at most 10 iterations), with the
SVD in place of MINPACK's pivoted QR and Givens updates.

Reference: J. J. Moré, "The Levenberg–Marquardt algorithm: implementation and theory",
Numerical Analysis, Lecture Notes in Mathematics 630 (1978) 105–116.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

DWARF = float(np.finfo(np.float64).tiny)
EPS = float(np.finfo(np.float64).eps)


class Svd(NamedTuple):
    """``A = U diag(s) Vt`` of a scaled Jacobian, with ``uf = U^T r``."""

    s: np.ndarray  # singular values, those below the rank tolerance set to 0
    vt: np.ndarray
    uf: np.ndarray
    full_rank: bool
    s_raw: np.ndarray  # the singular values as computed


def svd(a: np.ndarray, r: np.ndarray) -> Svd:
    """The thin SVD of ``a`` (``m x n``) and ``U^T r``; singular values below
    ``eps * max(m, n) * s_max`` are treated as zero (rank deficiency)."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    uf = u.T @ r
    tol = EPS * max(a.shape) * (s[0] if s.size else 0.0)
    cut = np.where(s > tol, s, 0.0)
    return Svd(cut, vt, uf, bool(s.size == a.shape[1] and np.all(cut > 0)), s)


def step_at(d: Svd, lam: float) -> np.ndarray:
    """:math:`z(\\lambda)`; at :math:`\\lambda = 0` the minimum-norm Gauss–Newton step."""
    s, uf = d.s, d.uf
    if lam == 0.0:
        coef = np.divide(uf, s, out=np.zeros_like(uf), where=s > 0)
    else:
        coef = s * uf / (s * s + lam)
    return -(d.vt.T @ coef)


def _q(d: Svd, lam: float) -> float:
    """:math:`\\sum s^2 (U^T r)^2 / (s^2 + \\lambda)^3 = -\\|z\\| \\phi'(\\lambda)`."""
    s, uf = d.s, d.uf
    den = (s * s + lam) ** 3
    return float(np.sum(np.divide(s * s * uf * uf, den, out=np.zeros_like(s), where=den > 0)))


def lm_parameter(d: Svd, delta: float, lam0: float) -> tuple[float, np.ndarray]:
    """Moré's iteration for the Levenberg–Marquardt parameter.

    Returns ``(lam, z)`` with ``lam = 0`` when the Gauss–Newton step is inside the
    region (within 10 %), else ``lam > 0`` with :math:`|\\|z\\| - \\Delta| \\le 0.1\\Delta`
    (or the best found in 10 iterations). ``lam0`` is the previous parameter (a warm
    start).
    """
    z = step_at(d, 0.0)
    dxnorm = float(np.linalg.norm(z))
    fp = dxnorm - delta
    if fp <= 0.1 * delta:
        return 0.0, z
    parl = 0.0
    if d.full_rank:  # Newton's step from lambda = 0 is a lower bound
        parl = (fp / delta) * dxnorm * dxnorm / _q(d, 0.0)
    gnorm = float(np.linalg.norm(d.s * d.uf))
    paru = gnorm / delta
    if paru == 0.0:
        paru = DWARF / min(delta, 0.1)
    lam = min(max(lam0, parl), paru)
    if lam == 0.0:
        lam = gnorm / dxnorm
    for it in range(1, 11):
        if lam == 0.0:
            lam = max(DWARF, 0.001 * paru)
        z = step_at(d, lam)
        dxnorm = float(np.linalg.norm(z))
        prev, fp = fp, dxnorm - delta
        if abs(fp) <= 0.1 * delta or (parl == 0.0 and fp <= prev < 0.0) or it == 10:
            break
        q = _q(d, lam)
        parc = (fp / delta) * dxnorm * dxnorm / q if q > 0 else 0.0
        if fp > 0.0:
            parl = max(parl, lam)
        elif fp < 0.0:
            paru = min(paru, lam)
        lam = max(parl, lam + parc)
    return lam, z


# -- the reflective (bounded) trust-region step: Branch, Coleman & Li (1999) ---------


def scaling_vector(
    x: np.ndarray, g: np.ndarray, lb: np.ndarray, ub: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coleman–Li scaling :math:`v` and its derivative sign :math:`dv`: the distance to
    the bound that the anti-gradient points at (1 where it points at none)."""
    v = np.ones_like(x)
    dv = np.zeros_like(x)
    up = (g < 0) & np.isfinite(ub)
    v[up], dv[up] = ub[up] - x[up], -1.0
    down = (g > 0) & np.isfinite(lb)
    v[down], dv[down] = x[down] - lb[down], 1.0
    return v, dv


def strictly_inside(x: np.ndarray, lb: np.ndarray, ub: np.ndarray, rstep: float) -> np.ndarray:
    """``x`` moved off its bounds into the interior (by ``rstep`` relative, or one ulp
    when ``rstep`` is 0)."""
    out = x.copy()
    lo, hi = x <= lb, x >= ub
    if rstep == 0.0:
        out[lo] = np.nextafter(lb[lo], ub[lo])
        out[hi] = np.nextafter(ub[hi], lb[hi])
    else:
        out[lo] = lb[lo] + rstep * np.maximum(1.0, np.abs(lb[lo]))
        out[hi] = ub[hi] - rstep * np.maximum(1.0, np.abs(ub[hi]))
    tight = (out < lb) | (out > ub)
    out[tight] = 0.5 * (lb[tight] + ub[tight])
    return out


def stride_to_bound(
    x: np.ndarray, s: np.ndarray, lb: np.ndarray, ub: np.ndarray
) -> tuple[float, np.ndarray]:
    """The largest ``t`` with ``x + t s`` within bounds, and the mask of the
    coordinates that reach their bound at that ``t``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        to_lb = np.where(s < 0, (lb - x) / s, np.inf)
        to_ub = np.where(s > 0, (ub - x) / s, np.inf)
    t_each = np.minimum(np.where(np.isnan(to_lb), np.inf, to_lb),
                        np.where(np.isnan(to_ub), np.inf, to_ub))
    t = float(np.min(t_each)) if t_each.size else math.inf
    return t, t_each == t


def model(jh: np.ndarray, gh: np.ndarray, diag_h: np.ndarray, s: np.ndarray) -> float:
    """The quadratic model :math:`\\tfrac12 (\\|J_h s\\|^2 + s^T C s) + g_h^T s`."""
    js = jh @ s
    return float(0.5 * (js @ js + s @ (diag_h * s)) + gh @ s)


def min_along(
    jh: np.ndarray, gh: np.ndarray, diag_h: np.ndarray, s0: np.ndarray, s: np.ndarray,
    lo: float, hi: float,
) -> tuple[float, float]:
    """Minimise the model on the segment ``s0 + t s``, ``t`` in ``[lo, hi]``; returns
    ``(t, model value)``."""
    js, js0 = jh @ s, jh @ s0
    a = 0.5 * float(js @ js + s @ (diag_h * s))
    b = float(gh @ s + js0 @ js + s0 @ (diag_h * s))
    c = model(jh, gh, diag_h, s0)
    ts = [lo, hi]
    if a > 0:
        t_star = -b / (2 * a)
        if lo < t_star < hi:
            ts.append(t_star)
    vals = [a * t * t + b * t + c for t in ts]
    i = int(np.argmin(vals))
    return ts[i], vals[i]


def _tr_exit(p: np.ndarray, s: np.ndarray, delta: float) -> float:
    """The ``t > 0`` at which ``p + t s`` leaves the ball of radius ``delta``."""
    a, b, c = float(s @ s), float(p @ s), float(p @ p) - delta * delta
    if a == 0.0:
        return math.inf
    disc = max(b * b - a * c, 0.0)
    return (-b + math.sqrt(disc)) / a


class Candidate(NamedTuple):
    step: np.ndarray
    step_h: np.ndarray
    predicted: float


def reflective_step(
    x: np.ndarray, lb: np.ndarray, ub: np.ndarray, d: np.ndarray, p_h: np.ndarray,
    jh: np.ndarray, gh: np.ndarray, diag_h: np.ndarray, delta: float, theta: float,
) -> Candidate:
    """The best of three strictly feasible steps from the trust-region step ``p_h``
    (in scaled variables, ``step = d * step_h``): the step itself when feasible, else
    the step cut back at the boundary (times ``theta``), the best point along its
    reflection at the boundary, and the best point along the scaled anti-gradient."""
    p = d * p_h
    if np.all((x + p >= lb) & (x + p <= ub)):
        return Candidate(p, p_h, -model(jh, gh, diag_h, p_h))
    t_bound, hits = stride_to_bound(x, p, lb, ub)
    refl_h = p_h.copy()
    refl_h[hits] *= -1.0
    cut_h = t_bound * p_h
    best = []
    # along the reflection, from the boundary point, strictly inside and within delta
    to_tr = _tr_exit(cut_h, refl_h, delta)
    to_b = stride_to_bound(x + d * cut_h, d * refl_h, lb, ub)[0]
    t_r = min(to_b, to_tr)
    if t_r > 0:
        lo = (1.0 - theta) * t_bound / t_r
        hi = theta * to_b if t_r == to_b else to_tr
        if lo <= hi:
            t, val = min_along(jh, gh, diag_h, cut_h, refl_h, lo, hi)
            best.append((val, cut_h + t * refl_h))
    best.append((model(jh, gh, diag_h, theta * cut_h), theta * cut_h))
    ag_h = -gh
    ag_norm = float(np.linalg.norm(ag_h))
    if ag_norm > 0:
        to_tr_g = delta / ag_norm
        to_b_g = stride_to_bound(x, d * ag_h, lb, ub)[0]
        hi_g = theta * to_b_g if to_b_g < to_tr_g else to_tr_g
        t, val = min_along(jh, gh, diag_h, np.zeros_like(ag_h), ag_h, 0.0, hi_g)
        best.append((val, t * ag_h))
    val, sh = min(best, key=lambda c: c[0])
    return Candidate(d * sh, sh, -val)


def tr_parameter(d: Svd, m: int, delta: float, alpha0: float) -> tuple[float, np.ndarray]:
    """The trust-region step of the reflective method: the Gauss–Newton step when the
    Jacobian has full column rank (``m >= n``) and the step fits in the region, else
    :math:`z(\\alpha)` with :math:`\\|z\\| = \\Delta` to 1 % (safeguarded Newton on
    :math:`\\phi(\\alpha) = \\|z(\\alpha)\\| - \\Delta`, warm-started at ``alpha0``, at
    most 10 iterations), rescaled onto the boundary of the region.

    Returns ``(alpha, z)``.
    """
    s, uf = d.s_raw, d.uf
    n = d.vt.shape[1]
    full = m >= n and s.size == n and s[-1] > EPS * m * s[0]
    if full:
        z = -(d.vt.T @ (uf / s))
        if float(np.linalg.norm(z)) <= delta:
            return 0.0, z
    su = s * uf

    def phi(a: float) -> tuple[float, float]:
        den = s * s + a
        zn = float(np.linalg.norm(su / den))
        return zn - delta, -float(np.sum(su * su / den**3)) / zn

    hi = float(np.linalg.norm(su)) / delta
    if full:
        f0, df0 = phi(0.0)
        lo = -f0 / df0
    else:
        lo = 0.0
    a = alpha0
    if alpha0 == 0.0 and not full:
        a = max(0.001 * hi, math.sqrt(lo * hi))
    for _ in range(10):
        if not lo <= a <= hi:
            a = max(0.001 * hi, math.sqrt(lo * hi))
        f, df = phi(a)
        if f < 0:
            hi = a
        newton = f / df
        lo = max(lo, a - newton)
        a -= (f + delta) * newton / delta
        if abs(f) < 0.01 * delta:
            break
    z = -(d.vt.T @ (su / (s * s + a)))
    zn = float(np.linalg.norm(z))
    return a, z * (delta / zn) if zn > 0 else z
