"""The loop never calls grad_fn again to recover an iterate, keeps the best and last
finite iterates it returns, computes the gradient norm only when read, makes one update
per batch, skips non-finite steps under apply_if_finite, records no autograd graph
without differentiable=True, and defers Ctrl-C until an in-place update is complete."""

from __future__ import annotations

import math
import signal
import time
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import stop

BACKENDS = ["numpy", "torch"]


def counting(grad_fn: Any) -> tuple[Any, list[int]]:
    calls = [0]

    def g(p: Any, *batch: Any) -> Any:
        calls[0] += 1
        return grad_fn(p, *batch)

    return g, calls


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "lbfgs"])
def test_grad_fn_is_called_exactly_as_often_as_the_optimizer_asks(name, backend):
    task = fnopt.tasks.rosenbrock(backend)
    g, calls = counting(task.grad_fn)
    opt = fnopt.lbfgs() if name == "lbfgs" else getattr(fnopt, name)(5e-2 if name != "sgd"
                                                                     else 1e-3)
    r = fnopt.fixed_point(opt, task.init_params, g, stop=stop.max_iters(300))
    assert calls[0] == r.n_evals
    if name != "lbfgs":  # one evaluation per iterate checked: iterates 0..300
        assert r.n_evals == 301


def test_adam_on_rosenbrock_makes_one_evaluation_per_iterate_even_when_best_is_earlier():
    # The measurement: adam(5e-2) on Rosenbrock for 1000 iterations made 1,852
    # gradient evaluations (the run was replayed to recover best_params).
    task = fnopt.tasks.rosenbrock()
    g, calls = counting(task.grad_fn)
    r = fnopt.fixed_point(fnopt.adam(5e-2), task.init_params, g, stop=stop.max_iters(1000))
    assert calls[0] == r.n_evals == 1001
    # best_params is really the iterate whose loss is best_value
    assert float(task.grad_fn(r.best_params)[0]) == pytest.approx(r.best_value, rel=1e-12)
    assert r.best_value <= r.value


def test_time_limit_ends_within_a_step():
    task = fnopt.tasks.rosenbrock()

    def slow(p: Any) -> Any:
        time.sleep(0.002)
        return task.grad_fn(p)

    t0 = time.perf_counter()
    r = fnopt.fixed_point(fnopt.adam(1e-2), task.init_params, slow, stop=stop.time_limit(0.2))
    wall = time.perf_counter() - t0
    assert r.reason == "time_limit" and wall < 0.2 + 0.25  # generous: one step is ~2 ms


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_grad_fn_failing_later_is_an_optimization_error_with_the_last_good_result(name,
                                                                                  backend):
    task = fnopt.tasks.rosenbrock(backend)
    calls = [0]

    def flaky(p: Any) -> Any:
        calls[0] += 1
        if calls[0] >= 37:
            raise ConnectionError("remote worker went away")
        return task.grad_fn(p)

    opt = getattr(fnopt, name)(1e-3)
    with pytest.raises(fnopt.OptimizationError) as info:
        fnopt.fixed_point(opt, task.init_params, flaky, stop=stop.max_iters(100))
    err = info.value
    assert isinstance(err.__cause__, ConnectionError)
    # call 37 evaluates iterate 36: the result is that iterate with its own state
    assert err.result.iterations == 36 and err.result.reason == "error"
    ref = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop.max_iters(36))
    np.testing.assert_array_equal(fnopt.to_numpy(err.result.params), fnopt.to_numpy(ref.params))
    assert err.result.state.count == ref.state.count == 36
    assert calls[0] == 37  # nothing replayed


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_gradients_from_a_call_on_return_finite_params_and_best(backend):
    task = fnopt.tasks.rosenbrock(backend)
    calls = [0]

    def broken(p: Any) -> Any:
        calls[0] += 1
        v, g = task.grad_fn(p)
        if calls[0] >= 501:
            return v, g * math.nan
        return v, g

    r = fnopt.fixed_point(fnopt.adam(1e-2), task.init_params, broken,
                          stop=stop.max_iters(2000))
    assert r.reason == "non_finite"
    assert fnopt.tree.all_finite(r.params) and fnopt.tree.all_finite(r.best_params)
    assert math.isfinite(r.value) and r.iterations == 500
    assert calls[0] == r.n_evals == 502


def test_stochastic_grad_fn_best_params_carry_the_best_value():
    task = fnopt.tasks.rosenbrock()
    rng = np.random.default_rng(0)
    seen: dict[bytes, float] = {}

    def noisy(p: Any) -> Any:
        v, g = task.grad_fn(p)
        v = v * (1 + 0.5 * rng.standard_normal())  # a minibatch-like noisy loss
        seen[np.asarray(p).tobytes()] = float(v)
        return v, g + 0.3 * rng.standard_normal(g.shape)

    r = fnopt.fixed_point(fnopt.sgd(1e-3, momentum=0.9), task.init_params, noisy,
                          stop=stop.max_iters(400))
    assert seen[np.asarray(r.best_params).tobytes()] == r.best_value
    assert r.best_value == min(v for v in seen.values() if math.isfinite(v))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_batches", [1, 4])
