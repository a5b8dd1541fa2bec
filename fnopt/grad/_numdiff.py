"""Finite-difference Jacobians on the host, with the steps of scipy's ``approx_derivative``.

:func:`approx_jacobian` estimates the ``m x n`` Jacobian of ``f`` at ``x`` (NumPy,
float64) by forward (``"2-point"``), central (``"3-point"``) or complex-step (``"cs"``)
differences. The relative step follows the working precision — the machine epsilon
:math:`\\epsilon` of the smaller of ``x``'s and ``f(x)``'s float types, so float32
residuals get float32-sized steps — as :math:`\\sqrt\\epsilon` (2-point, cs) or
:math:`\\epsilon^{1/3}` (3-point), times :math:`\\max(1, |x_j|)` with the sign of
:math:`x_j`; a user ``rel_step`` gives :math:`h_j = ` ``rel_step`` :math:`|x_j|`
instead. Near a bound the step turns around, shrinks or becomes one-sided so that
every evaluation point stays inside ``[lb, ub]``.

>>> import numpy as np
>>> jac = approx_jacobian(lambda x: x**2, np.array([1.0, 0.0]), np.array([1.0, 0.0]),
...                       method="3-point", bounds=(np.array([-1.0, 0.0]), np.inf))
>>> np.round(jac, 6)
array([[2., 0.],
       [0., 0.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["approx_jacobian", "column_groups", "relative_step"]


def relative_step(x_dtype: Any, f_dtype: Any, method: str) -> float:
    """The default relative step for ``method`` (see the module docstring).

    >>> relative_step(np.float64, np.float32, "2-point") == float(np.finfo(np.float32).eps) ** 0.5
    True
    """
    eps = float(np.finfo(np.float64).eps)
    if np.issubdtype(x_dtype, np.inexact):
        eps = float(np.finfo(x_dtype).eps)
        if np.issubdtype(f_dtype, np.inexact) and (
            np.dtype(f_dtype).itemsize < np.dtype(x_dtype).itemsize
        ):
            eps = float(np.finfo(f_dtype).eps)
    return eps ** (1.0 / 3.0) if method == "3-point" else eps**0.5


def _absolute_step(x: np.ndarray, rstep: float, rel_step: Any) -> np.ndarray:
    sign = np.where(x >= 0, 1.0, -1.0)
    default = rstep * sign * np.maximum(1.0, np.abs(x))
    if rel_step is None:
        return default
    h = np.asarray(rel_step, dtype=np.float64) * sign * np.abs(x)
    return np.where((x + h) - x == 0, default, h)


def _fit_to_bounds(x: np.ndarray, h: np.ndarray, two_sided: bool, lb: np.ndarray,
                   ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps kept inside the bounds, and which central differences became one-sided."""
    one_sided = np.full(h.shape, not two_sided)
    if two_sided:
        h = np.abs(h)
    if np.all(np.isneginf(lb) & np.isposinf(ub)):
        return h, one_sided
    num = 2 if two_sided else 1
    lower, upper = x - lb, ub - x
    h = h.copy()
    total = h * num
    if not two_sided:
        out = ((x + total) < lb) | ((x + total) > ub)
        fits = np.abs(total) <= np.maximum(lower, upper)
        h[out & fits] *= -1
        fwd, bwd = (upper >= lower) & ~fits, (upper < lower) & ~fits
        h[fwd], h[bwd] = upper[fwd], -lower[bwd]
        return h, one_sided
    central = (lower >= total) & (upper >= total)
    fwd, bwd = (upper >= lower) & ~central, (upper < lower) & ~central
    h[fwd] = np.minimum(h[fwd], 0.5 * upper[fwd] / num)
    h[bwd] = -np.minimum(h[bwd], 0.5 * lower[bwd] / num)
    one_sided[fwd | bwd] = True
    min_dist = np.minimum(upper, lower) / num
    back = ~central & (np.abs(h) <= min_dist)
    h[back], one_sided[back] = min_dist[back], False
    return h, one_sided


def column_groups(mask: np.ndarray) -> np.ndarray:
    """Columns of a sparsity pattern (``m x n`` booleans) grouped so that no two columns
    of a group share a row (greedy, in column order): one evaluation per group then
    gives every column of the group (Curtis, Powell & Reid, 1974).

    >>> column_groups(np.eye(3, dtype=bool) | np.eye(3, k=1, dtype=bool))
    array([0, 1, 0])
    """
    groups = np.zeros(mask.shape[1], dtype=int)
    used: list[np.ndarray] = []
    for j in range(mask.shape[1]):
        rows = mask[:, j]
        g = next((k for k, u in enumerate(used) if not np.any(u & rows)), len(used))
        if g == len(used):
            used.append(np.zeros(mask.shape[0], dtype=bool))
        used[g] |= rows
        groups[j] = g
    return groups


