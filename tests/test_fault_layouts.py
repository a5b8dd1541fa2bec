"""Every memory layout gives the contiguous run's numbers, on every path.

Issue 19, item 1: torch's fused kernels walk each tensor as one flat run of memory, so a
gradient laid out differently from its parameter (the hand-written ``(X.T @ R).T`` of an
``nn.Linear``-shaped weight, a channels_last tensor) was updated element-mixed. The fused
kernels now run only where :meth:`fnopt.backend.Backend.can_fuse` says they are correct
for the very tensors they get; everything else takes the generic path.

The table: every first-order optimizer torch.optim also has (with a few option sets) ×
layouts of the params and of the gradient (contiguous, transposed, permuted, channels_last,
sliced/strided, expanded (stride-0) gradients; on NumPy also F-order and negative
strides) × path (``opt.step`` repeated; ``fixed_point``'s loop-owned buffers; the
caller donating its params with ``opt.apply(..., out=params)``). Each run is compared
with the all-contiguous run (float64, tight) and with torch.optim (``foreach=False``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import backend

torch = pytest.importorskip("torch")

STEPS = 5
TIGHT = dict(rtol=1e-10, atol=1e-12)  # layout run vs the contiguous run
PARITY = dict(rtol=1e-8, atol=1e-10)  # vs torch.optim

# label -> (fnopt factory, its kwargs, torch.optim class, its kwargs)
OPTIMIZERS: dict[str, tuple[Callable[..., Any], dict[str, Any], Any, dict[str, Any]]] = {
    "sgd": (fnopt.sgd, {}, torch.optim.SGD, {}),
    "sgd_momentum": (fnopt.sgd, {"momentum": 0.9}, torch.optim.SGD, {"momentum": 0.9}),
    "sgd_nesterov": (fnopt.sgd, {"momentum": 0.9, "nesterov": True}, torch.optim.SGD,
                     {"momentum": 0.9, "nesterov": True}),
    "sgd_decay": (fnopt.sgd, {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1},
                  torch.optim.SGD, {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    "adam": (fnopt.adam, {}, torch.optim.Adam, {}),
    "adam_decay": (fnopt.adam, {"weight_decay": 0.1}, torch.optim.Adam, {"weight_decay": 0.1}),
    "amsgrad": (fnopt.adam, {"amsgrad": True}, torch.optim.Adam, {"amsgrad": True}),
    "adamw": (fnopt.adamw, {"weight_decay": 0.1}, torch.optim.AdamW, {"weight_decay": 0.1}),
    "adamw_amsgrad": (fnopt.adamw, {"amsgrad": True}, torch.optim.AdamW, {"amsgrad": True}),
    "adagrad": (fnopt.adagrad, {}, torch.optim.Adagrad, {}),
    "adagrad_decay": (fnopt.adagrad, {"weight_decay": 0.1}, torch.optim.Adagrad,
                      {"weight_decay": 0.1}),
    "rmsprop": (fnopt.rmsprop, {}, torch.optim.RMSprop, {}),
    "rmsprop_centered": (fnopt.rmsprop, {"centered": True, "momentum": 0.5},
                         torch.optim.RMSprop, {"centered": True, "momentum": 0.5}),
    "adadelta": (fnopt.adadelta, {}, torch.optim.Adadelta, {}),
    "adamax": (fnopt.adamax, {}, torch.optim.Adamax, {}),
    "nadam": (fnopt.nadam, {}, torch.optim.NAdam, {}),
    "radam": (fnopt.radam, {}, torch.optim.RAdam, {}),
    "asgd": (fnopt.asgd, {}, torch.optim.ASGD, {}),
    "rprop": (fnopt.rprop, {}, torch.optim.Rprop, {}),
}
LR = 0.05


def make_opt(label: str) -> Any:
    factory, kw, _, _ = OPTIMIZERS[label]
    return factory(LR, **kw)


# -- layouts: the same values, other strides ----------------------------------------------
# Each takes a contiguous array and returns one with equal values (and shape) laid out
# otherwise. The shape of the weight each layout needs:
SHAPES = {"transposed": (3, 4), "permuted": (2, 3, 4), "channels_last": (2, 3, 2, 2),
          "sliced": (3, 4), "expanded": (3, 4), "contiguous": (3, 4), "f_order": (2, 3, 4),
          "negative": (3, 4)}


def _sliced(x: Any) -> Any:
    """``x`` as every other element of a larger zero array (strided, with gaps)."""
    idx = tuple(slice(None, None, 2) for _ in x.shape)
    if isinstance(x, np.ndarray):
        big = np.zeros(tuple(2 * n for n in x.shape))
    else:
        big = x.new_zeros(tuple(2 * n for n in x.shape))
    big[idx] = x
    return big[idx]


TORCH_LAYOUTS: dict[str, Callable[[Any], Any]] = {
    "contiguous": lambda x: x.clone(),
    "transposed": lambda x: x.T.contiguous().T,  # as (X.T @ R).T
    "permuted": lambda x: x.permute(2, 0, 1).contiguous().permute(1, 2, 0),
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "sliced": _sliced,
}
NUMPY_LAYOUTS: dict[str, Callable[[Any], Any]] = {
    "contiguous": lambda x: x.copy(),
    "transposed": lambda x: x.T.copy().T,
    "f_order": np.asfortranarray,
    "negative": lambda x: x[::-1, ::-1].copy()[::-1, ::-1],
    "sliced": _sliced,
}


def _cases(layouts: dict[str, Any]) -> list[tuple[str, str]]:
    """(params layout, grads layout): each layout for the params, the gradient, both;
    and an expanded (stride-0) gradient."""
    out = [("contiguous", "contiguous"), ("contiguous", "expanded"), ("sliced", "expanded")]
    for name in layouts:
        if name != "contiguous":
            out += [(name, "contiguous"), ("contiguous", name), (name, name)]
    return out


CASES = [("torch", p, g) for p, g in _cases(TORCH_LAYOUTS)] + [
    ("numpy", p, g) for p, g in _cases(NUMPY_LAYOUTS)
]


def _shape(p_layout: str, g_layout: str) -> tuple[int, ...]:
    return SHAPES[p_layout if p_layout != "contiguous" else g_layout]


# -- the objective ------------------------------------------------------------------------
# f(w, b) = sum(c (w - t)^2) + sum((b - u)^2), or (expanded gradients) the linear
# sum(w * r) + sum((b - u)^2), whose gradient in w is the row r broadcast (stride 0).


@functools.cache
def _data(shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(len(shape) * 7 + shape[-1])
    return {
        "w0": rng.standard_normal(shape), "c": rng.uniform(0.5, 2.0, shape),
        "t": rng.standard_normal(shape), "r": rng.standard_normal((1, *shape[1:])),
        "b0": rng.standard_normal(3), "u": rng.standard_normal(3),
    }


def _loss_torch(w: Any, b: Any, d: dict[str, Any], linear: bool) -> Any:
    head = (w * d["r"]).sum() if linear else (d["c"] * (w - d["t"]) ** 2).sum()
    return head + ((b - d["u"]) ** 2).sum()


def _grad_fn(be: str, shape: tuple[int, ...], g_layout: str) -> Callable[..., Any]:
    """``grad_fn`` on ``{"w", "b"}`` returning the w-gradient in ``g_layout``."""
    raw = _data(shape)
    linear = g_layout == "expanded"
    relayout = (NUMPY_LAYOUTS if be == "numpy" else TORCH_LAYOUTS).get(g_layout)
    if be == "numpy":
        d = raw
        expanded = np.broadcast_to(d["r"], shape)  # read-only, stride 0
    else:
        d = {k: torch.tensor(v) for k, v in raw.items()}
        expanded = d["r"].expand(shape)

    def grad_fn(params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        w, b = params["w"], params["b"]
        if linear:
            value, gw = (w * d["r"]).sum(), expanded
        else:
            diff = w - d["t"]
            value, gw = (d["c"] * diff**2).sum(), relayout(_contig(2 * d["c"] * diff))
        value = value + ((b - d["u"]) ** 2).sum()
        return value, {"w": gw, "b": 2 * (b - d["u"])}

    return grad_fn


def _contig(x: Any) -> Any:
    return np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x.contiguous()


def _params(be: str, shape: tuple[int, ...], p_layout: str) -> dict[str, Any]:
    d = _data(shape)
    if be == "numpy":
        return {"w": NUMPY_LAYOUTS[p_layout](d["w0"].copy()), "b": d["b0"].copy()}
    return {"w": TORCH_LAYOUTS[p_layout](torch.tensor(d["w0"])), "b": torch.tensor(d["b0"])}


# -- the three paths ----------------------------------------------------------------------


def _run(label: str, path: str, params: dict[str, Any], grad_fn: Any) -> tuple[Any, int]:
    """The params after ``STEPS`` updates on ``path``, and the number of updates."""
    opt = make_opt(label)
    if path == "loop":
        res = fnopt.fixed_point(opt, params, grad_fn, stop=fnopt.stop.max_iters(STEPS))
        return res.params, res.iterations
    state = opt.init(params)
    if path == "donate":  # the caller gives its own arrays up
        params = fnopt.tree.clone(params)
        for _ in range(STEPS):
            value, grads = grad_fn(params)
            out, state = opt.apply(params, value, grads, state, out=params)
            assert out is params
        return params, STEPS
    for _ in range(STEPS):
        params, state = opt.step(params, grad_fn, state)
    return params, STEPS


@functools.cache
def _torch_reference(label: str, shape: tuple[int, ...], linear: bool, steps: int) -> Any:
    """torch.optim's params after ``steps`` steps (foreach=False), as NumPy."""
    _, _, cls, kw = OPTIMIZERS[label]
    d = {k: torch.tensor(v) for k, v in _data(shape).items()}
    w = d["w0"].clone().requires_grad_(True)
    b = d["b0"].clone().requires_grad_(True)
    opt = cls([w, b], lr=LR, foreach=False, **kw)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # NAdam's and ASGD's scalar state
    try:
        for _ in range(steps):
            opt.zero_grad()
            _loss_torch(w, b, d, linear).backward()
            opt.step()
    finally:
        torch.set_default_dtype(default)
    return w.detach().numpy(), b.detach().numpy()


