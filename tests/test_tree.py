"""fnopt.tree: every helper on both backends against a NumPy reference; structure and
dtypes preserved; inputs never mutated."""

from __future__ import annotations

import math

import numpy as np
import optree
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fnopt import tree
from tests.strategies import (
    BACKENDS,
    Pair,
    assert_same_tree,
    like,
    pytrees,
    snapshot,
    to_backend,
    to_numpy,
)


def _tol(t):
    dt = to_numpy(tree.leaves(t)[0]).dtype
    return 1e-5 if dt == np.float32 else 1e-12


@st.composite
def tree_pairs(draw, backend=None):
    a = draw(pytrees(backend=backend))
    return a, like(draw, a)


def _check_like(out, ref_leaves, a):
    """``out`` has the structure, backend and dtypes of ``a``; values match the
    NumPy reference leaves."""
    assert tree.structure(out) == tree.structure(a)
    tol = _tol(a)
    for o, r, x in zip(tree.leaves(out), ref_leaves, tree.leaves(a)):
        assert type(o) is type(x)
        assert o.dtype == x.dtype and tuple(o.shape) == tuple(x.shape)
        np.testing.assert_allclose(to_numpy(o), r, rtol=tol, atol=tol)


BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_ops(backend, name, data):
    a, b = data.draw(tree_pairs(backend))
    sa, sb = snapshot(a), snapshot(b)
    out = getattr(tree, name)(a, b)
    ref = [BINARY[name](x, y) for x, y in zip(tree.leaves(to_numpy(a)), tree.leaves(to_numpy(b)))]
    _check_like(out, ref, a)
    assert_same_tree(a, sa)
    assert_same_tree(b, sb)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_div(backend, data):
    a, b = data.draw(tree_pairs(backend))
    b = to_backend(tree.map(lambda x: np.abs(x) + 1, to_numpy(b)), backend)  # |b| >= 1
    sa, sb = snapshot(a), snapshot(b)
    out = tree.div(a, b)
    ref = [x / y for x, y in zip(tree.leaves(to_numpy(a)), tree.leaves(to_numpy(b)))]
    _check_like(out, ref, a)
    assert_same_tree(a, sa)
    assert_same_tree(b, sb)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_scale_and_axpy(backend, data):
    x, y = data.draw(tree_pairs(backend))
    s = data.draw(st.floats(-3, 3))
    sx, sy = snapshot(x), snapshot(y)
    nx, ny = tree.leaves(to_numpy(x)), tree.leaves(to_numpy(y))
    _check_like(tree.scale(s, x), [s * v for v in nx], x)
    _check_like(tree.axpy(s, x, y), [s * u + v for u, v in zip(nx, ny)], x)
    # a NumPy float64 scalar (e.g. from a schedule) must not promote float32 leaves;
    # on torch a 0-d float32 tensor scalar must not demote float64 leaves
    s0 = np.float64(s) if backend == "numpy" else torch.tensor(s, dtype=torch.float32)
    s = float(s0)
    _check_like(tree.scale(s0, x), [s * v for v in nx], x)
    _check_like(tree.axpy(s0, x, y), [s * u + v for u, v in zip(nx, ny)], x)
    assert_same_tree(x, sx)
    assert_same_tree(y, sy)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_reductions(backend, data):
    a, b = data.draw(tree_pairs(backend))
    sa, sb = snapshot(a), snapshot(b)
    na = [v.astype(np.float64) for v in tree.leaves(to_numpy(a))]
    nb = [v.astype(np.float64) for v in tree.leaves(to_numpy(b))]
    want_dot = sum(float(np.sum(x * y)) for x, y in zip(na, nb))
    want_sq = sum(float(np.sum(x * x)) for x in na)
    tol = _tol(a)
    for got, want in (
        (tree.vdot(a, b), want_dot),
        (tree.sq_norm(a), want_sq),
        (tree.global_norm(a), math.sqrt(want_sq)),
    ):
        assert tuple(got.shape) == ()
        assert type(got) is type(tree.leaves(a)[0])  # stays on the backend (no host sync)
        assert math.isclose(float(got), want, rel_tol=10 * tol, abs_tol=100 * tol)
    assert_same_tree(a, sa)
    assert_same_tree(b, sb)


