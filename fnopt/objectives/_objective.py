"""The one objective type: what fnopt knows about a function to minimise.

A task (:class:`fnopt.tasks.Task`), a test problem (:class:`fnopt.problems.Problem`,
:class:`fnopt.lsq_problems.LeastSquaresProblem`) and the testing kit's quadratic
(:class:`fnopt.testing.Quadratic`) are all an :class:`Objective`. Each has

* ``name``, ``loss`` (``loss(params, *batch) -> 0-d array/tensor``), and the
  ``backend`` and ``dtype`` its reference form computes in;
* ``init_params``, a fresh start point on that backend;
* ``minimizers`` (the known minimisers, possibly none) and ``min_value`` (the loss
  there, or ``None`` when unknown);
* :meth:`Objective.providers`, the gradient, Hessian and Hessian-vector providers for
  a backend (``None`` for the ones it does not know), and :meth:`Objective.distance`.

Each kind keeps its own fields and methods besides (a task's ``data``, a problem's
``starts``, a quadratic's ``smoothness``...).

>>> import fnopt
>>> objs = [fnopt.tasks.rosenbrock(), fnopt.problems.by_name("rosenbrock"),
...         fnopt.testing.make_quadratic()]
>>> [isinstance(o, Objective) for o in objs]
[True, True, True]
>>> [round(o.distance(o.init_params), 4) for o in objs]
[1.4142, 2.2, 1.0]
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import grad as _grad
from fnopt.grad import residuals as _res

__all__ = ["Objective", "Providers"]

BACKENDS = ("numpy", "torch")


#: A NumPy array or a torch tensor (the formulas take either).
Array = Any

class Providers(NamedTuple):
    """An objective's derivative providers on one backend (``None`` where unknown).

    Attributes:
      grad_fn: ``grad_fn(params, *batch) -> (value, grads)``.
      hessian_fn: ``hessian_fn(params, *batch) -> H`` (``n x n``, the params flattened
        in leaf order), or ``None``.
      hvp_fn: ``hvp_fn(params, v, *batch) -> H v`` as a pytree, or ``None``.
    """

    grad_fn: Callable[..., Any]
    hessian_fn: Callable[..., Any] | None
    hvp_fn: Callable[..., Any] | None


class Objective(abc.ABC):
    """A function to minimise, with what is known about it (see the module docstring).

    The abstract properties are fields or properties of each kind; the rest is shared.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A short name."""

    @property
    @abc.abstractmethod
    def loss(self) -> Callable[..., Any]:
        """``loss(params, *batch) -> 0-d array/tensor``."""

    @property
    @abc.abstractmethod
    def backend(self) -> str:
        """``"numpy"`` or ``"torch"``: where ``init_params`` and the providers live by
        default."""

    @property
    @abc.abstractmethod
    def dtype(self) -> str:
        """``"float32"`` or ``"float64"``."""

    @property
    @abc.abstractmethod
    def init_params(self) -> Any:
        """The conventional start point (a params pytree on ``backend``)."""

    @property
    @abc.abstractmethod
    def minimizers(self) -> tuple[Any, ...]:
        """The known minimisers (params pytrees), possibly none."""

    @property
    @abc.abstractmethod
    def min_value(self) -> float | None:
        """The loss at the first known minimiser, or ``None`` when unknown."""

    @abc.abstractmethod
    def _derivatives(self, backend: str) -> Providers:
        """The providers this kind knows on ``backend`` (validated)."""

    def providers(self, backend: str | None = None) -> Providers:
        """The gradient, Hessian and Hessian-vector providers on ``backend`` (default
        :attr:`backend`); the Hessian-vector product falls back to the Hessian times
        ``v`` where only the Hessian is known.

        Args:
          backend: ``"numpy"`` or ``"torch"`` (an objective whose data live on one
            backend accepts only that one), or ``None`` for :attr:`backend`.

        Returns:
          a :class:`Providers` ``(grad_fn, hessian_fn, hvp_fn)``.
        """
        backend = self.backend if backend is None else check_backend(backend)
        p = self._derivatives(backend)
        if p.hvp_fn is None and p.hessian_fn is not None:
            p = p._replace(hvp_fn=_grad.hvp_from_hessian(p.hessian_fn))
        return p

    def distance(self, x: Any) -> float:
        """Euclidean distance from ``x`` (a params pytree, NumPy or torch) to the
        nearest known minimiser; ``ValueError`` when none is known."""
        if not self.minimizers:
            raise ValueError(f"x: {self.name} has no known minimiser to measure from")
        leaves = optree.tree_leaves(x)
        if not leaves or not all(map(_backend.is_leaf, leaves)):
            raise ValueError(f"x: expected params (arrays or tensors), got {x!r:.80}")
        z, n = _flat64(x), _flat64(self.minimizers[0]).size
        if z.size != n:
            raise ValueError(f"x: expected {n} elements (as the minimiser), got {z.size}")
        return min(float(np.linalg.norm(z - _flat64(m))) for m in self.minimizers)



class ReferenceObjective(Objective):
    """An objective whose reference form is NumPy float64 (the test problems): the
    formulas take either backend, :meth:`start` gives the start point."""

    __slots__ = ()

    @property
    def backend(self) -> str:
        """``"numpy"``: the reference form (the loss itself takes either backend)."""
        return "numpy"

    @property
    def dtype(self) -> str:
        """``"float64"``."""
        return "float64"

    @property
    def init_params(self) -> Any:
        """The standard start point (:meth:`start`), a fresh NumPy array."""
        return self.start()

    @abc.abstractmethod
    def start(self) -> Any:
        """The standard start point."""


# -- shared helpers for the kinds -----------------------------------------------------


def _flat64(tree: Any) -> np.ndarray:
    """The leaves of a pytree flattened into one float64 NumPy vector."""
    leaves = optree.tree_leaves(tree)
    return np.concatenate([np.ravel(_backend.to_numpy(v)).astype(np.float64) for v in leaves])


def check_backend(backend: str) -> str:
    """``backend`` if it is ``"numpy"`` or ``"torch"``, else a ``ValueError``."""
    return _backend.by_name(backend).name


def dtype_name(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` from a dtype or its name (NumPy or torch)."""
    name = _backend.dtype_name(dtype)
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    return name


