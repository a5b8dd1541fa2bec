"""A loss of -inf: the line searches take the step (nothing is lower), the loop stops
``non_finite`` keeping the last finite iterate (its guarantee), and ``fnopt.minimize``
reports the -inf point as scipy does (status 2, ``fun=-inf``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnopt
from fnopt.optimizers.linesearch import backtracking, strong_wolfe


def _phi(a: float) -> tuple[float, float, None]:
    # -inf from a = 3 on, a decreasing line before it
    return (-math.inf, -math.inf, None) if a >= 3 else (-a, -1.0, None)


@pytest.mark.parametrize("search", [strong_wolfe(), backtracking()])
def test_line_search_takes_a_minus_inf_trial(search):
    r = search(_phi, 0.0, -1.0, 4.0)
    assert r.ok
    assert r.value == -math.inf


@pytest.mark.parametrize("search", [strong_wolfe(), backtracking()])
def test_line_search_still_shrinks_nan_and_plus_inf(search):
    def phi(a):  # (a - 1)^2 - 1 up to 2, then +inf, then NaN
        if a > 2:
            return (math.nan if a > 3 else math.inf), math.nan, None
        return (a - 1) ** 2 - 1, 2 * (a - 1), None
    r = search(phi, 0.0, -2.0, 4.0)
    assert r.ok and 0 < r.step <= 2 and math.isfinite(r.value) and r.value < 0


def _f(x):
    with np.errstate(over="ignore"):
        return -np.exp(-x[0])


def _g(x):
    with np.errstate(over="ignore"):
        return np.array([np.exp(-x[0])])


def test_minimize_reports_the_minus_inf_point():
    r = fnopt.minimize(_f, [0.0], jac=_g, method="BFGS")
    assert r.fun == -math.inf and not np.isfinite(_f(r.x))
    assert r.status == 2 and not r.success
    assert r.x[0] < -700


def test_fixed_point_stops_non_finite_at_the_last_finite_iterate():
    def grad_fn(x):
        return _f(x), _g(x)
    r = fnopt.fixed_point(fnopt.bfgs(), np.array([0.0]), grad_fn,
                          stop=fnopt.stop.max_iters(50))
    assert r.reason is fnopt.stop.Reason.NON_FINITE
    assert np.all(np.isfinite(r.params)) and "-inf" in r.message
