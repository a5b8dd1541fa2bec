"""Backend dispatch: the one place where NumPy and PyTorch differ.

Every piece of optimizer math in fnopt is written against :mod:`fnopt.tree`, which
flattens a pytree into a list of leaves and hands that list to one of the two
backends defined here. A backend implements list-level ("multi-tensor") arithmetic:

* :data:`NUMPY` uses vectorised ufuncs, one call per leaf;
* :data:`TORCH` uses the ``torch._foreach_*`` multi-tensor kernels in their
  out-of-place form, so a whole parameter list is processed by one kernel sequence.

All operations here are pure: they return new arrays and never write into their
inputs. The only exceptions are the explicitly named ``*_`` methods (``copy_``),
which exist for buffers that a loop owns.

``torch`` is imported lazily: a NumPy-only user never imports it, and a leaf can
only be a tensor if torch has already been imported by someone.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NUMPY", "TORCH", "Backend", "of", "of_leaves", "is_tensor", "name_of"]


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


class Backend:
    """List-level array arithmetic for one array library (see module docstring)."""

    name: str = "abstract"

    # -- construction -------------------------------------------------------------
    def zeros_like(self, xs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def full_like(self, xs: Sequence[Any], value: float) -> list[Any]:
        raise NotImplementedError

    def clone(self, xs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def scalar(self, value: float, like: Any) -> Any:
        """A 0-d array holding ``value`` with the dtype (and device) of ``like``."""
        raise NotImplementedError

    # -- elementwise --------------------------------------------------------------
    def add(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def sub(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def mul(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def div(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def scale(self, xs: Sequence[Any], s: Any) -> list[Any]:
        raise NotImplementedError

    def add_scalar(self, xs: Sequence[Any], s: Any) -> list[Any]:
        raise NotImplementedError

    def axpy(self, a: Any, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        """``a * x + y`` leaf by leaf."""
        raise NotImplementedError

    def lerp(self, xs: Sequence[Any], ys: Sequence[Any], w: float) -> list[Any]:
        """``x + w * (y - x)`` leaf by leaf."""
        raise NotImplementedError

    def addcmul(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float
    ) -> list[Any]:
        """``x + value * y * z`` leaf by leaf."""
        raise NotImplementedError

    def addcdiv(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float
    ) -> list[Any]:
        """``x + value * y / z`` leaf by leaf."""
        raise NotImplementedError

    def sqrt(self, xs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def abs(self, xs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def sign(self, xs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def maximum(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def clip(self, xs: Sequence[Any], lo: float, hi: float) -> list[Any]:
        raise NotImplementedError

    # -- reductions (return 0-d arrays, no host synchronisation) -------------------
    def vdot(self, xs: Sequence[Any], ys: Sequence[Any]) -> Any:
        raise NotImplementedError

    def sq_norm(self, xs: Sequence[Any]) -> Any:
        raise NotImplementedError

    def all_finite(self, xs: Sequence[Any]) -> bool:
        raise NotImplementedError

    # -- in place (only for buffers the caller owns) -------------------------------
    def copy_(self, dst: Sequence[Any], src: Sequence[Any]) -> None:
        raise NotImplementedError

    # -- misc ---------------------------------------------------------------------
    def to_float(self, x: Any) -> float:
        """A Python float from a 0-d array (a host synchronisation on GPUs)."""
        return float(x)

    def is_floating(self, x: Any) -> bool:
        raise NotImplementedError

    # -- dense linear algebra on flattened params (second-order methods) -----------
    def ravel(self, xs: Sequence[Any]) -> Any:
        """All leaves flattened and concatenated into one new 1-D array."""
        raise NotImplementedError

    def unravel(self, v: Any, like: Sequence[Any]) -> list[Any]:
        """Split a 1-D array into new leaves with the shapes of ``like``."""
        raise NotImplementedError

    def eye(self, n: int, like: Any) -> Any:
        """The ``n x n`` identity with the dtype (and device) of ``like``."""
        raise NotImplementedError

    def cholesky_solve(self, a: Any, b: Any) -> Any | None:
        """Solve ``a x = b`` for a symmetric ``a`` by Cholesky; ``None`` when ``a`` is
        not (numerically) positive definite."""
        raise NotImplementedError


def _arr(x: Any) -> Any:
    """NumPy arithmetic on 0-d arrays returns scalars; keep every leaf an ndarray."""
    return x if type(x) is np.ndarray else np.asarray(x)


def _weak(s: Any) -> Any:
    """A NumPy scalar or 0-d array as a Python number, so that (NEP 50) it does not
    promote float32 leaves to float64; anything else unchanged."""
    if isinstance(s, (np.generic, np.ndarray)) and np.ndim(s) == 0:
        return s.item()
    return s


class _Numpy(Backend):
    name = "numpy"

    def zeros_like(self, xs: Sequence[Any]) -> list[Any]:
        return [np.zeros_like(x) for x in xs]

    def full_like(self, xs: Sequence[Any], value: float) -> list[Any]:
        return [np.full_like(x, value) for x in xs]

    def clone(self, xs: Sequence[Any]) -> list[Any]:
        return [np.array(x, copy=True) for x in xs]

    def scalar(self, value: float, like: Any) -> Any:
        return np.asarray(value, dtype=like.dtype)

    def add(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(x + y) for x, y in zip(xs, ys)]

    def sub(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(x - y) for x, y in zip(xs, ys)]

    def mul(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(x * y) for x, y in zip(xs, ys)]

    def div(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(x / y) for x, y in zip(xs, ys)]

    def scale(self, xs: Sequence[Any], s: Any) -> list[Any]:
        s = _weak(s)
        return [_arr(x * s) for x in xs]

    def add_scalar(self, xs: Sequence[Any], s: Any) -> list[Any]:
        s = _weak(s)
        return [_arr(x + s) for x in xs]

    def axpy(self, a: Any, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        a = _weak(a)
        return [_arr(a * x + y) for x, y in zip(xs, ys)]

    def lerp(self, xs: Sequence[Any], ys: Sequence[Any], w: float) -> list[Any]:
        return [_arr(x + w * (y - x)) for x, y in zip(xs, ys)]

    def addcmul(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float
    ) -> list[Any]:
        return [_arr(x + value * (y * z)) for x, y, z in zip(xs, ys, zs)]

    def addcdiv(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float
    ) -> list[Any]:
        return [_arr(x + value * (y / z)) for x, y, z in zip(xs, ys, zs)]

    def sqrt(self, xs: Sequence[Any]) -> list[Any]:
        return [_arr(np.sqrt(x)) for x in xs]

    def abs(self, xs: Sequence[Any]) -> list[Any]:
        return [_arr(np.abs(x)) for x in xs]

    def sign(self, xs: Sequence[Any]) -> list[Any]:
        return [_arr(np.sign(x)) for x in xs]

    def maximum(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(np.maximum(x, y)) for x, y in zip(xs, ys)]

    def clip(self, xs: Sequence[Any], lo: float, hi: float) -> list[Any]:
        return [_arr(np.clip(x, lo, hi)) for x in xs]

    def vdot(self, xs: Sequence[Any], ys: Sequence[Any]) -> Any:
        if not xs:
            return np.asarray(0.0)
        total = np.vdot(xs[0], ys[0])
        for x, y in zip(xs[1:], ys[1:]):
            total = total + np.vdot(x, y)
        return np.asarray(total)

    def sq_norm(self, xs: Sequence[Any]) -> Any:
        return self.vdot(xs, xs)

    def all_finite(self, xs: Sequence[Any]) -> bool:
        return all(bool(np.isfinite(x).all()) for x in xs)

    def copy_(self, dst: Sequence[Any], src: Sequence[Any]) -> None:
        for d, s in zip(dst, src):
            np.copyto(d, s)

    def is_floating(self, x: Any) -> bool:
        return bool(np.issubdtype(np.asarray(x).dtype, np.floating))

    def ravel(self, xs: Sequence[Any]) -> Any:
        return np.concatenate([np.ravel(x) for x in xs])

    def unravel(self, v: Any, like: Sequence[Any]) -> list[Any]:
        out, i = [], 0
        for x in like:
            n = int(np.size(x))
            out.append(np.array(v[i : i + n].reshape(np.shape(x)), dtype=x.dtype))
            i += n
        return out

    def eye(self, n: int, like: Any) -> Any:
        return np.eye(n, dtype=like.dtype)

    def cholesky_solve(self, a: Any, b: Any) -> Any | None:
        try:
            low = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return None
        if not np.isfinite(low).all():
            return None
        y = np.linalg.solve(low, b)
        return np.linalg.solve(low.T, y)


class _Torch(Backend):
    name = "torch"

    @property
    def _t(self) -> Any:
        import torch

        return torch

    def zeros_like(self, xs: Sequence[Any]) -> list[Any]:
        t = self._t
        return [t.zeros_like(x) for x in xs]

    def full_like(self, xs: Sequence[Any], value: float) -> list[Any]:
        t = self._t
        return [t.full_like(x, value) for x in xs]

    def clone(self, xs: Sequence[Any]) -> list[Any]:
        return [x.clone() for x in xs]

    def scalar(self, value: float, like: Any) -> Any:
        return self._t.tensor(value, dtype=like.dtype, device=like.device)

    def add(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_add(list(xs), list(ys)))

    def sub(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_sub(list(xs), list(ys)))

    def mul(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_mul(list(xs), list(ys)))

    def div(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_div(list(xs), list(ys)))

    def scale(self, xs: Sequence[Any], s: Any) -> list[Any]:
        return list(self._t._foreach_mul(list(xs), s))

    def add_scalar(self, xs: Sequence[Any], s: Any) -> list[Any]:
        return list(self._t._foreach_add(list(xs), s))

    def axpy(self, a: Any, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        if isinstance(a, (int, float)):
            return list(self._t._foreach_add(list(ys), list(xs), alpha=a))
        return list(self._t._foreach_add(list(ys), self._t._foreach_mul(list(xs), a)))

    def lerp(self, xs: Sequence[Any], ys: Sequence[Any], w: float) -> list[Any]:
        return list(self._t._foreach_lerp(list(xs), list(ys), w))

    def addcmul(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float
    ) -> list[Any]:
        return list(self._t._foreach_addcmul(list(xs), list(ys), list(zs), value=value))

    def addcdiv(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float
    ) -> list[Any]:
        return list(self._t._foreach_addcdiv(list(xs), list(ys), list(zs), value=value))

    def sqrt(self, xs: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_sqrt(list(xs)))

    def abs(self, xs: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_abs(list(xs)))

    def sign(self, xs: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_sign(list(xs)))

    def maximum(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_maximum(list(xs), list(ys)))

    def clip(self, xs: Sequence[Any], lo: float, hi: float) -> list[Any]:
        return list(self._t._foreach_clamp_max(self._t._foreach_clamp_min(list(xs), lo), hi))

    def vdot(self, xs: Sequence[Any], ys: Sequence[Any]) -> Any:
        t = self._t
        if not xs:
            return t.zeros(())
        if len(xs) == 1:
            return t.sum(xs[0] * ys[0])
        return t.stack([t.sum(p) for p in t._foreach_mul(list(xs), list(ys))]).sum()

    def sq_norm(self, xs: Sequence[Any]) -> Any:
        t = self._t
        if not xs:
            return t.zeros(())
        norms = t._foreach_norm(list(xs))
        if len(norms) == 1:
            return norms[0] * norms[0]
        stacked = t.stack(norms)
        return t.dot(stacked, stacked)

    def all_finite(self, xs: Sequence[Any]) -> bool:
        t = self._t
        return all(bool(t.isfinite(x).all()) for x in xs)

    def copy_(self, dst: Sequence[Any], src: Sequence[Any]) -> None:
        self._t._foreach_copy_(list(dst), list(src))

    def to_float(self, x: Any) -> float:
        return float(x.item()) if is_tensor(x) else float(x)

    def is_floating(self, x: Any) -> bool:
        return bool(x.is_floating_point())

    def ravel(self, xs: Sequence[Any]) -> Any:
        return self._t.cat([x.reshape(-1) for x in xs])

    def unravel(self, v: Any, like: Sequence[Any]) -> list[Any]:
        out, i = [], 0
        for x in like:
            n = x.numel()
            out.append(v[i : i + n].reshape(x.shape).to(x.dtype).clone())
            i += n
        return out

    def eye(self, n: int, like: Any) -> Any:
        return self._t.eye(n, dtype=like.dtype, device=like.device)

    def cholesky_solve(self, a: Any, b: Any) -> Any | None:
        t = self._t
        low, info = t.linalg.cholesky_ex(a)
        if int(info) != 0 or not bool(t.isfinite(low).all()):
            return None
        return t.cholesky_solve(b.reshape(-1, 1), low).reshape(-1)


NUMPY: Backend = _Numpy()
TORCH: Backend = _Torch()


def of_leaves(leaves: Sequence[Any], *, what: str = "params") -> Backend:
    """The backend of a list of leaves; raise ``TypeError`` if they are mixed.

    An empty list is treated as NumPy. Leaves that are neither NumPy arrays nor torch
    tensors are rejected with a message naming ``what`` and the offending index.
    """
    if not leaves:
        return NUMPY
    first = leaves[0]
    if isinstance(first, np.ndarray):
        kind, backend = np.ndarray, NUMPY
    elif is_tensor(first):
        kind, backend = sys.modules["torch"].Tensor, TORCH
    else:
        raise TypeError(
            f"{what}: leaves must be numpy.ndarray or torch.Tensor, got "
            f"{type(first).__name__} at leaf 0"
        )
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, kind):
            raise TypeError(
                f"{what}: leaves mix numpy and torch (leaf 0 is {kind.__name__}, leaf {i} "
                f"is {type(leaf).__name__}); convert them to one backend"
            )
    return backend


def of(tree: Any, *, what: str = "params") -> Backend:
    """The backend of a pytree, decided from its leaves (see :func:`of_leaves`)."""
    import optree

    return of_leaves(optree.tree_leaves(tree), what=what)


def name_of(tree: Any) -> str:
    """``"numpy"`` or ``"torch"`` for a pytree."""
    return of(tree).name


def is_finite_scalar(x: Any) -> bool:
    """Whether a Python/NumPy/torch scalar is finite (synchronises on GPUs)."""
    return math.isfinite(float(x.item()) if is_tensor(x) else float(x))
