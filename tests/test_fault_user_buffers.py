"""What a user's function does to its inputs and outputs (issue 19, items 4-7).

* A ``grad_fn`` that refills one output buffer at every call (as ``p.grad`` is
  refilled) gives every optimizer the result of a ``grad_fn`` returning fresh arrays:
  fnopt copies what it keeps across calls (line-search trials, quasi-Newton pairs,
  the loss recorded in the state, Jacobians).
* A ``grad_fn`` (or Hessian, HVP, residual function) that writes into its params
  raises :class:`fnopt.ParamsModifiedError`, and the caller's arrays are unchanged
  (NumPy: the params are read-only views; torch: version counters, and the loop
  hands the user's function its own copy).
* Every output is checked at every call, not only the first.
* ``batched`` refuses wrappers that decide for the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import stop
from fnopt._base import (
    OutputTypeError,
    OutputValueError,
    ParamsModifiedError,
    call_grad_fn,
    guarded_call,
)

torch = pytest.importorskip("torch")

X0 = (-1.2, 1.0)


def _rosen(x: Any) -> tuple[Any, Any]:
    """The 2-D Rosenbrock function and its gradient, either backend (new arrays)."""
    x0, x1 = x[0], x[1]
    t = x1 - x0 * x0
    value = (1 - x0) ** 2 + 100 * t * t
    g0 = -2 * (1 - x0) - 400 * x0 * t
    g1 = 200 * t
    if isinstance(x, np.ndarray):
        return np.asarray(value), np.stack([g0, g1])
    return value, torch.stack([g0, g1])


def _rosen_hessian(x: Any) -> Any:
    x0, x1 = float(x[0]), float(x[1])
    h = np.array([[2 - 400 * (x1 - 3 * x0 * x0), -400 * x0], [-400 * x0, 200.0]])
    return h if isinstance(x, np.ndarray) else torch.as_tensor(h, dtype=x.dtype)


def _start(backend: str) -> Any:
    if backend == "numpy":
        return np.array(X0)
    return torch.tensor(X0, dtype=torch.float64)


def _buffered(backend: str) -> Callable[[Any], tuple[Any, Any]]:
    """A grad_fn that refills one loss buffer and one gradient buffer at every call."""
    vbuf, gbuf = (np.zeros(()), np.zeros(2)) if backend == "numpy" else (
        torch.zeros((), dtype=torch.float64), torch.zeros(2, dtype=torch.float64))

    def grad_fn(x: Any) -> tuple[Any, Any]:
        v, g = _rosen(x)
        vbuf[...] = v
        gbuf[...] = g
        return vbuf, gbuf

    return grad_fn


def _as_np(x: Any) -> np.ndarray:
    return np.asarray(x.detach() if hasattr(x, "detach") else x, dtype=float)


OPTIMIZERS: dict[str, Callable[[], Any]] = {
    "bfgs": fnopt.bfgs,
    "nonlinear_cg": fnopt.nonlinear_cg,
    "lbfgs": fnopt.lbfgs,
    "backtracking": lambda: fnopt.line_search(fnopt.scale(-1.0), fnopt.backtracking()),
    "newton": lambda: fnopt.newton(fnopt.grad.hessian_from_function(_rosen_hessian)),
    "newton_cg_fd": lambda: fnopt.newton_cg(fnopt.grad.hvp_finite_differences(_rosen)),
    "sam": lambda: fnopt.sam(fnopt.sgd(1e-4), rho=0.01),
    "adam": lambda: fnopt.adam(1e-2),
    "sgd_momentum": lambda: fnopt.sgd(1e-4, momentum=0.9),
}


# -- item 4: a grad_fn that refills its output buffers --------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_buffer_reusing_grad_fn_matches_fresh_arrays_in_fixed_point(name: str, backend: str):
    runs = [fnopt.fixed_point(OPTIMIZERS[name](), _start(backend), fn, stop=stop.max_iters(6))
            for fn in (_rosen, _buffered(backend))]
    fresh, reused = runs
    np.testing.assert_allclose(_as_np(reused.params), _as_np(fresh.params), rtol=1e-12)
    assert reused.value == pytest.approx(fresh.value, rel=1e-12)
    # the loss recorded in the state is fnopt's own copy, not the user's buffer
    assert float(reused.state.value) == pytest.approx(float(fresh.state.value), rel=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["bfgs", "nonlinear_cg", "lbfgs", "newton", "sam", "adam"])
def test_buffer_reusing_grad_fn_matches_fresh_arrays_by_hand(name: str, backend: str):
    finals = []
    for fn in (_rosen, _buffered(backend)):
        opt = OPTIMIZERS[name]()
        p = _start(backend)
        s = opt.init(p)
        states = []
        for _ in range(6):
            p, s = opt.step(p, fn, s)
            states.append(s)
        finals.append((p, [float(t.value) for t in states]))
    (p1, v1), (p2, v2) = finals
    np.testing.assert_allclose(_as_np(p2), _as_np(p1), rtol=1e-12)
    # earlier states were not changed by later calls refilling the buffers
    np.testing.assert_allclose(v2, v1, rtol=1e-12)


def test_bfgs_issue_numbers_hold():
    """The issue's case: f after 6 BFGS iterations is that of fresh arrays."""
    fresh = fnopt.fixed_point(fnopt.bfgs(), _start("numpy"), _rosen, stop=stop.max_iters(6))
    reused = fnopt.fixed_point(fnopt.bfgs(), _start("numpy"), _buffered("numpy"),
                               stop=stop.max_iters(6))
    assert reused.value == fresh.value


