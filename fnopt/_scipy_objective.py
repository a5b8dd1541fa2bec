"""The user's ``fun``/``jac``/``hess`` as :func:`fnopt.minimize` calls them, scipy-style.

Every call receives a *copy* of the iterate (a function that writes into ``x`` cannot
corrupt the run, as in scipy), every output is checked on every call (a 1-element
array is a scalar, ``None`` or a complex value a ``TypeError`` naming the argument),
calls are counted (``nfev``, ``njev``, ``nhev``) and the last point is remembered, so
asking again for the value and gradient at the same point costs nothing. Without
``jac`` on NumPy inputs the gradient is scipy's finite difference (``'2-point'``
forward or ``'3-point'`` central, steps kept inside the bounds, fixed variables
never stepped).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import grad as _grad
from fnopt import tree
from fnopt._base import OutputValueError, Params, check_loss

__all__ = ["Counts", "Objective", "flat", "unflat", "copy_params"]

FD_SCHEMES = ("2-point", "3-point", "cs")


@attrs.define
class Counts:
    """Calls of the user's functions: ``fun``, the gradient, the Hessian."""

    nfev: int = 0
    njev: int = 0
    nhev: int = 0


def copy_params(p: Params) -> Params:
    """A fresh copy of every leaf (what the user's function receives)."""
    return tree.clone(p)


def flat(p: Params) -> np.ndarray:
    """The params as one flat float NumPy vector (a copy)."""
    leaves = optree.tree_leaves(p)
    return np.concatenate([np.asarray(_backend.to_numpy(a), dtype=np.float64).reshape(-1)
                           for a in leaves])


def unflat(v: np.ndarray, like: Params) -> Params:
    """The flat vector ``v`` in the form of ``like`` (NumPy leaves of its dtypes)."""
    leaves, spec = optree.tree_flatten(like)
    out, i = [], 0
    for leaf in leaves:
        n = int(np.prod(tuple(leaf.shape)))
        piece = np.asarray(v[i:i + n], dtype=_backend.to_numpy(leaf).dtype)
        out.append(piece.reshape(tuple(leaf.shape)))
        i += n
    return spec.unflatten(out)


def scalar_of(v: Any, like: Params, what: str) -> Any:
    """The loss ``v`` as a 0-d array/tensor of the params' dtype: a 1-element array is
    accepted (as scipy does); ``None``, a complex or non-numeric value is a
    ``TypeError``, several values a ``ValueError``, all naming ``what``."""
    if v is None:
        raise TypeError(f"{what}: returned None; expected a real scalar (a float or a "
                        f"0-d/1-element array)")
    if isinstance(v, (list, tuple)):  # scipy accepts [f]; several values: a ValueError
        try:
            v = np.asarray(v)
        except (TypeError, ValueError):
            raise TypeError(f"{what}: expected a real scalar, got {type(v).__name__}") from None
    if isinstance(v, complex) or (isinstance(v, np.ndarray) and np.iscomplexobj(v)):
        raise TypeError(f"{what}: returned a complex value {v!r}; expected a real scalar "
                        f"(minimize does not drop an imaginary part)")
    if _backend.is_leaf(v) and len(tuple(v.shape)) > 0:
        if int(np.prod(tuple(v.shape))) != 1:
            raise OutputValueError(
                f"{what}: must return a scalar (one value), got shape {tuple(v.shape)}")
        v = v.reshape(())
    v = check_loss(v, what=what)
    leaf0 = optree.tree_leaves(like)[0]
    return _backend.of_value(leaf0).astype(v, leaf0)


def grad_like(g: Any, params: Params, what: str) -> Any:
    """A gradient from the user as a pytree like ``params`` (a flat NumPy array may
    come back as a list, with another dtype or shape ``(1,)``, as scipy allows)."""
    if g is None:
        raise TypeError(f"{what}: returned None; expected a gradient like x")
    if isinstance(params, np.ndarray):
        try:
            arr = np.asarray(_backend.to_numpy(g))
        except (TypeError, ValueError):
            raise TypeError(f"{what}: expected an array of numbers, got "
                            f"{type(g).__name__}") from None
        if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{what}: must return real numbers, got dtype {arr.dtype}")
        if arr.size != params.size:
            raise OutputValueError(
                f"{what}: returned {arr.size} values for {params.size} parameters")
        return arr.astype(params.dtype).reshape(params.shape)
    return g


