"""Pytree arithmetic for NumPy and PyTorch leaves.

A pytree is a single array or a nested ``dict`` / ``list`` / ``tuple`` /
``NamedTuple`` / ``None`` structure of arrays (handled by `optree`_). These helpers
are what fnopt's own optimizers are written with, and what a user writing a custom
transform should use: each one flattens its arguments, routes the leaves to the
backend chosen from them (:mod:`fnopt.backend`) and rebuilds the structure.

Every function is pure by default: it returns new arrays and never mutates its
inputs. The arithmetic ones take a destination ``out``: a pytree of buffers the caller
owns (with the structure of the result; it may be the first operand, or ``y`` for
:func:`axpy`), which receives the result instead, bitwise the same numbers (see
:mod:`fnopt.backend`).

>>> import numpy as np
>>> from fnopt import tree
>>> p = {"w": np.array([1.0, 2.0]), "b": np.array(3.0)}
>>> tree.axpy(-0.5, p, p)["w"]
array([0.5, 1. ])
>>> float(tree.global_norm({"a": np.array([3.0]), "b": np.array([4.0])}))
5.0

.. _optree: https://github.com/metaopt/optree
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from fnopt import backend as _backend

__all__ = [
    "map",
    "leaves",
    "structure",
    "paths",
    "add",
    "sub",
    "mul",
    "div",
    "scale",
    "axpy",
    "vdot",
    "sq_norm",
    "global_norm",
    "zeros_like",
    "full_like",
    "ones_like",
    "clone",
    "all_finite",
    "astype_like",
    "map_params",
]

PyTree = Any


def map(f: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:  # noqa: A001
    """Apply ``f`` leaf by leaf to ``tree`` and the trees in ``rest`` (same structure).

    ``None`` subtrees are kept as they are.

    >>> import numpy as np
    >>> map(lambda x, y: x * y, [np.ones(2)], [np.full(2, 3.0)])
    [array([3., 3.])]
    """
    return optree.tree_map(f, tree, *rest)


def leaves(tree: PyTree) -> list[Any]:
    """The leaves of ``tree`` in a fixed (key-sorted for dicts) order.

    >>> import numpy as np
    >>> len(leaves({"b": np.ones(1), "a": (np.ones(2), None)}))
    2
    """
    return optree.tree_leaves(tree)


def structure(tree: PyTree) -> Any:
    """The tree structure (an ``optree.PyTreeSpec``) of ``tree``."""
    return optree.tree_structure(tree)


def paths(tree: PyTree) -> list[str]:
    """Human-readable paths of the leaves, like ``"['w'][0]"``, in leaf order.

    >>> import numpy as np
    >>> paths({"w": [np.ones(1)], "b": np.ones(1)})
    ["['b']", "['w'][0]"]
    """
    return [_format_path(p) for p in optree.tree_paths(tree)]


def _format_path(path: tuple[Any, ...]) -> str:
    if not path:
        return "<root>"
    return "".join(f"[{k!r}]" for k in path)


class _BareSpec:
    """The structure of a bare NumPy array (a one-leaf tree), without optree.

    Tiny problems are dominated by per-call overhead; a bare array is the common case
    there, and skipping the pytree walk roughly halves the cost of each tree op.
    """

    __slots__ = ()

    @staticmethod
    def unflatten(leaves: list[Any]) -> Any:
        return leaves[0]

    @staticmethod
    def flatten_up_to(other: PyTree) -> list[Any]:
        return [other]


_BARE = _BareSpec()
_NDARRAY = np.ndarray


def _flatten(tree: PyTree) -> tuple[list[Any], Any]:
    """``optree.tree_flatten`` with a shortcut for a bare NumPy array."""
    if type(tree) is _NDARRAY:
        return [tree], _BARE
    return optree.tree_flatten(tree)


def _is(a: Any, b: Any) -> bool:
    return a is b


def _leaves(tree: PyTree) -> list[Any]:
    """``optree.tree_leaves`` with a shortcut for a bare NumPy array."""
    if type(tree) is _NDARRAY:
        return [tree]
    return optree.tree_leaves(tree)


def _flat2(a: PyTree, b: PyTree) -> tuple[list[Any], list[Any], Any]:
    if type(a) is _NDARRAY and type(b) is _NDARRAY:
        return [a], [b], _BARE
    la, spec = optree.tree_flatten(a)
    lb = spec.flatten_up_to(b)
    return la, lb, spec


def _as_arrays(tree: PyTree) -> PyTree:
    """``tree`` with its NumPy-scalar leaves (a user's gradient of a 0-d leaf, e.g.
    ``x.mean()``) as 0-d arrays; ``tree`` itself when it has none."""
    lx, spec = _flatten(tree)
    if not any(isinstance(x, np.generic) for x in lx):
        return tree
    return spec.unflatten([np.asarray(x) if isinstance(x, np.generic) else x for x in lx])


def _unary(op: str, tree: PyTree, out: PyTree | None, *args: Any) -> PyTree:
    """The backend op ``op(leaves, *args, out)`` over one tree: new leaves, or written
    into ``out``."""
    lx, spec = _flatten(tree)
    be = _backend.of_leaves(lx)
    if out is None:
        return spec.unflatten(getattr(be, op)(lx, *args))
    getattr(be, op)(lx, *args, spec.flatten_up_to(out))
    return out


def _binary(op: str, a: PyTree, b: PyTree, out: PyTree | None) -> PyTree:
    la, lb, spec = _flat2(a, b)
    be = _backend.of_leaves(la)
    if out is None:
        return spec.unflatten(getattr(be, op)(la, lb))
    getattr(be, op)(la, lb, spec.flatten_up_to(out))
    return out


def add(a: PyTree, b: PyTree, *, out: PyTree | None = None) -> PyTree:
    """Leafwise ``a + b`` (into ``out`` when given; ``out`` may be ``a``).

    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> y = add(x, x, out=x)
    >>> y is x, x
    (True, array([2., 4.]))
    """
    return _binary("add", a, b, out)


def sub(a: PyTree, b: PyTree, *, out: PyTree | None = None) -> PyTree:
    """Leafwise ``a - b`` (into ``out`` when given)."""
    return _binary("sub", a, b, out)


def mul(a: PyTree, b: PyTree, *, out: PyTree | None = None) -> PyTree:
    """Leafwise ``a * b`` (into ``out`` when given)."""
    return _binary("mul", a, b, out)


def div(a: PyTree, b: PyTree, *, out: PyTree | None = None) -> PyTree:
    """Leafwise ``a / b`` (into ``out`` when given)."""
    return _binary("div", a, b, out)


def scale(s: Any, tree: PyTree, *, out: PyTree | None = None) -> PyTree:
    """Every leaf multiplied by the scalar ``s`` (into ``out`` when given)."""
    return _unary("scale", tree, out, s)


def axpy(a: Any, x: PyTree, y: PyTree, *, out: PyTree | None = None) -> PyTree:
    """Leafwise ``a * x + y`` for a scalar ``a`` (the BLAS name); into ``out`` when
    given (``out`` may be ``y``, or buffers sharing no memory with ``x``).

    >>> import numpy as np
    >>> axpy(2.0, np.array([1.0]), np.array([1.0]))
    array([3.])
    """
    lx, ly, spec = _flat2(x, y)
    be = _backend.of_leaves(lx)
    if out is None:
        return spec.unflatten(be.axpy(a, lx, ly))
    be.axpy(a, lx, ly, spec.flatten_up_to(out))
    return out


def vdot(a: PyTree, b: PyTree) -> Any:
    """The inner product ``sum(a * b)`` over all leaves, as a 0-d array/tensor.

    >>> import numpy as np
    >>> float(vdot([np.ones(3)], [np.full(3, 2.0)]))
    6.0
    """
    la, lb, _ = _flat2(a, b)
    return _backend.of_leaves(la).vdot(la, lb)


def sq_norm(tree: PyTree) -> Any:
    """The squared Euclidean norm over all leaves, as a 0-d array/tensor."""
    lx = _leaves(tree)
    return _backend.of_leaves(lx).sq_norm(lx)


def global_norm(tree: PyTree) -> Any:
    """The Euclidean norm of all leaves together, as a 0-d array/tensor.

    No host synchronisation: on a GPU the result stays on the device.
    """
    if type(tree) is _NDARRAY:  # a bare array (tiny problems): straight to NumPy
        return _backend.NUMPY.global_norm((tree,))
    lx = _leaves(tree)
    return _backend.of_leaves(lx).global_norm(lx)


def zeros_like(tree: PyTree, *, dtype: str | None = None) -> PyTree:
    """Zeros with the structure, shapes, dtypes (and devices) of ``tree``; of the dtype
    named ``dtype`` (e.g. ``"float32"``) when given."""
    lx, spec = _flatten(tree)
    return spec.unflatten(_backend.of_leaves(lx).zeros_like(lx, dtype))


def full_like(tree: PyTree, value: float, *, out: PyTree | None = None) -> PyTree:
    """Arrays filled with ``value`` with the structure, shapes and dtypes of ``tree``
    (or ``out`` filled with it)."""
    return _unary("full_like", tree, out, value)


def ones_like(tree: PyTree) -> PyTree:
    """Ones with the structure, shapes and dtypes of ``tree``."""
    return full_like(tree, 1.0)


def clone(tree: PyTree, *, out: PyTree | None = None) -> PyTree:
    """Fresh copies of every leaf (the copies share no memory with ``tree``), or the
    leaves copied into ``out``."""
    return _unary("clone", tree, out)


def detach(tree: PyTree) -> PyTree:
    """The leaves cut from any autograd graph (torch: ``.detach()``, the same memory;
    NumPy: unchanged)."""
    lx, spec = _flatten(tree)
    out = _backend.of_leaves(lx).detach(lx)
    return tree if all(map(_is, out, lx)) else spec.unflatten(out)  # NumPy: ``tree``


def all_finite(tree: PyTree) -> bool:
    """Whether every element of every leaf is finite (no NaN, no inf).

    >>> import numpy as np
    >>> all_finite([np.ones(2), np.array([1.0, np.nan])])
    False
    """
    lx = _leaves(tree)
    return _backend.of_leaves(lx).all_finite(lx)


def astype_like(tree: PyTree, like: PyTree) -> PyTree:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``like``."""
    lx, ll, spec = _flat2(tree, like)
    out = [_backend.of_value(x).cast_like(x, y) for x, y in builtins.zip(lx, ll)]
    return spec.unflatten(out)


