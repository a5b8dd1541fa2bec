"""demos/train_cnn.py: the CNN trains, early stopping fires and restores the best
weights, and the learning curves are saved (a few epochs only)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

PATH = Path(__file__).resolve().parents[1] / "demos" / "train_cnn.py"


def _demo():
    spec = importlib.util.spec_from_file_location("_demo_train_cnn", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_train_cnn_fast_learns_and_plots(tmp_path, capsys):
    out = _demo().main(["--fast", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    val = out["curves"]["val loss"]
    assert out["epochs_run"] == 2 and len(val) == 3  # epoch 0, then 2 epoch ends evaluated
    assert val[-1] < val[0]  # it learns
    assert out["best_val_loss"] == min(val[1:])
    assert "test accuracy" in printed
    for f in out["files"]:
        assert Path(f).stat().st_size > 1000


def test_train_cnn_early_stop_restores_the_best_epoch(tmp_path, capsys):
    # min_delta so large that only the first evaluation counts as an improvement:
    # with patience 1 the run stops at the end of epoch 2 and restores epoch 1's weights
    mod = _demo()
    out = mod.main(["--epochs", "6", "--patience", "1", "--min-delta", "100",
                    "--out", str(tmp_path)])
    capsys.readouterr()
    assert out["stopped_early"] and out["epochs_run"] == 2 and out["best_epoch"] == 1
    assert out["best_val_loss"] == out["curves"]["val loss"][1]
    split = mod.digits()
    train = mod.loader(*split["train"], seed=0)
    assert out["iterations"] == 2 * len(train)
