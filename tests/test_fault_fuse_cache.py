"""``can_fuse`` inside ``fixed_point``: the loop's own buffers are judged once, the
user's gradients at every step, and the verdict is always the full predicate's.

Issue 23 (priority 1): the full :meth:`fnopt.backend.Backend.can_fuse` on every fused
step cost 2-3x an adam step for 100 small leaves. The loop owns its params buffers and
the optimizer state (:class:`fnopt.backend.OwnedBuffers`), so their part of the verdict
is kept; the gradients are checked against it each time.
"""

from __future__ import annotations

from typing import Any

import pytest

import fnopt
from fnopt import backend

torch = pytest.importorskip("torch")


def _t(*shape: int) -> Any:
    return torch.randn(*shape, dtype=torch.float64)


def _grad_cases(p: Any, m: Any, spare: Any) -> dict[str, Any]:
    """Gradients for params ``p`` (3x4) with a state buffer ``m`` and a destination
    ``spare``: some the kernels take, some they would get wrong."""
    flat = _t(24)
    return {
        "contiguous": _t(3, 4),
        "transposed (X.T @ R).T": _t(4, 3).T,
        "channels-last-like permuted": _t(4, 3).T.contiguous().T,
        "sliced (gaps)": _t(6, 8)[::2, ::2],
        "expanded (stride 0)": _t(1, 4).expand(3, 4),
        "the destination itself": spare,
        "a view of the destination": spare.view(12).view(3, 4),
        "a state buffer": m,
        "half inside a state buffer": torch.cat([m.view(12), flat])[6:18].view(3, 4),
        "float32": _t(3, 4).float(),
        "other shape": _t(4, 3),
        "recorded by autograd": _t(3, 4).requires_grad_(),
        "lazily negated": torch._neg_view(_t(3, 4)),
        "the params read (not a kernel role)": p,
    }


@pytest.mark.parametrize("case", list(_grad_cases(_t(3, 4), _t(3, 4), _t(3, 4))))
def test_cached_verdict_is_the_full_predicate(case: str) -> None:
    p, m, v, spare = _t(3, 4), _t(3, 4), _t(3, 4), _t(3, 4)
    owned = backend.OwnedBuffers([p, m, v, spare])
    g = _grad_cases(p, m, spare)[case]
    full = backend.TORCH.can_fuse([spare], [g], [m], [v])
    token = backend.OWNED.set(owned)
    try:
        first = backend.TORCH.can_fuse([spare], [g], [m], [v])
        again = backend.TORCH.can_fuse([spare], [g], [m], [v])
        contiguous = backend.TORCH.can_fuse([spare], [_t(3, 4)], [m], [v])
    finally:
        backend.OWNED.reset(token)
    assert first == again == full
    assert contiguous  # the kept verdict did not remember the bad gradient
    assert owned.entries["can_fuse"], "the owned part was not kept"


def test_owned_buffers_that_cannot_fuse_stay_refused() -> None:
    p, spare = _t(3, 4), _t(4, 3).T  # a destination laid out unlike the state buffer
    m = _t(3, 4)
    owned = backend.OwnedBuffers([p, m, spare])
    token = backend.OWNED.set(owned)
    try:
        verdicts = [backend.TORCH.can_fuse([spare], [_t(3, 4)], [m]) for _ in range(2)]
        shared = backend.TORCH.can_fuse([m], [_t(3, 4)], [m])  # one buffer twice
    finally:
        backend.OWNED.reset(token)
    assert verdicts == [False, False]
    assert not shared


def test_tensors_the_loop_does_not_own_are_judged_whole() -> None:
    p, m = _t(3, 4), _t(3, 4)
    owned = backend.OwnedBuffers([p])
    token = backend.OWNED.set(owned)
    try:
        assert not backend.TORCH.can_fuse([p], [_t(3, 4)], [m], [m])  # m twice
        assert backend.TORCH.can_fuse([p], [_t(3, 4)], [m])
    finally:
        backend.OWNED.reset(token)
    assert "can_fuse" not in owned.entries  # nothing kept about tensors it does not own


def test_overlaps_of_owned_buffers_is_kept_and_right() -> None:
    a, b = _t(6), _t(6)
    head = a[:3]
    owned = backend.OwnedBuffers([a, b, head])
    token = backend.OWNED.set(owned)
    try:
        assert not backend.TORCH.overlaps([a], [b])
        assert not backend.TORCH.overlaps([a], [b])
        assert backend.TORCH.overlaps([head], [a])
        assert backend.TORCH.overlaps([_t(2)[:1], a], [a])  # not all owned: whole
    finally:
        backend.OWNED.reset(token)
    assert len(owned.entries["overlaps"]) == 2


def _changing_grads(shape: tuple[int, int]) -> Any:
    """A grad_fn whose gradient changes layout (and aliasing) from step to step."""
    calls = {"n": 0}

    def grad_fn(p: list[Any]) -> tuple[Any, list[Any]]:
        k = calls["n"]
        calls["n"] += 1
        g = [0.1 * x + 1.0 for x in p]
        if k % 4 == 1:  # transposed layout, same values
            g = [x.T.contiguous().T if x.dim() == 2 else x for x in g]
        elif k % 4 == 2:  # a view of the params buffer the loop hands in
            g = [x.view(x.shape) for x in p]
        elif k % 4 == 3:
            g = [torch.stack([x, x], 0)[0] for x in g]  # a slice of a bigger tensor
        return sum((x * x).sum() for x in p), g

    return grad_fn


@pytest.mark.parametrize("make", [lambda: fnopt.adam(1e-2), lambda: fnopt.adamw(1e-2),
                                  lambda: fnopt.sgd(1e-2, momentum=0.9),
                                  lambda: fnopt.adagrad(1e-2)])
def test_loop_with_gradients_changing_layout_gives_the_pure_steps(make: Any) -> None:
    shape = (3, 4)
    p0 = [_t(*shape), _t(4)]
    opt = make()
    r = fnopt.fixed_point(opt, p0, _changing_grads(shape), stop=fnopt.stop.max_iters(9))
    gf = _changing_grads(shape)
    p, s = [x.clone() for x in p0], opt.init(p0)
    for _ in range(9):
        p, s = opt.step(p, gf, s)
    for a, b in zip(r.params, p):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_owned_part_is_judged_once_per_params_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = backend.TORCH._fuse_fixed

    def counted(fixed: Any) -> Any:
        calls["n"] += 1
        return real(fixed)

    monkeypatch.setattr(backend.TORCH, "_fuse_fixed", counted)
    p0 = [_t(5) for _ in range(10)]
    g = [_t(5) for _ in range(10)]
    r = fnopt.fixed_point(fnopt.adam(1e-3), p0, lambda p: (torch.zeros(()), g),
                          stop=fnopt.stop.max_iters(20))
    assert r.iterations == 20
    assert calls["n"] == 2  # the two params buffers in turn, each with the state
