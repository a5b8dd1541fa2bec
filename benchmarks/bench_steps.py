"""Pure optimizer steps: ``fnopt.adam`` / ``fnopt.sgd`` against torch.optim and hand NumPy.

Optimizer step only (the gradient is fixed and precomputed), float32, median µs per
step, on three shapes: an MLP 784-512-512-10 (6 tensors, ~670k floats), a tiny 5-3-1
net (4 tensors) and 200 tensors of 1000 floats.

Variants: ``torch.optim.Adam`` with ``foreach=False`` / ``foreach=True`` /
``fused=True``; ``torch.optim.SGD(momentum=0.9, foreach=True)``; fnopt's pure
``opt.step`` (new arrays, the caller's untouched) and ``opt.step(..., donate=True)``
(buffers reused); hand-written NumPy Adam making new arrays and in place with
``out=``; optax and torchopt when installed. fnopt's step also computes the gradient
norm it records in its state (torch.optim does not).

Run ``python benchmarks/bench_steps.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import fnopt

try:
    from benchmarks._common import (
        header,
        interleaved,
        optional,
        parser,
        per_call,
        setup,
        table,
    )
except ImportError:  # run as a script from benchmarks/
    from _common import (  # type: ignore[no-redef]
        header,
        interleaved,
        optional,
        parser,
        per_call,
        setup,
        table,
    )

SHAPES: dict[str, list[tuple[int, ...]]] = {
    "MLP": [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)],
    "tiny": [(5, 3), (3,), (3, 1), (1,)],
    "200×1000": [(1000,)] * 200,
}
LR = 1e-3


def numpy_tree(shapes: list[tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"p{i:03d}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}


def torch_tree(shapes: list[tuple[int, ...]], seed: int) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(v) for k, v in numpy_tree(shapes, seed).items()}


# -- fnopt ------------------------------------------------------------------------------


def fnopt_step(opt: fnopt.Optimizer, params: Any, grads: Any, *, donate: bool) -> Callable[[], Any]:
    """One step per call: pure (params/state replaced by fresh ones) or donated."""
    value = fnopt.tree.vdot(grads, grads)

    def grad_fn(p: Any) -> tuple[Any, Any]:
        return value, grads

    box = [params, opt.init(params)]
    if donate:
        box[0] = fnopt.tree.clone(params)

    def run() -> None:
        if donate:
            box[0], box[1] = opt.step(box[0], grad_fn, box[1], donate=True)
        else:
            box[0], box[1] = opt.step(box[0], grad_fn, box[1])

    return run


# -- torch.optim ------------------------------------------------------------------------


def torch_optim_step(
    make: Callable[[list[Any]], Any], params: Any, grads: Any
) -> Callable[[], Any]:
    ps = [p.clone().requires_grad_(True) for p in params.values()]
    for p, g in zip(ps, grads.values()):
        p.grad = g.clone()
    opt = make(ps)
    return opt.step  # type: ignore[no-any-return]


# -- hand NumPy Adam --------------------------------------------------------------------


def numpy_adam_new(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray]
) -> Callable[[], Any]:
    b1, b2, eps = 0.9, 0.999, 1e-8
    st = {"p": dict(params), "m": {k: np.zeros_like(v) for k, v in params.items()},
          "v": {k: np.zeros_like(v) for k, v in params.items()}, "t": 0}

    def run() -> None:
        st["t"] += 1
        t = st["t"]
        p, m, v = st["p"], st["m"], st["v"]
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            mhat = m[k] / (1 - b1**t)
            vhat = v[k] / (1 - b2**t)
            p[k] = p[k] - LR * mhat / (np.sqrt(vhat) + eps)

    return run


def numpy_adam_inplace(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray]
) -> Callable[[], Any]:
    b1, b2, eps = 0.9, 0.999, 1e-8
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(x) for k, x in params.items()}
    tmp = {k: np.empty_like(x) for k, x in params.items()}
    box = [0]

    def run() -> None:
        box[0] += 1
        t = box[0]
        step_size = LR / (1 - b1**t)
        bc2 = (1 - b2**t) ** 0.5
        for k, g in grads.items():
            mk, vk, tk = m[k], v[k], tmp[k]
            mk *= b1
            np.multiply(g, 1 - b1, out=tk)
            mk += tk
            vk *= b2
            np.multiply(g, g, out=tk)
            tk *= 1 - b2
            vk += tk
            np.sqrt(vk, out=tk)
            tk /= bc2
            tk += eps
            np.divide(mk, tk, out=tk)
            tk *= -step_size
            p[k] += tk

    return run


# -- optional peers ---------------------------------------------------------------------


def optax_step(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray]
) -> Callable[[], Any] | None:
    optax, jax = optional("optax"), optional("jax")
    if optax is None or jax is None:
        return None
    tx = optax.adam(LR)  # type: ignore[attr-defined]
    jp = jax.tree_util.tree_map(jax.numpy.asarray, params)  # type: ignore[attr-defined]
    jg = jax.tree_util.tree_map(jax.numpy.asarray, grads)  # type: ignore[attr-defined]

    @jax.jit  # type: ignore[attr-defined, untyped-decorator]
    def step(p: Any, s: Any) -> Any:
        u, s = tx.update(jg, s, p)
        return optax.apply_updates(p, u), s  # type: ignore[attr-defined]

    box = [jp, tx.init(jp)]

    def run() -> None:
        box[0], box[1] = step(box[0], box[1])
        jax.block_until_ready(box[0])  # type: ignore[attr-defined]

    return run


def torchopt_step(params: Any, grads: Any) -> Callable[[], Any] | None:
    torchopt = optional("torchopt")
    if torchopt is None:
        return None
    tx = torchopt.adam(LR)  # type: ignore[attr-defined]
    box = [params, tx.init(params)]

    def run() -> None:
        u, box[1] = tx.update(grads, box[1], params=box[0])
        box[0] = torchopt.apply_updates(box[0], u, inplace=False)  # type: ignore[attr-defined]

    return run


# -- main -------------------------------------------------------------------------------


def main() -> None:
    args = parser(__doc__).parse_args()
    setup(args)
    rounds = 3 if args.quick else args.rounds
    import torch

    torch.manual_seed(0)
    print(header())
    for shape_name, shapes in SHAPES.items():
        n = 2 if args.quick else (400 if shape_name == "tiny" else 20)
        tp, tg = torch_tree(shapes, 0), torch_tree(shapes, 1)
        npp, npg = numpy_tree(shapes, 0), numpy_tree(shapes, 1)
        variants: dict[str, Callable[[], Any] | None] = {
            "torch Adam foreach=False": torch_optim_step(
                lambda ps: torch.optim.Adam(ps, lr=LR, foreach=False), tp, tg),
            "torch Adam foreach=True": torch_optim_step(
                lambda ps: torch.optim.Adam(ps, lr=LR, foreach=True), tp, tg),
            "torch Adam fused=True": torch_optim_step(
                lambda ps: torch.optim.Adam(ps, lr=LR, fused=True), tp, tg),
            "fnopt.adam torch, pure step": fnopt_step(fnopt.adam(LR), tp, tg, donate=False),
            "fnopt.adam torch, donate=True": fnopt_step(fnopt.adam(LR), tp, tg, donate=True),
            "torchopt.adam": torchopt_step(tp, tg),
            "optax.adam (jit)": optax_step(npp, npg),
            "hand NumPy Adam, new arrays": numpy_adam_new(npp, npg),
            "hand NumPy Adam, in place": numpy_adam_inplace(npp, npg),
            "fnopt.adam NumPy, pure step": fnopt_step(fnopt.adam(LR), npp, npg, donate=False),
            "fnopt.adam NumPy, donate=True": fnopt_step(fnopt.adam(LR), npp, npg, donate=True),
            "torch SGD(0.9) foreach=True": torch_optim_step(
                lambda ps: torch.optim.SGD(ps, lr=LR, momentum=0.9, foreach=True), tp, tg),
            "fnopt.sgd(0.9) torch, pure step": fnopt_step(
                fnopt.sgd(LR, momentum=0.9), tp, tg, donate=False),
            "fnopt.sgd(0.9) torch, donate=True": fnopt_step(
                fnopt.sgd(LR, momentum=0.9), tp, tg, donate=True),
        }
        present = {k: per_call(f, n) for k, f in variants.items() if f is not None}
        res = {k: v * 1e6 for k, v in interleaved(present, rounds).items()}
        ref_a = res["torch Adam foreach=True"]
        ref_s = res["torch SGD(0.9) foreach=True"]
        ref_np = res["hand NumPy Adam, in place"]
        rows: list[tuple[str, float | None, float | None, str]] = []
        for name in variants:
            us = res.get(name)
            if "SGD" in name or "sgd" in name:
                ref, ref_name = ref_s, "torch SGD foreach"
            elif "NumPy" in name:
                ref, ref_name = ref_np, "hand NumPy in place"
            else:
                ref, ref_name = ref_a, "torch Adam foreach"
            note = "not installed" if us is None else f"vs {ref_name}"
            rows.append((name, us, None if us is None else us / ref, note))
        print()
        print(table(f"Optimizer step, {shape_name} (float32, µs per step)", rows))


if __name__ == "__main__":
    main()
