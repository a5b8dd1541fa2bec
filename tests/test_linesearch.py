"""fnopt.optimizers.linesearch: the searches satisfy the conditions they claim (property-tested on
random smooth 1-D functions), agree with scipy's line search, report each failure mode
with its status, and the line_search wrapper caches, counts and fails as documented."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.optimize as so
import torch
from hypothesis import given
from hypothesis import strategies as st

import fnopt
from fnopt.optimizers.linesearch import LineSearchStatus as S

SEARCHES = {
    "backtracking": fnopt.backtracking(),
    "backtracking_plain": fnopt.backtracking(interpolate=False),
    "strong_wolfe": fnopt.strong_wolfe(),
    "strong_wolfe_c2_0.1": fnopt.strong_wolfe(c2=0.1),
}


class Counted:
    """phi(a) for f(a) = 0.5 k a^2 - s a + A sin(w a) + B (a - m)^4, counting calls."""

    def __init__(self, k, s, amp, w, b, m):
        self.k, self.s, self.amp, self.w, self.b, self.m = k, s, amp, w, b, m
        self.calls = 0

    def f(self, a):
        return (
            0.5 * self.k * a * a - self.s * a + self.amp * math.sin(self.w * a)
            + self.b * (a - self.m) ** 4
        )

    def df(self, a):
        return (
            self.k * a - self.s + self.amp * self.w * math.cos(self.w * a)
            + 4.0 * self.b * (a - self.m) ** 3
        )

    def __call__(self, a):
        self.calls += 1
        return self.f(a), self.df(a), ("aux", a)


@st.composite
def smooth_1d(draw):
    """Random smooth functions bounded below with a negative slope at 0."""
    k = draw(st.floats(1e-2, 1e2))
    amp = draw(st.floats(0.0, 1.0))
    w = draw(st.floats(0.1, 10.0))
    b = draw(st.floats(0.0, 1.0))
    m = draw(st.floats(-1.0, 1.0))
    phi = Counted(k, 0.0, amp, w, b, m)
    # choose s so that phi'(0) = -margin < 0
    margin = draw(st.floats(1e-2, 1e2))
    phi.s = phi.df(0.0) + margin
    init = 10.0 ** draw(st.floats(-3.0, 3.0))
    return phi, init


@given(smooth_1d())
def test_backtracking_satisfies_armijo(case):
    phi, init = case
    search = fnopt.backtracking(c1=1e-4, f_tol=0.0)
    f0, g0 = phi.f(0.0), phi.df(0.0)
    r = search(phi, f0, g0, init)
    assert r.status == S.CONVERGED and r.ok
    assert 0 < r.step <= init
    assert r.value <= f0 + 1e-4 * r.step * g0
    assert r.value == phi.f(r.step) and r.slope == phi.df(r.step)
    assert r.aux == ("aux", r.step)
    assert r.n_evals == phi.calls <= search.max_trials


@given(smooth_1d(), st.sampled_from([0.1, 0.5, 0.9]))
def test_strong_wolfe_satisfies_both_conditions(case, c2):
    phi, init = case
    search = fnopt.strong_wolfe(c1=1e-4, c2=c2, f_tol=0.0)
    f0, g0 = phi.f(0.0), phi.df(0.0)
    r = search(phi, f0, g0, init)
    assert r.status == S.CONVERGED
    assert r.step > 0
    assert r.value <= f0 + 1e-4 * r.step * g0  # sufficient decrease
    assert abs(r.slope) <= c2 * abs(g0)  # strong curvature condition
    assert r.value == phi.f(r.step) and r.slope == phi.df(r.step)
    assert r.n_evals == phi.calls <= search.max_trials


@pytest.mark.parametrize("k, s", [(1.0, 1.0), (4.0, 1.0), (0.1, 2.0), (1e3, 5.0)])
def test_strong_wolfe_exact_on_quadratics_like_scipy(k, s):
    # phi(a) = 0.5 k a^2 - s a: the exact minimiser s / k satisfies any c2; with a
    # small c2 both fnopt and scipy must land on it.
    f = lambda x: 0.5 * k * float(x[0]) ** 2 - s * float(x[0])  # noqa: E731
    g = lambda x: np.array([k * float(x[0]) - s])  # noqa: E731
    phi = lambda a: (f([a]), float(g([a])[0]), None)  # noqa: E731
    r = fnopt.strong_wolfe(c1=1e-4, c2=1e-3)(phi, 0.0, -s, 1.0)
    alpha, *_ = so.line_search(f, g, np.zeros(1), np.ones(1), c1=1e-4, c2=1e-3)
    assert r.ok
    np.testing.assert_allclose(r.step, s / k, rtol=1e-6)
    np.testing.assert_allclose(r.step, alpha, rtol=1e-6)


def test_strong_wolfe_step_matches_scipy_conditions_on_rosenbrock():
    task = fnopt.tasks.rosenbrock()
    x = np.array([-1.2, 1.0])
    v0, g0 = task.grad_fn(x)
    d = -g0 / np.linalg.norm(g0)

    def phi(a):
        v, gr = task.grad_fn(x + a * d)
        return float(v), float(gr @ d), None

    r = fnopt.strong_wolfe(c2=0.9)(phi, float(v0), float(g0 @ d), 1.0)
    alpha, *_ = so.line_search(
        lambda z: float(task.loss(z)), lambda z: task.grad_fn(z)[1], x, d, c2=0.9
    )
    assert r.ok and alpha is not None
    for a in (r.step, alpha):  # both satisfy the strong Wolfe conditions
        fa, ga, _ = phi(a)
        assert fa <= float(v0) + 1e-4 * a * float(g0 @ d)
        assert abs(ga) <= 0.9 * abs(float(g0 @ d))


# -- failure modes ---------------------------------------------------------------------


def _quad(a):
    return (a - 1.0) ** 2, 2.0 * (a - 1.0), None


def _flat(a):
    return 3.0, 0.0, None


def _inf(a):
    return math.inf, math.nan, None


def _nan(a):
    return math.nan, math.nan, None


FAILURES = [
    # name, phi, value0, slope0, kwargs, expected status, expected n_evals
    ("ascent_direction", _quad, 1.0, 2.0, {}, S.ASCENT_DIRECTION, 0),
    ("flat_function", _flat, 3.0, 0.0, {}, S.FLAT, 0),
    ("inf_value_at_start", _quad, math.inf, -2.0, {}, S.NON_FINITE, 0),
    ("nan_slope_at_start", _quad, 1.0, math.nan, {}, S.NON_FINITE, 0),
    ("inf_everywhere_along_line", _inf, 1.0, -2.0, {"max_trials": 5}, S.NON_FINITE, 5),
    ("nan_everywhere_along_line", _nan, 1.0, -2.0, {"max_trials": 5}, S.NON_FINITE, 5),
]


@pytest.mark.parametrize("name", ["backtracking", "strong_wolfe"])
@pytest.mark.parametrize(
    "case, phi, value0, slope0, kwargs, status, n_evals", FAILURES, ids=[f[0] for f in FAILURES]
)
def test_failure_modes_give_their_status(name, case, phi, value0, slope0, kwargs, status, n_evals):
    factory = fnopt.backtracking if name == "backtracking" else fnopt.strong_wolfe
    r = factory(**kwargs)(phi, value0, slope0, 1.0)
    assert r.status == status
    assert not r.ok
    assert r.n_evals == n_evals
    assert status.value in str(r.status) and r.message


def test_too_few_trials_backtracking():
    # minimum at 1e-6: a unit first step fails Armijo; one trial is not enough
    phi = lambda a: ((a - 1e-6) ** 2, 2.0 * (a - 1e-6), None)  # noqa: E731
    r = fnopt.backtracking(max_trials=1)(phi, 1e-12, -2e-6, 1.0)
    assert r.status == S.MAX_TRIALS and r.n_evals == 1
    assert fnopt.backtracking(max_trials=30)(phi, 1e-12, -2e-6, 1.0).ok


def test_too_few_trials_strong_wolfe():
    # minimum at 100: from a step of 1e-3 the bracketing phase needs several trials
    phi = lambda a: ((a - 100.0) ** 2, 2.0 * (a - 100.0), None)  # noqa: E731
    r = fnopt.strong_wolfe(max_trials=2)(phi, 1e4, -200.0, 1e-3)
    assert r.status == S.MAX_TRIALS and r.n_evals == 2
    # the best point found so far (sufficient decrease) is reported
    assert r.step > 0 and r.value < 1e4
    assert fnopt.strong_wolfe()(phi, 1e4, -200.0, 1e-3).ok


@pytest.mark.parametrize("search", ["backtracking", "strong_wolfe"])
def test_recovers_from_inf_beyond_a_wall(search):
    # finite only for a < 0.5, minimum at 0.3: a NaN/inf trial counts as "too long"
    def phi(a):
        if a >= 0.5:
            return math.inf, math.nan, None
        return (a - 0.3) ** 2, 2.0 * (a - 0.3), None

    s = fnopt.backtracking() if search == "backtracking" else fnopt.strong_wolfe()
    r = s(phi, 0.09, -0.6, 1.0)
    assert r.ok and 0 < r.step < 0.5 and math.isfinite(r.value)


def test_strong_wolfe_round_off_regime_uses_slopes():
    # the loss is constant to round-off, the slope is informative: f_tol accepts a step
    # by the approximate Wolfe conditions; with f_tol=0 the search cannot decide.
    def phi(a):  # one ulp above the starting loss everywhere along the line
        return 1.0 + 2.0**-52, 1e-20 * (a - 2.0), None

    ok = fnopt.strong_wolfe(c2=0.9)(phi, 1.0, -2e-20, 1.0)
    assert ok.ok and ok.step == 1.0
    strict = fnopt.strong_wolfe(c2=0.9, f_tol=0.0, max_trials=10)(phi, 1.0, -2e-20, 1.0)
    assert not strict.ok


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory, kwargs, exc, name",
    [
        (fnopt.backtracking, {"c1": 0.0}, ValueError, "c1"),
        (fnopt.backtracking, {"c1": 1.0}, ValueError, "c1"),
        (fnopt.backtracking, {"shrink": 1.5}, ValueError, "shrink"),
        (fnopt.backtracking, {"min_shrink": 0.9}, ValueError, "min_shrink"),
        (fnopt.backtracking, {"max_trials": 0}, ValueError, "max_trials"),
        (fnopt.backtracking, {"max_trials": 2.5}, TypeError, "max_trials"),
        (fnopt.backtracking, {"interpolate": 1}, TypeError, "interpolate"),
        (fnopt.backtracking, {"f_tol": -1.0}, ValueError, "f_tol"),
        (fnopt.strong_wolfe, {"c1": 0.5, "c2": 0.1}, ValueError, "c2"),
        (fnopt.strong_wolfe, {"c2": 1.0}, ValueError, "c2"),
        (fnopt.strong_wolfe, {"max_step": 0.0}, ValueError, "max_step"),
        (fnopt.strong_wolfe, {"max_trials": 0}, ValueError, "max_trials"),
    ],
)
def test_bad_hyperparameters_name_the_argument(factory, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        factory(**kwargs)


def test_line_search_validates_its_arguments():
    with pytest.raises(TypeError, match="direction"):
        fnopt.line_search(lambda g: g)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="search"):
        fnopt.line_search(fnopt.scale(-1.0), search="wolfe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="initial_step"):
        fnopt.line_search(fnopt.scale(-1.0), initial_step="big")  # type: ignore[arg-type]


# -- the optimizer wrapper ---------------------------------------------------------------


def _quadratic():
    a = np.diag([1.0, 10.0])

    def grad_fn(x):
        return 0.5 * x @ a @ x, a @ x

    return grad_fn


@pytest.mark.parametrize("name", list(SEARCHES))
def test_steepest_descent_with_line_search_caches_and_counts(name):
    opt = fnopt.line_search(fnopt.scale(-1.0), SEARCHES[name], initial_step="quadratic")
    trials = []
    r = fnopt.fixed_point(
        opt, np.array([1.0, 1.0]), _quadratic(),
        stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(500),
        callback=lambda info: trials.append(info.state.n_trials),
    )
    assert r.converged
    assert opt.value_at == "output"
    # one evaluation at the start, then exactly the search's trials: nothing re-evaluated
    assert r.n_evals == 1 + sum(trials)
    v, g = _quadratic()(r.params)
    assert r.value == float(v) and r.grad_norm == pytest.approx(float(np.linalg.norm(g)))
    assert fnopt.learning_rate_of(r.state) == r.state.learning_rate > 0


def test_failed_search_stops_the_loop_keeping_the_last_good_iterate():
    # the loss is +inf inside |x| < 0.1: after a few steps no finite trial remains
    def grad_fn(x):
        v = 0.5 * float(x @ x)
        return np.asarray(math.inf if abs(x[0]) < 0.1 else v), x.copy()

    opt = fnopt.line_search(fnopt.scale(-1.0), fnopt.backtracking(max_trials=3))
    x0 = np.array([1.0])
    r = fnopt.fixed_point(opt, x0, grad_fn, stop=fnopt.stop.max_iters(100))
    assert r.reason == "line_search_failed" and not r.converged
    assert "non_finite" in r.message
    assert abs(r.params[0]) >= 0.1 and math.isfinite(r.value)
    assert r.value == pytest.approx(0.5 * float(r.params @ r.params))
    # driving the step by hand raises StepFailed with the reason
    p, s = r.params, r.state
    with pytest.raises(fnopt.StepFailed) as info:
        opt.step(p, grad_fn, s)
    assert info.value.reason == fnopt.Reason.LINE_SEARCH_FAILED


def test_ascent_direction_fails_the_step():
    opt = fnopt.line_search(fnopt.scale(1.0))  # +g: an ascent direction
    x = np.array([1.0, 2.0])
    with pytest.raises(fnopt.StepFailed, match="ascent_direction"):
        opt.step(x, _quadratic(), opt.init(x))
    r = fnopt.fixed_point(opt, x, _quadratic(), stop=fnopt.stop.max_iters(10))
    assert r.reason == "line_search_failed" and r.iterations == 0
    np.testing.assert_array_equal(r.params, x)


def test_zero_gradient_step_stays_put():
    opt = fnopt.line_search(fnopt.scale(-1.0))
    x = np.zeros(2)
    p, s = opt.step(x, _quadratic(), opt.init(x))
    np.testing.assert_array_equal(p, x)
    assert s.count == 1 and float(s.grad_norm) == 0.0 and float(s.value) == 0.0


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_step_is_pure(backend):
    opt = fnopt.line_search(fnopt.scale(-1.0), fnopt.strong_wolfe())
    task = fnopt.tasks.rosenbrock(backend)
    x = task.init_params
    s = opt.init(x)
    x, s = opt.step(x, task.grad_fn, s)
    x_copy, s_copy = copy.deepcopy(x), copy.deepcopy(s)
    x1, _ = opt.step(x, task.grad_fn, s)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(x_copy))
    np.testing.assert_array_equal(np.asarray(s.grads), np.asarray(s_copy.grads))
    assert s.count == s_copy.count and x1 is not x


def test_numpy_and_torch_agree_in_float64():
    opt = fnopt.line_search(fnopt.scale(-1.0), fnopt.strong_wolfe(c2=0.1), initial_step="quadratic")
    runs = {}
    for backend in ("numpy", "torch"):
        task = fnopt.tasks.rosenbrock(backend)
        r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=fnopt.stop.max_iters(30))
        runs[backend] = r
    np.testing.assert_allclose(
        np.asarray(runs["torch"].params), runs["numpy"].params, rtol=1e-10, atol=1e-12
    )
    assert runs["torch"].n_evals == runs["numpy"].n_evals
    assert isinstance(runs["torch"].params, torch.Tensor)


# -- round-off at the minimum: converged, not failed ------------------------------------------


def test_a_flat_loss_along_the_direction_stops_as_converged():
    # f = 2 + 1e-30 |x|^2: every trial's loss rounds to 2, so no search can succeed
    def grad_fn(x):
        return np.asarray(2.0 + 1e-30 * float(x @ x)), 2e-30 * x

    opt = fnopt.line_search(fnopt.scale(-1.0), fnopt.strong_wolfe(c2=0.1))
    x = np.array([1.0, -1.0])
    with pytest.raises(fnopt.StepFailed) as info:
        opt.step(x, grad_fn, opt.init(x))
    assert info.value.reason == fnopt.Reason.LOSS_CHANGE_BELOW and info.value.reason.converged
    r = fnopt.fixed_point(opt, x, grad_fn, stop=fnopt.stop.max_iters(10))
    assert r.converged and r.reason == "loss_change_below" and r.iterations == 0
    assert "round-off" in r.message


def test_an_ascent_slope_at_round_off_stops_as_converged():
    # the loss is 1 and the slope along the direction +1e-20: below the loss's round-off
    def grad_fn(x):
        return np.asarray(1.0 + 1e-20 * float(x[0])), np.array([1e-20])

    opt = fnopt.line_search(fnopt.scale(1.0))  # "ascent", but only at round-off
    r = fnopt.fixed_point(opt, np.array([0.5]), grad_fn, stop=fnopt.stop.max_iters(10))
    assert r.converged and r.reason == "loss_change_below"


def test_a_wrong_gradient_still_fails_the_search():
    # the provider returns minus the gradient: the direction only looks like descent,
    # the loss rises along it at every representable step
    def grad_fn(x):
        return np.asarray(0.5 * float(x @ x)), -x

    for search in (fnopt.strong_wolfe(), fnopt.backtracking()):
        opt = fnopt.line_search(fnopt.scale(-1.0), search)
        r = fnopt.fixed_point(opt, np.array([1.0, 2.0]), grad_fn, stop=fnopt.stop.max_iters(20))
        assert r.reason in ("line_search_failed", "max_iters") and not r.converged, r.message


@pytest.mark.parametrize("seed", range(3))
def test_conformance_check_of_nonlinear_cg_runs_past_the_minimum(seed):
    # 40 steps reach round-off within about 12: the later steps must neither fail the
    # check nor make numpy and torch disagree in their last bits
    report = fnopt.testing.check_optimizer(fnopt.nonlinear_cg, steps=40, seed=seed)
    assert report.ok, str(report)
    assert report["backend_agreement"].passed


def test_stalled_at_roundoff_rules():
    from fnopt.optimizers.linesearch import _stalled_at_roundoff

    eps = float(np.finfo(np.float64).eps)
    R = fnopt.Reason
    flat = [(1.0, 2.0, 1e-30), (0.5, 2.0, -1e-30)]
    assert _stalled_at_roundoff(S.MAX_TRIALS, flat, 2.0, -1e-28, 1e-14, 1.0, eps) is \
        R.LOSS_CHANGE_BELOW
    # a trial that did not move the params (loss and slope exactly those at 0), the
    # longer ones raising the loss: a minimiser to round-off when the gradient is tiny
    stuck = [(1e-2, 2e-28, 3e-27), (1e-3, 1e-28, -5e-28), (2e-3, 1.3e-28, 1e-27)]
    args = (1e-28, -5e-28)
    assert _stalled_at_roundoff(S.INTERVAL_TOO_SMALL, stuck, *args, 2e-14, 1.4, eps) is \
        R.PARAM_CHANGE_BELOW
    assert _stalled_at_roundoff(S.INTERVAL_TOO_SMALL, stuck, *args, 1e-3, 1.4, eps) is None
    # other failures never count as convergence
    for status in (S.NON_FINITE, S.ASCENT_DIRECTION, S.FLAT):
        assert _stalled_at_roundoff(status, flat, 2.0, -1e-28, 1e-14, 1.0, eps) is None
    assert _stalled_at_roundoff(S.MAX_TRIALS, [], 2.0, -1e-28, 1e-14, 1.0, eps) is None
