"""``Backend.all_finite`` (read by ``fixed_point``'s check of the starting params):
one reduction when the sum is finite, the elementwise test when it overflowed; the same
answers as ``isfinite(x).all()`` on both backends, without warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fnopt import backend as B

torch = pytest.importorskip("torch")

CASES = [
    ([1.0, -2.0], True),
    ([1.0, float("nan")], False),
    ([float("inf"), 1.0], False),
    ([float("inf"), -float("inf")], False),  # the sum is NaN
    ([3e38, 3e38], True),  # the float32 sum overflows; every element is finite
    ([-3e38, -3e38, float("nan")], False),
    ([], True),
]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("values, expected", CASES)
def test_all_finite(values: list[float], expected: bool, backend: str, dtype: str) -> None:
    x = B.array(np.array(values, dtype=dtype), backend)
    be = B.NUMPY if backend == "numpy" else B.TORCH
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert be.all_finite([x]) is expected
        assert be.all_finite([x, x]) is expected
