"""fnopt's L-BFGS / BFGS / Newton-CG against scipy.optimize on the test-problem set.

For every problem in :mod:`fnopt.problems` and each of its start points, run

* ``fnopt.lbfgs()``     vs ``scipy.optimize.minimize(method="L-BFGS-B")``,
* ``fnopt.bfgs()``      vs ``method="BFGS"``,
* ``fnopt.newton_cg()`` vs ``method="Newton-CG"`` (both with the problem's exact
  Hessian-vector products),

with the same hand-written loss and gradient (NumPy, float64) and the same tolerance:
both stop when max_i |g_i| is below ``--gtol`` (default 1e-5, scipy's default
``gtol``); for L-BFGS fnopt also stops, like L-BFGS-B with its default ``ftol``, when
the loss changes by less than ``factr * eps`` (relative). scipy's Newton-CG has no
gradient test (it stops when the mean step is below ``xtol=1e-5``); fnopt's Newton-CG
uses the gradient test.

Columns: ``ok`` — the method reports success *and* ends within 1e-3 (relative) of a
known minimiser; ``dist`` — distance to the nearest known minimiser; ``evals`` — calls of
the loss+gradient function (fnopt ``Result.n_evals``; scipy ``nfev``/``njev``, which are
equal for these methods, shown once, or as ``nfev/njev`` when they differ); ``hvp`` —
Hessian-vector products (Newton-CG); ``ms`` — wall time of one solve (best of
``--repeats``).

Run ``python benchmarks/bench_scipy.py`` (``--markdown`` for the README table,
``--gtol 1e-8`` for the tight-tolerance run).
"""

from __future__ import annotations

import os

# One BLAS thread: these problems are tiny, and idle BLAS threads spinning on a loaded
# 2-core machine made scipy's L-BFGS-B take ~400 ms per solve instead of ~0.5 ms.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import attrs  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as so  # noqa: E402

import fnopt  # noqa: E402
from fnopt import problems  # noqa: E402
from fnopt.stop import Criterion, Info, Reason  # noqa: E402

MAX_ITERS = 2000


def _solved(prob: problems.Problem, x: np.ndarray, success: bool) -> bool:
    """Reported success, and within 1e-3 (relative) of a known minimiser or within
    1e-8 (relative) of its loss."""
    near = min(prob.minima, key=lambda m: float(np.linalg.norm(x - m)))
    scale = max(1.0, float(np.linalg.norm(near)))
    f_near = float(prob.loss(near))
    close = prob.distance(x) <= 1e-3 * scale
    low = float(prob.loss(x)) - f_near <= 1e-8 * max(1.0, abs(f_near))
    return bool(success) and (close or low)


@attrs.frozen
class _GradMaxBelow(Criterion):
    """``max |g_i| <= tol`` on the gradient a line-search optimizer caches in its state
    (scipy's BFGS / L-BFGS-B test; fnopt's own ``grad_norm_below`` uses the 2-norm)."""

    tol: float
    reason = Reason.GRAD_NORM_BELOW

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        g = info.state.grads
        hit = g is not None and float(np.abs(g).max()) <= self.tol
        return ((self,) if hit else ()), state


# scipy L-BFGS-B also stops when (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= factr * eps
LBFGSB_FTOL = 1e7 * float(np.finfo(float).eps)


