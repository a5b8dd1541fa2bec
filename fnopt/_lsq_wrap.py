"""The user's ``fun`` and ``jac`` of :func:`fnopt.least_squares`, wrapped as scipy does.

:class:`HostProblem` calls ``fun(x, *args, **kwargs)`` and ``jac(x, *args, **kwargs)``
for a NumPy ``x0`` the way ``scipy.optimize.least_squares`` does: each call gets its
own copy of ``x`` (a function that writes into its argument cannot corrupt the
solver), the residuals are ``np.atleast_1d`` (a scalar or a 1-element array is one
residual) and must be 1-D, a Jacobian is ``np.atleast_2d`` (a ``(1,)`` Jacobian of one
residual in one variable is ``[[J]]``), a scipy sparse matrix or ``LinearOperator`` is
accepted (and formed densely for the dense trust-region solvers), and finite
differences (``"2-point"``, ``"3-point"``, ``"cs"``) take the steps of
:mod:`fnopt.grad._numdiff` (within the bounds, relative to the residuals' precision,
``diff_step``); with ``jac_sparsity`` only its entries are estimated, columns that
share no row together (one evaluation per group of columns).

>>> import numpy as np
>>> p = HostProblem(lambda x: x**2 + 5.0, "2-point", (), {}, bounds=(-np.inf, np.inf))
>>> r = p.residuals(np.array([2.0])); r
array([9.])
>>> np.round(p.jacobian(np.array([2.0]), r), 5)
array([[4.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fnopt.grad._numdiff import approx_jacobian
from fnopt.grad.residuals import Linearization

__all__ = ["HostProblem", "jacobian_kind", "dense_jacobian"]


def jacobian_kind(j: Any) -> str:
    """``"dense"`` (an array), ``"sparse"`` (a scipy sparse matrix or array) or
    ``"operator"`` (a scipy ``LinearOperator``), from where its type is defined."""
    module = type(j).__module__ or ""
    if module.startswith("scipy.sparse.linalg"):
        return "operator"
    if module.startswith("scipy.sparse"):
        return "sparse"
    return "dense"


def dense_jacobian(j: Any, n: int) -> np.ndarray:
    """A Jacobian as a dense float64 array (``atleast_2d``; sparse and operators formed)."""
    kind = jacobian_kind(j)
    if kind == "sparse":
        return np.asarray(j.toarray(), dtype=np.float64)
    if kind == "operator":
        return np.asarray(j.matmat(np.eye(n)), dtype=np.float64)
    try:
        return np.atleast_2d(np.asarray(j, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"jac: must return a real (m, n) array, got {type(j).__name__}") from exc


class HostProblem:
    """``fun``/``jac`` as a residual provider over a 1-D float64 ``x`` (module docstring).

    ``nfev``/``njev`` count the calls of ``fun`` made by the solver (finite-difference
    evaluations are not counted, as scipy) and the Jacobians formed.
    """

    def __init__(self, fun: Callable[..., Any], jac: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any], *, bounds: tuple[Any, Any], diff_step: Any = None,
                 sparsity: Any = None) -> None:
        self.fun, self.jac, self.args, self.kwargs = fun, jac, args, kwargs
        self.bounds, self.diff_step = bounds, diff_step
        self.mask = None if sparsity is None else dense_jacobian(sparsity, 0) != 0
        self.kind = "dense"
        self.sparse_type: Any = None
        self._cache: tuple[np.ndarray, np.ndarray, Any] | None = None

    def raw(self, x: np.ndarray) -> np.ndarray:
        """``np.atleast_1d(fun(copy of x))`` in the dtype ``fun`` returned."""
        f = np.atleast_1d(self.fun(x.copy(), *self.args, **self.kwargs))
        if f.dtype.kind not in "biufc" or (f.dtype.kind == "c" and x.dtype.kind != "c"):
            raise TypeError(f"fun: must return real numbers, got dtype {f.dtype}")
        if f.ndim != 1:
            raise ValueError(f"fun: must return at most 1-d array_like, got shape {f.shape}")
        return f

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """The residuals at ``x`` (in ``fun``'s dtype)."""
        return self.raw(x)

    def jacobian(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """The dense float64 ``(m, n)`` Jacobian at ``x`` (``f`` = the residuals there)."""
        if callable(self.jac):
            j = self.jac(x.copy(), *self.args, **self.kwargs)
            self.kind = jacobian_kind(j)
            self.sparse_type = type(j) if self.kind == "sparse" else None
            j = dense_jacobian(j, x.size)
        else:
            mask = self.mask if self.mask is not None and self.mask.shape == (
                f.size, x.size) else None
            j = approx_jacobian(self.raw, x, f, method=self.jac, rel_step=self.diff_step,
                                bounds=self.bounds, sparsity=mask)
        return j

    def prime(self, x: np.ndarray, f: np.ndarray, j: np.ndarray) -> None:
        """Keep ``(f, J)`` at ``x``: the solver's first call there costs nothing more."""
        self._cache = (x.copy(), f, j)

    def __call__(self, params: np.ndarray) -> Linearization:
        x = np.asarray(params, dtype=np.float64)
        cache, self._cache = self._cache, None
        if cache is not None and np.array_equal(cache[0], x):
            f, j = cache[1], cache[2]
            return Linearization(np.asarray(f, dtype=np.float64), x.size, jacobian=lambda: j)
        f = self.residuals(x)
        return Linearization(np.asarray(f, dtype=np.float64), x.size,
                             jacobian=lambda: self.jacobian(x, f))
