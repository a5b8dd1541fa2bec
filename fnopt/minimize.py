"""``fnopt.minimize``: the interface of ``scipy.optimize.minimize`` on fnopt's optimizers.

Replacing ``scipy.optimize.minimize`` by ``fnopt.minimize`` in typical scipy code runs
and finds the same minimiser: the same arguments (``fun, x0, args, method, jac, hess,
hessp, bounds, tol, callback, options``), scipy's option names and defaults (but for
the method: fnopt's default is L-BFGS(-B); ``method=None`` picks scipy's), and an
:class:`OptimizeResult` with scipy's fields. Beyond scipy, ``x0`` may be any pytree of
NumPy arrays or torch tensors (``x`` comes back in the same form), ``jac=None`` on torch
inputs differentiates ``fun`` with ``torch.func``, and ``bounds`` may be a
:func:`fnopt.projections.box`.

Methods (case-insensitive):

* ``"L-BFGS-B"`` (also ``"lbfgs"``, the default, and ``"lbfgsb"``): :func:`fnopt.lbfgsb`.
  Options ``maxcor`` (10), ``ftol`` (2.2e-9), ``gtol``
  (1e-5, on the projected gradient's max-norm), ``maxiter`` (15000), ``maxfun``
  (15000), ``maxls`` (20), ``eps`` (finite-difference step).
* ``"BFGS"``: :func:`fnopt.bfgs` with :math:`H_0 = I` as in scipy (scipy's default
  without bounds: ``method=None``).
  Options ``gtol`` (1e-5, max-norm of the gradient), ``maxiter`` (200 n),
  ``c1``, ``c2``, ``eps``.
* ``"CG"``: :func:`fnopt.nonlinear_cg` (Polak-Ribière+), strong Wolfe with
  ``c2=0.4`` as in scipy. Options as BFGS.
* ``"Newton-CG"``: :func:`fnopt.newton_cg` with ``hess`` (a matrix), ``hessp``
  (products) or, without either, Hessian-vector products from ``torch.func`` (torch)
  or finite differences of the gradient (NumPy). Options ``xtol`` (1e-5: stop when
  the mean absolute step is below it), ``maxiter`` (200 n).

``tol`` sets ``ftol`` and ``gtol`` (L-BFGS-B), ``gtol`` (BFGS, CG) or ``xtol``
(Newton-CG), as in scipy. ``jac``: a callable ``jac(x, *args)``; ``True`` when
``fun`` returns ``(value, gradient)``; ``None`` (or ``"2-point"``/``"3-point"``) for
``torch.func`` on torch inputs and central differences on NumPy inputs (scipy uses
forward differences, so its ``nfev`` differs there). ``nfev`` counts calls of ``fun``
(the finite-difference ones included), ``njev`` gradient evaluations.

>>> import numpy as np, fnopt
>>> from scipy.optimize import rosen, rosen_der
>>> res = fnopt.minimize(rosen, [1.3, 0.7, 0.8, 1.9, 1.2], method="L-BFGS-B", jac=rosen_der)
>>> res.success, np.round(res.x, 4)
(True, array([1., 1., 1., 1., 1.]))
>>> res = fnopt.minimize(rosen, [1.3, 0.7], jac=rosen_der, bounds=[(0, 0.9), (None, 0.5)])
>>> res.message, np.round(res.x, 4)
('CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL', array([0.7086, 0.5   ]))
"""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import grad as _grad
from fnopt import stop as _stop
from fnopt import tree
from fnopt._base import Optimizer, Params, check_callable
from fnopt.loop import OptimizationError, Result, fixed_point
from fnopt.optimizers.lbfgsb import lbfgsb
from fnopt.optimizers.linesearch import strong_wolfe
from fnopt.optimizers.second_order import bfgs, newton_cg, nonlinear_cg
from fnopt.transforms.projections import Projection, box

__all__ = ["minimize", "OptimizeResult"]