@pytest.mark.parametrize("backend", BACKENDS)
@given(a=pytrees())
def test_constructors_and_clone(backend, a):
    a = to_backend(to_numpy(a), backend)
    sa = snapshot(a)
    shapes = [np.shape(to_numpy(x)) for x in tree.leaves(a)]
    _check_like(tree.zeros_like(a), [np.zeros(s) for s in shapes], a)
    _check_like(tree.ones_like(a), [np.ones(s) for s in shapes], a)
    _check_like(tree.full_like(a, -2.5), [np.full(s, -2.5) for s in shapes], a)
    c = tree.clone(a)
    _check_like(c, tree.leaves(to_numpy(a)), a)
    for x, y in zip(tree.leaves(c), tree.leaves(a)):
        assert x is not y
        if backend == "numpy":
            assert not np.shares_memory(x, y)
        else:
            assert x.data_ptr() != y.data_ptr()
    assert_same_tree(a, sa)


@pytest.mark.parametrize("backend", BACKENDS)
@given(a=pytrees(), data=st.data())
def test_all_finite(backend, a, data):
    a = to_backend(to_numpy(a), backend)
    assert tree.all_finite(a) is True
    leaves, spec = optree.tree_flatten(to_numpy(a))
    i = data.draw(st.integers(0, len(leaves) - 1))
    bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    flat = leaves[i].reshape(-1)
    flat[data.draw(st.integers(0, flat.size - 1))] = bad
    broken = to_backend(spec.unflatten(leaves), backend)
    assert tree.all_finite(broken) is False


@pytest.mark.parametrize("backend", BACKENDS)
@given(a=pytrees(mixed_dtypes=True))
def test_map_leaves_paths_structure(backend, a):
    a = to_backend(to_numpy(a), backend)
    sa = snapshot(a)
    leaves = tree.leaves(a)
    assert len(leaves) == len(tree.paths(a)) >= 1
    wrap = np.asarray if backend == "numpy" else (lambda v: v)  # NumPy 0-d ops give scalars
    doubled = tree.map(lambda x: wrap(x * 2), a)
    summed = tree.map(lambda x, y: wrap(x + y), a, doubled)
    _check_like(summed, [3 * x for x in tree.leaves(to_numpy(a))], a)
    assert tree.structure(doubled) == tree.structure(a)
    assert_same_tree(a, sa)


@pytest.mark.parametrize("backend", BACKENDS)
@given(a=pytrees(dtype="float64"))
def test_astype_like(backend, a):
    a = to_backend(to_numpy(a), backend)
    target = to_backend(tree.map(lambda x: x.astype(np.float32), to_numpy(a)), backend)
    out = tree.astype_like(a, target)
    _check_like(out, [x.astype(np.float32) for x in tree.leaves(to_numpy(a))], target)
    assert all(x.dtype == a_.dtype for x, a_ in zip(tree.leaves(a), tree.leaves(a)))


def test_paths_name_nested_leaves_and_keep_none_out():
    p = {"w": [np.ones(1), None, Pair(np.ones(2), None)], "b": (np.ones(1),)}
    assert tree.paths(p) == ["['b'][0]", "['w'][0]", "['w'][2][0]"]
    assert tree.paths(np.ones(3)) == ["<root>"]
    out = tree.add(p, p)
    assert out["w"][1] is None and out["w"][2].second is None
    assert isinstance(out["w"][2], Pair)


def test_optimizer_state_is_traversed():
    import fnopt

    params = {"w": np.ones(2), "b": np.zeros(1)}
    opt = fnopt.sgd(0.1, momentum=0.9)
    state = opt.init(params)
    arrays = [x for x in tree.leaves(state) if isinstance(x, np.ndarray) and x.ndim > 0]
    assert len(arrays) == 2  # the momentum buffer has one leaf per param
    zeroed = tree.map(lambda x: x * 0 if isinstance(x, np.ndarray) else x, state)
    assert type(zeroed) is type(state) and zeroed.count == 0


@pytest.mark.parametrize(
    "f, args",
    [
        (tree.add, ({"a": np.ones(1)}, {"b": np.ones(1)})),
        (tree.axpy, (1.0, [np.ones(1)], [np.ones(1), np.ones(1)])),
        (tree.vdot, ((np.ones(1),), [np.ones(1)])),
    ],
)
def test_structure_mismatch_raises(f, args):
    with pytest.raises(ValueError):
        f(*args)


def test_mixed_backends_raise():
    with pytest.raises(TypeError, match="mix numpy and torch"):
        tree.scale(2.0, [np.ones(1), torch.ones(1)])
