"""fnopt.schedules against optax.schedules on the same settings, including the ones
optax defines by convention (transition_steps <= 0, decay_rate = 0, a negative
transition_begin, peak_value 0 with end_value), and evaluated on arrays of counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt.schedules as S

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

CASES: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("piecewise_interpolate_schedule", ("linear", 1.0, {2: 3.0, 4: 0.5, 9: 0.1}), {}),
    ("piecewise_interpolate_schedule", ("cosine", 1.0, {2: 3.0, 4: 0.5, 9: 0.1}), {}),
    ("piecewise_interpolate_schedule", ("linear", 2.0, None), {}),
    ("linear_onecycle_schedule", (20, 1.0), {}),
    ("linear_onecycle_schedule", (17, 0.3), dict(pct_start=0.1, pct_final=0.5)),
    ("cosine_onecycle_schedule", (20, 1.0), {}),
    ("sgdr_schedule",
     ([dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=7)] * 3,), {}),
    ("warmup_exponential_decay_schedule", (0.1, 1.0, 3, 2, 0.5),
     dict(transition_begin=2, end_value=0.2)),
    ("exponential_decay", (1.0, 2, 0.5), dict(transition_begin=4, end_value=2.0)),
    ("exponential_decay", (1.0, 2, 0.5), dict(staircase=True, transition_begin=-3)),
    ("exponential_decay", (1.0, 0, 0.5), {}),
    ("exponential_decay", (1.0, -2, 0.5), {}),
    ("exponential_decay", (1.0, 3, 0.0), {}),
    ("polynomial_schedule", (1.0, 0.0, 2.0, 0), {}),
    ("polynomial_schedule", (1.0, 0.2, 2.0, 5, -3), {}),
    ("linear_schedule", (1.0, 0.2, -1), {}),
    ("warmup_cosine_decay_schedule", (0.1, 0.0, 3, 10), dict(end_value=0.5)),
    ("warmup_cosine_decay_schedule", (0.0, 1.0, 3, 10), dict(end_value=0.1, exponent=2.0)),
    ("warmup_constant_schedule", (0.1, 1.0, 3), {}),
    ("cosine_decay_schedule", (1.0, 10), dict(alpha=0.1, exponent=2.0)),
    ("constant_schedule", (0.25,), {}),
    ("piecewise_constant_schedule", (1.0, {3: 0.5, 7: 0.0}), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_optax(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    ours = getattr(S, name)(*args, **kwargs)
    theirs = getattr(optax.schedules, name)(*args, **kwargs)
    counts = np.arange(32)
    values = ours(counts)  # an array of counts in, an array out
    assert isinstance(values, np.ndarray) and values.shape == counts.shape
    expected = np.array([float(theirs(int(t))) for t in counts])
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)
    assert [ours(int(t)) for t in counts[:5]] == pytest.approx(list(expected[:5]), rel=1e-12)


def test_arrays_of_counts_keep_their_shape() -> None:
    s = S.linear(1.0, 0.0, 4)
    out = s(np.array([[0, 1], [2, 8]]))
    np.testing.assert_array_equal(out, [[1.0, 0.75], [0.5, 0.0]])
    assert isinstance(s(np.int64(2)), float)


def test_optax_refusals_are_kept() -> None:
    with pytest.raises(ValueError, match="interpolate_type"):
        S.piecewise_interpolate_schedule("cubic", 1.0)
    with pytest.raises(ValueError, match=r"boundaries_and_scales\[2\]"):
        S.piecewise_constant_schedule(1.0, {2: -0.5})
    with pytest.raises(ValueError, match="transition_steps"):
        S.linear_onecycle_schedule(0, 1.0)
