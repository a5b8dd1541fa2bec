"""fnopt.least_squares against scipy.optimize.least_squares on the 27 NIST StRD problems.

For every problem of :func:`fnopt.datasets.nist_strd` and both of NIST's starting
points, run ``method="lm"`` and ``method="trf"`` in both libraries with the same
residuals ``model(x, b) - y``, the default 2-point finite-difference Jacobian and
scipy's default tolerances (``ftol = xtol = gtol = 1e-8``, ``max_nfev = 100 n``).

*Solved*: every fitted parameter within ``--rtol`` (default ``1e-6``, relative) of
NIST's certified value. The summary per method: runs solved by each library (54 in
all), runs scipy solves and fnopt does not, and the median over runs both solve of
``nfev`` (fnopt / scipy). ``nfev`` counts residual evaluations of the iteration
(finite-difference evaluations are not counted, in either library).

Run ``python benchmarks/bench_nist.py`` (``--markdown`` for the per-run table,
``--problems Misra1a Thurber`` for a subset).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import fnopt  # noqa: E402
from fnopt.datasets import NIST_STRD_NAMES, nist_strd  # noqa: E402


def run_one(name: str, start: int, method: str, rtol: float) -> dict[str, Any]:
    """Both libraries on one problem, start and method: ``(solved, nfev)`` each."""
    import scipy.optimize as so

    d = nist_strd(name)
    cert = np.array(d.certified)
    out: dict[str, Any] = {}
    for lib, solve in (("scipy", so.least_squares), ("fnopt", fnopt.least_squares)):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                res = solve(d.residuals, np.array(d.starts[start]), method=method)
                ok = bool(np.all(np.abs(res.x - cert) <= rtol * np.abs(cert)))
                out[lib] = (ok, int(res.nfev))
            except Exception as exc:  # a run that raises counts as unsolved
                out[lib] = (False, 0, f"{type(exc).__name__}: {exc}")
    return out


def summary(rows: list[tuple[str, int, str, dict[str, Any]]], method: str) -> str:
    """One line: solved counts, scipy-only solves, the median nfev ratio."""
    runs = [r for r in rows if r[2] == method]
    fn = sum(r[3]["fnopt"][0] for r in runs)
    sc = sum(r[3]["scipy"][0] for r in runs)
    missed = [f"{r[0]}/start{r[1] + 1}" for r in runs if r[3]["scipy"][0] and not
              r[3]["fnopt"][0]]
    both = [r[3]["fnopt"][1] / r[3]["scipy"][1] for r in runs
            if r[3]["scipy"][0] and r[3]["fnopt"][0] and r[3]["scipy"][1]]
    med = f"{statistics.median(both):.2f}" if both else "n/a"
    return (f"- {method}: fnopt solves {fn}/{len(runs)}, scipy solves {sc}/{len(runs)}; "
            f"solved by scipy but not fnopt: {', '.join(missed) or 'none'}; median nfev "
            f"ratio fnopt/scipy {med} (over {len(both)} runs both solve)")


def main(argv: list[str] | None = None) -> None:
    """Print the table (``--markdown``) and the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="*", default=list(NIST_STRD_NAMES))
    ap.add_argument("--methods", nargs="*", default=["lm", "trf"])
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    rows = [(name, s, m, run_one(name, s, m, args.rtol)) for name in args.problems
            for s in (0, 1) for m in args.methods]
    if args.markdown:
        print("| problem | start | method | fnopt ok | scipy ok | fnopt nfev | scipy nfev |")
        print("|---|---|---|---|---|---|---|")
        for name, s, m, out in rows:
            f, c = out["fnopt"], out["scipy"]
            print(f"| {name} | {s + 1} | {m} | {'yes' if f[0] else 'no'} | "
                  f"{'yes' if c[0] else 'no'} | {f[1]} | {c[1]} |")
        print()
    print(f"Summary (parameters within rtol={args.rtol:g} of NIST's certified values):\n")
    for m in args.methods:
        print(summary(rows, m))


if __name__ == "__main__":
    main()
