"""Loop overhead: ``fnopt.fixed_point`` against hand-written loops on tiny problems.

Rosenbrock 2-D from the origin, gradient descent with learning rate 1e-3, 5771
iterations (until the loss is below 1e-3, as in the seed tutorial):

* NumPy: the tutorial's scalar loop, the same loop calling the task's ``grad_fn``,
  and ``fixed_point(fnopt.sgd(1e-3), ...)``;
* torch: a plain ``torch.optim.SGD`` loop (``backward`` + ``step`` + ``loss.item()``)
  and ``fixed_point`` with ``fnopt.grad.torch_autograd``.

Prints median µs per iteration and ratios; run ``python benchmarks/bench_loop.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import fnopt

try:
    from benchmarks._common import header, interleaved, parser, setup, table
except ImportError:  # run as a script from benchmarks/
    from _common import header, interleaved, parser, setup, table  # type: ignore[no-redef]

LR = 1e-3
TOL = 1e-3


def seed_loop(max_iter: int) -> float:
    """The seed tutorial's loop (scalar NumPy partial derivatives), seconds/iteration."""

    def func(x: float, y: float) -> float:
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2

    def dz_dx(x: float, y: float) -> float:
        return 2 * x - 400 * (y - x**2) * x - 2

    def dz_dy(x: float, y: float) -> float:
        return 200 * (y - x**2)

    t0 = time.perf_counter()
    value = np.zeros(2)
    loss, it = 10.0, 0
    while loss > TOL and it < max_iter:
        error = np.zeros(2)
        error[0] = dz_dx(value[0], value[1])
        error[1] = dz_dy(value[0], value[1])
        for i in range(2):
            value[i] = value[i] - LR * error[i]
        loss = func(value[0], value[1])
        it += 1
    return (time.perf_counter() - t0) / it


def bare_loop(max_iter: int) -> float:
    """A hand loop calling the task's ``grad_fn`` (what fixed_point wraps)."""
    task = fnopt.tasks.rosenbrock()
    grad_fn = task.grad_fn
    t0 = time.perf_counter()
    x, it = task.init_params, 0
    while it < max_iter:
        value, g = grad_fn(x)
        if value <= TOL:
            break
        x = x - LR * g
        it += 1
    return (time.perf_counter() - t0) / it


def fnopt_numpy(max_iter: int) -> float:
    task = fnopt.tasks.rosenbrock()
    stop = fnopt.stop.loss_below(TOL) | fnopt.stop.max_iters(max_iter)
    opt = fnopt.sgd(LR)
    t0 = time.perf_counter()
    r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop)
    return (time.perf_counter() - t0) / max(r.iterations, 1)


def _torch_loss(x):  # type: ignore[no-untyped-def]
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def torch_optim_sgd(n: int) -> float:
    import torch

    x = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=LR)
    t0 = time.perf_counter()
    for _ in range(n):
        opt.zero_grad()
        loss = _torch_loss(x)
        loss.backward()
        if loss.item() <= TOL:
            break
        opt.step()
    return (time.perf_counter() - t0) / n


def fnopt_torch(n: int) -> float:
    import torch

    grad_fn = fnopt.grad.torch_autograd(_torch_loss)
    x0 = torch.zeros(2, dtype=torch.float64)
    stop = fnopt.stop.loss_below(TOL) | fnopt.stop.max_iters(n)
    opt = fnopt.sgd(LR)
    t0 = time.perf_counter()
    r = fnopt.fixed_point(opt, x0, grad_fn, stop=stop)
    return (time.perf_counter() - t0) / max(r.iterations, 1)


def adam_loop_variants(shape_name: str, n: int) -> dict[str, Any]:
    """fixed_point(fnopt.adam) per step (loop-owned buffers) against a torch.optim
    fused Adam loop and a hand in-place NumPy Adam loop; the gradient is fixed (the
    optimizer and the loop are measured, not the model). The loss the provider reports
    decreases every call, as in a run that descends (the best iterate is the last one:
    nothing to recompute at the end)."""
    import torch

    try:
        from benchmarks.bench_steps import SHAPES, numpy_adam_inplace, numpy_tree, torch_tree
    except ImportError:
        from bench_steps import (  # type: ignore[no-redef]
            SHAPES,
            numpy_adam_inplace,
            numpy_tree,
            torch_tree,
        )

    shapes = SHAPES[shape_name]
    tp, tg = torch_tree(shapes, 0), torch_tree(shapes, 1)
    npp, npg = numpy_tree(shapes, 0), numpy_tree(shapes, 1)

    def provider(grads: Any, scalar: Callable[[float], Any]) -> Callable[..., Any]:
        calls = [0]

        def grad_fn(p: Any) -> tuple[Any, Any]:
            calls[0] += 1
            return scalar(1.0 / calls[0]), grads

        return grad_fn

    def fp(params: Any, grads: Any, scalar: Callable[[float], Any]) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            fnopt.fixed_point(fnopt.adam(1e-3), params, provider(grads, scalar),
                              stop=fnopt.stop.max_iters(n))
            return (time.perf_counter() - t0) / n

        return run

    def torch_fused() -> float:
        ps = [p.clone().requires_grad_(True) for p in tp.values()]
        for p, g in zip(ps, tg.values()):
            p.grad = g.clone()
        opt = torch.optim.Adam(ps, lr=1e-3, fused=True)
        t0 = time.perf_counter()
        for _ in range(n):
            opt.step()
        return (time.perf_counter() - t0) / n

    def hand_numpy() -> float:
        step = numpy_adam_inplace(npp, npg)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        return (time.perf_counter() - t0) / n

    return {
        "torch_fused": torch_fused,
        "fp_torch": fp(tp, tg, lambda v: torch.tensor(v)),
        "hand_np": hand_numpy,
        "fp_np": fp(npp, npg, lambda v: np.asarray(v)),
    }