_LBFGSB = ("l-bfgs-b", "lbfgs", "lbfgsb")
_METHODS = (*_LBFGSB, "bfgs", "cg", "newton-cg")
_OPTIONS = {
    "lbfgsb": {"maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls", "disp",
               "iprint", "finite_diff_rel_step"},
    "bfgs": {"gtol", "norm", "eps", "maxiter", "disp", "return_all", "c1", "c2",
             "finite_diff_rel_step", "xrtol"},
    "cg": {"gtol", "norm", "eps", "maxiter", "disp", "return_all", "c1", "c2",
           "finite_diff_rel_step"},
    "newton-cg": {"xtol", "eps", "maxiter", "disp", "return_all", "c1", "c2"},
}


@attrs.frozen(slots=True)
class OptimizeResult:
    """The result of :func:`minimize`, with ``scipy.optimize.OptimizeResult``'s fields
    (read as attributes or as ``res["x"]``).

    Attributes:
      x: the solution, in the form of ``x0`` (a flat array for a list ``x0``).
      fun: the loss at ``x`` (a float).
      jac: the gradient at ``x`` (unprojected, as scipy's L-BFGS-B reports it).
      nit: iterations.
      nfev: calls of ``fun``.
      njev: gradient evaluations (calls of ``jac``, or of the derived gradient).
      nhev: Hessian (or Hessian-vector product) evaluations (Newton-CG).
      success: whether a convergence test held.
      status: 0 converged; 1 iteration or evaluation limit; 2 the line search found no
        step; 3 NaN/inf; 99 the callback raised ``StopIteration``.
      message: scipy's sentence for the status.
      result: the :class:`fnopt.Result` of the underlying :func:`fnopt.fixed_point` run.
    """

    x: Any
    fun: float
    jac: Any
    nit: int
    nfev: int
    njev: int
    nhev: int
    success: bool
    status: int
    message: str
    result: Result = attrs.field(repr=False)

    def __getitem__(self, key: str) -> Any:
        if key not in attrs.fields_dict(OptimizeResult):
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        """The field names, as a mapping's keys."""
        return list(attrs.fields_dict(OptimizeResult))


# -- counted function and gradient ---------------------------------------------------------


@attrs.define
class _Counts:
    nfev: int = 0
    njev: int = 0
    nhev: int = 0


def _as_params(x0: Any) -> Params:
    """``x0`` as fnopt params: a pytree of arrays as it is (integer NumPy leaves cast to
    float64, as scipy does), anything else through ``np.asarray(x0, float64)``."""
    leaves = optree.tree_leaves(x0)
    if leaves and all(_backend.is_array(leaf) for leaf in leaves):
        return optree.tree_map(lambda a: _backend.of_value(a).to_floating(a), x0)
    try:
        arr = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(
            f"x0: expected an array, a sequence of numbers or a pytree of arrays/tensors, "
            f"got {type(x0).__name__}"
        ) from None
    if arr.size == 0:
        raise ValueError("x0: expected at least one element, got an empty array")
    return arr


def _like(g: Any, params: Params, what: str) -> Any:
    """A gradient from the user as a pytree like ``params`` (a flat NumPy array may
    come back as a list or with another dtype, as scipy allows)."""
    if isinstance(params, np.ndarray):
        g = np.asarray(_backend.to_numpy(g), dtype=params.dtype)
        if g.size != params.size:
            raise ValueError(f"{what}: returned {g.size} values for {params.size} parameters")
        return g.reshape(params.shape)
    return g


def _value(v: Any, params: Params) -> Any:
    if isinstance(params, np.ndarray) and not isinstance(v, np.ndarray):
        return np.asarray(_backend.to_numpy(v), dtype=params.dtype).reshape(())
    return v


