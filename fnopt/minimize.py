r"""``fnopt.minimize``: the interface of ``scipy.optimize.minimize`` on fnopt's optimizers.

Replacing ``scipy.optimize.minimize`` by ``fnopt.minimize`` in typical scipy code runs
and finds the same minimiser: the same arguments (``fun, x0, args, method, jac, hess,
hessp, bounds, constraints, tol, callback, options``), scipy's option names and
defaults, scipy's default method (``method=None``: SLSQP with constraints, L-BFGS-B
with bounds, BFGS otherwise), and an :class:`OptimizeResult` with scipy's fields. The
user's functions receive a copy of ``x`` on every call (writing into it cannot corrupt
a run); a 1-element array is accepted as the loss; ``None`` or a complex loss is a
``TypeError`` naming ``fun``. Beyond scipy, ``x0`` may be a pytree of NumPy arrays or
torch tensors (``x`` comes back in the same form; a multi-dimensional plain NumPy
``x0`` is refused as scipy does), ``jac=None`` on torch inputs differentiates ``fun``
with ``torch.func``, and ``bounds`` may be a :func:`fnopt.projections.box`.

Methods (case-insensitive):

* ``"L-BFGS-B"`` (also ``"lbfgs"`` and ``"lbfgsb"``, fnopt's preference):
  :func:`fnopt.lbfgsb`. Options ``maxcor`` (10), ``ftol`` (2.2e-9), ``gtol``
  (1e-5, on the projected gradient's max-norm), ``maxiter`` (15000), ``maxfun``
  (15000), ``maxls`` (20), ``eps``, ``finite_diff_rel_step``. ``hess_inv`` is a
  :class:`LbfgsInvHessProduct`.
* ``"BFGS"``: :func:`fnopt.bfgs` with :math:`H_0 = I` as in scipy. Options ``gtol``
  (1e-5), ``norm`` (inf), ``maxiter`` (200 n), ``c1``, ``c2``, ``xrtol``, ``eps``
  (scalar or one per variable), ``finite_diff_rel_step``. ``hess_inv`` is the matrix.
* ``"CG"``: :func:`fnopt.nonlinear_cg` (Polak-Ribière+), strong Wolfe with
  ``c2=0.4`` as in scipy. Options as BFGS (no ``xrtol``).
* ``"Newton-CG"``: :func:`fnopt.newton_cg` with ``hess`` (a matrix, ``"2-point"``,
  ``"3-point"`` or a quasi-Newton strategy such as ``scipy.optimize.BFGS()``),
  ``hessp`` (products) or, without either, Hessian-vector products from
  ``torch.func`` (torch) or finite differences of the gradient (NumPy); strong Wolfe
  search (``c1``, ``c2``) as scipy's. A strategy is updated at every point where the
  gradient is evaluated (line-search trials included), as scipy's. Options
  ``xtol`` (1e-5: stop when the mean absolute step is below it), ``maxiter`` (200 n).
* ``"trust-ncg"`` (Steihaug CG), ``"trust-krylov"`` (Lanczos/GLTR),
  ``"trust-exact"`` (Moré–Sorensen): :mod:`fnopt.optimizers._trust_region`, NumPy
  inputs, ``jac`` required, ``hess`` (any form above) or ``hessp``. Options
  ``initial_trust_radius`` (1), ``max_trust_radius`` (1000), ``eta`` (0.15),
  ``gtol`` (1e-4, on the gradient's 2-norm), ``maxiter`` (200 n).
* ``"SLSQP"``: fnopt's SQP (:mod:`fnopt.optimizers._sqp`: damped BFGS, an
  interior-point QP, the :math:`\ell_1` merit line search) with bounds and
  ``constraints`` as dicts ``{'type': 'eq'|'ineq', 'fun', 'jac', 'args'}``,
  ``LinearConstraint`` or ``NonlinearConstraint``. Options ``ftol`` (1e-6),
  ``maxiter`` (100), ``eps``.

``tol`` sets ``ftol`` and ``gtol`` (L-BFGS-B), ``gtol`` (BFGS, CG, trust methods),
``xtol`` (Newton-CG) or ``ftol`` (SLSQP), as in scipy. ``jac``: a callable
``jac(x, *args)``; ``True`` when ``fun`` returns ``(value, gradient)``; ``None`` (or
``"2-point"``/``"3-point"``) for scipy's forward (central) differences on NumPy inputs,
steps kept inside the bounds and fixed variables (``lb == ub``) never stepped, and
``torch.func`` on torch inputs. ``nfev`` counts calls of ``fun`` (the
finite-difference ones included), ``njev`` gradient evaluations. Unknown options warn
with :class:`OptimizeWarning` (``Unknown solver options: ...``), as do scipy options
fnopt does not implement (``iprint``, ``workers``, ``hess_inv0``); ``return_all`` gives
``allvecs``.

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
import numbers
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
from fnopt._scipy_constraints import normalize_constraints, uses_finite_differences
from fnopt._scipy_hessians import FlatHessian, is_strategy
from fnopt._scipy_objective import (
    FD_SCHEMES,
    Counts,
    Objective,
    copy_params,
    flat,
    grad_like,
    unflat,
)
from fnopt.loop import OptimizationError, Result, fixed_point
from fnopt.optimizers._sqp import sqp
from fnopt.optimizers._trust_region import (
    TrustResult,
    lanczos_trust,
    minimize_trust_region,
    more_sorensen,
    steihaug_cg,
)
from fnopt.optimizers.lbfgsb import lbfgsb
from fnopt.optimizers.linesearch import LineSearch, LineSearchResult, line_search, strong_wolfe
from fnopt.optimizers.second_order import scale_by_bfgs, scale_by_newton_cg, scale_by_nonlinear_cg
from fnopt.transforms.projections import Projection, _flat_box, box

__all__ = ["minimize", "OptimizeResult", "OptimizeWarning", "LbfgsInvHessProduct"]

_LBFGSB = ("l-bfgs-b", "lbfgs", "lbfgsb")
_TRUST = ("trust-ncg", "trust-krylov", "trust-exact")
_METHODS = (*_LBFGSB, "bfgs", "cg", "newton-cg", *_TRUST, "slsqp")
_TRUST_OPTS = {"initial_trust_radius", "max_trust_radius", "eta", "gtol", "maxiter",
               "disp", "return_all"}
_OPTIONS = {
    "lbfgsb": {"maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls", "disp",
               "iprint", "finite_diff_rel_step", "workers"},
    "bfgs": {"gtol", "norm", "eps", "maxiter", "disp", "return_all", "c1", "c2",
             "finite_diff_rel_step", "xrtol", "hess_inv0", "workers"},
    "cg": {"gtol", "norm", "eps", "maxiter", "disp", "return_all", "c1", "c2",
           "finite_diff_rel_step", "workers"},
    "newton-cg": {"xtol", "eps", "maxiter", "disp", "return_all", "c1", "c2", "workers"},
    "trust-ncg": _TRUST_OPTS,
    "trust-krylov": _TRUST_OPTS | {"inexact"},
    "trust-exact": _TRUST_OPTS,
    "slsqp": {"maxiter", "ftol", "iprint", "disp", "eps", "finite_diff_rel_step", "workers"},
}


class OptimizeWarning(UserWarning):
    """A warning from :func:`fnopt.minimize` about its arguments or its run (unknown
    solver options, an iteration limit reached with ``disp=True``), like
    ``scipy.optimize.OptimizeWarning``."""


@attrs.frozen(slots=True)
class OptimizeResult:
    """The result of :func:`minimize`, with ``scipy.optimize.OptimizeResult``'s fields
    (read as attributes or as ``res["x"]``).

    Attributes:
      x: the solution, in the form of ``x0`` (a flat array for a list ``x0``).
      fun: the loss at ``x`` (a float).
      jac: the gradient at ``x`` (unprojected, as scipy's L-BFGS-B reports it).
      nit: iterations.
      nfev: calls of ``fun`` (finite-difference ones included).
      njev: gradient evaluations (calls of ``jac``, or of the derived gradient).
      nhev: Hessian (or Hessian-vector product) evaluations.
      success: whether a convergence test held.
      status: 0 converged; 1 iteration or evaluation limit; 2 the line search found no
        step (trust methods: the model predicted no decrease), or a step reached a loss
        of -inf (the line searches take it: nothing is lower; ``x`` is that point and
        ``fun`` is -inf, as scipy's, while :func:`fnopt.fixed_point` itself stops
        ``non_finite`` at the last finite iterate); 3 NaN/+inf; 99 the callback raised
        ``StopIteration``.
      message: scipy's sentence for the status.
      hess_inv: BFGS: the inverse-Hessian approximation (an ``n x n`` array);
        L-BFGS-B: a :class:`LbfgsInvHessProduct`; other methods: ``None`` (absent:
        ``res["hess_inv"]`` raises ``KeyError`` as for scipy's result).
      allvecs: with ``options={"return_all": True}``: the iterates, ``x0`` first.
      result: the :class:`fnopt.Result` of the underlying :func:`fnopt.fixed_point` run
        (``None`` for the trust-region methods, which run their own loop).
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
    result: Result | None = attrs.field(repr=False, default=None)
    hess_inv: Any = attrs.field(repr=False, default=None)
    allvecs: list[Any] | None = attrs.field(repr=False, default=None)

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def keys(self) -> list[str]:
        """The field names, as a mapping's keys (``hess_inv``, ``allvecs`` only where
        set)."""
        return [k for k in attrs.fields_dict(OptimizeResult)
                if not (k in ("hess_inv", "allvecs") and getattr(self, k) is None)]


class LbfgsInvHessProduct:
    """L-BFGS-B's inverse-Hessian approximation as a linear operator, like scipy's:
    ``H @ v``, ``H(v)``, ``H.matvec(v)``, ``H.dot(v)`` and ``H.todense()``. Built
    from the stored pairs ``sk``, ``yk`` (oldest first) by the two-loop recursion
    from the identity, as scipy does.

    >>> s, y = np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])
    >>> LbfgsInvHessProduct(s, y).todense()
    array([[0.5, 0. ],
           [0. , 1. ]])
    """

    def __init__(self, sk: np.ndarray, yk: np.ndarray) -> None:
        self.sk = np.asarray(sk, dtype=np.float64)
        self.yk = np.asarray(yk, dtype=np.float64)
        self.n_corrs, n = self.sk.shape
        self.rho = 1.0 / np.einsum("ij,ij->i", self.sk, self.yk)
        self.shape = (n, n)
        self.dtype = np.dtype(np.float64)

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        q = np.array(v, dtype=np.float64).reshape(-1)
        alpha = np.zeros(self.n_corrs)
        for i in range(self.n_corrs - 1, -1, -1):
            alpha[i] = self.rho[i] * (self.sk[i] @ q)
            q = q - alpha[i] * self.yk[i]
        for i in range(self.n_corrs):
            beta = self.rho[i] * (self.yk[i] @ q)
            q = q + self.sk[i] * (alpha[i] - beta)
        return q

    def matvec(self, v: Any) -> np.ndarray:
        """:math:`H v` (``v`` of shape ``(n,)`` or ``(n, 1)``, answered alike)."""
        arr = np.asarray(v, dtype=np.float64)
        return self._matvec(arr).reshape(arr.shape)

    def matmat(self, m: Any) -> np.ndarray:
        """:math:`H M` for an ``n x k`` matrix."""
        arr = np.asarray(m, dtype=np.float64).reshape(self.shape[0], -1)
        return np.column_stack([self._matvec(c) for c in arr.T])

    def dot(self, v: Any) -> np.ndarray:
        """:math:`H v` or :math:`H M`."""
        arr = np.asarray(v)
        return self.matvec(arr) if arr.ndim == 1 else self.matmat(arr)

    __call__ = dot
    __matmul__ = dot

    def todense(self) -> np.ndarray:
        """The ``n x n`` matrix."""
        return self.matmat(np.eye(self.shape[0]))


# -- bounds ------------------------------------------------------------------------------


_NBOUNDS = "The number of bounds is not compatible with the length of `x0`."


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
    if isinstance(bounds, np.ndarray) and bounds.ndim == 2 and bounds.shape[1] == 2:
        bounds = [tuple(float(v) for v in row) for row in bounds]
    so = sys.modules.get("scipy.optimize")
    if so is not None and isinstance(bounds, so.Bounds):
        lo = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), (n,)) if np.size(
            bounds.lb) in (1, n) else None
        hi = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), (n,)) if np.size(
            bounds.ub) in (1, n) else None
        if lo is None or hi is None:
            raise ValueError(f"bounds: lb and ub need 1 or {n} values (one per element of "
                             f"x0): {_NBOUNDS}")
    elif isinstance(bounds, Sequence) and bounds and all(_is_pair(b) for b in bounds):
        if len(bounds) != n:
            raise ValueError(
                f"bounds: expected {n} (lower, upper) pairs, one per element of x0, got "
                f"{len(bounds)}: {_NBOUNDS}"
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
            f"bounds: lower > upper for element {i} ({lo[i]} > {hi[i]}); expected lower <= "
            f"upper: An upper bound is less than the corresponding lower bound."
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


def _vecnorm(g: Any, ord_: float) -> float:
    v = flat(g)
    if ord_ == math.inf:
        return float(np.abs(v).max())
    if ord_ == -math.inf:
        return float(np.abs(v).min())
    return float((np.abs(v) ** ord_).sum() ** (1.0 / ord_))


def _grad_norm_below(gtol: float, ord_: float) -> _stop.Criterion:
    """scipy BFGS/CG's ``gtol``: the gradient's ``norm``-norm (max-norm by default)."""
    return _stop.criterion(lambda info: _vecnorm(info.state.grads, ord_) <= gtol,
                           reads=("state",), reason="grad_norm_below", name=f"gtol {gtol:g}")


@attrs.frozen(slots=True)
class _XRelBelow(_stop.Criterion):
    """scipy BFGS's ``xrtol``: :math:`\\|x_k - x_{k-1}\\| \\le r (r + \\|x_k\\|)`."""

    xrtol: float
    reason = _stop.Reason.PARAM_CHANGE_BELOW

    def check(self, info: _stop.Info, state: Any) -> tuple[tuple[_stop.Criterion, ...], Any]:
        if info.prev_params is None:
            return (), state
        x, step = flat(info.params), flat(info.params) - flat(info.prev_params)
        hit = float(np.linalg.norm(step)) <= self.xrtol * (self.xrtol + float(np.linalg.norm(x)))
        return ((self,) if hit else ()), state


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

    counts: Counts
    limit: int
    reason = _stop.Reason.MAX_ITERS

    def check(self, info: _stop.Info, state: Any) -> tuple[tuple[_stop.Criterion, ...], Any]:
        return ((self,) if self.counts.nfev >= self.limit else ()), state

    def describe(self, info: _stop.Info) -> str:
        return f"{self.counts.nfev} function evaluations >= maxfun={self.limit}"


# -- options -------------------------------------------------------------------------------


def _number(name: str, v: Any, minimum: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"options['{name}']: expected a number, got {type(v).__name__}")
    if not float(v) >= minimum:
        raise ValueError(f"options['{name}']: expected a number >= {minimum:g}, got {v!r}")
    return float(v)


def _steps(name: str, v: Any, n: int) -> Any:
    """A finite-difference step option: a number or one per variable, finite, > 0."""
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"options['{name}']: expected a number or {n} numbers, got "
                        f"{type(v).__name__}") from None
    if arr.ndim > 1 or arr.size not in (1, n) or not np.all(np.isfinite(arr)) or \
            not np.all(arr > 0):
        raise ValueError(f"options['{name}']: expected a finite number > 0 or {n} of them, "
                         f"got {v!r}")
    return float(arr) if arr.ndim == 0 else arr


