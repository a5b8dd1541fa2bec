"""Shared hypothesis strategies: small, finite pytrees of NumPy arrays or torch tensors.

Trees nest ``dict`` / ``list`` / ``tuple`` / ``NamedTuple`` and may hold ``None``
subtrees; every tree has at least one array leaf. Leaves are float32 or float64,
0-d to 2-d with at most 3 elements per side, values in a small finite range (no NaN,
no inf). A drawn tree never mixes backends; by default it has one dtype throughout.

>>> from hypothesis import given
>>> @given(pytrees(backend="numpy"))
... def test(tree): ...
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import optree
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

BACKENDS = ("numpy", "torch")
DTYPES = ("float32", "float64")

__all__ = [
    "BACKENDS",
    "DTYPES",
    "Pair",
    "arrays",
    "pytrees",
    "like",
    "to_backend",
    "to_numpy",
    "snapshot",
    "assert_same_tree",
]


class Pair(NamedTuple):
    """A NamedTuple node for generated trees."""

    first: Any
    second: Any


def arrays(
    dtype: str, shape: tuple[int, ...] | st.SearchStrategy[Any] | None = None,
    *, bound: float = 10.0,
) -> st.SearchStrategy[np.ndarray]:
    """Finite NumPy arrays of ``dtype`` with values in ``[-bound, bound]``."""
    width = 32 if dtype == "float32" else 64
    elements = st.floats(
        -bound, bound, width=width, allow_nan=False, allow_infinity=False,
        allow_subnormal=False,
    )
    if shape is None:
        shape = hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3)
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


def _structures(leaf: st.SearchStrategy[Any], max_leaves: int) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["a", "b", "w", "bias"])

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        child_or_none = children | st.none()
        return st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.dictionaries(keys, child_or_none, min_size=1, max_size=3),
            st.tuples(children, child_or_none),
            st.builds(Pair, children, child_or_none),
        )

    return st.recursive(leaf, extend, max_leaves=max_leaves)


def to_backend(tree: Any, backend: str) -> Any:
    """Convert a tree of NumPy arrays to ``backend`` (fresh memory either way)."""
    if backend == "numpy":
        return optree.tree_map(lambda x: np.array(x, copy=True), tree)
    import torch

    return optree.tree_map(lambda x: torch.tensor(np.array(x, copy=True)), tree)


def to_numpy(tree: Any) -> Any:
    """A tree of NumPy copies of the leaves (tensors are detached and copied)."""

    def conv(x: Any) -> np.ndarray:
        if hasattr(x, "detach"):
            return x.detach().cpu().numpy().copy()
        return np.array(x, copy=True)

    return optree.tree_map(conv, tree)


@st.composite
def pytrees(
    draw: st.DrawFn,
    backend: str | None = None,
    dtype: str | None = None,
    *,
    max_leaves: int = 5,
    bound: float = 10.0,
    mixed_dtypes: bool = False,
) -> Any:
    """A pytree with at least one array leaf, on ``backend`` (drawn when ``None``).

    ``dtype`` fixes the dtype of every leaf (drawn once per tree when ``None``);
    ``mixed_dtypes=True`` draws a dtype per leaf instead.
    """
    backend = draw(st.sampled_from(BACKENDS)) if backend is None else backend
    if mixed_dtypes:
        leaf = st.sampled_from(DTYPES).flatmap(lambda d: arrays(d, bound=bound))
    else:
        dt = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
        leaf = arrays(dt, bound=bound)
    tree = draw(_structures(leaf, max_leaves).filter(lambda t: len(optree.tree_leaves(t)) > 0))
    return to_backend(tree, backend)


def like(draw: st.DrawFn, tree: Any, *, bound: float = 10.0) -> Any:
    """Inside ``@st.composite``: a new tree with the structure, shapes, dtypes and
    backend of ``tree`` and freshly drawn values."""
    np_tree = to_numpy(tree)
    new = optree.tree_map(
        lambda x: draw(arrays(x.dtype.name, x.shape, bound=bound)), np_tree
    )
    backend = "numpy" if isinstance(optree.tree_leaves(tree)[0], np.ndarray) else "torch"
    return to_backend(new, backend)


def snapshot(tree: Any) -> tuple[Any, list[np.ndarray]]:
    """The structure and NumPy copies of the leaves of ``tree`` (to detect mutation)."""
    leaves, spec = optree.tree_flatten(tree)
    return spec, [to_numpy(x) for x in leaves]


def assert_same_tree(tree: Any, snap: tuple[Any, list[np.ndarray]]) -> None:
    """Assert that ``tree`` still equals (bit for bit) what :func:`snapshot` recorded."""
    spec, copies = snap
    leaves, spec2 = optree.tree_flatten(tree)
    assert spec2 == spec
    for x, c in zip(leaves, copies):
        xn = to_numpy(x)
        assert xn.dtype == c.dtype and xn.shape == c.shape
        np.testing.assert_array_equal(xn, c)