def _grad_fn(fun: Callable[..., Any], jac: Any, args: tuple[Any, ...], x: Params,
             counts: _Counts, eps: float | None) -> Callable[[Params], tuple[Any, Any]]:
    """``grad_fn(x) -> (value, grad)`` from scipy's ``fun``/``jac``, counting calls."""

    def f(p: Params) -> Any:
        counts.nfev += 1
        return fun(p, *args)

    if jac is True:
        def both(p: Params) -> tuple[Any, Any]:
            counts.njev += 1
            v, g = f(p)
            return _value(v, p), _like(g, p, "fun")
        return both
    if callable(jac):
        def separate(p: Params) -> tuple[Any, Any]:
            counts.njev += 1
            return _value(f(p), p), _like(jac(p, *args), p, "jac")
        return separate
    if jac not in (None, False, "2-point", "3-point"):
        raise ValueError(
            f"jac: expected a callable, True, None, '2-point' or '3-point', got {jac!r}"
        )
    inner = (_grad.torch_func(f) if _backend.of(x).has_autodiff
             else _grad.finite_differences(lambda p: _value(f(p), p), step=eps))

    def derived(p: Params) -> tuple[Any, Any]:
        counts.njev += 1
        return inner(p)
    return derived


# -- bounds ------------------------------------------------------------------------------


def _is_pair(b: Any) -> bool:
    return isinstance(b, (tuple, list)) and len(b) == 2 and all(
        v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
        for v in b
    )


def _from_flat(v: np.ndarray, params: Params) -> Params:
    leaves, spec = optree.tree_flatten(params)
    out, i = [], 0
    for leaf in leaves:
        n = int(np.prod(tuple(leaf.shape)))
        out.append(v[i:i + n].reshape(tuple(leaf.shape)))
        i += n
    return spec.unflatten(out)


def _box_from(bounds: Any, params: Params) -> Projection | None:
    """scipy's ``bounds`` (pairs with ``None``, or ``Bounds(lb, ub)``), a box, or a
    ``(lower, upper)`` pair of numbers/pytrees, as a :func:`fnopt.projections.box`."""
    if bounds is None or isinstance(bounds, Projection):
        return bounds
    n = sum(int(np.prod(tuple(leaf.shape))) for leaf in optree.tree_leaves(params))
    so = sys.modules.get("scipy.optimize")
    if so is not None and isinstance(bounds, so.Bounds):
        lo = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), (n,)) if np.size(
            bounds.lb) in (1, n) else None
        hi = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), (n,)) if np.size(
            bounds.ub) in (1, n) else None
        if lo is None or hi is None:
            raise ValueError(f"bounds: lb and ub need 1 or {n} values (one per element of x0)")
    elif isinstance(bounds, Sequence) and bounds and all(_is_pair(b) for b in bounds):
        if len(bounds) != n:
            raise ValueError(
                f"bounds: expected {n} (lower, upper) pairs, one per element of x0, got "
                f"{len(bounds)}"
            )
        lo = np.array([-math.inf if b[0] is None else float(b[0]) for b in bounds])
        hi = np.array([math.inf if b[1] is None else float(b[1]) for b in bounds])
    elif isinstance(bounds, (tuple, list)) and len(bounds) == 2:
        return box(bounds[0], bounds[1])
    else:
        raise ValueError(
            f"bounds: expected {n} (lower, upper) pairs, a scipy.optimize.Bounds, "
            f"fnopt.projections.box(lower, upper) or a (lower, upper) pair; got {bounds!r}"
        )
    bad = np.nonzero(lo > hi)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"bounds: lower > upper for element {i} ({lo[i]} > {hi[i]}); expected lower <= upper"
        )
    return box(_from_flat(lo, params), _from_flat(hi, params))


# -- stopping tests as scipy states them ----------------------------------------------------


@attrs.frozen(slots=True)
class _RelativeReduction(_stop.Criterion):
    """scipy L-BFGS-B's ``ftol``: :math:`(f_{k-1} - f_k) / \\max(|f_{k-1}|, |f_k|, 1)
    \\le` ``ftol``."""

    ftol: float
    reason = _stop.Reason.LOSS_CHANGE_BELOW

    def check(self, info: _stop.Info, state: Any) -> tuple[tuple[_stop.Criterion, ...], Any]:
        prev, cur = info.prev_value, info.value
        if math.isnan(prev):
            return (), state
        hit = prev - cur <= self.ftol * max(abs(prev), abs(cur), 1.0)
        return ((self,) if hit else ()), state


