"""Train an ``nn.Sequential`` classifier with fnopt and with torch.optim, side by side.

    python demos/torch_module.py [--out DIR] [--fast]

The same float64 network (4 -> 16 -> 3, tanh) starts from the same weights twice:

* fnopt: ``fnopt.torch.params_of(model)`` takes the weights out as a dict,
  ``fnopt.grad.module(model, cross_entropy)`` makes a ``grad_fn`` from the module, and
  ``fnopt.fixed_point(fnopt.adam(...), ..., data=minibatches)`` trains it;
  ``fnopt.torch.load_into`` puts the result back into a model.
* torch.optim: the usual ``zero_grad(); loss.backward(); opt.step()`` loop with
  ``torch.optim.Adam`` and the same hyperparameters and minibatches.

The two loss columns agree to round-off. Saves ``torch-module-loss.png``.
``main(argv)`` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import fnopt
from fnopt import datasets, plots

BATCH = 16


def make_model(seed: int = 0) -> torch.nn.Sequential:
    """The classifier: 4 -> 16 -> 3 with tanh, float64, seeded weights."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    ).double()


def optimizers(lr: float = 1e-2) -> tuple[str, Any, Any]:
    """(name, fnopt optimizer, torch.optim factory) with the same hyperparameters."""
    return "adam", fnopt.adam(lr), lambda ps: torch.optim.Adam(ps, lr=lr, foreach=False)


def minibatches(x: torch.Tensor, y: torch.Tensor, seed: int) -> Iterator[tuple[Any, Any]]:
    """Endless shuffled minibatches, one fresh permutation per epoch."""
    rng = np.random.default_rng(seed)
    while True:
        order = torch.from_numpy(rng.permutation(len(y)))
        for i in range(0, len(y), BATCH):
            idx = order[i:i + BATCH]
            yield x[idx], y[idx]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo-output/torch_module",
                        help="folder for the PNG file")
    parser.add_argument("--fast", action="store_true", help="fewer epochs")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    epochs = args.epochs or (5 if args.fast else 30)

    data = datasets.iris(backend="torch")
    x_tr, x_te, y_tr, y_te = datasets.train_test_split(data.x, data.y, 0.2, seed=0)
    mean = x_tr.mean(0)
    std = ((x_tr - mean) ** 2).mean(0) ** 0.5
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    steps = epochs * -(-len(y_tr) // BATCH)
    loss_fn = torch.nn.functional.cross_entropy
    name, opt, torch_opt = optimizers()

    # fnopt: pure params, a grad_fn built from the module, the generic loop
    model = make_model()
    reference = copy.deepcopy(model)  # the torch.optim copy starts from the same weights
    grad_fn = fnopt.grad.module(model, loss_fn)
    result = fnopt.fixed_point(
        opt, fnopt.torch.params_of(model), grad_fn,
        data=minibatches(x_tr, y_tr, seed=1), stop=fnopt.stop.max_iters(steps), record=True,
    )
    trained = fnopt.torch.load_into(make_model(), result.params)

    # torch.optim: the usual stateful loop over the same minibatches
    optim = torch_opt(reference.parameters())
    torch_losses = []
    batches = minibatches(x_tr, y_tr, seed=1)
    for _ in range(steps):
        xb, yb = next(batches)
        optim.zero_grad()
        loss = loss_fn(reference(xb), yb)
        loss.backward()
        optim.step()
        torch_losses.append(loss.item())

    ours = result.history.loss[:steps]
    theirs = np.asarray(torch_losses)
    print(f"{name} on Iris minibatches of {BATCH}, {epochs} epochs = {steps} steps (float64)")
    print(f"{'step':>6}  {'fnopt loss':>20}  {'torch.optim loss':>20}  {'|difference|':>12}")
    for k in sorted({*range(0, steps, max(1, steps // 10)), steps - 1}):
        print(f"{k:6d}  {ours[k]:20.15f}  {theirs[k]:20.15f}  {abs(ours[k] - theirs[k]):12.2e}")
    max_loss_diff = float(np.max(np.abs(ours - theirs)))
    max_param_diff = max(
        float((p.detach() - q.detach()).abs().max())
        for p, q in zip(trained.parameters(), reference.parameters())
    )
    print(f"largest loss difference {max_loss_diff:.2e}; "
          f"largest weight difference {max_param_diff:.2e}")
    with torch.no_grad():
        acc = float((trained.eval()(x_te).argmax(1) == y_te).double().mean())
    print(f"held-out accuracy of the fnopt-trained model: {acc:.1%}")
    path = plots.loss_curves(
        {f"fnopt.{name}": ours, f"torch.optim ({name})": theirs},
        Path(args.out) / "torch-module-loss.png",
        title="nn.Sequential on Iris: minibatch loss", xlabel="step",
    )
    print(f"saved {path}")
    return {
        "optimizer": name,
        "steps": steps,
        "fnopt_losses": ours,
        "torch_losses": theirs,
        "max_loss_diff": max_loss_diff,
        "max_param_diff": max_param_diff,
        "test_accuracy": acc,
        "files": [str(path)],
    }


if __name__ == "__main__":
    main(sys.argv[1:])
