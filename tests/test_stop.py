"""fnopt.stop: each criterion on hand-made iterates, combinations, patience, validation,
and the reasons fixed_point reports for them."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnopt
from fnopt import stop
from fnopt.stop import Info, Reason


def info(iteration=0, value=1.0, grad_norm=1.0, params=None, prev_params=None,
         prev_value=math.nan, elapsed=0.0, state=None):
    params = np.zeros(2) if params is None else params
    return Info(iteration, value, grad_norm, params, state, prev_params, prev_value, elapsed)


def fires(crit, *infos):
    """Run ``crit`` over ``infos``; the list of fired tuples, one per iterate."""
    s = crit.init()
    out = []
    for i in infos:
        fired, s = crit.check(i, s)
        out.append(fired)
    return out


@pytest.mark.parametrize(
    "crit, holds, fails",
    [
        (stop.max_iters(5), info(iteration=5), info(iteration=4)),
        (stop.max_iters(0), info(iteration=0), None),
        (stop.loss_below(1e-3), info(value=1e-3), info(value=1.1e-3)),
        (stop.loss_below(-1.0), info(value=-2.0), info(value=0.0)),
        (stop.grad_norm_below(1e-6), info(grad_norm=1e-6), info(grad_norm=2e-6)),
        (
            stop.param_change_below(0.1),
            info(params=np.array([1.0, 1.0]), prev_params=np.array([1.03, 1.04])),
            info(params=np.array([1.0, 1.0]), prev_params=np.array([1.1, 1.1])),
        ),
        (
            stop.param_change_below(0.0, rtol=0.1),
            info(params=np.array([3.0, 4.0]), prev_params=np.array([3.15, 4.2])),
            info(params=np.array([3.0, 4.0]), prev_params=np.array([3.4, 4.4])),
        ),
        (
            stop.loss_change_below(1e-3),
            info(value=1.0, prev_value=1.0005),
            info(value=1.0, prev_value=1.002),
        ),
        (
            stop.loss_change_below(0.0, rtol=0.01),
            info(value=99.5, prev_value=100.0),
            info(value=98.0, prev_value=100.0),
        ),
        (stop.time_limit(2.0), info(elapsed=2.0), info(elapsed=1.9)),
    ],
)
def test_each_criterion_holds_exactly_when_it_should(crit, holds, fails):
    assert fires(crit, holds) == [(crit,)]
    if fails is not None:
        assert fires(crit, fails) == [()]
    assert isinstance(crit.describe(holds), str) and crit.describe(holds)
    assert crit.reason in Reason


def test_change_criteria_wait_for_a_previous_iterate():
    assert fires(stop.param_change_below(1e9), info(prev_params=None)) == [()]
    assert fires(stop.loss_change_below(1e9), info(prev_value=math.nan)) == [()]


def test_param_change_works_on_pytrees_and_torch():
    import torch

    p = {"w": torch.tensor([1.0, 2.0]), "b": [torch.tensor(0.5)]}
    q = {"w": torch.tensor([1.0, 2.03]), "b": [torch.tensor(0.54)]}
    assert fires(stop.param_change_below(0.051), info(params=q, prev_params=p)) != [()]
    assert fires(stop.param_change_below(0.049), info(params=q, prev_params=p)) == [()]


def test_loss_change_patience_needs_consecutive_small_changes():
    crit = stop.loss_change_below(0.01, patience=3)
    vals = [10.0, 9.995, 9.99, 5.0, 4.995, 4.99, 4.985, 4.98]
    infos = [info(value=v, prev_value=p) for p, v in zip([math.nan, *vals], vals)]
    out = [bool(f) for f in fires(crit, *infos)]
    # small changes at 1, 2 (run of 2), reset at 3, then 4, 5, 6 -> fires at 6 and 7
    assert out == [False, False, False, False, False, False, True, True]


def test_or_fires_when_either_holds_and_reports_all_that_hold():
    a, b = stop.loss_below(1.0), stop.max_iters(10)
    c = a | b
    assert fires(c, info(value=0.5, iteration=3)) == [(a,)]
    assert fires(c, info(value=2.0, iteration=10)) == [(b,)]
    assert fires(c, info(value=0.5, iteration=10)) == [(a, b)]
    assert fires(c, info(value=2.0, iteration=3)) == [()]


def test_and_fires_only_when_both_hold_at_the_same_iterate():
    a, b = stop.loss_below(1.0), stop.grad_norm_below(0.1)
    c = a & b
    assert fires(c, info(value=0.5, grad_norm=0.01)) == [(a, b)]
    assert fires(c, info(value=0.5, grad_norm=1.0)) == [()]
    assert fires(c, info(value=2.0, grad_norm=0.01)) == [()]


def test_nested_combinations_keep_patience_state_separately():
    slow = stop.loss_change_below(0.1, patience=2)
    rule = (slow & stop.loss_below(1.0)) | stop.max_iters(100)
    seq = [info(iteration=i, value=v, prev_value=p)
           for i, (p, v) in enumerate([(math.nan, 5.0), (5.0, 4.95), (4.95, 4.9), (4.9, 0.9),
                                       (0.9, 0.85), (0.85, 0.8)])]
    out = [bool(f) for f in fires(rule, *seq)]
    assert out == [False, False, False, False, False, True]


def test_repr():
    r = (stop.loss_below(1e-3) & stop.grad_norm_below(1e-6)) | stop.max_iters(10)
    assert repr(r) == "(loss_below(0.001) & grad_norm_below(1e-06)) | max_iters(10)"
    assert "patience=2" in repr(stop.loss_change_below(1e-3, patience=2))


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: stop.max_iters(-1), ValueError, "n:"),
        (lambda: stop.max_iters(2.5), TypeError, "n:"),
        (lambda: stop.max_iters(True), TypeError, "n:"),
        (lambda: stop.loss_below("1"), TypeError, "tol"),
        (lambda: stop.loss_below(math.nan), TypeError, "tol"),
        (lambda: stop.grad_norm_below(-1e-3), ValueError, "tol"),
        (lambda: stop.param_change_below(-1.0), ValueError, "atol"),
        (lambda: stop.param_change_below(0.0, rtol=-1.0), ValueError, "rtol"),
        (lambda: stop.loss_change_below(1e-3, patience=0), ValueError, "patience"),
        (lambda: stop.loss_change_below(1e-3, patience=1.5), TypeError, "patience"),
        (lambda: stop.loss_change_below(math.nan), ValueError, "atol"),
        (lambda: stop.time_limit(0), ValueError, "seconds"),
        (lambda: stop.time_limit(None), TypeError, "seconds"),
        (lambda: stop.max_iters(3) | 3, TypeError, r"combine with \|"),
        (lambda: stop.max_iters(3) & "x", TypeError, "combine with &"),
    ],
)
def test_validation_names_the_argument(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_reason_is_a_readable_str_enum():
    assert Reason.MAX_ITERS == "max_iters" and str(Reason.NON_FINITE) == "non_finite"
    for r in Reason:
        assert r.message and isinstance(r.converged, bool) and isinstance(r.is_failure, bool)
    assert Reason.LOSS_BELOW.converged and not Reason.MAX_ITERS.converged
    assert Reason.NON_FINITE.is_failure and not Reason.INTERRUPTED.converged


def test_info_learning_rate_reads_the_state():
    opt = fnopt.sgd(0.25)
    p = np.ones(1)
    _, s = opt.step(p, lambda p: (p @ p, 2 * p), opt.init(p))
    assert info(state=s).learning_rate == 0.25
    assert info(state=None).learning_rate is None


# -- through the loop -----------------------------------------------------------------------


def _quadratic():
    # f(p) = |p|^2 / 2, gradient p: sgd with lr 0.5 halves p each step
    return fnopt.grad.from_functions(lambda p: 0.5 * (p @ p), lambda p: p), np.array([8.0, 0.0])


@pytest.mark.parametrize(
    "crit, reason, iterations, converged",
    [
        (stop.max_iters(3), "max_iters", 3, False),
        (stop.loss_below(0.5), "loss_below", 3, True),  # f_k = 32 / 4^k
        (stop.grad_norm_below(1.0), "grad_norm_below", 3, True),  # |g_k| = 8 / 2^k
        (stop.param_change_below(0.5), "param_change_below", 4, True),  # 8/2^k
        (stop.loss_change_below(0.2), "loss_change_below", 5, True),  # |Δf_5| = 0.094
        (stop.loss_below(0.5) & stop.max_iters(5), "loss_below", 5, True),
        (stop.loss_below(1e-30) | stop.max_iters(2), "max_iters", 2, False),
    ],
)
def test_reasons_and_iterations_through_fixed_point(crit, reason, iterations, converged):
    g, p0 = _quadratic()
    r = fnopt.fixed_point(fnopt.sgd(0.5), p0, g, stop=crit | stop.max_iters(50))
    assert r.reason == reason
    assert r.iterations == iterations
    assert r.converged is converged
    np.testing.assert_allclose(r.params, p0 / 2**iterations)
    assert r.value == pytest.approx(32.0 / 4**iterations)


def test_message_names_every_criterion_that_fired():
    g, p0 = _quadratic()
    r = fnopt.fixed_point(fnopt.sgd(0.5), p0, g,
                          stop=stop.loss_below(0.5) | stop.max_iters(3))
    assert "loss 0.5 <= 0.5" in r.message and "max_iters=3" in r.message
    assert r.reason == "loss_below" and r.converged


def test_time_limit_through_fixed_point():
    g, p0 = _quadratic()
    r = fnopt.fixed_point(fnopt.sgd(0.0), p0, g,
                          stop=stop.time_limit(0.05) | stop.max_iters(10**7))
    assert r.reason == "time_limit" and not r.converged
    assert r.elapsed >= 0.05 and 0 < r.iterations < 10**7
