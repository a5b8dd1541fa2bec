"""Learn the ridge penalty by gradient descent on a validation loss, through implicit
differentiation of the inner solver.

    python demos/ridge_hyper.py [--out DIR] [--fast]

Inner problem (training): :math:`w^*(\\lambda) = \\arg\\min_w \\frac{1}{2n}\\|Xw - y\\|^2
+ \\frac{\\lambda}{2}\\|w\\|^2`, solved by ``fnopt.sgd`` (Nesterov momentum) through
:func:`fnopt.implicit.fixed_point`, which also makes :math:`w^*` differentiable in
:math:`\\lambda` without storing the iterations.
Outer problem: minimise the validation loss :math:`V(\\lambda) = \\frac{1}{2m}\\|X_v
w^*(\\lambda) - y_v\\|^2` over :math:`\\rho = \\log\\lambda` with ``fnopt.adam`` and
``fnopt.fixed_point`` — the hypergradient :math:`dV/d\\rho` is the outer ``grad_fn``.

The data are few noisy samples of many features, so the best penalty is far from 0.
The demo checks the hypergradient against the closed form at the end and compares the
learned penalty with a grid search over the closed-form validation curve. Saves
``ridge_hyper.png`` (the curve and the path of the outer iterates) into ``--out`` when
matplotlib is installed; ``main(argv)`` returns the numbers as a dict.
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


def make_data(seed: int = 0) -> dict[str, Any]:
    import torch

    rng = np.random.default_rng(seed)
    n, m, d = 30, 300, 20
    w_true = rng.standard_normal(d)

    def sample(k: int) -> tuple[Any, Any]:
        x = rng.standard_normal((k, d))
        return torch.tensor(x), torch.tensor(x @ w_true + 2.5 * rng.standard_normal(k))

    x, y = sample(n)
    xv, yv = sample(m)
    return {"x": x, "y": y, "xv": xv, "yv": yv}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo-output/ridge_hyper", help="folder for the PNG")
    parser.add_argument("--fast", action="store_true", help="fewer outer iterations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    data = make_data(args.seed)
    x, y, xv, yv = data["x"], data["y"], data["xv"], data["yv"]
    n, d = x.shape
    gram = x.T @ x / n
    top = float(torch.linalg.eigvalsh(gram).max())

    def train_loss(w: Any, lam: Any) -> Any:
        r = x @ w - y
        return (r @ r) / (2 * n) + 0.5 * lam * (w @ w)

    def val_loss(w: Any) -> Any:
        r = xv @ w - yv
        return (r @ r) / (2 * len(yv))

    def closed_form(lam: float) -> Any:
        return torch.linalg.solve(gram + lam * torch.eye(d, dtype=x.dtype), x.T @ y / n)

    warm = {"w": torch.zeros(d, dtype=x.dtype)}
    inner_iters: list[int] = []

    def hypergradient(rho: Any) -> tuple[Any, Any]:
        """(V, dV/dρ) at ρ = log λ, the inner problem solved from the last solution."""
        rho = rho.detach().requires_grad_(True)
        lam = rho.exp()
        lr = 1.0 / (top + float(lam.detach()))
        inner = fnopt.implicit.fixed_point(
            fnopt.sgd(lr, momentum=0.9, nesterov=True),
            warm["w"],
            train_loss,
            lam,
            stop=fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(20_000),
        )
        warm["w"] = inner.params.detach()
        inner_iters.append(inner.iterations)
        value = val_loss(inner.params)
        (grad,) = torch.autograd.grad(value, rho)
        return value.detach(), grad

    rho0 = torch.tensor(math.log(1e-2), dtype=x.dtype)
    outer_iters = 20 if args.fast else 80
    path: list[float] = []  # the outer iterates, for the plot
    result = fnopt.fixed_point(
        fnopt.adam(0.2, b1=0.8),
        rho0,
        hypergradient,
        stop=fnopt.stop.grad_norm_below(1e-7) | fnopt.stop.max_iters(outer_iters),
        record=True,
        callback=lambda info: path.append(math.exp(float(info.params))),
    )
    lam_learned = math.exp(float(result.params))

    # checks: the grid optimum of the closed-form curve, the hypergradient's closed form
    grid = np.exp(np.linspace(math.log(1e-3), math.log(1e3), 241))
    curve = np.array([float(val_loss(closed_form(g))) for g in grid])
    lam_grid = float(grid[int(np.argmin(curve))])
    w = closed_form(lam_learned)
    u = torch.linalg.solve(gram + lam_learned * torch.eye(d, dtype=x.dtype),
                           xv.T @ (xv @ w - yv) / len(yv))
    analytic = float(-(u @ w) * lam_learned)  # dV/dρ = λ dV/dλ = -λ uᵀw*
    implicit_grad = float(hypergradient(result.params)[1])

    summary: dict[str, Any] = {
        "lambda_start": math.exp(float(rho0)),
        "lambda_learned": lam_learned,
        "lambda_grid_best": lam_grid,
        "val_loss_start": float(result.history.loss[0]),  # type: ignore[union-attr]
        "val_loss_learned": float(val_loss(w)),
        "val_loss_grid_best": float(curve.min()),
        "hypergradient_implicit": implicit_grad,
        "hypergradient_closed_form": analytic,
        "outer_iterations": result.iterations,
        "inner_iterations_mean": float(np.mean(inner_iters)),
    }
    print(f"ridge penalty: {summary['lambda_start']:.3g} -> {lam_learned:.4g} in "
          f"{result.iterations} outer steps (grid search best {lam_grid:.4g})")
    print(f"validation loss: {summary['val_loss_start']:.4f} -> "
          f"{summary['val_loss_learned']:.4f} (grid best {summary['val_loss_grid_best']:.4f})")
    print(f"hypergradient dV/dlog(lambda) at the end: implicit {implicit_grad:.3e}, "
          f"closed form {analytic:.3e}; inner solves took "
          f"{summary['inner_iterations_mean']:.0f} iterations on average (warm started)")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: would have saved {Path(args.out) / 'ridge_hyper.png'}")
        return summary
    path_lams = path
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(grid, curve, label="validation loss (closed form)")
    ax.semilogx(path_lams, [float(val_loss(closed_form(v))) for v in path_lams], "o-", ms=3,
                label="adam on log λ (implicit hypergradients)")
    ax.axvline(lam_grid, color="gray", ls=":", label="grid optimum")
    ax.set_xlabel("ridge penalty λ")
    ax.set_ylabel("validation loss")
    ax.legend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "ridge_hyper.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"saved {out / 'ridge_hyper.png'}")
    summary["plot"] = str(out / "ridge_hyper.png")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
