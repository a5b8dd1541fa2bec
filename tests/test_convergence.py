"""Convergence table: every named optimizer x {quadratic, Rosenbrock, linear regression,
MLP} x {numpy, torch}, each run for 300 steps by :func:`fnopt.fixed_point`. The loss
must fall by the factor stated for the task.

The learning rates were picked from a grid (1e-4 ... 3) per optimizer and task, a notch
below where a run starts to diverge; ``sgd`` runs with momentum 0.9, the others with
their torch.optim defaults. Muon runs on the matrix leaves with Adam on the rest
(:func:`fnopt.partition`), so it has no cell for the tasks without matrices.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import tasks

STEPS = 300
# task -> the factor by which the loss must fall in STEPS steps
FACTOR = {"quadratic": 1000.0, "rosenbrock": 3.0, "linear_regression": 50.0, "mlp": 20.0}

# optimizer -> learning rate per task (quadratic, rosenbrock, linear_regression, mlp)
LR: dict[str, tuple[float, float, float, float]] = {
    "sgd": (0.3, 1e-3, 0.03, 0.1),
    "adam": (0.1, 0.03, 0.3, 0.1),
    "adamw": (0.1, 0.03, 0.3, 0.1),
    "adamax": (0.1, 0.1, 1.0, 0.3),
    "nadam": (0.1, 0.01, 0.3, 0.03),
    "radam": (0.3, 0.01, 0.3, 0.3),
    "rmsprop": (0.03, 3e-3, 0.03, 0.01),
    "adagrad": (1.0, 0.3, 3.0, 0.3),
    "adadelta": (3.0, 1.0, 3.0, 3.0),
    "asgd": (0.3, 3e-3, 0.03, 0.3),
    "rprop": (0.01, 0.01, 0.01, 0.01),
    "lion": (0.1, 0.01, 0.3, 0.03),
    "adafactor": (0.3, 0.3, 0.3, 0.03),
    # Muon for the matrix leaves, Adam for the others (how Muon is used); Rosenbrock and
    # linear regression have no matrix leaf, so those cells are skipped
    "muon": (0.03, math.nan, math.nan, 0.03),
    "lamb": (0.03, 0.03, 0.03, 0.01),
    # LARS starts with a full step where the params are zero (trust ratio 1): Rosenbrock
    # and linear regression start there, hence the erratic dependence on the rate
    "lars": (3.0, 1.0, 3.0, 3.0),
    "adabelief": (0.1, 0.01, 0.1, 0.03),
}
EXTRA: dict[str, dict[str, Any]] = {"sgd": {"momentum": 0.9}}
TASKS = list(FACTOR)


def quadratic(backend: str) -> tuple[Any, Any]:
    """An ill-conditioned convex quadratic (condition number 100) on a pytree."""
    d = np.array([1.0, 10.0, 100.0]) / 100.0
    p0 = {"w": np.ones((2, 3)), "b": np.array([1.0, -1.0, 2.0])}
    scale = {"w": np.tile(d, (2, 1)), "b": d}
    if backend == "torch":
        import torch

        p0 = {k: torch.tensor(v) for k, v in p0.items()}
        scale = {k: torch.tensor(v) for k, v in scale.items()}

    def grad_fn(p: Any) -> tuple[Any, Any]:
        g = fnopt.tree.mul(scale, p)
        return 0.5 * fnopt.tree.vdot(p, g), g

    return p0, grad_fn


def make_task(name: str, backend: str) -> tuple[Any, Any]:
    if name == "quadratic":
        return quadratic(backend)
    if name == "rosenbrock":
        t = tasks.rosenbrock(backend)
    elif name == "linear_regression":
        t = tasks.linear_regression(*tasks.make_linear_data(backend=backend))
    else:
        t = tasks.mlp(backend=backend)
    return t.init_params, t.grad_fn


def build(name: str, lr: float) -> fnopt.Optimizer:
    if name == "muon":
        return fnopt.descent(
            fnopt.partition(
                {
                    "matrix": fnopt.chain(
                        fnopt.scale_by_muon(), fnopt.add_decayed_weights(0.1),
                        fnopt.scale_by_learning_rate(lr),
                    ),
                    "other": fnopt.chain(fnopt.scale_by_adam(), fnopt.scale_by_learning_rate(lr)),
                },
                lambda p: fnopt.tree.map(lambda x: "matrix" if x.ndim == 2 else "other", p),
            )
        )
    return getattr(fnopt, name)(lr, **EXTRA.get(name, {}))


def test_table_covers_every_optimizer() -> None:
    # the torch.optim zoo and friends (fnopt.optimizers.first_order); the post-Adam
    # optimizers are run to convergence against their reference packages instead
    # (tests/test_parity_recent.py, tests/test_recent.py)
    from fnopt.optimizers import first_order

    assert sorted(LR) == sorted(n for n in first_order.__all__ if n != "descent")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", sorted(LR))
def test_loss_falls_by_the_stated_factor(name: str, task: str, backend: str) -> None:
    if backend == "torch":
        pytest.importorskip("torch")
    lr = LR[name][TASKS.index(task)]
    if math.isnan(lr):
        pytest.skip(f"{name} needs matrix leaves; {task} has none")
    params, grad_fn = make_task(task, backend)
    f0 = float(grad_fn(params)[0])
    opt = build(name, lr)
    r = fnopt.fixed_point(opt, params, grad_fn, stop=fnopt.stop.max_iters(STEPS))
    assert r.reason == "max_iters" and r.iterations == STEPS
    assert np.isfinite(r.value)
    assert r.value <= f0 / FACTOR[task], (
        f"{name} on {task} ({backend}): loss {f0:.4g} -> {r.value:.4g}, "
        f"needed a factor {FACTOR[task]:g}, got {f0 / r.value:.3g}"
    )
