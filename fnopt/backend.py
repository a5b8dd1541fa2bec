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

import contextlib
import math
import sys
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np

__all__ = [
    "NUMPY", "TORCH", "Backend", "of", "of_leaves", "is_array", "is_tensor", "name_of", "to_numpy",
]


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_array(x: object) -> bool:
    """Whether ``x`` is a ``numpy.ndarray`` or a ``torch.Tensor`` (a leaf fnopt computes
    with, as opposed to a Python number or ``None`` inside a state)."""
    return isinstance(x, np.ndarray) or is_tensor(x)


def to_numpy(x: Any, *, copy: bool = False) -> np.ndarray:
    """``x`` as a NumPy array on the host, keeping its dtype.

    ``x`` may be a NumPy array or scalar, a Python number or sequence, or a torch tensor
    (detached and moved to the CPU). Without ``copy`` the result may share memory with
    ``x`` (a NumPy array, or a CPU tensor); with ``copy`` it never does. Unlike
    :meth:`Backend.to_numpy` (float64, for the batched code), the dtype is kept.

    >>> to_numpy(np.float32(1.5))
    array(1.5, dtype=float32)
    >>> to_numpy([1, 2])
    array([1, 2])
    """
    if is_tensor(x):
        x = x.detach().cpu().numpy()
    return np.array(x, copy=True) if copy else np.asarray(x)


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

    def detach(self, xs: Sequence[Any]) -> list[Any]:
        """The leaves cut from any autograd graph (the same memory; NumPy: as they are)."""
        return list(xs)

    def grad_mode(self, enabled: bool) -> contextlib.AbstractContextManager[Any]:
        """A context in which autograd records (``enabled``) or not; NumPy: nothing."""
        return contextlib.nullcontext()

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
    # Each ``op_`` writes into its first list and gives the same numbers as the pure
    # ``op`` (the same kernel with a different destination), so a step written with
    # them is bitwise the same whether it donates its buffers or not.
    def copy_(self, dst: Sequence[Any], src: Sequence[Any]) -> None:
        raise NotImplementedError

    def add_into(self, out: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        """``out = x + y`` leaf by leaf, written into ``out`` (buffers the caller owns,
        which may be ``xs`` itself); the same numbers as :meth:`add`. Returns ``out``."""
        raise NotImplementedError

    # -- rows of a batch (fnopt.batched: the leading axis indexes problems) -----------
    def take_rows(self, x: Any, rows: np.ndarray) -> Any:
        """``x[rows]`` (a new array) for integer row indices ``rows`` (NumPy int64)."""
        raise NotImplementedError

    def put_rows(self, dst: Any, rows: np.ndarray, src: Any) -> None:
        """``dst[rows] = src`` in place (``dst`` is a buffer the caller owns)."""
        raise NotImplementedError

    def to_numpy(self, x: Any) -> np.ndarray:
        """A float64 NumPy copy (or view) of ``x`` on the host."""
        raise NotImplementedError

    def from_numpy(self, a: np.ndarray, like: Any) -> Any:
        """A new array of this backend holding ``a``, with the dtype (and device) of
        ``like`` (the inverse of :func:`to_numpy` for one leaf)."""
        raise NotImplementedError

    def astype(self, x: Any, like: Any) -> Any:
        """``x`` (an array of this backend, or for NumPy also a NumPy scalar or Python
        number) with the dtype of ``like``; ``x`` itself when it already has it."""
        raise NotImplementedError

    def set_flat_(self, x: Any, i: int, value: float) -> None:
        """Set element ``i`` of ``x`` in C (row-major) order to ``value``, in place, whatever
        the memory layout of ``x`` (a private clone, made with :meth:`clone`, that the
        caller owns)."""
        raise NotImplementedError

    def scale_(self, xs: Sequence[Any], s: Any) -> list[Any]:
        """``x *= s`` leaf by leaf (the in-place :meth:`scale`); returns ``xs``."""
        raise NotImplementedError

    def axpy_(self, a: Any, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        """``y += a * x`` leaf by leaf (the in-place :meth:`axpy`); returns ``ys``."""
        raise NotImplementedError

    def adam_(
        self,
        params: Sequence[Any],
        grads: Sequence[Any],
        mus: Sequence[Any],
        nus: Sequence[Any],
        nu_maxs: Sequence[Any] | None,
        *,
        count: int,
        lr: float,
        b1: float,
        b2: float,
        eps: float,
        weight_decay: float,
    ) -> None:
        """One Adam step (torch.optim.Adam semantics, ``count`` = the step number,
        from 1) written into ``params``, ``mus``, ``nus`` (and ``nu_maxs`` for
        AMSGrad); ``grads`` are only read."""
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

    # -- per-leaf reductions (factored second moments, per-leaf scaling) -----------
    def norms(self, xs: Sequence[Any]) -> list[Any]:
        """The Euclidean norm of each leaf, as 0-d arrays of the leaf's dtype."""
        raise NotImplementedError

    def mean(self, xs: Sequence[Any], axis: int) -> list[Any]:
        """The mean of each leaf along ``axis``, keeping that axis (size 1)."""
        raise NotImplementedError

    # -- projections (fnopt.projections, fnopt.lbfgsb) -------------------------------
    def clamp(self, xs: Sequence[Any], lows: Sequence[Any], highs: Sequence[Any]) -> list[Any]:
        """Each leaf clamped elementwise to ``[low, high]``; a bound is a Python number
        (``±inf`` allowed) or an array of the leaf's shape, NumPy or torch, converted to
        the leaf's backend, dtype and device."""
        raise NotImplementedError

    def sort_desc(self, x: Any) -> Any:
        """A 1-D array's elements sorted in descending order (a new array)."""
        raise NotImplementedError

    # -- selections and axis sums (the small optax transforms) ---------------------
    def where(self, conds: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        """``x`` where ``cond`` holds, else ``y``, leaf by leaf (``y`` may be a number)."""
        raise NotImplementedError

    def isnan(self, xs: Sequence[Any]) -> list[Any]:
        """Boolean masks of the NaN entries of each leaf."""
        raise NotImplementedError

    def sum_axes(self, x: Any, axes: tuple[int, ...]) -> Any:
        """The sum of one leaf over ``axes``, keeping them (size 1)."""
        raise NotImplementedError


def _arr(x: Any) -> Any:
    """NumPy arithmetic on 0-d arrays returns scalars; keep every leaf an ndarray."""
    return x if type(x) is np.ndarray else np.asarray(x)


def _weak(s: Any) -> Any:
    """A NumPy scalar or 0-d array as a Python number, so that (NEP 50) it does not
    promote float32 leaves to float64; anything else unchanged."""
    if type(s) is float:  # the common case, first
        return s
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
        if len(xs) == 1:  # one leaf: skip the comprehension (tiny problems)
            return [_arr(xs[0] + ys[0])]
        return [_arr(x + y) for x, y in zip(xs, ys)]

    def sub(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(x - y) for x, y in zip(xs, ys)]

    def mul(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(x * y) for x, y in zip(xs, ys)]

    def div(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(x / y) for x, y in zip(xs, ys)]

    def scale(self, xs: Sequence[Any], s: Any) -> list[Any]:
        s = _weak(s)
        if len(xs) == 1:
            return [_arr(xs[0] * s)]
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
        if len(xs) > 1:
            for x, y in zip(xs[1:], ys[1:]):
                total = total + np.vdot(x, y)
        return np.asarray(total)

    def sq_norm(self, xs: Sequence[Any]) -> Any:
        if len(xs) == 1:
            return np.asarray(np.vdot(xs[0], xs[0]))
        return self.vdot(xs, xs)

    def all_finite(self, xs: Sequence[Any]) -> bool:
        return all(bool(np.isfinite(x).all()) for x in xs)

    def copy_(self, dst: Sequence[Any], src: Sequence[Any]) -> None:
        for d, s in zip(dst, src):
            np.copyto(d, s)

    def add_into(self, out: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        for o, x, y in zip(out, xs, ys):
            np.add(x, y, out=o)
        return list(out)

    def take_rows(self, x: Any, rows: np.ndarray) -> Any:
        return x.take(rows, axis=0)

    def put_rows(self, dst: Any, rows: np.ndarray, src: Any) -> None:
        dst[rows] = src

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    def from_numpy(self, a: np.ndarray, like: Any) -> Any:
        return a.astype(like.dtype)

    def astype(self, x: Any, like: Any) -> Any:
        return np.asarray(x, dtype=like.dtype)  # no copy when x already is such an array

    def set_flat_(self, x: Any, i: int, value: float) -> None:
        x[np.unravel_index(i, x.shape)] = value

    def scale_(self, xs: Sequence[Any], s: Any) -> list[Any]:
        s = _weak(s)
        for x in xs:
            x *= s  # ndarray in place (the ufunc of ``x * s``, written into ``x``)
        return list(xs)

    def axpy_(self, a: Any, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        a = _weak(a)
        if len(ys) == 1:  # one leaf (tiny problems): no loop
            y = ys[0]
            y += a * xs[0]
            return [y]
        for x, y in zip(xs, ys):
            y += a * x
        return list(ys)

    def adam_(
        self,
        params: Sequence[Any],
        grads: Sequence[Any],
        mus: Sequence[Any],
        nus: Sequence[Any],
        nu_maxs: Sequence[Any] | None,
        *,
        count: int,
        lr: float,
        b1: float,
        b2: float,
        eps: float,
        weight_decay: float,
    ) -> None:
        step_size = lr / (1.0 - b1**count)
        bc2_sqrt = (1.0 - b2**count) ** 0.5
        for i, (p, g, m, v) in enumerate(zip(params, grads, mus, nus)):
            if weight_decay:
                g = g + weight_decay * p
            # in-place operators (``x *= s``) on arrays this step owns: the same ufuncs
            # as ``np.multiply(x, s, out=x)`` without the keyword parsing (tiny leaves)
            tmp = np.subtract(g, m, out=np.empty_like(p))  # this leaf's one scratch array
            tmp *= 1.0 - b1
            m += tmp  # m <- m + (1 - b1) (g - m)
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v *= b2
            v += tmp  # v <- b2 v + (1 - b2) g^2
            if nu_maxs is not None:
                v = np.maximum(nu_maxs[i], v, out=nu_maxs[i])
            np.sqrt(v, out=tmp)
            tmp /= bc2_sqrt
            tmp += eps  # sqrt(v_hat) / sqrt(1 - b2^t) + eps
            np.divide(m, tmp, out=tmp)
            tmp *= -step_size
            p += tmp  # p <- p - lr / (1 - b1^t) * m / denom

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


    def norms(self, xs: Sequence[Any]) -> list[Any]:
        return [np.asarray(np.linalg.norm(x.reshape(-1)), dtype=x.dtype) for x in xs]

    def mean(self, xs: Sequence[Any], axis: int) -> list[Any]:
        return [_arr(x.mean(axis=axis, keepdims=True)) for x in xs]

    def clamp(self, xs: Sequence[Any], lows: Sequence[Any], highs: Sequence[Any]) -> list[Any]:
        def bound(b: Any, x: Any) -> Any:
            return b if isinstance(b, (int, float)) else to_numpy(b).astype(x.dtype, copy=False)

        return [_arr(np.clip(x, bound(lo, x), bound(hi, x))) for x, lo, hi in zip(xs, lows, highs)]

    def sort_desc(self, x: Any) -> Any:
        return np.sort(x)[::-1].copy()

    def where(self, conds: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [_arr(np.where(c, x, y)) for c, x, y in zip(conds, xs, ys)]

    def isnan(self, xs: Sequence[Any]) -> list[Any]:
        return [_arr(np.isnan(x)) for x in xs]

    def sum_axes(self, x: Any, axes: tuple[int, ...]) -> Any:
        return _arr(np.sum(x, axis=axes, keepdims=True))


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

    def detach(self, xs: Sequence[Any]) -> list[Any]:
        return [x.detach() for x in xs]

    def grad_mode(self, enabled: bool) -> contextlib.AbstractContextManager[Any]:
        return self._t.enable_grad() if enabled else self._t.no_grad()

    def clone(self, xs: Sequence[Any]) -> list[Any]:
        return [x.clone() for x in xs]

    def scalar(self, value: float, like: Any) -> Any:
        # a fill kernel, not a host-to-device copy (which would wait for the stream)
        return self._t.full((), value, dtype=like.dtype, device=like.device)

    def add(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_add(list(xs), list(ys)))

    def sub(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_sub(list(xs), list(ys)))

    def mul(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_mul(list(xs), list(ys)))

    def div(self, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_div(list(xs), list(ys)))

    def scale(self, xs: Sequence[Any], s: Any) -> list[Any]:
        if _needs_grad(s):  # _foreach_mul has no backward for a grad-requiring scalar
            return [x * s for x in xs]
        return list(self._t._foreach_mul(list(xs), s))

    def add_scalar(self, xs: Sequence[Any], s: Any) -> list[Any]:
        return list(self._t._foreach_add(list(xs), s))

    def axpy(self, a: Any, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        if isinstance(a, (int, float)):
            return list(self._t._foreach_add(list(ys), list(xs), alpha=a))
        if _needs_grad(a):  # as in scale: differentiate through a tensor coefficient
            return [a * x + y for x, y in zip(xs, ys)]
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

    def add_into(self, out: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        out = list(out)
        if all(o is x for o, x in zip(out, xs)):
            self._t._foreach_add_(out, list(ys))
        elif len(out) <= 16:  # few leaves: one pass each, no foreach copy first
            for o, x, y in zip(out, xs, ys):
                self._t.add(x, y, out=o)
        else:  # many leaves: two multi-tensor passes beat a per-leaf kernel launch each
            self._t._foreach_copy_(out, list(xs))
            self._t._foreach_add_(out, list(ys))
        return out

    def take_rows(self, x: Any, rows: np.ndarray) -> Any:
        # index_select: boolean-mask or fancy indexing is 6-50x slower on CPU
        return x.index_select(0, self._t.from_numpy(rows).to(x.device))

    def put_rows(self, dst: Any, rows: np.ndarray, src: Any) -> None:
        dst.index_copy_(0, self._t.from_numpy(rows).to(dst.device), src)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.detach().cpu().numpy(), dtype=np.float64)

    def from_numpy(self, a: np.ndarray, like: Any) -> Any:
        return self._t.as_tensor(a, dtype=like.dtype, device=like.device)

    def astype(self, x: Any, like: Any) -> Any:
        if is_tensor(x):
            return x.to(like.dtype)  # x itself when the dtype matches; keeps the graph
        return self._t.as_tensor(x, dtype=like.dtype, device=like.device)

    def set_flat_(self, x: Any, i: int, value: float) -> None:
        x[tuple(int(j) for j in np.unravel_index(i, tuple(x.shape)))] = value

    def scale_(self, xs: Sequence[Any], s: Any) -> list[Any]:
        xs = list(xs)
        self._t._foreach_mul_(xs, s)
        return xs

    def axpy_(self, a: Any, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        ys = list(ys)
        if isinstance(a, (int, float)):
            self._t._foreach_add_(ys, list(xs), alpha=a)
        else:
            self._t._foreach_add_(ys, self._t._foreach_mul(list(xs), a))
        return ys

    def adam_(
        self,
        params: Sequence[Any],
        grads: Sequence[Any],
        mus: Sequence[Any],
        nus: Sequence[Any],
        nu_maxs: Sequence[Any] | None,
        *,
        count: int,
        lr: float,
        b1: float,
        b2: float,
        eps: float,
        weight_decay: float,
    ) -> None:
        t = self._t
        # torch.optim.Adam(fused=True)'s kernel; it reads the step number from a
        # tensor per param (one shared CPU tensor is enough: the kernel only reads it)
        step = t.full((), float(count), dtype=t.float32, device=params[0].device)  # no H2D sync
        t._fused_adam_(
            list(params),
            list(grads),
            list(mus),
            list(nus),
            [] if nu_maxs is None else list(nu_maxs),
            [step] * len(params),
            lr=lr,
            beta1=b1,
            beta2=b2,
            weight_decay=weight_decay,
            eps=eps,
            amsgrad=nu_maxs is not None,
            maximize=False,
        )

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


    def norms(self, xs: Sequence[Any]) -> list[Any]:
        return list(self._t._foreach_norm(list(xs))) if xs else []

    def mean(self, xs: Sequence[Any], axis: int) -> list[Any]:
        return [x.mean(dim=axis, keepdim=True) for x in xs]

    def clamp(self, xs: Sequence[Any], lows: Sequence[Any], highs: Sequence[Any]) -> list[Any]:
        t = self._t

        def bound(b: Any, x: Any) -> Any:
            if isinstance(b, (int, float)):
                return t.full((), float(b), dtype=x.dtype, device=x.device)
            return t.as_tensor(b if is_tensor(b) else to_numpy(b), dtype=x.dtype, device=x.device)

        return [t.clamp(x, bound(lo, x), bound(hi, x)) for x, lo, hi in zip(xs, lows, highs)]

    def sort_desc(self, x: Any) -> Any:
        return self._t.sort(x, descending=True).values

    def where(self, conds: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
        return [self._t.where(c, x, y) for c, x, y in zip(conds, xs, ys)]

    def isnan(self, xs: Sequence[Any]) -> list[Any]:
        return [self._t.isnan(x) for x in xs]

    def sum_axes(self, x: Any, axes: tuple[int, ...]) -> Any:
        return x.sum(dim=axes, keepdim=True) if axes else x.clone()


def _needs_grad(s: Any) -> bool:
    """Whether ``s`` is a tensor that autograd tracks (a hyperparameter being learned)."""
    return is_tensor(s) and bool(s.requires_grad)


NUMPY: Backend = _Numpy()
TORCH: Backend = _Torch()


# NumPy leaves: arrays, and NumPy scalars, which user gradients return for 0-d leaves
# (``2 * p`` or ``x.mean()`` for a 0-d array ``p``). NumPy arithmetic on a scalar gives
# arrays again here (``_arr``); a scalar is never the destination of an in-place op.
_NP_LEAF = (np.ndarray, np.generic)


def of_leaves(leaves: Sequence[Any], *, what: str = "params") -> Backend:
    """The backend of a list of leaves; raise ``TypeError`` if they are mixed.

    An empty list is treated as NumPy. NumPy scalars count as NumPy leaves (the
    gradient of a 0-d leaf is often one). Leaves that are neither NumPy arrays or
    scalars nor torch tensors are rejected with a message naming ``what`` and the
    offending index (:func:`fnopt._base.check_params` rejects scalar params).
    """
    if not leaves:
        return NUMPY
    first = leaves[0]
    kind: Any
    if isinstance(first, _NP_LEAF):
        kind, backend = _NP_LEAF, NUMPY
    elif is_tensor(first):
        kind, backend = sys.modules["torch"].Tensor, TORCH
    else:
        raise TypeError(
            f"{what}: leaves must be numpy.ndarray or torch.Tensor, got "
            f"{type(first).__name__} at leaf 0"
        )
    if len(leaves) == 1 or all(map(isinstance, leaves, repeat(kind))):  # C-level loop
        return backend
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, kind):
            kind = np.ndarray if kind is _NP_LEAF else kind
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
