"""Train a small MLP on the Iris measurements and report held-out accuracy.

    python demos/mlp.py [--backend numpy|torch] [--out DIR] [--fast]

1. Load the Iris data shipped with fnopt, split it 80/20 keeping the class
   proportions (stratified), standardise with the training statistics.
2. Fit ``fnopt.tasks.mlp((4, 8, 3), loss="cross_entropy")`` with ``fnopt.sgd``
   (momentum 0.9, weight decay 1e-3) through ``fnopt.fixed_point``; print the loss and the
   held-out accuracy. One split of 30 flowers moves in steps of 3.3 %, so the demo also
   repeats the fit on several stratified splits and prints the mean.
3. Fit the same kind of network on the two petal measurements only, and draw its
   decision regions with the training points and the held-out points.

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
LEARNING_RATE = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-3


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def prepare(
    features: tuple[int, ...], backend: str, seed: int
) -> tuple[Any, Any, Any, Any, datasets.Dataset]:
    """Load Iris, split it (stratified, 20 % held out) and standardise."""
    data = datasets.iris(backend=backend, features=features)  # type: ignore[arg-type]
    x_tr, x_te, y_tr, y_te = datasets.train_test_split(data.x, data.y, 0.2, seed=seed)
    mean = x_tr.mean(0)
    std = ((x_tr - mean) ** 2).mean(0) ** 0.5  # ddof=0 on both backends
    return (x_tr - mean) / std, (x_te - mean) / std, y_tr, y_te, data


def fit(x_tr: Any, y_tr: Any, backend: str, iters: int, *, seed: int = 0) -> tuple[Any, Any]:
    """Train an MLP ``(d, HIDDEN, 3)`` with softmax cross-entropy; return (task, result)."""
    task = fnopt.tasks.mlp(
        (int(x_tr.shape[1]), HIDDEN, 3), activation="tanh", loss="cross_entropy",
        backend=backend, data=(x_tr, y_tr), seed=seed,  # type: ignore[arg-type]
    )
    opt = fnopt.sgd(LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    result = fnopt.fixed_point(
        opt, task.init_params, task.grad_fn, stop=fnopt.stop.max_iters(iters), record=True
    )
    return task, result


def accuracy(task: Any, params: Any, x: Any, y: Any) -> float:
    """Share of rows whose most probable class is the label."""
    return float((_np(task.predict(params, x)).argmax(axis=1) == _np(y)).mean())


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--out", default="demo-output/mlp", help="folder for the PNG files")
    parser.add_argument("--fast", action="store_true", help="fewer iterations and splits")
    parser.add_argument("--seed", type=int, default=0, help="seed of the main split")
    args = parser.parse_args(argv)
    iters = 150 if args.fast else 500
    n_splits = 3 if args.fast else 10
    out = Path(args.out)

    # 1-2. all four measurements
    x_tr, x_te, y_tr, y_te, data = prepare((0, 1, 2, 3), args.backend, args.seed)
    task, res = fit(x_tr, y_tr, args.backend, iters)
    losses = res.history.loss
    print(f"Iris: {len(data)} flowers, {len(data.feature_names)} features, "
          f"{len(data.target_names)} classes; train {len(y_tr)}, held out {len(y_te)} "
          f"(stratified, seed {args.seed}); backend {args.backend}")
    for i in sorted({0, *range(0, len(losses), max(1, len(losses) // 5)), len(losses) - 1}):
        print(f"  iteration {i:4d}  cross-entropy {losses[i]:.4f}")
    train_acc = accuracy(task, res.params, x_tr, y_tr)
    test_acc = accuracy(task, res.params, x_te, y_te)
    print(f"final loss {res.value:.4f} after {res.iterations} iterations; "
          f"train accuracy {train_acc:.1%}, held-out accuracy {test_acc:.1%} "
          f"({round(test_acc * len(y_te))}/{len(y_te)})")
    split_accs = [test_acc]
    for s in range(args.seed + 1, args.seed + n_splits):
        a_tr, a_te, b_tr, b_te, _ = prepare((0, 1, 2, 3), args.backend, s)
        t, r = fit(a_tr, b_tr, args.backend, iters)
        split_accs.append(accuracy(t, r.params, a_te, b_te))
    mean_acc = float(np.mean(split_accs))
    print(f"held-out accuracy over {n_splits} stratified splits: mean {mean_acc:.1%} "
          f"(min {min(split_accs):.1%}, max {max(split_accs):.1%})")

    # 3. two petal measurements, for a picture
    p_tr, p_te, q_tr, q_te, _ = prepare((2, 3), args.backend, args.seed)
    task2, res2 = fit(p_tr, q_tr, args.backend, iters)
    acc2 = accuracy(task2, res2.params, p_te, q_te)
    print(f"2-D model (petal length, width): held-out accuracy {acc2:.1%}")

    def predict2(points: np.ndarray) -> Any:
        pts = points if args.backend == "numpy" else __import__("torch").from_numpy(points)
        return _np(task2.predict(res2.params, pts))

    files = [
        plots.loss_curves(
            {"4 features": losses, "2 petal features": res2.history.loss},
            out / "mlp-loss.png", title="Iris MLP: training cross-entropy",
        ),
        plots.decision_regions(
            predict2, _np(p_tr), _np(q_tr), out / "mlp-decision-regions.png",
            x_test=_np(p_te), y_test=_np(q_te), class_names=data.target_names,
            feature_names=("petal length (standardised)", "petal width (standardised)"),
            title=f"Iris MLP decision regions (held-out accuracy {acc2:.1%})",
        ),
    ]
    for f in files:
        print(f"saved {f}")
    return {
        "loss": float(res.value),
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "mean_test_accuracy": mean_acc,
        "split_accuracies": split_accs,
        "accuracy_2d": acc2,
        "files": [str(f) for f in files],
    }


if __name__ == "__main__":
    main(sys.argv[1:])
