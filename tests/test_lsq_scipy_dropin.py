"""fnopt.least_squares / fnopt.curve_fit as drop-ins for scipy's: the cases issue 22 and
item 10 of issue 19 list (user functions that write into x, one-element residuals,
finite-difference steps inside the bounds, float32 residuals, curve_fit with jac and
sigma on lists, unidentifiable parameters, refusals naming the argument) and the robust
fits of scipy's robust-regression tutorial, each against scipy itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fnopt
from fnopt._lsq_api import OptimizeWarning

so = pytest.importorskip("scipy.optimize")


def _rosen(x):
    return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])


def _rosen_jac(x):
    return np.array([[-20 * x[0], 10.0], [-1.0, 0.0]])


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
@pytest.mark.parametrize("jac", ["2-point", "3-point", "cs", "callable"])
def test_fun_and_jac_writing_into_x_change_nothing(method, jac):
    def fun(x):
        r = _rosen(x)
        x[:] = 1e3  # a careless user function
        return r

    def jac_fn(x):
        j = _rosen_jac(x)
        x *= -7.0
        return j

    j = jac_fn if jac == "callable" else jac
    clean = fnopt.least_squares(_rosen, np.array([-1.2, 1.0]),
                                jac=_rosen_jac if jac == "callable" else jac, method=method)
    x0 = np.array([-1.2, 1.0])
    dirty = fnopt.least_squares(fun, x0, jac=j, method=method)
    np.testing.assert_array_equal(dirty.x, clean.x)
    assert dirty.nfev == clean.nfev
    np.testing.assert_array_equal(x0, [-1.2, 1.0])  # the caller's x0 untouched


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
def test_one_element_residuals_and_1d_jacobian_as_scipy(method):
    fun = lambda x: np.array([(x[0] - 3.0) ** 2 + 1.0])  # noqa: E731
    jac = lambda x: np.array([2 * (x[0] - 3.0)])  # noqa: E731  shape (1,)
    a = fnopt.least_squares(fun, 1.0, jac=jac, method=method)
    b = so.least_squares(fun, 1.0, jac=jac, method=method)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-10)
    assert (a.nfev, a.status) == (b.nfev, b.status)
    assert a.jac.shape == (1, 1)


@pytest.mark.parametrize("method", ["trf", "dogbox"])
@pytest.mark.parametrize("jac", ["2-point", "3-point"])
def test_finite_difference_points_stay_inside_the_bounds(method, jac):
    lb, ub = np.array([1.0, -np.inf]), np.array([1.0 + 1e-9, 0.5])
    seen = []

    def fun(x):
        seen.append(x.copy())
        return np.array([x[0] - 3.0, x[1] - 2.0, x[0] * x[1]])

    x0 = np.array([1.0, 0.5]) if method == "dogbox" else np.array([1.0 + 5e-10, 0.2])
    res = fnopt.least_squares(fun, x0, jac=jac, bounds=(lb, ub), method=method)
    pts = np.array(seen)
    assert np.all(pts >= lb) and np.all(pts <= ub)
    ref = so.least_squares(fun, x0, jac=jac, bounds=(lb, ub), method=method)
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-7, atol=1e-12)


def test_equal_bounds_are_refused_as_scipy():
    with pytest.raises(ValueError, match="bounds: each lower bound must be strictly less"):
        fnopt.least_squares(_rosen, [2.0, 1.0], bounds=([2.0, 0.0], [2.0, 3.0]))


def test_float32_residuals_gh12991():
    rng = np.random.default_rng(1978)
    x = np.linspace(0, 1, 100, dtype=np.float32)
    y = rng.random(size=100, dtype=np.float32)

    def err(p, x, y):
        return ((p[0] + p[1] * x).astype(np.float32) - y).astype(np.float32)

    res = fnopt.least_squares(err, [-1.0, -1.0], args=(x, y))
    ref = so.least_squares(err, [-1.0, -1.0], args=(x, y))
    assert res.nfev > 2 and res.success
    np.testing.assert_allclose(res.x, [0.546, -0.050], atol=2e-3)
    np.testing.assert_allclose(res.x, ref.x, atol=9e-5)


def test_defaults_and_refusals_follow_scipy():
    assert fnopt.least_squares(_rosen, [-1.2, 1.0]).nfev == so.least_squares(
        _rosen, [-1.2, 1.0]).nfev  # trf, 2-point: the same path
    cases = [
        (dict(method="lm", bounds=(0, 2)), "bounds: method='lm'"),
        (dict(method="lm", x0=[1.0, 2.0, 3.0]), "method: 'lm' needs at least as many"),
        (dict(x0=np.ones((2, 1))), "x0: must have at most 1 dimension"),
        (dict(x0=[1.0 + 1j, 2.0]), "x0: must be real"),
        (dict(ftol=None, xtol=None, gtol=None), "at least one must be above"),
        (dict(method="lm", gtol=None), "method='lm' needs all three"),
        (dict(tr_solver="best"), "tr_solver"),
        (dict(x_scale="auto"), "x_scale"),
        (dict(max_nfev=0), "max_nfev"),
        (dict(verbose=3), "verbose"),
    ]
    for kw, msg in cases:
        x0 = kw.pop("x0", [-1.2, 1.0])
        with pytest.raises(ValueError, match=msg):
            fnopt.least_squares(_rosen, x0, **kw)
    with pytest.raises(TypeError, match="tr_options"):
        fnopt.least_squares(_rosen, [-1.2, 1.0], tr_solver="lsmr", tr_options={"tol": 1})


def test_robust_regression_tutorial_matches_scipy():
    # scipy's robust nonlinear regression example (the least_squares docstring):
    # y = a + b exp(c t) with noise 0.1 and 3 outliers (noise times 10)
    t = np.linspace(0, 10, 15)
    rng = np.random.default_rng(0)
    error = 0.1 * rng.standard_normal(t.size)
    error[rng.integers(0, t.size, 3)] *= 10
    y = 0.5 + 2.0 * np.exp(-1.0 * t) + error
    fun = lambda x: x[0] + x[1] * np.exp(x[2] * t) - y  # noqa: E731
    x0 = np.array([1.0, 1.0, 0.0])
    for method in ("trf", "dogbox"):
        for loss in ("soft_l1", "huber", "cauchy", "arctan"):
            a = fnopt.least_squares(fun, x0, loss=loss, f_scale=0.1, method=method)
            b = so.least_squares(fun, x0, loss=loss, f_scale=0.1, method=method)
            np.testing.assert_allclose(a.x, b.x, rtol=1e-6, atol=1e-8)
            assert a.cost == pytest.approx(b.cost, rel=1e-8)
            np.testing.assert_allclose(a.grad, b.grad, atol=1e-6)
    lin = fnopt.least_squares(fun, x0)
    rob = fnopt.least_squares(fun, x0, loss="soft_l1", f_scale=0.1)
    assert abs(rob.x[0] - 0.5) < abs(lin.x[0] - 0.5)


def test_callback_stops_with_status_minus_two():
    seen = []

    def cb(intermediate_result):
        seen.append((intermediate_result.nit, intermediate_result.cost))
        if intermediate_result.nit == 3:
            raise StopIteration

    res = fnopt.least_squares(_rosen, [-1.2, 1.0], callback=cb)
    assert res.status == -2 and not res.success and res.nit == 3
    assert [n for n, _ in seen] == [1, 2, 3]


def test_curve_fit_jac_and_sigma_with_lists():
    x = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    y = [2.0, 1.2, 0.75, 0.44, 0.27, 0.17]
    sigma = [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    f = lambda x, a, b: a * np.exp(-b * x)  # noqa: E731

    def jac(x, a, b):
        e = np.exp(-b * np.asarray(x))
        return np.stack([e, -a * np.asarray(x) * e], 1)

    for method in ("lm", "trf", "dogbox"):
        pa, ca = fnopt.curve_fit(f, x, y, sigma=sigma, jac=jac, method=method)
        pb, cb = so.curve_fit(f, x, y, sigma=sigma, jac=jac, method=method)
        np.testing.assert_allclose(pa, pb, rtol=1e-7)
        np.testing.assert_allclose(ca, cb, rtol=1e-5)


def test_curve_fit_unidentifiable_parameter_warns_and_is_inf():
    x = np.arange(6.0)
    y = np.array([0.1, 1.1, 1.9, 3.2, 3.9, 5.1])
    with pytest.warns(OptimizeWarning, match="Covariance of the parameters could not be"):
        _, pcov = fnopt.curve_fit(lambda x, a, b: a * x, x, y)
    assert np.all(np.isinf(pcov))


def test_curve_fit_refuses_inf_and_names_its_arguments():
    f = lambda x, a, b: a * x + b  # noqa: E731
    with pytest.raises(ValueError, match="xdata: array must not contain infs or NaNs"):
        fnopt.curve_fit(f, [1.0, np.inf, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="ydata: array must not contain infs or NaNs"):
        fnopt.curve_fit(f, [1.0, 2.0, 3.0], [1.0, np.nan, 3.0])
    with pytest.raises(TypeError, match=r"curve_fit\(\) got an unexpected keyword"):
        fnopt.curve_fit(f, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], full_outptu=True)
    with pytest.raises(ValueError, match="sigma: has incorrect shape"):
        fnopt.curve_fit(f, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], sigma=[1.0, 2.0])
    with pytest.raises(ValueError, match="nan_policy"):
        fnopt.curve_fit(f, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], nan_policy="drop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _p, _c, info, mesg, ier = fnopt.curve_fit(f, [1.0, 2.0, 3.0], [1.0, 2.0, 3.1],
                                                full_output=True)
    assert ier in (1, 2, 3, 4) and isinstance(mesg, str) and set(info) >= {"nfev", "fvec"}


def test_torch_x0_still_runs_with_robust_loss():
    torch = pytest.importorskip("torch")
    t = torch.linspace(0, 1, 20, dtype=torch.float64)
    y = 2.0 * torch.exp(-1.5 * t)
    res = fnopt.least_squares(lambda p: p[0] * torch.exp(-p[1] * t) - y,
                              torch.tensor([1.0, 1.0], dtype=torch.float64), loss="huber")
    assert torch.is_tensor(res.x)
    np.testing.assert_allclose(res.x.numpy(), [2.0, 1.5], rtol=1e-6)


def test_bad_outputs_of_fun_and_jac_name_them():
    for fun in (lambda x: None, lambda x: x + 1j, lambda x: ["a"]):
        with pytest.raises(TypeError, match="fun: must return real numbers"):
            fnopt.least_squares(fun, [1.0])
    with pytest.raises(TypeError, match="jac: must return a real"):
        fnopt.least_squares(lambda x: x, [1.0], jac=lambda x: "ab")
    with pytest.raises(ValueError, match="fun: must return at most 1-d"):
        fnopt.least_squares(lambda x: np.ones((2, 2)) * x[0], [1.0])


@pytest.mark.parametrize("jac", ["2-point", "3-point", "cs"])
def test_jac_sparsity_groups_columns_and_matches_scipy(jac):
    sparse = pytest.importorskip("scipy.sparse")
    n = 30

    def fun(x):
        f = (3 - x) * x + 1
        f[1:] -= x[:-1]
        f[:-1] -= 2 * x[1:]
        return f

    pattern = sparse.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(n, n))
    calls = []
    counted = lambda x: calls.append(1) or fun(x)  # noqa: E731
    res = fnopt.least_squares(counted, -np.ones(n), jac=jac, jac_sparsity=pattern)
    ref = so.least_squares(fun, -np.ones(n), jac=jac, jac_sparsity=pattern)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-10)
    per_jacobian = 3 if jac == "2-point" else 6  # 3 groups of columns, not n
    assert len(calls) <= res.nfev + res.njev * per_jacobian
