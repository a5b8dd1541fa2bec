"""Line searches and the :func:`line_search` wrapper that turns a direction into an
optimizer.

A *search* works on the one-dimensional restriction
:math:`\\phi(\\alpha) = f(x + \\alpha d)` of the loss along a direction :math:`d`. It is a
small frozen object, called as ``search(phi, value0, slope0, init_step)`` where
``phi(alpha) -> (value, slope, aux)`` returns :math:`\\phi(\\alpha)`,
:math:`\\phi'(\\alpha)` (Python floats) and anything the caller wants back for the
accepted step (the new params and gradient). It returns a :class:`LineSearchResult`
whose ``status`` says whether the step is acceptable and, if not, why:

* :func:`backtracking` — Armijo (sufficient decrease) backtracking with safeguarded
  quadratic/cubic interpolation;
* :func:`strong_wolfe` — the bracketing and zoom search of Nocedal & Wright
  (Algorithms 3.5 and 3.6) for the strong Wolfe conditions, with safeguarded cubic
  interpolation and extrapolation.

:func:`line_search` lifts a direction :class:`fnopt.Transform` (steepest descent,
L-BFGS, Newton, ...) to an :class:`fnopt.Optimizer` whose step searches along the
direction. The loss and gradient at the accepted point are cached in the state, so the
next step does not evaluate them again; when a search fails the step raises
:class:`fnopt.StepFailed` and :func:`fnopt.fixed_point` stops with reason
``line_search_failed``, keeping the last good iterate (or, when the search failed only
because the iterate is a minimiser to round-off, with a converged reason).

>>> import numpy as np, fnopt
>>> phi = lambda a: ((a - 2.0) ** 2, 2.0 * (a - 2.0), None)
>>> r = fnopt.strong_wolfe()(phi, 4.0, -4.0, 1.0)
>>> r.status, r.step
(<LineSearchStatus.CONVERGED: 'converged'>, 1.0)

Reference: J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer
2006, chapter 3.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import attrs
import numpy as np

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import (
    GradFn,
    Optimizer,
    Params,
    State,
    Transform,
    _dtype_name,
    call_grad_fn,
    check_nonnegative,
    check_params,
    check_positive,
    translate_kwargs,
)
from fnopt.loop import StepFailed
from fnopt.stop import Reason

__all__ = [
    "LineSearchStatus",
    "LineSearchResult",
    "LineSearch",
    "Backtracking",
    "StrongWolfe",
    "backtracking",
    "strong_wolfe",
    "line_search",
    "LineSearchState",
]

Phi = Callable[[float], tuple[float, float, Any]]


class LineSearchStatus(str, enum.Enum):
    """Outcome of a line search. Compares equal to its lower-case name."""

    CONVERGED = "converged"
    ASCENT_DIRECTION = "ascent_direction"
    FLAT = "flat"
    NON_FINITE = "non_finite"
    MAX_TRIALS = "max_trials"
    INTERVAL_TOO_SMALL = "interval_too_small"

    def __str__(self) -> str:
        return self.value


_STATUS_MESSAGES = {
    LineSearchStatus.CONVERGED: "the step satisfies the line-search conditions",
    LineSearchStatus.ASCENT_DIRECTION: "the direction is not a descent direction (slope > 0)",
    LineSearchStatus.FLAT: "the slope along the direction is zero (flat function or "
    "direction orthogonal to the gradient)",
    LineSearchStatus.NON_FINITE: "the loss or slope is NaN or infinite",
    LineSearchStatus.MAX_TRIALS: "no acceptable step within the maximum number of trials",
    LineSearchStatus.INTERVAL_TOO_SMALL: "the bracketing interval shrank to round-off "
    "without an acceptable step",
}


@attrs.frozen(slots=True)
class LineSearchResult:
    """What a line search returns.

    Attributes:
      status: a :class:`LineSearchStatus`; ``ok`` is true only for ``converged``.
      step: the accepted step :math:`\\alpha` (on failure: the best point found that
        decreases the loss, else the last trial; 0.0 when nothing was tried).
      value: :math:`\\phi(\\alpha)` (``value0`` when ``step`` is 0).
      slope: :math:`\\phi'(\\alpha)`.
      aux: what ``phi`` returned for ``step`` (``None`` when ``step`` is 0).
      n_evals: number of calls of ``phi``.
      message: a readable sentence.
    """

    status: LineSearchStatus
    step: float
    value: float
    slope: float
    aux: Any
    n_evals: int
    message: str

    @property
    def ok(self) -> bool:
        """Whether the search found an acceptable step."""
        return self.status is LineSearchStatus.CONVERGED


def _finite(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def _start_status(value0: float, slope0: float) -> LineSearchStatus | None:
    if not _finite(value0, slope0):
        return LineSearchStatus.NON_FINITE
    if slope0 > 0:
        return LineSearchStatus.ASCENT_DIRECTION
    if slope0 == 0:
        return LineSearchStatus.FLAT
    return None


def _result(
    status: LineSearchStatus,
    step: float,
    value: float,
    slope: float,
    aux: Any,
    n: int,
    detail: str = "",
) -> LineSearchResult:
    msg = _STATUS_MESSAGES[status]
    return LineSearchResult(status, step, value, slope, aux, n, f"{msg}{detail}")


def _decrease_ok(
    a: float, f: float, g: float, value0: float, slope0: float, c1: float, f_tol: float
) -> bool:
    """Sufficient decrease: the Armijo condition, or — where the loss changes by less
    than its round-off, ``f_tol * |value0|`` — its derivative form
    :math:`\\phi'(\\alpha) \\le (1 - 2 c_1) |\\phi'(0)|` (Hager & Zhang's approximate
    Wolfe condition)."""
    if f <= value0 + c1 * a * slope0:
        return True
    return f <= value0 + f_tol * abs(value0) and g <= -(1.0 - 2.0 * c1) * slope0


def _cubic_min(a: float, fa: float, ga: float, b: float, fb: float, gb: float) -> float | None:
    """Minimiser of the cubic through ``(a, fa, ga)`` and ``(b, fb, gb)`` (N&W eq. 3.59),
    or ``None`` when it has no finite minimiser."""
    if a == b:
        return None
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - ga * gb
    if not math.isfinite(disc) or disc < 0:
        return None
    d2 = math.copysign(math.sqrt(disc), b - a)
    den = gb - ga + 2.0 * d2
    if den == 0:
        return None
    x = b - (b - a) * (gb + d2 - d1) / den
    return x if math.isfinite(x) else None


def _quad_min(a: float, fa: float, ga: float, b: float, fb: float) -> float | None:
    """Minimiser of the quadratic with value ``fa``, slope ``ga`` at ``a`` and value
    ``fb`` at ``b``, or ``None`` when it is not convex."""
    h = b - a
    curv = fb - fa - ga * h
    if h == 0 or not math.isfinite(curv) or curv <= 0:
        return None
    x = a - ga * h * h / (2.0 * curv)
    return x if math.isfinite(x) else None


def _extrapolate(a0: float, f0: float, g0: float, a1: float, f1: float, g1: float,
                 lo: float, hi: float) -> float:
    """The next trial beyond ``a1 > a0`` (both with sufficient decrease, slopes < 0),
    kept in ``[lo, hi]``. Where the slope's magnitude shrank, the farther of the cubic
    step and the secant step on the slopes (the secant is exact on a quadratic, whatever
    the gradient's scale): Moré & Thuente's rule for an unbracketed lower point; where
    it did not shrink, ``hi``."""
    if not abs(g1) < abs(g0):
        return hi
    h = a1 - a0
    theta = 3.0 * (f0 - f1) / h + g0 + g1
    s = max(abs(theta), abs(g0), abs(g1))
    gamma = -s * math.sqrt(max(0.0, (theta / s) ** 2 - (g0 / s) * (g1 / s)))
    q = 2.0 * gamma + (g0 - g1)
    r = (gamma - g1 + theta) / q if q != 0 else 0.0
    cubic = a1 - r * h if r < 0 and gamma != 0 else hi
    secant = a1 - g1 / (g1 - g0) * h
    step = cubic if abs(cubic - a1) > abs(secant - a1) else secant
    return step if math.isfinite(step) and lo <= step <= hi else (
        lo if math.isfinite(step) and step < lo else hi)


def _interpolate(
    a_lo: float,
    f_lo: float,
    g_lo: float,
    a_hi: float,
    f_hi: float,
    g_hi: float,
    latest_is_lo: bool,
) -> float | None:
    """The next trial inside a bracket ``[a_lo, a_hi]`` (``a_lo`` has the lower loss),
    chosen as in Moré & Thuente's step rules.

    If the latest trial became ``a_hi`` (it raised the loss), take the cubic minimiser
    when it is closer to ``a_lo`` than the minimiser of the quadratic through
    ``f_lo, g_lo, f_hi``, else the midpoint of the two. If the latest trial became
    ``a_lo`` and the slopes have opposite signs, take whichever of the cubic and the
    secant step on the slopes lies farther from ``a_lo``. Otherwise the cubic.
    """
    cubic = _cubic_min(a_lo, f_lo, g_lo, a_hi, f_hi, g_hi)
    if not latest_is_lo:
        quad = _quad_min(a_lo, f_lo, g_lo, a_hi, f_hi)
        if cubic is None:
            return quad
        if quad is not None and abs(cubic - a_lo) >= abs(quad - a_lo):
            return 0.5 * (cubic + quad)
        return cubic
    if g_lo * g_hi < 0:
        secant = a_lo - g_lo * (a_hi - a_lo) / (g_hi - g_lo)
        if cubic is None or abs(cubic - a_lo) < abs(secant - a_lo):
            return secant if math.isfinite(secant) else cubic
    return cubic


class LineSearch:
    """Base of the line searches: ``search(phi, value0, slope0, init_step, eps=0.0)``.

    ``eps`` is the machine epsilon of the arithmetic behind ``phi`` (0 when unknown):
    losses within ``max(f_tol, 1000 eps)`` (relative) of ``value0`` count as equal.
    A subclass implements :meth:`_search` (or overrides ``__call__`` whole).
    """

    __slots__ = ()
    f_tol: float = 0.0  # the relative loss tolerance; the subclasses make it a field

    def __call__(
        self,
        phi: Phi,
        value0: float,
        slope0: float,
        init_step: float = 1.0,
        *,
        eps: float = 0.0,
    ) -> LineSearchResult:
        """Search along ``phi(alpha) -> (loss, slope, aux)`` from ``value0``/``slope0``
        (the loss and directional derivative at 0), first trying ``init_step``. A start
        that is not finite, or not a descent direction, ends at once with that status."""
        bad = _start_status(value0, slope0)
        if bad is not None:
            return _result(bad, 0.0, value0, slope0, None, 0)
        return self._search(phi, value0, slope0, float(init_step),
                            max(self.f_tol, 1e3 * eps))

    def _search(
        self, phi: Phi, value0: float, slope0: float, init_step: float, f_tol: float
    ) -> LineSearchResult:
        """The search from a valid start (finite ``value0``, ``slope0 < 0``), with the
        loss tolerance ``f_tol`` already widened to the arithmetic's epsilon."""
        raise NotImplementedError


@attrs.frozen(slots=True)
class Backtracking(LineSearch):
    """Armijo backtracking; build it with :func:`backtracking`."""

    c1: float = 1e-4
    shrink: float = 0.5
    min_shrink: float = 0.1
    max_trials: int = 30
    interpolate: bool = True
    f_tol: float = 1e-10

    def _search(
        self, phi: Phi, value0: float, slope0: float, init_step: float, f_tol: float
    ) -> LineSearchResult:
        a = init_step
        f = g = math.nan
        aux: Any = None
        tried = 0.0
        for n in range(1, self.max_trials + 1):
            f, g, aux = phi(a)
            tried = a
            if f == -math.inf:  # nothing is lower: the step is taken
                return _result(LineSearchStatus.CONVERGED, a, f, g, aux, n)
            if not math.isfinite(f):
                a_new = self.min_shrink * a
            elif _decrease_ok(a, f, g, value0, slope0, self.c1, f_tol):
                return _result(LineSearchStatus.CONVERGED, a, f, g, aux, n)
            else:
                a_new = self.shrink * a
                if self.interpolate:
                    trial = (
                        _cubic_min(0.0, value0, slope0, a, f, g) if math.isfinite(g) else None
                    )
                    if trial is None or not 0 < trial < a:
                        trial = _quad_min(0.0, value0, slope0, a, f)
                    if trial is not None:
                        a_new = min(max(trial, self.min_shrink * a), self.shrink * a)
            if a_new == 0 or a_new == a:
                status = (
                    LineSearchStatus.NON_FINITE
                    if not math.isfinite(f)
                    else LineSearchStatus.INTERVAL_TOO_SMALL
                )
                return _result(status, a, f, g, aux, n)
            a = a_new
        status = LineSearchStatus.MAX_TRIALS if math.isfinite(f) else LineSearchStatus.NON_FINITE
        return _result(status, tried, f, g, aux, self.max_trials, f" ({self.max_trials} trials)")


# optax / scipy / torch spellings of the searches' arguments
_BACKTRACKING_ALIASES = {"max_backtracking_steps": "max_trials", "slope_rtol": "c1"}
_BACKTRACKING_HINTS = {
    "decrease_factor": "fnopt shrinks a failed trial by interpolation, by a factor in "
    "[min_shrink, shrink]; for a fixed factor pass shrink=... and interpolate=False",
}
_WOLFE_ALIASES = {
    "max_linesearch_steps": "max_trials",
    "max_ls": "max_trials",
    "slope_rtol": "c1",
    "curv_rtol": "c2",
    "max_stepsize": "max_step",
    "amax": "max_step",
}


def backtracking(
    c1: float = 1e-4,
    *,
    shrink: float = 0.5,
    min_shrink: float = 0.1,
    max_trials: int = 30,
    interpolate: bool = True,
    f_tol: float = 1e-10,
    **aliases: Any,
) -> Backtracking:
    """Armijo backtracking line search.

    Starting from :math:`\\alpha_0` (``init_step``), accept the first trial with
    sufficient decrease

    .. math:: \\phi(\\alpha) \\le \\phi(0) + c_1 \\alpha \\phi'(0),

    otherwise shrink :math:`\\alpha` to the minimiser of the cubic through
    :math:`(0, \\phi(0), \\phi'(0))` and :math:`(\\alpha, \\phi(\\alpha), \\phi'(\\alpha))`
    (the slope comes free with every gradient evaluation; a quadratic when the cubic
    has no minimiser), safeguarded to :math:`[\\rho_{\\min}\\alpha, \\rho\\alpha]`
    with :math:`\\rho` = ``shrink`` and :math:`\\rho_{\\min}` = ``min_shrink``. A trial with
    a NaN/+inf loss is treated as too long and shrunk by :math:`\\rho_{\\min}`; a loss of
    -inf is taken at once (nothing is lower).

    Args:
      c1: the sufficient-decrease constant, in (0, 1).
      shrink: the largest factor a failed trial is shrunk by (plain backtracking's
        factor when ``interpolate=False``), in (0, 1).
      min_shrink: the smallest factor, in (0, ``shrink``].
      max_trials: the most evaluations of :math:`\\phi` (>= 1).
      interpolate: use interpolation; ``False`` multiplies by ``shrink``.
      f_tol: losses within ``f_tol`` (relative; at least 1000 machine epsilons of the
        params' dtype inside :func:`line_search`) of the starting loss are round-off;
        there a step is accepted by the slope alone (Hager & Zhang's approximate Wolfe
        condition :math:`\\phi'(\\alpha) \\le (1 - 2 c_1)|\\phi'(0)|`); 0 disables it.
      **aliases: optax's names ``max_backtracking_steps`` (for ``max_trials``) and
        ``slope_rtol`` (for ``c1``); ``decrease_factor`` raises a ``TypeError``
        pointing to ``shrink``.

    Returns:
      A :class:`Backtracking` search: ``search(phi, value0, slope0, init_step)``
      returns a :class:`LineSearchResult`.

    >>> phi = lambda a: ((a - 0.3) ** 2, 2.0 * (a - 0.3), None)
    >>> r = backtracking()(phi, 0.09, -0.6, 1.0)
    >>> r.status.value, round(r.step, 6), r.n_evals
    ('converged', 0.3, 2)

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 3.1 and
    section 3.5.
    """
    if aliases:
        got = translate_kwargs(
            "backtracking", aliases, _BACKTRACKING_ALIASES, _BACKTRACKING_HINTS,
            {"c1": (c1, 1e-4), "max_trials": (max_trials, 30)},
        )
        c1, max_trials = got.get("c1", c1), got.get("max_trials", max_trials)
    _check_open_unit("c1", c1)
    _check_open_unit("shrink", shrink)
    check_positive("min_shrink", min_shrink)
    if min_shrink > shrink:
        raise ValueError(f"min_shrink: expected a number in (0, shrink={shrink}], got {min_shrink}")
    _check_trials(max_trials)
    if not isinstance(interpolate, bool):
        raise TypeError(f"interpolate: expected a bool, got {type(interpolate).__name__}")
    check_nonnegative("f_tol", f_tol)
    return Backtracking(
        float(c1), float(shrink), float(min_shrink), max_trials, interpolate, float(f_tol)
    )


@attrs.frozen(slots=True)
class StrongWolfe(LineSearch):
    """The strong-Wolfe bracketing/zoom search; build it with :func:`strong_wolfe`."""

    c1: float = 1e-4
    c2: float = 0.9
    max_trials: int = 30
    max_step: float = 1e10
    xtol: float = 1e-12
    f_tol: float = 1e-10

    def _search(
        self, phi: Phi, value0: float, slope0: float, init_step: float, f_tol: float
    ) -> LineSearchResult:
        c1, c2 = self.c1, self.c2
        a_prev, f_prev, g_prev, aux_prev = 0.0, value0, slope0, None
        a = min(init_step, self.max_step)
        upper = self.max_step  # no step beyond this (a non-finite trial lowers it)
        n = 0
        f = g = math.nan
        aux: Any = None
        # Bracketing phase (Alg. 3.5).
        while n < self.max_trials:
            f, g, aux = phi(a)
            n += 1
            if f == -math.inf:  # nothing is lower: the step is taken
                return _result(LineSearchStatus.CONVERGED, a, f, g, aux, n)
            if not _finite(f, g):
                upper = a
                a = a_prev + 0.25 * (a - a_prev)
                if a <= a_prev * (1 + self.xtol):
                    break
                continue
            noisy = abs(f - value0) <= f_tol * abs(value0)
            if not _decrease_ok(a, f, g, value0, slope0, c1, f_tol) or (
                n > 1 and a_prev > 0 and f >= f_prev and not noisy
            ):
                return self._zoom(phi, value0, slope0, n,
                                  (a_prev, f_prev, g_prev, aux_prev), (a, f, g, aux), False, f_tol)
            if abs(g) <= -c2 * slope0:
                return _result(LineSearchStatus.CONVERGED, a, f, g, aux, n)
            if g >= 0:
                return self._zoom(phi, value0, slope0, n,
                                  (a, f, g, aux), (a_prev, f_prev, g_prev, aux_prev), True, f_tol)
            if a >= upper:
                break
            # Extrapolate into [a + 1.1 (a - a_prev), a + 4 (a - a_prev)] (from the first
            # trial: (a, 5a], as MINPACK's dcsrch, whose interval then starts at 0).
            lo_b = a if a_prev == 0 else a + 1.1 * (a - a_prev)
            hi_b = a + 4.0 * (a - a_prev)
            a_new = _extrapolate(a_prev, f_prev, g_prev, a, f, g, lo_b, hi_b)
            a_new = min(a_new, upper if upper == self.max_step else 0.5 * (a + upper))
            a_prev, f_prev, g_prev, aux_prev = a, f, g, aux
            a = a_new
        if a_prev > 0:  # a point with sufficient decrease, but no curvature condition
            return _result(LineSearchStatus.MAX_TRIALS if _finite(f, g) else
                           LineSearchStatus.NON_FINITE, a_prev, f_prev, g_prev, aux_prev, n)
        status = LineSearchStatus.MAX_TRIALS if _finite(f, g) else LineSearchStatus.NON_FINITE
        return _result(status, a, f, g, aux, n)

    def _zoom(
        self,
        phi: Phi,
        value0: float,
        slope0: float,
        n: int,
        lo: tuple[float, float, float, Any],
        hi: tuple[float, float, float, Any],
        latest_is_lo_at_start: bool,
        f_tol: float,
    ) -> LineSearchResult:
        """Alg. 3.6: ``lo`` satisfies sufficient decrease with the lowest value so far
        and its slope points towards ``hi``."""
        c1, c2 = self.c1, self.c2
        a_lo, f_lo, g_lo, aux_lo = lo
        a_hi, f_hi, g_hi, _ = hi
        hi_ok = _finite(f_hi, g_hi)
        latest_is_lo = latest_is_lo_at_start
        while n < self.max_trials:
            width = abs(a_hi - a_lo)
            if width <= self.xtol * max(a_lo, a_hi):
                return self._fail(LineSearchStatus.INTERVAL_TOO_SMALL, lo, hi, n)
            trial = None
            if hi_ok:
                noise = f_tol * abs(value0)
                if max(abs(f_lo - value0), abs(f_hi - value0)) <= noise and g_lo != g_hi:
                    # losses within round-off: the secant step on the slopes
                    trial = a_lo - g_lo * (a_hi - a_lo) / (g_hi - g_lo)
                    trial = trial if math.isfinite(trial) else None
                else:
                    trial = _interpolate(a_lo, f_lo, g_lo, a_hi, f_hi, g_hi, latest_is_lo)
            if trial is None:
                trial = 0.5 * (a_lo + a_hi)
            else:  # keep the trial 10% of the bracket away from either end
                b_lo = a_lo + 0.1 * (a_hi - a_lo)
                b_hi = a_hi - 0.1 * (a_hi - a_lo)
                trial = min(max(trial, min(b_lo, b_hi)), max(b_lo, b_hi))
            a = trial
            f, g, aux = phi(a)
            n += 1
            if f == -math.inf:  # nothing is lower: the step is taken
                return _result(LineSearchStatus.CONVERGED, a, f, g, aux, n)
            if (
                not _finite(f, g)
                or not _decrease_ok(a, f, g, value0, slope0, c1, f_tol)
                or (f >= f_lo and abs(f - value0) > f_tol * abs(value0))
            ):
                a_hi, f_hi, g_hi = a, f, g
                hi_ok = _finite(f, g)
                hi = (a_hi, f_hi, g_hi, aux)
                latest_is_lo = False
                continue
            if abs(g) <= -c2 * slope0:
                return _result(LineSearchStatus.CONVERGED, a, f, g, aux, n)
            if g * (a_hi - a_lo) >= 0:
                a_hi, f_hi, g_hi = a_lo, f_lo, g_lo
                hi_ok = True
                hi = lo
            a_lo, f_lo, g_lo, aux_lo = a, f, g, aux
            lo = (a_lo, f_lo, g_lo, aux_lo)
            latest_is_lo = True
        return self._fail(LineSearchStatus.MAX_TRIALS, lo, hi, n)

    def _fail(
        self,
        status: LineSearchStatus,
        lo: tuple[float, float, float, Any],
        hi: tuple[float, float, float, Any],
        n: int,
    ) -> LineSearchResult:
        best = lo if lo[0] > 0 else hi
        return _result(status, best[0], best[1], best[2], best[3], n, f" ({n} trials)")


def strong_wolfe(
    c1: float = 1e-4,
    c2: float = 0.9,
    *,
    max_trials: int = 30,
    max_step: float = 1e10,
    xtol: float = 1e-12,
    f_tol: float = 1e-10,
    **aliases: Any,
) -> StrongWolfe:
    """Line search for the strong Wolfe conditions (Nocedal & Wright Alg. 3.5/3.6).

    Finds :math:`\\alpha > 0` with

    .. math::
        \\phi(\\alpha) \\le \\phi(0) + c_1 \\alpha \\phi'(0), \\qquad
        |\\phi'(\\alpha)| \\le c_2 |\\phi'(0)|.

    Starting from ``init_step``, the bracketing phase extrapolates until the interval
    brackets an acceptable step: where the slope's magnitude shrank, the farther of the
    cubic and the secant step on the slopes (Moré & Thuente's rule, as MINPACK's
    ``dcsrch``), else the longest step; kept to growth between 2.1x and 5x (the first
    extrapolation: up to 5x, no lower safeguard, as ``dcsrch``); the
    zoom phase then shrinks the bracket with the minimiser of the cubic through its
    endpoints, kept at least 10% of the width away from either end (quadratic, then
    bisection, when the cubic is unusable). A NaN/+inf trial counts as too long; a
    trial with loss -inf is taken at once (nothing is lower).

    Args:
      c1: the sufficient-decrease constant, in (0, ``c2``).
      c2: the curvature constant, in (``c1``, 1); 0.9 for quasi-Newton methods,
        about 0.1 for nonlinear conjugate gradients.
      max_trials: the most evaluations of :math:`\\phi` (>= 1).
      max_step: the largest step tried.
      xtol: stop (``interval_too_small``) when the bracket is narrower than
        ``xtol`` times its right end.
      f_tol: losses within ``f_tol`` (relative; at least 1000 machine epsilons of the
        params' dtype inside :func:`line_search`) of the starting loss are round-off;
        there a step is accepted by the slope alone (Hager & Zhang's approximate Wolfe
        condition :math:`\\phi'(\\alpha) \\le (1 - 2 c_1)|\\phi'(0)|`); 0 disables it.
      **aliases: optax's names ``max_linesearch_steps`` (``max_trials``),
        ``slope_rtol`` (``c1``), ``curv_rtol`` (``c2``), ``max_stepsize``
        (``max_step``); scipy's ``amax`` (``max_step``); torch's ``max_ls``
        (``max_trials``).

    Returns:
      A :class:`StrongWolfe` search: ``search(phi, value0, slope0, init_step)`` returns
      a :class:`LineSearchResult`.

    >>> phi = lambda a: ((a - 3.0) ** 2, 2.0 * (a - 3.0), None)   # minimum at 3
    >>> r = strong_wolfe(c2=0.1)(phi, 9.0, -6.0, 1.0)
    >>> r.status.value, round(r.step, 6), r.n_evals
    ('converged', 3.0, 2)

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 3.5, 3.6 and
    eq. 3.59; J. J. Moré and D. J. Thuente, "Line search algorithms with guaranteed
    sufficient decrease", ACM TOMS 20 (1994).
    """
    if aliases:
        got = translate_kwargs(
            "strong_wolfe", aliases, _WOLFE_ALIASES, None,
            {"c1": (c1, 1e-4), "c2": (c2, 0.9), "max_trials": (max_trials, 30),
             "max_step": (max_step, 1e10)},
        )
        c1, c2 = got.get("c1", c1), got.get("c2", c2)
        max_trials, max_step = got.get("max_trials", max_trials), got.get("max_step", max_step)
    _check_open_unit("c1", c1)
    _check_open_unit("c2", c2)
    if c1 >= c2:
        raise ValueError(f"c2: expected c1 < c2 < 1, got c1={c1}, c2={c2}")
    _check_trials(max_trials)
    check_positive("max_step", max_step)
    check_positive("xtol", xtol)
    check_nonnegative("f_tol", f_tol)
    return StrongWolfe(
        float(c1), float(c2), max_trials, float(max_step), float(xtol), float(f_tol)
    )


def _check_open_unit(name: str, value: Any) -> None:
    check_positive(name, value)
    if value >= 1:
        raise ValueError(f"{name}: expected a number in (0, 1), got {value}")


def _check_trials(max_trials: Any) -> None:
    if isinstance(max_trials, bool) or not isinstance(max_trials, int):
        raise TypeError(f"max_trials: expected an int, got {type(max_trials).__name__}")
    if max_trials < 1:
        raise ValueError(f"max_trials: expected an int >= 1, got {max_trials}")


# -- the optimizer wrapper -------------------------------------------------------------


class LineSearchState(NamedTuple):
    """State of an optimizer made by :func:`line_search`.

    Attributes:
      count: steps taken.
      value: the loss at the params returned by the last step (``value_at="output"``),
        a 0-d array/tensor of the params' dtype.
      grad_norm: the gradient norm there (likewise).
      grads: the gradient there, reused by the next step (zeros, with the structure,
        shapes and dtypes of the params, until the first step evaluates it: it is
        valid when ``count > 0``).
      learning_rate: the step length :math:`\\alpha` accepted by the last search.
      prev_value: the loss at the params passed into the last step.
      n_trials: evaluations made by the last search.
      inner: the state of the direction :class:`fnopt.Transform`.
    """

    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    grads: Any
    learning_rate: float
    prev_value: Any
    n_trials: int
    inner: Any


InitialStep = Literal["unit", "quadratic"]


def line_search(
    direction: Transform,
    search: LineSearch | None = None,
    *,
    initial_step: InitialStep = "unit",
    scale_first: bool = False,
    first_scale: float = 1.0,
) -> Optimizer:
    """Lift a direction :class:`fnopt.Transform` to an optimizer that searches along it.

    Each step takes the gradient :math:`g_k` at :math:`x_k` (cached from the previous
    step; evaluated on the first), asks ``direction`` for :math:`d_k` (an *update*: a
    descent direction, e.g. :math:`-g_k`), and runs ``search`` on
    :math:`\\phi(\\alpha) = f(x_k + \\alpha d_k)`:

    .. math:: x_{k+1} = x_k + \\alpha_k d_k .

    The loss and gradient at :math:`x_{k+1}` come from the search's last accepted trial
    and are stored in the state (``value_at="output"``), so a run of :math:`K` steps
    costs :math:`1 + \\sum_k` (trials of step :math:`k`) ``grad_fn`` calls. A step at
    a zero gradient returns the params unchanged; a failed search raises
    :class:`fnopt.StepFailed` with reason ``line_search_failed`` — unless it failed
    only because the iterate is already a minimiser to round-off (the loss is flat to
    round-off along the direction, or the search reached the resolution of the params
    with the gradient at round-off level): then the reason is the converged
    ``loss_change_below`` or ``param_change_below``, so :func:`fnopt.fixed_point`
    stops converged at the iterate it had. Line searches are for
    deterministic objectives: with minibatches (``*batch``) the cached loss and gradient
    belong to the previous step's batch.

    Args:
      direction: a :class:`fnopt.Transform` mapping ``(grads, state, params)`` to a
        descent direction (it is called with the params of the current iterate).
      search: :func:`strong_wolfe` (default) or :func:`backtracking`, or any
        :class:`LineSearch`.
      initial_step: the first trial :math:`\\alpha_0` of each search after the first
        step: ``"unit"`` — 1 (Newton and quasi-Newton directions are scaled);
        ``"quadratic"`` — :math:`\\min(1, 2.02 (f_k - f_{k-1}) / \\phi'(0))`
        (Nocedal & Wright eq. 3.60, as in scipy; for gradient and CG directions,
        whose length carries no step information).
      scale_first: start the very first search at :math:`\\min(1, s/\\|d_0\\|)`
        instead of 1 (for directions whose first step is :math:`-g_0`, as in
        quasi-Newton methods), :math:`s` = ``first_scale``.
      first_scale: :math:`s` above (1; scipy's BFGS and CG use 1.01).

    A first trial too short to move the params (:math:`\\alpha_0 \\|d\\| \\le \\epsilon
    \\|x\\|`, a badly scaled loss) is raised to that resolution, where scipy's search
    gets by extrapolations whose evaluations its memoisation makes free.

    Returns:
      An :class:`fnopt.Optimizer` with ``value_at="output"``.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.line_search(fnopt.scale(-1.0), fnopt.backtracking())
    >>> grad_fn = lambda p: (0.5 * (p @ p), p)
    >>> p, s = opt.step(np.array([2.0, -1.0]), grad_fn, opt.init(np.array([2.0, -1.0])))
    >>> p, float(s.value), s.learning_rate
    (array([0., 0.]), 0.0, 1.0)
    """
    if not isinstance(direction, Transform):
        raise TypeError(f"direction: expected a Transform, got {type(direction).__name__}")
    if search is None:
        search = strong_wolfe()
    if not isinstance(search, LineSearch):
        raise TypeError(
            f"search: expected a line search (fnopt.backtracking(...) or "
            f"fnopt.strong_wolfe(...)), got {type(search).__name__}"
        )
    if initial_step not in ("unit", "quadratic"):
        raise ValueError(f"initial_step: expected 'unit' or 'quadratic', got {initial_step!r}")
    if not isinstance(scale_first, bool):
        raise TypeError(f"scale_first: expected a bool, got {type(scale_first).__name__}")
    if isinstance(first_scale, bool) or not isinstance(first_scale, (int, float)):
        raise TypeError(f"first_scale: expected a number, got {type(first_scale).__name__}")
    if not (math.isfinite(first_scale) and first_scale > 0):
        raise ValueError(f"first_scale: expected a finite number > 0, got {first_scale!r}")
    searcher = _Searcher(direction, search, initial_step, scale_first, float(first_scale))
    return Optimizer(searcher.init, searcher.step, "output")


@attrs.frozen
class _Searcher:
    """The ``init`` and ``step`` of an optimizer made by :func:`line_search` (its
    arguments, checked)."""

    direction: Transform
    search: LineSearch
    initial_step: InitialStep
    scale_first: bool
    first_scale: float = 1.0

    def init(self, params: Params) -> LineSearchState:
        be = check_params(params)  # float32/64, one backend, non-empty: named errors
        leaves = tree.leaves(params)
        nan = be.scalar(float("nan"), leaves[0])
        # every field has its final structure from the start: the cached gradient is
        # allocated here (zeros) and filled by the first step (valid when count > 0)
        return LineSearchState(
            0, nan, nan, tree.zeros_like(params), 0.0, nan, 0, self.direction.init(params)
        )

    def step(
        self, params: Params, grad_fn: GradFn, state: State, *batch: Any
    ) -> tuple[Params, LineSearchState]:
        be = _backend.of(params)
        to_float = be.to_float
        leaf0 = tree.leaves(params)[0]
        eps = float(np.finfo(_dtype_name(leaf0)).eps)
        if state.count == 0:  # nothing cached yet
            # kept in the state until the next step: fnopt's own copies
            value, grads = call_grad_fn(grad_fn, params, batch, keep=True)
            # state.value like state.grad_norm: a 0-d array/tensor of the params' dtype
            value, grads = be.astype(value, leaf0), tree._as_arrays(grads)
            gnorm = tree.global_norm(grads)
        else:
            value, grads, gnorm = state.value, state.grads, state.grad_norm
        f0 = to_float(value)
        if to_float(gnorm) == 0.0:
            return params, LineSearchState(
                state.count + 1, value, gnorm, grads, 0.0, value, 0, state.inner
            )
        d, inner = self.direction.update(grads, state.inner, params)
        slope0 = to_float(tree.vdot(grads, d))
        a0 = self.first_trial(state, f0, slope0, d, to_float)
        # a first trial below the params' resolution would not move them (a badly scaled
        # loss): start where the step reaches it, as scipy's search gets there by free
        # (memoised) extrapolations
        dnorm = to_float(tree.global_norm(d))
        floor = eps * to_float(tree.global_norm(params))
        if 0 < a0 * dnorm <= floor:
            a0 = floor / dnorm
        where = f"at step {state.count + 1} (loss {f0:.6g}, slope {slope0:.3g})"
        if slope0 >= 0.0 and f0 != 0.0 and slope0 * a0 <= eps * abs(f0):
            raise StepFailed(  # converged: no descent left beyond the loss's round-off
                Reason.LOSS_CHANGE_BELOW,
                f"no step along the direction can change the loss beyond round-off {where}",
            )
        trials: list[tuple[float, float, float]] = []

        def phi(alpha: float) -> tuple[float, float, Any]:
            x = tree.axpy(alpha, d, params)
            v, g = call_grad_fn(grad_fn, x, batch, keep=True)  # kept across trials
            trials.append((alpha, to_float(v), to_float(tree.vdot(g, d))))
            return trials[-1][1], trials[-1][2], (x, v, g)

        res = self.search(phi, f0, slope0, a0, eps=eps)
        if not res.ok:
            xnorm = to_float(tree.global_norm(params))
            raise _search_failed(res, trials, f0, slope0, to_float(gnorm), xnorm, eps,
                                 where, state.count + 1)
        x1, v1, g1 = res.aux
        g1 = tree._as_arrays(g1)  # NumPy-scalar gradients of 0-d leaves: 0-d arrays
        return x1, LineSearchState(
            state.count + 1, be.astype(v1, leaf0), tree.global_norm(g1), g1, res.step, value,
            res.n_evals, inner,
        )

    def first_trial(self, state: State, f0: float, slope0: float, d: Any,
                    to_float: Callable[[Any], float]) -> float:
        """The first trial step :math:`\\alpha_0` of this search (``initial_step``,
        ``scale_first``)."""
        a0 = 1.0
        if state.count == 0 or not math.isfinite(to_float(state.prev_value)):
            if self.scale_first:
                a0 = min(1.0, self.first_scale / max(to_float(tree.global_norm(d)), 1e-300))
        elif self.initial_step == "quadratic":
            df = f0 - to_float(state.prev_value)
            if slope0 < 0 and df < 0:
                a0 = min(1.0, 2.02 * df / slope0)
        return a0


def _search_failed(res: LineSearchResult, trials: list[tuple[float, float, float]],
                   f0: float, slope0: float, gnorm: float, xnorm: float, eps: float,
                   where: str, step: int) -> StepFailed:
    """The :class:`fnopt.StepFailed` for a failed search at step number ``step``: a
    converged reason when the iterate is a minimiser to round-off, else
    ``line_search_failed``."""
    converged = _stalled_at_roundoff(res.status, trials, f0, slope0, gnorm, xnorm, eps)
    if converged is not None:
        return StepFailed(converged, f"{_ROUNDOFF_MESSAGES[converged]} {where}")
    return StepFailed(
        Reason.LINE_SEARCH_FAILED,
        f"{res.status.value} at step {step}: {res.message} "
        f"(loss {f0:.6g}, slope {slope0:.3g}, last step {res.step:.3g})",
    )


_ROUNDOFF_MESSAGES = {
    Reason.LOSS_CHANGE_BELOW: "the loss is flat to round-off along the direction",
    Reason.PARAM_CHANGE_BELOW: "the line search reached the resolution of the params with "
    "the gradient at round-off level (a minimiser to round-off)",
}


def _stalled_at_roundoff(
    status: LineSearchStatus,
    trials: list[tuple[float, float, float]],
    f0: float,
    slope0: float,
    gnorm: float,
    xnorm: float,
    eps: float,
) -> Reason | None:
    """Whether a failed search failed only because the iterate is already a minimiser
    to round-off, and then the converged reason to stop with (else ``None``).

    Only searches that ran out of trials or of bracket width qualify. ``trials`` holds
    :math:`(\\alpha, \\phi(\\alpha), \\phi'(\\alpha))` for each trial. Converged when
    either (a) every finite trial is within the loss's round-off
    :math:`\\delta = 1000\\,\\epsilon |f_0|` of :math:`f_0`: the loss is flat along the
    direction (``loss_change_below``); or (b) the search reached the resolution of the
    params — a trial returned exactly :math:`(f_0, \\phi'(0))` (its step did not move
    them), or two different steps returned the same loss and slope — and the gradient
    is at round-off level, :math:`\\|g\\| \\max(1, \\|x\\|) \\le \\sqrt{\\epsilon}
    \\max(1, |f_0|)` (``param_change_below``). The gradient test keeps a wrong gradient
    (a direction that only looks like descent) a failure; like an absolute tolerance,
    it assumes the loss and params are of order one or larger.
    """
    if status not in (LineSearchStatus.MAX_TRIALS, LineSearchStatus.INTERVAL_TOO_SMALL):
        return None
    finite = [t for t in trials if _finite(t[1], t[2])]
    if not finite:
        return None
    noise = 1e3 * eps * abs(f0)
    if all(abs(f - f0) <= noise for _, f, _ in finite):
        return Reason.LOSS_CHANGE_BELOW
    if gnorm * max(1.0, xnorm) > math.sqrt(eps) * max(1.0, abs(f0)):
        return None
    seen = {(f0, slope0): 0.0}
    for a, f, g in finite:
        if seen.setdefault((f, g), a) != a:
            return Reason.PARAM_CHANGE_BELOW
    return None
