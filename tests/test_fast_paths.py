"""The fast paths give the pure path's numbers, bitwise, and never touch the caller's
arrays: ``opt.step(..., donate=True)`` against the pure ``opt.step``, and
``fixed_point`` on loop-owned buffers against ``fixed_point`` on the pure step (forced
with a callback, which the loop-owned path does not take), on NumPy and torch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optree
import pytest

import fnopt
from fnopt import _inplace, tree

torch = pytest.importorskip("torch")

BACKENDS = ["numpy", "torch"]
DTYPES = ["float32", "float64"]

OPTIMIZERS = {
    "sgd": lambda: fnopt.sgd(0.02),
    "sgd_momentum": lambda: fnopt.sgd(0.02, momentum=0.9),
    "sgd_nesterov_wd": lambda: fnopt.sgd(0.02, momentum=0.8, nesterov=True, weight_decay=0.01),
    "sgd_dampening_max": lambda: fnopt.sgd(0.01, momentum=0.5, dampening=0.3, maximize=True),
    "sgd_schedule": lambda: fnopt.sgd(lambda count: 0.02 / (1 + count)),
    "adam": lambda: fnopt.adam(0.05),
    "adam_wd_amsgrad": lambda: fnopt.adam(0.05, weight_decay=0.1, amsgrad=True),
    "adam_max_schedule": lambda: fnopt.adam(lambda count: 0.05 * 0.99**count, maximize=True),
}


def make_params(backend: str, dtype: str, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    p = {"w": rng.uniform(-1.5, 1.5, (3, 2)), "b": rng.uniform(-1.5, 1.5, 2)}
    p = {k: v.astype(dtype) for k, v in p.items()}
    if backend == "torch":
        return {k: torch.from_numpy(v) for k, v in p.items()}
    return p


def double_well(sign: float = 1.0) -> Any:
    """``sum(x^4/4 - x^2)`` (minima at ±sqrt(2)); ``sign=-1`` for maximize=True."""

    def grad_fn(p: Any) -> tuple[Any, Any]:
        value = sum((x**4 / 4 - x**2).sum() for x in tree.leaves(p)) * sign
        return value, tree.map(lambda x: (x**3 - 2 * x) * sign, p)

    return grad_fn


def sign_of(name: str) -> float:
    return -1.0 if "max" in name else 1.0


def as_numpy(x: Any) -> Any:
    if fnopt.backend.is_tensor(x):
        return x.detach().cpu().numpy()
    return x


def assert_bitwise(a: Any, b: Any) -> None:
    la, sa = optree.tree_flatten(a)
    lb, sb = optree.tree_flatten(b)
    assert sa == sb
    for x, y in zip(la, lb):
        x, y = as_numpy(x), as_numpy(y)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert np.asarray(x).dtype == np.asarray(y).dtype
            assert np.array_equal(x, y, equal_nan=True), (x, y)
        else:
            assert x == y or (math.isnan(x) and math.isnan(y)), (x, y)


def snapshot(t: Any) -> Any:
    return optree.tree_map(
        lambda x: as_numpy(x).copy() if isinstance(as_numpy(x), np.ndarray) else x, t
    )


def leaf_ids(t: Any) -> set[int]:
    """The ids of the arrays/tensors in ``t`` (numbers are shared, and immutable)."""
    return {
        id(x) for x in tree.leaves(t)
        if isinstance(x, np.ndarray) or fnopt.backend.is_tensor(x)
    }


# -- opt.step(..., donate=True) --------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_donated_step_is_bitwise_the_pure_step(name, backend, dtype):
    opt = OPTIMIZERS[name]()
    assert isinstance(opt.step, _inplace.DonatingStep)
    grad_fn = double_well(sign_of(name))
    p0 = make_params(backend, dtype)
    pure_p, pure_s = p0, opt.init(p0)
    don_p, don_s = tree.clone(p0), opt.init(p0)
    for _ in range(6):
        pure_p, pure_s = opt.step(pure_p, grad_fn, pure_s)
        ids = leaf_ids(don_p)
        don_p, don_s = opt.step(don_p, grad_fn, don_s, donate=True)
        assert leaf_ids(don_p) == ids  # written into the donated buffers
        assert_bitwise(pure_p, don_p)
        assert_bitwise(pure_s, don_s)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_pure_step_never_touches_its_inputs(name, backend):
    opt = OPTIMIZERS[name]()
    p = make_params(backend, "float64")
    s = opt.init(p)
    for _ in range(2):  # past the first step (momentum buffers are then in use)
        p, s = opt.step(p, double_well(sign_of(name)), s)
    value, grads = double_well(sign_of(name))(p)
    before = snapshot((p, s, grads))
    p2, s2 = opt.step(p, lambda _: (value, grads), s)
    assert_bitwise(before, snapshot((p, s, grads)))
    assert not leaf_ids(p2) & leaf_ids((p, s, grads))
    assert not leaf_ids(s2.inner) & leaf_ids((p, s, grads))


# -- fixed_point on loop-owned buffers ---------------------------------------------------

STOPS = {
    "loss_below": lambda: fnopt.stop.loss_below(-0.9) | fnopt.stop.max_iters(300),
    "max_iters": lambda: fnopt.stop.max_iters(25),
    "grad_norm_and_loss_change": lambda: (
        fnopt.stop.grad_norm_below(1e-3) | fnopt.stop.loss_change_below(1e-9, patience=3)
        | fnopt.stop.max_iters(200)
    ),
}


def run_both(opt_fn: Any, params: Any, grad_fn: Any, stop: Any, state: Any = None) -> Any:
    """(loop-owned Result, pure Result): a do-nothing callback forces the pure step."""
    fast = fnopt.fixed_point(opt_fn(), params, grad_fn, state, stop=stop)
    pure = fnopt.fixed_point(opt_fn(), params, grad_fn, state, stop=stop, callback=lambda i: None)
    return fast, pure


def assert_same_result(fast: Any, pure: Any) -> None:
    assert_bitwise(fast.params, pure.params)
    assert_bitwise(fast.state, pure.state)
    assert_bitwise(fast.best_params, pure.best_params)
    assert (fast.iterations, fast.reason, fast.converged) == (
        pure.iterations, pure.reason, pure.converged
    )
    # a replay (of an overwritten iterate the Result needs) calls grad_fn again
    assert fast.n_evals >= pure.n_evals
    assert_bitwise((fast.value, fast.grad_norm, fast.best_value),
                   (pure.value, pure.grad_norm, pure.best_value))


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_loop_owned_buffers_give_the_pure_result(name, backend, dtype, stop):
    opt_fn = OPTIMIZERS[name]
    crit = STOPS[stop]()
    assert _inplace.loop_can_donate(
        opt_fn(), stop=crit, data=None, callback=None, differentiable=False
    )
    params = make_params(backend, dtype)
    before = snapshot(params)
    fast, pure = run_both(opt_fn, params, double_well(sign_of(name)), crit)
    assert_same_result(fast, pure)
    assert_bitwise(before, snapshot(params))  # the caller's arrays are untouched
    assert not leaf_ids(fast.params) & leaf_ids(params)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_loop_updates_its_own_buffers_in_place(name, backend):
    seen: list[set[int]] = []

    def grad_fn(p: Any) -> Any:
        seen.append(leaf_ids(p))
        return double_well()(p)

    params = make_params(backend, "float64")
    fnopt.fixed_point(OPTIMIZERS[name](), params, grad_fn, stop=fnopt.stop.max_iters(5))
    assert len(seen) == 6
    assert all(ids == seen[0] for ids in seen)  # one set of buffers, reused
    assert not seen[0] & leaf_ids(params)  # a copy of the caller's params


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_callers_state_is_copied_not_consumed(name, backend):
    opt = OPTIMIZERS[name]()
    params = make_params(backend, "float64")
    p, s = params, opt.init(params)
    for _ in range(3):
        p, s = opt.step(p, double_well(), s)
    before = snapshot((p, s))
    fast, pure = run_both(OPTIMIZERS[name], p, double_well(), fnopt.stop.max_iters(10), s)
    assert_same_result(fast, pure)
    assert_bitwise(before, snapshot((p, s)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "name, lr", [("sgd", 0.5), ("sgd_momentum", 0.3), ("adam", 3.0)]
)
def test_divergence_and_best_iterate_are_replayed_exactly(name, lr, backend):
    """A run that blows up (non_finite: the last finite iterate, overwritten in the
    buffers) or wanders (the best iterate long gone): recomputed bitwise."""
    factories = {
        "sgd": lambda: fnopt.sgd(lr),
        "sgd_momentum": lambda: fnopt.sgd(lr, momentum=0.9),
        "adam": lambda: fnopt.adam(lr),
    }
    params = tree.scale(3.0, make_params(backend, "float32", seed=3))  # outside the wells
    fast, pure = run_both(factories[name], params, double_well(), fnopt.stop.max_iters(200))
    assert_same_result(fast, pure)
    if name != "adam":
        assert fast.reason == "non_finite"
    assert fast.best_value <= fast.value


@pytest.mark.parametrize("backend", BACKENDS)
def test_interrupt_and_error_mid_run_give_the_pure_result(backend):
    params = make_params(backend, "float64")

    def failing(exc: BaseException, at: int) -> Any:
        calls = [0]

        def grad_fn(p: Any) -> Any:
            calls[0] += 1
            if calls[0] == at:
                raise exc
            return double_well()(p)

        return grad_fn

    stop = fnopt.stop.max_iters(50)
    fast, pure = (
        fnopt.fixed_point(
            fnopt.adam(0.05), params, failing(KeyboardInterrupt(), 7), stop=stop, callback=cb
        )
        for cb in (None, lambda i: None)
    )
    assert fast.reason == "interrupted" and fast.iterations == 6
    assert fast.n_evals == pure.n_evals == 7  # no replay after Ctrl-C
    assert_bitwise((fast.params, fast.state), (pure.params, pure.state))
    # the best iterate (5) was overwritten: the returned one stands in for it
    assert pure.best_value < math.inf and math.isnan(fast.best_value)
    assert_bitwise(fast.best_params, fast.params)
    results = []
    for cb in (None, lambda i: None):
        with pytest.raises(fnopt.OptimizationError) as err:
            fnopt.fixed_point(
                fnopt.sgd(0.05, momentum=0.9), params, failing(RuntimeError("boom"), 9),
                stop=stop, callback=cb,
            )
        results.append(err.value.result)
    assert_same_result(*results)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, True),
        ({"callback": lambda info: None}, False),
        ({"data": [()]}, False),
        ({"stop": fnopt.stop.param_change_below(1e-6) | fnopt.stop.max_iters(3)}, False),
        ({"differentiable": True}, False),
    ],
)
def test_when_the_loop_owns_buffers(kwargs, expected):
    args = {"stop": fnopt.stop.max_iters(3), "data": None, "callback": None,
            "differentiable": False}
    args.update(kwargs)
    assert _inplace.loop_can_donate(fnopt.adam(0.1), **args) is expected
    assert _inplace.loop_can_donate(fnopt.rmsprop(0.1), **args) is False  # no in-place form
    assert _inplace.loop_can_donate(fnopt.adam(0.1).step, **args) is False  # bare step


def test_seed_run_on_loop_owned_buffers():
    task = fnopt.tasks.rosenbrock()
    stop = fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10_000)
    fast, pure = run_both(lambda: fnopt.sgd(1e-3), task.init_params, task.grad_fn, stop)
    assert fast.iterations == 5771
    assert_same_result(fast, pure)
    assert fast.n_evals == pure.n_evals == 5772  # the best iterate is the last: no replay


# -- the loop's compiled stopping test ---------------------------------------------------

CRITERIA = [
    fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10),
    fnopt.stop.grad_norm_below(0.5) & fnopt.stop.loss_below(1.0),
    (fnopt.stop.loss_below(0.0) & fnopt.stop.max_iters(3)) | fnopt.stop.time_limit(2.0),
    fnopt.stop.max_iters(0),
    fnopt.stop.grad_norm_below(0.0) | (fnopt.stop.max_iters(5) & fnopt.stop.time_limit(1.0)),
]


@pytest.mark.parametrize("crit", CRITERIA, ids=repr)
def test_compiled_criterion_fires_exactly_when_check_does(crit):
    from fnopt.loop import _scalar_predicate

    quick, _ = _scalar_predicate(crit)
    assert quick is not None
    grid = [0.0, 1e-3, 0.5, 1.0, 2.0, math.inf, math.nan, -1.0]
    for k in (0, 2, 3, 5, 10, 11):
        for v in grid:
            for g in grid[:6]:
                for e in (0.0, 1.0, 2.5):
                    info = fnopt.stop.Info(k, v, g, None, None, None, math.nan, e)
                    fired, _ = crit.check(info, crit.init())
                    assert bool(fired) == quick(k, v, g, e), (k, v, g, e)


@pytest.mark.parametrize(
    "crit",
    [
        fnopt.stop.loss_change_below(1e-6) | fnopt.stop.max_iters(3),  # keeps a state
        fnopt.stop.param_change_below(1e-6),  # reads params
    ],
    ids=repr,
)
def test_other_criteria_are_not_compiled(crit):
    from fnopt.loop import _scalar_predicate

    assert _scalar_predicate(crit) == (None, False)
