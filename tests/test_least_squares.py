"""Least squares: residual providers, Gauss–Newton / Levenberg–Marquardt / reflective
trust region, fnopt.least_squares and fnopt.curve_fit against scipy.optimize, the MGH
least-squares set, bad inputs, and the NIST Misra1a certified values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fnopt
from fnopt import lsq_problems

torch = pytest.importorskip("torch")
so = pytest.importorskip("scipy.optimize")

PROBLEMS = lsq_problems.PROBLEMS


def _scipy(p, method, scale=1.0, **kw):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return so.least_squares(p.residuals, p.start(scale), jac=p.jacobian, method=method,
                                **kw)


def _fnopt(p, method, scale=1.0, **kw):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fnopt.least_squares(p.residuals, p.start(scale), jac=p.jacobian,
                                   method=method, **kw)


# -- residual providers -------------------------------------------------------------------


def _pytree_residuals(p):
    """Residuals of a dict of params, returned as a dict (both backends)."""
    w, b = p["w"], p["b"]
    lib = torch if fnopt.backend.is_tensor(w) else np
    return {"sq": w**2 - b[0], "mix": lib.sin(w[:, 0] * b[0]) + w[:, 1]}


def _pytree_jac(p):
    w, b = p["w"], p["b"]  # flattened params: b (1), then w (2x2, C order); residuals mix, sq
    jac = np.zeros((6, 5))
    c = np.cos(w[:, 0] * b[0])
    jac[0, 0], jac[1, 0] = c[0] * w[0, 0], c[1] * w[1, 0]
    jac[0, 1], jac[0, 2] = c[0] * b[0], 1.0
    jac[1, 3], jac[1, 4] = c[1] * b[0], 1.0
    jac[2:, 0] = -1.0
    jac[2:, 1:] = np.diag(2.0 * w.reshape(-1))
    return jac


def _pytree_params(backend):
    p = {"w": np.array([[0.3, -1.2], [0.7, 2.0]]), "b": np.array([0.5])}
    return fnopt.to_torch(p) if backend == "torch" else p


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_every_provider_gives_the_same_jacobian_over_flattened_pytrees(backend):
    params = _pytree_params(backend)
    ref = _pytree_jac(fnopt.to_numpy(params))
    providers = [
        fnopt.grad.residuals_finite_differences(_pytree_residuals, method="3-point"),
        fnopt.grad.residuals_finite_differences(_pytree_residuals),
    ]
    if backend == "numpy":
        providers.append(fnopt.grad.residuals_from_functions(_pytree_residuals, _pytree_jac))
    else:
        providers += [fnopt.grad.residuals_torch(_pytree_residuals),
                      fnopt.grad.residuals_torch(_pytree_residuals, mode="fwd")]
    for prov in providers:
        r, jac = prov(params)
        assert tuple(r.shape) == (6,) and tuple(jac.shape) == (6, 5)
        assert fnopt.backend.is_tensor(jac) == (backend == "torch")
        tol = 1e-6 if prov is providers[1] else 1e-9
        np.testing.assert_allclose(fnopt.to_numpy(jac), ref, atol=tol)


def test_torch_provider_is_lazy_and_matrix_free():
    calls = {"n": 0}

    def res(p):
        calls["n"] += 1
        return torch.stack([p[0] * p[1], p[0] - p[1], p[1] ** 2])

    x = torch.tensor([2.0, 3.0], dtype=torch.float64)
    lin = fnopt.grad.residuals_torch(res)(x)
    v, u = torch.tensor([1.0, -1.0], dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    jvp, vjp = lin.jvp(v), lin.vjp(u)
    assert not lin.jacobian_formed
    jac = torch.tensor([[3.0, 2.0], [1.0, -1.0], [0.0, 6.0]], dtype=torch.float64)
    torch.testing.assert_close(jvp, jac @ v)
    torch.testing.assert_close(vjp, u @ jac)
    torch.testing.assert_close(lin.jacobian(), jac)


def test_finite_difference_jvp_and_matrix_free_provider():
    a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    fd = fnopt.grad.residuals_finite_differences(lambda p: a @ p + (p**2).sum())
    x, v = np.array([0.5, -0.2]), np.array([1.0, 2.0])
    lin = fd(x)
    np.testing.assert_allclose(lin.jvp(v), a @ v + 2 * (x @ v), rtol=1e-6)
    assert not lin.jacobian_formed
    np.testing.assert_allclose(lin.jacobian(), a + 2 * x, rtol=1e-6)
    mf = fnopt.grad.residuals_matrix_free(lambda p: a @ p, lambda p, w: a @ w,
                                          lambda p, u: u @ a)
    lin = mf(x)
    np.testing.assert_allclose(lin.vjp(np.ones(3)), [9.0, 12.0])
    assert not lin.jacobian_formed
    np.testing.assert_allclose(lin.jacobian(), a)  # formed from n products


def test_check_jacobian_passes_a_right_one_and_names_the_wrong_entry():
    good = fnopt.grad.residuals_from_functions(_pytree_residuals, _pytree_jac)
    params = _pytree_params("numpy")
    assert fnopt.grad.check_jacobian(good, None, params)

    def bad_jac(p):
        j = _pytree_jac(p)
        j[3, 2] += 0.1
        return j

    report = fnopt.grad.check_jacobian(
        fnopt.grad.residuals_from_functions(_pytree_residuals, bad_jac), None, params)
    assert not report.ok and report.worst_entry == (3, 2)
    assert report.max_abs_error == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize("p", PROBLEMS, ids=lambda p: p.name)
def test_problem_jacobians_match_finite_differences_and_torch(p):
    x = p.start() + 0.01 * np.arange(p.n)
    with np.errstate(all="ignore"):
        assert fnopt.grad.check_jacobian(p.provider(), None, x, rtol=1e-5, atol=1e-6)
    jt = p.provider("torch")(torch.tensor(x)).jacobian().numpy()
    np.testing.assert_allclose(jt, p.jacobian(x), rtol=1e-9, atol=1e-9 * np.abs(jt).max())


def test_wrong_jacobian_shape_is_a_value_error_naming_jac():
    res = fnopt.grad.residuals_from_functions(lambda p: p**2, lambda p: np.eye(3))
    with pytest.raises(ValueError, match=r"jac_fn: expected an \(2, 2\) Jacobian"):
        res(np.ones(2)).jacobian()
    with pytest.raises(ValueError, match="jac"):
        fnopt.least_squares(lambda p: p**2 - 1, np.ones(2) * 3, jac=lambda p: np.eye(3))
    with pytest.raises(ValueError, match="jac"):
        fnopt.least_squares(lambda p: p**2 - 1, np.ones(2) * 3, jac=lambda p: np.ones(2),
                            method="lm")


# -- Gauss-Newton: linear regression in one step ---------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("solver", ["dense", "cg"])
def test_gauss_newton_solves_linear_regression_in_one_step(backend, solver):
    x, y = fnopt.tasks.make_linear_data(n=40, seed=3, backend=backend)
    task = fnopt.tasks.linear_regression(x, y)
    if backend == "numpy":
        design = np.stack([x, np.ones_like(x)], 1)
        res = fnopt.grad.residuals_from_functions(lambda t: task.predict(t, x) - y,
                                                  lambda t: design)
    else:
        res = fnopt.grad.residuals_torch(lambda t: task.predict(t, x) - y)
    opt = fnopt.gauss_newton(solver=solver)
    theta0 = task.init(0)
    theta1, state = opt.step(theta0, res, opt.init(theta0))
    xn, yn = fnopt.to_numpy(x), fnopt.to_numpy(y)
    lstsq = np.linalg.lstsq(np.stack([xn, np.ones_like(xn)], 1), yn, rcond=None)[0]
    np.testing.assert_allclose(fnopt.to_numpy(theta1), lstsq, rtol=1e-9, atol=1e-9)
    assert state.count == 1 and state.n_fev == 1
    assert fnopt.backend.is_tensor(theta1) == (backend == "torch")


def test_gauss_newton_in_fixed_point_stops_at_the_solution():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 4.0]])
    y = np.array([1.0, 2.0, 2.0, 5.0])
    res = fnopt.grad.residuals_from_functions(lambda p: a @ p - y, lambda p: a)
    r = fnopt.fixed_point(fnopt.gauss_newton(), np.zeros(2), res,
                          stop=fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(10))
    assert r.reason == "grad_norm_below" and r.iterations == 1 and r.n_evals == 2
    np.testing.assert_allclose(r.params, np.linalg.lstsq(a, y, rcond=None)[0])


# -- Levenberg-Marquardt and the reflective method inside fixed_point -------------------------


@pytest.mark.parametrize("make", [fnopt.levenberg_marquardt, fnopt.trust_region_reflective])
def test_least_squares_optimizers_in_fixed_point(make):
    p = lsq_problems.by_name("bard")
    x0 = p.start()
    r = fnopt.fixed_point(make(), x0, p.provider(), stop=fnopt.stop.max_iters(500))
    assert r.converged
    assert 2 * r.value == pytest.approx(p.f_min, rel=1e-6)
    assert r.n_evals == r.state.n_fev
    np.testing.assert_array_equal(x0, p.start())  # the caller's start is untouched


def test_levenberg_marquardt_step_is_pure_and_matches_minpack_counts():
    p = lsq_problems.by_name("rosenbrock")
    opt = fnopt.levenberg_marquardt()
    x0 = p.start()
    s0 = opt.init(x0)
    x1, s1 = opt.step(x0, p.provider(), s0)
    x1b, _ = opt.step(x0, p.provider(), s0)
    np.testing.assert_array_equal(x1, x1b)
    np.testing.assert_array_equal(x0, p.start())
    assert s1.count == 1 and s0.count == 0
    a, b = _scipy(p, "lm"), _fnopt(p, "lm")
    assert (b.nfev, b.njev) == (a.nfev, a.njev)


# -- fnopt.least_squares against scipy on the MGH set ----------------------------------------


@pytest.mark.parametrize("method", ["lm", "trf"])
@pytest.mark.parametrize("p", PROBLEMS, ids=lambda p: p.name)
def test_least_squares_solves_what_scipy_solves(p, method):
    for scale in (1.0, 10.0):
        a, b = _scipy(p, method, scale), _fnopt(p, method, scale)
        scipy_ok = a.success and 2 * a.cost <= p.f_min * (1 + 1e-5) + 1e-10
        if scipy_ok:
            assert b.success, (scale, b.message)
            assert 2 * b.cost <= p.f_min * (1 + 1e-5) + 1e-10, scale
            assert b.nfev <= max(1.25 * a.nfev, a.nfev + 3), (scale, b.nfev, a.nfev)
        assert b.fun.shape == (p.m,) and b.jac.shape == (p.m, p.n) and b.grad.shape == (p.n,)


@pytest.mark.parametrize("name", ["rosenbrock", "bard", "osborne1", "kowalik_osborne"])
@pytest.mark.parametrize("method", ["lm", "trf"])
def test_torch_float64_matches_numpy(name, method):
    p = lsq_problems.by_name(name)
    a = _fnopt(p, method)
    b = fnopt.least_squares(p.residuals, p.start(backend="torch"), method=method)
    assert fnopt.backend.is_tensor(b.x) and fnopt.backend.is_tensor(b.jac)
    assert b.success and b.cost == pytest.approx(a.cost, rel=1e-8, abs=1e-20)
    np.testing.assert_allclose(b.x.numpy(), a.x, rtol=1e-6, atol=1e-9)


BOUNDED = [
    ("rosenbrock", ([-np.inf, 1.5], np.inf), [-1.2, 2.0]),
    ("bard", ([0.0, 0.5, 0.0], [0.1, 2.0, 2.0]), [0.05, 1.0, 1.0]),
    ("osborne1", ([0.0, 0.0, -2.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.5, 0.5]),
     [0.5, 1.5, -0.5, 0.01, 0.02]),
    ("box_3d", ([0.0, 5.0, 0.0], [2.0, 9.5, 20.0]), [0.0, 9.0, 20.0]),
    ("meyer", ([0.0, 0.0, 0.0], [1.0, 6000.0, 340.0]), [0.02, 4000.0, 250.0]),
]


@pytest.mark.parametrize("name, bounds, x0", BOUNDED, ids=[b[0] for b in BOUNDED])
def test_bounded_trf_matches_scipy(name, bounds, x0):
    p = lsq_problems.by_name(name)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        a = so.least_squares(p.residuals, np.array(x0, float), jac=p.jacobian, bounds=bounds)
        b = fnopt.least_squares(p.residuals, np.array(x0, float), jac=p.jacobian, bounds=bounds)
    lb, ub = fnopt.lsq.parse_bounds(bounds, np.zeros(p.n))
    assert np.all(b.x >= lb) and np.all(b.x <= ub)
    assert b.success
    assert b.cost <= a.cost * (1 + 1e-6) + 1e-14
    np.testing.assert_array_equal(b.active_mask, a.active_mask)


def test_pytree_x0_and_pytree_bounds():
    params = {"a": np.array([2.0]), "b": np.array([[0.5, 0.5]])}

    def fun(p):
        return {"r1": p["a"] - 3.0, "r2": p["b"].reshape(-1) - np.array([-1.0, 4.0])}

    bounds = ({"a": np.array([0.0]), "b": np.array([[0.0, 0.0]])},
              {"a": np.array([2.5]), "b": np.array([[1.0, 1.0]])})
    res = fnopt.least_squares(fun, params, bounds=bounds)
    assert set(res.x) == {"a", "b"} and res.x["b"].shape == (1, 2)
    np.testing.assert_allclose(res.x["a"], [2.5], atol=1e-6)
    np.testing.assert_allclose(res.x["b"], [[0.0, 1.0]], atol=1e-6)
    assert list(res.active_mask) == [1, -1, 1]
    assert params["a"][0] == 2.0  # not mutated


# -- curve_fit and covariance -------------------------------------------------------------------


def _decay(x, a, b, c):
    return a * np.exp(-b * x) + c


def _docs_like_data():
    # the shape of scipy's curve_fit example, with our own numbers and noise
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 4.0, 60)
    y = _decay(x, 2.5, 1.3, 0.5) + 0.2 * rng.standard_normal(x.size)
    return x, y


@pytest.mark.parametrize("bounds", [(-np.inf, np.inf), (0.0, [3.0, 1.0, 0.5])])
def test_curve_fit_matches_scipy(bounds):
    x, y = _docs_like_data()
    sigma = 0.1 + 0.05 * x
    for kw in ({}, {"sigma": sigma}, {"sigma": sigma, "absolute_sigma": True}):
        pa, ca = so.curve_fit(_decay, x, y, bounds=bounds, **kw)
        pb, cb = fnopt.curve_fit(_decay, x, y, bounds=bounds, **kw)
        np.testing.assert_allclose(pb, pa, rtol=1e-5, atol=1e-7)
        # finite-difference Jacobians (each library its own steps): agree to ~1e-4
        np.testing.assert_allclose(cb, ca, rtol=1e-4, atol=1e-4 * np.abs(ca).max())


def test_curve_fit_torch_data_and_covariance_of_a_result():
    x, y = _docs_like_data()
    pa, ca = so.curve_fit(_decay, x, y)
    pt, ct = fnopt.curve_fit(lambda x, a, b, c: a * torch.exp(-b * x) + c,
                             torch.tensor(x), torch.tensor(y))
    assert fnopt.backend.is_tensor(pt) and fnopt.backend.is_tensor(ct)
    np.testing.assert_allclose(pt.numpy(), pa, rtol=1e-6)
    np.testing.assert_allclose(ct.numpy(), ca, rtol=1e-4)
    res = fnopt.least_squares(lambda p: _decay(x, *p) - y, pa, method="lm")
    np.testing.assert_allclose(res.covariance(), ca, rtol=1e-4)
    np.testing.assert_allclose(res.standard_errors(), np.sqrt(np.diag(ca)), rtol=1e-4)
    np.testing.assert_allclose(fnopt.covariance(res), ca, rtol=1e-4)


def test_nist_misra1a_certified_values():
    d = fnopt.datasets.misra1a()

    def jac(x, b1, b2):
        return np.stack([1 - np.exp(-b2 * x), b1 * x * np.exp(-b2 * x)], 1)

    for start in d.starts:
        popt, pcov = fnopt.curve_fit(lambda x, b1, b2: b1 * (1 - np.exp(-b2 * x)), d.x, d.y,
                                     p0=start, jac=jac)
        np.testing.assert_allclose(popt, d.certified, rtol=1e-7)
        np.testing.assert_allclose(np.sqrt(np.diag(pcov)), d.certified_std, rtol=1e-6)
    res = fnopt.least_squares(lambda b: b[0] * (1 - np.exp(-b[1] * d.x)) - d.y, d.starts[1],
                              method="lm")
    assert 2 * res.cost == pytest.approx(d.certified_rss, rel=1e-8)


# -- bad inputs -----------------------------------------------------------------------------------


def test_residuals_not_finite_at_x0_name_x0():
    for method in ("lm", "trf"):
        with pytest.raises(ValueError, match="x0: the residuals"):
            fnopt.least_squares(lambda p: np.log(p), np.array([-1.0, 2.0]), method=method)


def test_bounds_errors_name_bounds():
    fun = lambda p: p - 1.0  # noqa: E731
    with pytest.raises(ValueError, match="bounds: each lower bound must be strictly less"):
        fnopt.least_squares(fun, np.zeros(2), bounds=([0.0, 2.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match=r"bounds: the lower bounds have shape \(3,\)"):
        fnopt.least_squares(fun, np.zeros(2), bounds=(np.zeros(3), 1.0))
    with pytest.raises(ValueError, match="bounds: expected a"):
        fnopt.least_squares(fun, np.zeros(2), bounds=(0.0,))
    with pytest.raises(ValueError, match="x0: is infeasible"):
        fnopt.least_squares(fun, np.full(2, 5.0), bounds=(-1.0, 1.0))


def test_default_method_is_trf_and_lm_refuses_bounds_as_scipy():
    def fun(x):
        return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])

    with pytest.raises(ValueError, match="bounds: method='lm' does not support bounds"):
        fnopt.least_squares(fun, np.zeros(2), bounds=(-0.5, 0.5), method="lm")
    lm = fnopt.least_squares(fun, np.zeros(2), bounds=(-0.5, 0.5))
    ref = so.least_squares(fun, np.zeros(2), bounds=(-0.5, 0.5), method="trf")
    np.testing.assert_allclose(lm.x, ref.x, rtol=1e-7, atol=1e-9)
    assert lm.cost <= ref.cost * (1 + 1e-9) + 1e-15


def test_option_errors_name_the_argument():
    fun = lambda p: p - 1.0  # noqa: E731
    with pytest.raises(ValueError, match="method"):
        fnopt.least_squares(fun, np.zeros(2), method="simplex")
    with pytest.raises(ValueError, match="ftol"):
        fnopt.least_squares(fun, np.zeros(2), ftol=-1.0)
    with pytest.raises(ValueError, match="loss"):
        fnopt.least_squares(fun, np.zeros(2), loss="hinge")
    with pytest.raises(ValueError, match="loss"):
        fnopt.least_squares(fun, np.zeros(2), loss="huber", method="lm")
    with pytest.raises(ValueError, match="f_scale"):
        fnopt.least_squares(fun, np.zeros(2), loss="huber", f_scale=0.0)
    with pytest.raises(ValueError, match="jac"):
        fnopt.least_squares(fun, np.zeros(2), jac="4-point")
    with pytest.raises(TypeError, match="grad_fn: a least-squares optimizer needs"):
        opt = fnopt.levenberg_marquardt()
        opt.step(np.zeros(2), lambda p: 1.0, opt.init(np.zeros(2)))


def test_scipy_style_call_runs_unchanged():
    # typical scipy code with only the module name changed
    def fun(x, a):
        return np.array([x[0] - a, 10 * (x[1] - x[0] ** 2)])

    for lib in (so, fnopt):
        res = lib.least_squares(fun, [2.0, 2.0], args=(1.5,), method="trf", xtol=1e-10)
        assert res.success and res["x"].shape == (2,)
        np.testing.assert_allclose(res.x, [1.5, 2.25], rtol=1e-7)


def test_smoke_bench_least_squares_prints_its_table():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_least_squares.py"), "--problems",
         "rosenbrock", "bard", "--scales", "1"],
        capture_output=True, text=True, timeout=300, cwd=root, check=True,
    ).stdout
    assert "| problem | start | method | fnopt ok | scipy ok |" in out
    assert "- lm: fnopt solves 2/2" in out and "- trf: fnopt solves 2/2" in out


def test_float32_x0_is_converted_to_float64_as_scipy():
    p = lsq_problems.by_name("bard")
    x0 = p.start().astype(np.float32)
    res = fnopt.least_squares(p.residuals, x0, method="lm")
    assert res.x.dtype == np.float64 and res.success
    assert 2 * res.cost == pytest.approx(p.f_min, rel=1e-4)


# -- the conformance properties of fnopt.testing, on residual problems -------------------------

LSQ_OPTIMIZERS = {
    "gauss_newton": lambda: fnopt.gauss_newton(),
    "levenberg_marquardt": lambda: fnopt.levenberg_marquardt(),
    "levenberg_marquardt_cg": lambda: fnopt.levenberg_marquardt_cg(),
    "trust_region_reflective": lambda: fnopt.trust_region_reflective(),
    "trf_bounded": lambda: fnopt.levenberg_marquardt(bounds=(-5.0, 10.0)),
}


def _trajectory(opt, x0, res, n):
    out = [(x0, opt.init(x0))]
    for _ in range(n):
        try:
            out.append(opt.step(*out[-1][:1], res, out[-1][1]))
        except fnopt.StepFailed:
            break
    return out


@pytest.mark.parametrize("name", sorted(LSQ_OPTIMIZERS))
def test_steps_are_pure_deterministic_and_record_value_and_grad_norm(name):
    p = lsq_problems.by_name("bard")
    res, opt = p.provider(), LSQ_OPTIMIZERS[name]()
    traj = _trajectory(opt, p.start(), res, 4)
    assert len(traj) == 5
    for k in range(1, len(traj)):
        x, s = traj[k - 1]
        xs, ss = x.copy(), [np.copy(v) if isinstance(v, np.ndarray) else v for v in s]
        x1, _ = opt.step(x, res, s)
        x1b, _ = opt.step(x, res, s)
        np.testing.assert_array_equal(x1, x1b)  # deterministic
        np.testing.assert_array_equal(x, xs)  # pure: params and state untouched
        for a, b in zip(s, ss):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
        at = x if opt.value_at == "input" else traj[k][0]
        r, jac = p.residuals(at), p.jacobian(at)
        assert float(traj[k][1].value) == pytest.approx(0.5 * r @ r, rel=1e-12)
        if traj[k][1].jacobian is not None or opt.value_at == "input":
            assert float(traj[k][1].grad_norm) == pytest.approx(np.linalg.norm(jac.T @ r),
                                                                rel=1e-10)
        assert traj[k][1].count == k


@pytest.mark.parametrize("name", sorted(LSQ_OPTIMIZERS))
def test_numpy_and_torch_trajectories_agree_in_float64(name):
    # CGLS amplifies round-off on the badly scaled osborne1: the matrix-free method is
    # compared on the well-scaled bard
    p = lsq_problems.by_name("bard" if name == "levenberg_marquardt_cg" else "osborne1")
    opt = LSQ_OPTIMIZERS[name]()
    tn = _trajectory(opt, p.start(), p.provider(), 5)
    tt = _trajectory(opt, p.start(backend="torch"), p.provider("torch"), 5)
    assert len(tn) == len(tt)
    rtol = 1e-7 if name == "levenberg_marquardt_cg" else 1e-9
    for (xn, sn), (xt, st) in zip(tn, tt):
        assert fnopt.backend.is_tensor(xt)
        np.testing.assert_allclose(xt.numpy(), xn, rtol=rtol, atol=1e-12)
        assert float(st.value) == pytest.approx(float(sn.value), rel=rtol, nan_ok=True)
        assert st.n_fev == sn.n_fev and st.n_jev == sn.n_jev


# -- matrix-free Levenberg-Marquardt ------------------------------------------------------------


@pytest.mark.parametrize("name", ["rosenbrock", "bard", "kowalik_osborne", "osborne2",
                                  "watson_6", "brown_dennis"])
def test_matrix_free_lm_reaches_the_minimum_of_well_scaled_problems(name):
    p = lsq_problems.by_name(name)
    r = fnopt.fixed_point(fnopt.levenberg_marquardt_cg(max_nfev=100 * p.n), p.start(),
                          p.provider(), stop=fnopt.stop.max_iters(1000))
    assert r.converged, r.message
    assert 2 * r.value <= p.f_min * (1 + 1e-5) + 1e-10


def test_matrix_free_lm_on_torch_never_forms_the_jacobian():
    # r_i = x_i^2 + x_{i+1} - c_i plus a small pull to 1: a banded Jacobian, 12 params
    rng = np.random.default_rng(0)
    c = torch.tensor(rng.uniform(1.0, 2.0, 11), dtype=torch.float64)

    def residuals(x):
        return torch.cat([x[:-1] ** 2 + x[1:] - c, 0.1 * (x - 1.0)])

    made = []
    base = fnopt.grad.residuals_torch(residuals)

    def res(x):
        lin = base(x)
        made.append(lin)
        return lin

    x0 = torch.ones(12, dtype=torch.float64)
    r = fnopt.fixed_point(fnopt.levenberg_marquardt_cg(cg_maxiter=12), x0, res,
                          stop=fnopt.stop.max_iters(200))
    assert r.converged and not any(lin.jacobian_formed for lin in made)
    dense = fnopt.least_squares(residuals, x0, method="lm")
    assert float(r.value) == pytest.approx(dense.cost, rel=1e-6)
    np.testing.assert_allclose(r.params.numpy(), dense.x.numpy(), atol=1e-3)
