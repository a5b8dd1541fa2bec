"""fnopt.minimize as a drop-in for scipy.optimize.minimize: issue 22's wrong-or-refused
cases and issue 19 item 10, each compared with what scipy does on the same problem."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize import rosen, rosen_der, rosen_hess

import fnopt


@pytest.mark.parametrize("method", ["BFGS", "CG", "L-BFGS-B", "Newton-CG"])
def test_one_element_outputs_are_scalars(method):
    def fun(x):
        return np.array([((x - 1.0) ** 2).sum()])

    res = fnopt.minimize(fun, [0.0], jac=lambda x: 2 * (x - 1.0), method=method)
    assert res.success and abs(res.x[0] - 1.0) < 1e-6


@pytest.mark.parametrize("method", ["BFGS", "CG", "L-BFGS-B", "Newton-CG", "trust-ncg",
                                    "trust-krylov", "trust-exact"])
def test_user_writing_into_x_cannot_corrupt_the_run(method):
    def fquad(x):  # scipy gh-13740
        x -= np.arange(x.size)
        x *= x
        return np.sum(x)

    def jac(x):
        x *= 2
        x -= 2 * np.arange(x.size)
        return x

    kw = {"jac": jac} if method in ("Newton-CG", "trust-ncg", "trust-krylov",
                                    "trust-exact") else {}
    if method.startswith("trust"):
        kw["hess"] = lambda x: 2.0 * np.eye(x.size)
    x0 = np.ones(5) * 1.5
    res = fnopt.minimize(fquad, x0, method=method, **kw)
    np.testing.assert_allclose(res.x, np.arange(5), atol=2e-4)
    np.testing.assert_array_equal(x0, 1.5)


def test_fixed_variable_stays_exactly_at_its_bound():
    seen = []

    def fun(x):
        seen.append(x[0])
        return float(((x - 3.0) ** 2).sum())

    res = fnopt.minimize(fun, [2.0, 0.0], bounds=[(2, 2), (None, None)])
    assert res.x[0] == 2.0 and set(seen) == {2.0}
    np.testing.assert_allclose(res.x[1], 3.0, atol=1e-6)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_tiny_scale_reports_the_value_as_scipy(method):
    fun = lambda x: 1e-50 * ((x - 1) ** 2).sum()  # noqa: E731
    ref = so.minimize(fun, [0.0, 0.0], method=method)
    res = fnopt.minimize(fun, [0.0, 0.0], method=method)
    assert (res.success, res.nit, res.fun) == (ref.success, ref.nit, ref.fun)
    assert np.isfinite(res.fun)


@pytest.mark.parametrize("jac", [None, lambda x: 2e50 * (x - 1)])
def test_huge_scale_bfgs_reaches_the_minimiser(jac):
    fun = lambda x: 1e50 * ((x - 1) ** 2).sum()  # noqa: E731
    ref = so.minimize(fun, [0.0, 0.0], method="BFGS", jac=jac)  # scipy: 1.6e49 or 1e34
    res = fnopt.minimize(fun, [0.0, 0.0], method="BFGS", jac=jac)
    assert res.success and res.fun <= ref.fun and res.fun < 1e-10 * 1e50
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-7)


def test_default_method_is_scipys():
    res = fnopt.minimize(rosen, [1.3, 0.7], jac=rosen_der)
    assert res.message == "Optimization terminated successfully."  # BFGS
    assert res.hess_inv.shape == (2, 2)
    res = fnopt.minimize(rosen, [1.3, 0.7], jac=rosen_der, bounds=[(0, 2)] * 2)
    assert res.message.startswith("CONVERGENCE")  # L-BFGS-B
    res = fnopt.minimize(rosen, [1.3, 0.7], jac=rosen_der, method="lbfgs")
    assert res.message.startswith("CONVERGENCE")  # fnopt's preference, by name


def test_multidimensional_numpy_x0_is_refused_as_scipy():
    with pytest.raises(ValueError, match="'x0' must only have one dimension"):
        fnopt.minimize(lambda x: float((x ** 2).sum()), np.ones((2, 2)))
    res = fnopt.minimize(lambda p: float((p["a"] ** 2).sum()), {"a": np.ones((2, 2))})
    assert res.x["a"].shape == (2, 2)  # pytrees: fnopt's extension


def test_bad_outputs_and_options_name_the_argument():
    with pytest.raises(TypeError, match="fun: returned None"):
        fnopt.minimize(lambda x: None, [0.0, 0.0])
    with pytest.raises(TypeError, match="fun: returned a complex value"):
        fnopt.minimize(lambda x: complex(x @ x), [1.0, 0.0])
    with pytest.raises(TypeError, match="options\\['maxiter'\\]"):
        fnopt.minimize(rosen, [0.0, 0.0], options={"maxiter": "many"})
    with pytest.raises(ValueError, match="'c1' and 'c2'"):
        fnopt.minimize(rosen, [0.0, 0.0], method="CG", options={"c1": 0.5, "c2": 0.1})
    res = fnopt.minimize(rosen, [0.0, 0.0], options={"maxiter": -1})  # scipy: 0 iterations
    assert (res.nit, res.status) == (0, 1)


def test_unknown_and_ignored_options_warn():
    with pytest.warns(fnopt.OptimizeWarning, match="Unknown solver options: foo"):
        fnopt.minimize(rosen, [0.0, 0.0], options={"foo": 1})
    with pytest.warns(fnopt.OptimizeWarning, match="workers"):
        fnopt.minimize(rosen, [0.0, 0.0], options={"workers": 2})
    res = fnopt.minimize(rosen, [0.0, 0.0], options={"return_all": True})
    assert len(res.allvecs) == res.nit + 1 and np.array_equal(res.allvecs[-1], res.x)
    assert issubclass(fnopt.OptimizeWarning, UserWarning)


def test_bounds_objects_and_hess_inv_operators():
    res = fnopt.minimize(rosen, [0.5, 0.5], jac=rosen_der, bounds=so.Bounds([0, 0], [0.9, 2]))
    ref = so.minimize(rosen, [0.5, 0.5], jac=rosen_der, bounds=so.Bounds([0, 0], [0.9, 2]))
    np.testing.assert_allclose(res.x, ref.x, atol=1e-5)
    h = res.hess_inv
    np.testing.assert_allclose(h.todense() @ np.ones(2), h(np.ones(2)))
    np.testing.assert_allclose(h.todense(), h.todense().T, atol=1e-12)


@pytest.mark.parametrize("method", ["trust-ncg", "trust-krylov", "trust-exact"])
@pytest.mark.parametrize("hess", ["callable", "2-point", "3-point", "bfgs", "sr1"])
def test_trust_methods_with_every_hessian_form(method, hess):
    h = {"callable": rosen_hess, "2-point": "2-point", "3-point": "3-point",
         "bfgs": so.BFGS(), "sr1": so.SR1()}[hess]
    res = fnopt.minimize(rosen, [-1.2, 1.0], jac=rosen_der, hess=h, method=method,
                         options={"maxiter": 2000})
    assert res.success, res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=3e-4)  # gtol 1e-4, as scipy


@pytest.mark.parametrize("hess", ["2-point", "3-point", "bfgs"])
def test_newton_cg_hess_strategies(hess):
    h = so.BFGS() if hess == "bfgs" else hess
    res = fnopt.minimize(rosen, [-1.2, 1.0], jac=rosen_der, hess=h, method="Newton-CG")
    assert res.success, res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-3)


def test_vector_eps_and_xrtol():
    res = fnopt.minimize(rosen, [1.3, 0.7], method="BFGS",
                         options={"eps": np.array([1e-8, 2e-8])})
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-4)
    x0 = [1.3, 0.7, 0.8, 1.9, 1.2]
    res = fnopt.minimize(rosen, x0, method="BFGS", options={"xrtol": 1e-3})
    ref = fnopt.minimize(rosen, x0, method="BFGS")
    assert res.success and res.nit < ref.nit


def _hs071():
    return dict(fun=lambda x: x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2], x0=[1, 5, 5, 1],
                bounds=[(1, 5)] * 4,
                constraints=[{"type": "ineq", "fun": lambda x: x[0] * x[1] * x[2] * x[3] - 25},
                             {"type": "eq", "fun": lambda x: (x ** 2).sum() - 40}])


@pytest.mark.parametrize("form", ["dicts", "objects"])
def test_slsqp_hs071_matches_scipy_in_no_more_evaluations(form):
    kw = _hs071()
    if form == "objects":
        kw["bounds"] = so.Bounds([1] * 4, [5] * 4)
        kw["constraints"] = [so.NonlinearConstraint(lambda x: x[0] * x[1] * x[2] * x[3], 25,
                                                    np.inf),
                             so.NonlinearConstraint(lambda x: (x ** 2).sum(), 40, 40)]
    ref = so.minimize(method="SLSQP", **kw)
    res = fnopt.minimize(method="SLSQP", **kw)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    assert res.nfev <= ref.nfev and res.njev <= ref.njev


def test_slsqp_linear_constraints_and_default_method():
    kw = dict(fun=lambda x: (x[0] - 1) ** 2 + (x[1] - 2.5) ** 2, x0=[2, 0],
              bounds=[(0, None)] * 2,
              constraints=[so.LinearConstraint([[1, -2], [-1, -2], [-1, 2]], [-2, -6, -2],
                                               np.inf)])
    ref = so.minimize(**kw)
    res = fnopt.minimize(**kw)  # method=None with constraints: SLSQP, as scipy
    np.testing.assert_allclose(res.x, [1.4, 1.7], atol=1e-6)
    assert res.success and res.nfev <= ref.nfev


def test_slsqp_never_evaluates_outside_the_bounds():
    def c(x):
        assert 0 <= x[0] <= 1 and 0 <= x[1] <= 1, x
        return x[0] ** 0.5 + x[1]

    def f(x):
        assert 0 <= x[0] <= 1 and 0 <= x[1] <= 1, x
        return -x[0] ** 2 + x[1] ** 2

    res = fnopt.minimize(f, [0.9, 0.5], method="SLSQP", bounds=so.Bounds([0, 0], [1, 1]),
                         constraints=[so.NonlinearConstraint(c, 0, 1.5)])
    np.testing.assert_allclose(res.x, [1.0, 0.0], atol=1e-8)


def test_constraints_with_another_method_warn_as_scipy():
    with pytest.warns(RuntimeWarning, match="cannot handle constraints"):
        fnopt.minimize(rosen, [0.0, 0.0], method="BFGS",
                       constraints={"type": "eq", "fun": lambda x: x[0]})
    with pytest.raises(ValueError, match=r"constraints\[0\]\['type'\]"):
        fnopt.minimize(rosen, [0.0, 0.0], constraints={"type": "equal", "fun": lambda x: x[0]})


@pytest.mark.parametrize("method, name, bad, exc", [
    ("BFGS", "eps", "small", TypeError), ("BFGS", "eps", -1e-8, ValueError),
    ("BFGS", "eps", [1e-8, 1e-8, 1e-8], ValueError), ("BFGS", "norm", "inf", TypeError),
    ("L-BFGS-B", "maxcor", 0, ValueError), ("L-BFGS-B", "maxls", "x", TypeError),
    ("trust-ncg", "initial_trust_radius", "1", TypeError), ("trust-ncg", "eta", -0.1, ValueError),
    ("SLSQP", "ftol", None, None), ("BFGS", "gtol", -1.0, ValueError),
    ("BFGS", "finite_diff_rel_step", 0.0, ValueError),
])
def test_every_option_error_names_the_option(method, name, bad, exc):
    kw = {"jac": rosen_der, "hess": rosen_hess} if method.startswith("trust") else {}
    if exc is None:  # None means the default, as scipy
        assert fnopt.minimize(rosen, [0.5, 0.5], method=method, options={name: bad}).success
        return
    with pytest.raises(exc, match=rf"options\['{name}'\]"):
        fnopt.minimize(rosen, [0.5, 0.5], method=method, options={name: bad}, **kw)
