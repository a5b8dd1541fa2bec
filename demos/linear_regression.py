"""Fit a line to noisy points with gradient descent and compare it with least squares.

    python demos/linear_regression.py [--backend numpy|torch] [--out DIR] [--fast]

The data are the classic tutorial's: ``y = 2 x + 3 + noise`` with ``x`` uniform in
[0, 5) and the noise uniform in [0, 2) (``fnopt.tasks.make_linear_data``, seed 0, the
same numbers on both backends). Since the noise has mean 1, the best line has an
intercept near 4, not 3. The loss is ``1/(2m) |X theta - y|^2``; plain gradient
descent (``fnopt.sgd(0.1)``) runs through ``fnopt.fixed_point`` until the gradient
norm is below 1e-8, and the fitted slope and intercept are printed next to the
closed-form least-squares answer (``task.solution``).

Saves ``linear-regression-fit.png`` (the data with both lines) and
``linear-regression-loss.png`` (loss against iteration, log scale) into ``--out`` and
prints their paths; without matplotlib it prints where they would have been saved.
``main(argv)`` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fnopt
from fnopt import plots

LEARNING_RATE = 0.1
GRAD_TOL = 1e-8


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--out", default="demo-output/linear_regression",
                        help="folder for the PNG files")
    parser.add_argument("--fast", action="store_true",
                        help="accepted for the tour; the run takes well under a second")
    parser.add_argument("--n", type=int, default=32, help="number of points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)

    x, y = fnopt.tasks.make_linear_data(n=args.n, slope=2.0, intercept=3.0, noise=2.0,
                                        seed=args.seed, backend=args.backend)
    task = fnopt.tasks.linear_regression(x, y)
    result = fnopt.fixed_point(
        fnopt.sgd(LEARNING_RATE), task.init_params, task.grad_fn,
        stop=fnopt.stop.grad_norm_below(GRAD_TOL) | fnopt.stop.max_iters(100_000),
        record=True,
    )
    slope, intercept = (float(v) for v in plots.to_numpy(result.params))
    ls_slope, ls_intercept = (float(v) for v in plots.to_numpy(task.solution))
    gap = max(abs(slope - ls_slope), abs(intercept - ls_intercept))
    print(f"{args.n} points y = 2x + 3 + uniform[0, 2) noise (seed {args.seed}), "
          f"backend {args.backend}")
    print(f"gradient descent, lr {LEARNING_RATE:g}: {result.iterations} iterations "
          f"({result.reason}), loss {result.value:.6f}")
    print(f"{'':14s}{'slope':>10s}{'intercept':>12s}")
    print(f"{'fitted (GD)':14s}{slope:10.6f}{intercept:12.6f}")
    print(f"{'least squares':14s}{ls_slope:10.6f}{ls_intercept:12.6f}")
    print(f"largest difference {gap:.2e}")

    jobs = [
        (out / "linear-regression-fit.png", lambda: plots.fitted_lines(
            x, y, {"gradient descent": (slope, intercept),
                   "least squares": (ls_slope, ls_intercept),
                   "true line (no noise)": (2.0, 3.0)},
            out / "linear-regression-fit.png", title="Linear regression: y = 2x + 3 + noise")),
        (out / "linear-regression-loss.png", lambda: plots.loss_curves(
            {"gradient descent": result.history.loss},  # type: ignore[union-attr]
            out / "linear-regression-loss.png", title="Linear regression: loss per iteration")),
    ]
    files = plots.save_all(jobs)
    return {
        "backend": args.backend,
        "iterations": result.iterations,
        "reason": str(result.reason),
        "slope": slope,
        "intercept": intercept,
        "lstsq_slope": ls_slope,
        "lstsq_intercept": ls_intercept,
        "max_difference": gap,
        "final_loss": result.value,
        "files": files,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
