"""Schedules against closed forms and torch.optim.lr_scheduler, plus invariants."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fnopt import schedules as S

N = 60


def values(s: S.Schedule, n: int = N) -> list[float]:
    return [s(t) for t in range(n)]


def torch_lrs(make_sched: Any, lr: float, n: int = N) -> list[float]:
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make_sched(torch.optim.lr_scheduler, opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


TORCH_CASES = [
    ("ExponentialLR", S.exponential_decay(0.1, 1, 0.9),
     lambda m, o: m.ExponentialLR(o, gamma=0.9)),
    ("StepLR", S.exponential_decay(0.1, 7, 0.5, staircase=True),
     lambda m, o: m.StepLR(o, step_size=7, gamma=0.5)),
    ("MultiStepLR", S.piecewise_constant(0.1, {10: 0.3, 25: 0.3, 40: 0.3}),
     lambda m, o: m.MultiStepLR(o, milestones=[10, 25, 40], gamma=0.3)),
    ("CosineAnnealingLR", S.cosine_decay(0.1, N, alpha=0.05),
     lambda m, o: m.CosineAnnealingLR(o, T_max=N, eta_min=0.005)),
    ("LinearLR", S.linear(0.1 * 0.25, 0.1, 20),
     lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=20)),
    ("PolynomialLR", S.polynomial(0.1, 0.0, 2.0, 30),
     lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.0)),
    ("ConstantLR", S.join_schedules([S.constant(0.05), S.constant(0.1)], [8]),
     lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=8)),
]


@pytest.mark.parametrize(("name", "ours", "make"), TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_lr_scheduler(name: str, ours: S.Schedule, make: Any) -> None:
    np.testing.assert_allclose(values(ours), torch_lrs(make, 0.1), rtol=1e-10, atol=1e-15)


def test_sequential_lr_is_join_schedules() -> None:
    ours = S.join_schedules([S.linear(0.01, 0.1, 5), S.exponential_decay(0.1, 1, 0.9)], [5])

    def make(m: Any, o: Any) -> Any:
        warm = m.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5)
        decay = m.ExponentialLR(o, gamma=0.9)
        return m.SequentialLR(o, [warm, decay], milestones=[5])

    np.testing.assert_allclose(values(ours, 30), torch_lrs(make, 0.1, 30), rtol=1e-10)


CLOSED_FORM = [
    ("constant", S.constant(0.3), lambda t: 0.3),
    ("linear", S.linear(1.0, 0.1, 10, transition_begin=5),
     lambda t: 1.0 + (0.1 - 1.0) * min(max(t - 5, 0), 10) / 10),
    ("polynomial", S.polynomial(2.0, 0.5, 3.0, 20),
     lambda t: (2.0 - 0.5) * (1 - min(t, 20) / 20) ** 3 + 0.5),
    ("exponential", S.exponential_decay(1.0, 4, 0.5, transition_begin=3),
     lambda t: 1.0 if t < 3 else 0.5 ** ((t - 3) / 4)),
    ("exponential-end", S.exponential_decay(1.0, 1, 0.5, end_value=0.1),
     lambda t: max(0.5**t, 0.1)),
    ("exponential-growth-end", S.exponential_decay(1.0, 1, 2.0, end_value=8.0),
     lambda t: min(2.0**t, 8.0)),
    ("cosine", S.cosine_decay(1.0, 10, alpha=0.2, exponent=2.0),
     lambda t: (0.8 * (0.5 * (1 + math.cos(math.pi * min(t, 10) / 10))) ** 2 + 0.2)),
    ("warmup_cosine", S.warmup_cosine_decay(0.0, 1.0, 5, 25, end_value=0.1),
     lambda t: t / 5 if t < 5
     else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t - 5, 20) / 20))),
    ("piecewise", S.piecewise_constant(1.0, {5: 0.5, 10: 0.1}),
     lambda t: 1.0 * (0.5 if t >= 5 else 1) * (0.1 if t >= 10 else 1)),
]


@pytest.mark.parametrize(("name", "s", "f"), CLOSED_FORM, ids=[c[0] for c in CLOSED_FORM])
def test_closed_form(name: str, s: S.Schedule, f: Any) -> None:
    np.testing.assert_allclose(values(s), [f(t) for t in range(N)], rtol=1e-13)


def test_schedules_return_python_floats_for_numpy_counts() -> None:
    for _, s, _ in CLOSED_FORM:
        assert isinstance(s(np.int64(3)), float)


@given(
    init=st.floats(1e-4, 10.0),
    steps=st.integers(1, 200),
    t=st.integers(0, 1000),
)
def test_decays_stay_between_end_points(init: float, steps: int, t: int) -> None:
    for s, lo in [
        (S.cosine_decay(init, steps, alpha=0.1), 0.1 * init),
        (S.linear(init, 0.0, steps), 0.0),
        (S.polynomial(init, 0.0, 2.0, steps), 0.0),
        (S.exponential_decay(init, steps, 0.5), 0.0),
    ]:
        v = s(t)
        assert lo - 1e-12 <= v <= init * (1 + 1e-12)
        assert s(t + 1) <= v + 1e-12  # non-increasing


@given(b=st.lists(st.integers(1, 50), min_size=1, max_size=4, unique=True), t=st.integers(0, 120))
def test_join_schedules_restarts_each_piece(b: list[int], t: int) -> None:
    b = sorted(b)
    pieces = [S.linear(float(i + 1), 0.0, 10) for i in range(len(b) + 1)]
    s = S.join_schedules(pieces, b)
    i = sum(1 for x in b if x <= t)
    start = b[i - 1] if i else 0
    assert s(t) == pieces[i](t - start)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: S.constant(math.nan), "value"),
        (lambda: S.polynomial(1.0, 0.0, math.inf, 5), "power"),
        (lambda: S.cosine_decay(1.0, 0), "decay_steps"),
        (lambda: S.exponential_decay(1.0, 5, -0.5), "decay_rate"),
        # (optax defines transition_steps <= 0, a negative transition_begin and
        # decay_rate 0: tests/test_optax_schedules.py holds them to optax's values)
        (lambda: S.warmup_cosine_decay(0.0, 1.0, 10, 10), "decay_steps"),
        (lambda: S.piecewise_constant(1.0, {-1: 0.5}), "boundaries_and_scales"),
        (lambda: S.join_schedules([S.constant(1.0)], [3]), "boundaries"),
        (lambda: S.join_schedules([S.constant(1.0)] * 3, [5, 5]), "boundaries"),
        (lambda: S.join_schedules([], []), "schedules"),
        (lambda: S.constant(1.0)(-1), "count"),
    ],
)
def test_validation(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_type_validation() -> None:
    with pytest.raises(TypeError, match="transition_steps"):
        S.linear(1.0, 0.0, 2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="init_value"):
        S.cosine_decay("1", 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="schedules"):
        S.join_schedules([S.constant(1.0), 3], [2])  # type: ignore[list-item]
