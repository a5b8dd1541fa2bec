"""Purity (property-based): sgd steps with momentum / nesterov / weight decay never
mutate params, state or grads on either backend, and keep dtypes and structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fnopt
from tests.strategies import BACKENDS, assert_same_tree, like, pytrees, snapshot, to_numpy

CONFIGS = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "dampening": {"momentum": 0.5, "dampening": 0.3},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "weight_decay": {"weight_decay": 0.1},
    "all": {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01},
    "schedule": {"momentum": 0.5, "weight_decay": 0.1},
}


@st.composite
def problems(draw, backend):
    params = draw(pytrees(backend=backend, mixed_dtypes=True))
    grads = [like(draw, params) for _ in range(3)]
    return params, grads


def _fixed_grads(grads):
    """A grad_fn that returns the prepared grads one after the other (and the same
    objects every time, so a mutation would show)."""
    it = iter(grads)

    def grad_fn(p):
        g = next(it)
        leaves = fnopt.tree.leaves(p)
        return fnopt.backend.of_leaves(leaves).scalar(1.0, leaves[0]), g

    return grad_fn


def _lr(name):
    if name == "schedule":
        return lambda count: np.float64(0.1) / (1 + count)  # NumPy float64 on purpose
    return 0.1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=12)  # 14 cases x 12 trees keeps the file fast
@given(data=st.data())
def test_sgd_steps_are_pure_and_preserve_dtype_and_structure(backend, name, data):
    params, grads = data.draw(problems(backend))
    opt = fnopt.sgd(_lr(name), **CONFIGS[name])
    state = opt.init(params)
    grad_fn = _fixed_grads(grads)
    snaps = [snapshot(g) for g in grads]
    p, s = params, state
    history = []
    for _ in range(3):
        sp, ss = snapshot(p), snapshot(s)
        p1, s1 = opt.step(p, grad_fn, s)
        # inputs untouched: params, state, grads (all of them, also earlier ones)
        assert_same_tree(p, sp)
        assert_same_tree(s, ss)
        for g, sn in zip(grads, snaps):
            assert_same_tree(g, sn)
        # same structure, types and dtypes as the params
        assert fnopt.tree.structure(p1) == fnopt.tree.structure(params)
        for a, b in zip(fnopt.tree.leaves(p1), fnopt.tree.leaves(params)):
            assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
        # the state's arrays share no memory with params or grads
        for a in fnopt.tree.leaves(s1):
            for b in fnopt.tree.leaves(p1) + fnopt.tree.leaves(p) + [
                x for g in grads for x in fnopt.tree.leaves(g)
            ]:
                if hasattr(a, "shape") and a.shape != () and a is b:
                    raise AssertionError("state aliases params or grads")
        assert fnopt.tree.structure(s1) == fnopt.tree.structure(state)
        assert s1.count == s.count + 1
        history.append((p, sp))
        p, s = p1, s1
    # every earlier iterate is still intact after later steps
    for q, sq in history:
        assert_same_tree(q, sq)


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_stepping_twice_from_the_same_point_gives_the_same_result(backend, data):
    params, grads = data.draw(problems(backend))
    opt = fnopt.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    s0 = opt.step(params, _fixed_grads(grads), opt.init(params))[1]
    a = opt.step(params, _fixed_grads(grads[1:]), s0)
    b = opt.step(params, _fixed_grads(grads[1:]), s0)
    for x, y in zip(fnopt.tree.leaves(a), fnopt.tree.leaves(b)):
        np.testing.assert_array_equal(to_numpy(x), to_numpy(y))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15)
@given(data=st.data())
def test_sgd_matches_torch_optim_sgd(backend, data):
    """The reference: torch.optim.SGD on the same gradients, float64."""
    params, grads = data.draw(problems(backend))
    cfg = data.draw(st.sampled_from(list(CONFIGS)[:-1]))
    opt = fnopt.sgd(0.1, **CONFIGS[cfg])
    p, s = params, opt.init(params)
    grad_fn = _fixed_grads(grads)
    for _ in range(3):
        p, s = opt.step(p, grad_fn, s)
    ref_p = [torch.tensor(to_numpy(x), dtype=torch.float64) for x in fnopt.tree.leaves(params)]
    ref = torch.optim.SGD(ref_p, lr=0.1, **CONFIGS[cfg])
    for g in grads:
        for t, x in zip(ref_p, fnopt.tree.leaves(g)):
            t.grad = torch.tensor(to_numpy(x), dtype=torch.float64)
        ref.step()
    for got, want in zip(fnopt.tree.leaves(p), ref_p):
        tol = 1e-5 if to_numpy(got).dtype == np.float32 else 1e-12
        np.testing.assert_allclose(to_numpy(got), want.numpy(), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_schedule_count_starts_at_zero_and_lr_is_recorded(backend):
    p0 = np.array([1.0, -2.0]) if backend == "numpy" else torch.tensor([1.0, -2.0],
                                                                      dtype=torch.float64)
    rates = [0.5, 0.25, 0.125]
    opt = fnopt.sgd(lambda count: rates[count])
    grad_fn = fnopt.grad.from_functions(lambda p: 0.5 * (p * p).sum(), lambda p: p)
    p, s = p0, opt.init(p0)
    expected = to_numpy(p0)
    for k in range(3):
        p, s = opt.step(p, grad_fn, s)
        expected = expected * (1 - rates[k])
        np.testing.assert_allclose(to_numpy(p), expected, rtol=1e-15)
        assert fnopt.learning_rate_of(s) == rates[k]


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_a_descent_step_lowers_a_convex_quadratic(backend, data):
    """f(p) = sum_i c_i |p_i|^2 / 2 with curvatures c_i in [0.1, 2]: an sgd step with
    lr < 2 / max(c) from a non-stationary point lowers f (float64)."""
    params = data.draw(pytrees(backend=backend, dtype="float64"))
    leaves = fnopt.tree.leaves(params)
    curv = [data.draw(st.floats(0.1, 2.0)) for _ in leaves]
    lr = data.draw(st.floats(0.01, 0.99))

    def loss(p):
        return sum(0.5 * c * (x * x).sum() for c, x in zip(curv, fnopt.tree.leaves(p)))

    def grads(p):
        ls, spec = fnopt.tree.leaves(p), fnopt.tree.structure(p)
        wrap = np.asarray if backend == "numpy" else (lambda v: v)  # 0-d: keep arrays
        return spec.unflatten([wrap(c * x) for c, x in zip(curv, ls)])

    g = fnopt.grad.from_functions(loss, grads)
    f0 = float(loss(params))
    opt = fnopt.sgd(lr)
    p1, s1 = opt.step(params, g, opt.init(params))
    assert float(s1.value) == pytest.approx(f0)
    if f0 > 1e-12:
        assert float(loss(p1)) < f0
    else:
        assert float(loss(p1)) <= f0
