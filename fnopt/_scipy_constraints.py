"""scipy's ``constraints`` for :func:`fnopt.minimize`: dicts ``{'type': 'eq'|'ineq',
'fun': ..., 'jac': ..., 'args': ...}``, ``scipy.optimize.LinearConstraint`` and
``NonlinearConstraint`` (or any object with their attributes), one or a sequence, as
one function ``x -> Constraints`` (equalities ``= 0``, inequalities ``>= 0``, with
Jacobians; forward differences inside the bounds where no ``jac`` is given). The
user's functions get copies of ``x``; their calls are counted apart from ``fun``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fnopt._scipy_objective import fd_gradient
from fnopt.optimizers._sqp import Constraints

__all__ = ["normalize_constraints", "uses_finite_differences"]

Vec = np.ndarray
# a piece: values (equalities first), their Jacobian, how many leading rows are equalities
_Piece = tuple[Callable[[Vec], Vec], Callable[[Vec, Vec], Vec], Callable[[Vec], int]]


def _vector(v: Any, what: str) -> Vec:
    if v is None:
        raise TypeError(f"{what}: returned None; expected numbers")
    arr = np.asarray(v)
    if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{what}: must return real numbers, got {arr.dtype}")
    return np.atleast_1d(arr.astype(np.float64)).reshape(-1)


def _component(fun: Callable[[Vec], Vec], i: int) -> Callable[[Vec], float]:
    return lambda y: float(fun(y)[i])


def _fd_jac(fun: Callable[[Vec], Vec], lb: Vec | None, ub: Vec | None,
            scheme: str = "2-point") -> Callable[[Vec, Vec], Vec]:
    def jac(x: Vec, c0: Vec) -> Vec:
        rows = [fd_gradient(_component(fun, i), x, float(c0[i]), scheme, None, None, lb, ub)
                for i in range(c0.size)]
        return np.array(rows).reshape(c0.size, x.size)
    return jac


def _user_jac(jac: Any, args: tuple[Any, ...], what: str) -> Callable[[Vec, Vec], Vec]:
    def j(x: Vec, c0: Vec) -> Vec:
        out = jac(x.copy(), *args)
        if callable(getattr(out, "toarray", None)):
            out = out.toarray()
        arr = np.atleast_2d(np.asarray(out, dtype=np.float64))
        if arr.shape != (c0.size, x.size):
            arr = arr.reshape(c0.size, x.size)
        return arr
    return j


def _from_dict(con: dict[str, Any], i: int, lb: Vec | None, ub: Vec | None) -> list[_Piece]:
    what = f"constraints[{i}]"
    kind = con.get("type")
    if not isinstance(kind, str) or kind.lower() not in ("eq", "ineq"):
        raise ValueError(f"{what}['type']: expected 'eq' or 'ineq', got {kind!r}")
    if not callable(con.get("fun")):
        raise TypeError(f"{what}['fun']: expected a callable, got {con.get('fun')!r}")
    args = con.get("args", ())
    args = args if isinstance(args, tuple) else (args,)
    fun_ = con["fun"]

    def c(x: Vec) -> Vec:
        return _vector(fun_(x.copy(), *args), f"{what}['fun']")

    jac = con.get("jac")
    j = _user_jac(jac, args, what) if callable(jac) else _fd_jac(
        c, lb, ub, jac if jac in ("2-point", "3-point") else "2-point")
    eq = kind.lower() == "eq"
    return [(c, j, (lambda v: v.size) if eq else (lambda v: 0))]


def _from_bounded(con: Any, i: int, lb: Vec | None, ub: Vec | None) -> list[_Piece]:
    """``lb <= fun(x) <= ub`` (Nonlinear) or ``lb <= A x <= ub`` (Linear)."""
    what = f"constraints[{i}]"
    if hasattr(con, "A"):
        a = con.A.toarray() if callable(getattr(con.A, "toarray", None)) else con.A
        a = np.atleast_2d(np.asarray(a, dtype=np.float64))

        def base(x: Vec) -> Vec:
            return a @ x

        def base_jac_linear(x: Vec, c0: Vec) -> Vec:
            return a
        base_jac: Callable[[Vec, Vec], Vec] = base_jac_linear
    else:
        fun_ = con.fun

        def base(x: Vec) -> Vec:
            return _vector(fun_(x.copy()), f"{what}.fun")

        jac = getattr(con, "jac", "2-point")
        base_jac = _user_jac(jac, (), what) if callable(jac) else _fd_jac(
            base, lb, ub, jac if jac in ("2-point", "3-point") else "2-point")
    lo = np.atleast_1d(np.asarray(con.lb, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(con.ub, dtype=np.float64))
    return [_bounded_piece(base, base_jac, lo, hi)]


def _bounded_piece(base: Callable[[Vec], Vec], base_jac: Callable[[Vec, Vec], Vec],
                   lo: Vec, hi: Vec) -> _Piece:
    """``lo <= base(x) <= hi``: rows with ``lo == hi`` are equalities (first), finite
    ``lo`` and ``hi`` give inequalities."""
    def masks(size: int) -> tuple[Vec, Vec, Vec, Vec, Vec]:
        lo_, hi_ = np.broadcast_to(lo, (size,)), np.broadcast_to(hi, (size,))
        eq = lo_ == hi_
        return lo_, hi_, eq, ~eq & np.isfinite(lo_), ~eq & np.isfinite(hi_)

    n_eq_seen = [0]

    def c(x: Vec) -> Vec:
        v = base(x)
        lo_, hi_, eq, low, high = masks(v.size)
        n_eq_seen[0] = int(eq.sum())
        return np.concatenate([v[eq] - lo_[eq], (v - lo_)[low], (hi_ - v)[high]])

    def j(x: Vec, c0: Vec) -> Vec:
        v = base(x)
        jm = np.atleast_2d(base_jac(x, v)).reshape(v.size, x.size)
        _, _, eq, low, high = masks(v.size)
        return np.vstack([jm[eq], jm[low], -jm[high]])

    def n_eq(v: Vec) -> int:  # set by the call of c that made v
        return n_eq_seen[0]

    return (c, j, n_eq)


def normalize_constraints(constraints: Any, lb: Vec | None,
                          ub: Vec | None) -> Callable[..., Constraints]:
    """scipy's ``constraints`` as ``x -> Constraints`` (see the module docstring)."""
    cons = [constraints] if isinstance(constraints, dict) or not isinstance(
        constraints, (list, tuple)) else list(constraints)
    pieces: list[_Piece] = []
    for i, con in enumerate(cons):
        if isinstance(con, dict):
            pieces += _from_dict(con, i, lb, ub)
        elif hasattr(con, "lb") and hasattr(con, "ub") and (hasattr(con, "A") or
                                                           hasattr(con, "fun")):
            pieces += _from_bounded(con, i, lb, ub)
        else:
            raise TypeError(f"constraints[{i}]: expected a dict {{'type', 'fun', 'jac'}}, "
                            f"a LinearConstraint or a NonlinearConstraint, got "
                            f"{type(con).__name__}")

    def at(x: Vec, with_jac: bool = True) -> Constraints:
        n = x.size
        ce, je, ci, ji = [], [], [], []
        for c, j, n_eq in pieces:
            v = c(x)
            jm = np.asarray(j(x, v), dtype=np.float64).reshape(v.size, n) if with_jac \
                else np.zeros((v.size, n))
            k = n_eq(v)
            ce.append(v[:k])
            je.append(jm[:k])
            ci.append(v[k:])
            ji.append(jm[k:])
        return Constraints(np.concatenate(ce) if ce else np.zeros(0),
                           np.vstack(je) if je else np.zeros((0, n)),
                           np.concatenate(ci) if ci else np.zeros(0),
                           np.vstack(ji) if ji else np.zeros((0, n)))

    return at


def uses_finite_differences(constraints: Any) -> bool:
    """Whether some constraint has no ``jac`` (its Jacobian by finite differences)."""
    cons = [constraints] if isinstance(constraints, dict) or not isinstance(
        constraints, (list, tuple)) else list(constraints)
    for con in cons:
        if isinstance(con, dict):
            if not callable(con.get("jac")):
                return True
        elif not hasattr(con, "A") and not callable(getattr(con, "jac", None)):
            return True
    return False
