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
from typing import Any, NamedTuple

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import minimize as _minimize_module
from fnopt import tree as _tree
from fnopt._lsq_wrap import HostProblem, dense_jacobian
from fnopt.grad import residuals as _res
from fnopt.loop import StepFailed
from fnopt.optimizers import dogbox as _dogbox
from fnopt.optimizers import lsq as _lsq
from fnopt.optimizers._lsq_loss import RobustLoss, robust_loss

__all__ = ["least_squares", "curve_fit", "covariance", "LeastSquaresResult"]

_MESSAGES = {
    -2: "Stopped because `callback` function raised `StopIteration` or returned `True`",
    0: _lsq.STATUS_MESSAGES[5], **{k: _lsq.STATUS_MESSAGES[k] for k in (1, 2, 3, 4)},
}


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
    njev: int | None
    nit: int
    status: int
    message: str
    success: bool
    state: Any = None

    def __getitem__(self, key: str) -> Any:  # scipy's OptimizeResult is also a dict
        if key not in attrs.fields_dict(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        """The field names, as a mapping's keys."""
        return list(attrs.fields_dict(type(self)))

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

_EPS = float(np.finfo(np.float64).eps)
# the keyword arguments of scipy.sparse.linalg.lsmr, and trf's "regularize"
_TR_OPTIONS = frozenset({"damp", "atol", "btol", "conlim", "maxiter", "show", "regularize"})


class IntermediateResult(dict[str, Any]):
    """What a ``callback(intermediate_result)`` receives: ``x``, ``fun``, ``cost``,
    ``nit``, ``nfev`` (read as attributes or keys, as scipy's ``OptimizeResult``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _as_params(x0: Any) -> Any:
    """``x0`` as fnopt params: NumPy-like input (numbers, lists, arrays) becomes a 1-D
    float64 array (``ValueError`` naming ``x0`` for complex or multi-dimensional input,
    as scipy); a tensor or another pytree is kept (fnopt's extension)."""
    leaves: list[Any] = optree.tree_leaves(x0)
    numpy_like = isinstance(x0, np.ndarray) or (
        isinstance(x0, (list, tuple, int, float, complex, np.generic))
        and all(isinstance(v, (int, float, complex, np.generic)) for v in leaves)
    )
    if not numpy_like:
        return x0
    arr = np.asarray(x0)
    if np.iscomplexobj(arr):
        raise ValueError("x0: must be real, got complex values")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"x0: expected real numbers, got dtype {arr.dtype}")
    arr = np.atleast_1d(arr).astype(np.float64)
    if arr.ndim > 1:
        raise ValueError(f"x0: must have at most 1 dimension, got shape {arr.shape}")
    return arr


def _check_choices(method: Any, jac: Any, tr_solver: Any, loss: Any, f_scale: Any,
                   verbose: Any, max_nfev: Any) -> RobustLoss | None:
    if method not in ("trf", "dogbox", "lm"):
        raise ValueError(f"method: expected 'trf', 'dogbox' or 'lm', got {method!r}")
    if not (callable(jac) or jac is None or jac in ("2-point", "3-point", "cs")):
        raise ValueError(f"jac: expected '2-point', '3-point', 'cs' or a callable, got {jac!r}")
    if tr_solver not in (None, "exact", "lsmr"):
        raise ValueError(f"tr_solver: expected None, 'exact' or 'lsmr', got {tr_solver!r}")
    rl = robust_loss(loss, f_scale)
    if method == "lm" and rl is not None:
        raise ValueError(f"loss: method='lm' supports only 'linear', got {loss!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
    if max_nfev is not None and (isinstance(max_nfev, bool) or not isinstance(
            max_nfev, (int, np.integer)) or max_nfev <= 0):
        raise ValueError(f"max_nfev: expected None or an int > 0, got {max_nfev!r}")
    return rl


def _check_tolerances(ftol: Any, xtol: Any, gtol: Any, method: str) -> tuple[float, ...]:
    """scipy's rule: ``None`` disables a test (0); one below machine epsilon warns; all
    three below it (any for ``"lm"``) is a ``ValueError``."""
    out = []
    for name, tol in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol)):
        if tol is None:
            out.append(0.0)
            continue
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.number)) or not (
                float(tol) >= 0 and math.isfinite(tol)):
            raise ValueError(f"{name}: expected None or a finite number >= 0, got {tol!r}")
        if tol < _EPS:
            warnings.warn(f"{name}: a value below the machine epsilon ({_EPS:.2e}) disables "
                          "the corresponding termination test", UserWarning, stacklevel=3)
        out.append(float(tol))
    if method == "lm" and min(out) < _EPS:
        raise ValueError(f"ftol, xtol, gtol: method='lm' needs all three above the machine "
                         f"epsilon ({_EPS:.2e}), got {ftol!r}, {xtol!r}, {gtol!r}")
    if max(out) < _EPS:
        raise ValueError("ftol, xtol, gtol: at least one must be above the machine epsilon "
                         f"({_EPS:.2e})")
    return tuple(out)


def _check_x_scale(x_scale: Any, n: int, method: str) -> Any:
    if x_scale is None:
        return "jac" if method == "lm" else 1.0
    if isinstance(x_scale, str) and x_scale == "jac":
        return x_scale
    try:
        xs = np.asarray(x_scale, dtype=float)
        valid = bool(np.all(np.isfinite(xs)) and np.all(xs > 0))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"x_scale: expected 'jac' or positive numbers, got {x_scale!r}")
    if xs.ndim == 0:
        xs = np.full(n, float(xs))
    if xs.shape != (n,):
        raise ValueError(f"x_scale: expected a number or {n} numbers, got shape {xs.shape}")
    return xs


