"""Every way a ``fixed_point`` run can end keeps the last good iterate and saves it.

Faults injected into the loader, ``grad_fn`` (``Exception``s and other
``BaseException``s), callbacks (a vector for an answer) and the loss (a NaN once, then
never again): each run either returns or raises with ``.result``, the final checkpoint
on disk holds the same params with the state that belongs to them, and resuming from
it continues bitwise like a run that never saw the fault. A mismatched ``(params,
state, start_iteration)`` is refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import stop

torch = pytest.importorskip("torch")

BACKENDS = ["numpy", "torch"]
# owned: loop-owned buffers (no callback); pure: a callback makes the steps pure
PATHS = ["owned", "pure"]


def _problem(backend: str) -> tuple[Any, Any, list[tuple[Any, Any]]]:
    """A least-squares problem ``grad_fn(w, x, y)`` and twelve batches (float64)."""
    rng = np.random.default_rng(0)
    w_true = rng.standard_normal(3)
    batches = []
    for _ in range(12):
        x = rng.standard_normal((8, 3))
        batches.append((x, x @ w_true + 0.1 * rng.standard_normal(8)))
    w0 = np.zeros(3)
    if backend == "torch":
        batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        w0 = torch.zeros(3, dtype=torch.float64)

    def grad_fn(w: Any, x: Any, y: Any) -> tuple[Any, Any]:
        r = x @ w - y
        return (r * r).sum() / len(y), 2.0 * (x.T @ r) / len(y)

    return w0, grad_fn, batches


def _quadratic(backend: str) -> tuple[Any, Any]:
    """A quadratic without data, ``grad_fn(w) -> (loss, grad)`` (float64)."""
    a = np.array([1.0, 3.0, 10.0])
    w0 = np.array([1.0, -2.0, 0.5])
    if backend == "torch":
        a, w0 = torch.from_numpy(a), torch.from_numpy(w0)

    def grad_fn(w: Any) -> tuple[Any, Any]:
        return 0.5 * (a * w * w).sum(), a * w

    return w0, grad_fn


def _np(x: Any) -> np.ndarray:
    return np.asarray(fnopt.to_numpy(x))


def _same_tree(a: Any, b: Any) -> None:
    la = fnopt.tree.leaves(fnopt.to_numpy(a))
    lb = fnopt.tree.leaves(fnopt.to_numpy(b))
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind == "f" and x.ndim == 0 and np.isnan(x) and np.isnan(y):
            continue  # a loss or gradient norm that was not computed
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (x, y)


def _callback(path: str) -> Any:
    return None if path == "owned" else (lambda info: None)


def _optimizers() -> dict[str, Any]:
    return {"adam": fnopt.adam(0.05), "sgd_momentum": fnopt.sgd(0.05, momentum=0.9)}


# -- a loader that raises -----------------------------------------------------------------


def _failing_loader(batches: list[Any], at: int, exc: BaseException) -> Any:
    """Yields the batches, raising ``exc`` instead of batch number ``at`` (1-based)."""
    for i, b in enumerate(batches, 1):
        if i == at:
            raise exc
        yield b


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_loader_that_raises_keeps_the_updates_and_saves_them(backend, path, tmp_path):
    w0, grad_fn, batches = _problem(backend)
    ck_path = tmp_path / "run.npz"
    opt = fnopt.adam(0.1)
    with pytest.raises(fnopt.OptimizationError, match="data raised OSError: disk gone") as ei:
        fnopt.fixed_point(opt, w0, grad_fn, data=_failing_loader(batches, 6, OSError("disk gone")),
                          stop=stop.max_iters(100), checkpoint_path=ck_path,
                          callback=_callback(path))
    err = ei.value
    assert isinstance(err.__cause__, OSError)
    res = err.result
    assert res.reason == "error" and res.iterations == 5 and err.iteration == 5
    assert res.state.count == 5
    # the five updates are all there: the same as a run over those five batches
    ref = fnopt.fixed_point(opt, w0, grad_fn, data=batches[:5], stop=stop.max_iters(100))
    assert ref.reason == "data_exhausted" and ref.iterations == 5
    _same_tree(res.params, ref.params)
    _same_tree(res.state.inner, ref.state.inner)
    ck = fnopt.load(ck_path)
    assert ck.iteration == 5
    _same_tree(ck.params, res.params)
    _same_tree(ck.state.inner, res.state.inner)
    # and the run resumes from it with the batches from number ck.iteration on
    rest = fnopt.fixed_point(opt, ck.params, grad_fn, ck.state, data=batches[ck.iteration:],
                             start_iteration=ck.iteration, stop=stop.max_iters(100))
    full = fnopt.fixed_point(opt, w0, grad_fn, data=batches, stop=stop.max_iters(100))
    assert rest.iterations == full.iterations == 12
    _same_tree(rest.params, full.params)


def test_a_loader_error_on_the_first_batch_keeps_the_start(tmp_path):
    w0, grad_fn, batches = _problem("numpy")
    with pytest.raises(fnopt.OptimizationError, match="data raised ValueError") as ei:
        fnopt.fixed_point(fnopt.sgd(0.1), w0, grad_fn,
                          data=_failing_loader(batches, 1, ValueError("bad file")),
                          stop=stop.max_iters(10), checkpoint_path=tmp_path / "c.npz")
    res = ei.value.result
    assert res.iterations == 0 and res.n_evals == 0
    np.testing.assert_array_equal(res.params, w0)
    assert res.params is not w0
    assert fnopt.load(tmp_path / "c.npz").iteration == 0


# -- BaseExceptions from grad_fn --------------------------------------------------------


class _Abort(BaseException):
    """A BaseException that is not an Exception (as some frameworks raise)."""


@pytest.mark.parametrize("exc_type", [SystemExit, GeneratorExit, _Abort])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_base_exception_from_grad_fn_saves_and_propagates(backend, path, exc_type, tmp_path):
    w0, grad_fn = _quadratic(backend)
    calls = [0]

    def failing(w: Any) -> Any:
        calls[0] += 1
        if calls[0] == 7:
            raise exc_type("stop now")
        return grad_fn(w)

    opt = fnopt.sgd(0.05, momentum=0.9)
    ck_path = tmp_path / "run.npz"
    with pytest.raises(exc_type) as ei:
        fnopt.fixed_point(opt, w0, failing, stop=stop.max_iters(50), checkpoint_path=ck_path,
                          checkpoint_every=4, callback=_callback(path))
    assert type(ei.value) is exc_type  # the same exception, not swallowed or wrapped
    res = ei.value.result  # type: ignore[attr-defined]
    assert res.reason == "error" and exc_type.__name__ in res.message
    assert res.iterations == 6 and res.state.count == 6
    ref = fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(6))
    _same_tree(res.params, ref.params)
    _same_tree(res.state.inner, ref.state.inner)
    ck = fnopt.load(ck_path)
    assert ck.iteration == 6
    _same_tree(ck.params, ref.params)
    _same_tree(ck.state.inner, ref.state.inner)


def test_a_base_exception_raised_by_the_update_keeps_the_iterate_before_it(tmp_path):
    w0, grad_fn = _quadratic("numpy")
    n = [0]

    def update(updates: Any, state: Any, params: Any = None) -> Any:
        n[0] += 1
        if n[0] == 4:
            raise SystemExit(3)
        return updates, state

    exiting = fnopt.Transform(lambda p: (), update)
    opt = fnopt.chain(fnopt.adam(0.05), exiting)
    with pytest.raises(SystemExit) as ei:
        fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(50),
                          checkpoint_path=tmp_path / "c.npz")
    assert ei.value.code == 3
    res = ei.value.result  # type: ignore[attr-defined]
    # the fourth update raised, after adam had overwritten its moments in place: the
    # state returned and saved is the one paired with iteration 3's params
    assert res.iterations == 3 and res.state.count == 3
    n[0] = -100  # never raises again
    ref = fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(3))
    _same_tree(res.params, ref.params)
    _same_tree(res.state.inner, ref.state.inner)
    ck = fnopt.load(tmp_path / "c.npz")
    _same_tree(ck.state.inner, ref.state.inner)


# -- callbacks ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_callback_returning_a_vector_is_a_clear_error_and_the_run_is_kept(backend, tmp_path):
    w0, grad_fn = _quadratic(backend)
    vec = np.array([1.0, 2.0]) if backend == "numpy" else torch.tensor([1.0, 2.0])

    def callback(info: Any) -> Any:
        return vec if info.iteration == 3 else None

    with pytest.raises(fnopt.OptimizationError,
                       match=r"callback.*array of shape \(2,\).*neither true nor false") as ei:
        fnopt.fixed_point(fnopt.adam(0.05), w0, grad_fn, stop=stop.max_iters(50),
                          callback=callback, checkpoint_path=tmp_path / "c.npz")
    res = ei.value.result
    assert res.reason == "error" and res.iterations == 3 and ei.value.iteration == 3
    assert "callback" in res.message
    ref = fnopt.fixed_point(fnopt.adam(0.05), w0, grad_fn, stop=stop.max_iters(3))
    _same_tree(res.params, ref.params)
    assert fnopt.load(tmp_path / "c.npz").iteration == 3


def test_a_callback_returning_a_one_element_array_or_none_is_fine():
    w0, grad_fn = _quadratic("numpy")
    r = fnopt.fixed_point(fnopt.sgd(0.05), w0, grad_fn, stop=stop.max_iters(20),
                          callback=lambda info: np.array([info.iteration == 4]))
    assert r.reason == "callback" and r.iterations == 4


def test_combine_names_the_callback_that_returned_a_vector():
    w0, grad_fn = _quadratic("numpy")
    cb = fnopt.callbacks.combine(lambda i: None, lambda i: np.ones(3))
    with pytest.raises(fnopt.OptimizationError, match=r"callbacks\[1\]: returned") as ei:
        fnopt.fixed_point(fnopt.sgd(0.05), w0, grad_fn, stop=stop.max_iters(5), callback=cb)
    assert ei.value.result.iterations == 0


@pytest.mark.parametrize("exc_type", [SystemExit, _Abort])
def test_a_base_exception_from_a_callback_saves_and_propagates(exc_type, tmp_path):
    w0, grad_fn = _quadratic("numpy")

    def callback(info: Any) -> None:
        if info.iteration == 5:
            raise exc_type("bye")

    with pytest.raises(exc_type) as ei:
        fnopt.fixed_point(fnopt.adam(0.05), w0, grad_fn, stop=stop.max_iters(50),
                          callback=callback, checkpoint_path=tmp_path / "c.npz")
    assert ei.value.result.iterations == 5  # type: ignore[attr-defined]
    assert fnopt.load(tmp_path / "c.npz").iteration == 5


# -- a NaN once, then a checkpoint, then resume ----------------------------------------


def _nan_once(grad_fn: Any, at_call: int, what: str) -> Any:
    """``grad_fn`` with one fault at call ``at_call``: a NaN loss (``"loss"``) or NaN
    gradients (``"grad"``); every other call is ``grad_fn``'s."""
    calls = [0]

    def faulty(w: Any, *batch: Any) -> Any:
        calls[0] += 1
        v, g = grad_fn(w, *batch)
        if calls[0] == at_call:
            return (v * math.nan, g) if what == "loss" else (v, g * math.nan)
        return v, g

    return faulty


