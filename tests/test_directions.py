"""The direction protocol: a scaling's update with its last division left undone
(:class:`fnopt.transforms.Direction`), folded by ``scale_by_learning_rate`` into the add
to params (one ``addcdiv`` pass per term).

``chain(scaling, scale_by_learning_rate(lr))`` folds; its trajectory equals the unfolded
one (the scaling's own ``update``, then ``p - lr u``) to rtol 1e-12 in float64 over 200
steps, on NumPy and torch; ``update`` is the direction evaluated; a tensor learning rate
falls back to the evaluated update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optree
import pytest

import fnopt
from fnopt.transforms import Direction

torch = pytest.importorskip("torch")

SCALINGS: dict[str, Callable[[], fnopt.Transform]] = {
    "adam": lambda: fnopt.scale_by_adam(),
    "adam_amsgrad": lambda: fnopt.scale_by_adam(amsgrad=True),
    "adam_mu_float32": lambda: fnopt.scale_by_adam(mu_dtype="float32"),
    "adamax": lambda: fnopt.scale_by_adamax(),
    "nadam": lambda: fnopt.scale_by_nadam(),
    "radam": lambda: fnopt.scale_by_radam(),  # rho_t > 5 from step 6 on: both branches
    "rms": lambda: fnopt.scale_by_rms(),
    "stddev": lambda: fnopt.scale_by_stddev(),
    "adagrad": lambda: fnopt.scale_by_adagrad(),
    "adadelta": lambda: fnopt.scale_by_adadelta(),
}


def _params(backend: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    p = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    return {k: fnopt.backend.array(v, backend, "float64") for k, v in p.items()}


def _grad(p: dict[str, Any]) -> dict[str, Any]:
    """The gradient of sum(x^2 + 0.3 x^4) / 2 (not constant, so the moments move)."""
    return {k: x + 0.6 * x * x * x for k, x in p.items()}


def _np(t: Any) -> dict[str, np.ndarray]:
    return {k: fnopt.backend.to_numpy(v) for k, v in t.items()}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", list(SCALINGS))
def test_folded_chain_equals_unfolded(name: str, backend: str) -> None:
    lr = 0.01
    scaling = SCALINGS[name]()
    assert scaling.direction is not None  # every adaptive scaling declares it
    folded = fnopt.chain(scaling, fnopt.scale_by_learning_rate(lr))
    p_f = p_u = _params(backend)
    s_f = folded.init(p_f)
    s_u = scaling.init(p_u)
    for _ in range(200):
        p_f, s_f = folded.update_params(_grad(p_f), s_f, p_f)
        u, s_u = scaling.update(_grad(p_u), s_u, p_u)
        p_u = fnopt.tree.axpy(-lr, u, p_u)
    for k, v in _np(p_u).items():
        np.testing.assert_allclose(_np(p_f)[k], v, rtol=1e-12, atol=1e-14)
    # the folded path into loop-owned buffers: bitwise the pure folded path
    p0 = _params(backend)
    s0 = folded.init(p0)
    pure, _ = folded.update_params(_grad(p0), s0, p0)
    buf = fnopt.tree.clone(p0)
    owned, _ = folded.update_params(_grad(p0), folded.init(p0), p0, out=buf)
    assert owned is buf
    for k, v in _np(pure).items():
        np.testing.assert_array_equal(_np(owned)[k], v)
    # and the fold is really taken: the chain calls the scaling's direction, not its update
    calls: list[str] = []

    def spied(kind: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **k: Any) -> Any:
            calls.append(kind)
            return f(*a, **k)
        return call

    inner = SCALINGS[name]()
    spy = fnopt.Transform(inner.init, spied("update", inner.update), inplace=True,
                          direction=spied("direction", inner.direction))
    chained = fnopt.chain(spy, fnopt.scale_by_learning_rate(lr))
    chained.update_params(_grad(p0), chained.init(p0), p0)
    assert calls == ["direction"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_update_is_the_direction_evaluated(backend: str) -> None:
    scaling = fnopt.scale_by_nadam()  # two terms
    p = _params(backend)
    s = scaling.init(p)
    d, _ = scaling.direction(_grad(p), s, p, inplace=False)
    assert isinstance(d, Direction) and len(d.terms) == 2
    u, _ = scaling.update(_grad(p), s, p)
    by_hand = sum(
        c * (fnopt.backend.to_numpy(n) / fnopt.backend.to_numpy(dd))
        for c, num, den in d.terms
        for n, dd in [(num[1], den[1])]  # leaf "w" (leaves in key order: b, w)
    )
    np.testing.assert_allclose(fnopt.backend.to_numpy(u["w"]), by_hand, rtol=1e-14)


def test_tensor_learning_rate_falls_back_to_the_evaluated_update() -> None:
    p = _params("torch")
    lr = torch.tensor(0.01, dtype=torch.float64)
    folded = fnopt.chain(fnopt.scale_by_rms(), fnopt.scale_by_learning_rate(lambda c: lr))
    scaling = fnopt.scale_by_rms()
    new, _ = folded.update_params(_grad(p), folded.init(p), p)
    u, _ = scaling.update(_grad(p), scaling.init(p), p)
    for k in p:
        torch.testing.assert_close(new[k], p[k] - lr * u[k], rtol=1e-14, atol=0)


def test_a_user_scaling_can_declare_a_direction() -> None:
    """The protocol is generic: a transform built with ``direction=`` folds too."""

    def init(params: Any) -> Any:
        return ()

    def direction(updates: Any, state: Any, params: Any, *, inplace: bool) -> Any:
        leaves, spec = optree.tree_flatten(updates)
        be = fnopt.backend.of_leaves(leaves)
        half = [np.full_like(x, 2.0) for x in leaves]
        return Direction(((1.0, leaves, half),), spec, be), state

    def update(updates: Any, state: Any, params: Any = None) -> Any:
        return fnopt.tree.scale(0.5, updates), state

    halve = fnopt.Transform(init, update, direction=direction)
    opt = fnopt.chain(halve, fnopt.scale_by_learning_rate(0.1))
    p = np.array([1.0, -2.0])
    new, _ = opt.update_params(np.array([4.0, 8.0]), opt.init(p), p)
    np.testing.assert_allclose(new, [0.8, -2.4])


@pytest.mark.parametrize("make", [fnopt.rmsprop, fnopt.nadam, fnopt.adamax])
def test_hypergradient_through_a_tensor_learning_rate(make: Callable[..., Any]) -> None:
    """A learning rate autograd records is not folded into ``addcdiv``'s number: the
    gradient of the final params with respect to it matches finite differences."""
    gf = fnopt.grad.torch_func(lambda x: (x**2 + 0.3 * x**4).sum())
    x0 = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def final(lr: Any) -> Any:
        r = fnopt.fixed_point(make(lambda c: lr), x0, gf, stop=fnopt.stop.max_iters(10),
                              differentiable=True)
        return r.params.sum()

    lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(final(lr), lr)
    h = 1e-6
    with torch.no_grad():
        fd = (final(torch.tensor(0.05 + h, dtype=torch.float64))
              - final(torch.tensor(0.05 - h, dtype=torch.float64))) / (2 * h)
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["adamax", "nadam", "radam", "rms", "adadelta"])
def test_decoupled_weight_decay_extends_the_direction(name: str, backend: str) -> None:
    """``chain(scaling, add_decayed_weights(wd), scale_by_learning_rate(lr))`` folds
    through the weight decay (a term ``wd * p`` appended): equal to the unfolded chain
    to rtol 1e-12 over 200 float64 steps, and into loop-owned buffers bitwise."""
    lr, wd = 0.01, 0.1
    assert fnopt.add_decayed_weights(wd).extend_direction is not None
    folded = fnopt.chain(SCALINGS[name](), fnopt.add_decayed_weights(wd),
                         fnopt.scale_by_learning_rate(lr))
    unfolded = fnopt.chain(SCALINGS[name](), fnopt.add_decayed_weights(wd))
    p_f = p_u = _params(backend)
    s_f, s_u = folded.init(p_f), unfolded.init(p_u)
    for _ in range(200):
        p_f, s_f = folded.update_params(_grad(p_f), s_f, p_f)
        u, s_u = unfolded.update(_grad(p_u), s_u, p_u)
        p_u = fnopt.tree.axpy(-lr, u, p_u)
    for k, v in _np(p_u).items():
        np.testing.assert_allclose(_np(p_f)[k], v, rtol=1e-12, atol=1e-14)
    p0 = _params(backend)
    pure, _ = folded.update_params(_grad(p0), folded.init(p0), p0)
    buf = fnopt.tree.zeros_like(p0)
    owned, _ = folded.update_params(_grad(p0), folded.init(p0), p0, out=buf)
    mine = fnopt.tree.clone(p0)  # the destination is the params themselves (read by wd p)
    in_place, _ = folded.update_params(_grad(mine), folded.init(mine), mine, out=mine)
    for k, v in _np(pure).items():
        np.testing.assert_array_equal(_np(owned)[k], v)
        np.testing.assert_array_equal(_np(in_place)[k], v)


def test_the_fold_runs_through_the_extension() -> None:
    """The folded path is taken (the scaling's ``direction`` runs, its ``update`` does
    not) for ``[scaling, add_decayed_weights, scale_by_learning_rate]``."""
    calls: list[str] = []
    rms = fnopt.scale_by_rms()

    def update(*a: Any, **k: Any) -> Any:
        calls.append("update")
        return rms.update(*a, **k)

    def direction(*a: Any, **k: Any) -> Any:
        calls.append("direction")
        return rms.direction(*a, **k)  # type: ignore[misc]

    spy = fnopt.Transform(rms.init, update, inplace=True, direction=direction)
    opt = fnopt.chain(spy, fnopt.add_decayed_weights(0.1), fnopt.scale_by_learning_rate(0.1))
    p = np.array([1.0, -2.0])
    opt.update_params(np.array([0.5, 0.5]), opt.init(p), p)
    assert calls == ["direction"]


@pytest.mark.parametrize(("backend", "lr_kind"), [
    ("numpy", "numpy_scalar"), ("torch", "numpy_scalar"), ("torch", "tensor"),
])
def test_params_term_first_with_a_non_float_rate_leaves_the_params_alone(backend, lr_kind):
    """``add_decayed_weights(1.0)`` puts the params themselves first in the direction;
    a learning rate that is not a Python float (the evaluated fallback) must not sum
    the other terms into them."""
    p0 = _params(backend)
    lr = np.float64(0.1) if lr_kind == "numpy_scalar" else None
    if lr is None:
        torch = pytest.importorskip("torch")
        lr = torch.tensor(0.1, dtype=torch.float64)
    opt = fnopt.adamw(lr, weight_decay=1.0)
    ref = fnopt.adamw(0.1, weight_decay=1.0)
    before = {k: v.copy() for k, v in _np(p0).items()}
    new, _ = opt.step(p0, lambda q: (fnopt.tree.vdot(q, q), _grad(q)), opt.init(p0))
    want, _ = ref.step(p0, lambda q: (fnopt.tree.vdot(q, q), _grad(q)), ref.init(p0))
    for k, v in _np(p0).items():
        np.testing.assert_array_equal(v, before[k])  # the caller's params are unchanged
        np.testing.assert_allclose(_np(new)[k], _np(want)[k], rtol=1e-12)
