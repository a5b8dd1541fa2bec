"""Host syncs in ``fixed_point`` (issue 23): counted on CPU as the
``aten._local_scalar_dense`` calls (what ``.item()``/``float()`` of a tensor runs, a
device-to-host read on a GPU) that a ``TorchDispatchMode`` sees over 100 iterations.

With ``check_every=k`` the loop reads the losses once per ``k`` iterations (all of
them at once); with only ``max_iters``/``time_limit`` it needs none in between. A few
reads at the start (the params' finiteness) and the end (the final loss and gradient
norm) are per run, not per iteration.
"""

from __future__ import annotations

from typing import Any

import optree
import pytest

import fnopt
from fnopt import stop

torch = pytest.importorskip("torch")
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

ITERS = 100
PER_RUN = 4  # start: the params' finiteness (1); end: the losses left, the grad norm


class SyncCount(TorchDispatchMode):
    """Counts ``aten._local_scalar_dense`` (a tensor read to a Python number)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is torch.ops.aten._local_scalar_dense.default:
            self.n += 1
        return func(*args, **(kwargs or {}))


def _problem(nan_at: int | None = None) -> tuple[list[Any], Any]:
    params = [torch.randn(5, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)]
    calls = {"n": 0}

    def grad_fn(p: list[Any]) -> tuple[Any, list[Any]]:
        calls["n"] += 1
        loss = sum((x * x).sum() for x in p)
        if calls["n"] == nan_at:
            loss = loss * float("nan")
        return loss, [2 * x for x in p]

    return params, grad_fn


def _count(opt: Any, **kw: Any) -> tuple[int, Any]:
    params, grad_fn = _problem(kw.pop("nan_at", None))
    with SyncCount() as c:
        r = fnopt.fixed_point(opt, params, grad_fn, **kw)
    return c.n, r


def _same_state(a: Any, b: Any) -> None:
    """Bitwise the same optimizer state (the step's recorded loss aside)."""
    la, lb = optree.tree_leaves(a.inner), optree.tree_leaves(b.inner)
    assert len(la) == len(lb) and a.count == b.count
    for x, y in zip(la, lb):
        assert torch.equal(x, y) if torch.is_tensor(x) else x == y


OPTS = {"sgd": lambda: fnopt.sgd(1e-2), "momentum": lambda: fnopt.sgd(1e-2, momentum=0.9),
        "adam": lambda: fnopt.adam(1e-2), "rmsprop": lambda: fnopt.rmsprop(1e-2)}


@pytest.mark.parametrize("name", list(OPTS))
@pytest.mark.parametrize("crit", ["max_iters", "time_limit"])
def test_no_sync_per_iteration_with_max_iters_or_time_limit(name: str, crit: str) -> None:
    s = stop.max_iters(ITERS) if crit == "max_iters" else (
        stop.time_limit(1e6) | stop.max_iters(ITERS))
    n, r = _count(OPTS[name](), stop=s, check_every=ITERS)
    assert r.iterations == ITERS and r.reason in ("max_iters", "time_limit")
    assert n <= PER_RUN, n  # none per iteration
    default = _count(OPTS[name](), stop=stop.max_iters(ITERS))[0]  # on CPU: every one
    assert default >= ITERS


@pytest.mark.parametrize("every", [5, 10, 25])
def test_loss_criteria_read_once_per_check(every: int) -> None:
    s = stop.loss_below(-1.0) | stop.max_iters(ITERS)  # never converges: runs 100
    n, r = _count(fnopt.adam(1e-2), stop=s, check_every=every)
    assert r.iterations == ITERS
    assert n <= ITERS // every + PER_RUN, n


def test_grad_norm_criterion_reads_once_more_per_check() -> None:
    s = stop.grad_norm_below(1e-12) | stop.max_iters(ITERS)
    n, r = _count(fnopt.adam(1e-2), stop=s, check_every=10)
    assert r.iterations == ITERS
    assert n <= 2 * (ITERS // 10) + PER_RUN, n


def test_same_numbers_as_reading_every_iteration() -> None:
    torch.manual_seed(0)
    a = _count(fnopt.adam(1e-2), stop=stop.max_iters(37), check_every=10)[1]
    torch.manual_seed(0)
    b = _count(fnopt.adam(1e-2), stop=stop.max_iters(37))[1]
    assert a.iterations == b.iterations == 37
    for x, y in zip(a.params, b.params):
        assert torch.equal(x, y)
    assert a.value == pytest.approx(b.value, rel=1e-12) and a.reason == b.reason
    assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-12)


def test_loss_criterion_fires_at_a_check() -> None:
    torch.manual_seed(0)
    s = stop.loss_below(1.0) | stop.max_iters(1000)
    exact = _count(fnopt.sgd(1e-2), stop=s)[1]
    torch.manual_seed(0)
    late = _count(fnopt.sgd(1e-2), stop=s, check_every=7)[1]
    assert late.reason == exact.reason == "loss_below"
    assert late.iterations % 7 == 0 and exact.iterations <= late.iterations < exact.iterations + 7
    assert late.value < 1.0


@pytest.mark.parametrize("nan_at", [1 + 13, 1 + 20, 1 + 37])
def test_non_finite_keeps_the_last_checked_iterate_with_its_state(nan_at: int) -> None:
    """A NaN loss at evaluation ``nan_at`` (iteration ``nan_at - 1``) is seen at the
    next check (or the end); the run returns the last checked iterate (a multiple of
    ``check_every`` before it) with its own state: resuming there is bitwise the run
    that never saw the NaN."""
    every = 10
    torch.manual_seed(1)
    r = _count(fnopt.adam(1e-2), stop=stop.max_iters(40), check_every=every,
               nan_at=nan_at)[1]
    bad_iter = nan_at - 1
    assert r.reason == "non_finite"
    assert r.iterations == ((bad_iter - 1) // every) * every  # the last check before
    assert r.iterations < bad_iter and r.state.count == r.iterations
    torch.manual_seed(1)
    ref = _count(fnopt.adam(1e-2), stop=stop.max_iters(r.iterations))[1]
    for x, y in zip(r.params, ref.params):
        assert torch.equal(x, y)
    _same_state(r.state, ref.state)


def test_check_every_argument_errors() -> None:
    params, grad_fn = _problem()
    with pytest.raises(ValueError, match="check_every"):
        fnopt.fixed_point(fnopt.adam(1e-2), params, grad_fn, stop=stop.max_iters(3),
                          check_every=0)
    with pytest.raises(TypeError, match="check_every"):
        fnopt.fixed_point(fnopt.adam(1e-2), params, grad_fn, stop=stop.max_iters(3),
                          check_every=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="check_every"):
        fnopt.fixed_point(fnopt.adam(1e-2), params, grad_fn, stop=stop.max_iters(3),
                          check_every=5, record=True)


def test_checkpoint_of_a_non_finite_run_resumes_bitwise(tmp_path: Any) -> None:
    """The final checkpoint of a run that met a NaN between checks is the last checked
    iterate with its state; resuming from it is the clean run's trajectory."""
    path = tmp_path / "ck.pt"
    torch.manual_seed(2)
    r = _count(fnopt.adam(1e-2), stop=stop.max_iters(40), check_every=10, nan_at=1 + 26,
               checkpoint_every=4, checkpoint_path=path)[1]
    assert r.reason == "non_finite" and r.iterations == 24  # a checkpoint forces a check
    ck = fnopt.load(path)
    assert ck.iteration == 24
    torch.manual_seed(2)
    _, grad_fn = _problem()
    rest = fnopt.fixed_point(fnopt.adam(1e-2), ck.params, grad_fn, ck.state,
                             start_iteration=ck.iteration, stop=stop.max_iters(40),
                             check_every=10)
    torch.manual_seed(2)
    full = _count(fnopt.adam(1e-2), stop=stop.max_iters(40))[1]
    for x, y in zip(rest.params, full.params):
        assert torch.equal(x, y)


def test_an_error_after_a_hidden_non_finite_loss_keeps_the_checked_iterate() -> None:
    params, grad_fn = _problem(nan_at=1 + 12)
    calls = {"n": 0}

    def failing(p: list[Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1 + 15:
            raise RuntimeError("boom")
        return grad_fn(p)

    with pytest.raises(fnopt.OptimizationError) as ei:
        fnopt.fixed_point(fnopt.adam(1e-2), params, failing, stop=stop.max_iters(40),
                          check_every=10)
    res = ei.value.result
    assert res.reason == "error" and res.iterations == 10 and res.state.count == 10
    assert "non_finite" in res.message or "loss nan" in res.message


def test_an_update_that_raises_keeps_the_last_checked_iterate_with_its_state() -> None:
    """With ``check_every > 1`` the loop copies no state before each update; an update
    that raises ends the run at the last checked iterate, with its own state."""
    n = [0]

    def update(updates: Any, state: Any, params: Any = None) -> Any:
        n[0] += 1
        if n[0] == 14:
            raise RuntimeError("update failed")
        return updates, state

    opt = fnopt.chain(fnopt.adam(1e-2), fnopt.Transform(lambda p: (), update))
    torch.manual_seed(3)
    params, grad_fn = _problem()
    with pytest.raises(fnopt.OptimizationError) as ei:
        fnopt.fixed_point(opt, params, grad_fn, stop=stop.max_iters(40), check_every=5)
    res = ei.value.result
    assert res.reason == "error" and res.iterations == 10 and res.state.count == 10
    n[0] = -100
    torch.manual_seed(3)
    params, grad_fn = _problem()
    ref = fnopt.fixed_point(opt, params, grad_fn, stop=stop.max_iters(10))
    for x, y in zip(res.params, ref.params):
        assert torch.equal(x, y)
    _same_state(res.state, ref.state)
