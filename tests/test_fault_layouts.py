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