def _proj_grad_max_below(gtol: float) -> _stop.Criterion:
    """scipy L-BFGS-B's ``pgtol``: the projected gradient's max-norm (``state.pg_max``)."""
    return _stop.criterion(lambda info: float(info.state.pg_max) <= gtol, reads=("state",),
                           reason="grad_norm_below", name=f"pgtol {gtol:g}")


def _grad_max_below(gtol: float) -> _stop.Criterion:
    """scipy BFGS/CG's ``gtol``: the largest gradient element (``state.grads``)."""
    return _stop.criterion(lambda info: _max_abs(info.state.grads) <= gtol, reads=("state",),
                           reason="grad_norm_below", name=f"gtol {gtol:g}")


@attrs.frozen(slots=True)
class _StepBelow(_stop.Criterion):
    """scipy Newton-CG's ``xtol``: :math:`\\sum_i |x_k - x_{k-1}|_i \\le n\\,` ``xtol``."""

    total: float
    reason = _stop.Reason.PARAM_CHANGE_BELOW

    def check(self, info: _stop.Info, state: Any) -> tuple[tuple[_stop.Criterion, ...], Any]:
        if info.prev_params is None:
            return (), state
        step = sum(float(np.abs(_backend.to_numpy(a)).sum())
                   for a in tree.leaves(tree.sub(info.params, info.prev_params)))
        return ((self,) if step <= self.total else ()), state


@attrs.frozen(slots=True, eq=False)
class _MaxEvals(_stop.Criterion):
    """``maxfun``: the calls of ``fun`` so far (a counter the gradient updates)."""

    counts: _Counts
    limit: int
    reason = _stop.Reason.MAX_ITERS

    def check(self, info: _stop.Info, state: Any) -> tuple[tuple[_stop.Criterion, ...], Any]:
        return ((self,) if self.counts.nfev >= self.limit else ()), state

    def describe(self, info: _stop.Info) -> str:
        return f"{self.counts.nfev} function evaluations >= maxfun={self.limit}"


def _max_abs(g: Any) -> float:
    return max(float(np.abs(_backend.to_numpy(a)).max()) for a in tree.leaves(g))


# -- the driver ---------------------------------------------------------------------------


def _options(method: str, options: dict[str, Any] | None, tol: float | None,
             n: int) -> dict[str, Any]:
    key = "lbfgsb" if method in _LBFGSB else method
    opts = dict(options or {})
    unknown = sorted(set(opts) - _OPTIONS[key])
    if unknown:
        warnings.warn(f"options: unknown solver options for {method}: {', '.join(unknown)}",
                      RuntimeWarning, stacklevel=3)
    if key == "lbfgsb":
        defaults = {"maxcor": 10, "ftol": 2.220446049250313e-09, "gtol": 1e-5,
                    "maxiter": 15000, "maxfun": 15000, "maxls": 20}
        if tol is not None:
            defaults.update(ftol=tol, gtol=tol)
    elif key == "newton-cg":
        defaults = {"xtol": 1e-5 if tol is None else tol, "maxiter": 200 * n}
    else:
        defaults = {"gtol": 1e-5 if tol is None else tol, "maxiter": 200 * n,
                    "c1": 1e-4, "c2": 0.9 if key == "bfgs" else 0.4}
    return {**defaults, **opts}


