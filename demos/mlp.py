"""Train a small MLP on the Iris measurements and report held-out accuracy.

    python demos/mlp.py [--backend numpy|torch] [--out DIR] [--fast]

1. Load the Iris data shipped with fnopt and split it 80/20 keeping the class
   proportions (stratified). The held-out 20 % is touched once, at the very end.
2. Choose the weight decay by stratified k-fold cross-validation on the *training*
   part only: for each candidate ``lam`` in ``WEIGHT_DECAYS``, fit on k-1 folds
   (standardised with those folds' own mean and std) and score the left-out fold;
   keep the highest mean validation accuracy (ties: the lower validation
   cross-entropy).
3. Standardise with the training statistics and fit ``fnopt.tasks.mlp((4, 8, 3),
   loss="cross_entropy")`` on the whole training part with ``fnopt.lbfgs``, run until
   the gradient norm is below ``TOL``, on the cross-entropy plus ``lam/2 * |W|^2`` (the
   weight matrices; biases are not penalised). No step count or learning rate to tune.
   Print the held-out accuracy. One split of 30 flowers moves in steps of 3.3 %, so the
   demo repeats the whole procedure (selection included) on several stratified splits
   and prints the mean.
4. Fit the same kind of network on the two petal measurements only (its own
   cross-validated ``lam``), and draw its decision regions with the training points and
   the held-out points.

Saves ``mlp-loss.png`` and ``mlp-decision-regions.png`` into ``--out`` and prints their
paths. ``main(argv)`` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import fnopt
from fnopt import datasets, plots

HIDDEN = 8
TEST_FRACTION = 0.2
WEIGHT_DECAYS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # the candidates for cross-validation
TOL = 1e-5  # gradient-norm tolerance of the L-BFGS fits
MAX_ITERS = 1000


def _take(x: Any, idx: np.ndarray) -> Any:
    if fnopt.backend.is_tensor(x):
        import torch

        return x[torch.from_numpy(idx).to(x.device)]
    return x[idx]


def standardise(x_fit: Any, *others: Any) -> tuple[Any, ...]:
    """Scale every array with the mean and std (ddof=0) of ``x_fit`` alone."""
    mean = x_fit.mean(0)
    std = ((x_fit - mean) ** 2).mean(0) ** 0.5  # ddof=0 on both backends
    return tuple((a - mean) / std for a in (x_fit, *others))


def prepare(
    features: tuple[int, ...], backend: str, seed: int
) -> tuple[Any, Any, Any, Any, datasets.Dataset]:
    """Load Iris and split it (stratified, ``TEST_FRACTION`` held out); not standardised."""
    data = datasets.iris(backend=backend, features=features)  # type: ignore[arg-type]
    x_tr, x_te, y_tr, y_te = datasets.train_test_split(data.x, data.y, TEST_FRACTION, seed=seed)
    return x_tr, x_te, y_tr, y_te, data


def stratified_folds(y: Any, k: int, seed: int) -> np.ndarray:
    """Fold number ``0 .. k-1`` of every row, each class dealt evenly over the folds."""
    labels = plots.to_numpy(y)
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.size, dtype=np.int64)
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        fold[rows] = np.arange(rows.size) % k
    return fold


def penalised(task: Any, lam: float) -> Any:
    """``grad_fn`` of cross-entropy + ``lam/2 * sum |W_l|^2`` (weight matrices only)."""

    def grad_fn(params: dict[str, Any], *batch: Any) -> tuple[Any, dict[str, Any]]:
        value, grads = task.grad_fn(params, *batch)
        weights = [k for k in params if k.startswith("w")]
        penalty = sum((params[k] * params[k]).sum() for k in weights)
        grads = {k: g + lam * params[k] if k in weights else g for k, g in grads.items()}
        return value + 0.5 * lam * penalty, grads

    return grad_fn


def fit(
    x_tr: Any, y_tr: Any, backend: str, lam: float, *, init: Any = None, seed: int = 0
) -> tuple[Any, Any]:
    """Fit an MLP ``(d, HIDDEN, 3)`` (standardised ``x_tr``) with L-BFGS; (task, result).

    Starts from ``init`` when given, else from the task's seeded initial params.
    """
    task = fnopt.tasks.mlp(
        (int(x_tr.shape[1]), HIDDEN, 3), activation="tanh", loss="cross_entropy",
        backend=backend, data=(x_tr, y_tr), seed=seed,  # type: ignore[arg-type]
    )
    result = fnopt.fixed_point(
        fnopt.lbfgs(), task.init_params if init is None else init, penalised(task, lam),
        stop=fnopt.stop.grad_norm_below(TOL) | fnopt.stop.max_iters(MAX_ITERS), record=True,
    )
    return task, result


def accuracy(task: Any, params: Any, x: Any, y: Any) -> float:
    """Share of rows whose most probable class is the label."""
    predicted = plots.to_numpy(task.predict(params, x)).argmax(axis=1)
    return float((predicted == plots.to_numpy(y)).mean())


def cross_entropy(task: Any, params: Any, x: Any, y: Any) -> float:
    """Mean ``-log p(label)`` of the rows (no penalty)."""
    p = plots.to_numpy(task.predict(params, x))
    return float(-np.log(np.maximum(p[np.arange(len(p)), plots.to_numpy(y)], 1e-300)).mean())


def select_weight_decay(
    x_tr: Any, y_tr: Any, backend: str, k: int, seed: int
) -> tuple[float, dict[float, tuple[float, float]]]:
    """k-fold cross-validation on the training part: (best lam, {lam: (acc, ce)}).

    On each fold the candidates run from the largest ``lam`` down, each fit starting
    where the previous one ended (a continuation path: half the iterations of cold
    starts).
    """
    fold = stratified_folds(y_tr, k, seed)
    accs: dict[float, list[float]] = {lam: [] for lam in WEIGHT_DECAYS}
    ces: dict[float, list[float]] = {lam: [] for lam in WEIGHT_DECAYS}
    for i in range(k):
        fit_rows, val_rows = np.flatnonzero(fold != i), np.flatnonzero(fold == i)
        x_fit, x_val = standardise(_take(x_tr, fit_rows), _take(x_tr, val_rows))
        y_fit, y_val = _take(y_tr, fit_rows), _take(y_tr, val_rows)
        params = None
        for lam in sorted(WEIGHT_DECAYS, reverse=True):
            task, res = fit(x_fit, y_fit, backend, lam, init=params)
            params = res.params
            accs[lam].append(accuracy(task, params, x_val, y_val))
            ces[lam].append(cross_entropy(task, params, x_val, y_val))
    scores = {lam: (float(np.mean(accs[lam])), float(np.mean(ces[lam]))) for lam in WEIGHT_DECAYS}
    best = max(WEIGHT_DECAYS, key=lambda lam: (scores[lam][0], -scores[lam][1]))
    return best, scores


def run_split(
    features: tuple[int, ...], backend: str, seed: int, k: int
) -> dict[str, Any]:
    """The whole procedure on one split: select lam on the training part, refit, test."""
    x_tr, x_te, y_tr, y_te, data = prepare(features, backend, seed)
    lam, scores = select_weight_decay(x_tr, y_tr, backend, k, seed)
    x_tr_s, x_te_s = standardise(x_tr, x_te)
    task, res = fit(x_tr_s, y_tr, backend, lam)
    # L-BFGS records the objective after each step; put the starting point in front
    start = float(plots.to_numpy(penalised(task, lam)(task.init_params)[0]))
    curve = [start, *(float(v) for v in res.history.loss)]
    return {
        "data": data, "task": task, "result": res, "curve": curve, "weight_decay": lam,
        "cv": scores,
        "x_train": x_tr_s, "x_test": x_te_s, "y_train": y_tr, "y_test": y_te,
        "train_accuracy": accuracy(task, res.params, x_tr_s, y_tr),
        "test_accuracy": accuracy(task, res.params, x_te_s, y_te),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--out", default="demo-output/mlp", help="folder for the PNG files")
    parser.add_argument("--fast", action="store_true", help="fewer folds and splits")
    parser.add_argument("--seed", type=int, default=0, help="seed of the main split")
    args = parser.parse_args(argv)
    k = 3 if args.fast else 5
    n_splits = 2 if args.fast else 10
    out = Path(args.out)

    # 1-3. all four measurements
    main_run = run_split((0, 1, 2, 3), args.backend, args.seed, k)
    data, task, res = main_run["data"], main_run["task"], main_run["result"]
    y_tr, y_te = main_run["y_train"], main_run["y_test"]
    print(f"Iris: {len(data)} flowers, {len(data.feature_names)} features, "
          f"{len(data.target_names)} classes; train {len(y_tr)}, held out {len(y_te)} "
          f"(stratified, seed {args.seed}); backend {args.backend}")
    print(f"{k}-fold cross-validation on the {len(y_tr)} training flowers:")
    for lam, (acc, ce) in main_run["cv"].items():
        mark = "  <- chosen" if lam == main_run["weight_decay"] else ""
        print(f"  weight decay {lam:<6g} validation accuracy {acc:.1%}, "
              f"cross-entropy {ce:.4f}{mark}")
    losses = main_run["curve"]
    for i in sorted({0, *range(0, len(losses), max(1, len(losses) // 5)), len(losses) - 1}):
        print(f"  L-BFGS iteration {i:4d}  objective {losses[i]:.4f}")
    train_ce = cross_entropy(task, res.params, main_run["x_train"], y_tr)
    train_acc, test_acc = main_run["train_accuracy"], main_run["test_accuracy"]
    print(f"objective {res.value:.4f} (training cross-entropy {train_ce:.4f}) after "
          f"{res.iterations} iterations ({res.reason}); train accuracy {train_acc:.1%}, "
          f"held-out accuracy {test_acc:.1%} ({round(test_acc * len(y_te))}/{len(y_te)})")
    split_accs = [test_acc]
    for s in range(args.seed + 1, args.seed + n_splits):
        split_accs.append(run_split((0, 1, 2, 3), args.backend, s, k)["test_accuracy"])
    mean_acc = float(np.mean(split_accs))
    print(f"held-out accuracy over {n_splits} stratified splits (weight decay chosen by "
          f"cross-validation on each training part): mean {mean_acc:.1%} "
          f"(min {min(split_accs):.1%}, max {max(split_accs):.1%})")

    # 4. two petal measurements, for a picture
    run2 = run_split((2, 3), args.backend, args.seed, k)
    task2, res2, acc2 = run2["task"], run2["result"], run2["test_accuracy"]
    print(f"2-D model (petal length, width; weight decay {run2['weight_decay']:g}): "
          f"held-out accuracy {acc2:.1%}")

    def predict2(points: np.ndarray) -> Any:
        pts = points if args.backend == "numpy" else __import__("torch").from_numpy(points)
        return plots.to_numpy(task2.predict(res2.params, pts))

    files = [
        plots.loss_curves(
            {"4 features": losses, "2 petal features": run2["curve"]},
            out / "mlp-loss.png", ylabel="cross-entropy + weight decay",
            title="Iris MLP: L-BFGS training objective",
        ),
        plots.decision_regions(
            predict2, plots.to_numpy(run2["x_train"]), plots.to_numpy(run2["y_train"]),
            out / "mlp-decision-regions.png",
            x_test=plots.to_numpy(run2["x_test"]), y_test=plots.to_numpy(run2["y_test"]),
            class_names=data.target_names,
            feature_names=("petal length (standardised)", "petal width (standardised)"),
            title=f"Iris MLP decision regions (held-out accuracy {acc2:.1%})",
        ),
    ]
    for f in files:
        print(f"saved {f}")
    return {
        "loss": train_ce,
        "objective": float(res.value),
        "weight_decay": main_run["weight_decay"],
        "cv_scores": main_run["cv"],
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "mean_test_accuracy": mean_acc,
        "split_accuracies": split_accs,
        "accuracy_2d": acc2,
        "files": [str(f) for f in files],
    }


if __name__ == "__main__":
    main(sys.argv[1:])