def _bounds_pair(bounds: Any) -> tuple[Any, Any]:
    lb, ub = getattr(bounds, "lb", None), getattr(bounds, "ub", None)
    if lb is not None and ub is not None and not isinstance(bounds, (tuple, list)):
        return lb, ub  # a scipy.optimize.Bounds
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ValueError("bounds: expected a (lower, upper) pair or a Bounds object")
    return bounds[0], bounds[1]


def _host_bounds(bounds: tuple[Any, Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for side, b in zip(("lower", "upper"), bounds):
        try:
            a = np.asarray(b, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bounds: the {side} bounds must be numbers, got {b!r}") from exc
        a = np.full(n, float(a)) if a.ndim == 0 else a
        if a.shape != (n,):
            raise ValueError(f"bounds: the {side} bounds have shape {a.shape}; expected a "
                             f"number or shape ({n},) like x0")
        if np.any(np.isnan(a)):
            raise ValueError(f"bounds: the {side} bounds contain NaN")
        out.append(a)
    return out[0], out[1]


def _check_tr_options(tr_options: Any, method: str, tr_solver: str) -> dict[str, Any]:
    opts = dict(tr_options or {})
    unknown = set(opts) - _TR_OPTIONS
    if tr_solver == "lsmr" and unknown:
        raise TypeError(f"tr_options: unknown option(s) {sorted(unknown)} for tr_solver="
                        f"'lsmr' (expected some of {sorted(_TR_OPTIONS)})")
    if method == "dogbox" and tr_solver == "lsmr" and "regularize" in opts:
        warnings.warn("tr_options: 'regularize' is not relevant for method='dogbox'",
                      UserWarning, stacklevel=3)
        del opts["regularize"]
    return opts


class _Setup(NamedTuple):
    params: Any
    res_fn: Any
    lb: np.ndarray
    ub: np.ndarray
    jac_kind: str
    analytic: bool = True


def _host_setup(fun: Callable[..., Any], x: np.ndarray, jac: Any, lb: np.ndarray,
                ub: np.ndarray, method: str, o: dict[str, Any]) -> _Setup:
    """Evaluate ``fun`` and ``jac`` at the NumPy start and check them as scipy does."""
    n = x.size
    if method == "trf":
        x = _lsq._k.strictly_inside(x, lb, ub, 1e-10)
    prob = HostProblem(fun, "2-point" if jac is None else jac, o["args"], o["kwargs"],
                       bounds=(lb, ub), diff_step=o["diff_step"], sparsity=o["jac_sparsity"])
    f0 = prob.residuals(x)
    if not np.all(np.isfinite(f0)):
        raise ValueError("x0: the residuals fun(x0) are not finite")
    m = f0.size
    if method == "lm" and m < n:
        raise ValueError(f"method: 'lm' needs at least as many residuals as variables, got "
                         f"{m} residuals for {n} variables (use 'trf')")
    if o["loss"] is not None:
        o["loss"].rho(np.asarray(f0, dtype=np.float64))  # checks a callable's shape
    _check_sparsity(o["jac_sparsity"], jac, method, o["tr_solver"], m, n)
    j0 = prob.jacobian(x, f0)
    if j0.shape != (m, n):
        raise ValueError(f"jac: expected an ({m}, {n}) Jacobian ({m} residuals x {n} "
                         f"variables), got shape {j0.shape}")
    if prob.kind != "dense" and method == "lm":
        raise ValueError("jac: method='lm' works only with dense Jacobian matrices")
    if prob.kind != "dense" and o["tr_solver"] == "exact":
        raise ValueError("jac: tr_solver='exact' works only with dense Jacobian matrices")
    if prob.kind == "operator" and isinstance(o["x_scale"], str):
        raise ValueError("x_scale: 'jac' cannot be used when jac returns a LinearOperator")
    prob.prime(x, f0, j0)
    return _Setup(x, prob, lb, ub, prob.kind, callable(jac))


def _check_sparsity(sparsity: Any, jac: Any, method: str, tr_solver: Any, m: int,
                    n: int) -> None:
    if sparsity is None or callable(jac):
        return
    if method == "lm":
        raise ValueError("jac_sparsity: method='lm' does not support it")
    if tr_solver == "exact":
        raise ValueError("jac_sparsity: tr_solver='exact' is incompatible with it")
    shape = dense_jacobian(sparsity, n).shape
    if shape != (m, n):
        raise ValueError(f"jac_sparsity: expected shape ({m}, {n}), got {shape}")


def _tree_setup(fun: Callable[..., Any], params: Any, jac: Any, bounds: tuple[Any, Any],
                method: str, o: dict[str, Any]) -> _Setup:
    """A tensor or pytree start: fnopt's providers (``torch.func`` for ``jac=None``)."""
    lb, ub = _lsq.parse_bounds(bounds, params)
    if method == "lm" and (np.any(np.isfinite(lb)) or np.any(np.isfinite(ub))):
        raise ValueError("bounds: method='lm' does not support bounds (use 'trf')")
    if jac == "cs":
        raise ValueError("jac: 'cs' (complex step) needs a NumPy x0")
    args, kwargs = o["args"], o["kwargs"]

    def f(p: Any) -> Any:
        return fun(_tree.clone(p), *args, **kwargs)

    if callable(jac):
        res_fn = _res.residuals_from_functions(
            f, lambda p: jac(_tree.clone(p), *args, **kwargs))
    elif jac is None and _backend.of(params).has_autodiff:
        res_fn = _res.residuals_torch(f)
    else:
        res_fn = _res.residuals_finite_differences(f, method=jac or "2-point")
    return _Setup(params, res_fn, lb, ub, "dense")


def _wrap_callback(callback: Any) -> Callable[[Any], bool] | None:
    """``callback(intermediate_result)`` or ``callback(x)`` (scipy's two forms); the
    wrapper is true when the run must stop (``StopIteration`` raised or ``True``
    returned)."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback: expected a callable or None, got {type(callback).__name__}")
    try:
        names = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        names = []
    new_style = names == ["intermediate_result"]

    def call(info: Any) -> bool:
        try:
            out = callback(info if new_style else info["x"])
        except StopIteration:
            return True
        return out is True

    return call


def _run(opt: Any, params: Any, res_fn: Any, callback: Any, flat_fun: Any) -> tuple[Any, Any]:
    state = opt.init(params)
    try:
        while True:
            params, state = opt.step(params, res_fn, state)
            if callback is not None and callback(IntermediateResult(
                    x=params, fun=flat_fun(state), nit=state.count, nfev=state.n_fev,
                    cost=float(state.value))):
                return params, state._replace(status=-2)
    except _lsq.LeastSquaresStop as stop:
        return params, stop.state
    except _lsq.NonFiniteStart:
        raise ValueError("x0: the residuals fun(x0) are not finite") from None
    except StepFailed as exc:  # a non-finite Jacobian
        raise ValueError(f"jac: {exc.message}") from None


def _optimizer(method: str, setup: _Setup, tols: tuple[float, ...], max_nfev: int,
               x_scale: Any, o: dict[str, Any]) -> Any:
    ftol, xtol, gtol = tols
    if method == "lm":
        return _lsq.levenberg_marquardt(ftol=ftol, xtol=xtol, gtol=gtol, max_nfev=max_nfev,
                                        x_scale=x_scale, factor=o["factor"])
    make = _lsq.trust_region_reflective if method == "trf" else _dogbox.dogbox
    return make(bounds=(setup.lb, setup.ub), ftol=ftol, xtol=xtol, gtol=gtol,
                max_nfev=max_nfev, x_scale=x_scale, loss=o["loss_arg"], f_scale=o["f_scale"])


def least_squares(
    fun: Callable[..., Any],
    x0: Any,
    jac: Any = None,
    bounds: Any = (-math.inf, math.inf),
    method: str = "trf",
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: Any = None,
    loss: Any = "linear",
    f_scale: float = 1.0,
    diff_step: Any = None,
    tr_solver: str | None = None,
    tr_options: dict[str, Any] | None = None,
    jac_sparsity: Any = None,
    max_nfev: int | None = None,
    verbose: int = 0,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    callback: Callable[..., Any] | None = None,
    workers: Any = None,
) -> LeastSquaresResult:
    """Solve :math:`\\min_x \\tfrac12\\sum_i C^2\\rho((f_i(x)/C)^2)` subject to
    ``lb <= x <= ub``, like ``scipy.optimize.least_squares`` (same arguments, defaults,
    errors and result fields).

    ``method="trf"`` (the default, as scipy) is :func:`fnopt.trust_region_reflective`;
    ``"dogbox"`` is :func:`fnopt.dogbox`; ``"lm"`` is
    :func:`fnopt.levenberg_marquardt` (MINPACK's strategy; no bounds, ``m >= n``, linear
    loss only, as scipy). The tests ``ftol``/``xtol``/``gtol`` are those of the method;
    ``None`` disables one (scipy's rule: not all three, and none for ``"lm"``).

    Args:
      fun: ``fun(x, *args, **kwargs) -> residuals`` (at most 1-D; a scalar is one
        residual). It receives a copy of ``x``: writing into it changes nothing.
      x0: the start: a number, a list or a 1-D array (NumPy, as scipy), or — fnopt's
        extension — a torch tensor or any pytree of them.
      jac: ``"2-point"``, ``"3-point"``, ``"cs"`` (finite differences with scipy's
        steps, inside the bounds; ``None``: ``"2-point"``, or ``torch.func`` for a
        torch ``x0``), or ``jac(x, *args, **kwargs) -> J`` (``m x n``; a NumPy array, a
        scipy sparse matrix or a ``LinearOperator``).
      bounds: ``(lower, upper)`` (numbers or ``n`` numbers) or a ``scipy.optimize.Bounds``.
      method: ``"trf"`` (default), ``"dogbox"`` or ``"lm"``.
      ftol, xtol, gtol: tolerances (>= 0 or ``None``).
      x_scale: ``None`` (``"jac"`` for lm, 1 otherwise, as scipy), ``"jac"`` or numbers.
      loss: ``"linear"``, ``"soft_l1"``, ``"huber"``, ``"cauchy"``, ``"arctan"`` or a
        callable ``rho(z) -> (3, m)`` (see :mod:`fnopt.optimizers._lsq_loss`).
      f_scale: the soft margin :math:`C` between inlier and outlier residuals.
      diff_step: relative finite-difference steps (``None``: scipy's defaults).
      tr_solver: ``None``, ``"exact"`` or ``"lsmr"`` (accepted and checked; the
        subproblem is always solved exactly, through an SVD of the dense Jacobian).
      tr_options: the options scipy passes to ``lsmr`` (checked; see ``tr_solver``).
      jac_sparsity: the ``m x n`` sparsity pattern of the finite-difference Jacobian
        (entries outside it are zero).
      max_nfev: residual evaluations allowed (default ``100 * n``).
      verbose: 0, 1 or 2 (>= 1 prints the message and counts at the end).
      args, kwargs: extra arguments of ``fun`` and ``jac``.
      callback: ``callback(intermediate_result)`` (fields ``x``, ``fun``, ``cost``,
        ``nit``, ``nfev``) or ``callback(x)``, after each iteration of ``"trf"`` and
        ``"dogbox"``; raising ``StopIteration`` or returning ``True`` stops the run
        with status -2. ``"lm"`` warns and ignores it (as scipy).
      workers: accepted for scipy compatibility; evaluations run one after another.

    Returns:
      A :class:`LeastSquaresResult`; ``.covariance()`` gives the parameter covariance.

    Raises:
      ValueError: naming the argument at fault, where scipy refuses a value.
      TypeError: naming the argument at fault, for an argument of the wrong type.

    >>> import numpy as np, fnopt
    >>> def fun(x):
    ...     return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])
    >>> res = fnopt.least_squares(fun, [-1.2, 1.0], method="lm")
    >>> res.success, np.round(res.x, 6), res.status
    (True, array([1., 1.]), 1)

    Reference: scipy.optimize.least_squares (same arguments and result fields).
    """
    return _least_squares(
        fun, x0, jac=jac, bounds=bounds, method=method, ftol=ftol, xtol=xtol, gtol=gtol,
        x_scale=x_scale, loss=loss, f_scale=f_scale, diff_step=diff_step,
        tr_solver=tr_solver, tr_options=tr_options, jac_sparsity=jac_sparsity,
        max_nfev=max_nfev, verbose=verbose, args=args, kwargs=kwargs, callback=callback,
        workers=workers)


def _least_squares(
    fun: Callable[..., Any],
    x0: Any,
    jac: Any = None,
    bounds: Any = (-math.inf, math.inf),
    method: str = "trf",
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: Any = None,
    loss: Any = "linear",
    f_scale: float = 1.0,
    diff_step: Any = None,
    tr_solver: str | None = None,
    tr_options: dict[str, Any] | None = None,
    jac_sparsity: Any = None,
    max_nfev: int | None = None,
    verbose: int = 0,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    callback: Callable[..., Any] | None = None,
    workers: Any = None,
    *,
    check_tols: bool = True,
    factor: float = 100.0,
) -> LeastSquaresResult:
    del workers
    rl = _check_choices(method, jac, tr_solver, loss, f_scale, verbose, max_nfev)
    params = _as_params(x0)
    lo, hi = _bounds_pair(bounds)
    host = isinstance(params, np.ndarray)
    o = {"args": tuple(args), "kwargs": {} if kwargs is None else kwargs, "loss": rl,
         "loss_arg": loss, "f_scale": f_scale, "diff_step": diff_step,
         "jac_sparsity": jac_sparsity, "tr_solver": tr_solver}
    if host:
        lb, ub = _host_bounds((lo, hi), params.size)
        if method == "lm" and (np.any(np.isfinite(lb)) or np.any(np.isfinite(ub))):
            raise ValueError("bounds: method='lm' does not support bounds (use 'trf')")
    else:
        lb, ub = _lsq.parse_bounds((lo, hi), params)
    if np.any(lb >= ub):
        raise ValueError("bounds: each lower bound must be strictly less than its upper bound")
    x_host = params if host else _lsq._flatten(params).x
    if np.any((x_host < lb) | (x_host > ub)):
        raise ValueError("x0: is infeasible: Initial guess is outside of provided bounds")
    n = x_host.size
    o["x_scale"] = _check_x_scale(x_scale, n, method)
    tols = (_check_tolerances(ftol, xtol, gtol, method) if check_tols
            else (float(ftol or 0), float(xtol or 0), float(gtol or 0)))
    setup = (_host_setup(fun, params, jac, lb, ub, method, o) if host
             else _tree_setup(fun, params, jac, (lo, hi), method, o))
    tr_solver = tr_solver or ("exact" if setup.jac_kind == "dense" else "lsmr")
    _check_tr_options(tr_options, method, tr_solver)
    cb = _wrap_callback(callback)
    if method == "lm" and cb is not None:
        warnings.warn("Callback function specified, but not supported with `lm` method. "
                      "(callback: ignored, as scipy)", UserWarning, stacklevel=2)
        cb = None
    max_nfev = 100 * n if max_nfev is None else int(max_nfev)
    opt = _optimizer(method, setup, tols, max_nfev, o["x_scale"], dict(o, factor=factor))
    x, state = _run(opt, setup.params, setup.res_fn, cb, _state_fun(setup.params))
    result = _result(x, state, setup, method, tols[1], rl)
    if verbose:
        print(f"{result.message}\nFunction evaluations {result.nfev}, final cost "
              f"{result.cost:.4e}, first-order optimality {result.optimality:.2e}.")
    return result


def _state_fun(like: Any) -> Callable[[Any], Any]:
    """The residuals a state holds, in the form ``fun`` returned them (NumPy) or on the
    params' backend."""
    if isinstance(like, np.ndarray):
        return lambda state: np.array(state.residuals)
    leaf = _tree.leaves(like)[0]
    return lambda state: _backend.of(like).from_numpy(np.asarray(state.residuals), leaf)


def _result(x: Any, state: Any, setup: _Setup, method: str, xtol: float,
            loss: RobustLoss | None) -> LeastSquaresResult:
    rh = np.asarray(state.residuals, dtype=np.float64)
    if state.jacobian is not None:  # what the method kept at the returned x
        jh = np.asarray(state.jacobian, dtype=np.float64)
    else:  # the final accepted step of lm: form J there once
        lin = setup.res_fn(x)
        jh = _lsq._host(lin.jacobian())
    rs, js, cost = _lsq._robust(rh, jh, loss)
    g = js.T @ rs
    xh = x if isinstance(x, np.ndarray) else _lsq._flatten(x).x
    lb, ub = setup.lb, setup.ub
    if method in ("trf", "dogbox"):
        v, _ = _lsq._k.scaling_vector(xh, g, lb, ub)
        optimality = float(np.max(np.abs(g * v))) if method == "trf" else float(
            np.max(np.abs(np.where(_active(xh, lb, ub, 0.0) * g < 0, 0.0, g)), initial=0.0))
        mask = _active(xh, lb, ub, xtol)
    else:
        optimality = float(np.max(np.abs(g), initial=0.0))
        mask = np.zeros(xh.size, dtype=int)
    status = 0 if state.status == 5 else state.status
    fun_v, jac_v, grad = _outputs(x, rh, js, g, setup)
    return LeastSquaresResult(
        x=x, cost=cost, fun=fun_v, jac=jac_v, grad=grad, optimality=optimality,
        active_mask=mask, nfev=state.n_fev,
        njev=None if method == "lm" and not setup.analytic else state.n_jev,
        nit=state.count, status=status, message=_MESSAGES[status], success=status > 0,
        state=state,
    )


def _outputs(x: Any, rh: np.ndarray, js: np.ndarray, g: np.ndarray, setup: _Setup
             ) -> tuple[Any, Any, Any]:
    if isinstance(x, np.ndarray):
        jac: Any = js
        if setup.jac_kind == "sparse" and isinstance(setup.res_fn, HostProblem):
            jac = _as_sparse_like(js, setup.res_fn)
        return rh, jac, g
    leaf = _tree.leaves(x)[0]
    be = _backend.of(x)
    r = be.from_numpy(rh, leaf)
    return r, be.from_numpy(js, leaf), be.from_numpy(g, leaf)


def _as_sparse_like(j: np.ndarray, prob: HostProblem) -> Any:
    """The final Jacobian in the sparse type ``jac`` returned (scipy returns it so)."""
    try:
        return prob.sparse_type(j)
    except (TypeError, ValueError, AttributeError):
        return j


def _active(x: np.ndarray, lb: np.ndarray, ub: np.ndarray, rtol: float) -> np.ndarray:
    """-1 / +1 where ``x`` is within ``rtol`` (relative) of its lower / upper bound."""
    mask = np.zeros(x.size, dtype=int)
    if rtol == 0:
        mask[x <= lb], mask[x >= ub] = -1, 1
        return mask
    lo = np.isfinite(lb) & (x - lb <= rtol * np.maximum(1.0, np.abs(lb)))
    hi = np.isfinite(ub) & (ub - x <= rtol * np.maximum(1.0, np.abs(ub)))
    mask[lo], mask[hi] = -1, 1
    return mask


# -- curve_fit ----------------------------------------------------------------------------

class _OptimizeWarning(UserWarning):
    """A warning of the scipy front doors (as ``scipy.optimize.OptimizeWarning``)."""


# one warning class for the whole scipy front door: fnopt.minimize's where it defines one
OptimizeWarning: type[UserWarning] = getattr(_minimize_module, "OptimizeWarning",
                                             _OptimizeWarning)


_LM_KWARGS = frozenset({"ftol", "xtol", "gtol", "maxfev", "epsfcn", "factor", "diag",
                        "col_deriv"})
_LS_KWARGS = frozenset(inspect.signature(least_squares).parameters) - {
    "fun", "x0", "jac", "bounds", "method", "args"} | {"maxfev"}


def _n_params(f: Callable[..., Any]) -> int:
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError) as exc:
        raise ValueError("p0: cannot infer the number of parameters of f; pass p0") from exc
    ps = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY,
                                                            p.POSITIONAL_OR_KEYWORD)]
    if len(ps) < 2:
        raise ValueError("f: unable to determine the number of fit parameters (f(x, p1, "
                         "p2, ...) has none); pass p0")
    return len(ps) - 1


