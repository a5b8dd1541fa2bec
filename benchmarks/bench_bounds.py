"""fnopt's L-BFGS-B (:func:`fnopt.lbfgsb`, through :func:`fnopt.minimize`) against
``scipy.optimize.minimize(method="L-BFGS-B")`` on bound-constrained problems.

Both get the same hand-written NumPy float64 loss and gradient (``jac=True``), the same
start and bounds and scipy's default tolerances (``gtol=1e-5`` on the projected
gradient's max-norm, ``ftol=2.2e-9`` on the relative reduction of the loss). Columns:
``n`` — variables; ``nit`` and ``nfev`` — iterations and loss+gradient evaluations,
fnopt / scipy; ``f`` — the final losses; ``max dx`` — the max-norm distance between
the two solutions; ``ok`` — both report success and fnopt's loss is no worse than
scipy's + 1e-8 (relative). A second table runs every method of :func:`fnopt.minimize`
on the scipy tutorial's 5-d Rosenbrock (``ok``: both succeed, fnopt within 1e-3 of
the minimiser); there fnopt's line searches are its own, so the counts differ.

The problems (``PROBLEMS``) are shared with tests/test_lbfgsb.py.

Run ``python benchmarks/bench_bounds.py`` (``--markdown`` for the README table).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import attrs  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as so  # noqa: E402

import fnopt  # noqa: E402


@attrs.frozen
class BoundedProblem:
    """``loss(x) -> (f, g)`` (NumPy float64) with bounds ``lower <= x <= upper``."""

    name: str
    loss: Callable[[np.ndarray], tuple[float, np.ndarray]]
    x0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def scipy_bounds(self) -> list[tuple[float | None, float | None]]:
        def one(v: float) -> float | None:
            return None if np.isinf(v) else float(v)

        return [(one(lo), one(hi)) for lo, hi in zip(self.lower, self.upper)]


def _quadratic(q: np.ndarray, b: np.ndarray) -> Callable[[np.ndarray], Any]:
    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        qx = q @ x
        return float(0.5 * x @ qx - b @ x), qx - b

    return loss


def _rosen(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(so.rosen(x)), so.rosen_der(x)


def _problems() -> list[BoundedProblem]:
    rng = np.random.default_rng(20261201)
    w = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
    diag = np.diag(w)
    inf = np.inf
    a = rng.standard_normal((200, 200))
    big_q = a.T @ a / 200 + 0.05 * np.eye(200)
    big_b = 2.0 * rng.standard_normal(200)
    return [
        # minimum at 2 everywhere, box [-1, 1]: every variable ends on its upper bound
        BoundedProblem("quadratic, minimum on the boundary", _quadratic(diag, 2.0 * w),
                       np.zeros(5), np.full(5, -1.0), np.ones(5)),
        # minimum at 0.3, inside the box
        BoundedProblem("quadratic, minimum inside", _quadratic(diag, 0.3 * w),
                       np.full(5, -0.9), np.full(5, -1.0), np.ones(5)),
        # the start lies outside the box (projected first)
        BoundedProblem("quadratic, start outside the box", _quadratic(diag, 2.0 * w),
                       np.array([5.0, -7.0, 3.0, -2.0, 9.0]), np.full(5, -1.0), np.ones(5)),
        # lower bounds on some variables, upper bounds on others, none on the last
        BoundedProblem("quadratic, one-sided bounds", _quadratic(diag, np.array(
            [-2.0, 2.0, -2.0, 2.0, -2.0]) * w), np.zeros(5),
            np.array([-1.0, -inf, -0.5, -inf, -inf]), np.array([inf, 1.0, inf, 0.5, inf])),
        # x1 and x3 fixed (lower == upper)
        BoundedProblem("rosenbrock, fixed variables", _rosen, np.full(6, 0.5),
                       np.array([-2.0, 0.7, -2.0, 1.2, -2.0, -2.0]),
                       np.array([2.0, 0.7, 2.0, 1.2, 2.0, 2.0])),
        BoundedProblem("rosenbrock 10-d in [-2, 0.8]", _rosen, np.full(10, -1.5),
                       np.full(10, -2.0), np.full(10, 0.8)),
        BoundedProblem("rosenbrock 2-d, no bounds", _rosen, np.array([-1.2, 1.0]),
                       np.full(2, -inf), np.full(2, inf)),
        BoundedProblem("quadratic 200-d in [-1, 1]", _quadratic(big_q, big_b), np.zeros(200),
                       np.full(200, -1.0), np.ones(200)),
    ]


PROBLEMS = _problems()


def solve_fnopt(p: BoundedProblem, **options: Any) -> Any:
    return fnopt.minimize(p.loss, p.x0, jac=True, method="L-BFGS-B",
                          bounds=p.scipy_bounds(), options=options or None)


def solve_scipy(p: BoundedProblem, **options: Any) -> Any:
    return so.minimize(p.loss, p.x0, jac=True, method="L-BFGS-B",
                       bounds=p.scipy_bounds(), options=options or None)


def row(p: BoundedProblem) -> tuple[str, ...]:
    f, s = solve_fnopt(p), solve_scipy(p)
    ok = f.success and s.success and f.fun <= s.fun + 1e-8 * max(1.0, abs(s.fun))
    return (p.name, str(p.x0.size), f"{f.nit} / {s.nit}", f"{f.nfev} / {s.nfev}",
            f"{f.fun:.10g}", f"{s.fun:.10g}", f"{float(np.abs(f.x - s.x).max()):.1e}",
            "yes" if ok else "NO")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    head = ("problem", "n", "nit fnopt / scipy", "nfev fnopt / scipy", "f fnopt", "f scipy",
            "max dx", "ok")
    print("L-BFGS-B with bounds (fnopt.minimize vs scipy.optimize.minimize, jac=True)\n")
    _table(head, [row(p) for p in PROBLEMS], args.markdown)
    print("\nEvery method, 5-d Rosenbrock from the scipy tutorial's start, no bounds\n")
    head = ("method", "jac", "nit fnopt / scipy", "nfev fnopt / scipy", "f fnopt", "f scipy",
            "max dx", "ok")
    _table(head, method_rows(), args.markdown)


def method_rows() -> list[tuple[str, ...]]:
    """``fnopt.minimize`` vs ``scipy.optimize.minimize`` by method on the tutorial's
    Rosenbrock (defaults of each method; Newton-CG with the exact ``hessp``)."""
    x0 = [1.3, 0.7, 0.8, 1.9, 1.2]
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("L-BFGS-B", "rosen_der", {"jac": so.rosen_der}),
        ("L-BFGS-B", "None (differences)", {}),
        ("BFGS", "rosen_der", {"jac": so.rosen_der}),
        ("CG", "rosen_der", {"jac": so.rosen_der}),
        ("Newton-CG", "rosen_der", {"jac": so.rosen_der, "hessp": so.rosen_hess_prod}),
    ]
    rows = []
    for method, jac, kw in cases:
        f = fnopt.minimize(so.rosen, x0, method=method, **kw)
        s = so.minimize(so.rosen, x0, method=method, **kw)
        ok = f.success and s.success and float(np.abs(f.x - 1.0).max()) < 1e-3
        rows.append((method, jac, f"{f.nit} / {s.nit}", f"{f.nfev} / {s.nfev}",
                     f"{f.fun:.3g}", f"{s.fun:.3g}", f"{float(np.abs(f.x - s.x).max()):.1e}",
                     "yes" if ok else "NO"))
    return rows


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(" --- " for _ in head) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(wd) for h, wd in zip(head, widths)))
    for r in rows:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)))


if __name__ == "__main__":
    main()