def numpy_adam_memory(n: int = 5) -> tuple[float, float, float]:
    """Peak traced NumPy memory (MiB) of ``n`` Adam steps on the MLP shape: a hand
    in-place loop (params, m, v, one scratch per leaf) against ``fixed_point``; and the
    size of one copy of the params."""
    import tracemalloc

    try:
        from benchmarks.bench_steps import SHAPES, numpy_adam_inplace, numpy_tree
    except ImportError:
        from bench_steps import SHAPES, numpy_adam_inplace, numpy_tree  # type: ignore[no-redef]

    params, grads = numpy_tree(SHAPES["MLP"], 0), numpy_tree(SHAPES["MLP"], 1)
    value = np.asarray(1.0, dtype=np.float32)
    size = sum(v.nbytes for v in params.values()) / 2**20

    def peak(f: Callable[[], Any]) -> float:
        tracemalloc.start()
        f()
        out = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return out

    def hand() -> None:
        step = numpy_adam_inplace(params, grads)
        for _ in range(n):
            step()

    calls = [0]

    def grad_fn(p: Any) -> tuple[Any, Any]:  # a descending loss: no replay at the end
        calls[0] += 1
        return value / calls[0], grads

    def loop() -> None:
        fnopt.fixed_point(fnopt.adam(1e-3), params, grad_fn, stop=fnopt.stop.max_iters(n))

    return peak(hand), peak(loop), size


def main() -> None:
    args = parser(__doc__).parse_args()
    setup(args)
    rounds = 3 if args.quick else args.rounds
    n_np = 5771 if not args.quick else 1000
    n_t = 2000 if not args.quick else 300
    print(header())
    res = interleaved(
        {
            "seed": lambda: seed_loop(n_np),
            "bare": lambda: bare_loop(n_np),
            "fnopt": lambda: fnopt_numpy(n_np),
        },
        rounds,
    )
    us = {k: v * 1e6 for k, v in res.items()}
    print(
        table(
            "Tiny-problem loop, NumPy (Rosenbrock 2-D, sgd 1e-3, µs per iteration)",
            [
                ("seed tutorial loop (scalar NumPy)", us["seed"], 1.0, "reference"),
                ("hand loop with the task's grad_fn", us["bare"], us["bare"] / us["seed"], ""),
                ("fnopt.fixed_point(fnopt.sgd)", us["fnopt"], us["fnopt"] / us["seed"],
                 "goal ≤ 4×"),
            ],
        )
    )
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    res = interleaved(
        {"torch": lambda: torch_optim_sgd(n_t), "fnopt": lambda: fnopt_torch(n_t)}, rounds
    )
    us = {k: v * 1e6 for k, v in res.items()}
    print()
    print(
        table(
            "Tiny-problem loop, torch (Rosenbrock 2-D float64, µs per iteration)",
            [
                ("torch.optim.SGD loop (backward, step, item)", us["torch"], 1.0, "reference"),
                ("fixed_point(sgd, grad.torch_autograd)", us["fnopt"],
                 us["fnopt"] / us["torch"], "goal ≤ 1.2×"),
            ],
        )
    )
    hand_mb, loop_mb, params_mb = numpy_adam_memory()
    print()
    print(
        table(
            "Peak memory, Adam on the MLP shape, NumPy (tracemalloc, MiB; the caller's "
            "params and the gradient are not counted)",
            [
                ("hand in-place NumPy Adam (params, m, v, scratch)", hand_mb, 1.0, "reference"),
                ("fixed_point(fnopt.adam)", loop_mb, loop_mb / hand_mb,
                 f"goal ≤ reference + one copy of params ({params_mb:.1f} MiB)"),
            ],
            unit="MiB",
        )
    )
    for shape_name in ("MLP", "200×1000", "tiny"):
        n = 3 if args.quick else (300 if shape_name == "tiny" else 30)
        res = interleaved(adam_loop_variants(shape_name, n), rounds)
        us = {k: v * 1e6 for k, v in res.items()}
        print()
        print(
            table(
                f"Adam inside a loop, {shape_name} (float32, fixed gradient, µs per step)",
                [
                    ("torch.optim.Adam(fused=True) loop", us["torch_fused"], 1.0, "reference"),
                    ("fixed_point(fnopt.adam), torch", us["fp_torch"],
                     us["fp_torch"] / us["torch_fused"], "goal ≤ 1.0×"),
                    ("hand NumPy Adam loop, in place", us["hand_np"], 1.0, "reference"),
                    ("fixed_point(fnopt.adam), NumPy", us["fp_np"], us["fp_np"] / us["hand_np"],
                     "goal ≤ 1.0×"),
                ],
            )
        )


if __name__ == "__main__":
    main()