def _count(name: str, v: Any, minimum: int | None = 0) -> int:
    """An iteration/evaluation limit: any real (scipy accepts ``100.1``); below
    ``minimum`` it is refused naming ``name`` (``None``: clipped at 0, as scipy
    treats ``maxiter=-1``)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(float(v)):
        raise TypeError(f"options['{name}']: expected a number, got {v!r}")
    v = float(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"options['{name}']: expected a number >= {minimum}, got {v!r}")
    return max(int(v), 0) if not math.isinf(v) else sys.maxsize


_SQRT_EPS = 1.4901161193847656e-08  # scipy's default absolute finite-difference step


def _options(method: str, options: dict[str, Any] | None, tol: float | None,
             n: int) -> dict[str, Any]:
    key = "lbfgsb" if method in _LBFGSB else method
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options: expected a dict, got {type(options).__name__}")
    opts = dict(options or {})
    unknown = sorted(set(opts) - _OPTIONS[key])
    if unknown:
        warnings.warn(f"Unknown solver options: {', '.join(unknown)}", OptimizeWarning,
                      stacklevel=3)
    if key == "lbfgsb":
        d: dict[str, Any] = {"maxcor": 10, "ftol": 2.220446049250313e-09, "gtol": 1e-5,
                             "maxiter": 15000, "maxfun": 15000, "maxls": 20, "eps": 1e-8}
        if tol is not None:
            d.update(ftol=tol, gtol=tol)
    elif key == "newton-cg":
        d = {"xtol": 1e-5 if tol is None else tol, "maxiter": 200 * n, "c1": 1e-4, "c2": 0.9,
             "eps": _SQRT_EPS}
    elif key == "slsqp":
        d = {"maxiter": 100, "ftol": 1e-6 if tol is None else tol, "eps": _SQRT_EPS}
    elif key in _TRUST:
        d = {"gtol": 1e-4 if tol is None else tol, "maxiter": 200 * n,
             "initial_trust_radius": 1.0, "max_trust_radius": 1000.0, "eta": 0.15}
    else:
        d = {"gtol": 1e-5 if tol is None else tol, "maxiter": 200 * n, "norm": math.inf,
             "c1": 1e-4, "c2": 0.9 if key == "bfgs" else 0.4, "xrtol": 0.0, "eps": _SQRT_EPS}
    o = {**d, **{k: v for k, v in opts.items() if v is not None or k not in d}}
    if "c1" in o:
        c1, c2 = o["c1"], o["c2"]
        if not all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in (c1, c2)) \
                or not 0 < c1 < c2 < 1:
            raise ValueError(f"options: 'c1' and 'c2' do not satisfy 0 < c1 < c2 < 1 "
                             f"(c1={c1!r}, c2={c2!r})")
    for name in ("gtol", "ftol", "xtol", "xrtol", "eta", "initial_trust_radius",
                 "max_trust_radius", "norm"):
        if name in o:
            o[name] = _number(name, o[name], -math.inf if name == "norm" else 0.0)
    for name in ("eps", "finite_diff_rel_step"):
        if o.get(name) is not None:
            o[name] = _steps(name, o[name], n)
    o["maxiter"] = _count("maxiter", o["maxiter"], None)
    for name, low in (("maxfun", None), ("maxcor", 1), ("maxls", 1)):
        if name in o:
            o[name] = _count(name, o[name], low)
    _ignored(o)
    return o


def _ignored(o: dict[str, Any]) -> None:
    """Options scipy has that fnopt does not implement: a warning, never silence."""
    ignored = [name for name, on in (
        ("iprint", o.get("iprint") not in (None, -1, 0)),
        ("workers", o.get("workers") not in (None, 1)),
        ("hess_inv0", o.get("hess_inv0") is not None),
    ) if on]
    if "hess_inv0" in ignored:
        h = np.asarray(o["hess_inv0"], dtype=np.float64)
        if h.ndim != 2 or h.shape[0] != h.shape[1] or \
                not np.all(np.linalg.eigvalsh(0.5 * (h + h.T)) > 0):
            raise ValueError("options['hess_inv0']: 'hess_inv0' matrix isn't positive "
                             "definite.")
    for name in ignored:
        warnings.warn(f"options['{name}']: not supported by fnopt.minimize, ignored",
                      OptimizeWarning, stacklevel=4)


# -- the drivers ---------------------------------------------------------------------------


_STATUS = {
    _stop.Reason.MAX_ITERS: 1,
    _stop.Reason.LINE_SEARCH_FAILED: 2,
    _stop.Reason.NON_FINITE: 3,
    _stop.Reason.CALLBACK: 99,
}


def _message(method: str, r: Result | None, status: int) -> str:
    if status == 99:
        return "`callback` raised `StopIteration`."
    if method in _LBFGSB and r is not None:
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
    return "NaN result encountered." if status == 3 or r is None else r.message


def _callback(callback: Any) -> Callable[[Any, Any], bool] | None:
    """scipy's ``callback(xk)`` or ``callback(intermediate_result=...)`` as
    ``cb(x, f) -> stop``; raising ``StopIteration`` stops the run (status 99)."""
    if callback is None:
        return None
    check_callable(callback, "callback")
    try:
        new_style = "intermediate_result" in inspect.signature(callback).parameters
    except (TypeError, ValueError):
        new_style = False

    def cb(x: Any, f: Any) -> bool:
        try:
            if new_style:
                callback(intermediate_result=OptimizeResult(
                    x=copy_params(x), fun=float(f), jac=None, nit=0, nfev=0, njev=0, nhev=0,
                    success=False, status=0, message=""))
            else:
                callback(copy_params(x))
        except StopIteration:
            return True
        return False

    return cb


@attrs.frozen
class _Problem:
    """One call of :func:`minimize`, checked: the objective, the start, the options."""

    method: str
    obj: Objective
    x: Params
    o: dict[str, Any]
    box: Projection | None
    hess: Any
    hessp: Any
    args: tuple[Any, ...]
    callback: Callable[[Any, Any], bool] | None
    cons: Callable[..., Any] | None = None
    allvecs: list[Any] | None = None
    cons_fd: bool = False


def _result(p: _Problem, x: Params, f: Any, g: Any, nit: int, status: int, message: str,
            r: Result | None = None, hess_inv: Any = None) -> OptimizeResult:
    if status not in (0,) and p.o.get("disp"):
        warnings.warn(message, OptimizeWarning, stacklevel=3)
    lb, ub = p.obj.lb, p.obj.ub
    fd = not (p.obj.jac is True or callable(p.obj.jac)) or p.cons_fd
    if lb is not None and ub is not None and np.any(lb == ub) and fd and \
            isinstance(p.x, np.ndarray):
        g = np.array(flat(g))
        g[lb == ub] = np.nan  # not evaluated there (as scipy reports it)
        g = unflat(g, p.x)
    c = p.obj.counts
    return OptimizeResult(
        x=x, fun=float(_backend.to_numpy(f)) if not isinstance(f, float) else f, jac=g,
        nit=nit, nfev=c.nfev, njev=c.njev, nhev=c.nhev, success=status == 0, status=status,
        message=message, result=r, hess_inv=hess_inv,
        allvecs=None if p.allvecs is None else [p.x, *p.allvecs])


def _run_fixed_point(p: _Problem, opt: Optimizer, crit: _stop.Criterion) -> Result:
    stop = crit | _stop.max_iters(max(p.o["maxiter"], 1))
    cb = p.callback
    try:
        return fixed_point(opt, p.x, p.obj, stop=stop,
                           callback=None if cb is None else (lambda i: cb(i.params, i.value)))
    except OptimizationError as exc:  # fun, jac or callback raised: theirs, as scipy
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


def _line_search_method(p: _Problem) -> OptimizeResult:
    """L-BFGS-B, BFGS, CG, Newton-CG: :func:`fnopt.fixed_point` of fnopt's optimizer
    with scipy's stopping tests; the start is tested first (``nit = 0`` there)."""
    o, m = p.o, p.method
    x = p.x
    if m in _LBFGSB and p.obj.lb is not None and isinstance(x, np.ndarray):
        x = np.clip(x, p.obj.lb, p.obj.ub).reshape(x.shape)  # as L-BFGS-B's first step
    f0, g0 = p.obj(x)
    done_at_start = m in ("bfgs", "cg") and _vecnorm(g0, o["norm"]) <= o["gtol"]
    if done_at_start or o["maxiter"] == 0:
        status = 0 if done_at_start else 1
        return _result(p, x, f0, g0, 0, status, _message(m, None, status),
                       hess_inv=_identity_hess_inv(m, x))
    opt, crit = _optimizer(p)
    r = _run_fixed_point(p, opt, crit)
    status = 0 if r.converged else _STATUS.get(r.reason, 2)
    f, x_end, g_end = r.value, r.params, r.state.grads
    if r.reason is _stop.Reason.NON_FINITE and p.obj.minus_inf:
        # the loop keeps the last finite iterate; a step reached loss -inf: scipy's
        # answer is that point (status 2: nothing lower to find, not a NaN)
        x_inf, g_inf = p.obj.minus_inf
        return _result(p, x_inf, -math.inf, g_inf, r.iterations + 1, 2, _message(m, r, 2), r,
                       _hess_inv(m, r))
    if status == 3 or r.reason is _stop.Reason.NON_FINITE or (
            status == 2 and "non_finite" in r.message):
        f = math.nan  # a NaN/inf on the way: reported as scipy does
    elif r.iterations == 0:  # no step taken: the start's value, as evaluated
        f = f0
    f_end = float(_backend.to_numpy(f)) if not isinstance(f, float) else f
    f_start = float(_backend.to_numpy(f0))
    if math.isfinite(f_start) and math.isfinite(f_end) and f_end > f_start:
        x_end, f, g_end = x, f0, g0  # never worse than the start (as scipy)
    return _result(p, x_end, f if isinstance(f, float) else float(_backend.to_numpy(f)),
                   g_end, r.iterations, status, _message(m, r, status), r, _hess_inv(m, r))


