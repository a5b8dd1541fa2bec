"""Test problems with known minima, for line searches and second-order methods.

Most come from the Moré–Garbow–Hillstrom collection, where the loss is a sum of squares
:math:`f(x) = \\sum_i r_i(x)^2`; for those the residuals are written once (working on
NumPy arrays and torch tensors alike) and the hand-written Jacobian :math:`J` and
residual Hessians give

.. math:: \\nabla f = 2 J^T r, \\qquad \\nabla^2 f = 2 \\big(J^T J + \\textstyle\\sum_i r_i
    \\nabla^2 r_i\\big).

Each :class:`Problem` carries the NumPy loss, gradient and Hessian, its standard start
point(s), the known minimisers and minimum, and builds gradient / Hessian / Hessian-vector
providers for either backend (torch through ``torch.func``).

>>> import fnopt
>>> p = fnopt.problems.by_name("beale")
>>> p.dim, float(p.loss(p.minima[0])), p.distance(p.start())
(2, 0.0, 2.0615528128088303)

Reference: J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing unconstrained
optimization software", ACM TOMS 7 (1981) 17–41.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs
import numpy as np

from fnopt import backend as _backend
from fnopt.objectives import _rosenbrock as _rosen
from fnopt.objectives._objective import (
    Array,
    Providers,
    ReferenceObjective,
    const,
    gradient_provider,
    hessian_provider,
    hvp_provider,
    stack,
    xp_of,
)

__all__ = ["Problem", "PROBLEMS", "by_name", "names"]


@attrs.frozen(eq=False)
class Problem(ReferenceObjective):
    """A test problem with known minimisers (an :class:`fnopt.objectives.Objective`
    whose reference form is NumPy float64; :meth:`start` and the providers take any
    backend).

    Attributes:
      name: short name, e.g. ``"rosenbrock"``.
      dim: number of variables.
      starts: the standard start points (NumPy float64 arrays).
      minima: known local or global minimisers (NumPy float64 arrays).
      f_min: the loss at ``minima[0]`` (the global minimum where known).
      loss: ``loss(x)`` on a NumPy array or a torch tensor.
      grad: the hand-written gradient (NumPy).
      hessian: the hand-written Hessian (NumPy), ``dim x dim``.
      source: where the problem comes from.
      residuals: for sums of squares, the residuals ``r(x)`` (NumPy or torch), so that
        ``loss = sum(r ** 2)``; ``None`` otherwise.
      jacobian: the hand-written Jacobian of ``residuals`` (NumPy), or ``None``.
    """

    name: str
    dim: int
    starts: tuple[np.ndarray, ...]
    minima: tuple[np.ndarray, ...]
    f_min: float
    loss: Callable[[Array], Array]
    grad: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]
    source: str = ""
    residuals: Callable[[Array], Array] | None = None  # sums of squares: r(x), any backend
    jacobian: Callable[[np.ndarray], np.ndarray] | None = None  # and its Jacobian (NumPy)

    @property
    def minimizers(self) -> tuple[Any, ...]:
        """``minima``."""
        return self.minima

    @property
    def min_value(self) -> float:
        """``f_min``."""
        return self.f_min

    def start(
        self, index: int = 0, backend: Literal["numpy", "torch"] = "numpy", dtype: str = "float64"
    ) -> Any:
        """Start point ``index`` as a fresh NumPy array or torch tensor."""
        return _backend.array(self.starts[index], backend, dtype)

    def grad_fn(self, backend: Literal["numpy", "torch"] = "numpy") -> Any:
        """A gradient provider: hand-written on NumPy, ``torch.func`` on torch."""
        return gradient_provider(backend, self.loss, self.grad)

    def hessian_fn(self, backend: Literal["numpy", "torch"] = "numpy") -> Any:
        """A Hessian provider: hand-written on NumPy, ``torch.func.hessian`` on torch."""
        return hessian_provider(backend, self.loss, self.hessian)

    def hvp_fn(self, backend: Literal["numpy", "torch"] = "numpy") -> Any:
        """Hessian-vector products: the hand-written Hessian times ``v`` on NumPy,
        ``torch.func.jvp`` of the gradient on torch."""
        return hvp_provider(backend, self.loss, self.hessian)

    def _derivatives(self, backend: str) -> Providers:
        return Providers(
            self.grad_fn(backend),  # type: ignore[arg-type]
            self.hessian_fn(backend),  # type: ignore[arg-type]
            self.hvp_fn(backend),  # type: ignore[arg-type]
        )


def _arr(*xs: Sequence[float] | np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.array(x, dtype=np.float64) for x in xs)


def _least_squares(
    name: str,
    residuals: Callable[[Array], Array],
    jacobian: Callable[[np.ndarray], np.ndarray],
    res_hessians: Callable[[np.ndarray], np.ndarray],
    starts: tuple[np.ndarray, ...],
    minima: tuple[np.ndarray, ...],
    f_min: float,
    source: str,
) -> Problem:
    """A sum-of-squares problem from residuals ``r(x)`` (any backend), their Jacobian
    ``(m, n)`` and the residual Hessians ``(m, n, n)`` (NumPy)."""

    # Far from the start (long line-search trials) the exponentials overflow; the loss
    # is then inf, which the line searches handle, so NumPy's warnings are silenced.
    def loss(x: Array) -> Array:
        with np.errstate(over="ignore", invalid="ignore"):
            r = residuals(x)
            return (r * r).sum()

    def grad(x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return 2.0 * jacobian(x).T @ residuals(x)

    def hessian(x: np.ndarray) -> np.ndarray:
        j = jacobian(x)
        return 2.0 * (j.T @ j + np.einsum("i,ijk->jk", residuals(x), res_hessians(x)))

    return Problem(
        name, starts[0].size, starts, minima, f_min, loss, grad, hessian, source, residuals,
        jacobian,
    )


# -- the problems ------------------------------------------------------------------------


def _quiet(fn: Callable[[Array], Array]) -> Callable[[Array], Array]:
    """``fn`` with NumPy's overflow warnings silenced (far trial points give inf)."""

    def quiet(x: Array) -> Array:
        with np.errstate(over="ignore", invalid="ignore"):
            return fn(x)

    return quiet


