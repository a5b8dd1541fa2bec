"""A/B of two source trees: the optimizer loops of ``bench_loop.py`` (and the pure steps
of ``bench_steps.py``) measured for fnopt from tree A and from tree B, each against its
peers (the ``torch.optim`` foreach loop, the hand in-place NumPy loop) *in the same
process*, so that the ratios, not the raw times, are compared.

Each repetition runs one subprocess per tree (``PYTHONPATH=<tree>``), A and B in turn;
each subprocess measures its variants interleaved and prints medians. The table gives,
per optimizer and ratio, the median over repetitions and the range (how noisy it was).

Run ``python benchmarks/bench_ab.py --base /path/to/main --new . --shape MLP``
(``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RATIOS = (("fp_torch", "foreach", "fixed_point torch / torch.optim foreach"),
          ("fp_np", "hand_np", "fixed_point NumPy / hand NumPy"),
          ("step", "foreach", "pure opt.step torch / torch.optim foreach"))


def measure(
    shape: str, names: list[str], kinds: list[str], rounds: int, n: int
) -> dict[str, float]:
    """In this process (fnopt from ``sys.path``): µs per step of each variant."""
    import torch

    torch.set_num_threads(1)
    from benchmarks._common import interleaved, per_call
    from benchmarks.bench_loop import fixed_point_loop
    from benchmarks.bench_steps import (
        OPTIMIZERS,
        SHAPES,
        fnopt_pure_step,
        hand_numpy,
        numpy_tree,
        torch_optim_step,
        torch_tree,
    )

    shapes = SHAPES[shape]
    tp, tg = torch_tree(shapes, 0), torch_tree(shapes, 1)
    npp, npg = numpy_tree(shapes, 0), numpy_tree(shapes, 1)
    v = {}
    for name in names:
        make, cls, options, _ = OPTIMIZERS[name]
        v[f"{name}|foreach"] = per_call(torch_optim_step(cls, tp, tg, foreach=True, **options), n)
        if "loop" in kinds:
            v[f"{name}|fp_torch"] = fixed_point_loop(make(), tp, tg, n)
        if "np" in kinds:
            v[f"{name}|hand_np"] = per_call(hand_numpy(name, npp, npg), n)
            v[f"{name}|fp_np"] = fixed_point_loop(make(), npp, npg, n)
        if "step" in kinds:
            v[f"{name}|step"] = per_call(fnopt_pure_step(make(), tp, tg), n)
    return {k: s * 1e6 for k, s in interleaved(v, rounds).items()}


def _child(args: argparse.Namespace) -> None:
    out = measure(args.shape, args.names.split(","), args.kinds.split(","), args.rounds, args.n)
    print(json.dumps(out))


def _run_tree(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--shape", args.shape,
           "--names", args.names, "--kinds", args.kinds, "--rounds", str(args.rounds),
           "--n", str(args.n)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tree, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}× [{min(xs):.2f}–{max(xs):.2f}]"


def table(runs: dict[str, list[dict[str, float]]], names: list[str], shape: str) -> str:
    """Markdown: per optimizer and ratio, A and B (median [range] over repetitions)."""
    out = [f"### A/B, {shape} (ratio to the in-process peer; median [min–max] over "
           "repetitions)", "", "| variant | ratio | A | B |", "|---|---|---:|---:|"]
    for name in names:
        for num, den, label in RATIOS:
            key, ref = f"{name}|{num}", f"{name}|{den}"
            if key not in runs["A"][0]:
                continue
            a = [d[key] / d[ref] for d in runs["A"]]
            b = [d[key] / d[ref] for d in runs["B"]]
            out.append(f"| {name} | {label} | {_fmt(a)} | {_fmt(b)} |")
    return "\n".join(out)


def main(argv: Any = None) -> None:
    from benchmarks.bench_steps import OPTIMIZERS

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--base", type=Path, help="tree A (a checkout of fnopt)")
    p.add_argument("--new", type=Path, default=Path("."), help="tree B (default: here)")
    p.add_argument("--shape", default="MLP", help="MLP, 200×1000 or tiny")
    p.add_argument("--names", default=",".join(OPTIMIZERS), help="optimizers, comma-separated")
    p.add_argument("--kinds", default="loop,np", help="of loop, np, step (comma-separated)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per subprocess")
    p.add_argument("--reps", type=int, default=3, help="subprocesses per tree, A and B in turn")
    p.add_argument("--n", type=int, default=0, help="steps per timing (0: 300 tiny, 20 else)")
    p.add_argument("--quick", action="store_true", help="one repetition, one round, 2 steps")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.rounds, args.n = 1, 1, 2
    if not args.n:
        args.n = 300 if args.shape == "tiny" else 20
    if args.child:
        _child(args)
        return
    if args.base is None:
        p.error("--base is required")
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for _ in range(args.reps):
        for tag, tree in (("A", args.base), ("B", args.new)):
            runs[tag].append(_run_tree(tree.resolve(), args))
    print(f"A = {args.base}, B = {args.new}")
    print(table(runs, args.names.split(","), args.shape))


if __name__ == "__main__":
    if "--child" not in sys.argv:  # a child imports fnopt and benchmarks from PYTHONPATH
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
