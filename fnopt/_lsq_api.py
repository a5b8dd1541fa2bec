"""``fnopt.least_squares`` and ``fnopt.curve_fit``: scipy.optimize's interfaces on fnopt.

Replacing ``scipy.optimize.`` by ``fnopt.`` in typical code runs and gives the same
answer: the arguments and result fields follow ``scipy.optimize.least_squares`` and
``scipy.optimize.curve_fit``; ``x0`` (or ``p0``) may also be a torch tensor or any
pytree, and the answer comes back in the same form.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import tree as _tree
from fnopt.grad import residuals as _res
from fnopt.loop import StepFailed
from fnopt.optimizers import lsq as _lsq

__all__ = ["least_squares", "curve_fit", "covariance", "LeastSquaresResult"]

_MESSAGES = {0: _lsq.STATUS_MESSAGES[5], **{k: _lsq.STATUS_MESSAGES[k] for k in (1, 2, 3, 4)}}


@attrs.frozen(eq=False)
class LeastSquaresResult:
    """What :func:`least_squares` returns (the fields of scipy's ``OptimizeResult``).

    Attributes:
      x: the solution, in the form of ``x0`` (array, tensor or pytree).
      cost: :math:`\\tfrac12\\|r(x)\\|^2` (a float).
      fun: the residuals at ``x``, flattened (1-D, the backend of ``x0``).
      jac: the Jacobian there (``m x n`` over the flattened ``x``).
      grad: :math:`J^T r` (flat).
      optimality: the first-order optimality, :math:`\\|g\\|_\\infty` (scaled by the
        Coleman–Li vector :math:`v` for ``"trf"``, as scipy).
      active_mask: per flattened parameter, -1 / +1 at an active lower / upper
        bound, 0 otherwise (NumPy int array).
      nfev, njev: residual and Jacobian evaluations (for ``"trf"``, finite-difference
        evaluations are not counted, as scipy).
      nit: accepted steps.
      status: scipy's code: 0 ``max_nfev`` reached, 1 ``gtol``, 2 ``ftol``,
        3 ``xtol``, 4 ``ftol`` and ``xtol``.
      message: the sentence for ``status``.
      success: ``status > 0``.
      state: the optimizer's final :class:`fnopt.LeastSquaresState`.
    """

    x: Any
    cost: float
    fun: Any
    jac: Any
    grad: Any
    optimality: float
    active_mask: np.ndarray
    nfev: int
    njev: int
    nit: int
    status: int
    message: str
    success: bool
    state: Any = None

    def __getitem__(self, key: str) -> Any:  # scipy's OptimizeResult is also a dict
        if key not in attrs.fields_dict(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def covariance(self, *, absolute_sigma: bool = False) -> Any:
        """The parameter covariance; see :func:`covariance`."""
        return covariance(self, absolute_sigma=absolute_sigma)

    def standard_errors(self, *, absolute_sigma: bool = False) -> Any:
        """The square roots of the covariance's diagonal (curve_fit's ``perr``)."""
        c = covariance(self, absolute_sigma=absolute_sigma)
        return c.diagonal() ** 0.5  # an ndarray and a tensor both have .diagonal()


def covariance(result: LeastSquaresResult, *, absolute_sigma: bool = False) -> Any:
    """The covariance of the fitted parameters, as ``scipy.optimize.curve_fit``'s ``pcov``.

    .. math:: C = s^2 (J^T J)^{-1}, \\qquad s^2 = \\frac{\\|r\\|^2}{m - n}

    with :math:`J` the Jacobian at the solution (a pseudo-inverse through its SVD,
    singular values below ``eps * max(m, n) * s_max`` dropped). With
    ``absolute_sigma=True`` :math:`s^2 = 1` (the residuals are already divided by
    known standard deviations). When :math:`m \\le n` and not ``absolute_sigma``, the
    covariance is infinite (a warning, as scipy). Standard errors are
    ``sqrt(diag(C))``.

    >>> import numpy as np, fnopt
    >>> x = np.arange(5.0); y = np.array([0.1, 0.9, 2.2, 2.9, 4.1])
    >>> res = fnopt.least_squares(lambda p: p[0] * x + p[1] - y, np.zeros(2),
    ...                           jac=lambda p: np.stack([x, np.ones(5)], 1))
    >>> np.round(np.sqrt(np.diag(fnopt.covariance(res))), 4)
    array([0.049, 0.12 ])
    """
    j = _lsq._host(result.jac)
    m, n = j.shape
    _, s, vt = np.linalg.svd(j, full_matrices=False)
    keep = s > np.finfo(np.float64).eps * max(m, n) * (s[0] if s.size else 0.0)
    s, vt = s[keep], vt[keep]
    pcov = (vt.T / s**2) @ vt
    if not absolute_sigma:
        if m > n:
            pcov = pcov * (2.0 * result.cost / (m - n))
        else:
            warnings.warn("covariance: cannot be estimated with m <= n residuals",
                          RuntimeWarning, stacklevel=2)
            pcov = np.full((n, n), np.inf)
    return _backend.of_value(result.fun).from_numpy(pcov, result.fun)


# -- least_squares -----------------------------------------------------------------------


def _as_params(x0: Any) -> Any:
    """``x0`` as fnopt params: a pytree of float arrays/tensors (lists of numbers and
    integers become float64 NumPy, scalars 1-element arrays, as scipy's atleast_1d)."""
    leaves: list[Any] = optree.tree_leaves(x0)
    if isinstance(x0, (list, tuple, int, float, np.generic)) and all(
        isinstance(v, (int, float, np.generic)) for v in leaves
    ):
        return np.atleast_1d(np.asarray(x0, dtype=np.float64))
    if isinstance(x0, np.ndarray) and not np.issubdtype(x0.dtype, np.floating):
        return np.atleast_1d(x0.astype(np.float64))
    if isinstance(x0, np.ndarray) and x0.ndim == 0:
        return np.atleast_1d(x0)
    return x0


def _provider(fun: Callable[..., Any], jac: Any, x0: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
    def f(p: Any) -> Any:
        return fun(p, *args, **kwargs)

    if callable(jac):
        return _res.residuals_from_functions(f, lambda p: jac(p, *args, **kwargs))
    if jac is None and _backend.of(x0).has_autodiff:
        return _res.residuals_torch(f)
    if jac in (None, "2-point", "3-point"):
        return _res.residuals_finite_differences(f, method=jac or "2-point")
    raise ValueError(f"jac: expected None, '2-point', '3-point' or a callable, got {jac!r}")


def _active_mask(x: np.ndarray, lb: np.ndarray, ub: np.ndarray, rtol: float) -> np.ndarray:
    mask = np.zeros(x.size, dtype=int)
    lo = np.isfinite(lb) & (x - lb <= rtol * np.maximum(1.0, np.abs(lb)))
    hi = np.isfinite(ub) & (ub - x <= rtol * np.maximum(1.0, np.abs(ub)))
    mask[lo], mask[hi] = -1, 1
    return mask


def _check_options(method: str, loss: str, bounds: Any, has_bounds: bool) -> None:
    if method not in ("trf", "lm"):
        raise ValueError(
            f"method: expected 'trf' or 'lm' ('dogbox' is not offered), got {method!r}"
        )
    if loss != "linear":
        raise ValueError(f"loss: only 'linear' is offered, got {loss!r}")


def _run(opt: Any, params: Any, res_fn: Any) -> tuple[Any, Any]:
    state = opt.init(params)
    try:
        while True:
            params, state = opt.step(params, res_fn, state)
    except _lsq.LeastSquaresStop as stop:
        return params, stop.state
    except _lsq.NonFiniteStart:
        raise ValueError("x0: the residuals fun(x0) are not finite") from None
    except StepFailed as exc:  # a non-finite Jacobian
        raise ValueError(f"jac: {exc.message}") from None


def least_squares(
    fun: Callable[..., Any],
    x0: Any,
    jac: Any = None,
    bounds: tuple[Any, Any] = (-math.inf, math.inf),
    method: str = "lm",
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    x_scale: Any = None,
    loss: str = "linear",
    max_nfev: int | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    verbose: int = 0,
) -> LeastSquaresResult:
    """Solve :math:`\\min_x \\tfrac12\\|f(x)\\|^2` subject to ``lb <= x <= ub``, like
    ``scipy.optimize.least_squares``.

    ``method="lm"`` (the default) is :func:`fnopt.levenberg_marquardt` (MINPACK's
    strategy); with bounds it is its bounded form, the trust-region reflective method
    (:func:`fnopt.trust_region_reflective`, scipy's ``"trf"``, which scipy's ``"lm"``
    does not offer). ``"trf"`` (scipy's default) is that method with or without
    bounds. The tests ``ftol``/``xtol``/``gtol`` are those of the method (MINPACK's
    for ``"lm"``, scipy's trf tests for ``"trf"``).

    Args:
      fun: ``fun(x, *args, **kwargs) -> residuals`` (any pytree; flattened).
      x0: the start: numbers, an array, a tensor, or any pytree of them.
      jac: ``None`` (``torch.func`` for torch ``x0``, 2-point finite differences for
        NumPy), ``"2-point"``/``"3-point"`` (finite differences), or a callable
        ``jac(x, *args, **kwargs) -> J`` (``m x n`` over the flattened residuals and x).
      bounds: ``(lower, upper)``: numbers, arrays over the flattened ``x``, or pytrees
        like ``x0``.
      method: ``"lm"`` (default) or ``"trf"``.
      ftol, xtol, gtol: tolerances (>= 0).
      x_scale: ``None`` (``"jac"`` for lm, 1 for trf, as scipy), ``"jac"`` or numbers.
      loss: only ``"linear"``.
      max_nfev: residual evaluations allowed (default ``100 * n``).
      args, kwargs: extra arguments of ``fun`` and ``jac``.
      verbose: 0 (silent) or >= 1 (print the message and counts at the end).

    Returns:
      A :class:`LeastSquaresResult`; ``.covariance()`` gives the parameter covariance.

    Raises:
      ValueError: non-finite residuals at ``x0`` (naming ``x0``), a Jacobian of the
        wrong shape (naming ``jac``), bounds of the wrong shape or ``lower >= upper``
        (naming ``bounds``), ``x0`` outside the bounds (naming ``x0``).

    >>> import numpy as np, fnopt
    >>> def fun(x):
    ...     return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])
    >>> res = fnopt.least_squares(fun, [-1.2, 1.0], method="lm")
    >>> res.success, np.round(res.x, 6), res.status
    (True, array([1., 1.]), 1)

    Reference: scipy.optimize.least_squares (same arguments and result fields).
    """
    kwargs = {} if kwargs is None else kwargs
    params = _as_params(x0)
    lb, ub = _lsq.parse_bounds(bounds, params)
    has_bounds = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    _check_options(method, loss, bounds, has_bounds)
    x_host = _lsq._flatten(params).x
    if np.any((x_host < lb) | (x_host > ub)):
        raise ValueError("x0: is infeasible (outside the bounds)")
    n = x_host.size
    max_nfev = 100 * n if max_nfev is None else max_nfev
    res_fn = _provider(fun, jac, params, tuple(args), kwargs)
    if method == "lm" and has_bounds:  # Levenberg-Marquardt with bounds: the reflective form
        method = "trf"
    if method == "lm":
        opt = _lsq.levenberg_marquardt(ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev,
                                       x_scale="jac" if x_scale is None else x_scale)
    else:
        opt = _lsq.trust_region_reflective(bounds=(lb, ub), ftol=ftol, xtol=xtol, gtol=gtol,
                                           max_nfev=max_nfev,
                                           x_scale=1.0 if x_scale is None else x_scale)
    x, state = _run(opt, params, res_fn)
    result = _result(x, state, res_fn, method, lb, ub, xtol)
    if verbose:
        print(f"{result.message}\nFunction evaluations {result.nfev}, final cost "
              f"{result.cost:.4e}, first-order optimality {result.optimality:.2e}.")
    return result


def _result(x: Any, state: Any, res_fn: Any, method: str, lb: np.ndarray, ub: np.ndarray,
            xtol: float) -> LeastSquaresResult:
    if state.residuals is not None and isinstance(state.jacobian, np.ndarray):
        # what the method kept at the returned x: fun is not called again
        rh = np.asarray(_backend.to_numpy(state.residuals), dtype=np.float64)
        jh = np.asarray(state.jacobian, dtype=np.float64)
        like = _tree.leaves(x)[0]
        r, j = _backend.of(x).from_numpy(rh, like), _backend.of(x).from_numpy(jh, like)
    else:  # a matrix-free state: form them once at the end
        lin = res_fn(x)
        r, j = lin.residuals, lin.jacobian()
        rh = _lsq._host(r)
        jh = _lsq._host(j)
    g = jh.T @ rh
    xh = _lsq._flatten(x).x
    if method == "trf":
        v, _ = _lsq._k.scaling_vector(xh, g, lb, ub)
        optimality = float(np.max(np.abs(g * v)))
        mask = _active_mask(xh, lb, ub, xtol)
    else:
        optimality = float(np.max(np.abs(g)))
        mask = np.zeros(xh.size, dtype=int)
    status = 0 if state.status == 5 else state.status
    grad = _backend.of_value(r).from_host(g, r)
    return LeastSquaresResult(
        x=x, cost=0.5 * float(rh @ rh), fun=r, jac=j, grad=grad, optimality=optimality,
        active_mask=mask, nfev=state.n_fev, njev=state.n_jev, nit=state.count, status=status,
        message=_MESSAGES[status], success=status > 0, state=state,
    )


# -- curve_fit ----------------------------------------------------------------------------


def _n_params(f: Callable[..., Any]) -> int:
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError) as exc:
        raise ValueError("p0: cannot infer the number of parameters of f; pass p0") from exc
    ps = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY,
                                                            p.POSITIONAL_OR_KEYWORD)]
    if len(ps) < 2:
        raise ValueError("p0: cannot infer the number of parameters of f; pass p0")
    return len(ps) - 1