@pytest.mark.parametrize("what", ["loss", "grad"])
@pytest.mark.parametrize("name", ["adam", "sgd_momentum"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_resuming_after_a_nan_is_bitwise_a_run_that_never_saw_it(backend, path, name, what,
                                                                 tmp_path):
    w0, grad_fn = _quadratic(backend)
    opt = _optimizers()[name]
    ck_path = tmp_path / "run.npz"
    faulty = _nan_once(grad_fn, 8, what)  # call 8 evaluates iteration 7
    r = fnopt.fixed_point(opt, w0, faulty, stop=stop.max_iters(30), checkpoint_path=ck_path,
                          checkpoint_every=5, callback=_callback(path))
    assert r.reason == "non_finite"
    # a NaN loss at iteration 7 keeps iteration 6; NaN gradients at iteration 7 make
    # iteration 8 NaN and keep iteration 7
    last = 6 if what == "loss" else 7
    assert r.iterations == last and r.state.count == last
    ck = fnopt.load(ck_path)
    assert ck.iteration == last and ck.state.count == last
    _same_tree(ck.params, r.params)
    _same_tree(ck.state, r.state)
    clean = fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(last))
    _same_tree(r.params, clean.params)
    _same_tree(r.state.inner, clean.state.inner)
    # resume from the checkpoint: bitwise the run that never saw the NaN
    rest = fnopt.fixed_point(opt, ck.params, grad_fn, ck.state, start_iteration=ck.iteration,
                             stop=stop.max_iters(30), callback=_callback(path))
    full = fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(30))
    assert rest.iterations == full.iterations == 30
    _same_tree(rest.params, full.params)
    _same_tree(rest.state.inner, full.state.inner)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resuming_from_the_result_after_a_nan_gradient_matches_too(backend):
    w0, grad_fn = _quadratic(backend)
    opt = fnopt.adam(0.05)
    r = fnopt.fixed_point(opt, w0, _nan_once(grad_fn, 4, "grad"), stop=stop.max_iters(30))
    assert r.reason == "non_finite" and r.iterations == 3
    moments = [x for x in fnopt.tree.leaves(fnopt.to_numpy(r.state.inner))
               if isinstance(x, np.ndarray) and x.ndim == 1]
    assert len(moments) == 2  # adam's mu and nu, not the NaN of the bad update
    assert all(np.isfinite(m).all() for m in moments)
    rest = fnopt.fixed_point(opt, r.params, grad_fn, r.state, start_iteration=r.iterations,
                             stop=stop.max_iters(12))
    full = fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(12))
    _same_tree(rest.params, full.params)