def _optimizer(method: str, o: dict[str, Any], box_: Projection | None, fun: Any,
               args: tuple[Any, ...], hess: Any, hessp: Any, grad_fn: Any, x: Params,
               counts: _Counts) -> tuple[Optimizer, _stop.Criterion]:
    if method in _LBFGSB:
        opt = lbfgsb(bounds=box_, memory_size=int(o["maxcor"]),
                     search=strong_wolfe(1e-3, 0.9, max_trials=int(o["maxls"])))
        return opt, (_proj_grad_max_below(float(o["gtol"])) | _RelativeReduction(
            float(o["ftol"])) | _MaxEvals(counts, int(o["maxfun"])))
    if method in ("bfgs", "cg"):
        search = strong_wolfe(float(o["c1"]), float(o["c2"]))
        if method == "bfgs":
            opt = bfgs(scale_init=False, search=search)
        else:
            opt = nonlinear_cg(search=search)
        return opt, _grad_max_below(float(o["gtol"]))

    def counted(h: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any) -> Any:
            counts.nhev += 1
            return h(*a)
        return call

    if hessp is not None:
        hvp = counted(lambda p, v: _like(hessp(p, v, *args), p, "hessp"))
    elif hess is not None:
        hvp = counted(_grad.hvp_from_hessian(_grad.hessian_from_function(
            lambda p: hess(p, *args))))
    elif _backend.of(x).has_autodiff:
        hvp = counted(_grad.hvp_torch(lambda p: fun(p, *args)))
    else:
        hvp = counted(_grad.hvp_finite_differences(grad_fn))
    n = sum(int(np.prod(tuple(leaf.shape))) for leaf in tree.leaves(x))
    return newton_cg(hvp), _StepBelow(float(o["xtol"]) * n)


_STATUS = {
    _stop.Reason.MAX_ITERS: 1,
    _stop.Reason.LINE_SEARCH_FAILED: 2,
    _stop.Reason.NON_FINITE: 3,
    _stop.Reason.CALLBACK: 99,
}


def _message(method: str, r: Result, status: int) -> str:
    if status == 99:
        return "`callback` raised `StopIteration`."
    if method in _LBFGSB:
        if r.reason is _stop.Reason.GRAD_NORM_BELOW:
            return "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"
        if r.reason is _stop.Reason.LOSS_CHANGE_BELOW:
            return "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH"
        if status == 1:
            return ("STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT" if "maxfun" in r.message
                    else "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT")
        return f"ABNORMAL: {r.message}"
    if status == 0:
        return "Optimization terminated successfully."
    if status == 1:
        return "Maximum number of iterations has been exceeded."
    if status == 2:
        return "Desired error not necessarily achieved due to precision loss."
    return "NaN result encountered." if status == 3 else r.message


def _callback(callback: Any) -> Callable[[_stop.Info], bool] | None:
    """scipy's ``callback(xk)`` or ``callback(intermediate_result=...)``; raising
    ``StopIteration`` stops the run (status 99)."""
    if callback is None:
        return None
    check_callable(callback, "callback")
    try:
        new_style = "intermediate_result" in inspect.signature(callback).parameters
    except (TypeError, ValueError):
        new_style = False

    def cb(info: _stop.Info) -> bool:
        try:
            if new_style:
                callback(intermediate_result=_Intermediate(info.params, info.value))
            else:
                callback(info.params)
        except StopIteration:
            return True
        return False

    return cb