def _identity_hess_inv(method: str, x: Params) -> Any:
    n = flat(x).size
    if method == "bfgs":
        return np.eye(n)
    if method in _LBFGSB:
        return LbfgsInvHessProduct(np.zeros((0, n)), np.zeros((0, n)))
    return None


def _hess_inv(method: str, r: Result) -> Any:
    st = r.state
    if method == "bfgs":
        inner = st.inner
        n = flat(r.params).size
        return np.eye(n) if inner.n_pairs == 0 else np.asarray(
            _backend.to_numpy(inner.inv_hessian), dtype=np.float64)
    if method in _LBFGSB:
        k = int(st.n_pairs)
        n = flat(r.params).size
        if k == 0:
            return LbfgsInvHessProduct(np.zeros((0, n)), np.zeros((0, n)))
        s = np.stack([_backend.to_numpy(v).reshape(-1) for v in st.s[len(st.s) - k:]])
        y = np.stack([_backend.to_numpy(v).reshape(-1) for v in st.y[len(st.y) - k:]])
        return LbfgsInvHessProduct(s, y)
    return None


def _optimizer(p: _Problem) -> tuple[Optimizer, _stop.Criterion]:
    o, m = p.o, p.method
    if m in _LBFGSB:
        opt = lbfgsb(bounds=p.box, memory_size=o["maxcor"],
                     search=strong_wolfe(1e-3, 0.9, max_trials=o["maxls"]))
        return opt, (_proj_grad_max_below(o["gtol"]) | _RelativeReduction(o["ftol"])
                     | _MaxEvals(p.obj.counts, o.get("maxfun", 15000)))
    if m in ("bfgs", "cg"):
        # steps up to 1e100 as scipy's (a badly scaled loss needs huge ones)
        search = strong_wolfe(float(o["c1"]), float(o["c2"]), max_step=1e100)
        direction = scale_by_bfgs(scale_init=False) if m == "bfgs" else \
            scale_by_nonlinear_cg()
        # scipy's first trials: 1.01/|g| on the first step, then min(1, 2.02 df/slope)
        opt = line_search(direction, search, initial_step="quadratic", scale_first=True,
                          first_scale=1.01)
        crit = _grad_norm_below(o["gtol"], float(o["norm"]))
        if m == "bfgs" and o["xrtol"] > 0:
            crit = crit | _XRelBelow(o["xrtol"])
        return opt, crit
    n = flat(p.x).size
    # scipy's Newton-CG searches with Wolfe conditions (c1, c2) for a step of at most 50
    # (its first line search's default), and where that fails searches again without it;
    # its first trial after the first step is min(1, 2.02 df/slope)
    c1, c2 = float(o["c1"]), float(o["c2"])
    retry = _Retry(strong_wolfe(c1, c2, max_step=50.0), strong_wolfe(c1, c2))
    opt = line_search(scale_by_newton_cg(_newton_hvp(p)), retry, initial_step="quadratic")
    return opt, _StepBelow(o["xtol"] * n)