def test_resuming_after_a_nan_on_the_data_path_matches(tmp_path):
    w0, grad_fn, batches = _problem("torch")
    opt = fnopt.adam(0.1)
    r = fnopt.fixed_point(opt, w0, _nan_once(grad_fn, 5, "grad"), data=batches,
                          stop=stop.max_iters(100), checkpoint_path=tmp_path / "c.npz")
    assert r.reason == "non_finite" and r.iterations == 4
    ck = fnopt.load(tmp_path / "c.npz")
    rest = fnopt.fixed_point(opt, ck.params, grad_fn, ck.state, data=batches[ck.iteration:],
                             start_iteration=ck.iteration, stop=stop.max_iters(100))
    full = fnopt.fixed_point(opt, w0, grad_fn, data=batches, stop=stop.max_iters(100))
    _same_tree(rest.params, full.params)


# -- a mismatched (params, state, start_iteration) --------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_state_of_another_iteration_is_refused(backend):
    w0, grad_fn = _quadratic(backend)
    opt = fnopt.adam(0.05)
    r = fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(7))
    with pytest.raises(ValueError, match=r"state: its step count is 7 but start_iteration is 6"):
        fnopt.fixed_point(opt, r.params, grad_fn, r.state, start_iteration=6,
                          stop=stop.max_iters(10))
    with pytest.raises(ValueError, match=r"state: .*start_iteration is 0"):
        fnopt.fixed_point(opt, r.params, grad_fn, r.state, start_iteration=0,
                          stop=stop.max_iters(10))
    # the matching iteration, or none given (iterations counted from 0), is accepted
    ok = fnopt.fixed_point(opt, r.params, grad_fn, r.state, start_iteration=7,
                           stop=stop.max_iters(10))
    assert ok.iterations == 10 and ok.state.count == 10
    again = fnopt.fixed_point(opt, r.params, grad_fn, r.state, stop=stop.max_iters(3))
    assert again.iterations == 3


