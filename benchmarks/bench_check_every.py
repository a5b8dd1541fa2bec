"""A/B of two source trees for issue 23: ``fixed_point``'s loop-owned path (the
``can_fuse`` verdict kept for the loop's own buffers, the per-step state copy, the
host read per iteration) against ``torch.optim``'s foreach loop and the seed's plain
NumPy loop, in one run, the trees in turn (a loaded machine: compare within a run).

Rows, µs per step, the fastest of the interleaved rounds and processes (float32, one
torch thread, a fixed gradient):
``fixed_point(opt)`` with the default ``check_every`` (1 on CPU) and, where the tree has
it, ``check_every=100``; ``torch.optim`` foreach; for the 2-d Rosenbrock,
``fixed_point(sgd(1e-3))`` and the seed's scalar NumPy loop.

    python benchmarks/bench_check_every.py --base /path/to/other/tree --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {
    "MLP": [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)],
    "200x1000": [(1000,)] * 200,
    "100x10": [(10,)] * 100,
}
OPTS = {
    "adam": ("adam", {}, "Adam", {}),
    "sgd_momentum": ("sgd", {"momentum": 0.9}, "SGD", {"momentum": 0.9}),
    "sgd": ("sgd", {}, "SGD", {}),
}


def _rows(n: int) -> dict[str, Any]:
    """Run in a subprocess whose ``fnopt`` is the tree under test: each row's timer
    (µs per step)."""
    import inspect

    import torch

    import fnopt
    from benchmarks.bench_loop import seed_loop

    torch.set_num_threads(1)
    has_every = "check_every" in inspect.signature(fnopt.fixed_point).parameters
    rows: dict[str, Any] = {}
    for shape, sizes in SHAPES.items():
        g = torch.Generator().manual_seed(0)
        params = [torch.randn(*s, generator=g) for s in sizes]
        grads = [torch.randn(*s, generator=g) * 1e-3 for s in sizes]
        value = sum((x * x).sum() for x in grads)

        def grad_fn(p: Any, _v: Any = value, _g: Any = grads) -> Any:
            return _v, _g

        for label, (name, kw, cls, tkw) in OPTS.items():
            opt = getattr(fnopt, name)(1e-3, **kw)
            for every in ([None, 100] if has_every else [None]):
                extra = {} if every is None else {"check_every": every}

                def loop(opt: Any = opt, params: Any = params, grad_fn: Any = grad_fn,
                         extra: Any = extra) -> float:
                    r = fnopt.fixed_point(opt, params, grad_fn,
                                          stop=fnopt.stop.max_iters(n), **extra)
                    return float(r.elapsed / n * 1e6)

                rows[f"{shape}|{label}|fixed_point{'' if every is None else '/100'}"] = loop
            tp = [p.clone() for p in params]
            topt = getattr(torch.optim, cls)(tp, lr=1e-3, foreach=True, **tkw)
            for p, gg in zip(tp, grads):
                p.grad = gg

            def foreach(topt: Any = topt) -> float:
                t0 = time.perf_counter()
                for _ in range(n):
                    topt.step()
                return (time.perf_counter() - t0) / n * 1e6

            rows[f"{shape}|{label}|torch foreach"] = foreach
    if hasattr(fnopt, "tasks"):
        task = fnopt.tasks.rosenbrock()

        def rosen() -> float:
            r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                                  stop=fnopt.stop.max_iters(3000))
            return float(r.elapsed / r.iterations * 1e6)

        rows["rosenbrock|sgd|fixed_point"] = rosen
        rows["rosenbrock|sgd|seed loop"] = lambda: seed_loop(3000) * 1e6
    return rows


def _measure(n: int, rounds: int) -> dict[str, float]:
    """The fastest of ``rounds`` interleaved timings of each row (a loaded machine:
    the minimum is the least disturbed)."""
    rows = _rows(n)
    for fn in rows.values():  # warm up (first-call costs, allocator)
        fn()
    best = {k: float("inf") for k in rows}
    for _ in range(rounds):
        for k, fn in rows.items():
            best[k] = min(best[k], fn())
    return best


def main(argv: Any = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=False, help="tree A (a checkout of fnopt)")
    ap.add_argument("--reps", type=int, default=3, help="subprocesses per tree, in turn")
    ap.add_argument("--n", type=int, default=30, help="steps per timing")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per process")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.n, args.rounds)))
        return
    trees = {"new": HERE} | ({"base": os.path.abspath(args.base)} if args.base else {})
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for _ in range(args.reps):
        for label, tree in trees.items():
            env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{HERE}")
            res = subprocess.run([sys.executable, __file__, "--child", "--n", str(args.n),
                                  "--rounds", str(args.rounds)],
                                 env=env, capture_output=True, text=True, check=True)
            runs[label].append(json.loads(res.stdout.strip().splitlines()[-1]))
    keys = sorted({k for rs in runs.values() for r in rs for k in r})
    print(f"{'row':48s}" + "".join(f"{k:>12s}" for k in trees))
    for key in keys:
        cells = []
        for label in trees:
            vals = [r[key] for r in runs[label] if key in r]
            cells.append(f"{min(vals):12.1f}" if vals else f"{'-':>12s}")
        print(f"{key:48s}" + "".join(cells))


if __name__ == "__main__":
    main()