@attrs.define(eq=False)
class Objective:
    """``fun`` (and ``jac``) as counted, copying, checking ``grad_fn(p) -> (f, g)``.

    Attributes:
      fun, jac, args: scipy's arguments (``jac`` a callable, ``True``, ``None`` or a
        finite-difference scheme name).
      like: params of the problem's form (for shapes and dtypes).
      lb, ub: flat bounds (for the finite-difference steps), or ``None``.
      eps: an absolute finite-difference step (scalar or vector), or ``None``.
      rel_step: scipy's ``finite_diff_rel_step``, or ``None``.
      observer: ``observer(p, g)`` called with every newly evaluated gradient (a
        quasi-Newton ``hess`` strategy is updated there, as scipy's ScalarFunction
        does at every new point), or ``None``.
      minus_inf: ``[p, g]`` of the first point evaluated with loss -inf (empty until
        then): :func:`fnopt.minimize` reports it, as scipy does, where the loop stops
        ``non_finite``.
    """

    fun: Callable[..., Any]
    jac: Any
    args: tuple[Any, ...]
    like: Params
    lb: np.ndarray | None = None
    ub: np.ndarray | None = None
    eps: Any = None
    rel_step: Any = None
    counts: Counts = attrs.field(factory=Counts)
    observer: Callable[[Params, Any], None] | None = None
    minus_inf: list[Any] = attrs.field(factory=list)
    _memo: list[Any] = attrs.field(factory=list)
    _torch_grad: Any = None

    def value(self, p: Params) -> Any:
        """``fun(copy of p, *args)`` checked, counted (the loss only)."""
        self.counts.nfev += 1
        out = self.fun(copy_params(p), *self.args)
        if self.jac is True:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("fun: with jac=True, fun must return a (value, gradient) "
                                "pair")
            out = out[0]
        return scalar_of(out, p, "fun")

    def __call__(self, p: Params) -> tuple[Any, Any]:
        """``(f(p), grad f(p))``: from the last call when ``p`` is the same point."""
        if self._memo and _same(self._memo[0], p):
            return self._memo[1], self._memo[2]
        v, g = self._evaluate(p)
        self._memo[:] = [copy_params(p), v, g]
        self._observe(p, g)
        if not self.minus_inf and float(_backend.to_numpy(v)) == -math.inf:
            self.minus_inf[:] = [copy_params(p), g]
        return v, g

    def _observe(self, p: Params, g: Any) -> None:
        if self.observer is not None:
            self.observer(p, g)

    def gradient_only(self, p: Params) -> Any:
        """The gradient at ``p`` without the loss where ``jac`` is a callable (for
        finite-difference Hessian products, as scipy: no calls of ``fun``)."""
        if callable(self.jac) and self.jac is not True:
            if self._memo and _same(self._memo[0], p):
                return self._memo[2]
            self.counts.njev += 1
            g = grad_like(self.jac(copy_params(p), *self.args), p, "jac")
            self._observe(p, g)
            return g
        return self(p)[1]

    def gradient_at(self, p: Params, v: Any) -> Any:
        """The gradient at ``p`` where the loss ``v`` is already known (finite
        differences reuse it; ``jac=True`` evaluates both)."""
        if self._memo and _same(self._memo[0], p):
            return self._memo[2]
        if self.jac is True or _backend.of(p).has_autodiff:
            return self(p)[1]
        if callable(self.jac):
            self.counts.njev += 1
            g = grad_like(self.jac(copy_params(p), *self.args), p, "jac")
        else:
            self.counts.njev += 1
            g = unflat(self._fd(p, float(_backend.to_numpy(v))), p)
        self._memo[:] = [copy_params(p), v, g]
        self._observe(p, g)
        return g

    def _fd(self, p: Params, f0: float) -> np.ndarray:
        return fd_gradient(lambda y: float(_backend.to_numpy(self.value(unflat(y, p)))),
                           flat(p), f0, "2-point" if self.jac in (None, False) else self.jac,
                           self.eps, self.rel_step, self.lb, self.ub)

    def _evaluate(self, p: Params) -> tuple[Any, Any]:
        if self.jac is True:
            self.counts.nfev += 1
            self.counts.njev += 1
            out = self.fun(copy_params(p), *self.args)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("fun: with jac=True, fun must return a (value, gradient) "
                                "pair")
            return scalar_of(out[0], p, "fun"), grad_like(out[1], p, "fun")
        if callable(self.jac):
            v = self.value(p)
            self.counts.njev += 1
            return v, grad_like(self.jac(copy_params(p), *self.args), p, "jac")
        self.counts.njev += 1
        if _backend.of(p).has_autodiff:
            if self._torch_grad is None:
                def f(q: Params) -> Any:
                    self.counts.nfev += 1
                    return scalar_of(self.fun(tree.clone(q), *self.args), q, "fun")
                self._torch_grad = _grad.torch_func(f)
            return self._torch_grad(p)  # type: ignore[no-any-return,unused-ignore]
        v = self.value(p)
        return v, unflat(self._fd(p, float(_backend.to_numpy(v))), p)