@functools.cache
def _contiguous_run(label: str, path: str, be: str, shape: tuple[int, ...],
                    linear: bool) -> tuple[dict[str, np.ndarray], int]:
    """The all-contiguous run (the reference of each layout), as NumPy."""
    grads = "expanded" if linear else "contiguous"
    got, n = _run(label, path, _params(be, shape, "contiguous"), _grad_fn(be, shape, grads))
    return {k: _np(v) for k, v in got.items()}, n


def _np(x: Any) -> np.ndarray:
    return backend.to_numpy(x, copy=True)


@pytest.mark.parametrize(("be", "p_layout", "g_layout"), CASES,
                         ids=[f"{b}-{p}-{g}" for b, p, g in CASES])
@pytest.mark.parametrize("label", list(OPTIMIZERS))
def test_every_layout_gives_the_contiguous_run(
    label: str, be: str, p_layout: str, g_layout: str
) -> None:
    shape = _shape(p_layout, g_layout)
    linear = g_layout == "expanded"
    for path in ("step", "loop", "donate"):
        params = _params(be, shape, p_layout)
        before = {k: _np(v) for k, v in params.items()}
        got, n = _run(label, path, params, _grad_fn(be, shape, g_layout))
        ref, n_ref = _contiguous_run(label, path, be, shape, linear)
        assert n == n_ref == STEPS, path
        assert tuple(got["w"].shape) == shape, path  # the caller's shapes
        for k in ("w", "b"):
            np.testing.assert_allclose(_np(got[k]), ref[k], **TIGHT, err_msg=f"{path} {k}")
        tw, tb = _torch_reference(label, shape, linear, n)
        np.testing.assert_allclose(_np(got["w"]), tw, **PARITY, err_msg=f"{path} vs torch.optim")
        np.testing.assert_allclose(_np(got["b"]), tb, **PARITY, err_msg=f"{path} vs torch.optim")
        if path != "donate":  # the caller's params are never written
            for k, v in params.items():
                np.testing.assert_array_equal(_np(v), before[k], err_msg=f"{path} mutated {k}")


