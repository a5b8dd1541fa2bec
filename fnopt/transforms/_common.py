"""Helpers shared by the built-in transforms: leaves and backend of a pytree, the
``inplace`` destination, argument checks, and the stateless-transform factory."""


from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import (
    Descent,
    Params,
    State,
    Transform,
    Updates,
)

# -- helpers ---------------------------------------------------------------------------


def _flat(t: Any) -> tuple[list[Any], Any, _backend.Backend]:
    """Leaves, treespec and backend of a pytree."""
    leaves, spec = optree.tree_flatten(t)
    return leaves, spec, _backend.of_leaves(leaves)


def _dst(buffers: list[Any], inplace: bool) -> list[Any] | None:
    """The destination of a state buffer's first write: the buffer itself when the
    caller gave the state up (``inplace``), else ``None`` (a new array)."""
    return buffers if inplace else None


def _builtin(
    init: Any, update: Any, name: str, update_params: Any = None, **hyperparams: Any
) -> Transform:
    """A built-in transform: its ``update`` takes ``inplace`` (see :class:`Transform`),
    and it declares its factory's name and arguments."""
    return Transform(
        init, update, inplace=True, name=name, hyperparams=hyperparams,
        update_params=update_params,
    )


# -- directions: an update whose last division is left undone -----------------------------


class Direction(NamedTuple):
    """Updates as a short sum of quotients, :math:`u = \\sum_i c_i\\,(n_i / d_i)`
    (a term whose ``den`` is ``None`` is :math:`c_i\\,n_i`), leaf lists in ``spec``'s
    order. A scaling's ``direction`` returns one (see :class:`fnopt.Transform`); its
    ``update`` is :func:`evaluate` of it, and :func:`fnopt.scale_by_learning_rate`
    adds :math:`-\\eta u` to params term by term (``addcdiv``), so the division, the
    scale and the add are one pass over memory.

    Attributes:
      terms: ``((c, num, den), ...)``: ``c`` a Python number, ``num`` and ``den``
        leaf lists (``den`` may be ``None``). They may be the state's buffers: read
        them before the state moves on.
      spec: the treespec of the updates.
      be: the backend of the leaves.

    RMSprop's update :math:`g / (\\sqrt{v} + \\epsilon)`, its division left undone:

    >>> import numpy as np, fnopt
    >>> t = fnopt.scale_by_rms(decay=0.75, eps=0.0)
    >>> d, _ = t.direction(np.array([3.0]), t.init(np.zeros(1)), None, inplace=False)
    >>> d.terms
    ((1.0, [array([3.])], [array([1.5])]),)
    >>> evaluate(d)
    [array([2.])]
    """

    terms: tuple[tuple[Any, list[Any], list[Any] | None], ...]
    spec: Any
    be: _backend.Backend


def evaluate(d: Direction) -> list[Any]:
    """The leaves of :math:`\\sum_i c_i\\,(n_i / d_i)`: new arrays, except that a
    direction of the one term ``(1.0, num, None)`` is ``num`` itself (e.g. a state
    buffer, as ``trace``); with more terms the sum is built in a new array (``num`` may
    be the params, as ``add_decayed_weights``' term)."""
    be, out = d.be, None
    for c, num, den in d.terms:
        if out is None:
            if den is None:
                out = num if c == 1.0 and len(d.terms) == 1 else be.scale(num, c)
            else:
                out = be.div(num, den)
                if c != 1.0:
                    out = be.scale(out, c, out)
        elif den is None:
            out = be.axpy(c, num, out, out)
        else:
            out = be.addcdiv(out, num, den, c, out)
    assert out is not None, "a Direction has at least one term"
    return out


def add_direction(d: Direction, k: Any, params: list[Any], out: list[Any] | None) -> list[Any]:
    """``params`` :math:`+ \\sum_i (k c_i)\\,(n_i / d_i)`, one ``addcdiv`` (or ``axpy``)
    pass per term, into ``out`` (``None``: new arrays; it may be ``params``: where a
    later term reads memory ``out`` shares, :func:`evaluate` of ``d`` is added). Where
    ``k`` or a ``c_i`` is not a Python number (a tensor learning rate, perhaps one that
    autograd records), :func:`evaluate` of ``d`` is scaled by ``k`` instead."""
    be = d.be
    if isinstance(k, numbers.Real) and not isinstance(k, bool):
        k = float(k)  # a NumPy scalar learning rate: a Python number, as the ops take it
    if not (isinstance(k, float) and all(isinstance(t[0], (int, float)) for t in d.terms)):
        return be.axpy(k, evaluate(d), params, out)
    if out is not None and len(d.terms) > 1 and be.overlaps(
        [x for _, num, den in d.terms[1:] for x in (*num, *(den or ()))], out
    ):  # a later term reads memory the first one writes (a grad that is the params)
        return be.axpy(k, evaluate(d), params, out)
    res = params
    for i, (c, num, den) in enumerate(d.terms):
        dst = out if i == 0 else res  # later terms: into the new params
        if den is None:
            res = be.axpy(k * c, num, res, dst)
        else:
            res = be.addcdiv(res, num, den, k * c, dst)
    return res