def _same(a: Params, b: Params) -> bool:
    la, lb = optree.tree_leaves(a), optree.tree_leaves(b)
    if not all(isinstance(x, np.ndarray) for x in (*la, *lb)):
        return False  # remembered for NumPy only
    return len(la) == len(lb) and all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(la, lb, strict=True))


def fd_steps(x: np.ndarray, f0: float, scheme: str, eps: Any, rel_step: Any) -> np.ndarray:
    """scipy's finite-difference steps: relative :math:`r\\,\\mathrm{sign}(x)\\max(1,|x|)`
    (:math:`r = \\sqrt{\\epsilon}` forward, :math:`\\epsilon^{1/3}` central), or the
    absolute ``eps`` (scalar or one per variable), or ``rel_step * |x|``."""
    mach = float(np.finfo(np.float64).eps)
    r = mach ** 0.5 if scheme == "2-point" else mach ** (1.0 / 3.0)
    sign = np.where(x >= 0, 1.0, -1.0)
    default = r * sign * np.maximum(1.0, np.abs(x))
    if eps is not None:
        h = np.broadcast_to(np.asarray(eps, dtype=np.float64), x.shape).copy()
    elif rel_step is not None:
        h = np.asarray(rel_step, dtype=np.float64) * sign * np.abs(x)
    else:
        return default
    return np.where((x + h) - x == 0, default, h)


def fd_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, f0: float, scheme: str,
                eps: Any, rel_step: Any, lb: np.ndarray | None,
                ub: np.ndarray | None) -> np.ndarray:
    """The gradient of ``f`` at ``x`` by ``'2-point'`` (forward) or ``'3-point'``
    (central) differences, every evaluated point inside ``[lb, ub]`` (one-sided or
    reversed steps near a bound); variables with ``lb == ub`` get 0, unevaluated."""
    if scheme == "cs":
        raise ValueError("jac: 'cs' (complex step) is not supported by fnopt.minimize; "
                         "use '2-point', '3-point', a callable or torch inputs")
    n = x.size
    lo = np.full(n, -np.inf) if lb is None else lb
    hi = np.full(n, np.inf) if ub is None else ub
    h = fd_steps(x, f0, scheme, eps, rel_step)
    g = np.zeros(n)
    for i in range(n):
        if lo[i] == hi[i]:
            continue
        up, down = hi[i] - x[i], x[i] - lo[i]
        if scheme == "3-point" and up >= abs(h[i]) and down >= abs(h[i]):
            hp, hm = _taken(x[i], abs(h[i])), _taken(x[i], -abs(h[i]))
            g[i] = (_at(f, x, i, hp) - _at(f, x, i, hm)) / (hp - hm)
            continue
        hi_ = h[i]
        if not lo[i] <= x[i] + hi_ <= hi[i]:
            hi_ = -hi_ if abs(hi_) <= max(up, down) else (up if up >= down else -down)
        if scheme == "3-point":  # one-sided three-point at a bound
            hi_ = math.copysign(min(abs(h[i]), 0.5 * max(up, down)), 1.0 if up >= down else -1.0)
            hi_ = _taken(x[i], hi_)
            f1, f2 = _at(f, x, i, hi_), _at(f, x, i, 2 * hi_)
            g[i] = (-3.0 * f0 + 4.0 * f1 - f2) / (2.0 * hi_)
            continue
        hi_ = _taken(x[i], hi_)
        g[i] = (_at(f, x, i, hi_) - f0) / hi_
    return g


def _taken(xi: float, h: float) -> float:
    """The step actually taken: :math:`(x + h) - x` as rounded (dividing by it makes
    the difference of a linear function exact, as scipy's ``approx_derivative``)."""
    return float((xi + h) - xi)


def _at(f: Callable[[np.ndarray], float], x: np.ndarray, i: int, h: float) -> float:
    y = x.copy()
    y[i] = x[i] + h
    return f(y)
