"""fnopt.datasets: the shipped Iris data, stratified splits, one-hot labels; and the
softmax cross-entropy MLP that trains on it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fnopt
from fnopt import datasets

ROOT = Path(__file__).resolve().parent.parent


# -- the data ----------------------------------------------------------------------------


def test_iris_matches_fishers_published_summary():
    data = datasets.iris()
    x, y = data
    assert x.shape == (150, 4) and x.dtype == np.float64
    assert y.shape == (150,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 50, 50]
    # the summary table of the data set's documentation (means and SDs, 2 decimals)
    np.testing.assert_allclose(x.mean(0), [5.84, 3.06, 3.76, 1.20], atol=5e-3)
    np.testing.assert_allclose(x.std(0, ddof=1), [0.83, 0.44, 1.77, 0.76], atol=6e-3)
    assert x.min(0).tolist() == [4.3, 2.0, 1.0, 0.1]
    assert x.max(0).tolist() == [7.9, 4.4, 6.9, 2.5]
    # first and last rows of Fisher's table
    assert x[0].tolist() == [5.1, 3.5, 1.4, 0.2] and y[0] == 0
    assert x[-1].tolist() == [5.9, 3.0, 5.1, 1.8] and y[-1] == 2
    assert data.target_names == ("setosa", "versicolor", "virginica")
    assert data.feature_names[2] == "petal_length_cm"
    assert len(data) == 150 and "Fisher" in data.description


@pytest.mark.parametrize(
    ("backend", "dtype", "features", "shape"),
    [
        ("numpy", "float32", None, (150, 4)),
        ("torch", "float64", None, (150, 4)),
        ("torch", "float32", (2, 3), (150, 2)),
        ("numpy", "float64", (0,), (150, 1)),
    ],
)
def test_iris_backends_dtypes_features(backend, dtype, features, shape):
    data = datasets.iris(backend=backend, dtype=dtype, features=features)
    assert tuple(data.x.shape) == shape
    assert str(data.x.dtype).replace("torch.", "") == dtype
    ref = datasets.iris()
    cols = list(features) if features is not None else [0, 1, 2, 3]
    x = data.x.numpy() if backend == "torch" else data.x
    np.testing.assert_allclose(x, ref.x[:, cols], rtol=1e-6)
    assert [ref.feature_names[c] for c in cols] == list(data.feature_names)


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"backend": "jax"}, ValueError, "backend"),
        ({"dtype": "int32"}, ValueError, "dtype"),
        ({"features": (4,)}, ValueError, "features"),
        ({"features": ()}, ValueError, "features"),
        ({"features": (True,)}, ValueError, "features"),
    ],
)
def test_iris_rejects_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        datasets.iris(**kwargs)


def test_csv_is_package_data():
    # hatchling ships every file under fnopt/ (packages = ["fnopt"]); the loader reads it
    # through importlib.resources, so it works from a wheel as well as from a checkout.
    from importlib import resources

    text = resources.files("fnopt.datasets").joinpath("iris.csv").read_text()
    assert text.count("\n") == 151


# -- splits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "fraction", "test_counts"),
    [
        ([50, 50, 50], 0.2, [10, 10, 10]),
        ([50, 50, 50], 1 / 3, [17, 17, 17]),
        ([10, 4, 2], 0.25, [2, 1, 1]),
        ([3, 3], 0.9, [2, 2]),  # at least one row of each class stays for training
    ],
)
def test_stratified_indices_keep_class_proportions(counts, fraction, test_counts):
    y = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(0)
    y = y[rng.permutation(len(y))]
    train, test = datasets.stratified_indices(y, fraction, seed=3)
    assert np.bincount(y[test], minlength=len(counts)).tolist() == test_counts
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(y)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


@given(
    counts=st.lists(st.integers(2, 30), min_size=1, max_size=5),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_indices_partition_property(counts, fraction, seed):
    y = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    train, test = datasets.stratified_indices(y, fraction, seed=seed)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(y)))
    for cls, n in enumerate(counts):
        k = int((y[test] == cls).sum())
        assert 1 <= k <= n - 1  # every class on both sides
        assert abs(k - fraction * n) <= 0.5 + 1e-9 or k in (1, n - 1)  # rounded, or clamped


def test_stratified_indices_are_seeded():
    y = datasets.iris().y
    a = datasets.stratified_indices(y, seed=1)[1]
    b = datasets.stratified_indices(y, seed=1)[1]
    c = datasets.stratified_indices(y, seed=2)[1]
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


@pytest.mark.parametrize(
    ("y", "fraction", "exc", "word"),
    [
        (np.array([0, 0, 1, 1]), 0.0, ValueError, "test_fraction"),
        (np.array([0, 0, 1, 1]), 1.0, ValueError, "test_fraction"),
        (np.array([0, 0, 1, 1]), "half", TypeError, "test_fraction"),
        (np.array([0, 0, 1]), 0.5, ValueError, "class 1"),
        (np.zeros((2, 2)), 0.5, ValueError, "1-D"),
    ],
)
def test_stratified_indices_rejects_bad_input(y, fraction, exc, word):
    with pytest.raises(exc, match=word):
        datasets.stratified_indices(y, fraction)


def test_train_test_split_same_rows_on_both_backends():
    xn, yn = datasets.iris()
    xt, yt = datasets.iris(backend="torch")
    a = datasets.train_test_split(xn, yn, 0.2, seed=5)
    b = datasets.train_test_split(xt, yt, 0.2, seed=5)
    for u, v in zip(a, b):
        assert isinstance(v, torch.Tensor)
        np.testing.assert_array_equal(u, v.numpy())
    x_tr, x_te, y_tr, y_te = a
    assert np.bincount(y_tr).tolist() == [40, 40, 40]
    assert x_tr.shape == (120, 4) and x_te.shape == (30, 4)
    assert np.bincount(y_te).tolist() == [10, 10, 10]
    # no flower is in both parts
    idx_tr, idx_te = datasets.stratified_indices(yn, 0.2, seed=5)
    assert not set(idx_tr.tolist()) & set(idx_te.tolist())


def test_train_test_split_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="same number of rows"):
        datasets.train_test_split(np.zeros((4, 2)), np.array([0, 1, 0]))


def test_one_hot():
    np.testing.assert_array_equal(datasets.one_hot(np.array([1, 0]), 3), [[0, 1, 0], [1, 0, 0]])
    t = datasets.one_hot(torch.tensor([2]), dtype="float32")
    assert t.dtype == torch.float32 and t.tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="labels must lie"):
        datasets.one_hot(np.array([0, 3]), 3)
    with pytest.raises(TypeError, match="integer labels"):
        datasets.one_hot(np.array([0.5]))


# -- the cross-entropy MLP that trains on it -------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_mlp_cross_entropy_gradient_matches_finite_differences(backend, activation):
    task = fnopt.tasks.mlp((4, 5, 3), activation=activation, loss="cross_entropy",
                           backend=backend, n_samples=16, seed=2)
    ref = fnopt.grad.finite_differences(task.loss)
    report = fnopt.grad.check(task.grad_fn, ref, task.init_params, rtol=1e-6, atol=1e-8)
    assert report.ok, report


def test_mlp_cross_entropy_matches_torch_and_accepts_labels():
    x, y = datasets.iris()
    task = fnopt.tasks.mlp((4, 6, 3), activation="tanh", loss="cross_entropy", data=(x, y))
    assert task.data[1].shape == (150, 3)  # labels became one-hot rows
    p = task.init_params
    logits = torch.tensor(np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(y)).item()
    assert float(task.loss(p)) == pytest.approx(expected, rel=1e-12)
    probs = task.predict(p, x)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-12)
    # a minibatch of one-hot rows gives the mean over that batch
    yb = datasets.one_hot(y[:10], 3)
    sub = torch.nn.functional.cross_entropy(logits[:10], torch.tensor(y[:10])).item()
    assert float(task.loss(p, x[:10], yb)) == pytest.approx(sub, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"sizes": (4, 3, 1)}, "sizes"),
        ({"data": (np.zeros((3, 4)), np.array([0, 1, 5]))}, "labels"),
        ({"data": (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]))}, "labels"),
    ],
)
def test_mlp_cross_entropy_rejects_bad_input(kwargs, word):
    kwargs = {"sizes": (4, 3, 3), **kwargs}
    with pytest.raises(ValueError, match=word):
        fnopt.tasks.mlp(loss="cross_entropy", **kwargs)


# -- the Iris demo --------------------------------------------------------------------------


def _demo(name: str):
    spec = importlib.util.spec_from_file_location(f"_demo_{name}", ROOT / "demos" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_mlp_demo_learns_iris(tmp_path, capsys):
    mod = _demo("mlp")
    out = mod.main(["--fast", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "held-out accuracy" in text and "cross-validation" in text
    assert out["weight_decay"] in mod.WEIGHT_DECAYS
    assert set(out["cv_scores"]) == set(mod.WEIGHT_DECAYS)
    assert f"weight decay {out['weight_decay']:<6g}" in text and "<- chosen" in text
    assert out["train_accuracy"] >= 0.95
    assert out["mean_test_accuracy"] >= 0.9
    assert all(0.8 <= a <= 1.0 for a in out["split_accuracies"])
    for f in out["files"]:
        assert Path(f).stat().st_size > 1000
        assert str(f) in text


def test_mlp_demo_folds_are_stratified_and_cover_every_row():
    mod = _demo("mlp")
    _, y = datasets.iris()
    fold = mod.stratified_folds(y, 5, seed=3)
    assert sorted(set(fold.tolist())) == [0, 1, 2, 3, 4]
    for i in range(5):
        assert np.bincount(y[fold == i], minlength=3).tolist() == [10, 10, 10]
    assert not np.array_equal(fold, mod.stratified_folds(y, 5, seed=4))


def test_mlp_demo_never_looks_at_the_held_out_rows(monkeypatch):
    # The weight decay is chosen, and the model fitted, from the training part alone:
    # replacing the held-out features by garbage changes nothing but the test score.
    mod = _demo("mlp")
    clean = mod.run_split((0, 1, 2, 3), "numpy", 0, 3)
    prepare = mod.prepare

    def corrupted(features, backend, seed):
        x_tr, x_te, y_tr, y_te, data = prepare(features, backend, seed)
        return x_tr, np.full_like(x_te, 1e3), y_tr, y_te, data

    monkeypatch.setattr(mod, "prepare", corrupted)
    dirty = mod.run_split((0, 1, 2, 3), "numpy", 0, 3)
    assert dirty["weight_decay"] == clean["weight_decay"]
    assert dirty["cv"] == clean["cv"]
    assert dirty["curve"] == clean["curve"]
    assert dirty["train_accuracy"] == clean["train_accuracy"]
