"""Loops: ``fnopt.fixed_point`` on tiny problems, and first-order optimizers on
loop-owned buffers against torch.optim and hand-written NumPy loops.

Tiny problems: Rosenbrock 2-D from the origin, gradient descent with learning rate
1e-3, 5771 iterations (until the loss is below 1e-3, as in the seed tutorial):

* NumPy: the tutorial's scalar loop, the same loop calling the task's ``grad_fn``,
  and ``fixed_point(fnopt.sgd(1e-3), ...)``;
* torch: a plain ``torch.optim.SGD`` loop (``backward`` + ``step`` + ``loss.item()``)
  and ``fixed_point`` with ``fnopt.grad.torch_autograd``.

Optimizers inside a loop (float32, one torch thread, fixed gradient; MLP 784-512-512-10,
200 × 1000, tiny 5-3-1): for sgd, sgd momentum 0.9, adam, adamw, adamax, nadam, radam,
rmsprop, adagrad, adadelta, ``fixed_point(opt, ..., stop=max_iters(n))`` with a
``grad_fn`` returning the fixed gradient against the ``torch.optim`` ``foreach=True``
loop (goal ≤ 1.0×) and the ``fused=True`` loop where torch has one (goal ≤ 1.1×); and
the same loop on NumPy against a hand-written in-place NumPy loop of that optimizer
(goal ≤ 1.1×). One run, interleaved rounds, medians.

Run ``python benchmarks/bench_loop.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import fnopt

try:
    from benchmarks._common import header, interleaved, parser, per_call, setup, table
except ImportError:  # run as a script from benchmarks/
    from _common import (  # type: ignore[no-redef]
        header,
        interleaved,
        parser,
        per_call,
        setup,
        table,
    )

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


def fixed_point_loop(opt: fnopt.Descent, params: Any, grads: Any, n: int) -> Callable[[], float]:
    """``fnopt.fixed_point(opt, params, grad_fn, stop=max_iters(n))`` with a ``grad_fn``
    that returns a fixed loss and gradient, seconds per step: the loop as users run it
    (its own buffers, the criterion check, the loss read on the host each iterate; the
    gradient norm is not computed, since nothing reads it)."""
    value = fnopt.tree.vdot(grads, grads)
    stop = fnopt.stop.max_iters(n)

    def grad_fn(p: Any) -> tuple[Any, Any]:
        return value, grads

    def run() -> float:
        r = fnopt.fixed_point(opt, params, grad_fn, stop=stop)
        assert r.iterations == n
        return r.elapsed / n

    return run


def torch_loop(name: str, params: Any, grads: Any, n: int, **options: Any) -> Callable[[], float]:
    """``n`` steps of a ``torch.optim`` optimizer with a fixed ``.grad``."""
    try:
        from benchmarks.bench_steps import torch_optim_step
    except ImportError:
        from bench_steps import torch_optim_step  # type: ignore[no-redef]

    return per_call(torch_optim_step(name, params, grads, **options), n)


def loop_table(shape_name: str, n: int, rounds: int) -> str:
    """One run, interleaved: per optimizer, the torch.optim foreach and fused loops, the
    fnopt ``apply(out=x)`` loop on torch, the hand in-place NumPy loop and the fnopt loop
    on NumPy."""
    try:
        from benchmarks.bench_steps import OPTIMIZERS, SHAPES, hand_numpy, numpy_tree, torch_tree
    except ImportError:
        from bench_steps import (  # type: ignore[no-redef]
            OPTIMIZERS,
            SHAPES,
            hand_numpy,
            numpy_tree,
            torch_tree,
        )

    shapes = SHAPES[shape_name]
    tp, tg = torch_tree(shapes, 0), torch_tree(shapes, 1)
    npp, npg = numpy_tree(shapes, 0), numpy_tree(shapes, 1)
    variants: dict[str, Callable[[], float]] = {}
    for name, (make, cls, options, fused) in OPTIMIZERS.items():
        variants[f"{name}/foreach"] = torch_loop(cls, tp, tg, n, foreach=True, **options)
        if fused:
            variants[f"{name}/fused"] = torch_loop(cls, tp, tg, n, fused=True, **options)
        variants[f"{name}/fnopt torch"] = fixed_point_loop(make(), tp, tg, n)
        variants[f"{name}/hand np"] = per_call(hand_numpy(name, npp, npg), n)
        variants[f"{name}/fnopt np"] = fixed_point_loop(make(), npp, npg, n)
    us = {k: v * 1e6 for k, v in interleaved(variants, rounds).items()}
    out = [
        f"### Optimizers inside a loop, {shape_name} (float32, fixed gradient, µs per step: "
        "fixed_point(opt, ..., stop=max_iters(n)) against torch.optim and a hand in-place "
        "NumPy loop)",
        "",
        "| variant | torch foreach | torch fused | fnopt torch | vs foreach (≤ 1.0×) "
        "| vs fused (≤ 1.1×) | hand NumPy | fnopt NumPy | vs hand (≤ 1.1×) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in OPTIMIZERS:
        f, mine = us[f"{name}/foreach"], us[f"{name}/fnopt torch"]
        fu = us.get(f"{name}/fused")
        h, mnp = us[f"{name}/hand np"], us[f"{name}/fnopt np"]
        out.append(
            f"| {name} | {f:.1f} | {'— (none in torch)' if fu is None else f'{fu:.1f}'} | "
            f"{mine:.1f} | "
            f"{mine / f:.2f}× | {'' if fu is None else f'{mine / fu:.2f}×'} | {h:.1f} | "
            f"{mnp:.1f} | {mnp / h:.2f}× |"
        )
    return "\n".join(out)


def numpy_adam_memory(n: int = 5) -> tuple[float, float, float]:
    """Peak traced NumPy memory (MiB) of ``n`` Adam steps on the MLP shape: a hand
    in-place loop (params, m, v, one scratch per leaf) against ``fixed_point(adam)`` (its
    two params buffers, m, v, and the scratch arrays of the update); and the size of one
    copy of the params."""
    import tracemalloc

    try:
        from benchmarks.bench_steps import SHAPES, hand_numpy, numpy_tree
    except ImportError:
        from bench_steps import SHAPES, hand_numpy, numpy_tree  # type: ignore[no-redef]

    params, grads = numpy_tree(SHAPES["MLP"], 0), numpy_tree(SHAPES["MLP"], 1)
    size = sum(v.nbytes for v in params.values()) / 2**20

    def peak(f: Callable[[], Any]) -> float:
        tracemalloc.start()
        f()
        out = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return out

    def hand() -> None:
        step = hand_numpy("adam", params, grads)
        for _ in range(n):
            step()

    def loop() -> None:
        fixed_point_loop(fnopt.adam(1e-3), params, grads, n)()

    return peak(hand), peak(loop), size


def main() -> None:
    args = parser(__doc__).parse_args()
    setup(args)
    rounds = min(args.rounds, 2) if args.quick else args.rounds
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
                ("fixed_point(fnopt.adam), two params buffers", loop_mb, loop_mb / hand_mb,
                 f"goal ≤ reference + one copy of params ({params_mb:.1f} MiB)"),
            ],
            unit="MiB",
        )
    )
    for shape_name in ("MLP", "200×1000", "tiny"):
        n = 2 if args.quick else (300 if shape_name == "tiny" else 20)
        print()
        print(loop_table(shape_name, n, rounds))


if __name__ == "__main__":
    main()
