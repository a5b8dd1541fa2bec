"""fnopt.plots: every function writes a real, non-empty PNG and rejects bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fnopt import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path, min_size=2000):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) >= min_size


def _rosen(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


@pytest.mark.parametrize(
    "curves",
    [
        {"sgd": [1.0, 0.5, 0.25, 0.1]},
        {"a": np.logspace(0, -8, 50), "b": torch.logspace(0, -3, 20, dtype=torch.float64)},
        {"with zero and nan": [1.0, 0.0, np.nan, 1e-3]},  # dropped on the log scale
    ],
)
def test_loss_curves_writes_png(tmp_path, curves):
    out = plots.loss_curves(curves, tmp_path / "sub" / "loss.png", title="t")
    assert out == tmp_path / "sub" / "loss.png"
    assert _is_png(out)


def test_loss_curves_linear_scale_differs_from_log(tmp_path):
    a = plots.loss_curves({"x": [3.0, 2.0, 1.0]}, tmp_path / "a.png", log=False)
    b = plots.loss_curves({"x": [3.0, 2.0, 1.0]}, tmp_path / "b.png", log=True)
    assert a.read_bytes() != b.read_bytes()


def test_paths_on_contour_writes_png(tmp_path):
    run = np.array([[0.0, 0.0], [0.3, 0.05], [0.8, 0.6], [1.0, 1.0]])
    out = plots.paths_on_contour(
        _rosen, {"a": run, "b": torch.tensor(run[:2])}, tmp_path / "paths.png",
        solution=np.array([1.0, 1.0]), resolution=50,
    )
    assert _is_png(out)
    out2 = plots.paths_on_contour(_rosen, {"a": run}, tmp_path / "b.png",
                                  bounds=(-2, 2, -1, 3), resolution=30)
    assert _is_png(out2)


def test_fitted_lines_writes_png(tmp_path):
    x = torch.linspace(0, 5, 20, dtype=torch.float64)
    y = 2 * x + 3
    out = plots.fitted_lines(x, y, {"fit": (2.0, 3.0), "other": (1.0, 0.0)},
                             tmp_path / "fit.png", title="line")
    assert _is_png(out)


def test_decision_regions_accepts_labels_scores_and_probabilities(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    predictors = {
        "labels": lambda p: (p[:, 0] + p[:, 1] > 0).astype(int),
        "probs": lambda p: np.stack([p[:, 0] + p[:, 1] <= 0, p[:, 0] + p[:, 1] > 0], 1) * 1.0,
        "one-column": lambda p: (1 / (1 + np.exp(-(p[:, :1] + p[:, 1:])))),
        "tensor": lambda p: torch.from_numpy((p[:, 0] + p[:, 1] > 0).astype(np.int64)),
    }
    files = []
    for name, f in predictors.items():
        files.append(plots.decision_regions(
            f, x, y, tmp_path / f"{name}.png", class_names=["neg", "pos"],
            feature_names=("u", "v"), resolution=40, x_test=x[:5], y_test=y[:5],
        ))
    assert all(_is_png(f) for f in files)
    # the same decision drawn from labels or from probabilities gives the same picture
    assert files[0].read_bytes() == files[1].read_bytes()


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda d: plots.loss_curves({}, d / "a.png"), "curves"),
        (lambda d: plots.loss_curves({"a": [1.0]}, d / "a.jpg"), "png"),
        (lambda d: plots.paths_on_contour(_rosen, {}, d / "a.png"), "paths"),
        (lambda d: plots.fitted_lines(np.zeros(3), np.zeros(4), {}, d / "a.png"), "x, y"),
        (lambda d: plots.paths_on_contour(_rosen, {"a": np.zeros((3, 3))}, d / "a.png"),
         "shape"),
        (lambda d: plots.decision_regions(lambda p: p[:, 0], np.zeros((4, 3)), np.zeros(4),
                                          d / "a.png"), "two features"),
        (lambda d: plots.decision_regions(lambda p: p[:, 0], np.zeros((4, 2)), np.zeros(3),
                                          d / "a.png"), "labels"),
    ],
)
def test_bad_input_raises_value_error(tmp_path, call, word):
    with pytest.raises(ValueError, match=word):
        call(tmp_path)
    assert not any(tmp_path.iterdir())


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'fnopt\[demos\]'"):
        plots.loss_curves({"a": [1.0]}, tmp_path / "a.png")


def test_plots_never_use_pyplot_global_state():
    from pathlib import Path

    src = Path(plots.__file__).read_text()
    assert "pyplot" not in src.replace("pyplot's", "")


def test_save_all_draws_each_job_and_prints_its_path(tmp_path, capsys):
    path = tmp_path / "a.png"
    files = plots.save_all([(path, lambda: plots.loss_curves({"a": [2.0, 1.0]}, path))])
    assert files == [str(path)] and path.stat().st_size > 0
    assert capsys.readouterr().out == f"saved {path}\n"


def test_save_all_without_matplotlib_says_where_each_would_go(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    path = tmp_path / "a.png"
    assert plots.save_all([(path, lambda: plots.loss_curves({"a": [1.0]}, path))]) == []
    assert capsys.readouterr().out == f"matplotlib is not installed; would have saved {path}\n"
    assert not path.exists()
