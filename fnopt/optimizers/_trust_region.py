"""Trust-region Newton methods on flat float64 vectors: ``trust-ncg``, ``trust-krylov``
and ``trust-exact`` of :func:`fnopt.minimize`.

Each iteration minimises the quadratic model
:math:`m(p) = f + g^T p + \\tfrac12 p^T H p` within :math:`\\|p\\| \\le \\Delta`, takes
the step when the actual reduction is at least ``eta`` times the predicted one, and
updates :math:`\\Delta` from the ratio (quartered below 1/4, doubled up to
``max_trust_radius`` above 3/4 when the step reached the boundary). Subproblem solvers:

* :func:`steihaug_cg` — truncated conjugate gradients (Steihaug–Toint): products
  :math:`Hv` only, stops at the boundary or on negative curvature.
* :func:`lanczos_trust` — the Krylov (GLTR) idea: a Lanczos basis :math:`Q_k` with
  tridiagonal :math:`T_k = Q_k^T H Q_k`, the subproblem solved exactly in that basis
  (:func:`more_sorensen` on :math:`T_k`), the basis grown until the model gradient
  :math:`\\beta_{k+1} |e_k^T h_k|` is small. Products :math:`Hv` only.
* :func:`more_sorensen` — the nearly exact solve of Moré & Sorensen (1983): the
  :math:`\\lambda \\ge \\max(0, -\\lambda_{\\min})` with
  :math:`\\|(H + \\lambda I)^{-1} g\\| = \\Delta` by Newton's method on the secular
  equation :math:`1/\\|p(\\lambda)\\| - 1/\\Delta = 0`, carried out in the eigenbasis of
  :math:`H` (so each trial costs :math:`O(n^2)`, and the *hard case* — :math:`g`
  orthogonal to the lowest eigenvectors — is handled by adding the eigenvector that
  reaches the boundary). Needs the Hessian matrix.

Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., ch. 4 and 7.2;
Gould, Lucidi, Roma and Toint, SIAM J. Optim. 9 (1999) (GLTR); Moré and Sorensen,
SIAM J. Sci. Stat. Comput. 4 (1983).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import numpy as np

__all__ = ["steihaug_cg", "lanczos_trust", "more_sorensen", "minimize_trust_region",
           "TrustResult"]

Vec = np.ndarray


def _to_boundary(p: Vec, d: Vec, radius: float) -> float:
    """The :math:`\\tau \\ge 0` with :math:`\\|p + \\tau d\\| = \\Delta`."""
    a, b, c = d @ d, 2 * (p @ d), p @ p - radius ** 2
    disc = max(b * b - 4 * a * c, 0.0)
    return float((-b + math.sqrt(disc)) / (2 * a))


def steihaug_cg(g: Vec, hessp: Callable[[Vec], Vec], radius: float,
                maxiter: int | None = None) -> tuple[Vec, bool]:
    """Steihaug–Toint truncated CG for :math:`\\min g^Tp + \\tfrac12 p^THp`,
    :math:`\\|p\\| \\le` ``radius``. Returns ``(p, hits_boundary)``.

    >>> p, hit = steihaug_cg(np.array([1.0, 0.0]), lambda v: 2 * v, 10.0)
    >>> p, hit
    (array([-0.5,  0. ]), False)
    """
    gnorm = float(np.linalg.norm(g))
    tol = min(0.5, math.sqrt(gnorm)) * gnorm
    p, r = np.zeros_like(g), g.copy()
    d = -r
    for _ in range(maxiter or 2 * g.size + 10):
        hd = hessp(d)
        dhd = float(d @ hd)
        if dhd <= 0:  # negative curvature: go to the boundary along d
            return p + _to_boundary(p, d, radius) * d, True
        alpha = float(r @ r) / dhd
        p_next = p + alpha * d
        if np.linalg.norm(p_next) >= radius:
            return p + _to_boundary(p, d, radius) * d, True
        r_next = r + alpha * hd
        if np.linalg.norm(r_next) < tol:
            return p_next, False
        d = -r_next + (float(r_next @ r_next) / float(r @ r)) * d
        p, r = p_next, r_next
    return p, False


def more_sorensen(g: Vec, h: Vec, radius: float, *, rtol: float = 1e-10,
                  maxiter: int = 100) -> tuple[Vec, bool, float]:
    """The nearly exact trust-region step (Moré–Sorensen) for a dense symmetric
    ``h``, in its eigenbasis. Returns ``(p, hits_boundary, lam)`` with
    :math:`(H + \\lambda I) p = -g`, :math:`\\lambda \\ge 0`.

    >>> p, hit, lam = more_sorensen(np.array([1.0, 1.0]), np.diag([1.0, -1.0]), 1.0)
    >>> bool(hit), round(float(np.linalg.norm(p)), 12)
    (True, 1.0)
    """
    lam_all, q = np.linalg.eigh(0.5 * (h + h.T))
    gq = q.T @ g
    lam_min = float(lam_all[0])
    scale = max(1.0, float(np.abs(lam_all).max()))
    if lam_min > 0:
        p = -(q @ (gq / lam_all))
        if np.linalg.norm(p) <= radius:
            return p, False, 0.0

    def norm_at(lam: float) -> float:
        return float(np.linalg.norm(gq / (lam_all + lam)))

    low = max(0.0, -lam_min)
    low_gap = 1e-12 * scale
    # the hard case: g (nearly) orthogonal to the lowest eigenspace, the step short
    lowest = np.abs(lam_all - lam_min) <= 1e-12 * scale
    if lam_min <= 0 and not np.any(np.abs(gq[lowest]) > 1e-12 * max(1.0, float(np.linalg.norm(g)))):
        rest = ~lowest
        p = -(q[:, rest] @ (gq[rest] / (lam_all[rest] - lam_min))) if rest.any() else \
            np.zeros_like(g)
        if np.linalg.norm(p) <= radius:
            return p + _to_boundary(p, q[:, 0], radius) * q[:, 0], True, -lam_min
    lam = low + max(low_gap, 1e-8 * scale)
    while norm_at(lam) > radius:  # bracket: from the pole upwards
        lam = low + 2 * (lam - low)
    for _ in range(maxiter):
        w = gq / (lam_all + lam)
        pn = float(np.linalg.norm(w))
        if abs(pn - radius) <= rtol * radius:
            break
        dpn = -float((w * w / (lam_all + lam)).sum()) / pn  # d||p||/dlam
        step = -((1 / pn - 1 / radius) / (-dpn / pn ** 2))
        lam = max(lam + step, low + 0.5 * (lam - low))
    return -(q @ (gq / (lam_all + lam))), True, lam


def lanczos_trust(g: Vec, hessp: Callable[[Vec], Vec], radius: float, *,
                  rtol: float = 1e-8, maxiter: int | None = None) -> tuple[Vec, bool, float]:
    """The trust-region step in a growing Krylov (Lanczos) subspace, solved exactly
    there (GLTR's idea, full reorthogonalisation). Returns ``(p, hits_boundary, lam)``
    (``lam`` the multiplier of the subspace problem).

    >>> p, hit, lam = lanczos_trust(np.array([1.0, 0.0]), lambda v: 2 * v, 10.0)
    >>> np.round(p, 12), hit
    (array([-0.5,  0. ]), False)
    """
    n = g.size
    gnorm = float(np.linalg.norm(g))
    if gnorm == 0:
        return np.zeros_like(g), False, 0.0
    basis = [g / gnorm]
    alphas: list[float] = []
    betas: list[float] = []
    tol = max(rtol * gnorm, 1e-300)
    for k in range(maxiter or n):
        w = hessp(basis[-1])
        alphas.append(float(basis[-1] @ w))
        w = w - alphas[-1] * basis[-1] - (betas[-1] * basis[-2] if betas else 0.0)
        qmat = np.array(basis)
        w = w - qmat.T @ (qmat @ w)  # reorthogonalise
        beta = float(np.linalg.norm(w))
        t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        e1 = np.zeros(k + 1)
        e1[0] = gnorm
        h, hit, lam = more_sorensen(e1, t, radius)
        if beta * abs(h[-1]) <= tol or k + 1 == n or beta <= 1e-14 * max(1.0, abs(alphas[-1])):
            return qmat.T @ h, bool(hit), lam
        betas.append(beta)
        basis.append(w / beta)
    return np.array(basis[:len(alphas)]).T @ h, bool(hit), lam


@attrs.frozen
class TrustResult:
    """The end of :func:`minimize_trust_region`: the iterate, its loss and gradient,
    iterations, scipy's status (0 converged, 1 maxiter, 2 the model predicted no
    decrease, 3 NaN, 99 callback) and message."""

    x: Vec
    fun: float
    jac: Vec
    nit: int
    status: int
    message: str


_MESSAGES = {
    0: "Optimization terminated successfully.",
    1: "Maximum number of iterations has been exceeded.",
    2: "A bad approximation caused failure to predict improvement.",
    3: "A linalg error occurred, such as a non-psd Hessian.",
    99: "`callback` raised `StopIteration`.",
}


def minimize_trust_region(
    value: Callable[[Vec], float], gradient: Callable[[Vec, float], Vec],
    solve: Callable[[Vec, Vec, float], tuple[Vec, bool]], model: Callable[[Vec, Vec], Vec],
    x0: Vec, *, initial_trust_radius: float = 1.0, max_trust_radius: float = 1000.0,
    eta: float = 0.15, gtol: float = 1e-4, maxiter: int = 1000,
    callback: Callable[[Vec, float], bool] | None = None,
) -> TrustResult:
    """The trust-region loop (scipy's constants and stopping test :math:`\\|g\\|_2 <`
    ``gtol``).

    Args:
      value: :math:`f(x)`; gradient: :math:`\\nabla f(x)` given ``x`` and ``f(x)``.
      solve: ``solve(x, g, radius) -> (p, hits_boundary)``, the subproblem step.
      model: ``model(x, p) -> H p`` (for the predicted reduction).
      callback: ``callback(x, f) -> stop``.

    >>> r = minimize_trust_region(lambda x: float(x @ x), lambda x, f: 2 * x,
    ...     lambda x, g, d: steihaug_cg(g, lambda v: 2 * v, d), lambda x, p: 2 * p,
    ...     np.array([3.0, -4.0]), initial_trust_radius=10.0)
    >>> r.x, r.status
    (array([0., 0.]), 0)
    """
    if not 0 <= eta < 0.25:
        raise ValueError(f"eta: expected a number in [0, 0.25), got {eta}")
    if not 0 < initial_trust_radius <= max_trust_radius:
        raise ValueError("initial_trust_radius: expected 0 < initial_trust_radius <= "
                         f"max_trust_radius, got {initial_trust_radius} and {max_trust_radius}")
    x = np.array(x0, dtype=np.float64)
    f = value(x)
    g = gradient(x, f)
    radius, k, status = float(initial_trust_radius), 0, 1
    while k < maxiter:
        if np.linalg.norm(g) < gtol:
            status = 0
            break
        try:
            p, hit = solve(x, g, radius)
        except np.linalg.LinAlgError:
            status = 3
            break
        predicted = -float(g @ p + 0.5 * p @ model(x, p))
        if not predicted > 0:
            status = 2
            break
        x_new = x + p
        f_new = value(x_new)
        rho = (f - f_new) / predicted if math.isfinite(f_new) else -math.inf
        if rho < 0.25:
            radius *= 0.25
        elif rho > 0.75 and hit:
            radius = min(2 * radius, max_trust_radius)
        if rho > eta:
            x, f = x_new, f_new
            g = gradient(x, f)
        k += 1
        if callback is not None and callback(x, f):
            status = 99
            break
    else:
        status = 0 if np.linalg.norm(g) < gtol else 1
    if not math.isfinite(f):
        status = 3
    return TrustResult(x, float(f), g, k, status, _MESSAGES[status])

