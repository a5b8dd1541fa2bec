"""Failure semantics of fnopt.fixed_point: on_failure, best-so-far, non-finite values,
grad_fn exceptions, Ctrl-C, callbacks and StepFailed — each leaves the caller with the
last good iterate and never touches the caller's arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import fnopt

BACKENDS = ["numpy", "torch"]


def np_(x: Any) -> np.ndarray:
    return np.asarray(fnopt.to_numpy(x))


def same_bits(a: Any, b: Any) -> bool:
    return np_(a).tobytes() == np_(b).tobytes()


def reference(backend: str, n: int, opt: fnopt.Optimizer | None = None) -> fnopt.Result:
    """The run to iteration ``n`` with nothing going wrong."""
    task = fnopt.tasks.rosenbrock(backend)
    return fnopt.fixed_point(opt or fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                             stop=fnopt.stop.max_iters(n), record=True)


def faulty(grad_fn, at_call: int, fault: str):
    """``grad_fn`` that misbehaves on call number ``at_call`` (1-based)."""
    calls = [0]

    def g(p, *batch):
        calls[0] += 1
        value, grads = grad_fn(p, *batch)
        if calls[0] == at_call:
            if fault == "nan_loss":
                return value * float("nan"), grads
            if fault == "inf_loss":
                return value + float("inf"), grads
            if fault == "nan_grad":
                return value, grads * float("nan")
            if fault == "inf_grad":
                return value, grads + float("inf")
            if fault == "error":
                raise ZeroDivisionError("user code failed")
            if fault == "ctrl_c":
                raise KeyboardInterrupt
        return value, grads

    return g


# With a first-order method, call k evaluates the loss at iterate k - 1, so a NaN loss
# there makes iterate k - 2 the last one with a finite loss. A NaN gradient alone does
# not stop the loop (apply_if_finite could skip it): iterate k - 1 keeps its finite loss,
# the update from it makes the params non-finite, and the loss at iterate k stops it.
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fault", ["nan_loss", "inf_loss", "nan_grad", "inf_grad"])
def test_non_finite_keeps_the_last_finite_iterate(backend, fault):
    task = fnopt.tasks.rosenbrock(backend)
    start = fnopt.tree.clone(task.init_params)
    k = 40
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, faulty(task.grad_fn, k, fault),
                          stop=fnopt.stop.max_iters(100))
    last = k - 2 if fault.endswith("loss") else k - 1
    ref = reference(backend, last)
    assert r.reason == "non_finite" and not r.converged
    assert r.iterations == last
    assert same_bits(r.params, ref.params) and fnopt.tree.all_finite(r.params)
    assert r.value == ref.value and math.isfinite(r.value)
    assert f"at iteration {last + 1}" in r.message
    assert same_bits(task.init_params, start)  # the caller's params are untouched


@pytest.mark.parametrize("backend", BACKENDS)
def test_on_failure_raise_carries_the_result(backend):
    task = fnopt.tasks.rosenbrock(backend)
    g = faulty(task.grad_fn, 10, "nan_loss")
    with pytest.raises(fnopt.OptimizationError) as info:
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, g,
                          stop=fnopt.stop.max_iters(100), on_failure="raise")
    err = info.value
    assert err.result.reason == "non_finite" and err.iteration == err.result.iterations == 8
    assert same_bits(err.result.params, reference(backend, 8).params)
    assert "iteration 8" in str(err)


def test_on_failure_raise_does_not_raise_on_success_or_max_iters():
    task = fnopt.tasks.rosenbrock()
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(5), on_failure="raise")
    assert r.reason == "max_iters"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("on_failure", ["return", "raise"])
def test_grad_fn_exception_is_reraised_with_iteration_and_result(backend, on_failure):
    task = fnopt.tasks.rosenbrock(backend)
    start = fnopt.tree.clone(task.init_params)
    k = 25
    with pytest.raises(fnopt.OptimizationError) as info:
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, faulty(task.grad_fn, k, "error"),
                          stop=fnopt.stop.max_iters(100), on_failure=on_failure)
    err = info.value
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert err.iteration == k - 1  # evaluating iterate k - 1 failed
    assert err.result.reason == "error"
    # the last complete iterate: params and state that belong together (the run can
    # resume from them); its loss is unknown because evaluating it raised
    assert err.result.iterations == k - 1 and math.isnan(err.result.value)
    assert same_bits(err.result.params, reference(backend, k - 1).params)
    assert err.result.state.count == k - 1
    assert "ZeroDivisionError: user code failed" in str(err)
    assert same_bits(task.init_params, start)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_callback", [False, True])
def test_ctrl_c_in_grad_fn_returns_the_last_completed_iterate(backend, with_callback):
    task = fnopt.tasks.rosenbrock(backend)
    k = 30
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, faulty(task.grad_fn, k, "ctrl_c"),
                          stop=fnopt.stop.max_iters(100), on_failure="raise",
                          callback=(lambda info: None) if with_callback else None)
    assert r.reason == "interrupted" and not r.converged
    # the step from iterate k - 1 was cut short; iterate k - 1 itself is complete
    assert r.iterations == k - 1
    assert same_bits(r.params, reference(backend, k - 1).params)
    best = reference(backend, k - 2)
    if with_callback or not math.isnan(r.best_value):
        assert r.best_value == best.value and same_bits(r.best_params, best.params)
    else:
        # on its own buffers the loop hands control back at once after Ctrl-C instead of
        # recomputing the best iterate: best is then the returned iterate, loss unknown
        assert same_bits(r.best_params, r.params)


def test_ctrl_c_in_a_callback_returns_that_iterate():
    task = fnopt.tasks.rosenbrock()

    def cb(info):
        if info.iteration == 12:
            raise KeyboardInterrupt

    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(100), callback=cb)
    ref = reference("numpy", 12)
    assert r.reason == "interrupted" and r.iterations == 12
    assert same_bits(r.params, ref.params) and r.value == ref.value


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_best_so_far_on_a_diverging_run(backend):
    # too large a step: the loss rises before it overflows
    task = fnopt.tasks.rosenbrock(backend)
    r = fnopt.fixed_point(fnopt.sgd(0.01), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(500), record=True)
    assert r.reason == "non_finite"
    losses = r.history.loss
    assert np.all(np.isfinite(losses))
    best = int(np.argmin(losses))
    assert r.best_value == losses.min() < losses[-1]
    assert float(task.loss(r.best_params)) == r.best_value
    assert same_bits(r.best_params, reference(backend, best, fnopt.sgd(0.01)).params)


def test_best_so_far_on_max_iters():
    # heavy momentum oscillates: the last iterate is not the best one
    task = fnopt.tasks.rosenbrock()
    r = fnopt.fixed_point(fnopt.sgd(1e-3, momentum=0.99), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(300), record=True)
    assert r.reason == "max_iters"
    assert r.best_value == r.history.loss.min() < r.value
    assert float(task.loss(r.best_params)) == r.best_value
    assert r.best_params is not task.init_params


def test_best_params_is_never_the_callers_array():
    task = fnopt.tasks.rosenbrock()
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(0))
    assert r.iterations == 0
    assert r.params is not task.init_params and r.best_params is not task.init_params


def test_callback_sees_loss_grad_norm_lr_and_time():
    task = fnopt.tasks.rosenbrock()
    seen = []
    sched = lambda count: 1e-3 / (1 + count)  # noqa: E731
    ref = reference("numpy", 5, fnopt.sgd(sched))
    r = fnopt.fixed_point(fnopt.sgd(sched), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(5), callback=seen.append)
    assert [i.iteration for i in seen] == [0, 1, 2, 3, 4, 5]
    assert [i.value for i in seen] == list(ref.history.loss)
    assert all(i.loss == i.value for i in seen)
    assert [i.grad_norm for i in seen] == list(ref.history.grad_norm)
    # the rate used by the step that produced iterate k is sched(k - 1)
    assert [i.learning_rate for i in seen[1:]] == [sched(k - 1) for k in range(1, 6)]
    times = [i.elapsed for i in seen]
    assert times == sorted(times) and times[0] >= 0
    assert r.reason == "max_iters"


def test_callback_can_stop_the_run():
    task = fnopt.tasks.rosenbrock()
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(100), callback=lambda i: i.value < 0.9)
    assert r.reason == "callback" and not r.converged
    assert r.value < 0.9 and r.iterations == int(np.argmax(
        reference("numpy", 100).history.loss < 0.9))


def test_callback_exception_carries_the_iterate():
    task = fnopt.tasks.rosenbrock()

    def cb(info):
        if info.iteration == 7:
            raise RuntimeError("plotting failed")

    with pytest.raises(fnopt.OptimizationError) as info:
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(100), callback=cb)
    err = info.value
    assert isinstance(err.__cause__, RuntimeError) and err.iteration == 7
    assert err.result.iterations == 7
    assert same_bits(err.result.params, reference("numpy", 7).params)


def test_step_failed_stops_with_its_reason():
    task = fnopt.tasks.rosenbrock()
    opt = fnopt.sgd(1e-3)

    def step(params, grad_fn, state, *batch):
        if state.count == 4:
            raise fnopt.StepFailed(fnopt.Reason.LINE_SEARCH_FAILED, "no step decreases f")
        return opt.step(params, grad_fn, state, *batch)

    state = opt.init(task.init_params)
    r = fnopt.fixed_point(step, task.init_params, task.grad_fn, state,
                          stop=fnopt.stop.max_iters(100))
    assert r.reason == "line_search_failed" and "no step decreases f" in r.message
    assert r.iterations == 3  # iterate 4 exists but its loss was never evaluated
    assert same_bits(r.params, reference("numpy", 3).params)
    with pytest.raises(fnopt.OptimizationError) as info:
        fnopt.fixed_point(step, task.init_params, task.grad_fn, state,
                          stop=fnopt.stop.max_iters(100), on_failure="raise")
    assert info.value.result.reason == "line_search_failed"


def test_failures_of_a_line_search_method_keep_its_iterate():
    task = fnopt.tasks.rosenbrock()
    ref = reference("numpy", 6, fnopt.lbfgs())
    calls = ref.n_evals + 1  # the first evaluation of the 7th step
    r = fnopt.fixed_point(fnopt.lbfgs(), task.init_params,
                          faulty(task.grad_fn, calls, "nan_loss"),
                          stop=fnopt.stop.max_iters(50))
    # value_at="output": every returned iterate has a finite loss, so the line search
    # either backs off from the NaN or the run stops at iterate 6
    assert r.reason in ("non_finite", "line_search_failed", "max_iters")
    assert math.isfinite(r.value) and r.iterations >= 6
    if r.reason != "max_iters":
        assert same_bits(r.params, ref.params)


def test_on_failure_is_validated():
    task = fnopt.tasks.rosenbrock()
    with pytest.raises(ValueError, match="on_failure"):
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(5), on_failure="ignore")