def test_one_update_per_batch(backend, n_batches):
    x, y = fnopt.tasks.make_linear_data(n=40, backend=backend)
    task = fnopt.tasks.linear_regression(x, y)
    size = 40 // n_batches
    batches = [(x[i:i + size], y[i:i + size]) for i in range(0, 40, size)]
    g, calls = counting(task.grad_fn)
    r = fnopt.fixed_point(fnopt.sgd(0.05), task.init_params, g, data=batches,
                          stop=stop.max_iters(1000))
    assert r.reason == "data_exhausted"
    assert r.iterations == r.n_evals == calls[0] == n_batches == r.state.count
    theta = task.init_params
    for xb, yb in batches:
        theta = theta - 0.05 * task.grad_fn(theta, xb, yb)[1]
    np.testing.assert_allclose(fnopt.to_numpy(r.params), fnopt.to_numpy(theta), rtol=1e-12)


def test_checkpoint_position_agrees_with_the_updates(tmp_path):
    x, y = fnopt.tasks.make_linear_data(n=40)
    task = fnopt.tasks.linear_regression(x, y)
    batches = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10)]
    path = tmp_path / "ck.zip"
    r = fnopt.fixed_point(fnopt.sgd(0.05), task.init_params, task.grad_fn, data=batches,
                          stop=stop.max_iters(1000), checkpoint_path=path)
    ck = fnopt.load(path)
    assert ck.iteration == r.iterations == 4
    np.testing.assert_array_equal(ck.params, r.params)


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_if_finite_skips_non_finite_steps_and_goes_on(backend):
    task = fnopt.tasks.rosenbrock(backend)
    calls = [0]

    def spiky(p: Any) -> Any:
        calls[0] += 1
        v, g = task.grad_fn(p)
        return (v, g * math.nan) if calls[0] in (5, 6, 20) else (v, g)

    opt = fnopt.apply_if_finite(fnopt.adam(1e-2))
    r = fnopt.fixed_point(opt, task.init_params, spiky, stop=stop.max_iters(50))
    assert r.reason == "max_iters" and r.iterations == 50
    assert fnopt.tree.all_finite(r.params)
    assert r.state.inner.total_notfinite == 3
    # without it the NaN gradient makes the params NaN, and the loop stops non_finite
    calls[0] = 0
    bad = fnopt.fixed_point(fnopt.adam(1e-2), task.init_params, spiky, stop=stop.max_iters(50))
    assert bad.reason == "non_finite" and fnopt.tree.all_finite(bad.params)


@pytest.mark.parametrize("criterion, reads_norm", [
    (stop.max_iters(20), False),
    (stop.loss_below(-1.0) | stop.max_iters(20), False),
    (stop.grad_norm_below(1e-12) | stop.max_iters(20), True),
])
def test_gradient_norm_is_computed_only_when_read(criterion, reads_norm):
    task = fnopt.tasks.rosenbrock()
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn, stop=criterion)
    # the state records the norm of the last update's gradient only when it was computed
    assert math.isfinite(float(r.state.grad_norm)) is reads_norm
    # the Result always reports the norm at its own params
    assert r.grad_norm == pytest.approx(float(np.linalg.norm(task.grad_fn(r.params)[1])))


def test_user_criterion_from_a_function_and_a_subclass():
    task = fnopt.tasks.rosenbrock()
    c = stop.criterion(lambda info: info.iteration >= 7, reads=("iteration",),
                       reason="max_iters", name="seven")
    r = fnopt.fixed_point(fnopt.adam(1e-2), task.init_params, task.grad_fn, stop=c)
    assert r.iterations == 7 and r.reason == "max_iters" and "seven" in r.message

    class Below(stop.Criterion):
        reason = fnopt.Reason.LOSS_BELOW
        reads = frozenset({"value"})

        def holds(self, iteration: int, value: Any, grad_norm: Any, elapsed: float) -> Any:
            return value <= 1.0

    r = fnopt.fixed_point(fnopt.adam(1e-2), task.init_params, task.grad_fn,
                          stop=Below() | stop.max_iters(10_000))
    assert r.reason == "loss_below" and r.value <= 1.0
    # the same subclass runs per problem under batched
    starts = np.array([[0.0, 0.0], [-1.0, 1.0]])
    rb = fnopt.batched(fnopt.adam(1e-2), starts, lambda x: _rosen_rows(x),
                       stop=Below() | stop.max_iters(10_000))
    assert all(str(x) == "loss_below" for x in rb.reason)


def _rosen_rows(x: np.ndarray) -> Any:
    x0, x1 = x[:, 0], x[:, 1]
    t = x1 - x0 * x0
    g = np.stack([-2 * (1 - x0) - 400 * x0 * t, 200 * t], axis=1)
    return (1 - x0) ** 2 + 100 * (t * t), g