def _rosenbrock() -> Problem:
    f = _rosen.functions(2, 1.0, 100.0)  # the same function as fnopt.tasks.rosenbrock
    return Problem(
        "rosenbrock", 2, _arr([-1.2, 1.0], [0.0, 0.0]), _arr([1.0, 1.0]), 0.0, _quiet(f.loss),
        _quiet(f.grad), f.hessian, "MGH 1; H. H. Rosenbrock, Computer J. 3 (1960)",
        f.residuals, f.jacobian,
    )


def _extended_rosenbrock(n: int = 10) -> Problem:
    def r(x: Array) -> Array:
        xp = xp_of(x)
        odd, even = x[0::2], x[1::2]
        return xp.stack([10.0 * (even - odd**2), 1.0 - odd], 1).reshape(-1)

    def jac(x: np.ndarray) -> np.ndarray:
        j = np.zeros((n, n))
        for k in range(n // 2):
            j[2 * k, 2 * k] = -20.0 * x[2 * k]
            j[2 * k, 2 * k + 1] = 10.0
            j[2 * k + 1, 2 * k] = -1.0
        return j

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((n, n, n))
        for k in range(n // 2):
            h[2 * k, 2 * k, 2 * k] = -20.0
        return h

    return _least_squares(
        f"rosenbrock_{n}d", r, jac, rh, _arr([-1.2, 1.0] * (n // 2)), _arr([1.0] * n), 0.0,
        "MGH 21 (extended Rosenbrock)",
    )


def _beale() -> Problem:
    ys = (1.5, 2.25, 2.625)

    def r(x: Array) -> Array:
        return stack(x, [y - x[0] * (1.0 - x[1] ** i) for i, y in enumerate(ys, 1)])

    def jac(x: np.ndarray) -> np.ndarray:
        return np.array(
            [[-(1.0 - x[1] ** i), i * x[0] * x[1] ** (i - 1)] for i in range(1, 4)]
        )

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((3, 2, 2))
        for i in range(1, 4):
            h[i - 1, 0, 1] = h[i - 1, 1, 0] = i * x[1] ** (i - 1)
            h[i - 1, 1, 1] = i * (i - 1) * x[0] * x[1] ** (i - 2) if i > 1 else 0.0
        return h

    return _least_squares("beale", r, jac, rh, _arr([1.0, 1.0]), _arr([3.0, 0.5]), 0.0, "MGH 5")


def _booth() -> Problem:
    a = np.array([[1.0, 2.0], [2.0, 1.0]])
    b = np.array([7.0, 5.0])

    def r(x: Array) -> Array:
        return stack(x, [x[0] + 2.0 * x[1] - 7.0, 2.0 * x[0] + x[1] - 5.0])

    return _least_squares(
        "booth", r, lambda x: a.copy(), lambda x: np.zeros((2, 2, 2)),
        _arr([0.0, 0.0]), (np.linalg.solve(a, b),), 0.0, "Booth function (quadratic)",
    )


def _himmelblau() -> Problem:
    def r(x: Array) -> Array:
        return stack(x, [x[0] ** 2 + x[1] - 11.0, x[0] + x[1] ** 2 - 7.0])

    def jac(x: np.ndarray) -> np.ndarray:
        return np.array([[2.0 * x[0], 1.0], [1.0, 2.0 * x[1]]])

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((2, 2, 2))
        h[0, 0, 0] = h[1, 1, 1] = 2.0
        return h

    minima = _arr(
        [3.0, 2.0],
        [-2.805118086952745, 3.131312518250573],
        [-3.779310253377747, -3.28318599128617],
        [3.584428340330492, -1.848126526964403],
    )
    return _least_squares(
        "himmelblau", r, jac, rh, _arr([0.0, 0.0], [-1.0, -1.0]), minima, 0.0,
        "D. M. Himmelblau, Applied Nonlinear Programming (1972); four global minima",
    )


def _ill_conditioned_quadratic(n: int = 10, condition: float = 1e4) -> Problem:
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((n, n)))
    eig = np.logspace(0.0, math.log10(condition), n)
    a = (q * eig) @ q.T
    a = 0.5 * (a + a.T)

    def loss(x: Array) -> Array:
        am = const(x, a)
        return 0.5 * (x * (am @ x)).sum()

    return Problem(
        "ill_conditioned_quadratic", n, _arr([1.0] * n), _arr([0.0] * n), 0.0, loss,
        lambda x: a @ x, lambda x: a.copy(),
        f"0.5 x^T A x, A rotated, eigenvalues logspace(0, 4, {n}) (condition 1e4)",
    )


def _powell_singular() -> Problem:
    s5, s10 = math.sqrt(5.0), math.sqrt(10.0)

    def r(x: Array) -> Array:
        return stack(
            x,
            [
                x[0] + 10.0 * x[1],
                s5 * (x[2] - x[3]),
                (x[1] - 2.0 * x[2]) ** 2,
                s10 * (x[0] - x[3]) ** 2,
            ],
        )

    def jac(x: np.ndarray) -> np.ndarray:
        u, v = x[1] - 2.0 * x[2], x[0] - x[3]
        return np.array(
            [
                [1.0, 10.0, 0.0, 0.0],
                [0.0, 0.0, s5, -s5],
                [0.0, 2.0 * u, -4.0 * u, 0.0],
                [2.0 * s10 * v, 0.0, 0.0, -2.0 * s10 * v],
            ]
        )

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((4, 4, 4))
        w = np.array([0.0, 1.0, -2.0, 0.0])
        h[2] = 2.0 * np.outer(w, w)
        z = np.array([1.0, 0.0, 0.0, -1.0])
        h[3] = 2.0 * s10 * np.outer(z, z)
        return h

    return _least_squares(
        "powell_singular", r, jac, rh, _arr([3.0, -1.0, 0.0, 1.0]), _arr([0.0] * 4), 0.0,
        "MGH 13 (singular Hessian at the minimiser)",
    )


def _wood() -> Problem:
    s90, s10 = math.sqrt(90.0), math.sqrt(10.0)

    def r(x: Array) -> Array:
        return stack(
            x,
            [
                10.0 * (x[1] - x[0] ** 2),
                1.0 - x[0],
                s90 * (x[3] - x[2] ** 2),
                1.0 - x[2],
                s10 * (x[1] + x[3] - 2.0),
                (x[1] - x[3]) / s10,
            ],
        )

    def jac(x: np.ndarray) -> np.ndarray:
        return np.array(
            [
                [-20.0 * x[0], 10.0, 0.0, 0.0],
                [-1.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, -2.0 * s90 * x[2], s90],
                [0.0, 0.0, -1.0, 0.0],
                [0.0, s10, 0.0, s10],
                [0.0, 1.0 / s10, 0.0, -1.0 / s10],
            ]
        )

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((6, 4, 4))
        h[0, 0, 0] = -20.0
        h[2, 2, 2] = -2.0 * s90
        return h

    return _least_squares(
        "wood", r, jac, rh, _arr([-3.0, -1.0, -3.0, -1.0]), _arr([1.0] * 4), 0.0, "MGH 14"
    )


def _freudenstein_roth() -> Problem:
    def r(x: Array) -> Array:
        return stack(
            x,
            [
                -13.0 + x[0] + ((5.0 - x[1]) * x[1] - 2.0) * x[1],
                -29.0 + x[0] + ((x[1] + 1.0) * x[1] - 14.0) * x[1],
            ],
        )

    def jac(x: np.ndarray) -> np.ndarray:
        y = x[1]
        return np.array([[1.0, 10.0 * y - 3.0 * y * y - 2.0], [1.0, 3.0 * y * y + 2.0 * y - 14.0]])

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((2, 2, 2))
        h[0, 1, 1] = 10.0 - 6.0 * x[1]
        h[1, 1, 1] = 6.0 * x[1] + 2.0
        return h

    return _least_squares(
        "freudenstein_roth", r, jac, rh, _arr([0.5, -2.0]),
        _arr([5.0, 4.0], [11.41277898690209, -0.8968052532744766]), 0.0,
        "MGH 2 (global minimum 0 at (5, 4); local minimum 48.9842 at (11.41, -0.8968))",
    )


def _brown_badly_scaled() -> Problem:
    def r(x: Array) -> Array:
        return stack(x, [x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2.0])

    def jac(x: np.ndarray) -> np.ndarray:
        return np.array([[1.0, 0.0], [0.0, 1.0], [x[1], x[0]]])

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((3, 2, 2))
        h[2, 0, 1] = h[2, 1, 0] = 1.0
        return h

    return _least_squares(
        "brown_badly_scaled", r, jac, rh, _arr([1.0, 1.0]), _arr([1e6, 2e-6]), 0.0, "MGH 4"
    )


def _helical_valley() -> Problem:
    two_pi = 2.0 * math.pi

    def r(x: Array) -> Array:
        xp = xp_of(x)
        theta = xp.arctan2(x[1], x[0]) / two_pi
        return stack(
            x, [10.0 * (x[2] - 10.0 * theta), 10.0 * (xp.sqrt(x[0] ** 2 + x[1] ** 2) - 1.0), x[2]]
        )

    def jac(x: np.ndarray) -> np.ndarray:
        r2 = x[0] ** 2 + x[1] ** 2
        rr = math.sqrt(r2)
        return np.array(
            [
                [100.0 * x[1] / (two_pi * r2), -100.0 * x[0] / (two_pi * r2), 10.0],
                [10.0 * x[0] / rr, 10.0 * x[1] / rr, 0.0],
                [0.0, 0.0, 1.0],
            ]
        )

    def rh(x: np.ndarray) -> np.ndarray:
        a, b = x[0], x[1]
        r2 = a * a + b * b
        r3 = r2 ** 1.5
        h = np.zeros((3, 3, 3))
        c = -100.0 / (two_pi * r2 * r2)  # -100 * d2(theta)/2pi-scaled
        h[0, 0, 0] = c * 2.0 * a * b
        h[0, 1, 1] = -c * 2.0 * a * b
        h[0, 0, 1] = h[0, 1, 0] = c * (b * b - a * a)
        h[1, 0, 0] = 10.0 * b * b / r3
        h[1, 1, 1] = 10.0 * a * a / r3
        h[1, 0, 1] = h[1, 1, 0] = -10.0 * a * b / r3
        return h

    return _least_squares(
        "helical_valley", r, jac, rh, _arr([-1.0, 0.0, 0.0]), _arr([1.0, 0.0, 0.0]), 0.0,
        "MGH 7 (theta = atan2(x2, x1) / 2 pi)",
    )


def _box_3d() -> Problem:
    t = 0.1 * np.arange(1, 11)
    c = np.exp(-t) - np.exp(-10.0 * t)

    def r(x: Array) -> Array:
        xp = xp_of(x)
        tt = const(x, t)
        cc = const(x, c)
        return xp.exp(-tt * x[0]) - xp.exp(-tt * x[1]) - x[2] * cc

    def jac(x: np.ndarray) -> np.ndarray:
        return np.stack([-t * np.exp(-t * x[0]), t * np.exp(-t * x[1]), -c], 1)

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((10, 3, 3))
        h[:, 0, 0] = t * t * np.exp(-t * x[0])
        h[:, 1, 1] = -t * t * np.exp(-t * x[1])
        return h

    return _least_squares(
        "box_3d", r, jac, rh, _arr([0.0, 10.0, 20.0]), _arr([1.0, 10.0, 1.0], [10.0, 1.0, -1.0]),
        0.0, "MGH 12 (m = 10)",
    )


def _jennrich_sampson() -> Problem:
    i = np.arange(1.0, 11.0)

    def r(x: Array) -> Array:
        xp = xp_of(x)
        ii = const(x, i)
        return 2.0 + 2.0 * ii - (xp.exp(ii * x[0]) + xp.exp(ii * x[1]))

    def jac(x: np.ndarray) -> np.ndarray:
        return np.stack([-i * np.exp(i * x[0]), -i * np.exp(i * x[1])], 1)

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((10, 2, 2))
        h[:, 0, 0] = -i * i * np.exp(i * x[0])
        h[:, 1, 1] = -i * i * np.exp(i * x[1])
        return h

    return _least_squares(
        "jennrich_sampson", r, jac, rh, _arr([0.3, 0.4]),
        _arr([0.2578252136703641, 0.2578252136703641]), 124.36218235561483, "MGH 6 (m = 10)",
    )


def _variably_dimensioned(n: int = 10) -> Problem:
    j = np.arange(1.0, n + 1.0)

    def r(x: Array) -> Array:
        xp = xp_of(x)
        jj = const(x, j)
        s = (jj * (x - 1.0)).sum()
        tail = stack(x, [s, s * s])
        return xp.concatenate([x - 1.0, tail])

    def jac(x: np.ndarray) -> np.ndarray:
        s = float(j @ (x - 1.0))
        return np.vstack([np.eye(n), j, 2.0 * s * j])

    def rh(x: np.ndarray) -> np.ndarray:
        h = np.zeros((n + 2, n, n))
        h[n + 1] = 2.0 * np.outer(j, j)
        return h

    return _least_squares(
        f"variably_dimensioned_{n}d", r, jac, rh, _arr(1.0 - j / n), _arr([1.0] * n), 0.0,
        "MGH 25",
    )


PROBLEMS: tuple[Problem, ...] = (
    _rosenbrock(),
    _extended_rosenbrock(10),
    _beale(),
    _booth(),
    _himmelblau(),
    _ill_conditioned_quadratic(),
    _powell_singular(),
    _wood(),
    _freudenstein_roth(),
    _brown_badly_scaled(),
    _helical_valley(),
    _box_3d(),
    _jennrich_sampson(),
    _variably_dimensioned(10),
)
"""Every problem in the collection."""


def names() -> list[str]:
    """The names of the problems, in collection order."""
    return [p.name for p in PROBLEMS]


def by_name(name: str) -> Problem:
    """The problem called ``name`` (see :func:`names`); ``ValueError`` listing the names
    otherwise."""
    for p in PROBLEMS:
        if p.name == name:
            return p
    raise ValueError(f"name: no problem {name!r}; expected one of {names()}")