# -- the predicate: what the kernels require, decided in one place --------------------------


def _t(*shape: int) -> Any:
    return torch.randn(*shape, dtype=torch.float64)


def _roles(p: Any, g: Any, *bufs: Any) -> list[list[Any]]:
    return [[p], [g], *([b] for b in bufs)]


def _good_cases() -> dict[str, list[list[Any]]]:
    p = _t(3, 4)
    pt = _t(4, 3).T
    cl = _t(2, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    perm = _t(4, 2, 3).permute(1, 2, 0)
    col = _t(1, 4).T  # (4, 1) with stride (1, 1): contiguous in memory
    return {
        "contiguous": _roles(p, _t(3, 4), _t(3, 4), _t(3, 4)),
        "all transposed": _roles(pt, _t(4, 3).T, torch.zeros_like(pt), torch.zeros_like(pt)),
        "all channels_last": _roles(cl, torch.randn_like(cl), torch.zeros_like(cl)),
        "all permuted": _roles(perm, torch.randn_like(perm), torch.zeros_like(perm)),
        "size-1 dims, other strides": _roles(col, _t(4, 1), _t(4, 1)),
        "a Parameter": _roles(torch.nn.Parameter(_t(3), requires_grad=False), _t(3)),
        "several leaves": [[_t(2), _t(3, 2)], [_t(2), _t(3, 2)], [_t(2), _t(3, 2)]],
        "empty leaf": [[_t(0), _t(2)], [_t(0), _t(2)]],
    }


def _bad_cases() -> dict[str, list[list[Any]]]:
    p = _t(3, 4)
    big = _t(6, 8)
    flat = _t(24)
    return {
        "transposed grad (X.T @ R).T": _roles(p, _t(4, 3).T, _t(3, 4), _t(3, 4)),
        "channels_last grad": _roles(
            _t(2, 3, 2, 2), _t(2, 3, 2, 2).contiguous(memory_format=torch.channels_last)),
        "transposed state buffer": _roles(p, _t(3, 4), _t(4, 3).T),
        "sliced everywhere (gaps)": _roles(big[::2, ::2], _t(6, 8)[::2, ::2], _t(6, 8)[::2, ::2]),
        "expanded grad (stride 0)": _roles(p, _t(1, 4).expand(3, 4), _t(3, 4)),
        "grad is the params": _roles(p, p, _t(3, 4)),
        "grad shares the params' memory": _roles(p, p.detach().view(3, 4), _t(3, 4)),
        "grad is a state buffer": _roles(p, (m := _t(3, 4)), m),
        "partial overlap": _roles(flat[:12].view(3, 4), flat[8:20].view(3, 4)),
        "one buffer for two leaves": [[_t(2), _t(2)], [_t(2), _t(2)], [(b := _t(2)), b]],
        "dtype differs": _roles(p, _t(3, 4).float()),
        "shape differs": _roles(p, _t(4, 3)),
        "recorded by autograd": _roles(_t(3, 4).requires_grad_(), _t(3, 4)),
        "lazily negated": _roles(p, torch._neg_view(_t(3, 4))),
        "integer tensors": _roles(torch.zeros(3, dtype=torch.int64),
                                  torch.zeros(3, dtype=torch.int64)),
        "complex tensors": _roles(torch.zeros(3, dtype=torch.complex128),
                                  torch.zeros(3, dtype=torch.complex128)),
        "sparse grad": _roles(p, _t(3, 4).to_sparse()),
        "lists of other lengths": [[_t(2), _t(2)], [_t(2)]],
        "no leaves": [[], []],
        "meta device": _roles(torch.zeros(3, device="meta"), torch.zeros(3, device="meta")),
    }


@pytest.mark.parametrize("case", list(_good_cases()))
def test_can_fuse_accepts_what_the_kernels_read_correctly(case: str) -> None:
    assert backend.TORCH.can_fuse(*_good_cases()[case])


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_can_fuse_refuses_what_the_kernels_would_get_wrong(case: str) -> None:
    assert not backend.TORCH.can_fuse(*_bad_cases()[case])


def test_can_fuse_is_false_for_numpy() -> None:
    a = np.zeros(3)
    assert not backend.NUMPY.can_fuse([a], [np.ones(3)])


def test_overlaps_sees_memory_not_identity() -> None:
    flat = _t(10)
    assert backend.TORCH.overlaps([flat[:5]], [flat[4:]])
    assert not backend.TORCH.overlaps([flat[:5]], [flat[5:]])
    assert backend.TORCH.overlaps([flat], [flat.detach()])
    assert backend.TORCH.overlaps([flat, flat[:2]], [flat[5:6]])  # inside the first
    assert backend.TORCH.overlaps([flat[::2]], [flat[1::2]])  # interleaved: conservative
    assert not backend.TORCH.overlaps([flat[:0]], [flat])  # empty: no memory
    a = np.arange(10.0)
    assert backend.NUMPY.overlaps([a[::-1]], [a[:1]])
    assert not backend.NUMPY.overlaps([a[:5]], [a[5:], np.float64(1.0)])


# -- the fused kernels still run where they are correct (a spy on the torch backend) --------


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"fused_adam_": 0, "fused_sgd_": 0, "fused_adagrad_": 0}
    for name in calls:
        real = getattr(backend.TORCH, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls[_name] += 1
            return _real(*args, **kw)

        monkeypatch.setattr(backend.TORCH, name, counted)
    return calls


KERNELS = {"adam": "fused_adam_", "adamw": "fused_adam_", "amsgrad": "fused_adam_",
           "sgd_momentum": "fused_sgd_", "sgd_nesterov": "fused_sgd_",
           "adagrad": "fused_adagrad_"}


@pytest.mark.parametrize("label", list(KERNELS))
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "channels_last"])
def test_fused_kernel_runs_on_matching_layouts(
    label: str, layout: str, kernel_calls: dict[str, int]
) -> None:
    """Params and gradients of one dense layout (plain tensors, or a whole model in
    channels_last) keep the fused kernel on every path."""
    shape = SHAPES[layout]
    for path in ("step", "loop", "donate"):
        before = kernel_calls[KERNELS[label]]
        _run(label, path, _params("torch", shape, layout), _grad_fn("torch", shape, layout))
        assert kernel_calls[KERNELS[label]] - before == STEPS, (path, kernel_calls)


