"""fnopt.stop.no_improvement: early stopping on a validation metric, checked by calling
``check`` with constructed Info objects, and inside today's fixed_point (every=N)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnopt
from fnopt import stop


class _InfoWithEpoch(stop.Info):
    """An Info that carries ``epoch`` as an attribute (what the loop will provide)."""


def _info(k, params, epoch=None):
    fields = dict(iteration=k, value=0.0, grad_norm=0.0, params=params, state=None,
                  prev_params=None, prev_value=math.nan, elapsed=0.0)
    if "epoch" in stop.Info._fields:  # once the loop's Info has the field
        return stop.Info(**fields, epoch=epoch)
    info = _InfoWithEpoch(**fields)
    info.epoch = epoch
    return info


def _run(rule, infos):
    state, fired_at = rule.init(), None
    for info in infos:
        fired, state = rule.check(info, state)
        if fired:
            assert fired == (rule,)
            fired_at = info
            break
    return fired_at, state


def test_per_epoch_evaluates_once_per_epoch_and_keeps_a_copy_of_the_best():
    calls = []
    metrics = {1: 0.5, 2: 0.3, 3: 0.35, 4: 0.31, 5: 0.4, 6: 0.1}  # best at epoch 2

    def val_loss(p):
        calls.append(float(p[0]))
        return metrics[int(p[0])]

    infos = []
    for k in range(40):  # 4 batches per epoch; params[0] = the epoch number
        epoch = k // 4
        infos.append(_info(k, np.array([float(epoch)]), epoch))
    rule = stop.no_improvement(val_loss, patience=3)
    fired_at, state = _run(rule, infos)
    assert fired_at.epoch == 5 and fired_at.iteration == 20
    assert calls == [1.0, 2.0, 3.0, 4.0, 5.0]  # not at epoch 0, once per epoch
    assert state.best == 0.3 and state.best_at == 2 and state.bad == 3
    assert state.history == (0.5, 0.3, 0.35, 0.31, 0.4)
    params_at_best = infos[8].params
    assert np.array_equal(state.best_params, params_at_best)
    assert state.best_params is not params_at_best
    params_at_best[0] = -1.0  # the loop may overwrite its iterate: the copy stays
    assert state.best_params[0] == 2.0
    assert rule.best(state) == (state.best_params, 0.3)
    assert "3 epoch(s)" in rule.describe(fired_at)


def test_max_mode_and_min_delta():
    acc = [0.5, 0.6, 0.605, 0.609, 0.7, 0.7, 0.69, 0.71]
    rule = stop.no_improvement(lambda p: acc[int(p[0]) - 1], patience=2, every=1, mode="max",
                               min_delta=0.01)
    fired_at, state = _run(rule, [_info(k, np.array([float(k)])) for k in range(1, 9)])
    # 0.605 and 0.609 are within min_delta of 0.6: two evaluations without improvement
    assert fired_at.iteration == 4 and state.best == 0.6 and state.best_at == 2
    rule = stop.no_improvement(lambda p: acc[int(p[0]) - 1], patience=3, every=1, mode="max",
                               min_delta=0.01)
    fired_at, state = _run(rule, [_info(k, np.array([float(k)])) for k in range(1, 9)])
    # 0.71 is not above 0.7 + min_delta either: the third evaluation without improvement
    assert fired_at.iteration == 8 and state.best == 0.7 and state.best_at == 5


def test_every_n_iterations_and_nan_counts_as_no_improvement():
    seen = []

    def metric(p):
        seen.append(int(p[0]))
        return math.nan if p[0] >= 9 else 1.0 / p[0]

    rule = stop.no_improvement(metric, patience=2, every=3)
    fired_at, state = _run(rule, [_info(k, np.array([float(k)])) for k in range(0, 30)])
    assert seen == [3, 6, 9, 12]
    assert fired_at.iteration == 12 and state.best_at == 6 and math.isnan(state.history[-1])


def test_repeated_key_is_not_evaluated_twice():
    n = []
    rule = stop.no_improvement(lambda p: n.append(1) or 1.0, patience=5, every=2)
    state = rule.init()
    for _ in range(3):
        _, state = rule.check(_info(4, np.zeros(1)), state)
    assert len(n) == 1


def test_per_epoch_without_an_epoch_in_info_says_what_is_missing():
    rule = stop.no_improvement(lambda p: 0.0)
    with pytest.raises(ValueError, match=r"info\.epoch"):
        rule.check(_info(1, np.zeros(1), None), rule.init())


def test_inside_todays_fixed_point_with_every_n():
    # training drives p from 0 to 3; the validation metric |p - 1| is best near p = 1
    def grad_fn(p):
        return 0.5 * float((p - 3.0) @ (p - 3.0)), p - 3.0

    val = lambda p: float(abs(p[0] - 1.0))  # noqa: E731
    rule = stop.no_improvement(val, patience=2, every=5) | stop.max_iters(1000)
    r = fnopt.fixed_point(fnopt.sgd(0.05), np.zeros(1), grad_fn, stop=rule)
    assert r.reason == rule.left.reason and r.reason != "max_iters"
    # p_k = 3 (1 - 0.95^k): closest to 1 at k = 10 among multiples of 5 (k=5: 0.68,
    # k=10: 1.20); k = 15, 20 do not improve -> stops at 20
    assert r.iterations == 20
    assert "did not improve" in r.message


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        (dict(metric_fn=3), TypeError, "metric_fn"),
        (dict(patience=0), ValueError, "patience"),
        (dict(patience=1.5), TypeError, "patience"),
        (dict(every="batch"), ValueError, "every"),
        (dict(every=0), ValueError, "every"),
        (dict(every=2.0), TypeError, "every"),
        (dict(mode="lowest"), ValueError, "mode"),
        (dict(min_delta=-1.0), ValueError, "min_delta"),
    ],
)
def test_no_improvement_rejects_bad_arguments(kwargs, exc, word):
    args = {"metric_fn": lambda p: 0.0, **kwargs}
    with pytest.raises(exc, match=word):
        stop.no_improvement(args.pop("metric_fn"), **args)


def test_repr_names_the_metric():
    def val_loss(p):
        return 0.0

    assert repr(stop.no_improvement(val_loss, patience=4)) == (
        "no_improvement(val_loss, patience=4, every='epoch', mode='min', min_delta=0.0)"
    )
