"""Fault endurance: many randomised runs of ``fnopt.fixed_point`` with one injected
fault each, checking that every way a run ends keeps and saves the last good iterate.

Each case draws a backend (NumPy/torch, float64), an optimizer, the path (loop-owned
buffers, or pure steps because a callback is given), a checkpoint cadence and one
fault at a random point: the loader raising ``OSError``, ``grad_fn`` raising an
``Exception``, ``SystemExit``, ``GeneratorExit``, another ``BaseException`` or
``KeyboardInterrupt``, a NaN loss once, NaN gradients once, or a callback returning a
vector. The run must end with a Result (returned, or as the exception's ``.result``),
the final checkpoint must hold the Result's params with a state whose step count is its
iteration, and resuming from the checkpoint with the fault-free ``grad_fn`` must
continue bitwise like a run that never saw the fault (first-order optimizers; a line
search may absorb a NaN, so for ``lbfgs`` only the checkpoint is checked).

Run ``python benchmarks/fault_endurance.py`` (``--cases N``, ``--seed S``, ``--quick``
for a smoke run). Prints a Markdown table per fault kind; exits 1 if any case failed.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

import fnopt
from fnopt import stop

try:
    import torch
except ImportError:  # NumPy only
    torch = None

ITERS = 30
KINDS = ["loader_oserror", "grad_exception", "grad_systemexit", "grad_generatorexit",
         "grad_baseexception", "grad_keyboardinterrupt", "nan_loss", "nan_grad",
         "callback_vector"]
OPTIMIZERS = {
    "adam": lambda: fnopt.adam(0.05),
    "adamw": lambda: fnopt.adamw(0.05, weight_decay=0.01),
    "sgd": lambda: fnopt.sgd(0.05),
    "sgd_momentum": lambda: fnopt.sgd(0.05, momentum=0.9),
    "nesterov": lambda: fnopt.sgd(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: fnopt.rmsprop(0.01),
    "adagrad": lambda: fnopt.adagrad(0.1),
    "lbfgs": lambda: fnopt.lbfgs(),
}


class Abort(BaseException):
    """A BaseException that is not an Exception."""


def problem(backend: str, rng: np.random.Generator) -> tuple[Any, Any, list[Any]]:
    """Least squares over ``ITERS + 5`` batches: start, ``grad_fn(w, x, y)``, batches."""
    w_true = rng.standard_normal(4)
    batches = []
    for _ in range(ITERS + 5):
        x = rng.standard_normal((6, 4))
        batches.append((x, x @ w_true + 0.1 * rng.standard_normal(6)))
    w0 = np.zeros(4)
    if backend == "torch":
        batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        w0 = torch.zeros(4, dtype=torch.float64)

    def grad_fn(w: Any, x: Any, y: Any) -> tuple[Any, Any]:
        r = x @ w - y
        return (r * r).sum() / len(y), 2.0 * (x.T @ r) / len(y)

    return w0, grad_fn, batches


def inject(kind: str, grad_fn: Any, batches: list[Any], at: int) -> tuple[Any, Any, Any]:
    """The faulty ``grad_fn``, data and callback for one case (fault at call/batch/
    iteration ``at``)."""
    calls = [0]
    raises = {"grad_exception": RuntimeError, "grad_systemexit": SystemExit,
              "grad_generatorexit": GeneratorExit, "grad_baseexception": Abort,
              "grad_keyboardinterrupt": KeyboardInterrupt}

    def faulty(w: Any, *batch: Any) -> Any:
        calls[0] += 1
        if calls[0] == at and kind in raises:
            raise raises[kind]("injected")
        v, g = grad_fn(w, *batch)
        if calls[0] == at and kind == "nan_loss":
            return v * math.nan, g
        if calls[0] == at and kind == "nan_grad":
            return v, g * math.nan
        return v, g

    def loader() -> Any:
        for i, b in enumerate(batches, 1):
            if i == at:
                raise OSError("injected: disk gone")
            yield b

    data = loader() if kind == "loader_oserror" else batches
    callback = None
    if kind == "callback_vector":
        def callback(info: Any) -> Any:
            return np.ones(2) if info.iteration == at else None
    return faulty, data, callback


def same(a: Any, b: Any) -> bool:
    la = fnopt.tree.leaves(fnopt.to_numpy(a))
    lb = fnopt.tree.leaves(fnopt.to_numpy(b))
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind == "f" and x.ndim == 0 and np.isnan(x) and np.isnan(y):
            continue
        if x.dtype != y.dtype or x.tobytes() != y.tobytes():
            return False
    return True


def one_case(rng: np.random.Generator, workdir: Path, i: int) -> tuple[str, str | None]:
    """Run one random case: its fault kind and ``None`` if every check held, else why."""
    backend = "torch" if torch is not None and rng.random() < 0.5 else "numpy"
    name = str(rng.choice(list(OPTIMIZERS)))
    kind = str(rng.choice(KINDS))
    pure = kind == "callback_vector" or rng.random() < 0.5
    every = [None, 1, 3, 7][int(rng.integers(4))]
    at = int(rng.integers(1, ITERS))
    w0, grad_fn, batches = problem(backend, rng)
    faulty, data, callback = inject(kind, grad_fn, batches, at)
    if callback is None and pure:
        def callback(info: Any) -> None:
            return None
    path = workdir / f"case{i}.npz"
    opt = OPTIMIZERS[name]()
    try:
        r = fnopt.fixed_point(opt, w0, faulty, data=data, stop=stop.max_iters(ITERS),
                              callback=callback, checkpoint_path=path,
                              checkpoint_every=every)
    except BaseException as exc:  # every ending is checked here
        r = getattr(exc, "result", None)
        if r is None:
            return kind, f"{type(exc).__name__} without .result: {exc}"
    ck = fnopt.load(path)
    if ck.iteration != r.iterations or not same(ck.params, r.params):
        return kind, f"checkpoint {ck.iteration} is not the Result's iterate {r.iterations}"
    if getattr(ck.state, "count", ck.iteration) != ck.iteration:
        return kind, f"checkpoint pairs iteration {ck.iteration} with count {ck.state.count}"
    if name == "lbfgs":
        return kind, None
    rest = fnopt.fixed_point(opt, ck.params, grad_fn, ck.state, data=batches[ck.iteration:],
                             start_iteration=ck.iteration, stop=stop.max_iters(ITERS),
                             callback=callback if kind != "callback_vector" else None)
    full = fnopt.fixed_point(opt, w0, grad_fn, data=batches, stop=stop.max_iters(ITERS))
    if not same(rest.params, full.params):
        return kind, (f"{name}/{backend}/{'pure' if pure else 'owned'}: resuming from "
                      f"iteration {ck.iteration} differs from the fault-free run")
    return kind, None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="60 cases")
    args = ap.parse_args(argv)
    n = 60 if args.quick else args.cases
    rng = np.random.default_rng(args.seed)
    held: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            kind, why = one_case(rng, Path(tmp), i)
            if why is None:
                held[kind] += 1
            else:
                failed[kind] += 1
                failures.append(f"case {i} ({kind}): {why}")
    print(f"Fault endurance: {n} cases, seed {args.seed}\n")
    print("| fault | cases | held | failed |")
    print("|---|---:|---:|---:|")
    for kind in KINDS:
        print(f"| {kind} | {held[kind] + failed[kind]} | {held[kind]} | {failed[kind]} |")
    for line in failures[:20]:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
