"""scipy's ``hess``/``hessp`` arguments as :func:`fnopt.minimize` uses them, on flat
float64 vectors: a callable Hessian (dense, sparse or a linear operator), a
Hessian-vector product, finite differences of the gradient (``'2-point'``,
``'3-point'``; ``'cs'`` is refused), or a quasi-Newton strategy (an object with
scipy's ``HessianUpdateStrategy`` methods ``initialize``, ``update``, ``dot`` and
``get_matrix``, such as ``scipy.optimize.BFGS()`` or ``SR1()``), updated after every
accepted step with :math:`s = x_{k+1} - x_k`, :math:`y = g_{k+1} - g_k`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from fnopt._scipy_objective import Counts

__all__ = ["FlatHessian", "is_strategy"]

Vec = np.ndarray


def is_strategy(hess: Any) -> bool:
    """Whether ``hess`` is a quasi-Newton update strategy (scipy's interface)."""
    return not callable(hess) and all(
        callable(getattr(hess, m, None)) for m in ("initialize", "update", "dot", "get_matrix"))


def _dense(h: Any, n: int) -> Vec:
    if callable(getattr(h, "toarray", None)):
        h = h.toarray()
    elif not isinstance(h, np.ndarray) and callable(getattr(h, "dot", None)) and \
            not np.isscalar(h):
        h = np.column_stack([np.asarray(h.dot(e)).reshape(-1) for e in np.eye(n)])
    arr = np.asarray(h, dtype=np.float64)
    if arr.shape != (n, n):
        raise ValueError(f"hess: returned shape {arr.shape}, expected ({n}, {n})")
    return arr


@attrs.define(eq=False)
class FlatHessian:
    """The Hessian at flat points: ``matrix(x)`` and ``product(x, v)``.

    Attributes:
      hess, hessp: scipy's arguments (``hess`` may be a scheme name or a strategy).
      args: extra arguments for them.
      gradient: ``gradient(x) -> g`` (for finite differences and strategies).
      counts: where ``nhev`` is counted.
    """

    hess: Any
    hessp: Any
    args: tuple[Any, ...]
    gradient: Callable[[Vec], Vec]
    counts: Counts
    _cache: list[Any] = attrs.field(factory=list)
    _last: list[Any] = attrs.field(factory=list)

    def start(self, n: int) -> None:
        """Before the first step (initialises a strategy)."""
        if is_strategy(self.hess):
            self.hess.initialize(n, "hess")

    def accepted(self, x: Vec, g: Vec) -> None:
        """The iterate moved to ``x`` with gradient ``g`` (updates a strategy)."""
        if is_strategy(self.hess):
            if self._last:
                self.hess.update(x - self._last[0], g - self._last[1])
            self._last[:] = [x.copy(), g.copy()]

    def matrix(self, x: Vec) -> Vec:
        """:math:`\\nabla^2 f(x)` as a dense matrix."""
        if self._cache and np.array_equal(self._cache[0], x):
            return self._cache[1]  # type: ignore[no-any-return,unused-ignore]
        n = x.size
        if is_strategy(self.hess):
            h = np.asarray(self.hess.get_matrix(), dtype=np.float64)
        elif callable(self.hess):
            self.counts.nhev += 1
            h = _dense(self.hess(x.copy(), *self.args), n)
        else:
            h = np.column_stack([self.product(x, e) for e in np.eye(n)])
            h = 0.5 * (h + h.T)
        self._cache[:] = [x.copy(), h]
        return h

    def product(self, x: Vec, v: Vec) -> Vec:
        """:math:`\\nabla^2 f(x)\\, v`."""
        if self.hessp is not None:
            self.counts.nhev += 1
            out = np.asarray(self.hessp(x.copy(), v.copy(), *self.args), dtype=np.float64)
            return out.reshape(-1)
        if is_strategy(self.hess):
            return np.asarray(self.hess.dot(v), dtype=np.float64).reshape(-1)
        if callable(self.hess):
            return self.matrix(x) @ v
        return self._fd_product(x, v)

    def _fd_product(self, x: Vec, v: Vec) -> Vec:
        """:math:`(g(x + hv) - g(x)) / h` (``'2-point'``) or the central form."""
        vn = float(np.linalg.norm(v))
        if vn == 0:
            return np.zeros_like(x)
        central = self.hess == "3-point"
        rel = np.finfo(np.float64).eps ** (1 / 3 if central else 1 / 2)
        h = rel * max(1.0, float(np.linalg.norm(x))) / vn
        if central:
            return (self.gradient(x + h * v) - self.gradient(x - h * v)) / (2 * h)
        return (self.gradient(x + h * v) - self.gradient(x)) / h