@attrs.frozen(slots=True)
class _Intermediate:
    """What a new-style scipy callback receives: ``x`` and ``fun``."""

    x: Any
    fun: float


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    args: Any = (),
    method: str | None = "lbfgs",
    jac: Any = None,
    hess: Callable[..., Any] | None = None,
    hessp: Callable[..., Any] | None = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: float | None = None,
    callback: Callable[..., Any] | None = None,
    options: dict[str, Any] | None = None,
) -> OptimizeResult:
    """Minimise ``fun(x, *args)`` like ``scipy.optimize.minimize``, on fnopt's optimizers.

    .. math:: \\min_x f(x) \\quad \\text{s.t.} \\quad l \\le x \\le u \\ (\\text{with bounds})

    The run is one :func:`fnopt.fixed_point` of the chosen optimizer with scipy's
    stopping tests as criteria (see the module docstring for methods and options).

    Args:
      fun: ``fun(x, *args) -> float`` (a 0-d tensor for torch ``x``).
      x0: the start: a sequence of numbers, an array, or a pytree of NumPy arrays or
        torch tensors (float32/float64); projected onto the bounds first.
      args: extra positional arguments for ``fun``, ``jac``, ``hess``, ``hessp``.
      method: ``"lbfgs"`` (the default; also ``"L-BFGS-B"``), ``"BFGS"``, ``"CG"``,
        ``"Newton-CG"``, or ``None`` for scipy's choice (L-BFGS-B with bounds, BFGS
        without).
      jac: ``jac(x, *args)``, ``True`` (``fun`` returns ``(f, g)``) or ``None``.
      hess, hessp: Newton-CG's ``hess(x, *args)`` (an ``n x n`` matrix) or
        ``hessp(x, p, *args)``.
      bounds: ``n`` pairs ``(lower, upper)`` (``None`` for no bound), a
        ``scipy.optimize.Bounds``, :func:`fnopt.projections.box` or a
        ``(lower, upper)`` pair of numbers or pytrees like ``x0``; L-BFGS-B only
        (other methods warn and ignore them, as scipy).
      constraints: not supported; must be empty.
      tol: the tolerance for the method's main test (see the module docstring).
      callback: ``callback(xk)`` or ``callback(intermediate_result)`` after each
        iteration; raising ``StopIteration`` stops (status 99).
      options: the method's options, by scipy's names.

    Returns:
      An :class:`OptimizeResult`.

    Raises:
      ValueError / TypeError: naming the argument (an unknown method, bounds of the
        wrong length or with lower > upper, constraints, a bad ``x0`` or ``jac``).

    >>> import numpy as np, fnopt
    >>> res = fnopt.minimize(lambda x, a: ((x - a) ** 2).sum(), np.zeros(3), args=(2.0,),
    ...                      bounds=[(None, 1.0)] * 3)
    >>> res.x, res.status, res["nit"]
    (array([1., 1., 1.]), 0, 2)
    """
    check_callable(fun, "fun")
    if not isinstance(args, tuple):
        args = (args,)
    if constraints not in ((), [], None):
        raise ValueError("constraints: not supported by fnopt.minimize (bounds only)")
    x = _as_params(x0)
    method = _method_name(method, bounds)
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                            or not tol >= 0):
        raise ValueError(f"tol: expected a number >= 0, got {tol!r}")
    n = sum(int(np.prod(tuple(leaf.shape))) for leaf in optree.tree_leaves(x))
    o = _options(method, options, tol, n)
    box_ = None
    if method in _LBFGSB:
        box_ = _box_from(bounds, x)
    elif bounds is not None:
        warnings.warn(f"Method {method} cannot handle constraints nor bounds.",
                      RuntimeWarning, stacklevel=2)
    if method == "newton-cg" and jac is None and not _backend.of(x).has_autodiff:
        raise ValueError("jac: Newton-CG needs the gradient (jac) for NumPy inputs")
    counts = _Counts()
    grad_fn = _grad_fn(fun, jac, args, x, counts, o.get("eps") if jac is None else None)
    opt, crit = _optimizer(method, o, box_, fun, args, hess, hessp, grad_fn, x, counts)
    stop = crit | _stop.max_iters(int(o["maxiter"]))
    try:
        r = fixed_point(opt, x, grad_fn, stop=stop, callback=_callback(callback))
    except OptimizationError as exc:  # fun, jac or callback raised: theirs, as scipy
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise
    return _scipy_result(method, r, counts)


def _method_name(method: Any, bounds: Any) -> str:
    """``method`` lower-cased, checked; ``None``: scipy's choice (L-BFGS-B with bounds,
    BFGS without)."""
    if method is None:
        method = "l-bfgs-b" if bounds is not None else "bfgs"
    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(
            f"method: expected one of 'L-BFGS-B', 'BFGS', 'CG', 'Newton-CG', 'lbfgs'; "
            f"got {method!r}"
        )
    return method.lower()


def _scipy_result(method: str, r: Result, counts: _Counts) -> OptimizeResult:
    """The :class:`OptimizeResult` of the run ``r`` (scipy's status codes and message)."""
    status = 0 if r.converged else _STATUS.get(r.reason, 2)
    return OptimizeResult(
        x=r.params, fun=float(_backend.to_numpy(r.value)), jac=r.state.grads,
        nit=r.iterations, nfev=counts.nfev, njev=counts.njev, nhev=counts.nhev,
        success=status == 0, status=status, message=_message(method, r, status), result=r,
    )
