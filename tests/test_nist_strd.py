"""The 27 NIST StRD nonlinear-regression problems shipped in fnopt/datasets/nist/: they
load, the certified values reproduce the certified residual sum of squares, and
fnopt.least_squares / fnopt.curve_fit reach the certified values on a few of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fnopt
from fnopt.datasets import NIST_STRD_NAMES, nist_strd


def test_all_27_load_and_the_certified_values_give_the_certified_rss():
    assert len(NIST_STRD_NAMES) == 27
    for name in NIST_STRD_NAMES:
        d = nist_strd(name)
        r = d.residuals(d.certified)
        assert len(d.starts) == 2 and len(d.starts[0]) == len(d.certified)
        if name != "Lanczos1":  # its certified RSS (1.4e-25) is below the data's rounding
            assert float(r @ r) == pytest.approx(d.certified_rss, rel=1e-9), name
    assert nist_strd("misra1a").x.shape == (14,) and nist_strd("Nelson").x.shape == (2, 128)


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="name: expected one of"):
        nist_strd("Misra9z")


@pytest.mark.parametrize("name,method", [("Misra1a", "lm"), ("DanWood", "trf"),
                                         ("Rat42", "dogbox")])
def test_certified_values_reached(name, method):
    d = nist_strd(name)
    res = fnopt.least_squares(d.residuals, np.array(d.starts[1]), method=method,
                              xtol=1e-12, ftol=1e-12)
    np.testing.assert_allclose(res.x, d.certified, rtol=1e-7)
    assert 2 * res.cost == pytest.approx(d.certified_rss, rel=1e-8)
    popt, pcov = fnopt.curve_fit(lambda x, *b: d.model(x, np.array(b)), d.x, d.y,
                                 p0=d.starts[1], xtol=1e-12, ftol=1e-12)
    np.testing.assert_allclose(popt, d.certified, rtol=1e-7)
    np.testing.assert_allclose(np.sqrt(np.diag(pcov)), d.certified_std, rtol=1e-5)


def test_smoke_bench_nist_prints_its_summary():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_nist.py"), "--problems", "Misra1a",
         "--markdown"], capture_output=True, text=True, timeout=300, cwd=root, check=True,
    ).stdout
    assert "| Misra1a | 1 | lm | yes | yes |" in out
    assert "- trf: fnopt solves 2/2, scipy solves 2/2" in out