def test_lbfgsb_with_buffer_reusing_grad_fn():
    opt = fnopt.lbfgsb(bounds=(np.array([-2.0, -2.0]), np.array([0.5, 2.0])))
    runs = [fnopt.fixed_point(opt, _start("numpy"), fn, stop=stop.max_iters(8))
            for fn in (_rosen, _buffered("numpy"))]
    np.testing.assert_allclose(runs[1].params, runs[0].params, rtol=1e-12)


def test_least_squares_with_jacobian_buffer():
    """A jac_fn refilling one buffer: the Jacobian kept for the current point is
    fnopt's copy, so the run is that of a jac_fn returning new arrays."""
    t = np.linspace(0.0, 1.0, 7)
    y = 2.0 * np.exp(-1.5 * t)

    def res(p: Any) -> Any:
        return p[0] * np.exp(p[1] * t) - y

    def jac(p: Any) -> Any:
        e = np.exp(p[1] * t)
        return np.stack([e, p[0] * t * e], axis=1)

    jbuf = np.zeros((7, 2))

    def jac_buffered(p: Any) -> Any:
        jbuf[...] = jac(p)
        return jbuf

    runs = []
    for j in (jac, jac_buffered):
        provider = fnopt.grad.residuals_from_functions(res, j)
        runs.append(fnopt.fixed_point(fnopt.levenberg_marquardt(), np.array([1.0, 0.0]),
                                      provider, stop=stop.max_iters(5)))
    np.testing.assert_allclose(runs[1].params, runs[0].params, rtol=1e-12)


def test_call_grad_fn_keep_returns_copies():
    buf = np.zeros(2)

    def grad_fn(p: Any) -> Any:
        buf[...] = 2 * p
        return p @ p, buf

    _, g = call_grad_fn(grad_fn, np.ones(2), keep=True)
    _, g_shared = call_grad_fn(grad_fn, np.ones(2))
    grad_fn(np.full(2, 5.0))
    assert g.tolist() == [2.0, 2.0]
    assert g_shared is buf  # without keep: the user's array, read at once by the caller


# -- item 5: a grad_fn that writes into its params ----------------------------------------------


def _writer(backend: str) -> Callable[[Any], tuple[Any, Any]]:
    def grad_fn(x: Any) -> tuple[Any, Any]:
        v, g = _rosen(x)
        x *= 1.5  # in place: not allowed
        return v, g

    return grad_fn


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["adam", "bfgs", "lbfgs", "backtracking", "sam"])
@pytest.mark.parametrize("callback", [False, True])
def test_writing_into_params_in_fixed_point_raises_and_spares_the_caller(
    name: str, backend: str, callback: bool
):
    p = _start(backend)
    before = _as_np(p).copy()
    cb = (lambda info: False) if callback else None
    with pytest.raises(fnopt.ParamsModifiedError, match="grad_fn") as info:
        fnopt.fixed_point(OPTIMIZERS[name](), p, _writer(backend), stop=stop.max_iters(5),
                          callback=cb)
    assert isinstance(info.value, ValueError)
    np.testing.assert_array_equal(_as_np(p), before)


