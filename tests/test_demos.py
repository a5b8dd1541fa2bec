"""Run every demo in demos/ through its ``main(argv)`` with fast settings; check the
numbers it prints and returns, and that its PNG files exist and are not empty."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"
DEMO_FILES = sorted(p for p in DEMOS.glob("*.py") if not p.name.startswith("_"))

try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_MPL = False


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_demo_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _flags(path: Path) -> set[str]:
    """The command-line flags a demo declares (``--out``, ``--backend``, ``--fast``)."""
    return set(re.findall(r"add_argument\(\s*\"(--[a-z-]+)\"", path.read_text()))


# demos whose numbers have their own tests below (which also check their plots)
CHECKED = {"rosenbrock", "linear_regression", "mlp"}


def _cases() -> list[Any]:
    cases = []
    for path in DEMO_FILES:
        if path.stem in CHECKED:
            continue
        backends = ("numpy", "torch") if "--backend" in _flags(path) else (None,)
        for be in backends:
            cases.append(pytest.param(path, be, id=path.stem + (f"-{be}" if be else "")))
    return cases


def _run(path: Path, backend: str | None, out: Path, capsys: Any) -> tuple[dict, str]:
    flags = _flags(path)
    argv = ["--fast"] if "--fast" in flags else []
    if "--out" in flags:
        argv += ["--out", str(out)]
    if backend is not None:
        argv += ["--backend", backend]
    result = _load(path).main(argv)
    printed = capsys.readouterr().out
    assert isinstance(result, dict) and result, f"{path.name}: main(argv) must return a dict"
    return result, printed


def test_every_demo_takes_the_flags_the_tour_passes():
    # ``fnopt tour`` (the README's ./run demo) calls each demo with --out DIR [--fast]
    for path in DEMO_FILES:
        assert {"--out", "--fast"} <= _flags(path), f"{path.name} lacks --out or --fast"


def test_the_demos_folder_has_the_core_demos():
    names = {p.stem for p in DEMO_FILES}
    assert {"rosenbrock", "linear_regression"} <= names


def _check_outputs(path: Path, out: Path, result: dict, printed: str) -> None:
    assert printed.strip(), f"{path.name} printed nothing"
    if "--out" not in _flags(path):
        return
    if not HAVE_MPL:
        assert "would have saved" in printed
        return
    pngs = sorted(out.rglob("*.png"))
    assert pngs, f"{path.name} saved no PNG into --out"
    for f in pngs:
        assert f.stat().st_size > 0, f
        assert f"saved {f}" in printed or str(f) in printed
    for f in result.get("files", []):
        assert Path(f).is_file() and Path(f).stat().st_size > 0


@pytest.mark.parametrize("path, backend", _cases())
def test_demo_runs_and_saves_its_plots(path, backend, tmp_path, capsys):
    out = tmp_path / path.stem
    result, printed = _run(path, backend, out, capsys)
    _check_outputs(path, out, result, printed)


# -- the numbers of the core demos -----------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_rosenbrock_demo_numbers(backend, tmp_path, capsys):
    result, printed = _run(DEMOS / "rosenbrock.py", backend, tmp_path, capsys)
    _check_outputs(DEMOS / "rosenbrock.py", tmp_path, result, printed)
    assert result["iterations"] == 5771 and result["reason"] == "loss_below"
    assert [round(v, 4) for v in result["final_point"]] == [0.9684, 0.9377]
    assert result["final_loss"] <= 1e-3
    assert "5771 iterations" in printed and "(0.9684, 0.9377)" in printed
    assert 0 < result["nesterov_iterations"] < 5771
    if HAVE_MPL:
        names = sorted(Path(f).name for f in result["files"])
        assert names == ["rosenbrock-contour.png", "rosenbrock-loss.png"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_linear_regression_demo_numbers(backend, tmp_path, capsys):
    import numpy as np

    import fnopt

    result, printed = _run(DEMOS / "linear_regression.py", backend, tmp_path, capsys)
    _check_outputs(DEMOS / "linear_regression.py", tmp_path, result, printed)
    x, y = fnopt.tasks.make_linear_data(n=32, seed=0)
    slope, intercept = np.polyfit(x, y, 1)
    assert result["lstsq_slope"] == pytest.approx(slope, rel=1e-10)
    assert result["lstsq_intercept"] == pytest.approx(intercept, rel=1e-10)
    assert result["slope"] == pytest.approx(slope, abs=1e-6)
    assert result["intercept"] == pytest.approx(intercept, abs=1e-6)
    assert result["reason"] == "grad_norm_below"
    assert f"{slope:10.6f}{intercept:12.6f}" in printed  # the least-squares row
    assert "fitted (GD)" in printed
    if HAVE_MPL:
        names = sorted(Path(f).name for f in result["files"])
        assert names == ["linear-regression-fit.png", "linear-regression-loss.png"]


def test_mlp_demo_numbers(tmp_path, capsys):
    path = DEMOS / "mlp.py"
    result, printed = _run(path, "numpy", tmp_path, capsys)
    _check_outputs(path, tmp_path, result, printed)
    if "test_accuracy" in result:
        assert 0.8 <= result["test_accuracy"] <= 1.0
        assert f"{result['test_accuracy']:.1%}" in printed
    if "loss" in result:
        assert 0 < result["loss"] < 1.0
    if "weight_decay" in result:  # chosen by cross-validation on the training part
        assert "cross-validation" in printed and "<- chosen" in printed


def test_demos_say_where_plots_would_go_without_matplotlib(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    result, printed = _run(DEMOS / "linear_regression.py", "numpy", tmp_path, capsys)
    assert result["files"] == []
    assert f"would have saved {tmp_path / 'linear-regression-fit.png'}" in printed
    assert not list(tmp_path.rglob("*.png"))