@attrs.frozen(slots=True)
class _Retry(LineSearch):
    """``first``, and where it finds no step, ``second`` from the start again (scipy's
    ``_line_search_wolfe12``: MINPACK's search, then its own); trials add up."""

    first: LineSearch
    second: LineSearch
    f_tol: float = 1e-10

    def _search(self, phi: Any, value0: float, slope0: float, init_step: float,
                f_tol: float) -> LineSearchResult:
        r = self.first._search(phi, value0, slope0, init_step, f_tol)
        if r.ok:
            return r
        r2 = self.second._search(phi, value0, slope0, init_step, f_tol)
        return attrs.evolve(r2, n_evals=r.n_evals + r2.n_evals)


def _as_dense(h: Any) -> Any:
    """A sparse Hessian (``toarray``) as a dense array; anything else as it is."""
    return h.toarray() if callable(getattr(h, "toarray", None)) else h


def _newton_hvp(p: _Problem) -> Callable[..., Any]:
    """Newton-CG's Hessian-vector products from ``hess``/``hessp``, torch, a strategy or
    finite differences of the gradient."""
    counts, args = p.obj.counts, p.args

    def counted(h: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any) -> Any:
            counts.nhev += 1
            return h(*a)
        return call

    if p.hessp is not None:
        return counted(lambda q, v: grad_like(p.hessp(copy_params(q), copy_params(v), *args),
                                              q, "hessp"))
    if callable(p.hess):
        return counted(_grad.hvp_from_hessian(_grad.hessian_from_function(
            lambda q: _as_dense(p.hess(copy_params(q), *args)))))
    if is_strategy(p.hess):
        # as scipy's ScalarFunction: the strategy is updated at every point where the
        # gradient is evaluated (line-search trials included), not once per iterate
        fh = FlatHessian(p.hess, None, args, lambda v: flat(p.obj(unflat(v, p.x))[1]), counts)
        fh.start(flat(p.x).size)
        fh.accepted(flat(p.x), flat(p.obj(p.x)[1]))  # the start (already evaluated)
        p.obj.observer = lambda q, g: fh.accepted(flat(q), flat(g))

        def hvp(q: Params, v: Params) -> Params:
            p.obj(q)  # the gradient at q (the strategy sees q if it is new)
            return unflat(fh.product(flat(q), flat(v)), q)
        return hvp
    if _backend.of(p.x).has_autodiff and p.hess is None:
        return counted(_grad.hvp_torch(lambda q: p.obj.fun(q, *args)))
    return counted(_grad.hvp_finite_differences(
        lambda q: (np.zeros(()), p.obj.gradient_only(q))))