@pytest.mark.parametrize("name", ["adam", "bfgs", "nonlinear_cg", "backtracking", "sam",
                                  "newton"])
def test_writing_into_params_by_hand_numpy_cannot_happen(name: str):
    opt = OPTIMIZERS[name]()
    p = _start("numpy")
    s = opt.init(p)
    with pytest.raises(ParamsModifiedError, match="read-only"):
        opt.step(p, _writer("numpy"), s)
    assert p.tolist() == list(X0)


@pytest.mark.parametrize("name", ["adam", "bfgs", "sam"])
def test_writing_into_params_by_hand_torch_is_detected(name: str):
    opt = OPTIMIZERS[name]()
    p = _start("torch")
    s = opt.init(p)
    with pytest.raises(ParamsModifiedError, match=r"grad_fn: modified its params in place"):
        opt.step(p, _writer("torch"), s)


def test_torch_write_names_the_leaf():
    params = {"a": torch.ones(2, dtype=torch.float64), "b": torch.ones(3, dtype=torch.float64)}

    def grad_fn(p: Any) -> Any:
        p["b"].add_(1.0)
        return (p["a"] ** 2).sum(), {"a": 2 * p["a"], "b": torch.zeros(3, dtype=torch.float64)}

    with pytest.raises(ParamsModifiedError, match=r"leaf \['b'\]"):
        call_grad_fn(grad_fn, params)


def test_hessian_that_writes_into_params_raises():
    def hess(x: Any) -> Any:
        x[0] = 0.0
        return _rosen_hessian(x)

    opt = fnopt.newton(fnopt.grad.hessian_from_function(hess))
    p = _start("numpy")
    with pytest.raises(ParamsModifiedError):
        opt.step(p, _rosen, opt.init(p))
    assert p.tolist() == list(X0)


def test_residual_fn_that_writes_into_params_raises():
    def res(p: Any) -> Any:
        p += 1.0
        return p - 2.0

    provider = fnopt.grad.residuals_from_functions(res, lambda p: np.eye(2))
    p = np.zeros(2)
    with pytest.raises(ParamsModifiedError):
        fnopt.fixed_point(fnopt.levenberg_marquardt(), p, provider, stop=stop.max_iters(3))
    assert p.tolist() == [0.0, 0.0]


def test_reading_params_is_unaffected():
    """A grad_fn that only reads (and returns a view of its params as the gradient)
    runs as before."""
    def grad_fn(p: Any) -> Any:
        return 0.5 * (p @ p), p

    r = fnopt.fixed_point(fnopt.sgd(0.5), np.array([4.0, -2.0]), grad_fn,
                          stop=stop.max_iters(3))
    np.testing.assert_allclose(r.params, [0.5, -0.25])


def test_guarded_call_passes_other_errors_through():
    def fn(p: Any) -> Any:
        raise ValueError("something else")

    with pytest.raises(ValueError, match="something else") as info:
        guarded_call(fn, np.ones(2))
    assert not isinstance(info.value, ParamsModifiedError)


# -- item 6: every output checked, every call ----------------------------------------------------


def _bad_at(call: int, bad: Callable[[Any, Any], tuple[Any, Any]]) -> Callable[..., Any]:
    n = [0]

    def grad_fn(p: Any) -> Any:
        n[0] += 1
        v, g = _rosen_tree(p)
        return bad(v, g) if n[0] == call else (v, g)

    return grad_fn


def _rosen_tree(p: dict[str, Any]) -> tuple[Any, Any]:
    v, g = _rosen(np.concatenate([p["x"], p["y"]]))
    return v, {"x": g[0:1].reshape(p["x"].shape), "y": g[1:2].reshape(p["y"].shape)}


def _tree_start() -> dict[str, np.ndarray]:
    return {"x": np.array([X0[0]]), "y": np.array([X0[1]])}


def _wrong_shape(v: Any, g: Any) -> Any:
    return v, {"x": g["x"], "y": np.zeros(3)}


@pytest.mark.parametrize("call", [2, 5])
@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "lbfgs", "bfgs"])
def test_wrong_shape_after_the_first_call_is_named(name: str, call: int):
    with pytest.raises(OutputValueError, match=r"leaf \['y'\] has shape \(3,\)"):
        fnopt.fixed_point(OPTIMIZERS[name](), _tree_start(), _bad_at(call, _wrong_shape),
                          stop=stop.max_iters(20))