def _grouped(f: Callable[[np.ndarray], Any], x: np.ndarray, base: np.ndarray, h: np.ndarray,
             one_sided: np.ndarray, method: str, mask: np.ndarray) -> np.ndarray:
    """The Jacobian over the pattern ``mask``: one (2-point) or two (3-point, cs)
    evaluations per group of :func:`column_groups`."""
    jac = np.zeros(mask.shape)
    groups = column_groups(mask)
    for g in range(int(groups.max(initial=-1)) + 1):
        cols = np.flatnonzero(groups == g)
        if method == "cs":
            xc = x.astype(complex)
            xc[cols] += h[cols] * 1j
            df, dx = np.asarray(f(xc)).imag.astype(np.float64), h
        elif method == "2-point":
            x1 = x.copy()
            x1[cols] = x[cols] + h[cols]
            df, dx = np.asarray(f(x1), dtype=np.float64) - base, x1 - x
        else:
            x1, x2 = x.copy(), x.copy()
            side, cen = cols[one_sided[cols]], cols[~one_sided[cols]]
            x1[side], x2[side] = x[side] + h[side], x[side] + 2.0 * h[side]
            x1[cen], x2[cen] = x[cen] - h[cen], x[cen] + h[cen]
            f1, f2 = np.asarray(f(x1), np.float64), np.asarray(f(x2), np.float64)
            df_side, df_cen = -3.0 * base + 4.0 * f1 - f2, f2 - f1
            dx = np.where(one_sided, x2 - x, x2 - x1)
        for j in cols:
            rows = mask[:, j]
            d = (df_side if method == "3-point" and one_sided[j] else
                 df_cen if method == "3-point" else df)
            jac[rows, j] = d[rows] / dx[j]
    return jac


def approx_jacobian(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    f0: np.ndarray,
    *,
    method: str = "2-point",
    rel_step: Any = None,
    bounds: tuple[Any, Any] = (-np.inf, np.inf),
    sparsity: np.ndarray | None = None,
) -> np.ndarray:
    """The Jacobian of ``f`` at ``x`` by finite differences (float64 ``(m, n)``).

    Args:
      f: ``f(x) -> (m,)`` residuals (NumPy; complex input for ``"cs"``).
      x: the point (1-D float64).
      f0: ``f(x)`` (its dtype sets the working precision).
      method: ``"2-point"``, ``"3-point"`` or ``"cs"`` (complex step; ``f`` must be
        analytic and accept complex ``x``).
      rel_step: ``None`` or relative steps (a number or ``n`` numbers).
      bounds: ``(lb, ub)``: every evaluation point lies inside (not for ``"cs"``,
        whose steps are imaginary).
      sparsity: ``None``, or the ``m x n`` boolean pattern of ``J``: entries outside it
        are zero and columns that share no row are differenced together.

    Returns:
      The ``(m, n)`` float64 Jacobian.
    """
    n = x.size
    lb = np.broadcast_to(np.asarray(bounds[0], dtype=np.float64), (n,))
    ub = np.broadcast_to(np.asarray(bounds[1], dtype=np.float64), (n,))
    h = _absolute_step(x, relative_step(x.dtype, np.asarray(f0).dtype, method), rel_step)
    base = np.asarray(f0, dtype=np.float64)
    cols = []
    if sparsity is not None:
        h, one_sided = (h, np.zeros(n, dtype=bool)) if method == "cs" else _fit_to_bounds(
            x, h, method == "3-point", lb, ub)
        return _grouped(f, x, base, h, one_sided, method, sparsity)
    if method == "cs":
        for j in range(n):
            xc = x.astype(complex)
            xc[j] += h[j] * 1j
            cols.append(np.asarray(f(xc)).imag.astype(np.float64) / h[j])
        return np.stack(cols, 1) if cols else np.zeros((base.size, 0))
    h, one_sided = _fit_to_bounds(x, h, method == "3-point", lb, ub)
    for j in range(n):
        x1 = x.copy()
        if method == "2-point":
            x1[j] = x[j] + h[j]
            cols.append((np.asarray(f(x1), dtype=np.float64) - base) / (x1[j] - x[j]))
            continue
        x2 = x.copy()
        if one_sided[j]:
            x1[j], x2[j] = x[j] + h[j], x[j] + 2.0 * h[j]
            df = -3.0 * base + 4.0 * np.asarray(f(x1), np.float64) - np.asarray(f(x2),
                                                                                  np.float64)
            cols.append(df / (x2[j] - x[j]))
        else:
            x1[j], x2[j] = x[j] - h[j], x[j] + h[j]
            df = np.asarray(f(x2), np.float64) - np.asarray(f(x1), np.float64)
            cols.append(df / (x2[j] - x1[j]))
    return np.stack(cols, 1) if cols else np.zeros((base.size, 0))
