"""GPU step times: ``fnopt.adam`` against ``torch.optim.Adam`` (fused and foreach).

On a CUDA device, for three shapes (an MLP 784-512-512-10, 200 tensors of 1000
floats, 8 tensors of 4M floats), float32, with fixed precomputed gradients so that
only the optimizer is timed:

* ``torch.optim.Adam(fused=True)`` — the reference; ``foreach=True`` beside it;
* ``fnopt.adam`` pure ``step`` (new tensors every step, nothing mutated);
* ``fnopt.fixed_point(fnopt.adam)`` per iteration — the loop, including its one
  host read of the loss per iteration for the stopping check.

Times come from CUDA events around ``--steps`` consecutive steps, medians over
interleaved rounds. Without a CUDA device the script prints a note and exits 0.

    python benchmarks/bench_gpu.py [--quick] [--rounds N] [--steps N]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import fnopt

try:
    from benchmarks._common import header, interleaved, parser, table
except ImportError:  # run as a script from benchmarks/
    from _common import header, interleaved, parser, table  # type: ignore[no-redef]

SHAPES: dict[str, list[tuple[int, ...]]] = {
    "MLP 784-512-512-10": [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)],
    "200 x 1000 floats": [(1000,)] * 200,
    "8 x 4M floats": [(4_000_000,)] * 8,
}
LR = 1e-3


def _timed_cuda(run_steps: Callable[[int], Any], steps: int) -> Callable[[], float]:
    """Seconds per step of ``run_steps(steps)``, measured with CUDA events."""
    import torch

    def timed() -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        run_steps(steps)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / steps

    return timed


def variants(shapes: list[tuple[int, ...]], steps: int) -> dict[str, Callable[[], float]]:
    import torch

    gen = torch.Generator(device="cuda").manual_seed(0)
    p0 = [torch.randn(s, device="cuda", generator=gen) for s in shapes]
    g0 = [torch.randn(s, device="cuda", generator=gen) * 1e-2 for s in shapes]
    out: dict[str, Callable[[], float]] = {}

    for name, kw in (("torch.optim.Adam(fused=True)", {"fused": True}),
                     ("torch.optim.Adam(foreach=True)", {"foreach": True})):
        ps = [p.clone().requires_grad_(True) for p in p0]
        for p, g in zip(ps, g0):
            p.grad = g.clone()
        topt = torch.optim.Adam(ps, lr=LR, **kw)

        def torch_steps(n: int, topt: Any = topt) -> None:
            for _ in range(n):
                topt.step()

        out[name] = _timed_cuda(torch_steps, steps)

    value = torch.zeros((), device="cuda")

    def grad_fn(params: Any) -> tuple[Any, Any]:
        del params
        return value, g0

    opt = fnopt.adam(LR)
    holder = {"p": [p.clone() for p in p0]}
    holder["s"] = opt.init(holder["p"])

    def pure_steps(n: int) -> None:
        p, s = holder["p"], holder["s"]
        for _ in range(n):
            p, s = opt.step(p, grad_fn, s)
        holder["p"], holder["s"] = p, s

    out["fnopt.adam step (pure)"] = _timed_cuda(pure_steps, steps)

    def loop_steps(n: int) -> None:
        fnopt.fixed_point(opt, p0, grad_fn, stop=fnopt.stop.max_iters(n))

    out["fnopt.fixed_point(adam), per iteration"] = _timed_cuda(loop_steps, steps)
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=None, help="steps per timed sample")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench_gpu: torch is not installed; nothing to measure (note only).")
        return 0
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device available; GPU step times need a GPU "
              "(note only, nothing measured).")
        return 0
    rounds = 3 if args.quick else args.rounds
    steps = args.steps or (20 if args.quick else 100)
    print(header())
    print(f"device: {torch.cuda.get_device_name()}; float32; {steps} steps per sample, "
          f"median of {rounds} interleaved rounds")
    for title, shapes in SHAPES.items():
        med = interleaved(variants(shapes, steps), rounds)
        ref = med["torch.optim.Adam(fused=True)"]
        rows = [(name, sec * 1e6, sec / ref, "reference" if sec == ref else "")
                for name, sec in med.items()]
        print()
        print(table(f"Adam step on {title}", rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