def _scaling(init: Any, direction: Any, name: str, **hyperparams: Any) -> Transform:
    """A built-in scaling declared by its ``direction`` (see :class:`Direction`); its
    ``update`` evaluates the direction, so both forms run the same arithmetic."""

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        d, new_state = direction(updates, state, params, inplace=inplace)
        return d.spec.unflatten(evaluate(d)), new_state

    return Transform(
        init, update, inplace=True, name=name, hyperparams=hyperparams, direction=direction
    )


def _lifts(combinator: Callable[..., Transform]) -> Callable[..., Transform]:
    """Let ``combinator`` take first-order optimizers (:class:`fnopt.Descent`, e.g.
    ``fnopt.adam(1e-3)``) wherever it takes transforms: it composes their lifted
    transforms, and when any argument was one, the result is lifted the same way, so
    ``chain(clip_by_global_norm(1.0), adam(1e-3))`` is an optimizer too."""

    def unwrap(x: Any, found: list[bool]) -> Any:
        if isinstance(x, Descent):
            found.append(True)
            return x.inner
        if isinstance(x, Mapping) and any(isinstance(v, Descent) for v in x.values()):
            return {k: unwrap(v, found) for k, v in x.items()}
        return x

    @functools.wraps(combinator)
    def wrapper(*args: Any, **kwargs: Any) -> Transform:
        found: list[bool] = []
        args = tuple(unwrap(a, found) for a in args)
        kwargs = {k: unwrap(v, found) for k, v in kwargs.items()}
        out = combinator(*args, **kwargs)
        return Descent(out) if found else out

    return wrapper


def _check_transform(t: Any, name: str) -> None:
    if not isinstance(t, Transform):
        raise TypeError(f"{name}: expected a Transform, got {type(t).__name__}")


def _check_real(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")


_MU_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _dtype_name(name: str, dtype: Any) -> str | None:
    """A floating dtype given as a name, a NumPy dtype (or scalar type) or a torch
    dtype, as its name (``"float32"``); ``None`` stays ``None``. ``"float"`` and
    Python's ``float`` are refused: float64 to NumPy, float32 to torch."""
    if dtype is None:
        return None
    ambiguous = isinstance(dtype, type) and not issubclass(dtype, np.generic)
    text = dtype if isinstance(dtype, str) or ambiguous else _backend.dtype_name(dtype)
    if text not in _MU_DTYPES:
        raise ValueError(f"{name}: expected None or one of {_MU_DTYPES}, got {dtype!r}")
    return text


def _as_dtype(be: _backend.Backend, xs: list[Any], like: list[Any]) -> list[Any]:
    """``xs`` leaf by leaf in the dtype of ``like`` (leaves that agree are kept)."""
    return [
        x if x.dtype == y.dtype else be.cast([x], _dtype_name("dtype", y.dtype) or "")[0]
        for x, y in zip(xs, like)
    ]


class EmptyState(NamedTuple):
    """State of a stateless transform."""


def _stateless(
    fn: Callable[[Updates, Params | None], Updates], name: str, **hyperparams: Any
) -> Transform:
    """A transform without state; ``fn`` returns new arrays, so in place or not is the
    same."""

    def init(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del inplace  # nothing to overwrite: the state has no buffers
        return fn(updates, params), state

    return _builtin(init, update, name, **hyperparams)


def _stateless_on_params(
    fn: Callable[[list[Any], list[Any], _backend.Backend], list[Any]], name: str,
    **hyperparams: Any,
) -> Transform:
    """A stateless transform whose update needs the params: ``fn(updates, params, be)``
    maps the leaves of the updates and of the params (same order) to new leaves."""

    def apply(updates: Updates, params: Params | None) -> Updates:
        if params is None:
            raise ValueError(f"{name}: update needs params")
        u, spec, be = _flat(updates)
        return spec.unflatten(fn(u, spec.flatten_up_to(params), be))

    return _stateless(apply, name, **hyperparams)
