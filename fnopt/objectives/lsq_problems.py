"""Nonlinear least-squares test problems: residuals with hand-written Jacobians.

The sums of squares of :mod:`fnopt.problems` (Rosenbrock, Powell singular, Wood, ...)
in residual form, and more of the Moré–Garbow–Hillstrom collection (Powell badly
scaled, Bard, Gaussian, Meyer, Gulf, Kowalik–Osborne, Brown–Dennis, Osborne 1 and 2,
Biggs EXP6, Watson, Penalty I, trigonometric, Brown almost-linear, linear full rank).
Residuals work on NumPy arrays and torch tensors alike; Jacobians are NumPy.
``f_min`` is the known minimum of :math:`\\sum r_i^2` (MGH's convention; scipy's
``cost`` is half of it).

>>> import fnopt
>>> p = fnopt.lsq_problems.by_name("bard")
>>> p.m, p.n, round(p.f_min, 8)
(15, 3, 0.00821488)

The collection, its start points and minima: Moré, Garbow and Hillstrom (ACM TOMS, 1981;
the full reference is in :mod:`fnopt.objectives.problems`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

import attrs
import numpy as np

from fnopt import backend as _backend
from fnopt.objectives import problems as _problems
from fnopt.objectives._objective import (
    Array,
    Providers,
    ReferenceObjective,
    concat,
    const,
    gradient_provider,
    residual_provider,
    xp_of,
)

__all__ = ["LeastSquaresProblem", "PROBLEMS", "by_name", "names"]


@attrs.frozen(eq=False)
class LeastSquaresProblem(ReferenceObjective):
    """A least-squares test problem (an :class:`fnopt.objectives.Objective` whose loss
    is :math:`\\sum_i r_i(x)^2`, reference form NumPy float64).

    Attributes:
      name: short name.
      m, n: numbers of residuals and variables.
      x0: the standard start point (NumPy float64).
      f_min: the known minimum of :math:`\\sum r_i^2` (a local one where MGH list it).
      residuals: ``residuals(x)`` on NumPy or torch.
      jacobian: the hand-written Jacobian (NumPy, ``m x n``).
      source: where the problem comes from.
    """

    name: str
    m: int
    n: int
    x0: np.ndarray
    f_min: float
    residuals: Callable[[Array], Array]
    jacobian: Callable[[np.ndarray], np.ndarray]
    source: str = ""

    @property
    def loss(self) -> Callable[[Array], Array]:
        """:math:`\\sum_i r_i(x)^2` on NumPy or torch."""
        return functools.partial(_sum_of_squares, self.residuals)

    @property
    def minimizers(self) -> tuple[Any, ...]:
        """``()``: only the minimum value ``f_min`` is listed."""
        return ()

    @property
    def min_value(self) -> float:
        """``f_min``."""
        return self.f_min

    def start(self, scale: float = 1.0, backend: Literal["numpy", "torch"] = "numpy") -> Any:
        """``scale * x0`` (MGH also use 10 x0 and 100 x0) as a fresh array or tensor."""
        return _backend.array(self.x0 * scale, backend, np.float64)

    def provider(self, backend: Literal["numpy", "torch"] = "numpy") -> Any:
        """A residual provider: the hand-written Jacobian (NumPy) or ``torch.func``."""
        return residual_provider(backend, self.residuals, self.jacobian)

    def _derivatives(self, backend: str) -> Providers:
        grad = functools.partial(_sum_of_squares_grad, self.residuals, self.jacobian)
        return Providers(gradient_provider(backend, self.loss, grad), None, None)


def _sum_of_squares(residuals: Callable[[Array], Array], x: Array) -> Array:
    r = residuals(x)
    return (r * r).sum()


def _sum_of_squares_grad(residuals: Callable[[Array], Array],
                         jacobian: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> Any:
    return 2.0 * jacobian(x).T @ residuals(x)



def _from_problem(name: str) -> LeastSquaresProblem:
    p = _problems.by_name(name)
    assert p.residuals is not None and p.jacobian is not None
    m = int(np.size(p.residuals(p.starts[0])))
    return LeastSquaresProblem(p.name, m, p.dim, p.starts[0], p.f_min, p.residuals,
                               p.jacobian, p.source)


def _powell_badly_scaled() -> LeastSquaresProblem:
    def r(x: Array) -> Array:
        xp = xp_of(x)
        return concat(x, [1e4 * x[0] * x[1] - 1.0, xp.exp(-x[0]) + xp.exp(-x[1]) - 1.0001])

    def jac(x: np.ndarray) -> np.ndarray:
        return np.array([[1e4 * x[1], 1e4 * x[0]], [-np.exp(-x[0]), -np.exp(-x[1])]])

    return LeastSquaresProblem("powell_badly_scaled", 2, 2, np.array([0.0, 1.0]), 0.0, r, jac,
                               "MGH 3")


_BARD_Y = [0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34,
           2.10, 4.39]


def _bard() -> LeastSquaresProblem:
    u = np.arange(1.0, 16.0)
    v = 16.0 - u
    w = np.minimum(u, v)
    y = np.array(_BARD_Y)

    def r(x: Array) -> Array:
        return const(x, y) - (x[0] + const(x, u) / (const(x, v) * x[1] + const(x, w) * x[2]))

    def jac(x: np.ndarray) -> np.ndarray:
        den2 = (v * x[1] + w * x[2]) ** 2
        return np.stack([-np.ones(15), u * v / den2, u * w / den2], 1)

    return LeastSquaresProblem("bard", 15, 3, np.array([1.0, 1.0, 1.0]), 8.21487730657e-3, r,
                               jac, "MGH 8")


_GAUSS_Y = [0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989, 0.3521, 0.2420,
            0.1295, 0.0540, 0.0175, 0.0044, 0.0009]


def _gaussian() -> LeastSquaresProblem:
    t = (8.0 - np.arange(1.0, 16.0)) / 2.0
    y = np.array(_GAUSS_Y)

    def r(x: Array) -> Array:
        d = const(x, t) - x[2]
        return x[0] * xp_of(x).exp(-0.5 * x[1] * d * d) - const(x, y)

    def jac(x: np.ndarray) -> np.ndarray:
        d = t - x[2]
        e = np.exp(-0.5 * x[1] * d * d)
        return np.stack([e, -0.5 * x[0] * e * d * d, x[0] * e * x[1] * d], 1)

    return LeastSquaresProblem("gaussian", 15, 3, np.array([0.4, 1.0, 0.0]), 1.12793276961e-8,
                               r, jac, "MGH 9")


_MEYER_Y = [34780.0, 28610.0, 23650.0, 19630.0, 16370.0, 13720.0, 11540.0, 9744.0, 8261.0,
            7030.0, 6005.0, 5147.0, 4427.0, 3820.0, 3307.0, 2872.0]


def _meyer() -> LeastSquaresProblem:
    t = 45.0 + 5.0 * np.arange(1.0, 17.0)
    y = np.array(_MEYER_Y)

    def r(x: Array) -> Array:
        return x[0] * xp_of(x).exp(x[1] / (const(x, t) + x[2])) - const(x, y)

    def jac(x: np.ndarray) -> np.ndarray:
        den = t + x[2]
        e = np.exp(x[1] / den)
        return np.stack([e, x[0] * e / den, -x[0] * x[1] * e / den**2], 1)

    return LeastSquaresProblem("meyer", 16, 3, np.array([0.02, 4000.0, 250.0]), 87.9458551718,
                               r, jac, "MGH 10")


def _gulf(m: int = 99) -> LeastSquaresProblem:
    t = np.arange(1.0, m + 1.0) / 100.0
    y = 25.0 + (-50.0 * np.log(t)) ** (2.0 / 3.0)

    def r(x: Array) -> Array:
        a = xp_of(x).abs(const(x, y) - x[1]) ** x[2]
        return xp_of(x).exp(-a / x[0]) - const(x, t)

    def jac(x: np.ndarray) -> np.ndarray:
        d = y - x[1]
        ad = np.abs(d)
        a = ad ** x[2]
        e = np.exp(-a / x[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            dx2 = np.where(ad > 0, e * x[2] * ad ** (x[2] - 1.0) * np.sign(d) / x[0], 0.0)
            dx3 = np.where(ad > 0, -e * a * np.log(ad) / x[0], 0.0)
        return np.stack([e * a / x[0] ** 2, dx2, dx3], 1)

    return LeastSquaresProblem("gulf", m, 3, np.array([5.0, 2.5, 0.15]), 0.0, r, jac,
                               f"MGH 11 (m = {m})")


_KO_Y = [0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235,
         0.0246]
_KO_U = [4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625]


def _kowalik_osborne() -> LeastSquaresProblem:
    u, y = np.array(_KO_U), np.array(_KO_Y)

    def r(x: Array) -> Array:
        uu = const(x, u)
        return const(x, y) - x[0] * (uu * uu + uu * x[1]) / (uu * uu + uu * x[2] + x[3])

    def jac(x: np.ndarray) -> np.ndarray:
        num, den = u * u + u * x[1], u * u + u * x[2] + x[3]
        return np.stack([-num / den, -x[0] * u / den, x[0] * num * u / den**2,
                         x[0] * num / den**2], 1)

    return LeastSquaresProblem("kowalik_osborne", 11, 4, np.array([0.25, 0.39, 0.415, 0.39]),
                               3.07505603849e-4, r, jac, "MGH 15")


def _brown_dennis(m: int = 20) -> LeastSquaresProblem:
    t = np.arange(1.0, m + 1.0) / 5.0

    def r(x: Array) -> Array:
        xp, tt = xp_of(x), const(x, t)
        a = x[0] + tt * x[1] - xp.exp(tt)
        b = x[2] + x[3] * xp.sin(tt) - xp.cos(tt)
        return a * a + b * b

    def jac(x: np.ndarray) -> np.ndarray:
        a = x[0] + t * x[1] - np.exp(t)
        b = x[2] + x[3] * np.sin(t) - np.cos(t)
        return np.stack([2 * a, 2 * a * t, 2 * b, 2 * b * np.sin(t)], 1)

    return LeastSquaresProblem("brown_dennis", m, 4, np.array([25.0, 5.0, -5.0, -1.0]),
                               85822.2016263, r, jac, f"MGH 16 (m = {m})")


_OS1_Y = [0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718,
          0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467,
          0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406]


def _osborne1() -> LeastSquaresProblem:
    t = 10.0 * np.arange(33.0)
    y = np.array(_OS1_Y)

    def r(x: Array) -> Array:
        xp, tt = xp_of(x), const(x, t)
        return const(x, y) - (x[0] + x[1] * xp.exp(-tt * x[3]) + x[2] * xp.exp(-tt * x[4]))

    def jac(x: np.ndarray) -> np.ndarray:
        e4, e5 = np.exp(-t * x[3]), np.exp(-t * x[4])
        return np.stack([-np.ones(33), -e4, -e5, x[1] * t * e4, x[2] * t * e5], 1)

    return LeastSquaresProblem("osborne1", 33, 5, np.array([0.5, 1.5, -1.0, 0.01, 0.02]),
                               5.46489469696e-5, r, jac, "MGH 17")


def _biggs_exp6(m: int = 13) -> LeastSquaresProblem:
    t = 0.1 * np.arange(1.0, m + 1.0)
    y = np.exp(-t) - 5.0 * np.exp(-10.0 * t) + 3.0 * np.exp(-4.0 * t)

    def r(x: Array) -> Array:
        xp, tt = xp_of(x), const(x, t)
        return (x[2] * xp.exp(-tt * x[0]) - x[3] * xp.exp(-tt * x[1])
                + x[5] * xp.exp(-tt * x[4]) - const(x, y))

    def jac(x: np.ndarray) -> np.ndarray:
        e1, e2, e5 = np.exp(-t * x[0]), np.exp(-t * x[1]), np.exp(-t * x[4])
        return np.stack([-t * x[2] * e1, t * x[3] * e2, e1, -e2, -t * x[5] * e5, e5], 1)

    return LeastSquaresProblem("biggs_exp6", m, 6, np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0]),
                               5.65565e-3, r, jac, f"MGH 18 (m = {m}; a global minimum 0 too)")


_OS2_Y = [1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725, 0.746, 0.679,
          0.608, 0.655, 0.616, 0.606, 0.602, 0.626, 0.651, 0.724, 0.649, 0.649, 0.694, 0.644,
          0.624, 0.661, 0.612, 0.558, 0.533, 0.495, 0.500, 0.423, 0.395, 0.375, 0.372, 0.391,
          0.396, 0.405, 0.428, 0.429, 0.523, 0.562, 0.607, 0.653, 0.672, 0.708, 0.633, 0.668,
          0.645, 0.632, 0.591, 0.559, 0.597, 0.625, 0.739, 0.710, 0.729, 0.720, 0.636, 0.581,
          0.428, 0.292, 0.162, 0.098, 0.054]


def _osborne2() -> LeastSquaresProblem:
    t = 0.1 * np.arange(65.0)
    y = np.array(_OS2_Y)

    def r(x: Array) -> Array:
        xp, tt = xp_of(x), const(x, t)
        model = x[0] * xp.exp(-tt * x[4])
        for k in range(3):
            model = model + x[1 + k] * xp.exp(-((tt - x[8 + k]) ** 2) * x[5 + k])
        return const(x, y) - model

    def jac(x: np.ndarray) -> np.ndarray:
        j = np.zeros((65, 11))
        e0 = np.exp(-t * x[4])
        j[:, 0], j[:, 4] = -e0, x[0] * t * e0
        for k in range(3):
            d = t - x[8 + k]
            e = np.exp(-d * d * x[5 + k])
            j[:, 1 + k] = -e
            j[:, 5 + k] = x[1 + k] * d * d * e
            j[:, 8 + k] = -2.0 * x[1 + k] * x[5 + k] * d * e
        return j

    x0 = np.array([1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5])
    return LeastSquaresProblem("osborne2", 65, 11, x0, 4.01377362935e-2, r, jac, "MGH 19")


def _watson(n: int = 6) -> LeastSquaresProblem:
    t = np.arange(1.0, 30.0) / 29.0
    powers = np.arange(n, dtype=np.float64)
    tp = t[:, None] ** powers[None, :]  # t^(j-1), j = 1..n
    dtp = np.zeros_like(tp)  # (j-1) t^(j-2)
    dtp[:, 1:] = powers[1:] * t[:, None] ** (powers[1:] - 1.0)

    def r(x: Array) -> Array:
        s1 = const(x, dtp) @ x
        s2 = const(x, tp) @ x
        return concat(x, [s1 - s2 * s2 - 1.0, x[0], x[1] - x[0] ** 2 - 1.0])

    def jac(x: np.ndarray) -> np.ndarray:
        s2 = tp @ x
        j = np.zeros((31, n))
        j[:29] = dtp - 2.0 * s2[:, None] * tp
        j[29, 0] = 1.0
        j[30, 0], j[30, 1] = -2.0 * x[0], 1.0
        return j

    return LeastSquaresProblem(f"watson_{n}", 31, n, np.zeros(n), 2.28767005355e-3, r, jac,
                               f"MGH 20 (n = {n})")


def _penalty1(n: int = 4) -> LeastSquaresProblem:
    a = math.sqrt(1e-5)

    def r(x: Array) -> Array:
        return concat(x, [a * (x - 1.0), (x * x).sum() - 0.25])

    def jac(x: np.ndarray) -> np.ndarray:
        return np.vstack([a * np.eye(n), 2.0 * x[None, :]])

    return LeastSquaresProblem("penalty1", n + 1, n, np.arange(1.0, n + 1.0), 2.24997824e-5,
                               r, jac, f"MGH 23 (n = {n})")


def _trigonometric(n: int = 10) -> LeastSquaresProblem:
    i = np.arange(1.0, n + 1.0)

    def r(x: Array) -> Array:
        xp = xp_of(x)
        return n - xp.cos(x).sum() + const(x, i) * (1.0 - xp.cos(x)) - xp.sin(x)

    def jac(x: np.ndarray) -> np.ndarray:
        return np.tile(np.sin(x), (n, 1)) + np.diag(i * np.sin(x) - np.cos(x))

    return LeastSquaresProblem(f"trigonometric_{n}", n, n, np.full(n, 1.0 / n), 2.79506e-5, r,
                               jac, f"MGH 26 (n = {n}; local minimum 2.79506e-5, global 0)")


def _brown_almost_linear(n: int = 10) -> LeastSquaresProblem:
    def r(x: Array) -> Array:
        head = x[:-1] + x.sum() - (n + 1.0)
        return concat(x, [head, xp_of(x).prod(x) - 1.0])

    def jac(x: np.ndarray) -> np.ndarray:
        j = np.ones((n, n)) + np.eye(n)
        j[-1] = [np.prod(np.delete(x, k)) for k in range(n)]
        return j

    return LeastSquaresProblem(f"brown_almost_linear_{n}", n, n, np.full(n, 0.5), 0.0, r, jac,
                               f"MGH 27 (n = {n})")


def _linear_full_rank(n: int = 5, m: int = 10) -> LeastSquaresProblem:
    a = np.vstack([np.eye(n), np.zeros((m - n, n))]) - 2.0 / m

    def r(x: Array) -> Array:
        return const(x, a) @ x - 1.0

    return LeastSquaresProblem("linear_full_rank", m, n, np.ones(n), float(m - n), r,
                               lambda x: a.copy(), f"MGH 32 (n = {n}, m = {m})")


PROBLEMS: tuple[LeastSquaresProblem, ...] = (
    *(_from_problem(p.name) for p in _problems.PROBLEMS if p.residuals is not None),
    _powell_badly_scaled(),
    _bard(),
    _gaussian(),
    _meyer(),
    _gulf(),
    _kowalik_osborne(),
    _brown_dennis(),
    _osborne1(),
    _biggs_exp6(),
    _osborne2(),
    _watson(6),
    _penalty1(),
    _trigonometric(),
    _brown_almost_linear(),
    _linear_full_rank(),
)
"""Every least-squares problem, in collection order."""


def names() -> list[str]:
    """The problem names."""
    return [p.name for p in PROBLEMS]


def by_name(name: str) -> LeastSquaresProblem:
    """The problem called ``name``; ``ValueError`` listing the names otherwise."""
    for p in PROBLEMS:
        if p.name == name:
            return p
    raise ValueError(f"name: no problem {name!r}; expected one of {names()}")
