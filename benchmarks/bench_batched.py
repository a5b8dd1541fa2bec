"""Batched multi-start: 10,000 Rosenbrock starts × 1,000 gradient-descent steps.

* hand-vectorised NumPy: ``X -= lr * grad(X)`` on a (10000, 2) array (the reference),
  and the same computing the loss too (what per-problem stopping needs);
* ``fnopt.batched(fnopt.sgd(1e-3), X, grad_fn, stop=loss_below(1e-3) | max_iters(1000))``
  with the same vectorised ``grad_fn`` (per-problem loss, checks and freezing);
* torch: ``torch.func.vmap(torch.func.grad(loss))`` in a Python loop (the reference)
  and ``fnopt.batched`` with ``fnopt.grad.torch_func(loss)`` mapped by ``vmap``;
* optionally JAX ``jit(fori_loop)`` when installed.

Starts are uniform in [-1, 1]^2 (float64). Prints median ms per run and ratios; run
``python benchmarks/bench_batched.py``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import fnopt

try:
    from benchmarks._common import header, interleaved, optional, parser, setup, table
except ImportError:  # run as a script from benchmarks/
    from _common import (  # type: ignore[no-redef]
        header,
        interleaved,
        optional,
        parser,
        setup,
        table,
    )

LR = 1e-3


def grad_np(x: np.ndarray) -> np.ndarray:
    x0, x1 = x[:, 0], x[:, 1]
    t = x1 - x0 * x0
    return np.stack([-2.0 * (1.0 - x0) - 400.0 * x0 * t, 200.0 * t], 1)


def value_and_grad_np(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x0, x1 = x[:, 0], x[:, 1]
    t = x1 - x0 * x0
    g = np.stack([-2.0 * (1.0 - x0) - 400.0 * x0 * t, 200.0 * t], 1)
    return (1.0 - x0) ** 2 + 100.0 * (t * t), g


def hand_numpy(x0: np.ndarray, steps: int) -> float:
    t0 = time.perf_counter()
    x = x0.copy()
    for _ in range(steps):
        x -= LR * grad_np(x)
    return time.perf_counter() - t0


def hand_numpy_with_loss(x0: np.ndarray, steps: int) -> float:
    t0 = time.perf_counter()
    x = x0.copy()
    for _ in range(steps):
        v, g = value_and_grad_np(x)
        if (v <= 1e-3).any():  # a per-problem stopping test (never frozen here)
            pass
        x -= LR * g
    return time.perf_counter() - t0


def fnopt_numpy(x0: np.ndarray, steps: int) -> float:
    stop = fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(steps)
    t0 = time.perf_counter()
    fnopt.batched(fnopt.sgd(LR), x0, value_and_grad_np, stop=stop)
    return time.perf_counter() - t0


def _loss_t(x: Any) -> Any:
    t = x[1] - x[0] * x[0]
    return (1.0 - x[0]) ** 2 + 100.0 * (t * t)


def torch_vmap_loop(x0: Any, steps: int) -> float:
    import torch.func

    g = torch.func.vmap(torch.func.grad(_loss_t))
    t0 = time.perf_counter()
    x = x0.clone()
    for _ in range(steps):
        x = x - LR * g(x)
    return time.perf_counter() - t0


def fnopt_torch(x0: Any, steps: int) -> float:
    stop = fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(steps)
    provider = fnopt.grad.torch_func(_loss_t)
    t0 = time.perf_counter()
    fnopt.batched(fnopt.sgd(LR), x0, provider, stop=stop)
    return time.perf_counter() - t0


def jax_fori(x0: np.ndarray, steps: int) -> Any:
    jax = optional("jax")
    if jax is None:
        return None
    jnp = jax.numpy  # type: ignore[attr-defined]

    def loss(x: Any) -> Any:
        return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2

    g = jax.vmap(jax.grad(loss))  # type: ignore[attr-defined]
    run = jax.jit(lambda x: jax.lax.fori_loop(0, steps, lambda i, x: x - LR * g(x), x))  # type: ignore[attr-defined]
    xj = jnp.asarray(x0)
    run(xj).block_until_ready()

    def timed() -> float:
        t0 = time.perf_counter()
        run(xj).block_until_ready()
        return time.perf_counter() - t0

    return timed


def main() -> None:
    args = parser(__doc__).parse_args()
    setup(args)
    rounds = 3 if args.quick else args.rounds
    n, steps = (2_000, 200) if args.quick else (10_000, 1_000)
    x0 = np.random.default_rng(0).uniform(-1.0, 1.0, (n, 2))
    print(header())
    variants = {
        "hand": lambda: hand_numpy(x0, steps),
        "hand_loss": lambda: hand_numpy_with_loss(x0, steps),
        "fnopt_np": lambda: fnopt_numpy(x0, steps),
    }
    jf = jax_fori(x0, steps)
    if jf is not None:
        variants["jax"] = jf
    try:
        import torch

        xt = torch.from_numpy(x0)
        variants["torch_ref"] = lambda: torch_vmap_loop(xt, steps)
        variants["fnopt_t"] = lambda: fnopt_torch(xt, steps)
    except ImportError:
        pass
    ms = {k: v * 1e3 for k, v in interleaved(variants, rounds).items()}
    rows: list[tuple[str, float | None, float | None, str]] = [
        ("hand-vectorised NumPy GD", ms["hand"], 1.0, "reference"),
        ("hand NumPy GD, also computing the loss", ms["hand_loss"], ms["hand_loss"] / ms["hand"],
         ""),
        ("fnopt.batched(sgd), NumPy", ms["fnopt_np"], ms["fnopt_np"] / ms["hand"],
         "goal ≤ 1.2×; per-problem stopping"),
    ]
    if "jax" in ms:
        rows.append(("JAX jit(fori_loop(vmap(grad)))", ms["jax"], ms["jax"] / ms["hand"], ""))
    if "torch_ref" in ms:
        rows.append(("torch vmap(grad) loop", ms["torch_ref"], 1.0, "reference"))
        rows.append(("fnopt.batched(sgd), torch vmap", ms["fnopt_t"],
                     ms["fnopt_t"] / ms["torch_ref"], "goal ≤ 1.2×; per-problem stopping"))
    print(table(f"Batched: {n:,} Rosenbrock starts × {steps:,} GD steps (ms per run)", rows,
                unit="ms"))


if __name__ == "__main__":
    main()