def _trust_method(p: _Problem) -> OptimizeResult:
    """trust-ncg, trust-krylov, trust-exact on the flat vector (NumPy inputs)."""
    like, obj, o, m = p.x, p.obj, p.o, p.method

    def value(v: np.ndarray) -> float:
        return float(_backend.to_numpy(obj.value(unflat(v, like))))

    def gradient(v: np.ndarray) -> np.ndarray:
        return flat(obj.gradient_only(unflat(v, like)))

    fh = FlatHessian(p.hess, p.hessp, p.args, gradient, obj.counts)
    n = flat(like).size
    fh.start(n)

    def grad_at(v: np.ndarray, f: float) -> np.ndarray:
        g = flat(obj.gradient_at(unflat(v, like), f))
        fh.accepted(v, g)
        return g

    if m == "trust-exact":
        def solve(v: np.ndarray, g: np.ndarray, radius: float) -> tuple[np.ndarray, bool]:
            return more_sorensen(g, fh.matrix(v), radius)[:2]
    elif m == "trust-krylov":
        def solve(v: np.ndarray, g: np.ndarray, radius: float) -> tuple[np.ndarray, bool]:
            return lanczos_trust(g, lambda d: fh.product(v, d), radius)[:2]
    else:
        def solve(v: np.ndarray, g: np.ndarray, radius: float) -> tuple[np.ndarray, bool]:
            return steihaug_cg(g, lambda d: fh.product(v, d), radius)

    cb = p.callback
    tr: TrustResult = minimize_trust_region(
        value, grad_at, solve, fh.product, flat(like),
        initial_trust_radius=float(o["initial_trust_radius"]),
        max_trust_radius=float(o["max_trust_radius"]), eta=float(o["eta"]),
        gtol=o["gtol"], maxiter=o["maxiter"],
        callback=None if cb is None else (lambda v, f: cb(unflat(v, like), f)))
    return _result(p, unflat(tr.x, like), tr.fun, unflat(tr.jac, like), tr.nit, tr.status,
                   tr.message)


