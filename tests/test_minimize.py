"""fnopt.minimize against scipy.optimize.minimize: the scipy docs' examples rewritten,
the argument forms (jac, bounds, x0 pytrees, args, callback, options) on both backends,
and named errors for bad inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

import fnopt

torch = pytest.importorskip("torch")

X0 = [1.3, 0.7, 0.8, 1.9, 1.2]  # the scipy tutorial's start


def _close(a, b, tol=1e-4):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               atol=tol, rtol=tol)


@pytest.mark.parametrize("method, kw", [
    ("BFGS", {"jac": rosen_der, "options": {"gtol": 1e-6}}),
    ("BFGS", {}),
    ("L-BFGS-B", {"jac": rosen_der}),
    ("L-BFGS-B", {}),
    ("CG", {"jac": rosen_der}),
    ("Newton-CG", {"jac": rosen_der, "hess": rosen_hess, "options": {"xtol": 1e-8}}),
    ("Newton-CG", {"jac": rosen_der, "hessp": rosen_hess_prod, "options": {"xtol": 1e-8}}),
])
def test_scipy_tutorial_rosenbrock(method, kw):
    ref = so.minimize(rosen, X0, method=method, **kw)
    res = fnopt.minimize(rosen, X0, method=method, **kw)
    assert ref.success and res.success, res.message
    assert res.status == 0
    _close(res.x, ref.x, 1e-3)
    assert res.fun <= ref.fun + 1e-8
    assert isinstance(res.x, np.ndarray) and res.x.shape == (5,)
    assert res.nfev >= res.nit and res.njev >= 1
    if method == "Newton-CG":
        assert res.nhev >= res.nit


def test_scipy_tutorial_bounded_example():
    # the tutorial's constrained example, with its bounds only: min (x-1)^2 + (y-2.5)^2
    # over x, y >= 0 ... and a bound that binds
    def fun(x):
        return (x[0] - 1) ** 2 + (x[1] - 2.5) ** 2

    bnds = ((0, None), (0, 2.0))
    ref = so.minimize(fun, (2, 0), method="L-BFGS-B", bounds=bnds)
    res = fnopt.minimize(fun, (2, 0), method="L-BFGS-B", bounds=bnds)
    assert res.success and res.message == ref.message
    _close(res.x, ref.x, 1e-6)
    _close(res.x, [1.0, 2.0], 1e-6)
    # no method given: with bounds it is L-BFGS-B, as in scipy
    _close(fnopt.minimize(fun, (2, 0), bounds=bnds).x, [1.0, 2.0], 1e-6)


@pytest.mark.parametrize("jac_form", ["callable", "true", "none"])
def test_jac_forms_and_args(jac_form):
    def f(x, a, b):
        return float(((x - a) ** 2 * b).sum())

    def g(x, a, b):
        return 2 * (x - a) * b

    a, b = np.array([3.0, -1.0, 0.5]), np.array([1.0, 2.0, 4.0])
    fun, jac = {"callable": (f, g), "true": (lambda x, a, b: (f(x, a, b), g(x, a, b)), True),
                "none": (f, None)}[jac_form]
    bounds = [(None, 1.0), (0.0, None), (None, None)]
    ref = so.minimize(fun, np.zeros(3), args=(a, b), jac=jac, method="L-BFGS-B", bounds=bounds)
    res = fnopt.minimize(fun, np.zeros(3), args=(a, b), jac=jac, method="L-BFGS-B",
                         bounds=bounds)
    _close(res.x, [1.0, 0.0, 0.5], 1e-5)
    _close(res.x, ref.x, 1e-5)
    if jac_form == "none":  # scipy's forward differences: n + 1 calls of fun per gradient
        assert res.nfev == 4 * res.njev
        assert (res.nfev, res.nit) == (ref.nfev, ref.nit)
    else:
        assert res.nfev == res.njev


def test_torch_pytree_x0_with_torch_func_gradient():
    c = {"w": torch.tensor([[2.0, -2.0], [0.5, 3.0]], dtype=torch.float64),
         "b": torch.tensor(-4.0, dtype=torch.float64)}

    def fun(p):
        return ((p["w"] - c["w"]) ** 2).sum() + (p["b"] - c["b"]) ** 2

    x0 = {"w": torch.zeros(2, 2, dtype=torch.float64), "b": torch.zeros((), dtype=torch.float64)}
    res = fnopt.minimize(fun, x0, bounds=fnopt.projections.box(-1.0, 1.0))
    assert res.success
    assert isinstance(res.x["w"], torch.Tensor) and res.x["w"].dtype == torch.float64
    _close(res.x["w"], [[1.0, -1.0], [0.5, 1.0]], 1e-6)
    _close(res.x["b"], -1.0, 1e-6)
    assert set(res.jac) == {"w", "b"}
    # the same problem flattened through scipy
    flat = np.concatenate([c["w"].numpy().ravel(), [c["b"].item()]])
    ref = so.minimize(lambda v: ((v - flat) ** 2).sum(), np.zeros(5), bounds=[(-1, 1)] * 5)
    assert res.fun == pytest.approx(ref.fun, abs=1e-8)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_bounds_forms_agree(backend):
    def conv(a):
        return np.asarray(a, dtype=float) if backend == "numpy" else torch.tensor(
            a, dtype=torch.float64)

    def fun(x):
        return ((x - conv([2.0, -2.0, 0.3])) ** 2).sum()

    def jac(x):
        return 2 * (x - conv([2.0, -2.0, 0.3]))

    lo, hi = [0.0, -1.0, -np.inf], [1.0, np.inf, np.inf]
    forms = [
        list(zip([0.0, -1.0, None], [1.0, None, None])),
        so.Bounds(lo, hi),
        fnopt.projections.box(conv(lo), conv(hi)),
        (conv(lo), conv(hi)),
    ]
    for bounds in forms:
        res = fnopt.minimize(fun, conv([0.5, 0.5, 0.5]), jac=jac, bounds=bounds)
        assert res.success
        _close(res.x, [1.0, -1.0, 0.3], 1e-7)


@pytest.mark.parametrize("method", ["Newton-CG", "CG", "BFGS"])
def test_torch_methods_differentiate_fun_themselves(method):
    def fun(x):
        return ((x[1:] - x[:-1] ** 2) ** 2).sum() * 100 + ((1 - x[:-1]) ** 2).sum()

    res = fnopt.minimize(fun, torch.tensor(X0, dtype=torch.float64), method=method)
    ref = so.minimize(rosen, X0, jac=rosen_der, method=method)
    assert res.success, res.message
    _close(res.x.numpy(), ref.x, 1e-3)


def test_callback_styles_and_stop_iteration():
    seen = []
    res = fnopt.minimize(rosen, X0, jac=rosen_der, method="L-BFGS-B",
                         callback=lambda xk: seen.append(xk.copy()))
    assert len(seen) == res.nit
    _close(seen[-1], res.x, 0)
    got = []

    def new_style(intermediate_result):
        got.append(intermediate_result.fun)
        if len(got) == 3:
            raise StopIteration

    res = fnopt.minimize(rosen, X0, jac=rosen_der, method="BFGS", callback=new_style)
    assert res.status == 99 and not res.success and res.nit == 3
    assert res.message == "`callback` raised `StopIteration`."


def test_limits_and_result_mapping():
    ref = so.minimize(rosen, X0, jac=rosen_der, method="L-BFGS-B", options={"maxiter": 5})
    res = fnopt.minimize(rosen, X0, jac=rosen_der, method="L-BFGS-B", options={"maxiter": 5})
    assert (res.status, res.nit, res.success) == (ref.status, 5, False)
    assert res.message == "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
    res = fnopt.minimize(rosen, X0, jac=rosen_der, method="L-BFGS-B", options={"maxfun": 8})
    assert res.status == 1 and res.nfev >= 8 and "EVALUATIONS" in res.message
    res = fnopt.minimize(rosen, X0, jac=rosen_der, method="BFGS", options={"maxiter": 4})
    assert res.status == 1 and res.message == "Maximum number of iterations has been exceeded."
    assert res["x"] is res.x and res.keys()[:4] == ["x", "fun", "jac", "nit"]
    assert res.hess_inv.shape == (5, 5) and "hess_inv" in res  # BFGS: the matrix
    with pytest.raises(KeyError):  # CG has none, as in scipy
        fnopt.minimize(rosen, X0, jac=rosen_der, method="CG", options={"maxiter": 2})["hess_inv"]
    res = fnopt.minimize(rosen, X0, jac=rosen_der, method="lbfgs", tol=1e-10)
    assert res.success and float(np.abs(res.x - 1).max()) < 1e-5


def test_fun_errors_propagate_as_they_are():
    def fun(x):
        raise ZeroDivisionError("inside fun")

    with pytest.raises(ZeroDivisionError, match="inside fun"):
        fnopt.minimize(fun, X0, jac=rosen_der)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="bounds: lower > upper for element 1"):
        fnopt.minimize(rosen, [0.0, 0.0], bounds=[(0, 1), (2, 1)])
    with pytest.raises(ValueError, match=r"bounds: expected 2 \(lower, upper\) pairs.*got 3"):
        fnopt.minimize(rosen, [0.0, 0.0], bounds=[(0, 1)] * 3)
    with pytest.raises(ValueError, match="bounds: lb and ub"):
        fnopt.minimize(rosen, [0.0, 0.0], bounds=so.Bounds([0, 0, 0], [1, 1, 1]))
    with pytest.raises(ValueError, match="lower, upper: lower > upper"):
        fnopt.minimize(rosen, np.zeros(2), bounds=(np.ones(2), np.zeros(2)))
    with pytest.raises(ValueError, match="method"):
        fnopt.minimize(rosen, X0, method="Nelder-Mead")
    with pytest.raises(ValueError, match="constraints"):
        fnopt.minimize(rosen, X0, constraints=[{"type": "equal", "fun": rosen}])
    with pytest.raises(TypeError, match="x0"):
        fnopt.minimize(rosen, "abc")
    with pytest.raises(ValueError, match="jac"):
        fnopt.minimize(rosen, X0, jac="cs")
    with pytest.raises(ValueError, match="hess: trust-ncg needs"):
        fnopt.minimize(rosen, X0, jac=rosen_der, method="trust-ncg")
    with pytest.raises(ValueError, match="jac: returned 3 values"):
        fnopt.minimize(rosen, X0, jac=lambda x: np.zeros(3))
    with pytest.raises(ValueError, match="tol"):
        fnopt.minimize(rosen, X0, tol=-1.0)
    with pytest.warns(fnopt.OptimizeWarning, match="Unknown solver options: bogus"):
        fnopt.minimize(rosen, X0, jac=rosen_der, options={"gtol": 1e-5, "bogus": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="Method bfgs cannot handle bounds"):
            fnopt.minimize(rosen, X0, method="BFGS", bounds=[(0, 1)] * 5)


def test_x0_is_not_modified_and_integers_are_cast():
    x0 = np.array([3, -2])
    res = fnopt.minimize(lambda x: float((x ** 2).sum()), x0, jac=lambda x: 2 * x)
    np.testing.assert_array_equal(x0, [3, -2])
    assert res.x.dtype == np.float64
    _close(res.x, [0.0, 0.0], 1e-6)
