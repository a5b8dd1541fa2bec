"""Convex quadratics with a known minimum over any params pytree, on either backend
(the testing kit's objective, re-exported as :class:`fnopt.testing.Quadratic` and
:func:`fnopt.testing.make_quadratic`).

>>> q = make_quadratic(seed=0)
>>> q.name, q.distance(q.init_params), float(q.loss(q.minimum)) == q.min_value
('quadratic', 1.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt.objectives._objective import Objective, Providers, check_backend

__all__ = ["Quadratic", "make_quadratic"]

DTYPES = ("float32", "float64")


@attrs.frozen(eq=False)
class Quadratic(Objective):
    """A convex quadratic :math:`f(p) = \\tfrac12 (z - z^*)^T A (z - z^*) + f^*`, where
    :math:`z` is the concatenation of the (flattened) leaves of the params pytree ``p``
    (an :class:`fnopt.objectives.Objective`).

    Attributes:
      loss: ``loss(params) -> 0-d array/tensor`` in the params' dtype.
      grad_fn: ``grad_fn(params) -> (loss, grads)``.
      init_params: a starting point (``|z0 - z*| = 1``).
      minimum: the minimiser :math:`z^*` as a params pytree.
      min_value: :math:`f^*`.
      hessian: :math:`A` as a float64 NumPy matrix.
      smoothness: the largest eigenvalue of :math:`A` (gradient Lipschitz constant).
      strong_convexity: the smallest eigenvalue of :math:`A`.
      backend: ``"numpy"`` or ``"torch"``.
      dtype: ``"float32"`` or ``"float64"``.
      hessian_fn: a Hessian provider ``hessian_fn(params) -> A`` (on the backend, in
        the dtype), for :func:`fnopt.newton`.
      hvp: ``hvp(params, v) -> A v`` as a pytree, for :func:`fnopt.newton_cg`.
      name: ``"quadratic"``.
    """

    loss: Callable[[Any], Any]
    grad_fn: Callable[[Any], tuple[Any, Any]]
    init_params: Any
    minimum: Any
    min_value: float
    hessian: np.ndarray
    smoothness: float
    strong_convexity: float
    backend: str
    dtype: str
    hessian_fn: Callable[..., Any]
    hvp: Callable[..., Any]
    name: str = "quadratic"

    @property
    def minimizers(self) -> tuple[Any, ...]:
        """``(minimum,)``."""
        return (self.minimum,)

    def _derivatives(self, backend: str) -> Providers:
        if backend != self.backend:
            raise ValueError(f"backend: this quadratic lives on {self.backend!r}, got {backend!r}")
        return Providers(self.grad_fn, self.hessian_fn, self.hvp)


def _check_eigenvalues(backend: str, dtype: str, eigenvalues: Any) -> tuple[float, float]:
    check_backend(backend)
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    lo, hi = (float(v) for v in eigenvalues)
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"eigenvalues: expected 0 < smallest <= largest, got {eigenvalues!r}")
    return lo, hi


def _random_problem(n: int, lo: float, hi: float, seed: int) -> tuple[np.ndarray, ...]:
    """``(A, z*, z0)``: a random symmetric ``A`` with eigenvalues spread evenly over
    ``[lo, hi]``, a standard-normal minimiser and a start at distance 1 from it."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = np.linspace(lo, hi, n) if n > 1 else np.array([hi])
    a = (q * eig) @ q.T
    a = 0.5 * (a + a.T)
    zstar = rng.standard_normal(n)
    d = rng.standard_normal(n)
    return a, zstar, zstar + d / np.linalg.norm(d)


@attrs.frozen
class _Layout:
    """How a flat vector maps onto the leaves of a params pytree."""

    spec: Any
    shapes: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]

    def split(self, v: Any) -> Any:
        """The pytree whose leaves are consecutive slices of the 1-D ``v``, reshaped."""
        parts, i = [], 0
        for shp, sz in zip(self.shapes, self.sizes):
            parts.append(v[i:i + sz].reshape(shp))
            i += sz
        return self.spec.unflatten(parts)


def _layout(like: Any) -> _Layout:
    leaves, spec = optree.tree_flatten(like)
    if not leaves:
        raise ValueError("like: empty pytree (no arrays)")
    shapes = tuple(tuple(x.shape) for x in leaves)
    return _Layout(spec, shapes, tuple(int(np.prod(s)) for s in shapes))


def make_quadratic(
    like: Any = None,
    *,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    eigenvalues: tuple[float, float] = (0.5, 2.0),
    min_value: float = 0.0,
) -> Quadratic:
    """A random convex quadratic (see :class:`Quadratic`) over params shaped like
    ``like``.

    Args:
      like: a pytree whose structure and leaf shapes the params take (its values are
        ignored); default a vector of 5.
      seed: seeds :math:`A`, :math:`z^*` and the start point (NumPy's generator, so a
        seed gives the same numbers on both backends).
      backend: ``"numpy"`` or ``"torch"``.
      dtype: ``"float32"`` or ``"float64"``.
      eigenvalues: ``(smallest, largest)`` eigenvalue of :math:`A`, both > 0.
      min_value: :math:`f^*`.

    Returns:
      a :class:`Quadratic`.

    >>> q = make_quadratic({"w": np.zeros((2, 2)), "b": np.zeros(3)}, seed=1)
    >>> value, grads = q.grad_fn(q.minimum)
    >>> float(value), float(np.abs(grads["w"]).max()) < 1e-12
    (0.0, True)
    """
    lo, hi = _check_eigenvalues(backend, dtype, eigenvalues)
    lay = _layout(np.zeros(5) if like is None else like)
    a64, zstar, z0 = _random_problem(sum(lay.sizes), lo, hi, seed)
    a = _backend.array(a64, backend, dtype)
    be = _backend.of_leaves([a])
    zs = _backend.array(zstar, backend, dtype)
    fmin = _backend.array(min_value, backend, dtype)

    def flat(p: Any) -> Any:
        return be.ravel(optree.tree_leaves(p))

    def loss(params: Any) -> Any:
        r = flat(params) - zs
        return be.astype(0.5 * (r @ (a @ r)) + fmin, a)

    def grad_fn(params: Any) -> tuple[Any, Any]:
        r = flat(params) - zs
        ar = a @ r
        return be.astype(0.5 * (r @ ar) + fmin, a), lay.split(ar)

    def hessian_fn(params: Any, *batch: Any) -> Any:
        del params, batch
        return a

    def hvp(params: Any, v: Any, *batch: Any) -> Any:
        del params, batch
        return lay.split(a @ flat(v))

    def point(z: np.ndarray) -> Any:
        return optree.tree_map(lambda v: _backend.array(v, backend, dtype), lay.split(z))

    return Quadratic(
        loss=loss,
        grad_fn=grad_fn,
        init_params=point(z0),
        minimum=point(zstar),
        min_value=float(min_value),
        hessian=a64,
        smoothness=hi,
        strong_convexity=lo,
        backend=backend,
        dtype=dtype,
        hessian_fn=hessian_fn,
        hvp=hvp,
    )
