"""fnopt.least_squares against scipy.optimize.least_squares on the MGH least-squares set.

For every problem in :mod:`fnopt.lsq_problems` and the start points ``x0`` and
``10 x0`` (Moré–Garbow–Hillstrom's scaled starts), run ``method="lm"`` and
``method="trf"`` in both libraries with the same hand-written residuals and Jacobian
(NumPy, float64) and scipy's default tolerances (``ftol = xtol = gtol = 1e-8``,
``max_nfev = 100 n``).

Columns: ``ok`` — the method reports success *and* its final sum of squares
:math:`F = \\sum r_i^2` is within ``1e-5`` relative (plus ``1e-10`` absolute) of the
known minimum ``f_min`` (lower is fine: some problems have several minima); ``F`` —
the final sum of squares; ``nfev/njev`` — residual and Jacobian evaluations.

The summary line per method: how many runs each library solves, whether fnopt solves
every run scipy solves, and the median over runs both solve of fnopt's nfev (and
njev) divided by scipy's.

Run ``python benchmarks/bench_least_squares.py`` (``--markdown`` for the docs table).
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
from fnopt import lsq_problems  # noqa: E402


def _solved(res: Any, p: lsq_problems.LeastSquaresProblem) -> tuple[bool, float]:
    f = 2.0 * float(res.cost)
    return bool(res.success) and np.isfinite(f) and f <= p.f_min * (1 + 1e-5) + 1e-10, f


def run_one(p: lsq_problems.LeastSquaresProblem, scale: float, method: str) -> dict[str, Any]:
    import scipy.optimize as so

    x0 = p.start(scale)
    out: dict[str, Any] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for lib, solve in (("scipy", so.least_squares), ("fnopt", fnopt.least_squares)):
            try:
                res = solve(p.residuals, x0.copy(), jac=p.jacobian, method=method)
                ok, f = _solved(res, p)
                out[lib] = (ok, f, int(res.nfev), int(res.njev or 0))
            except Exception as exc:
                out[lib] = (False, float("nan"), 0, 0, f"{type(exc).__name__}: {exc}")
    return out


def _fmt_f(f: float) -> str:
    return "nan" if not np.isfinite(f) else f"{f:.6g}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables only")
    ap.add_argument("--problems", nargs="*", help="problem names (default: all)")
    ap.add_argument("--scales", nargs="*", type=float, default=[1.0, 10.0])
    args = ap.parse_args(argv)
    probs = [lsq_problems.by_name(n) for n in args.problems] if args.problems else list(
        lsq_problems.PROBLEMS)
    print("### least_squares: fnopt vs scipy.optimize (hand-written Jacobians, float64)\n")
    print("| problem | start | method | fnopt ok | scipy ok | fnopt F | scipy F | "
          "fnopt nfev/njev | scipy nfev/njev |")
    print("|---|---:|---|:-:|:-:|---:|---:|---:|---:|")
    summary: dict[str, dict[str, Any]] = {}
    for method in ("lm", "trf"):
        s = summary.setdefault(method, {"fn": 0, "sp": 0, "missed": [], "rf": [], "rj": [],
                                        "n": 0})
        for p in probs:
            for scale in args.scales:
                o = run_one(p, scale, method)
                fo, so_ = o["fnopt"], o["scipy"]
                s["n"] += 1
                s["fn"] += fo[0]
                s["sp"] += so_[0]
                if so_[0] and not fo[0]:
                    s["missed"].append(f"{p.name}@{scale:g}")
                if fo[0] and so_[0]:
                    s["rf"].append(fo[2] / so_[2])
                    if so_[3]:
                        s["rj"].append(fo[3] / so_[3])
                print(f"| {p.name} | {scale:g}x0 | {method} | {'✓' if fo[0] else '✗'} | "
                      f"{'✓' if so_[0] else '✗'} | {_fmt_f(fo[1])} | {_fmt_f(so_[1])} | "
                      f"{fo[2]}/{fo[3]} | {so_[2]}/{so_[3]} |")
    print()
    for method, s in summary.items():
        med_f = statistics.median(s["rf"]) if s["rf"] else float("nan")
        med_j = statistics.median(s["rj"]) if s["rj"] else float("nan")
        missed = ", ".join(s["missed"]) or "none"
        print(f"- {method}: fnopt solves {s['fn']}/{s['n']}, scipy solves {s['sp']}/{s['n']}; "
              f"solved by scipy but not fnopt: {missed}; median nfev ratio fnopt/scipy "
              f"{med_f:.2f}, median njev ratio {med_j:.2f} (over {len(s['rf'])} runs both "
              "solve)")


if __name__ == "__main__":
    main()