def gradient_provider(backend: str, loss: Callable[..., Any],
                      grad: Callable[..., Any] | None,
                      grad_loss: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """The hand-written gradient ``grad`` on NumPy (where given; paired with
    ``grad_loss``, default ``loss``, for the value), ``torch.func`` of ``loss`` on
    torch."""
    if _backend.by_name(backend).has_autodiff:
        return _grad.torch_func(loss)
    if grad is None:
        raise ValueError(f"backend: no gradient is written for this objective on {backend}")
    return _grad.from_functions(loss if grad_loss is None else grad_loss, grad)


def hessian_provider(backend: str, loss: Callable[..., Any],
                     hessian: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """The hand-written Hessian on NumPy (``None`` where there is none),
    ``torch.func.hessian`` on torch."""
    if _backend.by_name(backend).has_autodiff:
        return _grad.torch_hessian(loss)
    return None if hessian is None else _grad.hessian_from_function(hessian)


def hvp_provider(backend: str, loss: Callable[..., Any],
                 hessian: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """Hessian-vector products: the hand-written Hessian times ``v`` on NumPy,
    ``torch.func.jvp`` of the gradient on torch."""
    if _backend.by_name(backend).has_autodiff:
        return _grad.hvp_torch(loss)
    h = hessian_provider(backend, loss, hessian)
    return None if h is None else _grad.hvp_from_hessian(h)


def residual_provider(backend: str, residuals: Callable[..., Any],
                      jacobian: Callable[..., Any]) -> Callable[..., Any]:
    """A residual provider: the hand-written Jacobian on NumPy, ``torch.func`` on
    torch."""
    if _backend.by_name(backend).has_autodiff:
        return _res.residuals_torch(residuals)
    return _res.residuals_from_functions(residuals, jacobian)


# -- formula helpers: test problems written once for NumPy and torch --------------------


def xp_of(x: Any) -> Any:
    """The array module of ``x`` (``numpy`` or ``torch``), from :mod:`fnopt.backend`."""
    return _backend.of_leaves([x], what="x").xp


def const(x: Any, a: Any) -> Any:
    """The constant ``a`` (anything ``np.asarray`` takes) on the backend, dtype and
    device of ``x``."""
    return _backend.of_leaves([x], what="x").from_numpy(np.asarray(a, dtype=np.float64), x)


def stack(x: Any, parts: list[Any]) -> Any:
    """A 1-D array on ``x``'s backend and dtype from 0-d arrays and numbers."""
    be = _backend.of_leaves([x], what="x")
    return be.xp.stack([be.astype(p, x) for p in parts])


def concat(x: Any, parts: list[Any]) -> Any:
    """A 1-D array on ``x``'s backend from arrays (flattened) and numbers."""
    parts = [p.reshape(-1) if _backend.is_array(p) else const(x, [p]) for p in parts]
    return xp_of(x).concatenate(parts)
