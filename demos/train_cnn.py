"""Train a small CNN on the 8x8 digits with fnopt, stopping early on a validation split.

    python demos/train_cnn.py [--out DIR] [--fast] [--epochs N] [--patience P]

The ordinary PyTorch training script, with fnopt in place of torch.optim:

* the model is a ``torch.nn.Module`` (two conv layers, two linear); its weights come out
  as a dict with ``fnopt.torch.params_of`` and ``fnopt.grad.module(model,
  cross_entropy)`` gives the gradient provider (a plain backward pass underneath);
* ``fnopt.epochs(loader, N)`` hands ``fnopt.fixed_point`` the shuffled minibatches of a
  ``DataLoader`` for up to N epochs, with ``fnopt.adamw``;
* ``fnopt.stop.no_improvement(val_loss, patience=P, every=batches per epoch)`` evaluates
  the validation loss at the end of each epoch, stops once it has not improved for P
  epochs and keeps the best weights, which are restored and scored on the test split.

Saves ``train-cnn-loss.png`` and ``train-cnn-accuracy.png`` (train and validation
curves per epoch). ``main(argv)`` returns the numbers as a dict. Needs scikit-learn for
the digits data (``pip install 'fnopt[demos]'``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import fnopt
from fnopt import plots

F = torch.nn.functional
BATCH = 32


class CNN(torch.nn.Module):
    """conv(1->16, 3x3) - relu - maxpool - conv(16->32, 3x3) - relu - maxpool -
    linear(128->64) - relu - linear(64->10), for 1x8x8 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = torch.nn.Linear(32 * 2 * 2, 64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def make_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> CNN:
    """The CNN with seeded initial weights."""
    torch.manual_seed(seed)
    return CNN().to(dtype)


def digits(
    dtype: torch.dtype = torch.float32, seed: int = 0
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 8x8 digits (1797 images, pixel values / 16) as ``{"train",
    "val", "test"}`` splits of 60/20/20%, shuffled with ``seed``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=dtype).reshape(-1, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    x, y = x[order], y[order]
    a, b = int(0.6 * len(y)), int(0.8 * len(y))
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}


def loader(x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.utils.data.DataLoader:
    """Shuffled minibatches of ``BATCH``, reproducible from ``seed``."""
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=BATCH, shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )


def scores(model: torch.nn.Module, params: dict[str, torch.Tensor],
           x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` with ``params`` on ``(x, y)``."""
    with torch.no_grad():
        out = torch.func.functional_call(model, params, (x,))
        return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).double().mean())


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo-output/train_cnn", help="folder for the PNGs")
    parser.add_argument("--fast", action="store_true", help="at most 3 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--min-delta", type=float, default=0.0,
                        help="smallest drop of the validation loss that counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    max_epochs = args.epochs or (3 if args.fast else 40)
    torch.set_num_threads(1)

    split = digits(seed=args.seed)
    train = loader(*split["train"], seed=args.seed)
    model = make_model(args.seed)
    grad_fn = fnopt.grad.module(model, F.cross_entropy)
    curves: dict[str, list[float]] = {k: [] for k in ("train loss", "val loss",
                                                       "train acc", "val acc")}

    def val_loss(params: dict[str, torch.Tensor]) -> float:
        # called by the criterion at each epoch end; also records the learning curves
        for part in ("train", "val"):
            loss, acc = scores(model, params, *split[part])
            curves[f"{part} loss"].append(loss)
            curves[f"{part} acc"].append(acc)
        return curves["val loss"][-1]

    params = fnopt.torch.params_of(model)
    val_loss(params)  # epoch 0: the starting point of the curves
    steps_per_epoch = len(train)
    rule = fnopt.stop.no_improvement(val_loss, patience=args.patience, every=steps_per_epoch,
                                     min_delta=args.min_delta)
    # Until fixed_point reports epochs and hands back the criterion's best params, the
    # callback drives the criterion (the same check the loop makes) and keeps its state.
    crit = {"state": rule.init()}

    def early_stop(info: fnopt.stop.Info) -> bool:
        fired, crit["state"] = rule.check(info, crit["state"])
        return bool(fired)

    data = fnopt.epochs(train, max_epochs)
    result = fnopt.fixed_point(
        fnopt.adamw(1e-3, weight_decay=1e-2), params, grad_fn, data=data,
        stop=fnopt.stop.max_iters(10**9), callback=early_stop,
    )
    state = crit["state"]
    stopped = result.reason == "callback"
    best_params = state.best_params if state.best_params is not None else result.params
    test_loss, test_acc = scores(model, best_params, *split["test"])
    fnopt.torch.load_into(model, best_params)  # the trained module, ready to use

    n_eval = len(curves["val loss"])
    print(f"CNN on 8x8 digits: {len(split['train'][1])} train / {len(split['val'][1])} "
          f"val / {len(split['test'][1])} test images, batches of {BATCH}, AdamW")
    print(f"{'epoch':>5}  {'train loss':>10}  {'val loss':>10}  {'train acc':>9}  {'val acc':>8}")
    for e in range(n_eval):
        print(f"{e:5d}  {curves['train loss'][e]:10.4f}  {curves['val loss'][e]:10.4f}  "
              f"{curves['train acc'][e]:9.1%}  {curves['val acc'][e]:8.1%}")
    best_epoch = None if state.best_at is None else state.best_at // steps_per_epoch
    if stopped:
        print(f"early stop after epoch {n_eval - 1}: the validation loss did not improve "
              f"for {args.patience} epoch(s)")
    else:
        print(f"ran {data.epoch} epoch(s) without an early stop ({result.reason})")
    if best_epoch is not None:
        print(f"best validation loss {state.best:.4f} after epoch {best_epoch}")
    print(f"test accuracy with the restored best weights: {test_acc:.1%} (loss {test_loss:.4f})")

    out = Path(args.out)
    title = "small CNN on 8x8 digits"
    files = plots.save_all([
        (out / "train-cnn-loss.png", lambda: plots.loss_curves(
            {k: curves[k] for k in ("train loss", "val loss")}, out / "train-cnn-loss.png",
            title=f"{title}: cross-entropy", xlabel="epoch")),
        (out / "train-cnn-accuracy.png", lambda: plots.loss_curves(
            {k: curves[k] for k in ("train acc", "val acc")}, out / "train-cnn-accuracy.png",
            title=f"{title}: accuracy", xlabel="epoch", ylabel="accuracy", log=False)),
    ])
    return {
        "curves": curves,
        "epochs_run": n_eval - 1,
        "stopped_early": stopped,
        "best_epoch": best_epoch,
        "best_val_loss": state.best,
        "test_accuracy": test_acc,
        "iterations": result.iterations,
        "files": files,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
