"""The Rosenbrock function, written once for :mod:`fnopt.tasks` and :mod:`fnopt.problems`.

.. math:: f(x) = \\sum_{i<n} (a - x_i)^2 + b (x_{i+1} - x_i^2)^2
    = \\sum_i r_i(x)^2, \\quad r = \\big(\\sqrt b (x_{i+1} - x_i^2),\\ a - x_i\\big)_{i<n}.

The task and the test problem differ only in data (start points, which minimiser is
listed); both take their loss, gradient, Hessian (and the problem its residuals and
Jacobian) from :func:`functions`.

>>> f = functions(2, 1.0, 100.0)
>>> round(float(f.loss(np.array([-1.2, 1.0]))), 10), float(abs(f.grad(np.ones(2))).max())
(24.2, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnopt import backend as _backend

__all__ = ["RosenbrockFunctions", "functions", "minimizer"]


class RosenbrockFunctions(NamedTuple):
    """The Rosenbrock function's pieces for one ``(dim, a, b)``.

    Attributes:
      loss: the vectorised loss (NumPy or torch).
      loss_np: the loss the NumPy gradient pairs with (the classic tutorial's scalar
        form in 2-D, else ``loss``).
      grad: the hand-written gradient (NumPy).
      hessian: the hand-written Hessian (NumPy).
      residuals: ``r(x)`` (NumPy or torch), so that ``loss = sum(r ** 2)``.
      jacobian: the hand-written Jacobian of ``residuals`` (NumPy).
    """

    loss: Callable[[Any], Any]
    loss_np: Callable[[Any], Any]
    grad: Callable[[Any], Any]
    hessian: Callable[[Any], Any]
    residuals: Callable[[Any], Any]
    jacobian: Callable[[Any], Any]


def _loss(x: Any, a: float, b: float) -> Any:
    return ((a - x[:-1]) ** 2).sum() + b * ((x[1:] - x[:-1] ** 2) ** 2).sum()


def _loss2(x: Any, a: float, b: float) -> Any:
    x0 = x[0]
    t = x[1] - x0 * x0
    return (a - x0) ** 2 + b * (t * t)


def _grad(x: np.ndarray, a: float, b: float) -> np.ndarray:
    g = np.zeros_like(x)
    t = x[1:] - x[:-1] ** 2
    g[:-1] = -2.0 * (a - x[:-1]) - 4.0 * b * x[:-1] * t
    g[1:] += 2.0 * b * t
    return g


def _grad2(x: np.ndarray, a: float, b: float) -> np.ndarray:
    # the classic tutorial's hand-written partial derivatives, scalar by scalar
    x0 = x[0]
    t = x[1] - x0 * x0
    return np.array([-2.0 * (a - x0) - 4.0 * b * x0 * t, 2.0 * b * t], dtype=x.dtype)


def _hessian(x: Any, a: float, b: float) -> np.ndarray:
    x = np.asarray(x)
    n = x.size
    h = np.zeros((n, n), dtype=x.dtype)
    i = np.arange(n - 1)
    diag = np.zeros(n, dtype=x.dtype)
    diag[:-1] = 2.0 - 4.0 * b * (x[1:] - 3.0 * x[:-1] ** 2)
    diag[1:] += 2.0 * b
    h[i, i + 1] = h[i + 1, i] = -4.0 * b * x[:-1]
    h[np.arange(n), np.arange(n)] = diag
    return h


def _residuals(x: Any, a: float, b: float) -> Any:
    xp = _backend.of_leaves([x], what="x").xp
    return xp.stack([math.sqrt(b) * (x[1:] - x[:-1] ** 2), a - x[:-1]], 1).reshape(-1)


def _jacobian(x: np.ndarray, a: float, b: float) -> np.ndarray:
    del a
    n = x.size
    i = np.arange(n - 1)
    j = np.zeros((2 * (n - 1), n))
    s = math.sqrt(b)
    j[2 * i, i] = -2.0 * s * x[:-1]
    j[2 * i, i + 1] = s
    j[2 * i + 1, i] = -1.0
    return j


def functions(dim: int, a: float, b: float) -> RosenbrockFunctions:
    """The Rosenbrock pieces for ``dim`` variables and coefficients ``a``, ``b``."""
    two = dim == 2
    return RosenbrockFunctions(
        loss=lambda x: _loss(x, a, b),
        loss_np=(lambda x: _loss2(x, a, b)) if two else (lambda x: _loss(x, a, b)),
        grad=(lambda x: _grad2(x, a, b)) if two else (lambda x: _grad(x, a, b)),
        hessian=lambda x: _hessian(x, a, b),
        residuals=lambda x: _residuals(x, a, b),
        jacobian=lambda x: _jacobian(x, a, b),
    )


def minimizer(dim: int, a: float) -> np.ndarray | None:
    """The minimiser where it is known in closed form: :math:`(a, a^2)` in 2-D, all
    ones for ``a = 1``; ``None`` otherwise."""
    if dim == 2:
        return np.array([a, a * a])
    if a == 1.0:
        return np.ones(dim)
    return None
