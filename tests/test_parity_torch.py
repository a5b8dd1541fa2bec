"""fnopt's optimizers against torch.optim, step for step.

Each case runs the same objective from the same start for 50 steps with torch.optim and
with fnopt (on both backends) and compares every parameter after every step: to
rtol 1e-8 in float64 and to a looser tolerance in float32. The objective is a small
nonconvex regression on a pytree of a matrix, a vector and a scalar; both sides take
gradients from the same torch function. torch keeps some scalar state (NAdam's
``mu_product``, ASGD's ``eta``) in the *default* dtype, so the float64 runs set
torch's default dtype to float64 (fnopt keeps those scalars as Python floats).

The float32 tolerance (rtol 1e-3, atol 1e-4) is set by the problem, not by fnopt: on
the NAdam case with ``momentum_decay=0.01`` a transient instability amplifies
round-off; there torch's own float32 run leaves its float64 run by 1.3e-4 (fnopt's
float32 run by 2.2e-5), and the two float32 runs differ by 1.5e-4 (measured).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import schedules

torch = pytest.importorskip("torch")

STEPS = 50
MUON_BF16_ATOL = 2e-2
TOL = {"float64": dict(rtol=1e-8, atol=1e-12), "float32": dict(rtol=1e-3, atol=1e-4)}

# name -> (torch class, lr used in the tests)
TORCH = {
    "sgd": (torch.optim.SGD, 0.05),
    "adam": (torch.optim.Adam, 0.01),
    "adamw": (torch.optim.AdamW, 0.01),
    "adamax": (torch.optim.Adamax, 0.02),
    "nadam": (torch.optim.NAdam, 0.01),
    "radam": (torch.optim.RAdam, 0.01),
    "rmsprop": (torch.optim.RMSprop, 0.003),
    "adagrad": (torch.optim.Adagrad, 0.05),
    "adadelta": (torch.optim.Adadelta, 1.0),
    "asgd": (torch.optim.ASGD, 0.05),
    "rprop": (torch.optim.Rprop, 0.01),
    "adafactor": (torch.optim.Adafactor, 0.01),
}

# (optimizer, fnopt keyword arguments): a grid over each optimizer's options
CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    ("sgd", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.05, "maximize": True}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 0.1, "b1": 0.8, "b2": 0.99, "eps": 1e-6}),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "amsgrad": True}),
    ("adam", {"maximize": True, "weight_decay": 0.05}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.2, "amsgrad": True}),
    ("adamw", {"maximize": True}),
    ("adamax", {}),
    ("adamax", {"weight_decay": 0.1, "b1": 0.5, "eps": 1e-4}),
    ("adamax", {"maximize": True}),
    ("nadam", {}),
    ("nadam", {"momentum_decay": 0.01, "weight_decay": 0.1, "b1": 0.8}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("radam", {}),
    ("radam", {"weight_decay": 0.1, "b2": 0.99}),
    ("radam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9, "decay": 0.9}),
    ("rmsprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.1, "eps": 1e-4}),
    ("rmsprop", {"maximize": True}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.05}),
    ("adagrad", {"initial_accumulator_value": 0.5, "weight_decay": 0.1, "eps": 1e-6}),
    ("adagrad", {"maximize": True, "lr_decay": 0.01}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.5, "weight_decay": 0.1, "eps": 1e-4}),
    ("adadelta", {"maximize": True}),
    ("asgd", {}),
    ("asgd", {"lambd": 0.1, "alpha": 0.5, "t0": 10, "weight_decay": 0.1}),
    ("asgd", {"t0": 5, "maximize": True}),
    ("rprop", {}),
    ("rprop", {"etas": (0.3, 1.5), "step_sizes": (1e-4, 0.02)}),
    ("rprop", {"maximize": True}),
    ("adafactor", {}),
    ("adafactor", {"beta2_decay": -0.5, "d": 2.0, "weight_decay": 0.1}),
    ("adafactor", {"learning_rate": 0.5, "eps": (1e-8, 1e-2)}),  # rho_t = 1/sqrt(t) branch
    ("adafactor", {"maximize": True, "weight_decay": 0.05}),
]

# fnopt name -> torch name, where they differ
RENAME = {"learning_rate": "lr", "decay": "alpha"}


def torch_kwargs(name: str, kw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in kw.items():
        if k in ("b1", "b2"):
            continue
        out[RENAME.get(k, k)] = v
    if "b1" in kw or "b2" in kw:
        cls = TORCH[name][0]
        d1, d2 = inspect.signature(cls.__init__).parameters["betas"].default
        out["betas"] = (kw.get("b1", d1), kw.get("b2", d2))
    return out


# -- the objective ---------------------------------------------------------------------

_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((16, 3))
Y = _RNG.standard_normal((16, 4))
P0 = {
    "w": _RNG.standard_normal((3, 4)) * 0.5,
    "b": _RNG.standard_normal(4) * 0.1,
    "s": np.array(0.7),
}


def loss_t(p: dict[str, Any], sign: float = 1.0) -> Any:
    x = torch.as_tensor(X, dtype=p["w"].dtype)
    y = torch.as_tensor(Y, dtype=p["w"].dtype)
    r = torch.tanh(x @ p["w"] + p["b"]) * p["s"] - y
    return sign * ((r * r).mean() + 0.05 * (p["s"] - 1.5) ** 2 + 0.01 * (p["w"] ** 4).sum())


def grad_fn_for(backend: str, sign: float, loss: Any = loss_t) -> Any:
    def torch_grad(p: dict[str, Any]) -> tuple[Any, Any]:
        q = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
        val = loss(q, sign)
        gs = torch.autograd.grad(val, list(q.values()))
        return val.detach(), {k: g for k, g in zip(q, gs)}

    if backend == "torch":
        return torch_grad

    def numpy_grad(p: dict[str, Any]) -> tuple[Any, Any]:
        val, g = torch_grad({k: torch.from_numpy(v) for k, v in p.items()})
        return val.numpy(), {k: v.numpy() for k, v in g.items()}

    return numpy_grad


def start(backend: str, dtype: str) -> dict[str, Any]:
    p = {k: np.asarray(v, dtype=dtype) for k, v in P0.items()}
    return {k: torch.from_numpy(v.copy()) for k, v in p.items()} if backend == "torch" else p


def as_np(x: Any) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@contextlib.contextmanager
def default_dtype(dtype: str) -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def torch_run(
    make: Any, dtype: str, sign: float, steps: int = STEPS, clip: float | None = None,
    scheduler: Any = None,
) -> tuple[list[dict[str, np.ndarray]], list[float], Any]:
    """Params after each step, the lr used at each step, and the optimizer."""
    with default_dtype(dtype):
        ps = {
            k: torch.tensor(np.asarray(v, dtype=dtype), requires_grad=True)
            for k, v in P0.items()
        }
        opt = make(list(ps.values()))
        sched = scheduler(opt) if scheduler is not None else None
        traj, lrs = [], []
        for _ in range(steps):
            opt.zero_grad()
            loss_t(ps, sign).backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(list(ps.values()), clip)
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None:
                sched.step()
            traj.append({k: v.detach().numpy().copy() for k, v in ps.items()})
    return traj, lrs, opt


def fnopt_run(
    opt: fnopt.Optimizer, backend: str, dtype: str, sign: float, steps: int = STEPS
) -> tuple[list[dict[str, np.ndarray]], list[float | None], Any]:
    params = start(backend, dtype)
    state = opt.init(params)
    grad_fn = grad_fn_for(backend, sign)
    traj, lrs = [], []
    for _ in range(steps):
        params, state = opt.step(params, grad_fn, state)
        traj.append({k: as_np(v).copy() for k, v in params.items()})
        lrs.append(fnopt.learning_rate_of(state))
    return traj, lrs, state


def assert_same_trajectory(ours: list[Any], ref: list[Any], dtype: str) -> None:
    assert len(ours) == len(ref)
    for k, (a, b) in enumerate(zip(ours, ref)):
        for name in b:
            assert a[name].dtype == b[name].dtype
            np.testing.assert_allclose(
                a[name], b[name], **TOL[dtype], err_msg=f"leaf {name!r} after step {k + 1}"
            )


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, kw = case
    return name + ("-" + "-".join(f"{k}={v}" for k, v in kw.items()) if kw else "")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_matches_torch_optim(case: tuple[str, dict[str, Any]], backend: str, dtype: str) -> None:
    name, kw = case
    cls, lr = TORCH[name]
    kw = {"learning_rate": lr, **kw}
    # maximize: both sides maximise the negated loss, so the run still goes downhill
    sign = -1.0 if kw.get("maximize") else 1.0
    ref, _, _ = torch_run(lambda ps: cls(ps, **torch_kwargs(name, kw)), dtype, sign)
    ours, _, _ = fnopt_run(getattr(fnopt, name)(**kw), backend, dtype, sign)
    assert_same_trajectory(ours, ref, dtype)
    # the run moved: the comparison is not between two unchanged starts
    assert np.abs(ours[-1]["w"] - P0["w"]).max() > 1e-3


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_asgd_average_matches_torch_ax(backend: str) -> None:
    kw = {"learning_rate": 0.05, "t0": 10}
    _, _, topt = torch_run(lambda ps: torch.optim.ASGD(ps, lr=0.05, t0=10), "float64", 1.0)
    _, _, state = fnopt_run(fnopt.asgd(**kw), backend, "float64", 1.0)
    avg = state.inner[-1].average
    ax = [topt.state[p]["ax"].numpy() for p in topt.param_groups[0]["params"]]
    for name, a in zip(["w", "b", "s"], ax):
        np.testing.assert_allclose(as_np(avg[name]), a, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_clip_by_global_norm_then_adam_matches_clip_grad_norm(backend: str, dtype: str) -> None:
    c, lr = 0.3, 0.02
    ref, _, _ = torch_run(lambda ps: torch.optim.Adam(ps, lr=lr), dtype, 1.0, clip=c)
    opt = fnopt.descent(
        fnopt.chain(
            fnopt.clip_by_global_norm(c, eps=1e-6),  # torch.nn.utils.clip_grad_norm_'s rule
            fnopt.scale_by_adam(), fnopt.scale_by_learning_rate(lr),
        )
    )
    ours, _, _ = fnopt_run(opt, backend, dtype, 1.0)
    assert_same_trajectory(ours, ref, dtype)


def test_clipping_was_active() -> None:
    # the clip threshold of the test above is below the gradient norm at the start
    _, g = grad_fn_for("numpy", 1.0)(start("numpy", "float64"))
    assert float(fnopt.tree.global_norm(g)) > 0.3


SCHEDULED = [
    (
        "adam-exponential",
        lambda: fnopt.adam(schedules.exponential_decay(0.02, 1, 0.95)),
        lambda ps: torch.optim.Adam(ps, lr=0.02),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.95),
    ),
    (
        "sgd-cosine",
        lambda: fnopt.sgd(schedules.cosine_decay(0.05, STEPS, alpha=0.1), momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=0.005),
    ),
    (
        "rmsprop-multistep",
        lambda: fnopt.rmsprop(schedules.piecewise_constant(0.003, {10: 0.5, 30: 0.5})),
        lambda ps: torch.optim.RMSprop(ps, lr=0.003),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[10, 30], gamma=0.5),
    ),
    (
        "adagrad-lr_decay-linear",
        lambda: fnopt.adagrad(schedules.linear(0.05, 0.01, 40), lr_decay=0.01),
        lambda ps: torch.optim.Adagrad(ps, lr=0.05, lr_decay=0.01),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.2, total_iters=40),
    ),
]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", SCHEDULED, ids=[c[0] for c in SCHEDULED])
def test_schedules_match_torch_lr_scheduler(case: Any, backend: str) -> None:
    _, make_ours, make_torch, make_sched = case
    ref, ref_lrs, _ = torch_run(make_torch, "float64", 1.0, scheduler=make_sched)
    ours, our_lrs, _ = fnopt_run(make_ours(), backend, "float64", 1.0)
    assert_same_trajectory(ours, ref, "float64")
    if case[0].startswith("adagrad"):
        # Adagrad divides torch's scheduled lr by (1 + t * lr_decay); the state records both
        ref_lrs = [lr / (1 + t * 0.01) for t, lr in enumerate(ref_lrs)]
    np.testing.assert_allclose(our_lrs, ref_lrs, rtol=1e-12)


# -- Lion: against the paper's algorithm, written out ----------------------------------


def lion_paper(
    params: dict[str, np.ndarray], grad: Any, lr: float, b1: float, b2: float, wd: float,
    steps: int,
) -> list[dict[str, np.ndarray]]:
    """Chen et al. 2023, Algorithm 2, element by element."""
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    out = []
    for _ in range(steps):
        _, g = grad(p)
        for k in p:
            c = b1 * m[k] + (1 - b1) * g[k]
            p[k] = np.asarray(p[k] - lr * (np.sign(c) + wd * p[k]))
            m[k] = b2 * m[k] + (1 - b2) * g[k]
        out.append({k: v.copy() for k, v in p.items()})
    return out


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kw", [{}, {"b1": 0.5, "b2": 0.9, "weight_decay": 0.3}])
def test_lion_matches_paper(backend: str, kw: dict[str, Any]) -> None:
    lr = 0.01
    full = {"b1": 0.9, "b2": 0.99, "weight_decay": 0.0, **kw}
    ref = lion_paper(
        start("numpy", "float64"), grad_fn_for("numpy", 1.0), lr,
        full["b1"], full["b2"], full["weight_decay"], STEPS,
    )
    ours, _, _ = fnopt_run(fnopt.lion(lr, **kw), backend, "float64", 1.0)
    assert_same_trajectory(ours, ref, "float64")


# -- defaults are torch's -----------------------------------------------------------------

# fnopt argument -> how to read torch's default
_TORCH_DEFAULT_NAMES = {"learning_rate": "lr", "decay": "alpha"}


@pytest.mark.parametrize("name", sorted(TORCH))
def test_defaults_are_torch_defaults(name: str) -> None:
    ours = inspect.signature(getattr(fnopt, name)).parameters
    theirs = inspect.signature(TORCH[name][0].__init__).parameters
    checked = 0
    for arg, p in ours.items():
        if arg in ("b1", "b2"):
            default = theirs["betas"].default[0 if arg == "b1" else 1]
        else:
            targ = _TORCH_DEFAULT_NAMES.get(arg, arg)
            if targ not in theirs:
                continue
            default = theirs[targ].default
        assert p.default == default, f"{name}({arg}=...): fnopt {p.default!r}, torch {default!r}"
        checked += 1
    assert checked >= 2


# -- Muon: torch's algorithm, its Newton-Schulz in full precision ---------------------

MP0 = {"w": _RNG.standard_normal((4, 3)) * 0.5, "v": _RNG.standard_normal((2, 5)) * 0.5}
MX = _RNG.standard_normal((6, 4))
MY = _RNG.standard_normal((6, 5))


def loss_m(p: dict[str, Any], sign: float = 1.0) -> Any:
    x = torch.as_tensor(MX, dtype=p["w"].dtype)
    y = torch.as_tensor(MY, dtype=p["w"].dtype)
    r = torch.tanh(x @ p["w"]) @ p["v"][:, :3].T @ p["v"] - y
    return sign * ((r * r).mean() + 0.01 * (p["w"] ** 4).sum())


def ns_full_precision(grad: Any, ns_coefficients: Any, ns_steps: int, eps: float) -> Any:
    """``torch.optim._muon._zeropower_via_newtonschulz`` without its bfloat16 cast."""
    a, b, c = ns_coefficients
    tall = grad.size(0) > grad.size(1)
    x = grad.T if tall else grad
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


MUON_CASES = [
    {},
    {"nesterov": False, "momentum": 0.9, "weight_decay": 0.0},
    {"adjust_lr_fn": "match_rms_adamw", "ns_steps": 3, "eps": 1e-5, "weight_decay": 0.3},
]


def muon_runs(
    kw: dict[str, Any], backend: str, dtype: str, steps: int = STEPS
) -> tuple[list[Any], list[Any]]:
    tkw = {RENAME.get(k, k): v for k, v in kw.items()}
    with default_dtype(dtype):
        ps = {k: torch.tensor(np.asarray(v, dtype=dtype), requires_grad=True)
              for k, v in MP0.items()}
        opt = torch.optim.Muon(list(ps.values()), **tkw)
        ref = []
        for _ in range(steps):
            opt.zero_grad()
            loss_m(ps).backward()
            opt.step()
            ref.append({k: v.detach().numpy().copy() for k, v in ps.items()})
    ours_opt = fnopt.muon(**kw)
    p = {k: np.asarray(v, dtype=dtype) for k, v in MP0.items()}
    if backend == "torch":
        p = {k: torch.from_numpy(v.copy()) for k, v in p.items()}
    s = ours_opt.init(p)
    gf = grad_fn_for(backend, 1.0, loss_m)
    ours = []
    for _ in range(steps):
        p, s = ours_opt.step(p, gf, s)
        ours.append({k: as_np(v).copy() for k, v in p.items()})
    return ours, ref


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kw", MUON_CASES, ids=range(len(MUON_CASES)))
def test_muon_matches_torch_with_full_precision_newton_schulz(
    kw: dict[str, Any], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch.optim._muon as tm

    monkeypatch.setattr(tm, "_zeropower_via_newtonschulz", ns_full_precision)
    ours, ref = muon_runs({"learning_rate": 0.02, **kw}, backend, "float64")
    assert_same_trajectory(ours, ref, "float64")
    assert np.abs(ours[-1]["w"] - MP0["w"]).max() > 1e-2


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_muon_close_to_torch_bfloat16(backend: str) -> None:
    # unpatched torch orthogonalises in bfloat16 (8-bit mantissa): agreement to ~1e-2
    ours, ref = muon_runs({"learning_rate": 0.02}, backend, "float32", steps=20)
    for a, b in zip(ours, ref):
        for k in b:
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=MUON_BF16_ATOL)


# -- LAMB, LARS, AdaBelief: against their papers' algorithms, written out ------------------


def _norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(x * x)))


def lamb_paper(p: dict[str, np.ndarray], g: dict[str, np.ndarray], st: dict[str, Any],
               t: int, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
               wd: float = 0.0) -> dict[str, np.ndarray]:
    """You et al. 2020, Algorithm 2 (phi = identity), per leaf ("layer")."""
    out = {}
    for k in p:
        st.setdefault(k, [np.zeros_like(p[k]), np.zeros_like(p[k])])
        m, v = st[k]
        m = b1 * m + (1 - b1) * g[k]
        v = b2 * v + (1 - b2) * g[k] ** 2
        st[k] = [m, v]
        r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        d = r + wd * p[k]
        pn, dn = _norm(p[k]), _norm(d)
        ratio = pn / dn if pn > 0 and dn > 0 else 1.0
        out[k] = np.asarray(p[k] - lr * ratio * d)
    return out


def lars_paper(p: dict[str, np.ndarray], g: dict[str, np.ndarray], st: dict[str, Any],
               t: int, lr: float, wd: float = 0.0, tc: float = 1e-3, mu: float = 0.9,
               nesterov: bool = False) -> dict[str, np.ndarray]:
    """You et al. 2017, Algorithm 1 (local lr = tc |p| / |g + wd p|), per leaf."""
    out = {}
    for k in p:
        d = g[k] + wd * p[k]
        pn, dn = _norm(p[k]), _norm(d)
        ratio = tc * pn / dn if pn > 0 and dn > 0 else 1.0
        d = lr * ratio * d
        buf = mu * st.get(k, 0.0) + d
        st[k] = buf
        out[k] = np.asarray(p[k] - (d + mu * buf if nesterov else buf))
    return out


def adabelief_paper(p: dict[str, np.ndarray], g: dict[str, np.ndarray], st: dict[str, Any],
                    t: int, lr: float, b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-16, wd: float = 0.0,
                    decoupled: bool = False) -> dict[str, np.ndarray]:
    """Zhuang et al. 2020, Algorithm 2."""
    out = {}
    for k in p:
        st.setdefault(k, [np.zeros_like(p[k]), np.zeros_like(p[k])])
        m, s = st[k]
        gk = g[k] if decoupled else g[k] + wd * p[k]
        m = b1 * m + (1 - b1) * gk
        s = b2 * s + (1 - b2) * (gk - m) ** 2 + eps
        st[k] = [m, s]
        step = lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
        out[k] = np.asarray(p[k] * (1 - lr * wd if decoupled else 1.0) - step)
    return out


PAPERS = [
    ("lamb", {"learning_rate": 0.02}, lamb_paper, {"lr": 0.02}),
    ("lamb", {"learning_rate": 0.02, "b1": 0.8, "eps": 1e-8, "weight_decay": 0.1},
     lamb_paper, {"lr": 0.02, "b1": 0.8, "eps": 1e-8, "wd": 0.1}),
    ("lars", {"learning_rate": 5.0}, lars_paper, {"lr": 5.0}),
    ("lars", {"learning_rate": 5.0, "weight_decay": 0.1, "trust_coefficient": 0.01,
              "momentum": 0.5, "nesterov": True},
     lars_paper, {"lr": 5.0, "wd": 0.1, "tc": 0.01, "mu": 0.5, "nesterov": True}),
    ("adabelief", {"learning_rate": 0.01}, adabelief_paper, {"lr": 0.01}),
    ("adabelief", {"learning_rate": 0.01, "weight_decay": 0.1, "eps": 1e-12},
     adabelief_paper, {"lr": 0.01, "wd": 0.1, "eps": 1e-12}),
    ("adabelief", {"learning_rate": 0.01, "weight_decay": 0.1,
                   "decoupled_weight_decay": True},
     adabelief_paper, {"lr": 0.01, "wd": 0.1, "decoupled": True}),
]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", PAPERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(PAPERS)])
def test_matches_the_papers_algorithm(case: Any, backend: str) -> None:
    name, kw, ref_step, ref_kw = case
    grad = grad_fn_for("numpy", 1.0)
    p, st, ref = start("numpy", "float64"), {}, []
    for t in range(1, STEPS + 1):
        p = ref_step(p, grad(p)[1], st, t, **ref_kw)
        ref.append(p)
    ours, _, _ = fnopt_run(getattr(fnopt, name)(**kw), backend, "float64", 1.0)
    assert_same_trajectory(ours, ref, "float64")
    assert np.abs(ours[-1]["w"] - P0["w"]).max() > 1e-3
