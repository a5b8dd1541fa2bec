r"""The post-Adam optimizers against their reference packages, step for step.

Each case runs the reference optimizer (torch, float64) and fnopt (NumPy params and
torch params) for 100 steps from the same start on a small nonconvex regression over a
pytree of a matrix, a vector and a 0-d leaf, and compares every parameter after every
step to rtol 1e-9 relative to the leaf's magnitude, :math:`\max|a - b| \le 10^{-9}
\max|b|` (an entry that crosses zero has no relative error of its own; the
estimated step sizes of Prodigy/D-Adaptation carry O(1e-16) round-off that such an
entry shows as 2e-9 elementwise). Gradients on both sides come from the same torch
function.

Reference packages (the ``refs`` extra): pytorch_optimizer (Yogi, Adan, ADOPT,
AdEMAMix, NovoGrad, SAM), prodigyopt, dadaptation, schedulefree. A missing package
skips its cases. ``python tests/test_parity_recent.py`` prints the table of measured
maximum relative deviations shown in the README.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import fnopt

torch = pytest.importorskip("torch")

STEPS = 100
RTOL = 1e-9


@contextlib.contextmanager
def float64_default() -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _data() -> tuple[Any, Any, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(16, 3)))
    y = torch.as_tensor(rng.normal(size=(16, 4)))
    start = {"w": rng.normal(size=(3, 4)) * 0.5, "b": rng.normal(size=4) * 0.1,
             "s": np.array(0.8)}
    return x, y, start


X, Y, START = _data()


def loss_torch(p: dict[str, Any]) -> Any:
    """A nonconvex regression: mean (s tanh(x w + b) - y)^2 plus a small ridge on w."""
    pred = p["s"] * torch.tanh(X @ p["w"] + p["b"])
    return ((pred - Y) ** 2).mean() + 0.01 * (p["w"] ** 2).sum()


def _torch_grad_fn(p: dict[str, Any]) -> tuple[Any, Any]:
    g, v = torch.func.grad_and_value(loss_torch)(p)
    return v.detach(), {k: t.detach() for k, t in g.items()}


def _numpy_grad_fn(p: dict[str, np.ndarray]) -> tuple[Any, Any]:
    v, g = _torch_grad_fn({k: torch.as_tensor(a) for k, a in p.items()})
    return np.asarray(v.numpy()), {k: t.numpy().copy() for k, t in g.items()}


GRAD_FN = {"numpy": _numpy_grad_fn, "torch": _torch_grad_fn}


def _start(backend: str) -> dict[str, Any]:
    if backend == "numpy":
        return {k: a.copy() for k, a in START.items()}
    return {k: torch.as_tensor(a.copy()) for k, a in START.items()}


# -- the reference side -------------------------------------------------------------------


def _ref_params() -> dict[str, Any]:
    return {k: torch.nn.Parameter(torch.as_tensor(a.copy())) for k, a in START.items()}


def _backward(params: dict[str, Any]) -> None:
    for t in params.values():
        t.grad = None
    loss_torch(params).backward()


def run_reference(make: Callable[[list[Any]], Any], *, kind: str = "plain") -> list[Any]:
    """The reference's params after each step (and, for schedule-free, the eval point
    at the end, appended)."""
    with float64_default():
        params = _ref_params()
        opt = make(list(params.values()))
        if kind == "schedule_free":
            opt.train()
        traj = []
        for _ in range(STEPS):
            _backward(params)
            if kind == "sam":
                opt.first_step(zero_grad=True)
                _backward(params)
                opt.second_step(zero_grad=True)
            else:
                opt.step()
            traj.append({k: t.detach().numpy().copy() for k, t in params.items()})
        if kind == "schedule_free":
            opt.eval()
            traj.append({k: t.detach().numpy().copy() for k, t in params.items()})
    return traj


def run_fnopt(opt: Any, backend: str, *, kind: str = "plain") -> list[Any]:
    p, s = _start(backend), opt.init(_start(backend))
    grad_fn = GRAD_FN[backend]
    traj = []
    for _ in range(STEPS):
        p, s = opt.step(p, grad_fn, s)
        traj.append(fnopt.to_numpy(p))
    if kind == "schedule_free":
        traj.append(fnopt.to_numpy(fnopt.schedule_free_eval_params(s, p)))
    return traj


def leaf_dev(a: Any, b: Any) -> float:
    """max |a - b| / max |b| over one leaf."""
    x, y = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), 1e-300))


def max_rel_dev(ours: list[Any], ref: list[Any]) -> float:
    """The largest :func:`leaf_dev` over steps and leaves."""
    return max(leaf_dev(a[k], b[k]) for a, b in zip(ours, ref) for k in b)


# -- the cases ----------------------------------------------------------------------------


def _ref(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        pytest.skip(f"reference package {module} is not installed (the refs extra)")


PO = "pytorch_optimizer"

# id -> (reference (module, class), reference kwargs, fnopt factory, kind)
CASES: dict[str, tuple[tuple[str, str], dict[str, Any], Callable[[], Any], str]] = {
    "yogi": ((PO, "Yogi"), dict(lr=0.02), lambda: fnopt.yogi(0.02), "plain"),
    "yogi_coupled_wd": ((PO, "Yogi"), dict(lr=0.02, weight_decay=0.05, weight_decouple=False),
                        lambda: fnopt.yogi(0.02, weight_decay=0.05,
                                           decoupled_weight_decay=False), "plain"),
    "yogi_fixed_decay": ((PO, "Yogi"), dict(lr=0.02, weight_decay=0.01, fixed_decay=True),
                         lambda: fnopt.yogi(0.02, weight_decay=0.01, fixed_decay=True), "plain"),
    "adan": ((PO, "Adan"), dict(lr=0.01), lambda: fnopt.adan(0.01), "plain"),
    "adan_proximal_wd": ((PO, "Adan"), dict(lr=0.01, weight_decay=0.05),
                         lambda: fnopt.adan(0.01, weight_decay=0.05), "plain"),
    "adan_decoupled_wd": ((PO, "Adan"), dict(lr=0.01, weight_decay=0.05, weight_decouple=True),
                          lambda: fnopt.adan(0.01, weight_decay=0.05,
                                             decoupled_weight_decay=True), "plain"),
    "adopt": ((PO, "ADOPT"), dict(lr=0.01), lambda: fnopt.adopt(0.01), "plain"),
    "adopt_decoupled_wd": ((PO, "ADOPT"), dict(lr=0.01, weight_decay=0.05, weight_decouple=True),
                           lambda: fnopt.adopt(0.01, weight_decay=0.05,
                                               decoupled_weight_decay=True), "plain"),
    "ademamix": ((PO, "AdEMAMix"), dict(lr=0.01), lambda: fnopt.ademamix(0.01), "plain"),
    "ademamix_warmup_wd": ((PO, "AdEMAMix"),
                           dict(lr=0.01, t_alpha_beta3=40.0, weight_decay=0.05,
                                weight_decouple=True),
                           lambda: fnopt.ademamix(0.01, t_alpha_beta3=40.0, weight_decay=0.05,
                                                  decoupled_weight_decay=True), "plain"),
    "novograd": ((PO, "NovoGrad"), dict(lr=0.01), lambda: fnopt.novograd(0.01), "plain"),
    "novograd_averaging_wd": ((PO, "NovoGrad"),
                              dict(lr=0.01, grad_averaging=True, weight_decay=0.05),
                              lambda: fnopt.novograd(0.01, grad_averaging=True,
                                                     weight_decay=0.05), "plain"),
    "prodigy": (("prodigyopt", "Prodigy"), dict(), lambda: fnopt.prodigy(), "plain"),
    "prodigy_options": (("prodigyopt", "Prodigy"),
                        dict(betas=(0.0, 0.99), weight_decay=0.05, decouple=False,
                             use_bias_correction=True, safeguard_warmup=True, d_coef=0.5,
                             growth_rate=1.5),
                        lambda: fnopt.prodigy(b1=0.0, b2=0.99, weight_decay=0.05,
                                              decouple=False, use_bias_correction=True,
                                              safeguard_warmup=True, d_coef=0.5,
                                              growth_rate=1.5), "plain"),
    "dadapt_adam": (("dadaptation", "DAdaptAdam"), dict(), lambda: fnopt.dadapt_adam(), "plain"),
    "dadapt_adam_options": (("dadaptation", "DAdaptAdam"),
                            dict(weight_decay=0.05, decouple=True, use_bias_correction=True,
                                 growth_rate=1.2),
                            lambda: fnopt.dadapt_adam(weight_decay=0.05, decouple=True,
                                                      use_bias_correction=True,
                                                      growth_rate=1.2), "plain"),
    "schedule_free_sgd": (("schedulefree", "SGDScheduleFree"), dict(lr=0.1),
                          lambda: fnopt.schedule_free_sgd(0.1), "schedule_free"),
    "schedule_free_sgd_options": (("schedulefree", "SGDScheduleFree"),
                                  dict(lr=0.1, momentum=0.8, weight_decay=0.01,
                                       warmup_steps=10, r=0.5, weight_lr_power=1.0),
                                  lambda: fnopt.schedule_free_sgd(
                                      0.1, b1=0.8, weight_decay=0.01, warmup_steps=10, r=0.5,
                                      weight_lr_power=1.0), "schedule_free"),
    "schedule_free_adamw": (("schedulefree", "AdamWScheduleFree"), dict(),
                            lambda: fnopt.schedule_free_adamw(), "schedule_free"),
    "schedule_free_adamw_options": (("schedulefree", "AdamWScheduleFree"),
                                    dict(lr=0.01, betas=(0.95, 0.99), weight_decay=0.05,
                                         warmup_steps=10),
                                    lambda: fnopt.schedule_free_adamw(
                                        0.01, b1=0.95, b2=0.99, weight_decay=0.05,
                                        warmup_steps=10), "schedule_free"),
}


def _sam_cases() -> dict[str, tuple[Callable[[list[Any]], Any], Callable[[], Any]]]:
    def ref(adaptive: bool, base: Any, **kw: Any) -> Callable[[list[Any]], Any]:
        sam_cls = _ref(PO, "SAM")
        return lambda ps: sam_cls(ps, base, rho=0.05, adaptive=adaptive, **kw)

    return {
        "sam_sgd": (ref(False, torch.optim.SGD, lr=0.05, momentum=0.9),
                    lambda: fnopt.sam(fnopt.sgd(0.05, momentum=0.9))),
        "sam_adaptive_adam": (ref(True, torch.optim.Adam, lr=0.01),
                              lambda: fnopt.sam(fnopt.adam(0.01), adaptive=True)),
    }


def case(name: str) -> tuple[Callable[[list[Any]], Any], Callable[[], Any], str]:
    if name.startswith("sam"):
        ref, ours = _sam_cases()[name]
        return ref, ours, "sam"
    (module, cls), kwargs, ours, kind = CASES[name]
    ref_cls = _ref(module, cls)
    return (lambda ps: ref_cls(ps, **kwargs)), ours, kind


ALL = [*CASES, "sam_sgd", "sam_adaptive_adam"]


@pytest.mark.parametrize("name", ALL)
def test_matches_the_reference(name: str) -> None:
    ref_make, ours, kind = case(name)
    ref = run_reference(ref_make, kind=kind)
    moved = max(float(np.max(np.abs(ref[-1][k] - START[k]))) for k in START)
    assert moved > 1e-3, f"{name}: the reference barely moved ({moved}); a vacuous case"
    for backend in ("numpy", "torch"):
        got = run_fnopt(ours(), backend, kind=kind)
        for step, (a, b) in enumerate(zip(got, ref)):
            for k in b:
                dev = leaf_dev(a[k], b[k])
                assert dev <= RTOL, (
                    f"{name} [{backend}] leaf {k!r} after step {step + 1}: "
                    f"relative deviation {dev:.2e}")


def test_sam_calls_grad_fn_exactly_twice_per_step() -> None:
    calls: list[Any] = []

    def grad_fn(p: Any) -> Any:
        calls.append(fnopt.to_numpy(p))
        return _numpy_grad_fn(p)

    opt = fnopt.sam(fnopt.sgd(0.05), rho=0.1)
    p, s = _start("numpy"), opt.init(_start("numpy"))
    for i in range(1, 6):
        p0 = fnopt.to_numpy(p)
        p, s = opt.step(p, grad_fn, s)
        assert len(calls) == 2 * i
        assert s.count == i
        # the first call is at the input, the second at the ascent point (moved by rho)
        np.testing.assert_array_equal(calls[-2]["w"], p0["w"])
        dist = np.sqrt(sum(np.sum((calls[-1][k] - p0[k]) ** 2) for k in p0))
        assert dist == pytest.approx(0.1, rel=1e-9)
        # value and grad_norm are those at the input params
        v, g = _numpy_grad_fn({k: a.copy() for k, a in p0.items()})
        assert float(s.value) == float(v)
        assert float(s.grad_norm) == pytest.approx(float(fnopt.tree.global_norm(g)), rel=1e-12)
    # in the loop: twice as many calls as a one-call optimizer makes in the same loop
    stop = fnopt.stop.max_iters(7)
    del calls[:]
    r = fnopt.fixed_point(opt, _start("numpy"), grad_fn, stop=stop)
    n_sam = len(calls)
    del calls[:]
    fnopt.fixed_point(fnopt.sgd(0.05), _start("numpy"), grad_fn, stop=stop)
    assert r.iterations == 7 and n_sam == 2 * len(calls)


def deviation_table() -> list[tuple[str, str, float, float]]:
    """(case, reference, max rel. deviation numpy, torch) for every case."""
    rows = []
    for name in ALL:
        ref_make, ours, kind = case(name)
        ref = run_reference(ref_make, kind=kind)
        devs = [max_rel_dev(run_fnopt(ours(), b, kind=kind), ref) for b in ("numpy", "torch")]
        label = (f"{PO}.SAM" if name.startswith("sam") else
                 f"{CASES[name][0][0]}.{CASES[name][0][1]}")
        rows.append((name, label, devs[0], devs[1]))
    return rows


if __name__ == "__main__":
    print("| case | reference | max rel. dev. (numpy) | max rel. dev. (torch) |")
    print("|---|---|---|---|")
    for name, label, dn, dt in deviation_table():
        print(f"| `{name}` | `{label}` | {dn:.1e} | {dt:.1e} |")
