"""fnopt.projections: properties (feasible, idempotent, nearest point against independent
references), both backends, pytrees, the transform form, and named errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, assert_same_tree, snapshot, to_backend, to_numpy

import fnopt
from fnopt import projections as P

torch = pytest.importorskip("torch")

BACKENDS = ["numpy", "torch"]
vectors = arrays("float64", st.integers(1, 8).map(lambda n: (n,)), bound=5.0)


def _np(x):
    return np.asarray(to_numpy(x), dtype=np.float64)


def _simplex_by_bisection(v: np.ndarray, total: float) -> np.ndarray:
    """Reference without sorting: the threshold tau with sum(max(v - tau, 0)) = total,
    by bisection (the KKT conditions of the projection)."""
    lo, hi = float(v.min()) - total, float(v.max())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.maximum(v - mid, 0.0).sum() > total:
            lo = mid
        else:
            hi = mid
    return np.maximum(v - 0.5 * (lo + hi), 0.0)


def _box_pair(draw, n):
    a = draw(arrays("float64", (n,), bound=3.0))
    b = draw(arrays("float64", (n,), bound=3.0))
    return np.minimum(a, b), np.maximum(a, b)


@st.composite
def box_cases(draw):
    x = draw(vectors)
    lo, hi = _box_pair(draw, x.size)
    return x, lo, hi


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=box_cases())
def test_box_is_the_nearest_feasible_point_and_idempotent(backend, case):
    x, lo, hi = case
    proj = P.box(lo, hi)
    xb = to_backend(x, backend)
    snap = snapshot(xb)
    p = proj.project(xb)
    assert_same_tree(xb, snap)  # the input is only read
    pn = _np(p)
    assert np.all(lo <= pn) and np.all(pn <= hi)
    np.testing.assert_allclose(_np(proj.project(p)), pn, rtol=0, atol=0)
    # nearest point: the variational inequality (x - P x) . (z - P x) <= 0 for feasible z
    rng = np.random.default_rng(0)
    for _ in range(5):
        z = lo + rng.random(x.size) * (hi - lo)
        assert float((x - pn) @ (z - pn)) <= 1e-12
    np.testing.assert_array_equal(pn, np.minimum(np.maximum(x, lo), hi))


@pytest.mark.parametrize("backend", BACKENDS)
@given(x=vectors, total=st.floats(0.1, 10.0))
def test_simplex_matches_a_bisection_reference(backend, x, total):
    p = _np(P.simplex(total).project(to_backend(x, backend)))
    assert np.all(p >= 0)
    assert math.isclose(p.sum(), total, rel_tol=1e-12, abs_tol=1e-12)
    np.testing.assert_allclose(p, _simplex_by_bisection(x, total), atol=1e-9)
    np.testing.assert_allclose(_np(P.simplex(total).project(to_backend(p, backend))), p,
                               atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@given(x=vectors, radius=st.floats(0.1, 5.0))
def test_l2_ball_scales_only_points_outside(backend, x, radius):
    p = _np(P.l2_ball(radius).project(to_backend(x, backend)))
    norm = float(np.linalg.norm(x))
    assert np.linalg.norm(p) <= radius * (1 + 1e-12)
    expected = x if norm <= radius else x * (radius / norm)
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_np(P.l2_ball(radius).project(to_backend(p, backend))), p,
                               rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linf_ball_and_non_negative(backend):
    x = to_backend(np.array([-3.0, -0.5, 0.25, 4.0]), backend)
    np.testing.assert_array_equal(_np(P.linf_ball(1.0).project(x)), [-1.0, -0.5, 0.25, 1.0])
    np.testing.assert_array_equal(_np(P.non_negative().project(x)), [0.0, 0.0, 0.25, 4.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pytree_bounds_keep_structure_dtype_and_accept_either_backend(backend, dtype):
    params = to_backend({"w": np.array([[-2.0, 0.5], [3.0, 0.0]], dtype=dtype),
                         "b": np.array(5.0, dtype=dtype)}, backend)
    # bounds as a pytree mixing numbers and arrays (NumPy bounds for torch params too)
    proj = P.box({"w": np.array([[-1.0, 1.0], [-1.0, -np.inf]]), "b": -np.inf},
                 {"w": 1.0, "b": 2.0})
    out = proj.project(params)
    assert set(out) == {"w", "b"}
    assert str(out["w"].dtype).endswith(dtype)
    np.testing.assert_array_equal(_np(out["w"]), [[-1.0, 1.0], [1.0, 0.0]])
    assert float(_np(out["b"])) == 2.0
    # the l2 ball and the simplex take the whole tree as one vector
    ball = P.l2_ball(1.0).project(params)
    assert math.isclose(
        math.sqrt(sum(float((_np(v) ** 2).sum()) for v in ball.values())), 1.0, rel_tol=1e-6)
    sim = P.simplex(2.0).project(params)
    assert math.isclose(sum(float(_np(v).sum()) for v in sim.values()), 2.0, rel_tol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_transform_update_is_projected_step_minus_params(backend):
    x = to_backend(np.array([0.5, 0.9, -0.2]), backend)
    u = to_backend(np.array([1.0, -0.5, -1.0]), backend)
    proj = P.box(0.0, 1.0)
    state = proj.init(x)
    upd, state2 = proj.update(u, state, x)
    assert state2 == state
    np.testing.assert_allclose(_np(upd), [0.5, -0.5, 0.2])
    with pytest.raises(ValueError, match="needs params"):
        proj.update(u, state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_projected_adam_converges_to_the_boundary_minimum(backend):
    # f(x) = sum (x - c)^2 with c = (2, -3, 0.5) over [0, 1]^3: minimiser (1, 0, 0.5)
    c = to_backend(np.array([2.0, -3.0, 0.5]), backend)

    def grad_fn(x):
        d = x - c
        return (d * d).sum(), 2.0 * d

    opt = fnopt.descent(fnopt.chain(fnopt.scale_by_adam(), fnopt.scale_by_learning_rate(0.05),
                                    P.box(0.0, 1.0)))
    x0 = to_backend(np.array([0.2, 0.8, 0.9]), backend)
    seen = []
    r = fnopt.fixed_point(opt, x0, grad_fn, stop=fnopt.stop.max_iters(400),
                          callback=lambda info: seen.append(_np(info.params)))
    assert all(np.all(p >= 0) and np.all(p <= 1) for p in seen)  # every iterate feasible
    np.testing.assert_allclose(_np(r.params), [1.0, 0.0, 0.5], atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chain_of_an_alias_and_a_projection_is_a_projected_optimizer(backend):
    c = to_backend(np.array([2.0, -3.0, 0.5, 0.25]), backend)

    def grad_fn(x):
        d = x - c
        return (d * d).sum(), 2.0 * d

    opt = fnopt.chain(fnopt.adam(0.05), P.box(0.0, 1.0))
    x0 = to_backend(np.array([0.2, 0.8, 0.9, 0.1]), backend)
    for callback in (None, lambda info: None):  # loop-owned buffers, and the pure steps
        r = fnopt.fixed_point(opt, x0, grad_fn, stop=fnopt.stop.max_iters(400),
                              callback=callback)
        p = _np(r.params)
        assert np.all((p >= 0) & (p <= 1))
        np.testing.assert_allclose(p, [1.0, 0.0, 0.5, 0.25], atol=1e-3)


def test_bad_bounds_are_named():
    with pytest.raises(ValueError, match="lower, upper: lower > upper"):
        P.box(1.0, 0.0)
    with pytest.raises(ValueError, match="lower > upper at leaf \\['b'\\]"):
        P.box({"a": 0.0, "b": np.array([0.0, 2.0])}, {"a": 1.0, "b": np.array([1.0, 1.0])})
    with pytest.raises(ValueError, match=r"lower: .*nan"):
        P.box(math.nan, 1.0)
    with pytest.raises(TypeError, match="upper: leaf"):
        P.box(0.0, {"a": "x"})
    with pytest.raises(ValueError, match="upper: structure"):
        P.box({"a": 0.0}, {"b": 1.0})
    params = {"w": np.zeros(3)}
    with pytest.raises(ValueError, match="lower: structure"):
        P.box({"v": 0.0}, 1.0).project(params)
    with pytest.raises(ValueError, match="upper: leaf \\['w'\\] has shape \\(2,\\)"):
        P.box(0.0, {"w": np.ones(2)}).init(params)
    for make, name in ((P.l2_ball, "radius"), (P.linf_ball, "radius"), (P.simplex, "total")):
        with pytest.raises(ValueError, match=name):
            make(0.0)
        with pytest.raises(ValueError, match=name):
            make(-1.0)
        with pytest.raises(TypeError, match=name):
            make("1")


def test_repr_names_the_set():
    assert repr(P.box(0, 1)) == "box(0, 1)"
    assert repr(P.simplex()) == "simplex(1.0)"
    assert repr(P.non_negative()) == "non_negative()"
    assert isinstance(P.l2_ball(2.0), fnopt.Transform)


def test_projection_state_survives_save_and_load(tmp_path):
    opt = fnopt.descent(fnopt.chain(fnopt.scale_by_adam(), fnopt.scale_by_learning_rate(0.1),
                                    P.box(0.0, 1.0)))
    p = np.array([0.5, 2.0])
    p, s = opt.step(p, lambda x: ((x * x).sum(), 2 * x), opt.init(p))
    fnopt.save(tmp_path / "ck.npz", p, s)
    ck = fnopt.load(tmp_path / "ck.npz")
    assert ck.state.inner[2] == P.ProjectionState()
    np.testing.assert_array_equal(ck.params, p)
    assert np.all((p >= 0) & (p <= 1))
