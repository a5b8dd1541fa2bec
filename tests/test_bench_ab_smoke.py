"""Smoke test: ``benchmarks/bench_ab.py`` runs (one tree against itself, ``--quick``) and
prints its A/B table. No timings are asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("torch")


def test_smoke_bench_ab_runs_and_prints_its_table():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_ab.py"), "--base", str(ROOT),
         "--new", str(ROOT), "--shape", "tiny", "--names", "sgd,rmsprop", "--quick"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True,
    ).stdout
    assert "### A/B, tiny" in out
    assert "| rmsprop | fixed_point NumPy / hand NumPy |" in out
