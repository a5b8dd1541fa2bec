"""Pictures of optimization runs, saved as PNG files (matplotlib, an optional extra).

Every function draws one figure, writes it to ``path`` (creating the folder) and
returns the path as a :class:`pathlib.Path`. Figures are made with
``matplotlib.figure.Figure`` and the Agg canvas, so nothing touches pyplot's global
state or needs a display. matplotlib is imported on first use; without it the
functions raise ``ImportError`` saying how to install it
(``pip install 'fnopt[demos]'``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fnopt import backend as _backend

__all__ = [
    "loss_curves", "paths_on_contour", "decision_regions", "fitted_lines", "to_numpy",
    "save_all",
]

PathLike = str | os.PathLike[str]


def _figure(figsize: tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "fnopt.plots needs matplotlib; install it with: pip install 'fnopt[demos]'"
        ) from exc
    return Figure(figsize=figsize, layout="constrained")


def _save(fig: Any, path: PathLike) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"path: expected a file name ending in .png, got {str(path)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of an array, a tensor (detached, moved to the CPU) or a list.

    >>> to_numpy([1.0, 2.0])
    array([1., 2.])
    """
    return _backend.to_numpy(x, copy=True)


def save_all(jobs: Sequence[tuple[PathLike, Callable[[], Path]]]) -> list[str]:
    """Draw each ``(path, draw)`` job and print ``saved <path>``; without matplotlib,
    draw nothing and print where each figure would have been saved.

    Args:
      jobs: pairs of the PNG path a job writes and a function of no arguments that
        draws it (a call of one of this module's functions) and returns its path.

    Returns:
      The paths written, as strings (``[]`` without matplotlib).

    >>> save_all([])
    []
    """
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        for path, _ in jobs:
            print(f"matplotlib is not installed; would have saved {path}")
        return []
    files = []
    for _, draw in jobs:
        f = draw()
        print(f"saved {f}")
        files.append(str(f))
    return files


