"""Training a real model: fnopt against torch.optim in an ordinary training script.

A small CNN (two conv layers, two linear; ``demos/train_cnn.py``) on scikit-learn's 8x8
digits, minibatches of 32 from a shuffled ``DataLoader``, AdamW (lr 1e-3, weight decay
1e-2), 8 epochs, one torch thread, the same seeds (weights and batch order) for every
variant:

* ``torch.optim``: ``zero_grad(); loss = ...; loss.backward(); opt.step()`` and
  ``loss.item()`` per batch;
* fnopt as the issue's script: ``fnopt.torch.params_of`` + ``fnopt.grad.module`` and one
  ``fixed_point(fnopt.adamw(...), ..., data=loader)`` per epoch;
* fnopt with one ``fixed_point(..., data=loader, epochs=8)``;
* the per-epoch script with the ``torch.func`` route, ``grad.module(..., via="func")``
  (the route ``grad.module`` used before).

Prints the wall time of the whole training (best and median of interleaved runs) and
its ratio to torch.optim, the updates made and the test accuracy side by side; then the
per-batch cost of ``grad.module`` against a plain ``loss.backward()``; then, in
float64, the largest deviation of fnopt's weights from torch.optim's after the same
epochs (one update per batch on both sides).

    python benchmarks/bench_train.py [--rounds 5] [--epochs 8] [--quick]

Needs scikit-learn (``pip install 'fnopt[bench]'``).
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import fnopt

try:
    from benchmarks._common import header, parser, setup, table
except ImportError:  # run as a script from benchmarks/
    from _common import header, parser, setup, table  # type: ignore[no-redef]

F = torch.nn.functional
LR, WD = 1e-3, 1e-2


def _demo() -> Any:
    """demos/train_cnn.py: the model, the data splits and the loader."""
    path = Path(__file__).resolve().parents[1] / "demos" / "train_cnn.py"
    spec = importlib.util.spec_from_file_location("_train_cnn", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


DEMO = _demo()


Times = tuple[float, float]
"""(wall seconds, CPU seconds of this process). On a shared machine the wall clock
also counts time spent waiting for a core; with one torch thread the process CPU time
counts only the work, so both are reported."""


def now() -> Times:
    return time.perf_counter(), time.process_time()


def since(t0: Times) -> Times:
    wall, cpu = now()
    return wall - t0[0], cpu - t0[1]


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def train_torch(model: torch.nn.Module, loader: Any, epochs: int,
                stop_after: int | None = None) -> tuple[Times, int]:
    """The torch.optim script; returns (times, updates). ``stop_after``: updates."""
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    updates, running = 0, 0.0
    t0 = now()
    for _ in range(epochs):
        for xb, yb in loader:
            if stop_after is not None and updates == stop_after:
                break
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item()
            updates += 1
    return since(t0), updates


def train_fnopt(model: torch.nn.Module, loader: Any, epochs: int, *, how: str = "per_epoch",
                via: str = "autograd") -> tuple[Times, int]:
    """The fnopt script; loads the result into ``model``; returns (times, updates)."""
    grad_fn = fnopt.grad.module(model, F.cross_entropy, via=via)
    opt = fnopt.adamw(LR, weight_decay=WD)
    params = fnopt.torch.params_of(model)
    forever = fnopt.stop.max_iters(10**9)
    t0 = now()
    if how == "per_epoch":
        state, updates = None, 0
        for _ in range(epochs):
            r = fnopt.fixed_point(opt, params, grad_fn, state, data=loader, stop=forever)
            params, state, updates = r.params, r.state, updates + r.iterations
    else:
        r = fnopt.fixed_point(opt, params, grad_fn, data=loader, epochs=epochs, stop=forever)
        params, updates = r.params, r.iterations
    times = since(t0)
    fnopt.torch.load_into(model, params)
    return times, updates


VARIANTS: dict[str, Callable[..., tuple[Times, int]]] = {
    "torch.optim AdamW": train_torch,
    "fnopt, fixed_point per epoch": train_fnopt,
    "fnopt, one fixed_point(epochs=...)": lambda m, ld, e: train_fnopt(m, ld, e, how="epochs"),
    "fnopt per epoch, grad.module(via='func')": lambda m, ld, e: train_fnopt(
        m, ld, e, via="func"),
}


def _rows(samples: dict[str, list[Times]], ref: str,
          notes: dict[str, str] | None = None) -> list[tuple[str, float, float, str]]:
    """Best wall time and its ratio to ``ref``; the CPU-time and median ratios in the note."""
    def best(name: str, i: int) -> float:
        return min(t[i] for t in samples[name])

    def median(name: str) -> float:
        return statistics.median(t[0] for t in samples[name])

    rows = []
    for name in samples:
        note = (f"CPU time {best(name, 1) / best(ref, 1):.2f}×; median wall "
                f"{median(name) / median(ref):.2f}×")
        if notes:
            note += "; " + notes[name]
        rows.append((name, best(name, 0) * 1e3, best(name, 0) / best(ref, 0), note))
    return rows


def whole_runs(split: dict[str, Any], epochs: int, rounds: int) -> str:
    times: dict[str, list[Times]] = {k: [] for k in VARIANTS}
    notes: dict[str, str] = {}
    for r in range(rounds + 1):  # round 0 warms up and is not recorded
        for name, run in VARIANTS.items():
            model = DEMO.make_model(0)
            t, updates = run(model, DEMO.loader(*split["train"], seed=0), epochs)
            if r:
                times[name].append(t)
            notes[name] = f"{updates} updates; test accuracy {accuracy(model, *split['test']):.1%}"
    rows = _rows(times, "torch.optim AdamW", notes)
    return table(f"Training the CNN, {epochs} epochs (best of {rounds} interleaved runs; "
                 "ms = wall time)", rows, unit="ms")


def per_batch(split: dict[str, Any], rounds: int) -> str:
    batches = list(DEMO.loader(*split["train"], seed=0))
    model = DEMO.make_model(0)
    params = fnopt.torch.params_of(model)
    fns = {v: fnopt.grad.module(model, F.cross_entropy, via=v) for v in ("autograd", "func")}

    def plain() -> None:
        for xb, yb in batches:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()

    def provider(via: str) -> Callable[[], None]:
        def run() -> None:
            for xb, yb in batches:
                fns[via](params, xb, yb)
        return run

    variants = {"plain loss.backward()": plain,
                "grad.module (autograd, default)": provider("autograd"),
                "grad.module(via='func')": provider("func")}
    samples: dict[str, list[Times]] = {k: [] for k in variants}
    n = len(batches)
    for r in range(rounds + 1):
        for name, f in variants.items():
            t0 = now()
            f()
            wall, cpu = since(t0)
            if r:
                samples[name].append((wall / n * 1e3, cpu / n * 1e3))  # ms, shown as µs
    return table(f"Gradient of one batch of 32 (best of {rounds} interleaved passes over "
                 f"{n} batches; µs = wall time)", _rows(samples, "plain loss.backward()"))


def float64_check(epochs: int) -> str:
    split = DEMO.digits(torch.float64)
    rows = []
    for how in ("per_epoch", "epochs"):
        ours = DEMO.make_model(0, torch.float64)
        _, updates = train_fnopt(ours, DEMO.loader(*split["train"], seed=0), epochs, how=how)
        ref = DEMO.make_model(0, torch.float64)
        _, ref_updates = train_torch(ref, DEMO.loader(*split["train"], seed=0), epochs)
        dev = max(float((a.detach() - b.detach()).abs().max())
                  for a, b in zip(ours.parameters(), ref.parameters()))
        rows.append((f"fnopt ({how}, {updates} updates) vs torch.optim ({ref_updates})", None,
                     None, f"max |w_fnopt - w_torch| = {dev:.2e}"))
    return table(f"float64, {epochs} epoch(s), the same seeds and batches", rows)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args(argv)
    setup(args)
    epochs = 1 if args.quick else args.epochs
    rounds = 1 if args.quick else args.rounds
    split = DEMO.digits(torch.float32)
    print(header())
    print()
    print(whole_runs(split, epochs, rounds))
    print()
    print(per_batch(split, 3 if args.quick else 4 * rounds))
    print()
    print(float64_check(1 if args.quick else 2))


if __name__ == "__main__":
    main()

