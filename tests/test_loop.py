"""fnopt.fixed_point: the seed Rosenbrock run, reasons, history, n_evals, data batches,
callbacks, divergence, Ctrl-C, bad inputs, and numpy/torch agreement."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

import fnopt
from fnopt import stop
from tests.strategies import assert_same_tree, snapshot, to_numpy

BACKENDS = ("numpy", "torch")


def _rosen_stop():
    return stop.loss_below(1e-3) | stop.max_iters(10_000)


def _manual_gd(task, lr, n):
    """The classic hand loop ``x -= lr * grad(x)``, on NumPy float64."""
    x = to_numpy(task.init_params).astype(np.float64)
    xs = [x]
    for _ in range(n):
        _, g = task.grad_fn(x)
        x = x - lr * g
        xs.append(x)
    return xs


# -- the seed run ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_rosenbrock_reproduces_5771_iterations(backend):
    task = fnopt.tasks.rosenbrock(backend)
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=_rosen_stop(), record=True)
    assert r.iterations == 5771
    assert r.reason == "loss_below" and r.converged and r.success
    np.testing.assert_allclose(to_numpy(r.params), [0.96840573, 0.93768081], atol=1e-8)
    np.testing.assert_array_equal(np.round(to_numpy(r.params), 4), [0.9684, 0.9377])
    assert r.value <= 1e-3
    # the loss before the last step was still above the tolerance
    assert r.history.loss[-2] > 1e-3 and r.history.loss[-1] == r.value
    # the value is the loss at the returned params, not at the previous iterate
    assert r.value == pytest.approx(float(task.loss(r.params)), rel=1e-12)
    # first-order: one evaluation per iterate, including the final one
    assert r.n_evals == r.iterations + 1
    assert r.state.count == r.iterations
    assert len(r.history) == r.iterations + 1
    # scipy-style aliases
    assert r.x is r.params and r.fun == r.value and r.nit == r.iterations


def test_seed_run_matches_the_hand_written_loop():
    task = fnopt.tasks.rosenbrock()
    xs = _manual_gd(task, 1e-3, 5771)
    losses = [float(task.loss(x)) for x in xs]
    first_below = next(i for i, v in enumerate(losses) if v <= 1e-3)
    assert first_below == 5771
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn, stop=_rosen_stop())
    np.testing.assert_array_equal(r.params, xs[5771])


def test_numpy_and_torch_float64_trajectories_agree_to_round_off():
    """Same optimizer code, both backends, float64: momentum + nesterov + weight decay
    on the MLP, iterate by iterate."""
    t_np = fnopt.tasks.mlp((4, 6, 1), activation="tanh", loss="bce")
    t_th = fnopt.tasks.mlp((4, 6, 1), activation="tanh", loss="bce", backend="torch")
    opt = fnopt.sgd(0.3, momentum=0.9, nesterov=True, weight_decay=1e-3)
    trace: dict[str, list[Any]] = {"numpy": [], "torch": []}
    for name, task in (("numpy", t_np), ("torch", t_th)):
        def cb(info, name=name):
            trace[name].append((info.value, to_numpy(info.params)))
        r = fnopt.fixed_point(opt, task.init_params, task.grad_fn,
                              stop=stop.max_iters(200), callback=cb, record=True)
        assert r.iterations == 200
    assert len(trace["numpy"]) == len(trace["torch"]) == 201
    for (v1, p1), (v2, p2) in zip(trace["numpy"], trace["torch"]):
        assert v1 == pytest.approx(v2, rel=1e-10, abs=1e-13)
        for k in p1:
            np.testing.assert_allclose(p1[k], p2[k], rtol=1e-9, atol=1e-11)
    assert trace["numpy"][-1][0] < 0.5 * trace["numpy"][0][0]  # it actually trained


# -- reasons, history, n_evals --------------------------------------------------------------


def _quad(backend="numpy"):
    """f(p) = |p|^2 / 2 from (8, 0): sgd(0.5) halves p each step."""
    if backend == "numpy":
        g = fnopt.grad.from_functions(lambda p: 0.5 * (p @ p), lambda p: p)
        return g, np.array([8.0, 0.0])
    return fnopt.grad.torch_autograd(lambda p: 0.5 * (p * p).sum()), torch.tensor([8.0, 0.0],
                                                                             dtype=torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_history_records_each_iterate(backend):
    g, p0 = _quad(backend)
    r = fnopt.fixed_point(fnopt.sgd(0.5), p0, g, stop=stop.max_iters(4), record=True)
    assert r.reason == "max_iters" and not r.converged
    np.testing.assert_allclose(r.history.loss, [32.0 / 4**k for k in range(5)])
    np.testing.assert_allclose(r.history.grad_norm, [8.0 / 2**k for k in range(5)])
    assert r.value == 32.0 / 4**4 and r.grad_norm == 0.5
    assert r.best_value == r.value
    np.testing.assert_allclose(to_numpy(r.best_params), to_numpy(r.params))
    assert r.n_evals == 5
    assert fnopt.fixed_point(fnopt.sgd(0.5), p0, g, stop=stop.max_iters(4)).history is None


def test_max_iters_zero_returns_a_copy_of_the_start():
    g, p0 = _quad()
    r = fnopt.fixed_point(fnopt.sgd(0.5), p0, g, stop=stop.max_iters(0))
    assert r.iterations == 0 and r.value == 32.0 and r.n_evals == 1
    np.testing.assert_array_equal(r.params, p0)
    assert r.params is not p0 and not np.shares_memory(r.params, p0)


def test_resume_from_result_state_continues_the_trajectory():
    g, p0 = _quad()
    opt = fnopt.sgd(0.5, momentum=0.5)
    full = fnopt.fixed_point(opt, p0, g, stop=stop.max_iters(6))
    half = fnopt.fixed_point(opt, p0, g, stop=stop.max_iters(3))
    rest = fnopt.fixed_point(opt, half.params, g, half.state, stop=stop.max_iters(3))
    np.testing.assert_array_equal(rest.params, full.params)


def test_bare_step_function_with_state():
    g, p0 = _quad()
    opt = fnopt.sgd(0.5)
    r = fnopt.fixed_point(opt.step, p0, g, opt.init(p0), stop=stop.loss_below(0.5))
    assert r.reason == "loss_below" and r.iterations == 3
    with pytest.raises(ValueError, match="state: required"):
        fnopt.fixed_point(opt.step, p0, g, stop=stop.max_iters(1))


class _LSState(NamedTuple):
    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any


def _exact_line_search_on_quadratic():
    """A value_at="output" optimizer: on |p|^2/2, the exact line search lands at 0 in
    one step, and the state holds the loss at the returned params."""

    def init(params):
        return _LSState(0, np.asarray(np.nan), np.asarray(np.nan))

    def step(params, grad_fn, state, *batch):
        _, g = grad_fn(params, *batch)
        new = params - g
        v, g2 = grad_fn(new, *batch)
        return new, _LSState(state.count + 1, v, fnopt.tree.global_norm(g2))

    return fnopt.Optimizer(init, step, "output")


def test_value_at_output_pairs_the_returned_params_with_their_loss():
    g, p0 = _quad()
    r = fnopt.fixed_point(_exact_line_search_on_quadratic(), p0, g,
                          stop=stop.loss_below(1e-12) | stop.max_iters(5), record=True)
    assert r.reason == "loss_below" and r.iterations == 1
    np.testing.assert_array_equal(r.params, [0.0, 0.0])
    assert r.value == 0.0 and r.n_evals == 2
    np.testing.assert_allclose(r.history.loss, [0.0])


# -- data batches ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_data_batches_are_passed_and_exhaustion_stops(backend):
    x, y = fnopt.tasks.make_linear_data(n=40, backend=backend)
    task = fnopt.tasks.linear_regression(x, y)
    seen = []

    def grad_fn(theta, xb, yb):
        seen.append(int(xb.shape[0]))
        return task.grad_fn(theta, xb, yb)

    batches = [(x[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10)] * 3  # 12 batches
    r = fnopt.fixed_point(fnopt.sgd(0.05), task.init_params, grad_fn, data=batches,
                          stop=stop.max_iters(1000), record=True)
    assert r.reason == "data_exhausted" and not r.converged
    assert seen == [10] * 12 and r.n_evals == 12
    # 12 batches: 12 updates, one per batch (a torch epoch); 12 evaluated iterates
    assert r.iterations == 12 and len(r.history) == 12 and r.state.count == 12
    # the same run by hand
    theta = task.init_params
    for xb, yb in batches:
        theta = theta - 0.05 * task.grad_fn(theta, xb, yb)[1]
    np.testing.assert_allclose(to_numpy(r.params), to_numpy(theta), rtol=1e-12)


def test_data_batches_that_are_not_tuples_are_passed_whole():
    got = []

    def grad_fn(p, scale):
        got.append(scale)
        return 0.5 * scale * (p @ p), scale * p

    r = fnopt.fixed_point(fnopt.sgd(0.1), np.ones(2), grad_fn, data=iter([1.0, 2.0, 3.0]),
                          stop=stop.max_iters(10))
    assert got == [1.0, 2.0, 3.0] and r.reason == "data_exhausted"


def test_sgd_on_minibatches_reaches_the_least_squares_solution():
    x, y = fnopt.tasks.make_linear_data(n=64, seed=4)
    task = fnopt.tasks.linear_regression(x, y)
    rng = np.random.default_rng(0)

    def epochs(n):
        for _ in range(n):
            idx = rng.permutation(64)
            for i in range(0, 64, 16):
                j = idx[i : i + 16]
                yield x[j], y[j]

    lr = lambda k: 0.1 / (1 + k / 200)  # noqa: E731 (a decaying schedule)
    r = fnopt.fixed_point(fnopt.sgd(lr), task.init_params, task.grad_fn, data=epochs(400),
                          stop=stop.max_iters(10**6))
    np.testing.assert_allclose(r.params, task.solution, atol=0.05)


# -- callbacks ----------------------------------------------------------------------------


def test_callback_sees_every_iterate_and_can_stop():
    g, p0 = _quad()
    seen = []

    def cb(info):
        seen.append((info.iteration, info.value, info.learning_rate))
        return info.iteration == 2

    r = fnopt.fixed_point(fnopt.sgd(0.5), p0, g, stop=stop.max_iters(10), callback=cb)
    assert r.reason == "callback" and not r.converged and r.iterations == 2
    assert [s[0] for s in seen] == [0, 1, 2]
    assert [s[1] for s in seen] == [32.0, 8.0, 2.0]
    np.testing.assert_array_equal(r.params, [2.0, 0.0])
    assert seen[1][2] == 0.5


def test_callback_exception_is_wrapped_with_the_last_iterate():
    g, p0 = _quad()

    def cb(info):
        if info.iteration == 1:
            raise RuntimeError("boom")

    with pytest.raises(fnopt.OptimizationError, match="boom") as ei:
        fnopt.fixed_point(fnopt.sgd(0.5), p0, g, stop=stop.max_iters(10), callback=cb)
    np.testing.assert_array_equal(ei.value.result.params, [4.0, 0.0])


# -- failures: divergence, interrupts, errors ---------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_returns_the_last_finite_params(backend):
    task = fnopt.tasks.rosenbrock(backend)
    with np.errstate(over="ignore", invalid="ignore"):
        r = fnopt.fixed_point(fnopt.sgd(0.1), task.init(0), task.grad_fn,
                              stop=stop.max_iters(1000), record=True)
    assert r.reason == "non_finite" and not r.converged
    assert "NaN or infinite" in r.message
    assert fnopt.tree.all_finite(r.params)
    assert math.isfinite(r.value) and r.value == pytest.approx(float(task.loss(r.params)))
    assert np.all(np.isfinite(r.history.loss)) and r.history.loss[-1] == r.value
    assert r.iterations == len(r.history) - 1 > 0
    with (
        pytest.raises(fnopt.OptimizationError, match="NaN or infinite") as ei,
        np.errstate(over="ignore", invalid="ignore"),
    ):
        fnopt.fixed_point(fnopt.sgd(0.1), task.init(0), task.grad_fn,
                          stop=stop.max_iters(1000), on_failure="raise")
    assert ei.value.result.reason == "non_finite"
    np.testing.assert_array_equal(to_numpy(ei.value.result.params), to_numpy(r.params))


def test_non_finite_on_the_first_evaluation_keeps_the_start():
    p0 = np.array([1.0, 2.0])
    r = fnopt.fixed_point(fnopt.sgd(0.1), p0, lambda p: (np.asarray(np.inf), p),
                          stop=stop.max_iters(5))
    assert r.reason == "non_finite" and r.iterations == 0
    np.testing.assert_array_equal(r.params, p0)
    assert r.params is not p0 and math.isnan(r.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interrupt_at", [1, 2, 7])
def test_keyboard_interrupt_returns_the_last_completed_iterate(backend, interrupt_at):
    task = fnopt.tasks.rosenbrock(backend)
    calls = []

    def grad_fn(p):
        calls.append(to_numpy(p))
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return task.grad_fn(p)

    snap = snapshot(task.init_params)
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, grad_fn, stop=stop.max_iters(100))
    assert r.reason == "interrupted" and not r.converged
    assert "interrupted" in r.message
    # the iterate whose step was interrupted: nothing computed before it is lost
    assert r.iterations == interrupt_at - 1
    np.testing.assert_array_equal(to_numpy(r.params), calls[interrupt_at - 1])
    expected = _manual_gd(fnopt.tasks.rosenbrock(), 1e-3, interrupt_at - 1)[-1]
    np.testing.assert_allclose(to_numpy(r.params), expected, rtol=1e-15)
    assert r.state.count == interrupt_at - 1  # the state paired with those params
    assert_same_tree(task.init_params, snap)
    if interrupt_at == 1:
        assert r.params is not task.init_params


def test_exception_in_grad_fn_raises_optimization_error_with_last_good():
    g, p0 = _quad()

    def grad_fn(p):
        if p[0] < 3:
            raise FloatingPointError("bad point")
        return g(p)

    with pytest.raises(fnopt.OptimizationError, match="FloatingPointError: bad point") as ei:
        fnopt.fixed_point(fnopt.sgd(0.5), p0, grad_fn, stop=stop.max_iters(10))
    assert isinstance(ei.value.__cause__, FloatingPointError)
    res = ei.value.result
    # the iterate whose evaluation raised, with its own state (resumable); loss unknown
    assert res.reason == "error" and res.iterations == 2 and np.isnan(res.value)
    assert res.params[0] < 3 and res.state.count == 2
    assert res.best_value == pytest.approx(float(g(np.array([4.0, 0.0]))[0]))


def test_step_failed_stops_with_its_reason():
    g, p0 = _quad()
    opt = fnopt.sgd(0.5)

    def step(params, grad_fn, state, *batch):
        if state.count == 2:
            raise fnopt.StepFailed(fnopt.Reason.LINE_SEARCH_FAILED, "no decrease")
        return opt.step(params, grad_fn, state, *batch)

    r = fnopt.fixed_point(step, p0, g, opt.init(p0), stop=stop.max_iters(10))
    assert r.reason == "line_search_failed" and "no decrease" in r.message
    assert r.iterations == 1 and not r.converged


# -- bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_initial_non_finite_params_raise(backend, bad):
    p = {"w": np.array([1.0, bad]), "b": np.zeros(1)}
    if backend == "torch":
        p = {k: torch.tensor(v) for k, v in p.items()}
    calls = []
    with pytest.raises(ValueError, match=r"params: leaf \['w'\] contains NaN or inf"):
        fnopt.fixed_point(fnopt.sgd(0.1), p, lambda q: calls.append(1),
                          stop=stop.max_iters(3))
    assert calls == []


def _good():
    return fnopt.sgd(0.1), {"w": np.ones(2), "b": np.zeros(1)}


def _grad_ok(p):
    return np.asarray(0.5 * (p["w"] @ p["w"])), {"w": p["w"].copy(), "b": np.zeros(1)}


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"params": {"w": np.ones(2, dtype=int)}}, TypeError, r"params: leaf \['w'\] has dtype"),
        ({"params": {"w": np.ones(2), "b": torch.zeros(1)}}, TypeError, "mix numpy and torch"),
        ({"params": {}}, ValueError, "empty pytree"),
        ({"params": {"w": [1.0, 2.0]}}, TypeError, "leaves must be numpy.ndarray"),
        ({"grad_fn": None}, TypeError, "grad_fn: expected a callable"),
        ({"stop": 100}, TypeError, "stop: expected a criterion"),
        ({"stop": None}, TypeError, "stop: expected a criterion"),
        ({"callback": 3}, TypeError, "callback: expected a callable"),
        ({"opt": "sgd"}, TypeError, "opt_or_step: expected a callable"),
        ({"on_failure": "ignore"}, ValueError, "on_failure"),
        ({"grad_fn": lambda p: (np.ones(2), p)}, ValueError, "must be a scalar"),
        ({"grad_fn": lambda p: np.asarray(1.0)}, TypeError, r"\(value, grads\) pair"),
        ({"grad_fn": lambda p: (np.asarray(1.0), {"w": np.ones(3), "b": np.ones(1)})},
         ValueError, r"leaf \['w'\] has shape \(3,\)"),
        ({"grad_fn": lambda p: (np.asarray(1.0), {"w": np.ones(2, np.float32),
                                                  "b": np.ones(1)})},
         TypeError, r"leaf \['w'\] has dtype float32"),
        ({"grad_fn": lambda p: (np.asarray(1.0), {"w": np.ones(2)})}, ValueError, "structure"),
    ],
)
def test_bad_inputs_raise_clear_errors_and_mutate_nothing(kwargs, exc, match):
    opt, params = _good()
    args = {"opt": opt, "params": params, "grad_fn": _grad_ok, "stop": stop.max_iters(3)}
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("callback", "on_failure") if k in args}
    snap = snapshot(args["params"]) if fnopt.tree.leaves(args["params"]) else None
    with pytest.raises(exc, match=match):
        fnopt.fixed_point(args["opt"], args["params"], args["grad_fn"], stop=args["stop"],
                          **extra)
    if snap is not None:
        assert_same_tree(args["params"], snap)


def test_the_callers_params_and_state_are_never_modified_or_returned():
    task = fnopt.tasks.mlp(backend="torch")
    opt = fnopt.sgd(0.1, momentum=0.9, weight_decay=0.01)
    state = opt.init(task.init_params)
    _, state = opt.step(task.init_params, task.grad_fn, state)
    sp, ss = snapshot(task.init_params), snapshot(state)
    r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, state, stop=stop.max_iters(5))
    assert_same_tree(task.init_params, sp)
    assert_same_tree(state, ss)
    ids = {id(x) for x in fnopt.tree.leaves(task.init_params)}
    assert not ids & {id(x) for x in fnopt.tree.leaves(r.params)}


@pytest.mark.parametrize("case", ["converged", "non_finite", "interrupted", "max_iters"])
def test_n_evals_counts_every_grad_fn_call(case):
    """``Result.n_evals`` is the number of ``grad_fn`` calls the run made; in particular
    nothing calls ``grad_fn`` again after a Ctrl-C (the user wants control back)."""
    task = fnopt.tasks.rosenbrock()
    calls = [0]
    lr = 0.1 if case == "non_finite" else 1e-3
    start = task.init(0) if case == "non_finite" else task.init_params

    def grad_fn(p):
        calls[0] += 1
        if case == "interrupted" and calls[0] == 300:
            raise KeyboardInterrupt
        return task.grad_fn(p)

    crit = stop.loss_below(1e-3) | stop.max_iters(200 if case == "max_iters" else 10_000)
    with np.errstate(over="ignore", invalid="ignore"):
        r = fnopt.fixed_point(fnopt.sgd(lr), start, grad_fn, stop=crit)
    want = {"converged": "loss_below", "non_finite": "non_finite",
            "interrupted": "interrupted", "max_iters": "max_iters"}[case]
    assert r.reason == want
    assert r.n_evals == calls[0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_dimensional_params_train(backend, dtype):
    """A bare 0-d array stays a 0-d array (NumPy arithmetic on 0-d arrays returns
    scalars; the backend keeps leaves as arrays) and keeps its dtype."""
    if backend == "numpy":
        p0 = np.array(3.0, dtype=dtype)
        g = fnopt.grad.from_functions(lambda p: p * p, lambda p: 2 * p)
    else:
        p0 = torch.tensor(3.0, dtype=getattr(torch, dtype))
        g = fnopt.grad.torch_autograd(lambda p: p * p)
    r = fnopt.fixed_point(fnopt.sgd(0.1, momentum=0.5, weight_decay=0.01), p0, g,
                          stop=stop.grad_norm_below(1e-4) | stop.max_iters(500))
    assert r.reason == "grad_norm_below"
    assert type(r.params) is type(p0) and r.params.shape == () and r.params.dtype == p0.dtype
    assert abs(float(r.params)) < 1e-4


def test_history_iterates_over_loss_grad_norm_pairs():
    r = fnopt.fixed_point(fnopt.sgd(0.1), np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p),
                          stop=stop.max_iters(3), record=True)
    pairs = list(r.history)
    assert len(pairs) == len(r.history) == 4
    assert pairs == list(zip(r.history.loss.tolist(), r.history.grad_norm.tolist()))
    assert all(type(v) is float and type(g) is float for v, g in pairs)
    assert pairs[0] == (5.0, pytest.approx(np.sqrt(20.0)))
