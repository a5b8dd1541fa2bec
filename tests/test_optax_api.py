"""optax's names and calling conventions in fnopt (issue 21, "optax users"), and the
clear refusal of a schedule returning something that is not a number (issue 19)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt


def quad(p: Any) -> tuple[Any, Any]:
    return float(p @ p), 2 * p


@pytest.mark.parametrize(("bad", "count", "what"), [
    (lambda c: None, 0, "NoneType"),
    (lambda c: "0.1", 0, "str"),
    (lambda c: np.ones(3), 0, r"an array of shape \(3,\)"),
    (lambda c: 0.1 if c < 2 else None, 2, "NoneType"),
])
def test_a_schedule_returning_a_non_number_is_named(bad: Any, count: int, what: str) -> None:
    opt = fnopt.adam(bad)
    p = np.ones(2)
    with pytest.raises(TypeError, match=rf"learning_rate: the schedule returned {what}.* "
                                        rf"at count {count}"):
        s = opt.init(p)
        for _ in range(3):
            p, s = opt.step(p, quad, s)
