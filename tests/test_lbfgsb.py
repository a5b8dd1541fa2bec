"""fnopt.lbfgsb against scipy's L-BFGS-B on bounded problems (NumPy and torch float64),
its model pieces against dense references, and its state and errors."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize as so
from strategies import assert_same_tree, snapshot

import fnopt

torch = pytest.importorskip("torch")
L = importlib.import_module("fnopt.optimizers.lbfgsb")

_spec = importlib.util.spec_from_file_location(
    "bench_bounds", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_bounds.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
PROBLEMS = {p.name: p for p in bench.PROBLEMS}


def _scipy(p, gtol=1e-8):
    return so.minimize(p.loss, p.x0, jac=True, method="L-BFGS-B", bounds=p.scipy_bounds(),
                       options={"gtol": gtol, "ftol": 1e-14, "maxiter": 1000})


def _grad_fn(p, backend):
    if backend == "numpy":
        return p.loss

    def grad_fn(x):  # the NumPy problem behind torch params
        f, g = p.loss(x.detach().numpy())
        return torch.tensor(f, dtype=x.dtype), torch.from_numpy(g).to(x.dtype)

    return grad_fn


def _to(x, backend):
    return x.copy() if backend == "numpy" else torch.tensor(x)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_same_minimiser_as_scipy(name, backend):
    p = PROBLEMS[name]
    ref = _scipy(p)
    x0 = _to(p.x0, backend)
    bounds = (_to(p.lower, backend), _to(p.upper, backend))
    r = fnopt.fixed_point(fnopt.lbfgsb(bounds=bounds), x0, _grad_fn(p, backend),
                          stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(1000))
    x = np.asarray(r.params)
    assert r.converged, r.message
    assert np.all(p.lower <= x) and np.all(x <= p.upper)  # feasible, exactly
    assert np.abs(x - ref.x).max() <= 1e-5 * max(1.0, np.abs(ref.x).max())
    assert r.value <= ref.fun + 1e-10 * max(1.0, abs(ref.fun))
    # the state's gradient norms are the projected gradient's at the result
    g = p.loss(x)[1]
    pg = np.clip(x - g, p.lower, p.upper) - x
    assert float(r.state.grad_norm) == pytest.approx(np.linalg.norm(pg), rel=1e-9, abs=1e-300)
    assert float(r.state.pg_max) == pytest.approx(np.abs(pg).max(), rel=1e-9, abs=1e-300)


def test_evaluation_counts_track_scipys():
    # same tests, same constants: the counts should be in the same range as scipy's
    for p in bench.PROBLEMS:
        f, s = bench.solve_fnopt(p), bench.solve_scipy(p)
        assert f.success and s.success
        assert f.nfev <= 1.5 * s.nfev + 3, (p.name, f.nfev, s.nfev)


def test_compact_form_matches_the_bfgs_recursion():
    rng = np.random.default_rng(1)
    n, k, theta = 6, 4, 2.5
    a = rng.standard_normal((n, n))
    h = a @ a.T + n * np.eye(n)  # pairs from a convex quadratic: y = H s
    s = rng.standard_normal((k, n))
    y = s @ h
    b = theta * np.eye(n)
    for si, yi in zip(s, y):
        bs = b @ si
        b = b - np.outer(bs, bs) / (si @ bs) + np.outer(yi, yi) / (yi @ si)
    wt, m = L._compact(s, y, theta)
    np.testing.assert_allclose(theta * np.eye(n) - wt.T @ m @ wt, b, rtol=1e-10, atol=1e-10)


def _model(x, g, b):
    return lambda z: g @ (z - x) + 0.5 * (z - x) @ b @ (z - x)


def test_cauchy_point_is_the_first_minimiser_along_the_projected_path():
    rng = np.random.default_rng(2)
    n, k, theta = 8, 3, 1.7
    a = rng.standard_normal((n, n))
    h = a @ a.T + np.eye(n)
    s = rng.standard_normal((k, n))
    wt, m = L._compact(s, s @ h, theta)
    b = theta * np.eye(n) - wt.T @ m @ wt
    lo, hi = -np.ones(n), np.ones(n)
    x = rng.uniform(-1, 1, n)
    x[0], x[1] = -1.0, 1.0  # two variables start on a bound
    g = 3.0 * rng.standard_normal(n)
    xc, c = L._cauchy_point(x, g, lo, hi, wt, m, theta)
    np.testing.assert_allclose(c, wt @ (xc - x), atol=1e-12)
    # brute force: the model along t -> P(x - t g) on a fine grid, first local minimum
    q = _model(x, g, b)
    ts = np.linspace(0, 5, 200001)
    vals = np.array([q(np.clip(x - t * g, lo, hi)) for t in ts[::10]])
    i = int(np.argmax(np.diff(vals) > 0)) if np.any(np.diff(vals) > 0) else len(vals) - 1
    t_star = ts[::10][i]
    np.testing.assert_allclose(xc, np.clip(x - t_star * g, lo, hi), atol=1e-3)
    assert q(xc) <= vals[i] + 1e-9


def test_subspace_step_lowers_the_model_and_stays_feasible():
    rng = np.random.default_rng(3)
    n, theta = 10, 1.3
    a = rng.standard_normal((n, n))
    h = a @ a.T + np.eye(n)
    s = rng.standard_normal((4, n))
    wt, m = L._compact(s, s @ h, theta)
    b = theta * np.eye(n) - wt.T @ m @ wt
    lo, hi = -0.5 * np.ones(n), np.ones(n)
    x = rng.uniform(-0.5, 1, n)
    g = rng.standard_normal(n)
    xc, c = L._cauchy_point(x, g, lo, hi, wt, m, theta)
    xbar = L._subspace_min(x, g, lo, hi, xc, c, wt, m, theta)
    q = _model(x, g, b)
    assert np.all(lo <= xbar) and np.all(xbar <= hi)
    assert q(xbar) <= q(xc) + 1e-12
    assert g @ (xbar - x) < 0
    # without active bounds it is the Newton step of the model: x - B^{-1} g
    wide = 1e6 * np.ones(n)
    xc, c = L._cauchy_point(x, g, -wide, wide, wt, m, theta)
    xbar = L._subspace_min(x, g, -wide, wide, xc, c, wt, m, theta)
    np.testing.assert_allclose(xbar, x - np.linalg.solve(b, g), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pytree_params_float32_and_purity(backend):
    def conv(a):
        return np.asarray(a, np.float32) if backend == "numpy" else torch.tensor(
            a, dtype=torch.float32)

    params = {"a": conv([3.0, -4.0]), "b": conv([0.0])}
    c = {"a": conv([2.0, -1.0]), "b": conv([5.0])}

    def grad_fn(p):
        da, db = p["a"] - c["a"], p["b"] - c["b"]
        return (da * da).sum() + (db * db).sum(), {"a": 2 * da, "b": 2 * db}

    snap = snapshot(params)
    opt = fnopt.lbfgsb(bounds=fnopt.projections.box({"a": -1.0, "b": 0.0},
                                                    {"a": 1.0, "b": 1.0}))
    r = fnopt.fixed_point(opt, params, grad_fn,
                          stop=fnopt.stop.grad_norm_below(1e-6) | fnopt.stop.max_iters(50))
    assert_same_tree(params, snap)
    assert r.converged
    assert str(r.params["a"].dtype).endswith("float32")
    np.testing.assert_allclose(np.asarray(r.params["a"]), [1.0, -1.0])
    assert float(r.params["b"][0]) == 1.0
    # resuming from the state works (the state keeps its structure)
    r2 = fnopt.fixed_point(opt, r.params, grad_fn, r.state, stop=fnopt.stop.max_iters(1))
    assert r2.iterations == 1


def test_lbfgs_with_bounds_is_lbfgsb():
    p = PROBLEMS["rosenbrock 10-d in [-2, 0.8]"]
    stop = fnopt.stop.grad_norm_below(1e-6) | fnopt.stop.max_iters(200)
    a = fnopt.fixed_point(fnopt.lbfgs(bounds=(p.lower, p.upper)), p.x0, p.loss, stop=stop)
    b = fnopt.fixed_point(fnopt.lbfgsb(bounds=(p.lower, p.upper)), p.x0, p.loss, stop=stop)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.n_evals == b.n_evals and type(a.state) is L.LbfgsbState


def test_start_at_a_stationary_point_returns_it():
    # minimum of (x - 2)^2 over [0, 1] is 1; starting there the step changes nothing
    def grad_fn(x):
        return ((x - 2.0) ** 2).sum(), 2.0 * (x - 2.0)

    r = fnopt.fixed_point(fnopt.lbfgsb(bounds=(0.0, 1.0)), np.ones(3), grad_fn,
                          stop=fnopt.stop.grad_norm_below(0.0) | fnopt.stop.max_iters(5))
    assert r.converged and r.iterations == 1 and r.n_evals == 1
    np.testing.assert_array_equal(r.params, np.ones(3))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="memory_size"):
        fnopt.lbfgsb(memory_size=0)
    with pytest.raises(TypeError, match="memory_size"):
        fnopt.lbfgsb(memory_size=2.0)
    with pytest.raises(TypeError, match="bounds: L-BFGS-B needs a box"):
        fnopt.lbfgsb(bounds=fnopt.projections.l2_ball(1.0))
    with pytest.raises(TypeError, match="bounds"):
        fnopt.lbfgsb(bounds="0..1")
    with pytest.raises(ValueError, match="lower, upper: lower > upper"):
        fnopt.lbfgsb(bounds=(np.array([0.0, 2.0]), np.array([1.0, 1.0])))
    opt = fnopt.lbfgsb(bounds=(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match="lower: leaf <root> has shape \\(2,\\)"):
        opt.init(np.zeros(3))
    with pytest.raises(TypeError, match="search"):
        fnopt.lbfgsb(search=1.0)


def test_a_failed_search_is_a_named_stop():
    # a gradient that points the wrong way: no step can lower the loss
    def grad_fn(x):
        return (x * x).sum(), -2.0 * x

    r = fnopt.fixed_point(fnopt.lbfgsb(bounds=(-5.0, 5.0)), np.array([1.0, 2.0]), grad_fn,
                          stop=fnopt.stop.max_iters(10))
    assert r.reason == "line_search_failed"
    np.testing.assert_array_equal(r.params, [1.0, 2.0])


def test_smoke_bench_bounds_prints_its_table():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_bounds.py"),
                          "--markdown"], capture_output=True, text=True, timeout=300,
                         cwd=root, check=True).stdout
    assert "| problem | n | nit fnopt / scipy | nfev fnopt / scipy |" in out
    assert "| method | jac |" in out
    assert out.count("| yes |") == len(bench.PROBLEMS) + 5
