"""Backend dispatch: the one place where NumPy and PyTorch differ.

Every piece of optimizer math in fnopt is written against :mod:`fnopt.tree`, which
flattens a pytree into a list of leaves and hands that list to one of the two
backends defined here. A backend implements list-level ("multi-tensor") arithmetic:

* :data:`NUMPY` uses vectorised ufuncs, one call per leaf;
* :data:`TORCH` uses the ``torch._foreach_*`` multi-tensor kernels, so a whole
  parameter list is processed by one kernel sequence.

Every elementwise op has a destination ``out``: ``None`` (the default) returns new
arrays and never writes into its inputs; a list of buffers the caller owns (typically
the op's first operand) receives the result instead (``out=`` ufuncs on NumPy, the
in-place ``torch._foreach_*_`` forms on torch). The destination never changes the
arithmetic, so an update written once with ``out=buf if inplace else None`` gives
bitwise the same numbers whether it runs pure or in place. The ``fused_*_`` methods run
torch's fused optimizer kernels for the chains :mod:`fnopt.transforms.fused` recognises.

``torch`` is imported lazily: a NumPy-only user never imports it, and a leaf can
only be a tensor if torch has already been imported by someone.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import sys
import warnings
from collections.abc import Sequence
from itertools import repeat
from operator import add, attrgetter, is_, itemgetter, lt, mul
from typing import Any

import numpy as np

__all__ = [
    "NUMPY", "TORCH", "Backend", "of", "of_leaves", "is_array", "is_tensor", "name_of", "to_numpy",
    "of_value", "is_leaf", "same_type", "dtype_name",
]


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_torch_module(x: object) -> bool:
    """Whether ``x`` is a ``torch.nn.Module`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.nn.Module)


def is_array(x: object) -> bool:
    """Whether ``x`` is a ``numpy.ndarray`` or a ``torch.Tensor`` (a leaf fnopt computes
    with, as opposed to a Python number or ``None`` inside a state)."""
    return isinstance(x, np.ndarray) or is_tensor(x)


def array(a: Any, backend: str = "numpy", dtype: Any = None, *, device: Any = None) -> Any:
    """A new array of the backend named ``backend`` (``"numpy"`` or ``"torch"``) holding
    ``a`` (anything ``np.array`` takes, or a tensor) with ``dtype`` (a NumPy dtype or its
    name; by default ``a``'s): the one converter from data to a backend by name.

    A tensor ``a`` is detached and copied; for ``"torch"`` it stays on its device unless
    ``device`` is given (a torch device or its name, for ``"torch"`` only).

    >>> array([1, 2], "numpy", "float32")
    array([1., 2.], dtype=float32)
    """
    if backend == "torch" and is_tensor(a):
        t = a.detach()
        if dtype is not None:
            t = t.to(getattr(sys.modules["torch"], np.dtype(dtype).name))
        return t.clone() if device is None else t.to(device, copy=True)
    arr = np.array(to_numpy(a) if is_tensor(a) else a, dtype=dtype, copy=True)
    if backend == "torch":
        import torch

        t = torch.from_numpy(arr)
        return t if device is None else t.to(device)
    if backend != "numpy":
        raise ValueError(f"backend: expected 'numpy' or 'torch', got {backend!r}")
    if device is not None:
        raise ValueError(f"device: only for backend 'torch', got device={device!r}")
    return arr


def to_numpy(x: Any, *, copy: bool = False, what: str = "x") -> np.ndarray:
    """``x`` as a NumPy array on the host, keeping its dtype.

    ``x`` may be a NumPy array or scalar, a Python number or sequence, or a torch tensor
    (detached, moved to the CPU, its conjugate and negative bits resolved). Without
    ``copy`` the result may share memory with ``x`` (a NumPy array, or a CPU tensor);
    with ``copy`` it never does. Unlike :meth:`Backend.to_numpy` (float64, for the
    batched code), the dtype is kept; a ``bfloat16`` tensor, whose dtype NumPy lacks,
    raises ``TypeError`` naming ``what``.

    >>> to_numpy(np.float32(1.5))
    array(1.5, dtype=float32)
    >>> to_numpy([1, 2])
    array([1, 2])
    """
    if is_tensor(x):
        if x.dtype == sys.modules["torch"].bfloat16:
            raise TypeError(f"{what}: bfloat16 tensors have no NumPy dtype")
        x = x.detach().cpu().resolve_conj().resolve_neg().numpy()
    return np.array(x, copy=True) if copy else np.asarray(x)


Out = Sequence[Any] | None
"""The destination of an elementwise op: ``None`` (new arrays) or buffers to write."""


class Backend:
    """List-level array arithmetic for one array library (see module docstring)."""

    name: str = "abstract"
    has_fused: bool = False
    """Whether :meth:`fused_adam_` and friends exist (torch); see :meth:`can_fuse`."""
    has_autodiff: bool = False
    """Whether derivatives of a user's function can come from automatic differentiation
    (torch: ``torch.func``); without it, providers fall back to finite differences."""

    # -- construction -------------------------------------------------------------
    def zeros_like(self, xs: Sequence[Any], dtype: str | None = None) -> list[Any]:
        """Zeros shaped like each leaf, of the leaf's dtype or of ``dtype`` (a name such
        as ``"float32"``)."""
        raise NotImplementedError

    def full_like(self, xs: Sequence[Any], value: float, out: Out = None) -> list[Any]:
        raise NotImplementedError

    def clone(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        """Copies of the leaves: new arrays, or written into ``out``."""
        raise NotImplementedError

    def cast(self, xs: Sequence[Any], dtype: str) -> list[Any]:
        """New leaves converted to the dtype named ``dtype`` (e.g. ``"float32"``)."""
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
    # Every op takes a destination ``out``: ``None`` (new arrays) or a list of buffers
    # the caller owns, typically the op's first list operand (``xs``; ``ys`` for
    # :meth:`axpy`, whose result is ``y + a x``). Any layout is fine, and so is a
    # destination sharing memory with another operand: an op whose first pass would
    # overwrite an operand it still reads checks (:meth:`overlaps`) and computes into
    # new arrays first. (An operand partly overlapping a destination that is the first
    # operand is not supported: torch raises a ``RuntimeError`` for it on CPU.) The
    # destination never changes the arithmetic: ``op(..., out=buf)`` writes bitwise the
    # numbers ``op(...)`` returns, so one expression serves a pure step and an in-place
    # one.
    def add(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def sub(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def mul(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def div(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def scale(self, xs: Sequence[Any], s: Any, out: Out = None) -> list[Any]:
        raise NotImplementedError

    def add_scalar(self, xs: Sequence[Any], s: Any, out: Out = None) -> list[Any]:
        raise NotImplementedError

    def axpy(self, a: Any, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        """``a * x + y`` leaf by leaf (``out`` may be ``ys``)."""
        raise NotImplementedError

    def lerp(self, xs: Sequence[Any], ys: Sequence[Any], w: float, out: Out = None) -> list[Any]:
        """``x + w * (y - x)`` leaf by leaf."""
        raise NotImplementedError

    def addcmul(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float,
        out: Out = None,
    ) -> list[Any]:
        """``x + value * y * z`` leaf by leaf."""
        raise NotImplementedError

    def addcdiv(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float,
        out: Out = None,
    ) -> list[Any]:
        """``x + value * y / z`` leaf by leaf."""
        raise NotImplementedError

    def sqrt(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def abs(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def sign(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def maximum(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        raise NotImplementedError

    def clip(self, xs: Sequence[Any], lo: float, hi: float, out: Out = None) -> list[Any]:
        raise NotImplementedError

    # -- reductions (return 0-d arrays, no host synchronisation) -------------------
    def vdot(self, xs: Sequence[Any], ys: Sequence[Any]) -> Any:
        raise NotImplementedError

    def sq_norm(self, xs: Sequence[Any]) -> Any:
        raise NotImplementedError

    def all_finite(self, xs: Sequence[Any]) -> bool:
        raise NotImplementedError

    def count_non_finite(self, xs: Sequence[Any]) -> int:
        """How many elements of the arrays ``xs`` are NaN or +-inf."""
        raise NotImplementedError

    def on_host(self, x: Any) -> bool:
        """Whether ``x`` lives in host memory (a NumPy array, a CPU tensor): reading it
        to a Python float stalls no device."""
        return True

    def first_non_finite(self, values: Sequence[Any]) -> tuple[int, float]:
        """The losses ``values`` (scalars: 0-d arrays/tensors or numbers) read to the
        host at once: ``(i, v)`` with ``i`` the index of the first that is not finite
        and ``v`` its value, or ``(len(values) - 1, last value)`` when all are finite.
        On torch this is one device-to-host read whatever the number of values.

        >>> NUMPY.first_non_finite([np.float64(2.0), 1.0, np.float64(np.nan), 3.0])
        (2, nan)
        >>> NUMPY.first_non_finite([np.float64(2.0), 0.5])
        (1, 0.5)
        """
        floats = [float(v) for v in values]
        for i, v in enumerate(floats):
            if not math.isfinite(v):
                return i, v
        return len(floats) - 1, floats[-1]

    # -- fused whole-step kernels (accelerations of recognised chains) --------------
    # fnopt.transforms.fused recognises the chains; these run torch's fused kernels on the
    # lists given, in place (params, and the state buffers; grads are only read).
    def can_fuse(self, *roles: Sequence[Any]) -> bool:
        """Whether torch's fused kernels compute, on exactly these lists, what the
        generic path computes: the one predicate every fused step asks, with the lists
        the kernel will read and write (``roles``: the destination params, the grads,
        then each state buffer list, index ``i`` of each belonging to parameter ``i``).

        The kernels walk each tensor as one flat run of memory, element ``k`` of every
        tensor of index ``i`` together, and write some of them in place. So they are
        correct only when, for every index, all the tensors

        * are plain strided floating tensors on one CPU/CUDA device that no autograd
          graph records (no lazy negation, no subclass);
        * have the same shape, dtype and strides (over the dimensions longer than 1),
          and are non-overlapping and dense: no stride-0 (expanded) dimension, no gaps
          (a sliced tensor); a permuted dense layout (a transposed matrix,
          channels_last) is fine when every tensor of the index shares it;

        and no two tensors given share memory (a grad that aliases the params or a
        state buffer, a destination overlapping the grads, the same buffer twice).
        Anything else takes the generic path. Never true for NumPy (no kernels).
        """
        del roles
        return False

    def overlaps(self, xs: Sequence[Any], ys: Sequence[Any]) -> bool:
        """Whether some leaf of ``xs`` may share memory with some leaf of ``ys``: their
        address ranges meet (conservative: two interleaved views such as ``a[::2]``
        and ``a[1::2]`` count). Leaves with no memory of their own (NumPy scalars,
        empty arrays) share none.

        >>> a = np.zeros(6)
        >>> NUMPY.overlaps([a[:3]], [a[2:]]), NUMPY.overlaps([a[:3]], [a[3:]])
        (True, False)
        """
        owned = OWNED.get()
        if owned is None:
            return _meet(self._spans(xs), self._spans(ys))
        verdict = owned.lookup("overlaps", (xs, ys))
        if verdict is None:  # owned buffers: decided once; others: every time
            verdict = _meet(self._spans(xs), self._spans(ys))
            if owned.holds((xs, ys)):
                owned.remember("overlaps", (xs, ys), verdict)
        return bool(verdict)

    def _spans(self, xs: Sequence[Any]) -> list[tuple[Any, int, int] | None]:
        """:meth:`_span` of each leaf."""
        return list(map(self._span, xs))

    def _span(self, x: Any) -> tuple[Any, int, int] | None:
        """``(address space, first byte, end byte)`` of the memory ``x`` may touch, or
        ``None`` when it has none."""
        raise NotImplementedError

    def fused_adam_(
        self, params: Sequence[Any], grads: Sequence[Any], mus: Sequence[Any],
        nus: Sequence[Any], nu_maxs: Sequence[Any] | None, *, count: int, lr: float,
        b1: float, b2: float, eps: float, weight_decay: float, decoupled: bool,
        maximize: bool,
    ) -> None:
        """One Adam (AdamW with ``decoupled``) step, torch.optim ``fused=True``
        arithmetic, ``count`` = the step number from 1."""
        raise NotImplementedError

    def fused_sgd_(
        self, params: Sequence[Any], grads: Sequence[Any], bufs: Sequence[Any], *,
        lr: float, momentum: float, dampening: float, nesterov: bool,
        weight_decay: float, maximize: bool, first: bool,
    ) -> None:
        """One SGD step (torch.optim.SGD ``fused=True``); ``first``: the momentum
        buffers are set to the gradient."""
        raise NotImplementedError

    def fused_adagrad_(
        self, params: Sequence[Any], grads: Sequence[Any], sums: Sequence[Any], *,
        lr: float, eps: float, weight_decay: float, maximize: bool,
    ) -> None:
        """One Adagrad step (torch.optim.Adagrad ``fused=True``) at the rate ``lr``."""
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

    # -- mapping over a leading axis (fnopt.batched) ----------------------------------
    def vmap(self, fn: Any) -> Any:
        """``fn`` mapped over the leading axis of its arguments and outputs
        (``torch.func.vmap``), or ``None`` where this backend has no such map (NumPy)."""
        del fn
        return None

    # -- the array namespace, for formulas written once (fnopt.objectives) --------
    @property
    def xp(self) -> Any:
        """The array module, ``numpy`` or ``torch``, for a formula written once with the
        functions both name alike (``exp``, ``log1p``, ``sin``, ``cos``, ``tanh``,
        ``sqrt``, ``arctan2``, ``abs``, ``prod``, ``stack``, ``concatenate``,
        ``ones_like``)."""
        raise NotImplementedError

    def logsumexp(self, z: Any, axis: int) -> Any:
        """``log(sum(exp(z)))`` along ``axis``, kept as a size-1 axis, computed stably."""
        raise NotImplementedError

    # -- single leaves (one value, not a list: validation, conversions, host data) --
    # Callers pick the backend of one value with :func:`of_value`.
    title: str = "abstract"
    """The library's name as messages write it (``"NumPy"``, ``"torch"``)."""
    noun: str = "array"
    """What one array of this backend is called in messages (``"array"``, ``"tensor"``)."""

    def size(self, x: Any) -> int:
        """The number of elements of one leaf."""
        raise NotImplementedError

    def is_meta(self, x: Any) -> bool:
        """Whether ``x`` holds no data (a torch tensor on the ``meta`` device); NumPy:
        never."""
        return False

    def layout_problem(self, x: Any) -> str | None:
        """Why ``x`` cannot be a params or gradient leaf because of its memory layout
        (a sparse or otherwise non-strided torch tensor), or ``None``."""
        del x
        return None

    def is_complex(self, x: Any) -> bool:
        """Whether ``x`` has a complex dtype."""
        raise NotImplementedError

    def as_0d(self, value: Any, like: Any) -> Any:
        """``value`` (a loss) as an array of this backend: an array of this backend
        passes through; a number, NumPy scalar (or, for torch, a 0-d NumPy array) becomes
        a new 0-d array with the dtype (and device) of ``like`` (NumPy: ``like``'s dtype
        if it has one, else ``value``'s)."""
        raise NotImplementedError

    def from_host(self, a: np.ndarray, like: Any, *, keep_dtype: bool = False) -> Any:
        """A NumPy array ``a`` computed on the host, on the backend of ``like``.

        NumPy returns ``a`` itself (host arithmetic keeps its dtype, typically float64).
        Torch returns a tensor on ``like``'s device with ``like``'s dtype, or with
        ``a``'s dtype for ``keep_dtype`` (e.g. one-hot rows for integer labels)."""
        raise NotImplementedError

    def cast_like(self, x: Any, like: Any) -> Any:
        """One leaf ``x`` of this backend with the dtype of ``like``: ``x`` itself when
        it already has it, else a new array (a NumPy scalar stays a scalar)."""
        raise NotImplementedError

    def stack(self, xs: Sequence[Any], axis: int) -> Any:
        """The leaves (one shape) stacked along a new axis ``axis`` into a new array."""
        raise NotImplementedError

    def to_floating(self, x: Any) -> Any:
        """``x`` (a loss, a start point) with a floating dtype, as scipy reads data: NumPy
        gives an integer or bool array as a new float64 array (a floating one as it is);
        torch returns ``x`` as given (its dtype is the user's choice)."""
        return x

    def global_norm(self, xs: Sequence[Any]) -> Any:
        """The Euclidean norm of all leaves together, as a 0-d array (no host
        synchronisation on GPUs)."""
        return self.sq_norm(xs) ** 0.5

    # -- a user's function's inputs (fnopt._base.guarded_call) ---------------------
    def read_only(self, xs: Sequence[Any]) -> list[Any]:
        """The leaves as a user's function may see them without being able to write
        into them: NumPy gives read-only views (the same memory; a write raises
        NumPy's ``ValueError``); torch has no read-only tensors and gives the leaves
        as they are (see :meth:`versions`)."""
        return list(xs)

    def versions(self, xs: Sequence[Any]) -> tuple[int, ...] | None:
        """The leaves' write counters (torch's ``_version``, bumped by every in-place
        write through any alias), to compare before and after a user's call;
        ``None`` where writes cannot happen unnoticed (NumPy: :meth:`read_only`)."""
        return None

    def copy(self, x: Any) -> Any:
        """A copy of one leaf (a new array; torch keeps the autograd graph), for a
        user's output that fnopt keeps while the user's function runs again."""
        return self.clone([x])[0]

    # -- host storage (fnopt.checkpoint) --------------------------------------------
    def storage_record(self, x: Any) -> dict[str, Any]:
        """How :mod:`fnopt.checkpoint` describes one leaf in its JSON header: ``kind``,
        ``dtype`` and ``shape`` (torch also ``device`` and ``requires_grad``). Raises
        ``TypeError`` saying why a leaf cannot be stored (an object or empty NumPy dtype;
        a sparse or quantized tensor, one on the ``meta`` device, a dtype NumPy lacks
        other than ``bfloat16``)."""
        raise NotImplementedError

    def storage_array(self, x: Any) -> np.ndarray:
        """The exact contents of one leaf as the host NumPy array to store (the same
        memory where it can; torch: detached, on the CPU, conjugate and negative bits
        resolved, contiguous; ``bfloat16``, which NumPy lacks, as its ``int16`` bits)."""
        raise NotImplementedError


# Ops that ``_Torch._fe`` writes tensor by tensor into another destination when there
# are few tensors: one pass each instead of a copy pass then the in-place foreach op.
_PER_TENSOR = frozenset({"add", "sub", "mul", "div", "addcmul", "addcdiv", "lerp",
                         "maximum"})
_PER_TENSOR_MAX = 16


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


def _same(out: Sequence[Any], xs: Sequence[Any]) -> bool:
    """Whether ``out`` holds exactly the arrays of ``xs`` (an in-place op on them)."""
    return out is xs or (len(out) == len(xs) and all(map(_is, out, xs)))


def _is(a: Any, b: Any) -> bool:
    return a is b


def _ufunc1(f: Any, xs: Sequence[Any], out: Out) -> list[Any]:
    if out is None:
        return [_arr(f(x)) for x in xs]
    for o, x in zip(out, xs):
        f(x, out=o)
    return list(out)


def _ufunc2(f: Any, xs: Sequence[Any], ys: Any, out: Out) -> list[Any]:
    if out is None:
        return [_arr(f(x, y)) for x, y in zip(xs, ys)]
    for o, x, y in zip(out, xs, ys):
        f(x, y, out=o)
    return list(out)


def _addc(f: Any, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: Any,
          out: Out) -> list[Any]:
    """``x + value * f(y, z)`` with one scratch array per leaf (``out`` itself when it
    is large and shares no memory with ``x, y, z``: the same three ufuncs, no new
    array)."""
    res = []
    for i, (x, y, z) in enumerate(zip(xs, ys, zs)):
        o = None if out is None else out[i]
        if (o is None or o.size < _DIRECT_OUT_MIN or not o.dtype == y.dtype == z.dtype
                or _shares(o, x, y, z)):
            t = _arr(f(y, z))
        else:
            t = f(y, z, out=o)
        if value != 1:  # (t * 1 is t: skip the pass)
            t *= value
        res.append(np.add(x, t, out=t if o is None else o))
    return res


def _shares(o: np.ndarray, *xs: Any) -> bool:
    """Whether ``o`` may share memory with one of ``xs`` (then a first pass written into
    ``o`` could overwrite an operand the second pass reads: a scratch array instead).
    The bounds test: exact for the same array or views of one buffer."""
    return any(np.may_share_memory(o, x) for x in xs)


# NumPy ops write into a separate ``out`` directly (no scratch array) from this many
# elements on; below it the operator forms (a small new array) cost less per call.
_DIRECT_OUT_MIN = 4096


def _np_dtype(name: str) -> Any:
    if name == "bfloat16":  # NumPy's own types only: ml_dtypes (with jax) registers one
        raise TypeError(f"dtype: NumPy has no dtype {name!r}")
    try:
        return np.dtype(name)
    except TypeError:
        raise TypeError(f"dtype: NumPy has no dtype {name!r}") from None


class _Numpy(Backend):
    name = "numpy"

    def zeros_like(self, xs: Sequence[Any], dtype: str | None = None) -> list[Any]:
        if dtype is None:
            return [np.zeros_like(x) for x in xs]
        dt = _np_dtype(dtype)
        return [np.zeros_like(x, dtype=dt) for x in xs]

    def full_like(self, xs: Sequence[Any], value: float, out: Out = None) -> list[Any]:
        if out is None:
            return [np.full_like(x, value) for x in xs]
        for o in out:
            o.fill(value)
        return list(out)

    def clone(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        if out is None:
            return [np.array(x, copy=True) for x in xs]
        for o, x in zip(out, xs):
            np.copyto(o, x)
        return list(out)

    def cast(self, xs: Sequence[Any], dtype: str) -> list[Any]:
        dt = _np_dtype(dtype)
        return [x.astype(dt) for x in xs]

    def scalar(self, value: float, like: Any) -> Any:
        return np.asarray(value, dtype=like.dtype)

    def add(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        if out is None and len(xs) == 1:  # one leaf: skip the comprehension (tiny problems)
            return [_arr(xs[0] + ys[0])]
        return _ufunc2(np.add, xs, ys, out)

    def sub(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return _ufunc2(np.subtract, xs, ys, out)

    def mul(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return _ufunc2(np.multiply, xs, ys, out)

    def div(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return _ufunc2(np.divide, xs, ys, out)

    def scale(self, xs: Sequence[Any], s: Any, out: Out = None) -> list[Any]:
        s = _weak(s)
        if out is None and len(xs) == 1:
            return [_arr(xs[0] * s)]
        return _ufunc2(np.multiply, xs, repeat(s), out)

    def add_scalar(self, xs: Sequence[Any], s: Any, out: Out = None) -> list[Any]:
        return _ufunc2(np.add, xs, repeat(_weak(s)), out)

    def axpy(self, a: Any, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        a = _weak(a)
        res = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            o = None if out is None else out[i]
            if o is None or o.size < _DIRECT_OUT_MIN or o.dtype != x.dtype or _shares(o, x, y):
                t = _arr(x * a)  # a scratch array of this op (so ``out`` may be ``ys``)
            else:  # into ``out`` at once: the same two ufuncs, no new array
                t = np.multiply(x, a, out=o)
            res.append(np.add(t, y, out=t if o is None else o))
        return res

    def lerp(self, xs: Sequence[Any], ys: Sequence[Any], w: float, out: Out = None) -> list[Any]:
        w = _weak(w)
        res = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            t = _arr(y - x)
            t *= w
            res.append(np.add(x, t, out=t if out is None else out[i]))
        return res

    def addcmul(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float,
        out: Out = None,
    ) -> list[Any]:
        return _addc(np.multiply, xs, ys, zs, _weak(value), out)

    def addcdiv(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float,
        out: Out = None,
    ) -> list[Any]:
        return _addc(np.divide, xs, ys, zs, _weak(value), out)

    def sqrt(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        return _ufunc1(np.sqrt, xs, out)

    def abs(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        return _ufunc1(np.abs, xs, out)

    def sign(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        return _ufunc1(np.sign, xs, out)

    def maximum(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return _ufunc2(np.maximum, xs, ys, out)

    def clip(self, xs: Sequence[Any], lo: float, hi: float, out: Out = None) -> list[Any]:
        if out is None:
            return [_arr(np.clip(x, lo, hi)) for x in xs]
        for o, x in zip(out, xs):
            np.clip(x, lo, hi, out=o)
        return list(out)

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
        # a finite sum has no NaN or inf to add up (one reduction, no bool array); a
        # sum that overflowed falls back to the elementwise test
        with np.errstate(over="ignore", invalid="ignore"):
            return all(bool(np.isfinite(x.sum())) or bool(np.isfinite(x).all()) for x in xs)

    def count_non_finite(self, xs: Sequence[Any]) -> int:
        return sum(int(np.size(x)) - int(np.count_nonzero(np.isfinite(x))) for x in xs)

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

    @property
    def xp(self) -> Any:
        return np

    def logsumexp(self, z: Any, axis: int) -> Any:
        top = z.max(axis=axis, keepdims=True)
        return top + np.log(np.exp(z - top).sum(axis=axis, keepdims=True))

    # -- single leaves --------------------------------------------------------------
    title = "NumPy"

    def size(self, x: Any) -> int:
        return int(np.size(x))

    def is_complex(self, x: Any) -> bool:
        return bool(np.iscomplexobj(x))

    def as_0d(self, value: Any, like: Any) -> Any:
        if type(value) is np.ndarray:
            return value
        return np.asarray(value, dtype=getattr(like, "dtype", None))

    def from_host(self, a: np.ndarray, like: Any, *, keep_dtype: bool = False) -> Any:
        del like, keep_dtype
        return a

    def cast_like(self, x: Any, like: Any) -> Any:
        return x.astype(like.dtype, copy=False)

    def stack(self, xs: Sequence[Any], axis: int) -> Any:
        return np.stack(xs, axis)

    def to_floating(self, x: Any) -> Any:
        return x if self.is_floating(x) else x.astype(np.float64)

    def global_norm(self, xs: Sequence[Any]) -> Any:
        sq = np.vdot(xs[0], xs[0]) if len(xs) == 1 else self.vdot(xs, xs)
        # ``math.sqrt`` is correctly rounded, so this is bitwise ``np.sqrt`` (also for
        # float32, rounded once more), at half the cost on tiny arrays
        return np.asarray(math.sqrt(sq), dtype=sq.dtype)

    def copy(self, x: Any) -> Any:
        return x.copy()

    def read_only(self, xs: Sequence[Any]) -> list[Any]:
        out = []
        for x in xs:
            v = x.view()
            v.setflags(write=False)  # (not ``v.flags.writeable = False``: NumPy's flags
            out.append(v)  # objects leave a few KB traced behind)
        return out

    def storage_record(self, x: Any) -> dict[str, Any]:
        kind = "numpy_scalar" if isinstance(x, np.generic) else "numpy"
        arr = np.asarray(x)
        if arr.dtype.hasobject:
            raise TypeError("cannot save an array of dtype object")
        if arr.dtype.itemsize == 0:
            raise TypeError(f"cannot save an array of the empty dtype {arr.dtype}")
        return {"kind": kind, "dtype": arr.dtype.str, "shape": list(arr.shape)}

    def storage_array(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def _span(self, x: Any) -> tuple[Any, int, int] | None:
        if type(x) is not np.ndarray or x.size == 0:  # a NumPy scalar: immutable, no memory
            return None
        lo = hi = x.__array_interface__["data"][0]
        for n, s in zip(x.shape, x.strides):
            if s < 0:
                lo += (n - 1) * s
            else:
                hi += (n - 1) * s
        return None, lo, hi + x.itemsize


class _Torch(Backend):
    name = "torch"
    has_fused = True
    has_autodiff = True

    @property
    def _t(self) -> Any:
        import torch

        return torch

    def _fe(self, op: str, out: Out, first: Sequence[Any], *rest: Any, **kw: Any) -> list[Any]:
        """``torch._foreach_<op>(first, *rest)``: out of place for ``out=None``, else the
        in-place ``_foreach_<op>_`` on ``out`` (after copying ``first`` there unless
        ``out`` is ``first``; when ``out`` shares memory with another operand, the
        out-of-place op copied into ``out``): the same kernel, so bitwise the same
        numbers.

        While autograd records ``first`` (a differentiable loop), the result is a new
        list whatever ``out`` says: an in-place op would overwrite what the backward
        pass reads. Callers use the returned list."""
        t = self._t
        if out is None or _recorded(first):
            return list(getattr(t, "_foreach_" + op)(list(first), *rest, **kw))
        out = list(out)
        if not _same(out, first):
            if len(out) <= _PER_TENSOR_MAX and op in _PER_TENSOR:
                # few tensors: one pass each into ``out`` (no copy pass first)
                fn = getattr(t, op)
                args = [r if isinstance(r, (list, tuple)) else [r] * len(out) for r in rest]
                for i, (o, x) in enumerate(zip(out, first)):
                    fn(x, *(a[i] for a in args), **kw, out=o)
                return out
            if self.overlaps(out, [x for r in rest if isinstance(r, (list, tuple)) for x in r]):
                # the copy into ``out`` would overwrite an operand still to be read:
                # the op into new tensors, then into ``out``
                t._foreach_copy_(out, getattr(t, "_foreach_" + op)(list(first), *rest, **kw))
                return out
            t._foreach_copy_(out, list(first))
        getattr(t, "_foreach_" + op + "_")(out, *rest, **kw)
        return out

    def detach(self, xs: Sequence[Any]) -> list[Any]:
        return [x.detach() for x in xs]

    def grad_mode(self, enabled: bool) -> contextlib.AbstractContextManager[Any]:
        return self._t.enable_grad() if enabled else self._t.no_grad()


    def zeros_like(self, xs: Sequence[Any], dtype: str | None = None) -> list[Any]:
        t = self._t
        if dtype is None:
            return [t.zeros_like(x) for x in xs]
        dt = getattr(t, dtype)
        return [t.zeros_like(x, dtype=dt) for x in xs]

    def full_like(self, xs: Sequence[Any], value: float, out: Out = None) -> list[Any]:
        t = self._t
        if out is None:
            return [t.full_like(x, value) for x in xs]
        for o in out:
            o.fill_(value)
        return list(out)

    def clone(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        if out is None:
            return [x.clone() for x in xs]
        out = list(out)
        self._t._foreach_copy_(out, list(xs))
        return out

    def cast(self, xs: Sequence[Any], dtype: str) -> list[Any]:
        dt = getattr(self._t, dtype)
        return [x.to(dt) for x in xs]

    def scalar(self, value: float, like: Any) -> Any:
        # a fill kernel, not a host-to-device copy (which would wait for the stream)
        return self._t.full((), value, dtype=like.dtype, device=like.device)

    def add(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        if out is not None and not _same(out, xs) and len(xs) <= 16 and not _recorded(xs):
            return self._per_leaf_add(out, xs, ys)
        return self._fe("add", out, xs, list(ys))

    def _per_leaf_add(self, out: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any],
                      **kw: Any) -> list[Any]:
        """``x + y`` written into a separate ``out``, one pass per leaf (few leaves: a
        kernel launch each beats a foreach copy first); the kernel ``_foreach_add``
        runs on each CPU leaf."""
        add = self._t.add
        for o, x, y in zip(out, xs, ys):
            add(x, y, out=o, **kw)
        return list(out)

    def sub(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return self._fe("sub", out, xs, list(ys))

    def mul(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return self._fe("mul", out, xs, list(ys))

    def div(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return self._fe("div", out, xs, list(ys))

    def scale(self, xs: Sequence[Any], s: Any, out: Out = None) -> list[Any]:
        if _needs_grad(s):  # _foreach_mul has no backward for it
            return [x * s for x in xs]
        return self._fe("mul", out, xs, s)

    def add_scalar(self, xs: Sequence[Any], s: Any, out: Out = None) -> list[Any]:
        return self._fe("add", out, xs, s)

    def axpy(self, a: Any, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        if isinstance(a, (int, float)):
            if out is not None and not _same(out, ys) and len(ys) <= 16 and not _recorded(ys):
                return self._per_leaf_add(out, ys, xs, alpha=a)
            return self._fe("add", out, ys, list(xs), alpha=a)
        if _needs_grad(a):  # as in scale: differentiate through it
            return [a * x + y for x, y in zip(xs, ys)]
        return self._fe("add", out, ys, self._t._foreach_mul(list(xs), a))

    def lerp(self, xs: Sequence[Any], ys: Sequence[Any], w: float, out: Out = None) -> list[Any]:
        return self._fe("lerp", out, xs, list(ys), w)

    def addcmul(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float,
        out: Out = None,
    ) -> list[Any]:
        return self._fe("addcmul", out, xs, list(ys), list(zs), value=value)

    def addcdiv(
        self, xs: Sequence[Any], ys: Sequence[Any], zs: Sequence[Any], value: float,
        out: Out = None,
    ) -> list[Any]:
        return self._fe("addcdiv", out, xs, list(ys), list(zs), value=value)

    def sqrt(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        return self._fe("sqrt", out, xs)

    def abs(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        return self._fe("abs", out, xs)

    def sign(self, xs: Sequence[Any], out: Out = None) -> list[Any]:
        return self._fe("sign", out, xs)

    def maximum(self, xs: Sequence[Any], ys: Sequence[Any], out: Out = None) -> list[Any]:
        return self._fe("maximum", out, xs, list(ys))

    def clip(self, xs: Sequence[Any], lo: float, hi: float, out: Out = None) -> list[Any]:
        low = self._fe("clamp_min", out, xs, lo)
        return self._fe("clamp_max", low if out is None else out, low, hi)

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
        t = self._t  # as NumPy's: the sum first, the elementwise test if it overflowed
        if len(xs) > 1 and len(set(map(_device, xs))) == 1:  # the sums: one read
            if bool(t.stack([t.isfinite(x.sum()) for x in xs]).all()):
                return True
            return all(bool(t.isfinite(x).all()) for x in xs)
        return all(bool(t.isfinite(x.sum())) or bool(t.isfinite(x).all()) for x in xs)

    def count_non_finite(self, xs: Sequence[Any]) -> int:
        t = self._t
        return sum(int(x.numel()) - int(t.isfinite(x).sum()) for x in xs)

    def on_host(self, x: Any) -> bool:
        return not is_tensor(x) or x.device.type == "cpu"

    def first_non_finite(self, values: Sequence[Any]) -> tuple[int, float]:
        t = self._t
        if not all(map(is_tensor, values)) or len(set(map(_device, values))) != 1:
            return super().first_non_finite([float(v.item()) if is_tensor(v) else v
                                             for v in values])
        s = t.stack([v.detach().reshape(()).to(t.float64) for v in values])
        bad = ~t.isfinite(s)
        # the first bad index, else the last: argmax of (bad, then the last index)
        i = t.cat([bad, t.ones(1, dtype=t.bool, device=s.device)]).to(t.uint8).argmax()
        i = t.minimum(i, t.tensor(len(values) - 1, device=s.device))
        # the one device-to-host read (the index only after a failure; ``s[i]`` with a
        # tensor index would read the index first)
        v = s.index_select(0, i.reshape(1)).item()
        return (len(values) - 1 if math.isfinite(v) else int(i.item())), v

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

    def can_fuse(self, *roles: Sequence[Any]) -> bool:
        # (each property read for a whole list at once, by ``map``: a few tens of
        # nanoseconds a tensor, where a Python loop costs microseconds). Two parts: what
        # the roles other than the grads decide (``_fuse_fixed``), then the grads
        # against it. Where every tensor of the first part is owned by the running loop
        # (``OWNED``: its buffers' layouts never change), that part is evaluated the
        # first time these very tensors come and kept; the grads are checked each call.
        if not roles:
            return False
        fixed = [roles[0], *roles[2:]]
        owned, verdict = OWNED.get(), None
        if owned is not None:
            verdict = owned.lookup("can_fuse", fixed)
            if verdict is None and owned.holds(fixed):
                verdict = owned.remember("can_fuse", fixed, self._fuse_fixed(fixed))
        if verdict is None:
            verdict = self._fuse_fixed(fixed)
        if verdict is False:
            return False
        if len(roles) < 2:
            return True
        head, spans = verdict
        g = roles[1]
        if len(g) != len(fixed[0]) or not self._fuse_plain(g, head[0]) or not _fuse_alike(
            self._t, head, g
        ):
            return False
        los = list(map(self._t.Tensor.data_ptr, g))
        return _disjoint(sorted(spans + _fuse_spans(los, head[5])))

    def _fuse_fixed(self, fixed: list[Sequence[Any]]) -> Any:
        """The part of :meth:`can_fuse`'s verdict that the roles other than the grads
        decide: ``False``, or ``(head, spans)`` for the grads to be checked against
        (``head``: :meth:`_fuse_head`; ``spans``: the sorted memory spans of all)."""
        head = self._fuse_head(fixed[0]) if fixed[0] else None
        if head is None or any(len(r) != len(fixed[0]) for r in fixed):
            return False
        xs = [x for r in fixed for x in r]
        if not self._fuse_plain(xs, head[0]) or not all(
            _fuse_alike(self._t, head, r) for r in fixed[1:]
        ):
            return False
        spans = sorted(_fuse_spans(list(map(self._t.Tensor.data_ptr, xs)), head[5] * len(fixed)))
        return (head, spans) if _disjoint(spans) else False

    def _fuse_head(self, head: Sequence[Any]) -> tuple[Any, ...] | None:
        """What every role of :meth:`can_fuse` must match, read from the first:
        ``(device, shapes, dtypes, contiguous flags, {index: dense order} of the
        non-contiguous ones, byte sizes)``; ``None`` when the first role itself cannot
        be fused (a device, dtype or layout the kernels do not take)."""
        t = self._t
        dev = head[0].device
        if dev.type not in ("cpu", "cuda"):
            return None
        dtypes = list(map(_dtype, head))
        if not set(dtypes) <= _fused_dtypes(t):
            return None
        contiguous = list(map(t.Tensor.is_contiguous, head))
        orders = {i: _dense_order(head[i]) for i, c in enumerate(contiguous) if not c}
        if None in orders.values():
            return None
        sizes = list(map(mul, map(t.Tensor.numel, head), map(t.Tensor.element_size, head)))
        return dev, list(map(_shape, head)), dtypes, contiguous, orders, sizes

    def _fuse_plain(self, xs: Sequence[Any], dev: Any) -> bool:
        """Plain strided tensors on ``dev`` that no autograd graph records (no subclass,
        no lazy negation)."""
        t = self._t
        return (set(map(type, xs)) <= {t.Tensor, t.nn.Parameter}
                and set(map(_device, xs)) == {dev} and not any(map(_requires_grad, xs))
                and set(map(_layout, xs)) == {t.strided} and not any(map(t.Tensor.is_neg, xs)))

    def _spans(self, xs: Sequence[Any]) -> list[tuple[Any, int, int] | None]:
        t = self._t
        if not all(map(t.Tensor.is_contiguous, xs)):
            return list(map(self._span, xs))
        los = list(map(t.Tensor.data_ptr, xs))  # contiguous: [lo, lo + numel * itemsize)
        sizes = map(mul, map(t.Tensor.numel, xs), map(t.Tensor.element_size, xs))
        return list(zip(map(_device, xs), los, map(add, los, sizes)))

    def _span(self, x: Any) -> tuple[Any, int, int] | None:
        n = x.numel()
        if n == 0:
            return None
        lo = x.data_ptr()
        if x.is_contiguous():
            return x.device, lo, lo + n * x.element_size()
        reach = sum((k - 1) * s for k, s in zip(x.shape, x.stride()))  # strides >= 0
        return x.device, lo, lo + (reach + 1) * x.element_size()

    def _steps(self, count: int, params: Sequence[Any]) -> list[Any]:
        """The step number as the per-param tensors the fused kernels read (one shared
        float32 tensor: the kernels only read it; a fill, no host-to-device copy)."""
        t = self._t
        return [t.full((), float(count), dtype=t.float32, device=params[0].device)] * len(params)

    def fused_adam_(
        self, params: Sequence[Any], grads: Sequence[Any], mus: Sequence[Any],
        nus: Sequence[Any], nu_maxs: Sequence[Any] | None, *, count: int, lr: float,
        b1: float, b2: float, eps: float, weight_decay: float, decoupled: bool,
        maximize: bool,
    ) -> None:
        t = self._t
        kernel = t._fused_adamw_ if decoupled else t._fused_adam_
        kernel(
            list(params), list(grads), list(mus), list(nus),
            [] if nu_maxs is None else list(nu_maxs), self._steps(count, params),
            lr=lr, beta1=b1, beta2=b2, weight_decay=weight_decay, eps=eps,
            amsgrad=nu_maxs is not None, maximize=maximize,
        )

    def fused_sgd_(
        self, params: Sequence[Any], grads: Sequence[Any], bufs: Sequence[Any], *,
        lr: float, momentum: float, dampening: float, nesterov: bool,
        weight_decay: float, maximize: bool, first: bool,
    ) -> None:
        self._t._fused_sgd_(
            list(params), list(grads), list(bufs), weight_decay=weight_decay,
            momentum=momentum, lr=lr, dampening=dampening, nesterov=nesterov,
            maximize=maximize, is_first_step=first,
        )

    def fused_adagrad_(
        self, params: Sequence[Any], grads: Sequence[Any], sums: Sequence[Any], *,
        lr: float, eps: float, weight_decay: float, maximize: bool,
    ) -> None:
        self._t._fused_adagrad_(
            list(params), list(grads), list(sums), self._steps(1, params), lr=lr,
            lr_decay=0.0, weight_decay=weight_decay, eps=eps, maximize=maximize,
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

    def vmap(self, fn: Any) -> Any:
        import torch.func

        return torch.func.vmap(fn)

    @property
    def xp(self) -> Any:
        return self._t

    def logsumexp(self, z: Any, axis: int) -> Any:
        return self._t.logsumexp(z, axis, keepdim=True)

    # -- single leaves --------------------------------------------------------------
    title = "torch"
    noun = "tensor"

    def size(self, x: Any) -> int:
        return int(x.numel())

    def is_meta(self, x: Any) -> bool:
        return bool(x.is_meta)

    def layout_problem(self, x: Any) -> str | None:
        if x.layout is self._t.strided:
            return None
        return (f"is a {str(x.layout).replace('torch.', '')} tensor; fnopt optimizes dense "
                "tensors (torch.optim.SparseAdam's sparse updates are not supported): "
                "pass x.to_dense()")

    def is_complex(self, x: Any) -> bool:
        return bool(x.is_complex())

    def as_0d(self, value: Any, like: Any) -> Any:
        return value if is_tensor(value) else self.scalar(float(value), like)

    def from_host(self, a: np.ndarray, like: Any, *, keep_dtype: bool = False) -> Any:
        if keep_dtype:
            return self._t.from_numpy(a).to(like.device)
        return self.from_numpy(a, like)

    def cast_like(self, x: Any, like: Any) -> Any:
        return x.to(like.dtype)

    def stack(self, xs: Sequence[Any], axis: int) -> Any:
        return self._t.stack(list(xs), axis)

    def versions(self, xs: Sequence[Any]) -> tuple[int, ...] | None:
        return tuple([x._version for x in xs])

    def copy(self, x: Any) -> Any:
        return x.clone()

    def storage_record(self, x: Any) -> dict[str, Any]:
        t = self._t
        if x.layout != t.strided or x.is_quantized:
            kind = "quantized" if x.is_quantized else x.layout
            raise TypeError(f"cannot save a tensor with layout {kind}")
        if x.device.type == "meta":
            raise TypeError("cannot save a tensor on the 'meta' device (it holds no data)")
        _stored_numpy_dtype(x.dtype)
        return {
            "kind": "torch",
            "dtype": dtype_name(x.dtype),
            "device": str(x.device),
            "requires_grad": bool(x.requires_grad),
            "shape": list(x.shape),
        }

    def storage_array(self, x: Any) -> np.ndarray:
        t = self._t
        host = x.detach().cpu().resolve_conj().resolve_neg().contiguous()
        if host.dtype == t.bfloat16:
            host = host.view(t.int16)
        return host.numpy()


def _recorded(xs: Sequence[Any]) -> bool:
    """Whether autograd records any of the tensors ``xs`` (then nothing is written in
    place: the backward pass may read them)."""
    return sys.modules["torch"].is_grad_enabled() and any(map(_requires_grad, xs))


def _meet(xs: Sequence[Any], ys: Sequence[Any]) -> bool:
    """Whether a span ``(space, first, end)`` of ``xs`` meets one of ``ys`` (``None``
    or an empty span: no memory). Sorted by their first byte, a span meets an earlier
    one of the other list exactly when it starts before the furthest end among those."""
    by_space: dict[Any, list[tuple[int, int, int]]] = {}
    for tag, spans in enumerate((xs, ys)):
        for s in spans:
            if s is not None and s[2] > s[1]:
                by_space.setdefault(s[0], []).append((s[1], s[2], tag))
    for spans in by_space.values():
        spans.sort()
        ends = [-1, -1]  # per list, the furthest end of its spans seen so far
        for lo, hi, tag in spans:
            if lo < ends[1 - tag]:
                return True
            ends[tag] = max(ends[tag], hi)
    return False


def _dense_order(x: Any) -> tuple[int, ...] | None:
    """The strides of the dimensions longer than 1 of a non-overlapping-and-dense
    tensor (the kernels walk it as one flat run of memory in that order), or ``None``
    when it has gaps (a slice) or a repeated element (a stride-0, expanded dimension)."""
    dims = [(s, n) for s, n in zip(x.stride(), x.shape) if n != 1]
    expected = 1  # dense: the strides, sorted, are the running products of the sizes
    for s, n in sorted(dims):
        if s != expected:
            return None
        expected *= n
    return tuple(s for s, _ in dims)


def _fuse_alike(t: Any, head: tuple[Any, ...], role: Sequence[Any]) -> bool:
    """Whether ``role``'s tensors have the shapes, dtypes and dense layouts of
    :meth:`TorchBackend._fuse_head`'s ``head``, index by index."""
    _, shapes, dtypes, contiguous, orders, _ = head
    if (list(map(_shape, role)) != shapes or list(map(_dtype, role)) != dtypes
            or list(map(t.Tensor.is_contiguous, role)) != contiguous):
        return False
    return all(_dense_order(role[i]) == order for i, order in orders.items())


def _fuse_spans(los: list[int], sizes: list[int]) -> list[tuple[int, int]]:
    """The memory ``[first byte, end)`` of dense tensors starting at ``los`` with byte
    ``sizes``; empty tensors hold none (left out)."""
    spans = list(zip(los, map(add, los, sizes)))
    return [s for s in spans if s[1] > s[0]] if 0 in sizes else spans


def _disjoint(spans: list[tuple[int, int]]) -> bool:
    """Whether sorted spans are disjoint: none starts before the one before it ends."""
    return not any(map(lt, map(_first, spans[1:]), map(_second, spans[:-1])))


class OwnedBuffers:
    """The tensors a loop owns (:func:`fnopt.fixed_point`'s params buffers and optimizer
    state: no one else holds them, their layouts never change), and the verdicts about
    them that depend only on their layouts and memory, kept per question and set of
    tensor objects (at most ``limit`` each: the two params buffers in turn). While it
    is :data:`OWNED`'s value, :meth:`Backend.can_fuse` asked with the same tensor
    objects checks only the grads, and :meth:`Backend.overlaps` of two owned lists is
    answered from memory."""

    __slots__ = ("entries", "ids", "limit")

    def __init__(self, tensors: Sequence[Any], limit: int = 4) -> None:
        self.ids = {id(x): x for x in tensors}  # the values keep every id taken
        self.entries: dict[str, list[tuple[list[list[Any]], Any]]] = {}
        self.limit = limit

    def holds(self, roles: Sequence[Sequence[Any]]) -> bool:
        """Whether every tensor of ``roles`` is owned."""
        ids = self.ids
        return all(id(x) in ids for r in roles for x in r)

    def lookup(self, question: str, roles: Sequence[Sequence[Any]]) -> Any:
        """The verdict kept for ``question`` on exactly these tensor objects, or
        ``None``."""
        for keys, verdict in self.entries.get(question, ()):
            if len(keys) == len(roles) and all(
                len(k) == len(r) and all(map(is_, k, r)) for k, r in zip(keys, roles)
            ):
                return verdict
        return None

    def remember(self, question: str, roles: Sequence[Sequence[Any]], verdict: Any) -> Any:
        """Keep ``verdict`` for ``question`` on these tensors (while there is room);
        return it."""
        kept = self.entries.setdefault(question, [])
        if len(kept) < self.limit:
            kept.append(([list(r) for r in roles], verdict))
        return verdict


#: The buffers the running loop owns (:class:`OwnedBuffers`), or ``None``: set by
#: :func:`fnopt.fixed_point` around each update on its own buffers.
OWNED: contextvars.ContextVar[OwnedBuffers | None] = contextvars.ContextVar(
    "fnopt_owned_buffers", default=None
)


@functools.cache
def _fused_dtypes(torch: Any) -> frozenset[Any]:
    """The dtypes for which torch's fused optimizer kernels compute what the generic path
    computes: float32 and float64. (For bfloat16/float16, torch 2.13's CPU
    ``_fused_sgd_`` leaves params of 64 elements unchanged, and its fused Adam/Adagrad
    compute in float32 where the generic path, like torch.optim's default, computes in
    the params' dtype.)"""
    return frozenset({torch.float32, torch.float64})

_requires_grad = attrgetter("requires_grad")
_device, _layout, _dtype, _shape = map(attrgetter, ("device", "layout", "dtype", "shape"))
_first, _second = itemgetter(0), itemgetter(1)


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


def of_leaf(x: Any) -> Backend | None:
    """The backend of one leaf (a NumPy array or scalar, or a torch tensor), or ``None``
    for anything else (a Python number, ``None``, ...)."""
    return of_value(x) if is_leaf(x) else None

# -- one value: its backend, its kind, its dtype's name ----------------------------------


def of_value(x: Any) -> Backend:
    """The backend of one value: :data:`TORCH` for a tensor, :data:`NUMPY` for anything
    else (a NumPy array or scalar, a Python number or sequence). Unlike
    :func:`of_leaves` it never raises; validate with :func:`of_leaves` where a wrong
    type is an error.

    >>> of_value(np.zeros(2)).name, of_value(1.5).name
    ('numpy', 'numpy')
    """
    return TORCH if is_tensor(x) else NUMPY


def is_leaf(x: Any) -> bool:
    """Whether ``x`` is a NumPy array or scalar or a torch tensor (a leaf that
    :func:`of_leaves` accepts, as opposed to a Python number or ``None``)."""
    return isinstance(x, _NP_LEAF) or is_tensor(x)


def same_type(a: Any, b: Any) -> bool:
    """Whether two leaves have one type; any two torch tensors count as one (a
    ``Parameter`` and a plain ``Tensor``)."""
    return type(a) is type(b) or (is_tensor(a) and is_tensor(b))


def dtype_name(dtype: Any) -> str:
    """The name of a NumPy dtype, a torch dtype or a dtype name: ``"float32"`` for
    ``np.dtype("float32")``, ``torch.float32`` and ``"float32"`` alike.

    >>> dtype_name(np.dtype("float64")), dtype_name("float32"), dtype_name(np.float32)
    ('float64', 'float32', 'float32')
    """
    text = str(dtype)
    if text.startswith("torch."):
        return text[len("torch."):]
    if dtype is None:
        return text
    try:  # a NumPy dtype, scalar type (np.float32), Python float or name
        return np.dtype(dtype).name
    except TypeError:
        return text  # not a dtype: the caller says what it expected


def by_name(name: Any, *, what: str = "backend") -> Backend:
    """The backend called ``name`` (``"numpy"`` or ``"torch"``); a ``ValueError``
    naming ``what`` for anything else.

    >>> by_name("numpy") is NUMPY
    True
    """
    for be in (NUMPY, TORCH):
        if name == be.name:
            return be
    raise ValueError(f"{what}: expected 'numpy' or 'torch', got {name!r}")


@functools.cache
def _stored_numpy_dtype(dtype: Any) -> np.dtype[Any]:
    """The NumPy dtype a tensor of torch ``dtype`` is stored as (``TypeError`` if none;
    ``bfloat16`` as ``int16``)."""
    import torch

    if dtype == torch.bfloat16:
        return np.dtype(np.int16)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" / "deprecated" dtypes
            return torch.empty(0, dtype=dtype).numpy().dtype
    except (TypeError, RuntimeError):
        raise TypeError(f"cannot save a tensor of dtype {dtype}: NumPy has no such dtype") \
            from None
