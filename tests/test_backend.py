"""fnopt.backend: list-level arithmetic on both backends against a NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fnopt import backend as B
from tests.strategies import DTYPES, arrays, to_numpy

BACKENDS = {"numpy": B.NUMPY, "torch": B.TORCH}


def _conv(xs, name):
    if name == "numpy":
        return [np.array(x, copy=True) for x in xs]
    return [torch.tensor(np.array(x, copy=True)) for x in xs]


# op name -> (number of list arguments, extra args, NumPy reference on one leaf)
ELEMENTWISE = {
    "add": (2, (), lambda x, y: x + y),
    "sub": (2, (), lambda x, y: x - y),
    "mul": (2, (), lambda x, y: x * y),
    "div": (2, (), lambda x, y: x / y),
    "scale": (1, (-0.5,), lambda x, s: x * s),
    "add_scalar": (1, (2.5,), lambda x, s: x + s),
    "lerp": (2, (0.3,), lambda x, y, w: x + w * (y - x)),
    "addcmul": (3, (0.7,), lambda x, y, z, v: x + v * y * z),
    "addcdiv": (3, (0.7,), lambda x, y, z, v: x + v * y / z),
    "sqrt": (1, (), np.sqrt),
    "abs": (1, (), np.abs),
    "sign": (1, (), np.sign),
    "maximum": (2, (), np.maximum),
    "clip": (1, (-1.0, 2.0), lambda x, lo, hi: np.clip(x, lo, hi)),
}


def _inputs(op, lists):
    """Make denominators positive and sqrt arguments non-negative, identically for
    the reference and the backends."""
    lists = [list(xs) for xs in lists]
    if op in ("div", "addcdiv"):
        lists[-1] = [np.abs(x) + 1 for x in lists[-1]]
    if op == "sqrt":
        lists[0] = [np.abs(x) for x in lists[0]]
    return lists


def _ref(op, lists, extra):
    n, _, f = ELEMENTWISE[op]
    return [f(*(lst[i] for lst in lists[:n]), *extra) for i in range(len(lists[0]))]


@st.composite
def leaf_lists(draw, n_lists):
    dtype = draw(st.sampled_from(DTYPES))
    shapes = draw(st.lists(st.sampled_from([(), (1,), (3,), (2, 3)]), min_size=1, max_size=3))
    return dtype, [[draw(arrays(dtype, s)) for s in shapes] for _ in range(n_lists)]


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("op", list(ELEMENTWISE))
@given(data=st.data())
def test_elementwise_matches_numpy_and_keeps_dtype(backend, op, data):
    n, extra, _ = ELEMENTWISE[op]
    dtype, lists = data.draw(leaf_lists(n))
    lists = _inputs(op, lists)
    expected = _ref(op, lists, extra)
    be = BACKENDS[backend]
    args = [_conv(xs, backend) for xs in lists]
    before = [to_numpy(a) for a in args]
    out = getattr(be, op)(*args, *extra)
    assert isinstance(out, list) and len(out) == len(expected)
    tol = 1e-6 if dtype == "float32" else 1e-12
    for got, want in zip(out, expected):
        g = to_numpy(got)
        assert g.dtype == np.dtype(dtype)
        assert g.shape == want.shape
        np.testing.assert_allclose(g, want.astype(dtype), rtol=tol, atol=tol)
    for a, b in zip(args, before):  # pure: inputs untouched
        for x, y in zip(a, b):
            np.testing.assert_array_equal(to_numpy(x), y)


@pytest.mark.parametrize("backend", list(BACKENDS))
@given(data=st.data())
def test_axpy_vdot_sq_norm(backend, data):
    dtype, (xs, ys) = data.draw(leaf_lists(2))
    a = data.draw(st.floats(-3, 3))
    be = BACKENDS[backend]
    cx, cy = _conv(xs, backend), _conv(ys, backend)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for got, x, y in zip(be.axpy(a, cx, cy), xs, ys):
        assert to_numpy(got).dtype == np.dtype(dtype)
        np.testing.assert_allclose(to_numpy(got), a * x + y, rtol=tol, atol=tol)
    want_dot = sum(float(np.vdot(x.astype(np.float64), y)) for x, y in zip(xs, ys))
    want_sq = sum(float(np.vdot(x.astype(np.float64), x)) for x in xs)
    dot, sq = be.vdot(cx, cy), be.sq_norm(cx)
    assert tuple(dot.shape) == () and tuple(sq.shape) == ()
    assert math.isclose(be.to_float(dot), want_dot, rel_tol=tol * 10, abs_tol=tol * 100)
    assert math.isclose(be.to_float(sq), want_sq, rel_tol=tol * 10, abs_tol=tol * 100)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_construction_and_copy(backend, dtype):
    be = BACKENDS[backend]
    xs = _conv([np.arange(6, dtype=dtype).reshape(2, 3), np.array(2.0, dtype=dtype)], backend)
    for make, value in ((be.zeros_like, 0.0), (lambda v: be.full_like(v, 4.5), 4.5)):
        out = make(xs)
        for o, x in zip(out, xs):
            assert to_numpy(o).dtype == np.dtype(dtype) and tuple(o.shape) == tuple(x.shape)
            assert np.all(to_numpy(o) == value)
    clones = be.clone(xs)
    be.clone(be.zeros_like(xs), clones)  # writing into a clone leaves the original alone
    assert np.all(to_numpy(clones[0]) == 0)
    assert to_numpy(xs[0])[1, 2] == 5
    s = be.scalar(1.5, xs[0])
    assert to_numpy(s).dtype == np.dtype(dtype) and tuple(s.shape) == ()
    assert be.to_float(s) == 1.5
    assert be.is_floating(xs[0])


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize(
    "values, finite", [([1.0, 2.0], True), ([1.0, np.nan], False), ([np.inf, 0.0], False)]
)
def test_all_finite(backend, values, finite):
    be = BACKENDS[backend]
    xs = _conv([np.ones(2), np.array(values)], backend)
    assert be.all_finite(xs) is finite


def test_empty_lists_reduce_to_zero():
    for be in BACKENDS.values():
        assert be.to_float(be.vdot([], [])) == 0.0
        assert be.to_float(be.sq_norm([])) == 0.0


def test_is_tensor_and_detection():
    assert B.is_tensor(torch.ones(1)) and not B.is_tensor(np.ones(1))
    assert not B.is_tensor(1.0)
    assert B.of({"a": np.ones(1)}) is B.NUMPY
    assert B.of({"a": torch.ones(1), "b": [torch.zeros(2)]}) is B.TORCH
    assert B.of([]) is B.NUMPY
    assert B.name_of((torch.ones(1),)) == "torch"
    assert B.name_of(np.ones(1)) == "numpy"


@pytest.mark.parametrize(
    "leaves, match",
    [
        ([np.ones(1), torch.ones(1)], r"params: leaves mix numpy and torch .*leaf 1"),
        ([torch.ones(1), np.ones(1)], r"params: leaves mix numpy and torch .*leaf 1"),
        ([1.0], r"params: leaves must be numpy.ndarray or torch.Tensor, got float"),
        ([[1.0]], r"got list"),
    ],
)
def test_of_leaves_rejects_mixed_and_foreign(leaves, match):
    with pytest.raises(TypeError, match=match):
        B.of_leaves(leaves)


def test_of_names_the_argument():
    with pytest.raises(TypeError, match=r"^grads: "):
        B.of([np.ones(1), torch.ones(1)], what="grads")


@pytest.mark.parametrize(
    "x, finite",
    [(1.0, True), (np.float32(np.inf), False), (np.array(np.nan), False),
     (torch.tensor(3.0), True), (torch.tensor(float("-inf")), False)],
)
def test_is_finite_scalar(x, finite):
    assert B.is_finite_scalar(x) is finite


@pytest.mark.parametrize(
    "x, dtype",
    [
        (np.array([1.0, 2.0], dtype=np.float32), np.float32),
        (np.float64(1.5), np.float64),
        (2.5, np.float64),
        (3, np.int64),
        (torch.tensor([1.0, 2.0], dtype=torch.float32, requires_grad=True), np.float32),
        (torch.tensor(4.0, dtype=torch.float64), np.float64),
    ],
)
def test_to_numpy_keeps_values_and_dtype(x, dtype):
    got = B.to_numpy(x)
    assert type(got) is np.ndarray and got.dtype == np.dtype(dtype)
    want = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_to_numpy_copy_never_shares_memory(name):
    x = _conv([np.zeros(3)], name)[0]
    B.to_numpy(x, copy=True)[0] = 7.0
    assert to_numpy(x)[0] == 0.0
    B.to_numpy(x)[1] = 5.0  # without copy: a view of a NumPy array or a CPU tensor
    assert to_numpy(x)[1] == 5.0


@pytest.mark.parametrize("name", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_set_flat_and_from_numpy(name, dtype):
    be = BACKENDS[name]
    x = _conv([np.arange(6, dtype=dtype).reshape(2, 3)], name)[0]
    clone = be.clone([x])[0]
    be.set_flat_(clone, 4, -1.0)
    assert to_numpy(clone)[1, 1] == -1.0 and to_numpy(x)[1, 1] == 4.0  # only the clone
    a = np.full((2, 3), 0.25)  # float64
    got = be.from_numpy(a, x)
    assert B.of_leaves([got]) is be and tuple(got.shape) == (2, 3)
    assert to_numpy(got).dtype == np.dtype(dtype)
    np.testing.assert_array_equal(to_numpy(got), a.astype(dtype))


# -- single-leaf ops (issue 12: backend branches only in fnopt.backend) ----------------


def _leaf(name, values, dtype="float64"):
    a = np.asarray(values, dtype=dtype)
    return a if name == "numpy" else torch.from_numpy(a.copy())


def test_of_value_is_leaf_same_type_dtype_name():
    t, a = torch.zeros(2), np.zeros(2)
    assert B.of_value(t) is B.TORCH and B.of_value(a) is B.NUMPY and B.of_value(1.5) is B.NUMPY
    assert B.is_leaf(a) and B.is_leaf(np.float32(1)) and B.is_leaf(t)
    assert not B.is_leaf(1.0) and not B.is_leaf(None)
    assert B.same_type(t, torch.nn.Parameter(torch.zeros(1))) and B.same_type(a, np.ones(1))
    assert not B.same_type(a, t) and not B.same_type(a, np.float64(1))
    assert B.dtype_name(torch.float32) == B.dtype_name(np.dtype("float32")) == "float32"


@pytest.mark.parametrize("name", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_single_leaf_ops_agree(name, dtype):
    be = BACKENDS[name]
    x = _leaf(name, [[1.0, -2.0, 3.0], [0.5, 0.0, 4.0]], dtype)
    assert be.title in ("NumPy", "torch") and be.noun in ("array", "tensor")
    assert be.size(x) == 6 and not be.is_meta(x) and not be.is_complex(x)
    assert be.is_complex(_leaf(name, [1j], "complex128"))
    assert B.name_of(be.stack([x, x], 1)) == name
    np.testing.assert_array_equal(to_numpy(be.stack([x, x], 1)), np.stack([to_numpy(x)] * 2, 1))
    other = _leaf(name, [1.0], "float64" if dtype == "float32" else "float32")
    cast = be.cast_like(x, other)
    assert B.dtype_name(cast.dtype) == B.dtype_name(other.dtype) and be.cast_like(x, x) is x
    norm = be.global_norm([x, x])
    assert B.dtype_name(norm.dtype) == dtype and B.of_value(norm) is be
    np.testing.assert_allclose(float(norm), math.sqrt(2) * np.linalg.norm(to_numpy(x)), rtol=1e-6)


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_as_0d_from_host_to_floating(name):
    be = BACKENDS[name]
    like = _leaf(name, 0.0, "float32")
    z = be.as_0d(2.5, like)
    assert B.of_value(z) is be and z.ndim == 0 and B.dtype_name(z.dtype) == "float32"
    assert be.as_0d(like, None) is like  # its own arrays pass through
    host = np.arange(3.0)
    moved = be.from_host(host, like)
    assert B.of_value(moved) is be and np.array_equal(to_numpy(moved), host)
    kept = be.from_host(np.arange(3), like, keep_dtype=True)
    assert B.dtype_name(kept.dtype) == "int64"
    ints = _leaf(name, [1, 2], "int64")
    # NumPy reads integer data as float64 (as scipy); a torch tensor keeps its dtype
    expect = "float64" if name == "numpy" else "int64"
    assert B.dtype_name(be.to_floating(ints).dtype) == expect


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_storage_record_and_array_round_trip(name):
    be = BACKENDS[name]
    x = _leaf(name, [1.5, -2.0], "float32")
    rec = be.storage_record(x)
    assert rec["shape"] == [2] and rec["kind"] == ("numpy" if name == "numpy" else "torch")
    arr = be.storage_array(x)
    assert isinstance(arr, np.ndarray) and np.array_equal(arr, [1.5, -2.0])


def test_storage_of_bfloat16_and_refusals():
    x = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    assert B.TORCH.storage_record(x)["dtype"] == "bfloat16"
    bits = B.TORCH.storage_array(x)
    assert bits.dtype == np.int16
    assert torch.equal(torch.from_numpy(bits).view(torch.bfloat16), x)
    with pytest.raises(TypeError, match="meta"):
        B.TORCH.storage_record(torch.zeros(2, device="meta"))
    with pytest.raises(TypeError, match="object"):
        B.NUMPY.storage_record(np.array([None]))
    with pytest.raises(TypeError, match="x: bfloat16"):
        B.to_numpy(x)


def test_array_converts_tensors_and_places_them():
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    c = B.array(t, "torch")
    assert not c.requires_grad and c.data_ptr() != t.data_ptr() and torch.equal(c, t.detach())
    assert B.array(t, "torch", "float64").dtype == torch.float64
    assert np.array_equal(B.array(t, "numpy"), [1.0, 2.0])
    assert B.array(np.float32(1.0), "torch", device="cpu").dtype == torch.float32
    with pytest.raises(ValueError, match="device"):
        B.array([1.0], "numpy", device="cpu")