@pytest.mark.parametrize("call", [2, 5])
def test_wrong_shape_by_hand_is_named(call: int):
    opt = fnopt.adam(1e-2)
    p = _tree_start()
    s = opt.init(p)
    fn = _bad_at(call, _wrong_shape)
    with pytest.raises(OutputValueError, match=r"\['y'\]"):
        for _ in range(call):
            p, s = opt.step(p, fn, s)


@pytest.mark.parametrize("call", [1, 3])
def test_object_dtype_loss_is_refused(call: int):
    fn = _bad_at(call, lambda v, g: (np.array(v, dtype=object), g))
    with pytest.raises(TypeError, match="dtype object"):
        fnopt.fixed_point(fnopt.adam(1e-2), _tree_start(), fn, stop=stop.max_iters(5))


@pytest.mark.parametrize("call", [1, 3])
def test_object_dtype_gradient_is_refused_naming_the_leaf(call: int):
    fn = _bad_at(call, lambda v, g: (v, {"x": g["x"].astype(object), "y": g["y"]}))
    with pytest.raises(OutputTypeError, match=r"leaf \['x'\] has dtype object"):
        fnopt.fixed_point(fnopt.adam(1e-2), _tree_start(), fn, stop=stop.max_iters(5))


def test_wrong_dtype_later_is_refused_in_torch():
    n = [0]

    def grad_fn(p: Any) -> Any:
        n[0] += 1
        v, g = _rosen(p)
        return v, (g.float() if n[0] == 3 else g)

    with pytest.raises(OutputTypeError, match="float32"):
        fnopt.fixed_point(fnopt.adam(1e-2), _start("torch"), grad_fn, stop=stop.max_iters(5))


def test_batched_checks_every_call():
    n = [0]

    def grad_fn(x: Any) -> Any:
        n[0] += 1
        return (x * x).sum(1), (2 * x if n[0] != 3 else np.zeros((2, 3)))

    with pytest.raises(OutputValueError, match="shape"):
        fnopt.batched(fnopt.adam(0.1), np.ones((2, 2)), grad_fn, stop=stop.max_iters(5))


# -- item 7: batched and wrappers deciding for the whole batch ---------------------------------


def _batch_grad_fn(x: Any) -> tuple[Any, Any]:
    x0, x1 = x[:, 0], x[:, 1]
    t = x1 - x0 * x0
    g = np.stack([-2 * (1 - x0) - 400 * x0 * t, 200 * t], axis=1)
    return (1 - x0) ** 2 + 100 * (t * t), g


@pytest.mark.parametrize("opt", [
    fnopt.chain(fnopt.apply_if_finite(fnopt.scale_by_adam()), fnopt.scale_by_learning_rate(0.1)),
    fnopt.descent(fnopt.apply_if_finite(fnopt.sgd(0.1))),
    fnopt.chain(fnopt.adam(0.1), fnopt.reduce_on_plateau()),
], ids=["apply_if_finite_chain", "apply_if_finite_sgd", "reduce_on_plateau"])
def test_batched_refuses_whole_batch_decisions(opt: Any):
    with pytest.raises(ValueError, match=r"^opt: "):
        fnopt.batched(fnopt.descent(opt), np.zeros((3, 2)), _batch_grad_fn,
                      stop=stop.max_iters(3))


def test_batched_nan_problem_does_not_change_the_others():
    """One problem whose gradient turns NaN: the others run as they run alone."""
    starts = np.array([[-1.2, 1.0], [0.5, 0.5], [2.0, 2.0]])

    def grad_fn(x: Any) -> Any:
        v, g = _batch_grad_fn(x)
        g = g.copy()
        g[x[:, 0] > 1.5] = np.nan  # problem 3's gradient
        return v, g

    opt = fnopt.adam(1e-2)
    r = fnopt.batched(opt, starts, grad_fn, stop=stop.max_iters(30))
    assert r.reason[2] == fnopt.stop.Reason.NON_FINITE
    for i in (0, 1):
        alone = fnopt.fixed_point(opt, starts[i], _rosen, stop=stop.max_iters(30))
        np.testing.assert_allclose(r.params[i], alone.params, rtol=1e-12)
        assert r.iterations[i] == alone.iterations
