"""Smoke test: benchmarks/bench_train.py runs (``--quick``: one epoch, one round) and
prints its three tables; no timings are asserted, but the float64 check is: fnopt's
weights after the epoch equal torch.optim's (one update per batch on both sides)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_bench_train_prints_its_tables_and_float64_agreement():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True,
    ).stdout
    for title in ("Training the CNN", "Gradient of one batch of 32", "float64, 1 epoch(s)"):
        assert title in out
    assert "torch.optim AdamW" in out and "test accuracy" in out
    # one update per batch on both sides, the same weights to round-off (both variants)
    rows = re.findall(r"fnopt \((\w+), (\d+) updates\) vs torch.optim \((\d+)\).*= "
                      r"([0-9.e+-]+) \|", out)
    assert len(rows) == 2, out
    for _, ours, theirs, dev in rows:
        assert ours == theirs and float(dev) < 1e-10