def test_requires_grad_params_record_no_graph():
    torch = pytest.importorskip("torch")
    p = torch.ones(1000, dtype=torch.float64, requires_grad=True)

    def grad_fn(x: Any) -> Any:
        x = x.detach().requires_grad_(True)
        loss = (x * x).sum()
        (g,) = torch.autograd.grad(loss, x)
        return loss.detach(), g

    r = fnopt.fixed_point(fnopt.rmsprop(1e-2), p, grad_fn, stop=stop.max_iters(30))
    assert not r.params.requires_grad and r.params.grad_fn is None
    assert not r.best_params.requires_grad
    assert p.requires_grad and torch.equal(p.detach(), torch.ones(1000, dtype=torch.float64))


def test_ctrl_c_during_an_in_place_update_completes_it_first():
    task = fnopt.tasks.rosenbrock()
    hit = [0]

    def update(u: Any, s: Any, params: Any = None) -> Any:
        hit[0] += 1
        if hit[0] == 10:
            signal.raise_signal(signal.SIGINT)  # arrives in the middle of the update
        return u, s

    interrupting = fnopt.Transform(lambda p: (), update)
    opt = fnopt.chain(interrupting, fnopt.sgd(1e-3))
    r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop.max_iters(100))
    assert r.reason == "interrupted"
    # the update in flight was completed: the iterate after 10 steps, with its own state
    ref = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                            stop=stop.max_iters(10))
    np.testing.assert_array_equal(r.params, ref.params)
    assert r.iterations == 10 and r.state.count == 10


def test_epochs_over_a_loader_report_the_epoch_and_call_on_epoch():
    x, y = fnopt.tasks.make_linear_data(n=40)
    task = fnopt.tasks.linear_regression(x, y)
    loader = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10)]  # 4 batches
    seen: list[tuple[int, int]] = []
    epochs_in_info: list[Any] = []

    def on_epoch(info: Any) -> None:
        seen.append((info.epoch, info.iteration))

    r = fnopt.fixed_point(fnopt.sgd(0.05), task.init_params, task.grad_fn, data=loader,
                          epochs=3, on_epoch=on_epoch, stop=stop.max_iters(1000),
                          callback=lambda info: epochs_in_info.append(info.epoch))
    assert r.reason == "data_exhausted" and r.iterations == r.n_evals == 12
    assert seen == [(1, 4), (2, 8), (3, 12)]
    assert epochs_in_info == [0] * 4 + [1] * 4 + [2] * 4


def test_early_stopping_on_a_validation_metric_restores_the_best_params():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 1))
    y = 2 * x + 0.1 * rng.normal(size=(64, 1))
    task = fnopt.tasks.linear_regression(x[:, 0], y[:, 0])
    loader = [(x[i:i + 8, 0], y[i:i + 8, 0]) for i in range(0, 64, 8)]
    calls: list[float] = []

    # a validation metric that gets worse after epoch 2: early stopping must stop after
    # `patience` bad epochs and give back the epoch-2 params
    def metric(p: Any) -> float:
        calls.append(float(len(calls) + 1))
        return [3.0, 1.0, 2.0, 2.5, 2.7, 2.9][len(calls) - 1]

    rule = stop.no_improvement(metric, patience=2, every="epoch")
    snapshots: dict[int, Any] = {}
    r = fnopt.fixed_point(fnopt.sgd(0.01), task.init_params, task.grad_fn, data=loader,
                          epochs=10, stop=rule,
                          on_epoch=lambda info: snapshots.__setitem__(info.epoch, info.params))
    assert r.reason == "no_improvement" and not r.converged
    assert len(calls) == 4 and r.iterations == 4 * 8  # stopped at the end of epoch 4
    np.testing.assert_array_equal(r.params, snapshots[2])
    assert "restored" in r.message


from fnopt import optimizers as _optimizers  # noqa: E402

_FIRST_ORDER = sorted(set(_optimizers.__all__) - {"descent", "muon", "sam"})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", _FIRST_ORDER)
def test_loop_owned_path_is_bitwise_the_pure_path(name, backend):
    # without a callback the loop runs on its own buffers (ping-pong params, the state in
    # place); a callback makes it take the pure steps: the Results must be the same bits
    task = fnopt.tasks.rosenbrock(backend)
    kw = {} if name in ("prodigy", "dadapt_adam") else {"learning_rate": 1e-3}
    runs = []
    for callback in (None, lambda info: None):
        opt = getattr(fnopt, name)(**kw)
        r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop.max_iters(25),
                              callback=callback)
        runs.append(r)
    a, b = runs
    assert fnopt.to_numpy(a.params).tobytes() == fnopt.to_numpy(b.params).tobytes()
    assert a.value == b.value and a.iterations == b.iterations == 25
    for x, y in zip(fnopt.tree.leaves(fnopt.to_numpy(a.state)),
                    fnopt.tree.leaves(fnopt.to_numpy(b.state))):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f" and np.isnan(x).all():
            continue  # the gradient norm: computed only where something reads it
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), ("3", TypeError),
                                      (2.5, TypeError), (True, TypeError)])
def test_bad_epochs_name_the_argument(bad, exc):
    task = fnopt.tasks.rosenbrock()
    with pytest.raises(exc, match=r"^epochs: "):
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn, data=[()] * 2,
                          epochs=bad, stop=stop.max_iters(3))