def _best_time(f: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run_fnopt(prob: problems.Problem, x0: np.ndarray, method: str, gtol: float) -> dict[str, Any]:
    """One fnopt solve; returns the row fields."""
    if method == "lbfgs":
        opt = fnopt.lbfgs()
    elif method == "bfgs":
        opt = fnopt.bfgs()
    else:
        opt = fnopt.newton_cg(prob.hvp_fn("numpy"))
    stop = _GradMaxBelow(gtol) | fnopt.stop.max_iters(MAX_ITERS)
    if method == "lbfgs":
        stop = stop | fnopt.stop.loss_change_below(LBFGSB_FTOL, rtol=LBFGSB_FTOL)
    r = fnopt.fixed_point(opt, x0, prob.grad_fn("numpy"), stop=stop)
    hvp = r.state.inner.n_hess if method == "newton_cg" else None
    return {
        "ok": _solved(prob, r.params, r.converged),
        "dist": prob.distance(r.params),
        "evals": str(r.n_evals),
        "n": r.n_evals,
        "hvp": hvp,
        "nit": r.iterations,
        "why": r.reason.value,
    }


SCIPY = {"lbfgs": "L-BFGS-B", "bfgs": "BFGS", "newton_cg": "Newton-CG"}


def run_scipy(prob: problems.Problem, x0: np.ndarray, method: str, gtol: float) -> dict[str, Any]:
    """One scipy.optimize.minimize solve; returns the row fields."""
    kw: dict[str, Any] = {"jac": prob.grad, "method": SCIPY[method]}
    if method == "newton_cg":
        kw["hessp"] = lambda x, v: prob.hessian(x) @ v
        kw["options"] = {"maxiter": MAX_ITERS}
    else:
        kw["options"] = {"gtol": gtol, "maxiter": MAX_ITERS}
    r = so.minimize(prob.loss, x0, **kw)
    nfev, njev = int(r.nfev), int(getattr(r, "njev", r.nfev))
    return {
        "ok": _solved(prob, r.x, r.success),
        "dist": prob.distance(r.x),
        "evals": str(nfev) if nfev == njev else f"{nfev}/{njev}",
        "n": max(nfev, njev),
        "hvp": int(getattr(r, "nhev", 0)) if method == "newton_cg" else None,
        "nit": int(r.nit),
        "why": "ok" if r.success else "fail",
    }


def rows(gtol: float, repeats: int, methods: list[str]) -> list[dict[str, Any]]:
    out = []
    for prob in problems.PROBLEMS:
        for i, start in enumerate(prob.starts):
            label = prob.name if len(prob.starts) == 1 else f"{prob.name} #{i}"
            label += f" ({', '.join(f'{v:g}' for v in start[:2])}{', …' if prob.dim > 2 else ''})"
            for m in methods:
                f_row, f_t = _best_time(
                    lambda p=prob, x=start, m=m: run_fnopt(p, x.copy(), m, gtol), repeats
                )
                s_row, s_t = _best_time(
                    lambda p=prob, x=start, m=m: run_scipy(p, x.copy(), m, gtol), repeats
                )
                out.append({"problem": label, "method": m, "fnopt": f_row, "scipy": s_row,
                            "f_ms": 1e3 * f_t, "s_ms": 1e3 * s_t})
    return out


def _fmt_dist(d: float) -> str:
    return f"{d:.1e}"


def render(table: list[dict[str, Any]], markdown: bool) -> str:
    head = ["problem", "method", "fnopt ok", "scipy ok", "fnopt dist", "scipy dist",
            "fnopt evals", "scipy evals", "fnopt hvp", "scipy hvp", "fnopt ms", "scipy ms"]
    body = []
    for r in table:
        f, s = r["fnopt"], r["scipy"]
        body.append([
            r["problem"], r["method"],
            "yes" if f["ok"] else f"no ({f['why']})", "yes" if s["ok"] else "no",
            _fmt_dist(f["dist"]), _fmt_dist(s["dist"]),
            f["evals"], s["evals"],
            "" if f["hvp"] is None else str(f["hvp"]), "" if s["hvp"] is None else str(s["hvp"]),
            f"{r['f_ms']:.2f}", f"{r['s_ms']:.2f}",
        ])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*row) for row in body])


def summary(table: list[dict[str, Any]]) -> str:
    lines = []
    for m in sorted({r["method"] for r in table}, key=list(SCIPY).index):
        rs = [r for r in table if r["method"] == m]
        both = [r for r in rs if r["scipy"]["ok"]]
        solved = sum(r["fnopt"]["ok"] for r in both)
        fewer = sum(r["fnopt"]["ok"] and r["fnopt"]["n"] <= r["scipy"]["n"] for r in both)
        f_tot = sum(r["fnopt"]["n"] for r in both)
        s_tot = sum(r["scipy"]["n"] for r in both)
        extra = sum(r["fnopt"]["ok"] and not r["scipy"]["ok"] for r in rs)
        lines.append(
            f"{m}: scipy {SCIPY[m]} solves {len(both)}/{len(rs)}; fnopt solves {solved} of "
            f"those, with <= scipy's evaluations on {fewer}; total evaluations on them "
            f"fnopt {f_tot} vs scipy {s_tot}; fnopt also solves {extra} that scipy does not."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gtol", type=float, default=1e-5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default="lbfgs,bfgs,newton_cg")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    import scipy

    print(f"fnopt {fnopt.__version__}, scipy {scipy.__version__}, numpy {np.__version__}; "
          f"gtol {args.gtol:g}")
    table = rows(args.gtol, args.repeats, args.methods.split(","))
    print(render(table, args.markdown))
    print()
    print(summary(table))


if __name__ == "__main__":
    main()
