"""Pure optimizer steps: fnopt's first-order optimizers against torch.optim.

Optimizer step only (the gradient is fixed and precomputed), float32, one torch thread,
median µs per step, on three shapes: an MLP 784-512-512-10 (6 tensors, ~670k floats),
200 tensors of 1000 floats and a tiny 5-3-1 net (4 tensors).

For sgd, sgd with momentum 0.9, adam, adamw, adamax, nadam, radam, rmsprop, adagrad and
adadelta (torch.optim's defaults otherwise): fnopt's pure ``opt.step`` (new arrays
every step, the caller's params and state untouched; it also computes the gradient norm
it records) against torch.optim's ``foreach=True`` step (in place on its own buffers).
Goal: ratio <= 1.0×. The registry of optimizers and the hand-written NumPy loops are
shared with ``bench_loop.py``.

Run ``python benchmarks/bench_steps.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import fnopt

try:
    from benchmarks._common import header, interleaved, optional, parser, per_call, setup
except ImportError:  # run as a script from benchmarks/
    from _common import (  # type: ignore[no-redef]
        header,
        interleaved,
        optional,
        parser,
        per_call,
        setup,
    )

SHAPES: dict[str, list[tuple[int, ...]]] = {
    "MLP": [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)],
    "200×1000": [(1000,)] * 200,
    "tiny": [(5, 3), (3,), (3, 1), (1,)],
}
LR = 1e-3

# name -> (fnopt optimizer, torch.optim class name, its options, torch has fused=True)
OPTIMIZERS: dict[str, tuple[Callable[[], Any], str, dict[str, Any], bool]] = {
    "sgd": (lambda: fnopt.sgd(LR), "SGD", {}, True),
    "sgd momentum 0.9": (lambda: fnopt.sgd(LR, momentum=0.9), "SGD", {"momentum": 0.9}, True),
    "adam": (lambda: fnopt.adam(LR), "Adam", {}, True),
    "adamw": (lambda: fnopt.adamw(LR), "AdamW", {}, True),
    "adamax": (lambda: fnopt.adamax(LR), "Adamax", {}, False),
    "nadam": (lambda: fnopt.nadam(LR), "NAdam", {}, False),
    "radam": (lambda: fnopt.radam(LR), "RAdam", {}, False),
    "rmsprop": (lambda: fnopt.rmsprop(LR), "RMSprop", {}, False),
    "adagrad": (lambda: fnopt.adagrad(LR), "Adagrad", {}, True),
    "adadelta": (lambda: fnopt.adadelta(LR), "Adadelta", {}, False),
}


def numpy_tree(shapes: list[tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"p{i:03d}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}


def torch_tree(shapes: list[tuple[int, ...]], seed: int) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(v) for k, v in numpy_tree(shapes, seed).items()}


def fnopt_pure_step(opt: fnopt.Descent, params: Any, grads: Any) -> Callable[[], None]:
    """One pure ``opt.step`` per call (params and state replaced by new ones)."""
    value = fnopt.tree.vdot(grads, grads)

    def grad_fn(p: Any) -> tuple[Any, Any]:
        return value, grads

    box = [params, opt.init(params)]

    def run() -> None:
        box[0], box[1] = opt.step(box[0], grad_fn, box[1])

    return run


def torch_optim_step(name: str, params: Any, grads: Any, **options: Any) -> Callable[[], Any]:
    """``torch.optim.<name>(..., **options).step`` on clones of ``params`` whose
    ``.grad`` is a fixed gradient."""
    import torch

    ps = [p.clone().requires_grad_(True) for p in params.values()]
    for p, g in zip(ps, grads.values()):
        p.grad = g.clone()
    return getattr(torch.optim, name)(ps, lr=LR, **options).step  # type: ignore[no-any-return]


def torchopt_adam_step(params: Any, grads: Any) -> Callable[[], None] | None:
    """torchopt's functional Adam (optax-shaped, pure: ``inplace=False``), one step per
    call; ``None`` when torchopt is not installed."""
    torchopt = optional("torchopt")
    if torchopt is None:
        return None
    opt = torchopt.adam(LR)  # type: ignore[attr-defined]
    box = [params, opt.init(params)]

    def run() -> None:
        updates, box[1] = opt.update(grads, box[1], inplace=False)
        box[0] = torchopt.apply_updates(box[0], updates, inplace=False)  # type: ignore[attr-defined]

    return run


def optax_adam_step(params: Any, grads: Any) -> Callable[[], None] | None:
    """optax.adam under ``jax.jit`` (update and apply in one compiled function, on the
    CPU), one step per call, waiting for the result; ``None`` without optax/jax."""
    optax, jax = optional("optax"), optional("jax")
    if optax is None or jax is None:
        return None
    jnp = jax.numpy  # type: ignore[attr-defined]
    opt = optax.adam(LR)  # type: ignore[attr-defined]
    p = {k: jnp.asarray(v) for k, v in params.items()}
    g = {k: jnp.asarray(v) for k, v in grads.items()}

    @jax.jit  # type: ignore[attr-defined,misc]
    def step(p: Any, s: Any) -> Any:
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s  # type: ignore[attr-defined]

    box = [p, opt.init(p)]
    box[0], box[1] = step(box[0], box[1])  # compile outside the timing

    def run() -> None:
        box[0], box[1] = step(box[0], box[1])
        jax.block_until_ready(box[0])  # type: ignore[attr-defined]

    return run


def peers_table(shape_name: str, shapes: list[tuple[int, ...]], n: int, rounds: int) -> str:
    """Adam, one pure step, against what a user would pick instead: torch.optim
    (foreach, fused), torchopt's functional adam, optax.adam under jax.jit."""
    tp, tg = torch_tree(shapes, 0), torch_tree(shapes, 1)
    npp, npg = numpy_tree(shapes, 0), numpy_tree(shapes, 1)
    variants: dict[str, Callable[[], float]] = {
        "torch.optim.Adam(foreach=True)": per_call(
            torch_optim_step("Adam", tp, tg, foreach=True), n),
        "torch.optim.Adam(fused=True)": per_call(torch_optim_step("Adam", tp, tg, fused=True), n),
        "fnopt.adam pure step, torch": per_call(fnopt_pure_step(fnopt.adam(LR), tp, tg), n),
        "fnopt.adam pure step, NumPy": per_call(fnopt_pure_step(fnopt.adam(LR), npp, npg), n),
    }
    peers = {"torchopt.adam (functional, torch)": torchopt_adam_step(tp, tg),
             "optax.adam under jax.jit (CPU)": optax_adam_step(npp, npg)}
    for name, run in peers.items():
        if run is not None:
            variants[name] = per_call(run, n)
    res = {k: v * 1e6 for k, v in interleaved(variants, rounds).items()}
    ref = res["torch.optim.Adam(foreach=True)"]
    out = [f"### Adam, one step, {shape_name}, against the peers (float32, µs per step)", "",
           "| variant | µs | vs torch.optim foreach |", "|---|---:|---:|"]
    for name, us in res.items():
        out.append(f"| {name} | {_fmt(us)} | {us / ref:.2f}× |")
    for name, run in peers.items():
        if run is None:
            out.append(f"| {name} | not installed (pip install 'fnopt[bench]') | |")
    return "\n".join(out)