def _params_like(node: Any, spec: Any, shapes: list[tuple[int, ...]]) -> bool:
    """Whether ``node`` is a tree of arrays with the structure and shapes of the params
    (``spec``, ``shapes``)."""
    if node is None or _backend.is_leaf(node):
        return False
    lx, s = optree.tree_flatten(node)
    return s == spec and len(lx) == len(shapes) and all(
        _backend.is_array(x) and tuple(x.shape) == sh for x, sh in zip(lx, shapes))


def map_params(
    params: PyTree,
    f: Callable[[Any], Any],
    state: PyTree,
    *,
    transform_non_params: Callable[[Any], Any] | None = None,
) -> PyTree:
    """Apply ``f`` to every leaf of ``state`` that belongs to a params-shaped subtree
    (a moment, a momentum buffer, an accumulator: same structure and shapes as
    ``params``), and ``transform_non_params`` (default: keep) to the other leaves;
    optax.tree.map_params's job. fnopt takes the params (or any tree with their
    structure and shapes) where optax takes the optimizer: fnopt's ``init`` needs real
    arrays.

    >>> import numpy as np, fnopt
    >>> p = {"w": np.zeros(2)}
    >>> s = fnopt.adam(0.1).init(p)
    >>> s32 = map_params(p, lambda x: x.astype(np.float32), s)
    >>> s32.inner[0].mu["w"].dtype, s32.inner[0].count
    (dtype('float32'), 0)
    """
    spec = optree.tree_structure(params)
    shapes = [tuple(x.shape) for x in optree.tree_leaves(params)]
    other = transform_non_params if transform_non_params is not None else (lambda x: x)

    def walk(node: Any) -> Any:
        if _params_like(node, spec, shapes):
            return optree.tree_map(f, node)
        if node is None:
            return node
        try:
            children, meta, _, unflatten = optree.tree_flatten_one_level(node)
        except ValueError:  # a leaf (an array, a count)
            return other(node)
        return unflatten(meta, [walk(c) for c in children])

    return walk(state)
