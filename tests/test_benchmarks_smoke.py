"""Smoke test: every benchmark script runs (``--quick --rounds 1``; bench_scipy with
``--repeats 1``) and prints its Markdown tables. No timings are asserted. (bench_gpu is
run by tests/test_gpu.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("torch")


@pytest.mark.parametrize(
    "script, titles",
    [
        ("bench_loop.py",
         ["Tiny-problem loop, NumPy", "Optimizers inside a loop, MLP", "Peak memory"]),
        ("bench_steps.py", ["Optimizer step, MLP", "Optimizer step, tiny", "200×1000"]),
        ("bench_batched.py", ["Batched: 2,000 Rosenbrock starts"]),
    ],
)
def test_smoke_benchmark_runs_and_prints_tables(script, titles):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--rounds", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True,
    ).stdout
    for title in titles:
        assert title in out
    assert "| variant |" in out


def test_smoke_bench_scipy_runs_and_prints_its_table():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scipy.py"), "--repeats", "1",
         "--methods", "lbfgs", "--markdown"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True,
    ).stdout
    assert "| problem | method | fnopt ok | scipy ok |" in out
    assert "lbfgs: scipy L-BFGS-B solves" in out