def _weights(sigma: Any, ydata: Any) -> Callable[[Any], Any]:
    """``w(r)``: residuals divided by ``sigma`` (1-D), or whitened by the Cholesky factor
    of a covariance ``sigma`` (2-D, NumPy)."""
    if sigma is None:
        return lambda r: r
    m = int(np.size(_backend.to_numpy(ydata)))
    given_tensor = _backend.is_tensor(sigma)  # used as given: 1-D, on its own device
    if given_tensor or np.ndim(sigma) == 1:
        if tuple(getattr(sigma, "shape", np.shape(sigma))) != (m,):
            raise ValueError(f"sigma: expected shape ({m},) or ({m}, {m})")
        s = sigma if given_tensor else _backend.of_value(ydata).from_host(
            np.asarray(sigma, dtype=np.float64), ydata
        )
        return lambda r: r / s
    cov = np.asarray(sigma, dtype=np.float64)
    if cov.shape != (m, m):
        raise ValueError(f"sigma: expected shape ({m},) or ({m}, {m}), got {cov.shape}")
    try:
        inv_l = np.linalg.inv(np.linalg.cholesky(cov))
    except np.linalg.LinAlgError as exc:
        raise ValueError("sigma: the covariance matrix is not positive definite") from exc
    inv_lt = _backend.of_value(ydata).from_host(inv_l, ydata)
    return lambda r: inv_lt @ r


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: Any = None,
    sigma: Any = None,
    absolute_sigma: bool = False,
    bounds: tuple[Any, Any] = (-math.inf, math.inf),
    method: str | None = None,
    jac: Any = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Fit ``ydata ~ f(xdata, *p)`` by least squares, like ``scipy.optimize.curve_fit``.

    Minimises :math:`\\sum_i ((f(x_i, p) - y_i) / \\sigma_i)^2` with
    :func:`least_squares` (``method="lm"`` without bounds, ``"trf"`` with them, as
    scipy; for ``"lm"`` scipy's ``leastsq`` tolerances ``ftol = xtol = 1.49012e-8``,
    ``gtol = 0`` and ``max_nfev = 200 (n + 1)`` unless given) and returns the
    covariance :func:`covariance` at the solution.

    Args:
      f: ``f(xdata, *p) -> predictions`` shaped like ``ydata``.
      xdata, ydata: the data (NumPy or torch; ``ydata`` 1-D).
      p0: the start (``n`` numbers; default all ones, ``n`` from ``f``'s signature,
        moved to the middle of finite bounds or 1 inside a one-sided one, as scipy).
      sigma: standard deviations of ``ydata`` (1-D) or its covariance (2-D, NumPy).
      absolute_sigma: ``sigma`` is absolute (no rescaling of the covariance).
      bounds: as :func:`least_squares`.
      method: ``"lm"``, ``"trf"`` or ``None``.
      jac: ``jac(xdata, *p) -> (m, n)`` Jacobian of ``f`` in ``p``, or as
        :func:`least_squares`.
      **kwargs: passed to :func:`least_squares` (``maxfev`` is read as ``max_nfev``).

    Returns:
      ``(popt, pcov)``: the parameters (a NumPy array, or a tensor for torch data or
      ``p0``) and their covariance.

    >>> import numpy as np, fnopt
    >>> x = np.linspace(0, 4, 50)
    >>> y = 2.5 * np.exp(-1.3 * x) + 0.5 + 0.01 * np.sin(40 * x)
    >>> popt, pcov = fnopt.curve_fit(lambda x, a, b, c: a * np.exp(-b * x) + c, x, y)
    >>> np.round(popt, 2), pcov.shape
    (array([2.5, 1.3, 0.5]), (3, 3))

    Reference: scipy.optimize.curve_fit.
    """
    if p0 is None:  # ones, moved inside finite bounds (as scipy)
        n = _n_params(f)
        lb0, ub0 = _lsq.parse_bounds(bounds, np.zeros(n))
        start = np.ones(n)
        both, lo, hi = np.isfinite(lb0) & np.isfinite(ub0), np.isfinite(lb0), np.isfinite(ub0)
        start[lo & ~hi] = lb0[lo & ~hi] + 1.0
        start[hi & ~lo] = ub0[hi & ~lo] - 1.0
        start[both] = 0.5 * (lb0[both] + ub0[both])
        p0 = _backend.of_value(ydata).from_host(start, ydata)
    params = _as_params(p0)
    if _backend.is_array(ydata) and _backend.of(params) is not _backend.of_value(ydata):
        host = _lsq._host(params)
        params = _backend.of_value(ydata).from_numpy(host, ydata)
    lb, ub = _lsq.parse_bounds(bounds, params)
    has_bounds = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    method = method or ("trf" if has_bounds else "lm")
    if "maxfev" in kwargs:
        kwargs["max_nfev"] = kwargs.pop("maxfev")
    if method == "lm":
        kwargs.setdefault("ftol", 1.49012e-8)
        kwargs.setdefault("xtol", 1.49012e-8)
        kwargs.setdefault("gtol", 0.0)
        kwargs.setdefault("max_nfev", 200 * (_lsq._flatten(params).x.size + 1))
    w = _weights(sigma, ydata)

    def fun(p: Any) -> Any:
        return w(f(xdata, *p) - ydata)

    jac_ls = jac
    if callable(jac):
        def jac_ls(p: Any) -> Any:
            return w(jac(xdata, *p))
    res = least_squares(fun, params, jac=jac_ls, bounds=bounds, method=method, **kwargs)
    if not res.success:
        raise RuntimeError(f"curve_fit: optimal parameters not found: {res.message}")
    return res.x, covariance(res, absolute_sigma=absolute_sigma)