def _all_fixed(p: _Problem) -> OptimizeResult:
    """Every variable fixed by its bounds: one call of ``fun`` there (as scipy)."""
    assert p.obj.lb is not None
    x = unflat(p.obj.lb, p.x)
    f = p.obj.value(x)
    status, message = 0, "All independent variables were fixed by bounds."
    if p.cons is not None:
        viol = p.cons(flat(x), False)
        worst = max(float(np.abs(viol.c_eq).max(initial=0)),
                    float(np.maximum(-viol.c_in, 0).max(initial=0)))
        message = ("All independent variables were fixed by bounds at values that satisfy "
                   "the constraints.")
        if worst > 0:
            status = 4
            message = (f"All independent variables were fixed by bounds, but the "
                       f"independent variables do not satisfy the constraints exactly. "
                       f"(Maximum violation: {worst}).")
    return _result(p, x, f, unflat(np.full(flat(x).size, np.nan), p.x), 0, status, message)


def _slsqp(p: _Problem) -> OptimizeResult:
    """SLSQP: fnopt's SQP (:mod:`fnopt.optimizers._sqp`) on the flat vector."""
    like, obj, o = p.x, p.obj, p.o
    n = flat(like).size
    lb = obj.lb if obj.lb is not None else np.full(n, -np.inf)
    ub = obj.ub if obj.ub is not None else np.full(n, np.inf)
    if _backend.of(like).has_autodiff:
        raise TypeError("x0: SLSQP takes NumPy inputs")

    def value(v: np.ndarray) -> float:
        return float(_backend.to_numpy(obj.value(unflat(v, like))))

    def gradient(v: np.ndarray, f: float) -> np.ndarray:
        return flat(obj.gradient_at(unflat(v, like), f))

    cb = p.callback
    cons = p.cons if p.cons is not None else normalize_constraints((), lb, ub)
    r = sqp(value, gradient, cons, flat(like), lb, ub, maxiter=o["maxiter"], ftol=o["ftol"],
            callback=None if cb is None else (lambda v, f: cb(unflat(v, like), f)))
    return _result(p, unflat(r.x, like), r.fun, unflat(r.jac, like), r.nit, r.status,
                   r.message)


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    args: Any = (),
    method: str | None = None,
    jac: Any = None,
    hess: Any = None,
    hessp: Callable[..., Any] | None = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: float | None = None,
    callback: Callable[..., Any] | None = None,
    options: dict[str, Any] | None = None,
) -> OptimizeResult:
    """Minimise ``fun(x, *args)`` like ``scipy.optimize.minimize``, on fnopt's optimizers.

    .. math:: \\min_x f(x) \\quad \\text{s.t.} \\quad l \\le x \\le u \\ (\\text{with bounds})

    The line-search methods run one :func:`fnopt.fixed_point` of fnopt's optimizer with
    scipy's stopping tests as criteria; the trust-region methods run their own loop
    (see the module docstring for methods and options). The user's functions get a
    copy of ``x`` on every call.

    Args:
      fun: ``fun(x, *args) -> float`` (a 0-d or 1-element array is accepted; a 0-d
        tensor for torch ``x``).
      x0: the start: a number, a 1-D sequence or array (scipy), or — fnopt's
        extension — a pytree of NumPy arrays or torch tensors (float32/float64);
        projected onto the bounds first.
      args: extra positional arguments for ``fun``, ``jac``, ``hess``, ``hessp``.
      method: ``None`` (scipy's choice: SLSQP with constraints, L-BFGS-B with bounds,
        BFGS otherwise),
        ``"L-BFGS-B"`` (also ``"lbfgs"``, fnopt's preference), ``"BFGS"``, ``"CG"``,
        ``"Newton-CG"``, ``"trust-ncg"``, ``"trust-krylov"``, ``"trust-exact"``,
        ``"SLSQP"``.
      jac: ``jac(x, *args)``, ``True`` (``fun`` returns ``(f, g)``), ``None``,
        ``"2-point"`` or ``"3-point"`` (scipy's finite differences on NumPy inputs,
        ``torch.func`` on torch inputs).
      hess, hessp: ``hess(x, *args)`` (a matrix), ``"2-point"``/``"3-point"``, or a
        quasi-Newton strategy (``scipy.optimize.BFGS()``, ``SR1()``, or any object
        with their methods); ``hessp(x, p, *args)``. Newton-CG and trust methods.
      bounds: ``n`` pairs ``(lower, upper)`` (``None`` for no bound), a
        ``scipy.optimize.Bounds``, :func:`fnopt.projections.box` or a
        ``(lower, upper)`` pair of numbers or pytrees like ``x0``; L-BFGS-B only
        (other methods warn and ignore them, as scipy).
      constraints: SLSQP's constraints: a dict ``{'type': 'eq'|'ineq', 'fun', 'jac',
        'args'}``, a ``LinearConstraint``, a ``NonlinearConstraint``, or a sequence of
        them (other methods warn and ignore them, as scipy).
      tol: the tolerance for the method's main test (see the module docstring).
      callback: ``callback(xk)`` or ``callback(intermediate_result)`` after each
        iteration; raising ``StopIteration`` stops (status 99).
      options: the method's options, by scipy's names (unknown names warn with
        :class:`OptimizeWarning`).

    Returns:
      An :class:`OptimizeResult`.

    Raises:
      ValueError / TypeError: naming the argument (an unknown method, bounds of the
        wrong length or with lower > upper, constraints, a bad ``x0``, ``jac`` or
        option; a ``fun`` returning ``None`` or a complex value).

    >>> import numpy as np, fnopt
    >>> res = fnopt.minimize(lambda x, a: ((x - a) ** 2).sum(), np.zeros(3), args=(2.0,),
    ...                      bounds=[(None, 1.0)] * 3)
    >>> res.x, res.status, res["nit"]
    (array([1., 1., 1.]), 0, 2)
    """
    if callable(method):  # a custom minimiser, called as scipy calls it
        return method(fun, np.atleast_1d(np.asarray(x0)), args=args if isinstance(
            args, tuple) else (args,), jac=jac, hess=hess, hessp=hessp, bounds=bounds,
            constraints=constraints, callback=callback, **(options or {}))
    p = _problem(fun, x0, args, method, jac, hess, hessp, bounds, constraints, tol,
                 callback, options)
    if p.obj.lb is not None and p.obj.ub is not None and np.array_equal(p.obj.lb, p.obj.ub):
        return _all_fixed(p)
    if p.method in _TRUST:
        return _trust_method(p)
    if p.method == "slsqp":
        return _slsqp(p)
    return _line_search_method(p)


