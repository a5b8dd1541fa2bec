"""Early stopping survives a kill: its state (best value, best params, counter) is saved
with every checkpoint, and a run resumed from the file (``fixed_point(...,
stop_state=ck.stop_state)``) stops at the same iteration with the same restored params
as a run that was never interrupted (issue 21)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import fnopt
from fnopt.stop import NoImprovementState

rng = np.random.default_rng(0)
X = rng.normal(size=(20, 8))
W = rng.normal(size=8)
Y = X @ W + 0.5 * rng.normal(size=20)
XV = rng.normal(size=(30, 8))
YV = XV @ W + 0.5 * rng.normal(size=30)


def grad_fn(p):
    r = X @ p - Y
    return 0.5 * r @ r / 20, X.T @ r / 20


def val_loss(p):
    r = XV @ p - YV
    return float(r @ r / 30)


def make_stop():
    return (fnopt.stop.no_improvement(val_loss, patience=3, every=5, min_delta=1e-3)
            | fnopt.stop.max_iters(2000))


def uninterrupted(opt):
    return fnopt.fixed_point(opt, np.zeros(8), grad_fn, stop=make_stop())


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, nothing catches it on the way out."""


def killing_at(n_calls, on_kill=lambda: None):
    calls = [0]

    def g(p):
        calls[0] += 1
        if calls[0] == n_calls:
            on_kill()
            raise Killed
        return grad_fn(p)

    return g


@pytest.mark.parametrize("opt", [fnopt.sgd(0.05), fnopt.adam(0.02)], ids=["sgd", "adam"])
def test_resume_from_the_periodic_checkpoint_stops_where_the_uninterrupted_run_does(
        tmp_path, opt):
    ref = uninterrupted(opt)
    assert ref.reason is fnopt.stop.Reason.NO_IMPROVEMENT
    k = ref.iterations
    path, left = tmp_path / "run.npz", tmp_path / "left_by_kill.npz"
    # the kill comes between two periodic saves, after a non-improving evaluation: the
    # file a SIGKILL leaves is the last periodic one (copied before the final save)
    kill_at = k - 6
    g = killing_at(kill_at + 1, lambda: shutil.copy(path, left))
    with pytest.raises(Killed):
        fnopt.fixed_point(opt, np.zeros(8), g, stop=make_stop(), checkpoint_every=4,
                          checkpoint_path=path)
    ck = fnopt.load(left)
    assert ck.iteration == kill_at // 4 * 4
    ni = ck.stop_state[0]
    assert isinstance(ni, NoImprovementState) and ni.best_params is not None
    resumed = fnopt.fixed_point(opt, ck.params, grad_fn, ck.state, stop=make_stop(),
                                start_iteration=ck.iteration, stop_state=ck.stop_state)
    assert resumed.reason is fnopt.stop.Reason.NO_IMPROVEMENT
    assert resumed.iterations == k
    np.testing.assert_array_equal(resumed.params, ref.params)
    assert resumed.stop_state[0].history == ref.stop_state[0].history
    # without the stop state the counter starts afresh and the run goes on longer
    fresh = fnopt.fixed_point(opt, ck.params, grad_fn, ck.state, stop=make_stop(),
                              start_iteration=ck.iteration)
    assert fresh.iterations > k


def test_resume_from_the_final_checkpoint_of_a_stopped_run(tmp_path):
    opt = fnopt.sgd(0.05)
    ref = uninterrupted(opt)
    path = tmp_path / "run.npz"
    for stop_at in (ref.iterations - 7, ref.iterations - 5):  # off and on an evaluation
        first = fnopt.fixed_point(opt, np.zeros(8), grad_fn,
                                  stop=make_stop() | fnopt.stop.max_iters(stop_at),
                                  checkpoint_path=path)
        assert first.iterations == stop_at
        ck = fnopt.load(path)
        resumed = fnopt.fixed_point(opt, ck.params, grad_fn, ck.state,
                                    stop=make_stop() | fnopt.stop.max_iters(10**6),
                                    start_iteration=ck.iteration, stop_state=ck.stop_state)
        assert resumed.iterations == ref.iterations
        np.testing.assert_array_equal(resumed.params, ref.params)


def test_result_stop_state_continues_a_run():
    opt = fnopt.sgd(0.05)
    ref = uninterrupted(opt)
    part = fnopt.fixed_point(opt, np.zeros(8), grad_fn, stop=make_stop() | fnopt.stop.max_iters(
        ref.iterations - 3))
    # the stop state at the end has seen the last iterate; a Result carries it as is
    assert part.stop_state[0][0].bad >= 1


def test_a_stop_state_of_another_criterion_is_refused():
    opt = fnopt.sgd(0.05)
    with pytest.raises(ValueError, match="stop_state"):
        fnopt.fixed_point(opt, np.zeros(8), grad_fn, stop=make_stop(),
                          stop_state=(None, None, None))
    with pytest.raises(ValueError, match="NoImprovementState"):
        fnopt.fixed_point(opt, np.zeros(8), grad_fn, stop=make_stop(), stop_state=(5, None))


def test_a_checkpoint_without_a_stop_state_loads_none(tmp_path):
    path = fnopt.save(tmp_path / "a.npz", np.ones(2), None, iteration=0)
    assert fnopt.load(path).stop_state is None
    st = NoImprovementState(0.5, np.ones(2), 3, 1, 4, (1.0, 0.5))
    path = fnopt.save(tmp_path / "b.npz", np.ones(2), None, stop_state=(st, None))
    got = fnopt.load(path).stop_state
    assert type(got[0]) is NoImprovementState and got[1] is None
    np.testing.assert_array_equal(got[0].best_params, st.best_params)
    assert got[0][2:] == st[2:]