def test_a_state_for_other_params_is_refused():
    w0, grad_fn = _quadratic("numpy")
    opt = fnopt.sgd(0.05, momentum=0.9)
    other = opt.init(np.zeros(4))
    with pytest.raises(ValueError, match=r"state: shape \(4,\) does not match \(3,\)"):
        fnopt.fixed_point(opt, w0, grad_fn, other, stop=stop.max_iters(3))
    f32 = opt.init(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="state: dtype float32 does not match float64"):
        fnopt.fixed_point(opt, w0, grad_fn, f32, start_iteration=0, stop=stop.max_iters(3))
    with pytest.raises(ValueError, match="state: expected a DescentState"):
        fnopt.fixed_point(opt, w0, grad_fn, fnopt.lbfgs().init(w0), stop=stop.max_iters(3))


def test_a_line_search_state_of_another_iteration_is_refused():
    w0, grad_fn = _quadratic("numpy")
    opt = fnopt.lbfgs()
    r = fnopt.fixed_point(opt, w0, grad_fn, stop=stop.max_iters(2))
    with pytest.raises(ValueError, match="start_iteration"):
        fnopt.fixed_point(opt, r.params, grad_fn, r.state, start_iteration=5,
                          stop=stop.max_iters(10))


# -- the endurance script ------------------------------------------------------------------


def test_the_fault_endurance_script_runs_a_few_cases(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_endurance.py"
    spec = importlib.util.spec_from_file_location("fault_endurance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--cases", "9", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "| fault | cases | held | failed |" in out and "| nan_grad |" in out