def _problem(fun: Any, x0: Any, args: Any, method: Any, jac: Any, hess: Any, hessp: Any,
             bounds: Any, constraints: Any, tol: Any, callback: Any,
             options: Any) -> _Problem:
    """The arguments of :func:`minimize`, checked, as one :class:`_Problem`."""
    check_callable(fun, "fun")
    if not isinstance(args, tuple):
        args = (args,)
    x = _as_params(x0)
    has_cons = not (constraints is None or (isinstance(constraints, (list, tuple))
                                            and len(constraints) == 0))
    method = _method_name(method, bounds, has_cons)
    if has_cons and method != "slsqp":
        warnings.warn(f"Method {method} cannot handle constraints.", RuntimeWarning,
                      stacklevel=3)
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, numbers.Real)
                            or not float(tol) >= 0):
        raise ValueError(f"tol: expected a number >= 0, got {tol!r}")
    tol = None if tol is None else float(tol)
    n = flat(x).size
    o = _options(method, options, tol, n)
    _check_derivatives(method, jac, hess, hessp, x)
    box_ = None
    if method in (*_LBFGSB, "slsqp"):
        box_ = _box_from(bounds, x)
    elif bounds is not None:
        warnings.warn(f"Method {method} cannot handle bounds.", RuntimeWarning, stacklevel=3)
    lb = ub = None
    if box_ is not None:
        lb, ub = (np.asarray(_backend.to_numpy(b), dtype=np.float64).reshape(-1)
                  for b in _flat_box(box_, x))
    fd_named = isinstance(jac, str)  # jac='2-point'/'3-point': scipy's relative steps
    eps = None if fd_named or o.get("finite_diff_rel_step") is not None or not (
        jac is None or jac is False) else o.get("eps")
    obj = Objective(fun, jac, args, x, lb, ub, eps, o.get("finite_diff_rel_step"))
    cons = normalize_constraints(constraints, lb, ub) if has_cons and method == "slsqp" \
        else None
    cb = _callback(callback)
    allvecs: list[Any] | None = None
    if o.get("return_all"):
        allvecs, user_cb = [], cb

        def cb(xk: Any, f: Any) -> bool:
            allvecs.append(copy_params(xk))
            return False if user_cb is None else user_cb(xk, f)
    return _Problem(method, obj, x, o, box_, hess, hessp, args, cb, cons, allvecs,
                    cons is not None and uses_finite_differences(constraints))