def _feasible_start(lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Ones, moved to the middle of two finite bounds or 1 inside a one-sided one."""
    start = np.ones(lb.size)
    lo, hi = np.isfinite(lb), np.isfinite(ub)
    start[lo & ~hi] = lb[lo & ~hi] + 1.0
    start[hi & ~lo] = ub[hi & ~lo] - 1.0
    start[lo & hi] = 0.5 * (lb[lo & hi] + ub[lo & hi])
    return start


def _as_data(a: Any, name: str, check_finite: bool) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers, got {type(a).__name__}") from exc
    if check_finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: array must not contain infs or NaNs (check_finite=True)")
    return arr


def _nan_policy(xdata: Any, ydata: np.ndarray, sigma: Any, policy: Any
                ) -> tuple[Any, np.ndarray, Any]:
    if policy == "propagate":
        raise ValueError("nan_policy: `nan_policy='propagate'` is not supported by this "
                         "function.")
    if policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be one of {{None, 'raise', 'omit'}}, got {policy!r}")
    x_nan = np.isnan(xdata) if isinstance(xdata, np.ndarray) else np.zeros(0, bool)
    if not (np.any(x_nan) or np.any(np.isnan(ydata))):
        return xdata, ydata, sigma
    if policy == "raise":
        raise ValueError("xdata, ydata: The input contains nan values (nan_policy='raise')")
    has_nan = np.isnan(ydata).copy()
    if x_nan.size:
        has_nan |= x_nan.any(axis=tuple(range(x_nan.ndim - 1)))
    keep = ~has_nan
    if sigma is not None:
        sigma = np.asarray(sigma)
        sigma = sigma[keep] if sigma.ndim == 1 else (
            sigma[keep][:, keep] if sigma.ndim == 2 else sigma)
    return (xdata[..., keep] if x_nan.size else xdata), ydata[keep], sigma


def _transform(sigma: Any, m: int) -> Callable[[np.ndarray], np.ndarray]:
    """Residuals (or Jacobian rows) weighted by ``sigma``: divided by standard deviations
    (scalar or 1-D), or whitened by the Cholesky factor of a covariance (2-D)."""
    if sigma is None:
        return lambda r: r
    s = np.asarray(sigma, dtype=float)
    if s.size == 1 or s.shape == (m,):
        return lambda r: (r.T / s).T if s.shape == (m,) else r / s
    if s.shape == (m, m):
        try:
            low = np.linalg.cholesky(s)
        except np.linalg.LinAlgError as exc:
            raise ValueError("sigma: must be positive definite") from exc
        return lambda r: np.linalg.solve(low, r)
    raise ValueError(f"sigma: has incorrect shape {s.shape}; expected a number, ({m},) or "
                     f"({m}, {m})")


def _pivoted_qr(j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Q, R, perm`` with ``J[:, perm] = Q R`` (columns taken greedily by the largest
    remaining norm, as MINPACK's QR with column pivoting)."""
    a = j.copy()
    m, n = a.shape
    perm = np.arange(n)
    for k in range(min(m, n)):
        rest = np.einsum("ij,ij->j", a[k:, k:], a[k:, k:])
        p = k + int(np.argmax(rest))
        a[:, [k, p]], perm[[k, p]] = a[:, [p, k]], perm[[p, k]]
        q, _ = np.linalg.qr(a[:, : k + 1], mode="reduced")
        a[:, k + 1:] -= q[:, k:k + 1] @ (q[:, k:k + 1].T @ a[:, k + 1:])
    q, r = np.linalg.qr(j[:, perm], mode="reduced")
    return q, r, perm


def _lm_info(r: np.ndarray, j: np.ndarray, nfev: int) -> tuple[dict[str, Any], Any]:
    """leastsq's ``infodict`` and ``cov_x`` (``None`` when ``R`` is singular)."""
    q, rr, perm = _pivoted_qr(j)
    n = j.shape[1]
    fjac = np.zeros((n, j.shape[0]))
    fjac[:, : rr.shape[0]] = rr.T
    info = {"nfev": nfev, "fvec": r, "fjac": fjac, "ipvt": perm + 1, "qtf": q.T @ r}
    if rr.shape[0] < n or np.any(np.diag(rr) == 0):
        return info, None
    inv_r = np.linalg.solve(np.triu(rr), np.eye(n))
    inv_r[perm] = inv_r.copy()
    return info, inv_r @ inv_r.T


def _pinv_cov(j: np.ndarray) -> np.ndarray:
    _, s, vt = np.linalg.svd(j, full_matrices=False)
    keep = s > np.finfo(float).eps * max(j.shape) * s[0]
    return (vt[keep].T / s[keep] ** 2) @ vt[keep]


def _split_kwargs(kwargs: dict[str, Any], method: str) -> dict[str, Any]:
    if "args" in kwargs:
        raise ValueError("args: is not a supported keyword argument of curve_fit")
    allowed = _LM_KWARGS if method == "lm" else _LS_KWARGS
    bad = sorted(set(kwargs) - allowed)
    if bad:
        raise TypeError(f"curve_fit() got an unexpected keyword argument {bad[0]!r} (for "
                        f"method={method!r} it passes on {sorted(allowed)})")
    return dict(kwargs)


def _fit_lm(func: Callable[..., Any], jac: Any, p0: np.ndarray, kw: dict[str, Any]
            ) -> tuple[np.ndarray, Any, dict[str, Any], str, int]:
    n = p0.size
    maxfev = kw.pop("maxfev", 0) or (200 if jac is None else 100) * (n + 1)
    diag = kw.pop("diag", None)
    epsfcn = kw.pop("epsfcn", None)
    kw.pop("col_deriv", None)
    factor = kw.pop("factor", 100.0)
    opts = {"ftol": kw.pop("ftol", 1.49012e-8), "xtol": kw.pop("xtol", 1.49012e-8),
            "gtol": kw.pop("gtol", 0.0)}
    res = _least_squares(
        func, p0, jac=jac, method="lm", max_nfev=int(maxfev),
        x_scale=None if diag is None else 1.0 / np.asarray(diag, float),
        diff_step=max(float(epsfcn or 0.0), _EPS) ** 0.5,  # lmdif's relative step
        check_tols=False, factor=factor, **opts)
    if res.status not in (1, 2, 3, 4):
        raise RuntimeError(f"Optimal parameters not found: {res.message}")
    last = res.state.last_jacobian  # MINPACK factors the last Jacobian it evaluated
    j = np.asarray(res.jac if last is None else last, dtype=float)
    info, cov = _lm_info(np.asarray(res.fun), j, res.nfev)
    return res.x, cov, info, res.message, res.status


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: Any = None,
    sigma: Any = None,
    absolute_sigma: bool = False,
    check_finite: bool | None = None,
    bounds: Any = (-math.inf, math.inf),
    method: str | None = None,
    jac: Any = None,
    *,
    full_output: bool = False,
    nan_policy: str | None = None,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Fit ``ydata ~ f(xdata, *p)`` by least squares, like ``scipy.optimize.curve_fit``.

    Minimises :math:`\\|L^{-1}(f(x, p) - y)\\|^2` (``L`` = ``sigma`` for standard
    deviations, its Cholesky factor for a covariance) with :func:`least_squares`:
    ``method="lm"`` without bounds (leastsq's defaults: ``ftol = xtol = 1.49012e-8``,
    ``gtol = 0``, ``maxfev = 200 (n + 1)``, or ``100 (n + 1)`` with ``jac``) and
    ``"trf"`` with them, as scipy. The covariance is scipy's: from the inverse of the
    pivoted QR factor ``R`` for ``"lm"`` (infinite, with an :class:`OptimizeWarning`
    "Covariance of the parameters could not be estimated", when ``R`` is singular — an
    unidentifiable parameter — or when there are no more data than parameters), from
    the SVD pseudo-inverse of ``J`` otherwise; scaled by the reduced chi-square unless
    ``absolute_sigma``.

    Args:
      f: ``f(xdata, *p) -> predictions`` shaped like ``ydata``.
      xdata: the independent variable (any object ``f`` understands; a list, tuple or
        array is converted to a float array and checked).
      ydata: the data (``M`` numbers).
      p0: the start (default ones, ``n`` from ``f``'s signature, moved inside finite
        bounds as scipy).
      sigma: ``None``, a number, ``M`` standard deviations, or an ``M x M`` covariance.
      absolute_sigma: ``sigma`` is absolute (no rescaling of the covariance).
      check_finite: refuse inf/NaN in ``xdata``/``ydata`` (ValueError "array must not
        contain infs or NaNs"); default ``True`` unless ``nan_policy`` is given.
      bounds: ``(lower, upper)`` or a ``scipy.optimize.Bounds``.
      method: ``"lm"``, ``"trf"``, ``"dogbox"`` or ``None``.
      jac: ``jac(xdata, *p) -> (M, n)`` (weighted by ``sigma`` here), or a
        finite-difference scheme as :func:`least_squares`.
      full_output: also return ``infodict`` (``nfev``, ``fvec``; for ``"lm"`` also
        ``fjac``, ``ipvt``, ``qtf``), ``mesg`` and ``ier``.
      nan_policy: ``None``, ``"raise"`` or ``"omit"`` (drop the points with NaN).
      **kwargs: leastsq's ``ftol``, ``xtol``, ``gtol``, ``maxfev``, ``epsfcn``,
        ``factor``, ``diag`` (``"lm"``); else :func:`least_squares`'s (``maxfev``).

    Returns:
      ``(popt, pcov)``, or ``(popt, pcov, infodict, mesg, ier)`` with ``full_output``.
      With torch data or ``p0`` (fnopt's extension), ``popt`` and ``pcov`` are tensors.

    >>> import numpy as np, fnopt
    >>> x = np.linspace(0, 4, 50)
    >>> y = 2.5 * np.exp(-1.3 * x) + 0.5 + 0.01 * np.sin(40 * x)
    >>> popt, pcov = fnopt.curve_fit(lambda x, a, b, c: a * np.exp(-b * x) + c, x, y)
    >>> np.round(popt, 2), pcov.shape
    (array([2.5, 1.3, 0.5]), (3, 3))

    Reference: scipy.optimize.curve_fit.
    """
    if any(map(_differentiable, (ydata, p0, xdata))):
        return _curve_fit_tree(f, xdata, ydata, p0, sigma, absolute_sigma, bounds, method,
                               jac, full_output, kwargs)
    p0, lb, ub, method = _fit_start(f, p0, bounds, method)
    n = p0.size
    check_finite = (nan_policy is None) if check_finite is None else check_finite
    ydata = _as_data(ydata, "ydata", check_finite)
    if isinstance(xdata, (list, tuple, np.ndarray)):
        xdata = _as_data(xdata, "xdata", check_finite)
    if ydata.size == 0:
        raise ValueError("ydata: must not be empty")
    if not check_finite and nan_policy is not None:
        xdata, ydata, sigma = _nan_policy(xdata, ydata, sigma, nan_policy)
    w = _transform(sigma, ydata.size)
    kw = _split_kwargs(kwargs, method)

    def func(p: np.ndarray) -> np.ndarray:
        return w(np.asarray(f(xdata, *p)) - ydata)

    jac_ls = _weighted_jac(jac, xdata, w, method)
    if method == "lm":
        if ydata.size != 1 and n > ydata.size:
            raise TypeError(f"The number of func parameters={n} must not exceed the number "
                            f"of data points={ydata.size}")
        popt, pcov, info, mesg, ier = _fit_lm(func, jac_ls, p0, kw)
    else:
        if "max_nfev" not in kw:
            kw["max_nfev"] = kw.pop("maxfev", None)
        res = least_squares(func, p0, jac=jac_ls, bounds=(lb, ub), method=method, **kw)
        if not res.success:
            raise RuntimeError(f"Optimal parameters not found: {res.message}")
        popt, info, mesg, ier = res.x, {"nfev": res.nfev, "fvec": res.fun}, res.message, \
            res.status
        pcov = _pinv_cov(np.asarray(res.jac if not hasattr(res.jac, "toarray")
                                    else res.jac.toarray()))
    pcov = _scale_cov(pcov, info["fvec"], n, absolute_sigma)
    return (popt, pcov, info, mesg, ier) if full_output else (popt, pcov)


def _weighted_jac(jac: Any, xdata: Any, w: Callable[[np.ndarray], np.ndarray],
                  method: str) -> Any:
    if not callable(jac):
        return jac if jac is not None or method == "lm" else "2-point"

    def jac_ls(p: np.ndarray) -> np.ndarray:
        return w(np.asarray(jac(xdata, *p), dtype=float))

    return jac_ls


def _fit_start(f: Callable[..., Any], p0: Any, bounds: Any, method: Any
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """curve_fit's start, bounds and method, checked as scipy."""
    n = _n_params(f) if p0 is None else np.atleast_1d(np.asarray(p0, dtype=float)).size
    lb, ub = _host_bounds(_bounds_pair(bounds), n)
    p0 = _feasible_start(lb, ub) if p0 is None else np.atleast_1d(np.asarray(p0, float))
    bounded = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    method = method or ("trf" if bounded else "lm")
    if method not in ("lm", "trf", "dogbox"):
        raise ValueError(f"method: expected 'lm', 'trf', 'dogbox' or None, got {method!r}")
    if method == "lm" and bounded:
        raise ValueError("bounds: method='lm' only works for unconstrained problems; use "
                         "'trf' or 'dogbox'")
    if np.any((p0 < lb) | (p0 > ub)):
        raise ValueError("p0: Initial guess is outside of provided bounds")
    return p0, lb, ub, method


def _scale_cov(pcov: Any, fvec: np.ndarray, n: int, absolute_sigma: bool) -> np.ndarray:
    warn = pcov is None or bool(np.isnan(pcov).any())
    if warn:
        pcov = np.full((n, n), np.inf)
    elif not absolute_sigma:
        if fvec.size > n:
            pcov = pcov * (float(fvec @ fvec) / (fvec.size - n))
        else:
            pcov = np.full((n, n), np.inf)
            warn = True
    if warn:
        warnings.warn("Covariance of the parameters could not be estimated",
                      OptimizeWarning, stacklevel=3)
    return pcov


def _curve_fit_tree(f: Callable[..., Any], xdata: Any, ydata: Any, p0: Any, sigma: Any,
                    absolute_sigma: bool, bounds: Any, method: Any, jac: Any,
                    full_output: bool, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """curve_fit for torch data or ``p0`` (fnopt's extension): the fit runs on the
    tensors' backend (``torch.func`` Jacobians), the covariance by the SVD."""
    if p0 is None:
        n = _n_params(f)
        lb0, ub0 = _lsq.parse_bounds(_bounds_pair(bounds), np.zeros(n))
        p0 = _feasible_start(lb0, ub0)
    like = ydata if _differentiable(ydata) else (p0 if _differentiable(p0) else xdata)
    params = p0 if _differentiable(p0) else _backend.of_value(like).from_host(
        np.atleast_1d(np.asarray(p0, dtype=np.float64)), like)
    if not _differentiable(ydata):
        ydata = _backend.of_value(like).from_host(np.asarray(ydata, dtype=np.float64), like)
    w = _weights(sigma, ydata)
    kw = _split_kwargs(kwargs, "trf")
    if "maxfev" in kw:
        kw["max_nfev"] = kw.pop("maxfev")

    def fun(p: Any) -> Any:
        return w(f(xdata, *p) - ydata)

    jac_ls = jac
    if callable(jac):
        def jac_ls(p: Any) -> Any:
            return w(jac(xdata, *p))
    res = least_squares(fun, params, jac=jac_ls, bounds=bounds, method=method or "trf", **kw)
    if not res.success:
        raise RuntimeError(f"Optimal parameters not found: {res.message}")
    pcov = covariance(res, absolute_sigma=absolute_sigma)
    if full_output:
        return res.x, pcov, {"nfev": res.nfev, "fvec": res.fun}, res.message, res.status
    return res.x, pcov


def _differentiable(x: Any) -> bool:
    """Whether ``x`` lives on a backend with autodiff (fnopt's torch extension of the
    scipy interface) rather than being NumPy data or a plain sequence."""
    return _backend.of_value(x).has_autodiff


def _weights(sigma: Any, ydata: Any) -> Callable[[Any], Any]:
    """``w(r)``: residuals divided by ``sigma`` (a number or 1-D) on ``ydata``'s backend."""
    if sigma is None:
        return lambda r: r
    m = int(np.size(_backend.to_numpy(ydata)))
    if _differentiable(sigma):
        s = sigma
    else:
        sh = np.asarray(sigma, dtype=np.float64)
        if sh.size != 1 and sh.shape != (m,):
            raise ValueError(f"sigma: expected a number or shape ({m},) with torch data")
        s = _backend.of_value(ydata).from_host(sh.reshape(-1) if sh.size > 1 else sh, ydata)
    return lambda r: r / s
