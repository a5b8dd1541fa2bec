"""A/B of two source trees for issue 23: ``fixed_point``'s loop-owned path (the
``can_fuse`` verdict kept for the loop's own buffers, the per-step state copy, the
host read per iteration) against ``torch.optim``'s foreach loop and the seed's plain
NumPy loop, in one run, the trees in turn (a loaded machine: compare within a run).

Rows, median µs per step (float32, one torch thread, a fixed gradient):
``fixed_point(opt)`` with the default ``check_every`` (1 on CPU) and, where the tree has
it, ``check_every=100``; ``torch.optim`` foreach; for the 2-d Rosenbrock,
``fixed_point(sgd(1e-3))`` and the seed's scalar NumPy loop.

    python benchmarks/bench_check_every.py --base /path/to/other/tree --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def _measure(n: int) -> dict[str, float]:
    """Run in a subprocess whose ``fnopt`` is the tree under test."""
    import inspect

    import torch

    import fnopt
    from benchmarks.bench_loop import seed_loop

    torch.set_num_threads(1)
    has_every = "check_every" in inspect.signature(fnopt.fixed_point).parameters
    out: dict[str, float] = {}
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
                fnopt.fixed_point(opt, params, grad_fn, stop=fnopt.stop.max_iters(3), **extra)
                r = fnopt.fixed_point(opt, params, grad_fn, stop=fnopt.stop.max_iters(n),
                                      **extra)
                out[f"{shape}|{label}|fixed_point{'' if every is None else '/100'}"] = (
                    r.elapsed / n * 1e6)
            tp = [p.clone() for p in params]
            topt = getattr(torch.optim, cls)(tp, lr=1e-3, foreach=True, **tkw)
            for p, gg in zip(tp, grads):
                p.grad = gg
            topt.step()
            t0 = time.perf_counter()
            for _ in range(n):
                topt.step()
            out[f"{shape}|{label}|torch foreach"] = (time.perf_counter() - t0) / n * 1e6
    task = fnopt.tasks.rosenbrock() if hasattr(fnopt, "tasks") else None
    if task is not None:
        stop = fnopt.stop.max_iters(3000)
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn, stop=stop)
        r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn, stop=stop)
        out["rosenbrock|sgd|fixed_point"] = r.elapsed / r.iterations * 1e6
        out["rosenbrock|sgd|seed loop"] = seed_loop(3000) * 1e6
    return out


def main(argv: Any = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=False, help="tree A (a checkout of fnopt)")
    ap.add_argument("--reps", type=int, default=3, help="subprocesses per tree, in turn")
    ap.add_argument("--n", type=int, default=30, help="steps per timing")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.n)))
        return
    trees = {"new": HERE} | ({"base": os.path.abspath(args.base)} if args.base else {})
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for _ in range(args.reps):
        for label, tree in trees.items():
            env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{HERE}")
            res = subprocess.run([sys.executable, __file__, "--child", "--n", str(args.n)],
                                 env=env, capture_output=True, text=True, check=True)
            runs[label].append(json.loads(res.stdout.strip().splitlines()[-1]))
    keys = sorted({k for rs in runs.values() for r in rs for k in r})
    print(f"{'row':48s}" + "".join(f"{k:>12s}" for k in trees))
    for key in keys:
        cells = []
        for label in trees:
            vals = [r[key] for r in runs[label] if key in r]
            cells.append(f"{statistics.median(vals):12.1f}" if vals else f"{'-':>12s}")
        print(f"{key:48s}" + "".join(cells))


if __name__ == "__main__":
    main()
