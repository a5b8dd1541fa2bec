"""Invariants of every named optimizer, found automatically from
``fnopt.optimizers.__all__``: purity, dtype/structure preservation, a state whose
structure does not change across steps, backend agreement, the learning rate in the
state, and hyperparameter validation."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import optree
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import assert_same_tree, pytrees, snapshot, to_backend, to_numpy

import fnopt
from fnopt import optimizers as O

NAMES = [n for n in O.__all__ if n != "descent"]
# small, stable rates for the property tests (defaults like adadelta's 1.0 are fine too)
LR = {name: 1e-2 for name in NAMES}
# arguments that must lie in [0, 1) (betas) or [0, 1] (momentum-like)
HALF_OPEN = {"b1", "b2"}
CLOSED = {"momentum", "dampening", "decay", "rho"}


def quad_grad_fn(p: Any) -> tuple[Any, Any]:
    """f(p) = 0.5 |p - 1|^2 summed over leaves; gradient p - 1 (dtype preserved)."""
    d = fnopt.tree.sub(p, fnopt.tree.ones_like(p))
    return 0.5 * fnopt.tree.vdot(d, d), d


# optax.polyak_sgd has no learning rate: its step is the Polyak step, capped by
# max_learning_rate (the first argument), and its f_min (a bound on the loss) may be < 0
NO_LEARNING_RATE = {"polyak_sgd"}

# optimizers defined for matrix leaves only: the tests give them 2-D versions of the trees
MATRIX_ONLY = {"muon"}


def fit(name: str, tree_: Any) -> Any:
    """``tree_`` with every leaf made 2-D (``(1, n)``) for a matrix-only optimizer."""
    if name not in MATRIX_ONLY:
        return tree_
    return fnopt.tree.map(lambda x: x.reshape(1, -1) if x.ndim < 2 else x, tree_)


def make(name: str, **kw: Any) -> fnopt.Optimizer:
    return getattr(fnopt, name)(LR[name], **kw)


def leaf_signature(tree: Any) -> list[tuple[str, str, tuple[int, ...]]]:
    def sig(x: Any) -> tuple[str, str, tuple[int, ...]]:
        if isinstance(x, (bool, int, float)):
            return (type(x).__name__, "", ())
        return (type(x).__name__, str(x.dtype), tuple(x.shape))

    return [sig(x) for x in optree.tree_leaves(tree)]


def test_every_optimizer_is_exported_and_documented() -> None:
    assert len(NAMES) >= 12
    for name in NAMES:
        f = getattr(fnopt, name)
        assert f is getattr(O, name)
        doc = inspect.getdoc(f) or ""
        assert "Args:" in doc and "Returns:" in doc, name
        first = "max_learning_rate" if name in NO_LEARNING_RATE else "learning_rate"
        assert inspect.signature(f).parameters[first].default is not inspect._empty


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10)
@given(params=pytrees(bound=3.0))
def test_step_is_pure_and_preserves_structure(name: str, params: Any) -> None:
    params = fit(name, params)
    opt = make(name)
    state = opt.init(params)
    p_snap, s_snap = snapshot(params), snapshot(state)
    new_params, new_state = opt.step(params, quad_grad_fn, state)
    # inputs untouched (bit for bit)
    assert_same_tree(params, p_snap)
    assert_same_tree(state, s_snap)
    # same structure, shapes, dtypes and backend
    assert optree.tree_structure(new_params) == optree.tree_structure(params)
    assert leaf_signature(new_params) == leaf_signature(params)
    assert fnopt.backend.name_of(new_params) == fnopt.backend.name_of(params)
    # a second step from the new state leaves that state untouched too
    s1_snap = snapshot(new_state)
    _, state2 = opt.step(new_params, quad_grad_fn, new_state)
    assert_same_tree(new_state, s1_snap)
    # the state keeps its structure and leaf types across steps
    assert optree.tree_structure(state2) == optree.tree_structure(new_state)
    assert optree.tree_structure(new_state) == optree.tree_structure(state)
    assert leaf_signature(state2) == leaf_signature(new_state)
    assert state2.count == 2


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10)
@given(params=pytrees(backend="numpy", dtype="float64", bound=3.0))
def test_numpy_and_torch_agree_in_float64(name: str, params: Any) -> None:
    pytest.importorskip("torch")
    params = fit(name, params)
    opt = make(name)
    tparams = to_backend(params, "torch")
    ps, ss = params, opt.init(params)
    pt, st_ = tparams, opt.init(tparams)
    for _ in range(3):
        ps, ss = opt.step(ps, quad_grad_fn, ss)
        pt, st_ = opt.step(pt, quad_grad_fn, st_)
    for a, b in zip(optree.tree_leaves(ps), optree.tree_leaves(to_numpy(pt))):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_state_records_count_value_and_grad_norm(name: str) -> None:
    opt = make(name)
    p = fit(name, {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.5, -0.5]),
                   "s": np.array(2.0)})
    s = opt.init(p)
    assert s.count == 0 and math.isnan(float(s.value)) and math.isnan(float(s.grad_norm))
    value, g = quad_grad_fn(p)
    _, s = opt.step(p, quad_grad_fn, s)
    assert s.count == 1
    assert float(s.value) == pytest.approx(float(value))
    assert float(s.grad_norm) == pytest.approx(float(fnopt.tree.global_norm(g)))
    assert opt.value_at == "input"


@pytest.mark.parametrize("name", [n for n in NAMES if n != "rprop" and n not in NO_LEARNING_RATE])
def test_learning_rate_is_readable_from_state(name: str) -> None:
    sched = fnopt.schedules.exponential_decay(0.02, 1, 0.5)
    kwargs: dict[str, Any] = {}
    if name in ("asgd",):  # asgd decays its own rate: eta_t = lr / (1 + lambd lr t)^alpha
        opt = fnopt.asgd(0.02, lambd=1.0, alpha=1.0)
        expected = [0.02 / (1 + 0.02 * t) for t in range(3)]
    else:
        opt = getattr(fnopt, name)(sched, **kwargs)
        expected = [sched(t) for t in range(3)]
    p = fit(name, np.array([1.0, -2.0]))
    s = opt.init(p)
    used = []
    for _ in range(3):
        p, s = opt.step(p, quad_grad_fn, s)
        used.append(fnopt.learning_rate_of(s))
    assert used == pytest.approx(expected, rel=1e-14)


def _numeric_args(name: str) -> list[str]:
    params = inspect.signature(getattr(fnopt, name)).parameters
    return [
        a for a, p in params.items()
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
    ]


VALIDATION = [
    (name, arg, bad)
    for name in NAMES
    for arg in _numeric_args(name)
    # beta2_decay must be <= 0: its invalid values are positive; ns_steps and
    # warmup_steps are ints (a float there is a TypeError, see test_robustness)
    for bad in (
        (0.5, float("nan")) if arg == "beta2_decay"
        else (-1,) if arg in ("ns_steps", "warmup_steps")
        else (-0.5, float("nan"))
    )
    if not (name == "rprop" and arg != "learning_rate")
    if not (name == "polyak_sgd" and arg == "f_min" and bad < 0)
]


@pytest.mark.parametrize(("name", "arg", "bad"), VALIDATION,
                         ids=[f"{n}-{a}-{b}" for n, a, b in VALIDATION])
def test_rejects_negative_and_nan_hyperparameters(name: str, arg: str, bad: float) -> None:
    with pytest.raises(ValueError, match=arg):
        getattr(fnopt, name)(**{arg: bad})


BETAS = [(n, a) for n in NAMES for a in _numeric_args(n) if a in HALF_OPEN | CLOSED]


@pytest.mark.parametrize(("name", "arg"), BETAS, ids=[f"{n}-{a}" for n, a in BETAS])
def test_rejects_betas_outside_the_unit_interval(name: str, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        getattr(fnopt, name)(**{arg: 1.5})
    if arg in HALF_OPEN:
        with pytest.raises(ValueError, match=arg):
            getattr(fnopt, name)(**{arg: 1.0})


@pytest.mark.parametrize("name", NAMES)
def test_rejects_non_numeric_learning_rate(name: str) -> None:
    with pytest.raises(TypeError, match="learning_rate"):
        getattr(fnopt, name)("0.1")


def test_optimizer_specific_validation() -> None:
    with pytest.raises(ValueError, match="nesterov"):
        fnopt.sgd(0.1, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        fnopt.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="etas"):
        fnopt.rprop(etas=(1.5, 1.2))
    with pytest.raises(ValueError, match="step_sizes"):
        fnopt.rprop(step_sizes=(1.0, 0.1))
    with pytest.raises(TypeError, match="transform"):
        fnopt.descent(lambda g: g)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="d"):
        fnopt.adafactor(d=0.5)
    with pytest.raises(ValueError, match="eps"):
        fnopt.adafactor(eps=(None, -1.0))
    with pytest.raises(TypeError, match="eps"):
        fnopt.adafactor(eps=1e-3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adjust_lr_fn"):
        fnopt.muon(adjust_lr_fn="nope")
    with pytest.raises(ValueError, match="ns_coefficients"):
        fnopt.muon(ns_coefficients=(1.0, 2.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\['b'\]"):
        fnopt.muon().init({"w": np.ones((2, 2)), "b": np.ones(2)})


def test_adamw_is_adam_with_decoupled_weight_decay() -> None:
    p0 = {"w": np.linspace(-1, 1, 6).reshape(2, 3), "b": np.array([0.3])}
    a = fnopt.adamw(0.05, weight_decay=0.3)
    b = fnopt.adam(0.05, weight_decay=0.3, decoupled_weight_decay=True)
    pa, sa, pb, sb = p0, a.init(p0), p0, b.init(p0)
    for _ in range(5):
        pa, sa = a.step(pa, quad_grad_fn, sa)
        pb, sb = b.step(pb, quad_grad_fn, sb)
    for x, y in zip(fnopt.tree.leaves(pa), fnopt.tree.leaves(pb)):
        np.testing.assert_array_equal(x, y)


def test_maximize_ascends() -> None:
    # maximising -f is minimising f: the same trajectory
    def neg(p: Any) -> tuple[Any, Any]:
        v, g = quad_grad_fn(p)
        return -v, fnopt.tree.scale(-1.0, g)

    for name in NAMES:
        a, b = make(name), make(name, maximize=True)
        pa = pb = fit(name, np.array([2.0, -1.0, 0.5]))
        sa, sb = a.init(pa), b.init(pb)
        for _ in range(4):
            pa, sa = a.step(pa, quad_grad_fn, sa)
            pb, sb = b.step(pb, neg, sb)
        np.testing.assert_allclose(pa, pb, rtol=1e-15, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=3)
@given(batch=st.integers(1, 3))
def test_batch_arguments_reach_grad_fn(name: str, batch: int) -> None:
    seen = []

    def grad_fn(p: Any, b: int) -> tuple[Any, Any]:
        seen.append(b)
        return quad_grad_fn(p)

    opt = make(name)
    p = fit(name, np.ones(2))
    opt.step(p, grad_fn, opt.init(p), batch)
    assert seen == [batch]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in MATRIX_ONLY])
def test_passes_the_fnopt_testing_conformance_battery(name: str) -> None:
    # the same checks a user runs on their own optimizer (fnopt.testing.check_optimizer)
    report = fnopt.testing.check_optimizer(lambda: make(name), name=name)
    report.assert_ok()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", NAMES)
def test_fixed_point_follows_the_pure_steps(name: str, backend: str) -> None:
    # fixed_point may run an optimizer on buffers it owns (in place); the iterates must
    # be those of the pure step
    if backend == "torch":
        pytest.importorskip("torch")
    task = fnopt.tasks.mlp(backend=backend)
    params = fit(name, task.init_params)
    if name in MATRIX_ONLY:  # an MLP without biases
        params = {k: v for k, v in task.init_params.items() if k.startswith("w")}

        def grad_fn(p: Any) -> tuple[Any, Any]:
            full = {**task.init_params, **p}
            v, g = task.grad_fn(full)
            return v, {k: g[k] for k in p}
    else:
        grad_fn = task.grad_fn
    opt = make(name)
    r = fnopt.fixed_point(opt, params, grad_fn, stop=fnopt.stop.max_iters(20))
    p, s = params, opt.init(params)
    for _ in range(20):
        p, s = opt.step(p, grad_fn, s)
    assert r.iterations == 20
    for a, b in zip(fnopt.tree.leaves(to_numpy(r.params)), fnopt.tree.leaves(to_numpy(p))):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