def _check_derivatives(method: str, jac: Any, hess: Any, hessp: Any, x: Params) -> None:
    if not (jac is None or jac is True or jac is False or callable(jac)
            or (isinstance(jac, str) and jac in FD_SCHEMES)):
        raise ValueError(
            f"jac: expected a callable, True, None, '2-point' or '3-point', got {jac!r}")
    if jac == "cs":
        raise ValueError("jac: 'cs' (complex step) is not supported by fnopt.minimize; "
                         "use '2-point', '3-point' or a callable")
    if hessp is not None:
        check_callable(hessp, "hessp")
    ok_hess = hess is None or callable(hess) or is_strategy(hess) or (
        isinstance(hess, str) and hess in ("2-point", "3-point"))
    if not ok_hess:
        raise ValueError(f"hess: expected a callable, '2-point', '3-point' or a quasi-Newton "
                         f"strategy (scipy.optimize.BFGS()/SR1()), got {hess!r}")
    if method not in ("newton-cg", *_TRUST) and (hess is not None or hessp is not None):
        which = "hess" if hess is not None else "hessp"
        warnings.warn(f"Method {method} does not use Hessian information ({which}).",
                      RuntimeWarning, stacklevel=4)
    if method in _TRUST:
        if not _backend.of(x).has_autodiff and not (jac is True or callable(jac)):
            raise ValueError(f"jac: {method} needs the gradient (jac=callable or True)")
        if _backend.of(x).has_autodiff:
            raise TypeError(f"x0: {method} takes NumPy inputs (torch tensors: use "
                            f"'Newton-CG', 'BFGS' or 'L-BFGS-B')")
        if hess is None and (hessp is None or method == "trust-exact"):
            need = "hess" if method == "trust-exact" else "hess or hessp"
            raise ValueError(f"hess: {method} needs {need} (a callable, '2-point', '3-point' "
                             f"or a quasi-Newton strategy)")


def _as_params(x0: Any) -> Params:
    """``x0`` as fnopt params: a pytree of arrays as it is (integer leaves cast to
    float64, as scipy does), a number or 1-D sequence through ``np.asarray``; a
    multi-dimensional NumPy ``x0`` is refused as scipy does."""
    if isinstance(x0, np.ndarray) and x0.ndim > 1:
        raise ValueError("x0: 'x0' must only have one dimension.")
    leaves = optree.tree_leaves(x0)
    if leaves and all(_backend.is_array(leaf) for leaf in leaves) and not (
            isinstance(x0, np.ndarray) and x0.ndim == 0):
        return optree.tree_map(lambda a: _backend.of_value(a).to_floating(a).copy()
                               if isinstance(a, np.ndarray) else
                               _backend.of_value(a).to_floating(a), x0)
    try:
        arr = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(
            f"x0: expected an array, a sequence of numbers or a pytree of arrays/tensors, "
            f"got {type(x0).__name__}"
        ) from None
    if arr.ndim != 1:
        raise ValueError("x0: 'x0' must only have one dimension.")
    if arr.size == 0:
        raise ValueError("x0: expected at least one element, got an empty array")
    return arr


def _method_name(method: Any, bounds: Any, has_constraints: bool = False) -> str:
    """``method`` lower-cased, checked; ``None``: scipy's choice (SLSQP with
    constraints, L-BFGS-B with bounds, BFGS without)."""
    if method is None:
        method = "slsqp" if has_constraints else "l-bfgs-b" if bounds is not None else "bfgs"
    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(
            f"method: expected one of 'L-BFGS-B', 'BFGS', 'CG', 'Newton-CG', 'trust-ncg', "
            f"'trust-krylov', 'trust-exact', 'SLSQP', 'lbfgs' (or None); got {method!r}"
        )
    return method.lower()