@pytest.mark.parametrize("label", list(KERNELS))
def test_fused_kernel_is_skipped_for_a_mismatched_gradient(
    label: str, kernel_calls: dict[str, int]
) -> None:
    shape = SHAPES["transposed"]
    _run(label, "step", _params("torch", shape, "contiguous"),
         _grad_fn("torch", shape, "transposed"))
    assert kernel_calls[KERNELS[label]] == 0


# -- the case: an nn.Linear-shaped weight, its hand-written gradient ---------------


@pytest.mark.parametrize("label", ["adam", "adamw", "adagrad", "sgd_momentum"])
@pytest.mark.parametrize("path", ["step", "loop"])
def test_linear_weight_with_transposed_gradient_matches_torch_optim(
    label: str, path: str
) -> None:
    """``dL/dW = (X.T @ R).T`` for ``W`` of shape ``(out, in)``: a transposed view.
    Before the fix adam ended at a loss 50x torch.optim's and sgd with momentum
    diverged."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, dtype=torch.float64, generator=gen)
    y = torch.randn(20, 3, dtype=torch.float64, generator=gen)
    w0 = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    factory, kw, cls, tkw = OPTIMIZERS[label]
    lr, steps = (0.1, 30) if label != "sgd_momentum" else (0.001, 30)

    def grad_fn(w: Any) -> tuple[Any, Any]:
        r = x @ w.T - y
        return (r**2).sum(), 2 * (x.T @ r).T

    assert not grad_fn(w0)[1].is_contiguous()
    opt = factory(lr, **kw)
    if path == "loop":
        w = fnopt.fixed_point(opt, w0, grad_fn, stop=fnopt.stop.max_iters(steps)).params
    else:
        w, s = w0, opt.init(w0)
        for _ in range(steps):
            w, s = opt.step(w, grad_fn, s)
    ref = w0.clone().requires_grad_(True)
    topt = cls([ref], lr=lr, foreach=False, **tkw)
    for _ in range(steps):
        topt.zero_grad()
        ((x @ ref.T - y) ** 2).sum().backward()
        topt.step()
    loss, ref_loss = float(grad_fn(w)[0]), float(grad_fn(ref.detach())[0])
    assert loss == pytest.approx(ref_loss, rel=1e-9)
    np.testing.assert_allclose(w.numpy(), ref.detach().numpy(), rtol=1e-9, atol=1e-12)


# -- destinations that share memory with the inputs -------------------------------------------
# ``opt.apply(params, value, grads, state, out=...)``: the caller's destination may be the
# params themselves, and a gradient may be the params (``grad_fn = lambda p: (f, p)``) or
# another view of them; the destination may be the gradient's buffer. Each gives the pure
# step's numbers. (Few leaves take per-tensor ``out=`` ops; more than 16 the multi-tensor
# copy-then-update path; NumPy arrays from 4096 elements are written into ``out`` at once.)

ALIASING = {
    "grads are params": lambda p, view: (p, p),
    "grads view params": lambda p, view: (view(p), p),
    "out is grads": lambda p, view: ((g := [2 * x + 1 for x in p]), g),
    "out views grads": lambda p, view: ((g := [2 * x + 1 for x in p]), view(g)),
    "out views params": lambda p, view: ([2 * x + 1 for x in p], view(p)),
    "both view params": lambda p, view: (view(p), view(p)),
}


def _leaves(be: str, count: int, size: int) -> list[Any]:
    rng = np.random.default_rng(count + size)
    xs = [rng.standard_normal(size) for _ in range(count)]
    return xs if be == "numpy" else [torch.tensor(x) for x in xs]


@pytest.mark.parametrize("be", ["numpy", "torch"])
@pytest.mark.parametrize("label", list(OPTIMIZERS))
def test_destination_sharing_memory_with_inputs_gives_the_pure_step(
    label: str, be: str
) -> None:
    def view(xs: list[Any]) -> list[Any]:
        return [x.view() if be == "numpy" else x.detach() for x in xs]

    sizes = [(1, 5), (20, 3)] + ([(1, 5000)] if be == "numpy" else [])
    for (count, size), (case, make) in [(s, c) for s in sizes for c in ALIASING.items()]:
        opt = make_opt(label)
        p, ref = _leaves(be, count, size), _leaves(be, count, size)
        s, s_ref = opt.init(p), opt.init(ref)
        for _ in range(3):
            g, _ = make(ref, view)
            ref, s_ref = opt.apply(ref, 0.0, fnopt.tree.clone(g), s_ref)
            g, out = make(p, view)
            p, s = opt.apply(p, 0.0, g, s, out=out)
            assert p is out
        for a, b in zip(p, ref):
            np.testing.assert_allclose(_np(a), _np(b), **TIGHT, err_msg=f"{case} {count}x{size}")
