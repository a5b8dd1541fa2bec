"""The Iris measurements (Fisher, 1936), shipped with fnopt as a CSV file."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any, Literal

import attrs
import numpy as np

from fnopt import backend as _backend

__all__ = ["Dataset", "iris", "train_test_split", "stratified_indices", "one_hot"]

_FILE = "iris.csv"


@attrs.frozen(eq=False)
class Dataset:
    """A small labelled dataset. Unpacks as ``x, y = dataset``.

    Attributes:
      x: features, shape ``(n, d)``, float.
      y: integer class labels in ``0 .. len(target_names) - 1``, shape ``(n,)``.
      feature_names: the ``d`` column names (with units).
      target_names: the class names, indexed by label.
      description: where the data comes from.
    """

    x: Any
    y: Any
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    description: str

    def __iter__(self) -> Any:
        return iter((self.x, self.y))

    def __len__(self) -> int:
        return int(self.x.shape[0])


_DESCRIPTION = (
    "Iris flower measurements collected by Edgar Anderson and published by R. A. Fisher, "
    '"The use of multiple measurements in taxonomic problems", Annals of Eugenics 7 '
    "(1936): 150 flowers, 50 of each of three species (setosa, versicolor, virginica), "
    "four measurements in cm. Public domain. The values are Fisher's (as in R's `iris`), "
    "which differ from the UCI copy in two rows."
)


def iris(
    *,
    backend: Literal["numpy", "torch"] = "numpy",
    dtype: Any = "float64",
    features: tuple[int, ...] | None = None,
) -> Dataset:
    """Load the Iris dataset that ships inside fnopt (150 rows, 4 features, 3 classes).

    Args:
      backend: ``"numpy"`` (default) or ``"torch"`` for the returned arrays.
      dtype: ``"float64"`` (default) or ``"float32"`` for the features.
      features: column indices to keep (e.g. ``(2, 3)`` for the two petal
        measurements); all four by default.

    Returns:
      A :class:`Dataset` with ``x`` of shape ``(150, len(features))`` and integer
      labels ``y`` (0 setosa, 1 versicolor, 2 virginica; int64).

    >>> from fnopt import datasets
    >>> x, y = datasets.iris()
    >>> x.shape, y.shape, [int(c) for c in np.bincount(y)]
    ((150, 4), (150,), [50, 50, 50])
    >>> datasets.iris(features=(2, 3)).feature_names
    ('petal_length_cm', 'petal_width_cm')
    """
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend: expected 'numpy' or 'torch', got {backend!r}")
    dt = np.dtype(_backend.dtype_name(dtype))
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    text = resources.files("fnopt.datasets").joinpath(_FILE).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], [r for r in rows[1:] if r]
    names = tuple(header[:-1])
    classes = tuple(dict.fromkeys(r[-1] for r in body))
    x = np.array([[float(v) for v in r[:-1]] for r in body], dtype=dt)
    y = np.array([classes.index(r[-1]) for r in body], dtype=np.int64)
    if features is not None:
        cols = tuple(features)
        if not cols or any(
            isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < len(names)
            for c in cols
        ):
            raise ValueError(
                f"features: expected column indices in 0..{len(names) - 1}, got {features!r}"
            )
        x = x[:, list(cols)]
        names = tuple(names[c] for c in cols)
    return Dataset(_backend.array(x, backend), _backend.array(y, backend), names, classes,
                   _DESCRIPTION)


def _to_numpy_labels(y: Any) -> np.ndarray:
    y = _backend.to_numpy(y)
    if y.ndim != 1:
        raise ValueError(f"y: expected 1-D labels of shape (n,), got shape {y.shape}")
    return y


def stratified_indices(
    y: Any, test_fraction: float = 0.2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` for a split that keeps the class proportions.

    Each class contributes ``round(test_fraction * n_class)`` of its rows (at least one,
    and at least one left for training) to the test set, chosen at random with
    ``seed``. Both index arrays are sorted.

    Args:
      y: class labels, shape ``(n,)`` (NumPy array or tensor, any hashable values).
      test_fraction: the share of each class held out, in (0, 1).
      seed: seeds the NumPy generator that picks the rows.

    Returns:
      ``(train_idx, test_idx)``, int64 NumPy arrays that partition ``range(n)``.

    >>> train, test = stratified_indices(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25)
    >>> len(train), len(test)
    (6, 2)
    """
    labels = _to_numpy_labels(y)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(f"test_fraction: expected a number, got {type(test_fraction).__name__}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        if rows.size < 2:
            raise ValueError(
                f"y: class {cls.item()!r} has {rows.size} row; a stratified split needs "
                f"at least 2"
            )
        k = min(max(1, round(test_fraction * rows.size)), rows.size - 1)
        test.append(rng.permutation(rows)[:k])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    mask = np.ones(labels.size, dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask).astype(np.int64), test_idx


def train_test_split(
    x: Any, y: Any, test_fraction: float = 0.2, *, seed: int = 0
) -> tuple[Any, Any, Any, Any]:
    """Split ``x`` and ``y`` into stratified train and test parts.

    Args:
      x: features, shape ``(n, ...)`` (NumPy array or tensor).
      y: class labels, shape ``(n,)`` (same backend as ``x``).
      test_fraction: the share of each class held out, in (0, 1).
      seed: seeds the choice of test rows.

    Returns:
      ``(x_train, x_test, y_train, y_test)``, new arrays of the inputs' backend (the
      order scikit-learn uses).

    >>> from fnopt import datasets
    >>> x, y = datasets.iris()
    >>> x_tr, x_te, y_tr, y_te = datasets.train_test_split(x, y, 0.2)
    >>> x_tr.shape, x_te.shape, [int(c) for c in np.bincount(y_te)]
    ((120, 4), (30, 4), [10, 10, 10])
    """
    n = int(x.shape[0])
    if int(y.shape[0]) != n:
        raise ValueError(
            f"x, y: expected the same number of rows, got {n} and {int(y.shape[0])}"
        )
    train, test = stratified_indices(y, test_fraction, seed=seed)
    bx, by = _backend.of_value(x), _backend.of_value(y)
    x_tr, x_te = bx.take_rows(x, train), bx.take_rows(x, test)
    return x_tr, x_te, by.take_rows(y, train), by.take_rows(y, test)


def one_hot(y: Any, n_classes: int | None = None, *, dtype: Any = "float64") -> Any:
    """Integer labels ``(n,)`` as one-hot rows ``(n, n_classes)`` of ``dtype``.

    Args:
      y: integer labels in ``0 .. n_classes - 1`` (NumPy array or tensor).
      n_classes: the number of classes (default ``max(y) + 1``).
      dtype: ``"float64"`` (default) or ``"float32"``.

    Returns:
      A new array (a tensor for tensor labels).

    >>> one_hot(np.array([0, 2]))
    array([[1., 0., 0.],
           [0., 0., 1.]])
    """
    labels = _to_numpy_labels(y)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"y: expected integer labels, got dtype {labels.dtype}")
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"n_classes: expected an int >= 1, got {n_classes!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"y: labels must lie in 0..{k - 1}, got {labels.min()}..{labels.max()}")
    dt = np.dtype(_backend.dtype_name(dtype))
    out = np.zeros((labels.size, k), dtype=dt)
    out[np.arange(labels.size), labels] = 1.0
    return _backend.of_value(y).from_host(out, y, keep_dtype=True)