# -- hand-written in-place NumPy loops (references for bench_loop.py) -------------------
#
# Each keeps its state and one scratch array per leaf, and writes with ``out=`` ufuncs
# and in-place operators: what a careful NumPy programmer writes for one optimizer.


def _hand(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], n_state: int,
          body: Callable[..., None]) -> Callable[[], None]:
    p = {k: v.copy() for k, v in params.items()}
    st = [{k: np.zeros_like(v) for k, v in params.items()} for _ in range(n_state)]
    tmp = {k: np.empty_like(v) for k, v in params.items()}
    box = [0]

    def run() -> None:
        box[0] += 1
        for k, g in grads.items():
            body(box[0], p[k], g, tmp[k], *(s[k] for s in st))

    return run


def hand_numpy(name: str, params: dict[str, np.ndarray],
               grads: dict[str, np.ndarray]) -> Callable[[], None]:
    """The hand in-place NumPy loop of optimizer ``name`` (torch.optim's arithmetic)."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    prods = [(0, 1.0)]

    def sgd(t: int, p: Any, g: Any, tk: Any) -> None:
        np.multiply(g, -LR, out=tk)
        p += tk

    def momentum(t: int, p: Any, g: Any, tk: Any, buf: Any) -> None:
        if t == 1:
            np.copyto(buf, g)
        else:
            buf *= 0.9
            buf += g
        np.multiply(buf, -LR, out=tk)
        p += tk

    def adam(t: int, p: Any, g: Any, tk: Any, m: Any, v: Any, wd: float = 0.0) -> None:
        if wd:
            p *= 1 - LR * wd
        np.subtract(g, m, out=tk)
        tk *= 1 - b1
        m += tk
        v *= b2
        np.multiply(g, g, out=tk)
        tk *= 1 - b2
        v += tk
        np.sqrt(v, out=tk)
        tk /= (1 - b2**t) ** 0.5
        tk += eps
        np.divide(m, tk, out=tk)
        tk *= -LR / (1 - b1**t)
        p += tk

    def adamw(t: int, p: Any, g: Any, tk: Any, m: Any, v: Any) -> None:
        adam(t, p, g, tk, m, v, wd=1e-2)

    def adamax(t: int, p: Any, g: Any, tk: Any, m: Any, u: Any) -> None:
        np.subtract(g, m, out=tk)
        tk *= 1 - b1
        m += tk
        u *= b2
        np.abs(g, out=tk)
        tk += eps
        np.maximum(u, tk, out=u)
        np.divide(m, u, out=tk)
        tk *= -LR / (1 - b1**t)
        p += tk

    def nadam(t: int, p: Any, g: Any, tk: Any, m: Any, v: Any) -> None:
        mom = b1 * (1 - 0.5 * 0.96 ** (t * 4e-3))
        mom_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * 4e-3))
        if prods[-1][0] != t:  # the product of the momentum schedule, once per step
            prods.append((t, prods[-1][1] * mom))
        prod = prods[-1][1]
        np.subtract(g, m, out=tk)
        tk *= 1 - b1
        m += tk
        v *= b2
        np.multiply(g, g, out=tk)
        tk *= 1 - b2
        v += tk
        np.divide(v, 1 - b2**t, out=tk)
        np.sqrt(tk, out=tk)
        tk += eps  # denominator
        p -= (LR * (1 - mom) / (1 - prod)) * (g / tk) + (LR * mom_next / (1 - prod * mom_next)) * (
            m / tk)

    def radam(t: int, p: Any, g: Any, tk: Any, m: Any, v: Any) -> None:
        rho_inf = 2 / (1 - b2) - 1
        np.subtract(g, m, out=tk)
        tk *= 1 - b1
        m += tk
        v *= b2
        np.multiply(g, g, out=tk)
        tk *= 1 - b2
        v += tk
        bc2 = 1 - b2**t
        rho = rho_inf - 2 * t * b2**t / bc2
        if rho > 5:
            rect = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
            np.sqrt(v, out=tk)
            tk += eps
            np.divide(m, tk, out=tk)
            tk *= -LR * bc2**0.5 * rect / (1 - b1**t)
        else:
            np.multiply(m, -LR / (1 - b1**t), out=tk)
        p += tk

    def rmsprop(t: int, p: Any, g: Any, tk: Any, v: Any) -> None:
        v *= 0.99
        np.multiply(g, g, out=tk)
        tk *= 0.01
        v += tk
        np.sqrt(v, out=tk)
        tk += eps
        np.divide(g, tk, out=tk)
        tk *= -LR
        p += tk

    def adagrad(t: int, p: Any, g: Any, tk: Any, s: Any) -> None:
        np.multiply(g, g, out=tk)
        s += tk
        np.sqrt(s, out=tk)
        tk += 1e-10
        np.divide(g, tk, out=tk)
        tk *= -LR
        p += tk

    def adadelta(t: int, p: Any, g: Any, tk: Any, eg: Any, ex: Any, d: Any) -> None:
        eg *= 0.9
        np.multiply(g, g, out=tk)
        tk *= 0.1
        eg += tk
        np.add(eg, 1e-6, out=tk)
        np.sqrt(tk, out=tk)
        np.add(ex, 1e-6, out=d)
        np.sqrt(d, out=d)
        d /= tk
        d *= g  # the update
        ex *= 0.9
        np.multiply(d, d, out=tk)
        tk *= 0.1
        ex += tk
        d *= -LR
        p += d

    table: dict[str, tuple[Callable[..., None], int]] = {
        "sgd": (sgd, 0), "sgd momentum 0.9": (momentum, 1), "adam": (adam, 2),
        "adamw": (adamw, 2), "adamax": (adamax, 2), "nadam": (nadam, 2), "radam": (radam, 2),
        "rmsprop": (rmsprop, 1), "adagrad": (adagrad, 1), "adadelta": (adadelta, 3),
    }
    body, n_state = table[name]
    return _hand(params, grads, n_state, body)


def ratio_table(title: str, head: tuple[str, str], rows: list[tuple[str, float, float, str]]
                ) -> str:
    """A Markdown table: variant, reference µs, fnopt µs, ratio, goal."""
    out = [f"### {title}", "", f"| variant | {head[0]} µs | {head[1]} µs | ratio | goal |",
           "|---|---:|---:|---:|---|"]
    for name, ref, mine, goal in rows:
        out.append(f"| {name} | {_fmt(ref)} | {_fmt(mine)} | {mine / ref:.2f}× | {goal} |")
    return "\n".join(out)


def _fmt(us: float) -> str:
    return f"{us:.1f}" if us < 1000 else f"{us:,.0f}"


def main() -> None:
    args = parser(__doc__).parse_args()
    setup(args)
    rounds = min(args.rounds, 2) if args.quick else args.rounds
    print(header())
    for shape_name, shapes in SHAPES.items():
        n = 2 if args.quick else (300 if shape_name == "tiny" else 20)
        tp, tg = torch_tree(shapes, 0), torch_tree(shapes, 1)
        variants: dict[str, Callable[[], float]] = {}
        for name, (make, cls, options, _) in OPTIMIZERS.items():
            variants[f"{name}/torch"] = per_call(
                torch_optim_step(cls, tp, tg, foreach=True, **options), n)
            variants[f"{name}/fnopt"] = per_call(fnopt_pure_step(make(), tp, tg), n)
        res = {k: v * 1e6 for k, v in interleaved(variants, rounds).items()}
        rows = [(name, res[f"{name}/torch"], res[f"{name}/fnopt"], "≤ 1.0×")
                for name in OPTIMIZERS]
        print()
        print(ratio_table(
            f"Optimizer step, {shape_name} (float32, pure opt.step vs torch.optim "
            "foreach=True, µs per step)", ("torch.optim foreach", "fnopt pure step"), rows))
        print()
        print(peers_table(shape_name, shapes, n, rounds))


if __name__ == "__main__":
    main()
