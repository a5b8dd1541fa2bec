"""Per-step time of the post-Adam optimizers: fnopt against the reference packages.

For each new alias: fnopt's pure ``opt.apply(params, value, grads, state)`` in a loop
(torch params, a fixed gradient) against the reference package's own
``optimizer.step()`` (pytorch_optimizer, prodigyopt, dadaptation, schedulefree) on the
same tensors: an MLP 784-512-512-10 (weights and biases, float32), torch with one
thread. SAM: fnopt's ``opt.step`` (two calls of a grad_fn that returns the fixed
gradient) against ``first_step()`` + ``second_step()``.

Several references modify ``p.grad`` in place (NovoGrad and schedule-free AdamW divide
it by their denominator), so every reference step first restores the fixed gradient
(one ``_foreach_copy_``); that copy is timed on its own and shown in the table (the
"grad restore" row), so it can be subtracted. fnopt never mutates its inputs.

Variants run interleaved (round-robin) and the median is reported; compare the ratios
within one run. A missing reference package leaves its row out.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from typing import Any

from _common import header, interleaved, parser, per_call, setup, table

import fnopt

SIZES = (784, 512, 512, 10)

# alias -> (reference (module, class), reference kwargs, fnopt factory)
CASES: dict[str, tuple[tuple[str, str], dict[str, Any], Callable[[], Any]]] = {
    "yogi": (("pytorch_optimizer", "Yogi"), dict(lr=1e-3), lambda: fnopt.yogi(1e-3)),
    "adan": (("pytorch_optimizer", "Adan"), dict(lr=1e-3), lambda: fnopt.adan(1e-3)),
    "adopt": (("pytorch_optimizer", "ADOPT"), dict(lr=1e-3), lambda: fnopt.adopt(1e-3)),
    "ademamix": (("pytorch_optimizer", "AdEMAMix"), dict(lr=1e-3),
                 lambda: fnopt.ademamix(1e-3)),
    "novograd": (("pytorch_optimizer", "NovoGrad"), dict(lr=1e-3),
                 lambda: fnopt.novograd(1e-3)),
    "prodigy": (("prodigyopt", "Prodigy"), dict(), lambda: fnopt.prodigy()),
    "dadapt_adam": (("dadaptation", "DAdaptAdam"), dict(), lambda: fnopt.dadapt_adam()),
    "schedule_free_sgd": (("schedulefree", "SGDScheduleFree"), dict(lr=0.1),
                          lambda: fnopt.schedule_free_sgd(0.1)),
    "schedule_free_adamw": (("schedulefree", "AdamWScheduleFree"), dict(lr=1e-3),
                            lambda: fnopt.schedule_free_adamw(1e-3)),
}


def _tensors(torch: Any) -> tuple[list[Any], list[Any]]:
    g = torch.Generator().manual_seed(0)
    params, grads = [], []
    for a, b in itertools.pairwise(SIZES):
        for shape in ((a, b), (b,)):
            params.append(torch.randn(shape, generator=g) * 0.05)
            grads.append(torch.randn(shape, generator=g) * 1e-2)
    return params, grads


def _reference(torch: Any, make: Callable[[list[Any]], Any], grads: list[Any],
               kind: str) -> Callable[[], None]:
    params = [torch.nn.Parameter(p) for p in _tensors(torch)[0]]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt = make(params)
    if kind == "schedule_free":
        opt.train()
    cur = [p.grad for p in params]

    def step() -> None:
        torch._foreach_copy_(cur, grads)
        if kind == "sam":
            opt.first_step()
            torch._foreach_copy_(cur, grads)
            opt.second_step()
        else:
            opt.step()

    return step


def _fnopt(torch: Any, opt: Any, grads: list[Any], kind: str) -> Callable[[], None]:
    box = [_tensors(torch)[0]]
    value = torch.tensor(1.0)
    state = [opt.init(box[0])]

    if kind == "sam":
        def grad_fn(p: Any) -> tuple[Any, Any]:
            return value, grads

        def step() -> None:
            box[0], state[0] = opt.step(box[0], grad_fn, state[0])
    else:
        def step() -> None:
            box[0], state[0] = opt.apply(box[0], value, grads, state[0])

    return step


def main() -> None:
    args = parser(__doc__).parse_args()
    setup(args)
    import torch

    rounds = min(args.rounds, 2) if args.quick else args.rounds
    n = 3 if args.quick else 20
    grads = _tensors(torch)[1]
    variants: dict[str, Callable[[], float]] = {}
    names = []
    for name, ((module, cls), kwargs, ours) in CASES.items():
        try:
            ref_cls = getattr(importlib.import_module(module), cls)
        except ImportError:
            continue
        kind = "schedule_free" if name.startswith("schedule_free") else "plain"
        variants[f"{name}/ref"] = per_call(
            _reference(torch, lambda ps, c=ref_cls, kw=kwargs: c(ps, **kw), grads, kind), n)
        variants[f"{name}/fnopt"] = per_call(_fnopt(torch, ours(), grads, kind), n)
        names.append((name, f"{module}.{cls}"))
    try:
        sam_cls = importlib.import_module("pytorch_optimizer").SAM
    except ImportError:
        sam_cls = None
    if sam_cls is not None:
        variants["sam/ref"] = per_call(_reference(
            torch, lambda ps: sam_cls(ps, torch.optim.SGD, rho=0.05, lr=0.01, momentum=0.9),
            grads, "sam"), n)
        variants["sam/fnopt"] = per_call(
            _fnopt(torch, fnopt.sam(fnopt.sgd(0.01, momentum=0.9)), grads, "sam"), n)
        names.append(("sam", "pytorch_optimizer.SAM(SGD momentum 0.9)"))
    cur = [g.clone() for g in grads]
    variants["grad restore"] = per_call(lambda: torch._foreach_copy_(cur, grads), n)
    med = interleaved(variants, rounds)
    rows: list[tuple[str, float | None, float | None, str]] = []
    for name, ref in names:
        r, f = med[f"{name}/ref"], med[f"{name}/fnopt"]
        rows.append((f"`{ref}`.step()", r * 1e6, 1.0, "reference (includes a grad restore)"))
        how = "step (2 grad_fn calls)" if name == "sam" else "apply"
        rows.append((f"`fnopt.{name}` {how}", f * 1e6, f / r, "pure: new arrays"))
    rows.append(("grad restore (`_foreach_copy_`)", med["grad restore"] * 1e6, None,
                 "in each reference row"))
    print(header())
    print()
    print(table("Post-Adam optimizers, one step, MLP 784-512-512-10 (float32)", rows))


if __name__ == "__main__":
    main()