def loss_curves(
    curves: Mapping[str, Sequence[float] | np.ndarray],
    path: PathLike,
    *,
    title: str = "",
    log: bool = True,
    xlabel: str = "iteration",
    ylabel: str = "loss",
) -> Path:
    """Plot one loss-against-iteration line per run (log scale by default).

    Non-positive values are dropped from a log-scale plot (a loss that reaches exactly
    0 has no logarithm), and non-finite values are skipped.

    Args:
      curves: ``{label: losses}``; ``losses[i]`` is the loss at iteration ``i``.
      path: the PNG file to write.
      title: the figure title.
      log: a logarithmic y axis.
      xlabel, ylabel: the axis labels.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    >>> import tempfile, os
    >>> out = loss_curves({"sgd": [1.0, 0.5, 0.25]}, os.path.join(tempfile.mkdtemp(), "l.png"))
    >>> out.stat().st_size > 0
    True
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves: expected a non-empty dict of label -> losses")
    fig = _figure((6.0, 4.0))
    ax = fig.add_subplot()
    styles = ("-", "--", ":", "-.")  # curves that coincide stay distinguishable
    for i, (label, values) in enumerate(curves.items()):
        ys = to_numpy(values).astype(float).reshape(-1)
        xs = np.arange(ys.size)
        keep = np.isfinite(ys) & ((ys > 0) if log else True)
        ax.plot(xs[keep], ys[keep], styles[i % len(styles)], label=str(label), lw=1.5)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def paths_on_contour(
    loss: Callable[[np.ndarray], Any],
    paths: Mapping[str, Any],
    path: PathLike,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    solution: Any = None,
    title: str = "",
    resolution: int = 200,
) -> Path:
    """Draw optimizer paths over the contour lines of a 2-D loss (log-spaced levels).

    Args:
      loss: ``loss(xy) -> scalar`` for a point ``xy`` of shape ``(2,)`` (NumPy).
      paths: ``{label: iterates}``, each of shape ``(k, 2)``.
      path: the PNG file to write.
      bounds: ``(xmin, xmax, ymin, ymax)``; by default the paths' range with a margin.
      solution: a point ``(2,)`` to mark with a star.
      title: the figure title.
      resolution: grid points per axis.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    >>> import tempfile, os
    >>> f = lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
    >>> run = np.array([[0.0, 0.0], [0.5, 0.2], [1.0, 1.0]])
    >>> out = paths_on_contour(f, {"demo": run}, os.path.join(tempfile.mkdtemp(), "c.png"),
    ...                        resolution=40)
    >>> out.stat().st_size > 0
    True
    """
    if not isinstance(paths, Mapping) or not paths:
        raise ValueError("paths: expected a non-empty dict of label -> iterates (k, 2)")
    arrays = {}
    for label, pts in paths.items():
        a = to_numpy(pts).astype(float)
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"paths: {label!r} must have shape (k, 2), got {a.shape}")
        arrays[str(label)] = a
    if bounds is None:
        pts = np.concatenate([a[np.isfinite(a).all(axis=1)] for a in arrays.values()])
        if solution is not None:
            pts = np.concatenate([pts, to_numpy(solution).reshape(1, 2)])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = np.maximum(0.25 * (hi - lo), 0.5)
        bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    xmin, xmax, ymin, ymax = bounds
    gx = np.linspace(xmin, xmax, resolution)
    gy = np.linspace(ymin, ymax, resolution)
    z = np.array([[float(loss(np.array([u, v]))) for u in gx] for v in gy])
    fig = _figure((6.0, 5.0))
    ax = fig.add_subplot()
    finite = z[np.isfinite(z)]
    low = max(float(finite.min()), 1e-3) if finite.size else 1e-3
    high = max(float(finite.max()), low * 10)
    levels = np.logspace(math.log10(low), math.log10(high), 20)
    ax.contour(gx, gy, np.maximum(z, low), levels=levels, cmap="viridis", linewidths=0.8)
    for label, a in arrays.items():
        ax.plot(a[:, 0], a[:, 1], "-", lw=1.2, marker=".", ms=3, label=f"{label} ({len(a) - 1})")
        ax.plot(a[0, 0], a[0, 1], "ko", ms=4)
    if solution is not None:
        s = to_numpy(solution).reshape(-1)
        ax.plot(s[0], s[1], "r*", ms=12, label="minimum")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    ax.set_title(title or "paths on the loss contours (steps in brackets)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def fitted_lines(
    x: Any,
    y: Any,
    lines: Mapping[str, tuple[float, float]],
    path: PathLike,
    *,
    title: str = "",
    xlabel: str = "x",
    ylabel: str = "y",
) -> Path:
    """Scatter 1-D data and draw straight lines ``y = slope * x + intercept`` over it.

    Args:
      x, y: the data, shape ``(n,)`` each (NumPy or torch).
      lines: ``{label: (slope, intercept)}``, e.g. the fitted line and the
        least-squares answer.
      path: the PNG file to write.
      title: the figure title.
      xlabel, ylabel: the axis labels.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    >>> import tempfile, os
    >>> out = fitted_lines(np.array([0.0, 1.0, 2.0]), np.array([3.1, 4.9, 7.2]),
    ...                    {"fit": (2.0, 3.0)}, os.path.join(tempfile.mkdtemp(), "f.png"))
    >>> out.stat().st_size > 0
    True
    """
    xs = to_numpy(x).astype(float).reshape(-1)
    ys = to_numpy(y).astype(float).reshape(-1)
    if xs.shape != ys.shape:
        raise ValueError(f"x, y: expected the same number of points, got {xs.size} and {ys.size}")
    if not isinstance(lines, Mapping):
        raise ValueError("lines: expected a dict of label -> (slope, intercept)")
    fig = _figure((6.0, 4.0))
    ax = fig.add_subplot()
    ax.scatter(xs, ys, s=16, c="C0", alpha=0.8, label="data")
    grid = np.linspace(float(xs.min()), float(xs.max()), 2)
    styles = ["-", "--", ":", "-."]
    for i, (label, (slope, intercept)) in enumerate(lines.items()):
        a, b = float(slope), float(intercept)
        ax.plot(grid, a * grid + b, styles[i % 4], lw=1.8, color=f"C{i + 1}",
                label=f"{label}: y = {a:.4f} x + {b:.4f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def decision_regions(
    predict: Callable[[np.ndarray], Any],
    x: Any,
    y: Any,
    path: PathLike,
    *,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    title: str = "",
    resolution: int = 200,
    x_test: Any = None,
    y_test: Any = None,
) -> Path:
    """Colour the plane by a 2-D classifier's decision and scatter the data on top.

    Args:
      predict: ``predict(points) -> labels (m,) or scores (m, k)`` for NumPy points
        of shape ``(m, 2)``; scores are turned into labels by ``argmax`` (one column:
        threshold at 0.5).
      x: training inputs, shape ``(n, 2)`` (NumPy or torch).
      y: integer labels, shape ``(n,)``.
      path: the PNG file to write.
      class_names: names for the legend, indexed by label.
      feature_names: the two axis labels.
      title: the figure title.
      resolution: grid points per axis.
      x_test, y_test: held-out points, drawn as crosses.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    >>> import tempfile, os
    >>> pts = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    >>> rule = lambda p: (p[:, 0] > 0.5).astype(int)
    >>> out = decision_regions(rule, pts, np.array([0, 1, 0, 1]),
    ...                        os.path.join(tempfile.mkdtemp(), "d.png"), resolution=20)
    >>> out.stat().st_size > 0
    True
    """
    xs = to_numpy(x).astype(float)
    ys = to_numpy(y).reshape(-1).astype(int)
    if xs.ndim != 2 or xs.shape[1] != 2:
        raise ValueError(f"x: expected shape (n, 2) (two features), got {xs.shape}")
    if ys.shape[0] != xs.shape[0]:
        raise ValueError(f"y: expected {xs.shape[0]} labels, got {ys.shape[0]}")
    everything = xs
    if x_test is not None:
        everything = np.concatenate([xs, to_numpy(x_test).astype(float)])
    lo, hi = everything.min(axis=0), everything.max(axis=0)
    pad = 0.1 * (hi - lo) + 1e-9
    gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    mx, my = np.meshgrid(gx, gy)
    grid = np.stack([mx.ravel(), my.ravel()], axis=1)
    scores = to_numpy(predict(grid))
    if scores.ndim == 2 and scores.shape[1] > 1:
        labels = scores.argmax(axis=1)
    elif scores.ndim == 2:
        labels = (scores[:, 0] > 0.5).astype(int)
    else:
        labels = scores.astype(int)
    n_classes = int(max(labels.max(), ys.max())) + 1
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    fig = _figure((6.0, 5.0))
    ax = fig.add_subplot()
    cmap = "tab10"
    ax.contourf(
        gx, gy, labels.reshape(mx.shape), levels=np.arange(n_classes + 1) - 0.5,
        cmap=cmap, vmin=0, vmax=9, alpha=0.25,
    )
    colours = [f"C{i % 10}" for i in range(n_classes)]
    for k in range(n_classes):
        sel = ys == k
        ax.scatter(xs[sel, 0], xs[sel, 1], s=18, c=colours[k], edgecolors="k", linewidths=0.4,
                   label=names[k] if k < len(names) else str(k))
    if x_test is not None and y_test is not None:
        xt = to_numpy(x_test).astype(float)
        yt = to_numpy(y_test).reshape(-1).astype(int)
        ax.scatter(xt[:, 0], xt[:, 1], s=30, c=[colours[k] for k in yt], marker="X",
                   edgecolors="k", linewidths=0.5, label="held out")
    if feature_names is not None:
        ax.set_xlabel(feature_names[0])
        ax.set_ylabel(feature_names[1])
    ax.set_title(title or "decision regions")
    ax.legend(fontsize=8)
    return _save(fig, path)
