"""Fit NIST's Misra1a data with fnopt.curve_fit and draw the fit with a 95 % band.

    python demos/curve_fit.py [--backend numpy|torch] [--out DIR] [--fast]

The data are NIST StRD's Misra1a (14 observations from a dental-research adsorption
study, shipped as ``fnopt/datasets/misra1a.csv``), with the model
``y = b1 * (1 - exp(-b2 * x))``. ``fnopt.curve_fit`` (Levenberg–Marquardt with
MINPACK's strategy) runs from both of NIST's starting points; the Jacobian is
hand-written on NumPy and comes from ``torch.func`` on torch. The estimates and their
standard errors (``sqrt(diag(pcov))``) are printed next to NIST's certified values.

The 95 % confidence band of the fitted curve comes from the delta method:
:math:`\\operatorname{var} \\hat y(x) = g(x)^T C g(x)` with :math:`g = \\partial y /
\\partial b` (from ``fnopt.grad.residuals_finite_differences`` / ``residuals_torch`` on
the model over a grid) and :math:`C` = ``pcov``, times the Student-t quantile with
``m - n = 12`` degrees of freedom.

Saves ``curve-fit-misra1a.png`` (data, fit, band) into ``--out`` and prints its path;
without matplotlib it prints where it would have been saved. ``main(argv)`` returns
the numbers as a dict.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import fnopt
from fnopt import plots


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (``p > 0.5``),
    by bisection on the numerically integrated density (no scipy needed)."""
    c = math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)) / math.sqrt(dof * math.pi)

    def cdf(t: float) -> float:
        s = np.linspace(0.0, t, 4001)
        dens = c * (1.0 + s * s / dof) ** (-(dof + 1) / 2)
        return 0.5 + float(np.sum(dens[1:] + dens[:-1]) * 0.5 * (s[1] - s[0]))

    lo, hi = 0.0, 50.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def _model(backend: str) -> tuple[Any, Any]:
    if backend == "torch":
        import torch

        def f(x: Any, b1: Any, b2: Any) -> Any:
            return b1 * (1.0 - torch.exp(-b2 * x))

        return f, None

    def f_np(x: Any, b1: Any, b2: Any) -> Any:
        return b1 * (1.0 - np.exp(-b2 * x))

    def jac(x: Any, b1: Any, b2: Any) -> Any:
        e = np.exp(-b2 * x)
        return np.stack([1.0 - e, b1 * x * e], 1)

    return f_np, jac


def _band(f: Any, popt: Any, pcov: Any, grid: Any, backend: str, dof: int) -> tuple[Any, Any]:
    """Half-width of the 95 % band at each grid point (delta method) and the fit there."""
    prov = (fnopt.grad.residuals_torch if backend == "torch"
            else fnopt.grad.residuals_finite_differences)(lambda p: f(grid, *p))
    lin = prov(popt)
    g = plots.to_numpy(lin.jacobian())
    var = np.einsum("ij,jk,ik->i", g, plots.to_numpy(pcov), g)
    return t_quantile(0.975, dof) * np.sqrt(var), plots.to_numpy(lin.residuals)


def _draw(x: Any, y: Any, grid: Any, fit: Any, half: Any, fit_at_x: Any, path: Path,
          label: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    top.fill_between(grid, fit - half, fit + half, color="C1", alpha=0.3,
                     label="95% confidence band of the fit")
    top.plot(grid, fit, "-", color="C1", lw=1.8, label=label)
    top.scatter(x, y, s=18, c="C0", zorder=3, label="Misra1a data (NIST StRD)")
    top.set_ylabel("y (damage)")
    top.set_title("fnopt.curve_fit on NIST Misra1a: y = b1 (1 - exp(-b2 x))")
    top.legend(fontsize=8)
    # the band is narrow next to the data's range: show it again around the fit
    bottom.fill_between(grid, -half, half, color="C1", alpha=0.3,
                        label="95% confidence band of the fit")
    bottom.axhline(0.0, color="C1", lw=1.2)
    bottom.scatter(x, y - fit_at_x, s=18, c="C0", zorder=3, label="data - fit")
    bottom.set_xlabel("x (volume)")
    bottom.set_ylabel("residual")
    bottom.legend(fontsize=8)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--out", default="demo-output/curve_fit", help="folder for the PNG")
    parser.add_argument("--fast", action="store_true",
                        help="accepted for the tour; the run takes well under a second")
    args = parser.parse_args(argv)
    data = fnopt.datasets.misra1a(backend=args.backend)
    f, jac = _model(args.backend)
    cert, cert_sd = np.array(data.certified), np.array(data.certified_std)
    print(f"NIST Misra1a, {len(data)} points, model {data.model}, backend {args.backend}")
    runs = []
    for start in data.starts:
        p0 = np.array(start) if args.backend == "numpy" else fnopt.to_torch(np.array(start))
        popt, pcov = fnopt.curve_fit(f, data.x, data.y, p0=p0, jac=jac)
        est, se = plots.to_numpy(popt), np.sqrt(np.diag(plots.to_numpy(pcov)))
        runs.append((popt, pcov, est, se))
        print(f"start {start}: b1 = {est[0]:.10e} ± {se[0]:.4e}, "
              f"b2 = {est[1]:.10e} ± {se[1]:.4e}")
    print(f"NIST certified:    b1 = {cert[0]:.10e} ± {cert_sd[0]:.4e}, "
          f"b2 = {cert[1]:.10e} ± {cert_sd[1]:.4e}")
    popt, pcov, est, se = runs[-1]
    rel_est = float(np.max(np.abs(est / cert - 1.0)))
    rel_se = float(np.max(np.abs(se / cert_sd - 1.0)))
    print(f"largest relative difference from the certified values: estimates {rel_est:.1e}, "
          f"standard errors {rel_se:.1e}")
    xs = plots.to_numpy(data.x)
    grid_np = np.linspace(0.0, 1.05 * float(xs.max()), 200)
    grid = grid_np if args.backend == "numpy" else fnopt.to_torch(grid_np)
    half, fit = _band(f, popt, pcov, grid, args.backend, len(data) - 2)
    out = Path(args.out) / "curve-fit-misra1a.png"
    label = f"fit: b1 = {est[0]:.3f}, b2 = {est[1]:.4e}"
    fit_at_x = plots.to_numpy(f(data.x, *popt))
    files = plots.save_all([(out, lambda: _draw(
        xs, plots.to_numpy(data.y), grid_np, fit, half, fit_at_x, out, label))])
    return {
        "backend": args.backend,
        "estimates": est.tolist(),
        "standard_errors": se.tolist(),
        "max_rel_error_estimates": rel_est,
        "max_rel_error_std": rel_se,
        "band_half_width_max": float(half.max()),
        "files": files,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
