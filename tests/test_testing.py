"""fnopt.testing: the conformance battery over every public optimizer, its power to catch
broken optimizers, and the hypothesis strategies."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnopt
from fnopt import testing as ft
from fnopt import tree

LR = 1e-2

# How to fill each required argument of an optimizer factory. A value taking the
# problem (a fnopt.testing.Quadratic) makes check_optimizer build one per problem.
RECIPES: dict[str, Any] = {
    "transform": lambda: fnopt.scale_by_learning_rate(LR),
    "direction": lambda: fnopt.scale(-1.0),
    "hessian": lambda q: q.hessian_fn,
    "hvp": lambda q: q.hvp,
    "base": lambda: fnopt.sgd(LR),
}
PROBLEM_ARGS = {"hessian", "hvp"}
# Optimizers that take only some shapes are checked on example params of those shapes.
EXAMPLES: dict[str, list[Any]] = {
    "muon": [np.zeros((4, 3)), {"w": np.zeros((3, 2)), "v": [np.zeros((2, 2))]}],
}

# Known, reported departures from the battery, by optimizer name -> property names: the
# test fails if any *other* property fails, and turns into a plain pass once they are
# fixed. None at present (the line-search and second-order states used to start with
# None placeholders; they now allocate every field at init).
KNOWN_FAILURES: dict[str, set[str]] = {}


def public_optimizer_factories() -> dict[str, Callable[..., fnopt.Optimizer]]:
    """Every callable in fnopt.__all__ annotated to return an Optimizer."""
    return ft.optimizer_factories()


def make_factory(name: str, factory: Callable[..., fnopt.Optimizer]) -> tuple[Any, bool]:
    params = inspect.signature(factory).parameters.values()
    required = [p.name for p in params if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    missing = [r for r in required if r not in RECIPES]
    assert not missing, (
        f"fnopt.{name} needs {missing}: add a recipe to RECIPES in tests/test_testing.py"
    )
    names = {p.name for p in params}
    takes_problem = bool(PROBLEM_ARGS & set(required))

    def make(q: Any = None) -> fnopt.Optimizer:
        kw = {r: (RECIPES[r](q) if r in PROBLEM_ARGS else RECIPES[r]()) for r in required}
        if "learning_rate" in names and "learning_rate" not in kw:
            kw["learning_rate"] = LR
        return factory(**kw)

    return make, takes_problem


# The least-squares optimizers take residual providers, not the battery's gradient
# providers; tests/test_least_squares.py checks them (purity, determinism, dtypes,
# recorded values, backend agreement) on residual problems.
FACTORIES = {k: v for k, v in public_optimizer_factories().items()
             if k not in ("gauss_newton", "levenberg_marquardt", "levenberg_marquardt_cg",
                          "trust_region_reflective", "dogbox")}


def test_the_zoo_is_discovered():
    assert {"sgd", "descent"} <= set(FACTORIES)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_public_optimizer_conforms(name):
    make, takes_problem = make_factory(name, FACTORIES[name])
    report = ft.check_optimizer(make, name=name, takes_problem=takes_problem,
                                examples=EXAMPLES.get(name))
    assert report.name == name
    assert [r.name for r in report.results] == list(ft.PROPERTIES)
    assert not report.skipped, str(report)
    unexpected = set(report.failed) - KNOWN_FAILURES.get(name, set())
    assert not unexpected, str(report)
    if report.failed:
        pytest.xfail(f"known departures: {sorted(report.failed)}\n{report}")


# -- the battery catches broken optimizers --------------------------------------------------


class BadState(NamedTuple):
    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    extra: Any


def _sgd_like(
    *,
    update: Callable[[Any, Any, BadState], Any] | None = None,
    extra0: Any = None,
    next_extra: Callable[[BadState], Any] | None = None,
    record_output: bool = False,
    lr: float = LR,
) -> fnopt.Optimizer:
    """A small SGD with one thing changed, to check that the battery notices."""

    def init(params):
        nan = tree.full_like(tree.leaves(params)[0], float("nan"))
        return BadState(0, nan, nan, extra0)

    def step(params, grad_fn, state, *batch):
        value, grads = grad_fn(params, *batch)
        new = update(params, grads, state) if update else tree.axpy(-lr, grads, params)
        norm = tree.global_norm(grads)
        if record_output:
            value, g2 = grad_fn(new, *batch)
            norm = tree.global_norm(g2)
        extra = next_extra(state) if next_extra else state.extra
        return new, BadState(state.count + 1, value, norm, extra)

    return fnopt.Optimizer(init, step)


def _mutating(params, grads, state):
    for p, g in zip(tree.leaves(params), tree.leaves(grads)):
        p -= LR * g  # in place: the caller's arrays change
    return params


def _to_float64(params, grads, state):
    return tree.map(lambda p, g: (p - LR * g).astype(np.float64)
                    if isinstance(p, np.ndarray) else (p - LR * g).double(), params, grads)


def _noisy(params, grads, state):
    rng = np.random.default_rng()
    return tree.map(lambda p, g: p - LR * g * (1 + 1e-3 * rng.random()), params, grads)


def _disagreeing(params, grads, state):
    lr = LR if isinstance(tree.leaves(params)[0], np.ndarray) else LR * 1.001
    return tree.axpy(-lr, grads, params)


class NoCount(NamedTuple):
    value: Any
    grad_norm: Any


def _no_count() -> fnopt.Optimizer:
    opt = fnopt.sgd(LR)
    return fnopt.Optimizer(
        lambda p: NoCount(*opt.init(p)[1:3]),
        lambda p, g, s: (lambda r: (r[0], NoCount(r[1].value, r[1].grad_norm)))(
            opt.step(p, g, opt.init(p))),
    )


def _raises() -> fnopt.Optimizer:
    raise RuntimeError("cannot build")


BROKEN = {
    "mutates_params": (lambda: _sgd_like(update=_mutating), "purity"),
    "changes_dtype": (lambda: _sgd_like(update=_to_float64), "structure_and_dtype"),
    "growing_state": (
        lambda: _sgd_like(extra0=(), next_extra=lambda s: (*s.extra, s.count)),
        "state_structure_stable",
    ),
    "function_in_state": (
        lambda: _sgd_like(extra0=print), "state_structure_stable"),
    "nondeterministic": (lambda: _sgd_like(update=_noisy), "deterministic"),
    "records_output_value": (lambda: _sgd_like(record_output=True), "records_value"),
    "backends_disagree": (lambda: _sgd_like(update=_disagreeing), "backend_agreement"),
    "ascends": (lambda: _sgd_like(lr=-LR), "descent"),
    "unsavable_state": (lambda: _sgd_like(extra0=lambda: 0), "save_load"),
    "no_count_field": (_no_count, "state_conventions"),
    "not_an_optimizer": (lambda: fnopt.scale(1.0), "constructs"),
    "factory_raises": (_raises, "constructs"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_optimizers_are_caught(case):
    make, prop = BROKEN[case]
    report = ft.check_optimizer(make, name=case)
    assert not report.ok and prop in report.failed, str(report)
    assert report[prop].message
    with pytest.raises(AssertionError, match=f"FAIL  {prop}"):
        report.assert_ok()
    if prop == "constructs":
        assert set(report.skipped) == set(ft.PROPERTIES[1:])


def test_report_api():
    report = ft.check_optimizer(lambda: fnopt.sgd(LR), backends=("numpy",))
    assert report.ok and bool(report)
    assert report.skipped == ("backend_agreement",)
    assert report["backend_agreement"].passed is None
    assert "skip  backend_agreement" in str(report)
    assert report.name == "sgd"
    report.assert_ok()
    with pytest.raises(KeyError):
        report["no_such_property"]


def test_an_optimizer_instance_is_accepted():
    assert ft.check_optimizer(fnopt.sgd(LR), name="sgd instance").ok


def test_examples_choose_the_shapes():
    seen = []

    def make():
        opt = fnopt.sgd(LR)

        def init(p):
            seen.append(tuple(tree.leaves(p)[0].shape))
            return opt.init(p)

        return fnopt.Optimizer(init, opt.step)

    assert ft.check_optimizer(make, examples=[np.zeros((2, 3))]).ok
    assert set(seen) == {(2, 3)}


@pytest.mark.parametrize("kw,exc,pattern", [
    (dict(steps=1), ValueError, "steps"),
    (dict(backends=("jax",)), ValueError, "backends"),
    (dict(examples=[]), ValueError, "examples"),
    (dict(examples=np.zeros(3)), TypeError, "examples"),
    (dict(examples=[{}]), ValueError, "examples: item 0"),
])
def test_check_optimizer_arguments(kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ft.check_optimizer(lambda: fnopt.sgd(LR), **kw)
    with pytest.raises(TypeError, match="make_opt"):
        ft.check_optimizer(3)


def test_strategies_need_hypothesis_but_the_battery_does_not(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypothesis.strategies", None)
    with pytest.raises(ImportError, match="pip install hypothesis"):
        ft.arrays()
    assert ft.check_optimizer(lambda: fnopt.sgd(LR), steps=2).ok


# -- strategies -------------------------------------------------------------------------


@given(ft.pytrees("numpy", ("float32", "float64")))
def test_pytrees_are_valid_params(t):
    assert fnopt._base.check_params(t) is fnopt.backend.NUMPY
    assert tree.all_finite(t)
    assert all(abs(x).max() <= 10 for x in tree.leaves(t))


@given(ft.pytrees("torch", ("float32",), max_leaves=3, structures=("namedtuple",)))
def test_pytrees_torch_and_structures(t):
    import torch

    assert fnopt._base.check_params(t) is fnopt.backend.TORCH
    assert all(x.dtype == torch.float32 for x in tree.leaves(t))
    assert isinstance(t, (ft.Pair, torch.Tensor))


@given(ft.arrays("torch", "float64", shape=(2, 3)))
def test_arrays_fixed_shape(x):
    assert tuple(x.shape) == (2, 3) and str(x.dtype) == "torch.float64"


@given(ft.quadratics("numpy"))
def test_quadratics_have_known_minima(q):
    value, grads = q.grad_fn(q.minimum)
    assert float(value) == pytest.approx(q.min_value, abs=1e-12)
    assert float(tree.global_norm(grads)) < 1e-10
    assert float(q.loss(q.init_params)) > q.min_value
    report = fnopt.grad.check(q.grad_fn, fnopt.grad.finite_differences(q.loss), q.init_params,
                              rtol=1e-5, atol=1e-7)
    assert report.ok, report
    eig = np.linalg.eigvalsh(q.hessian)
    assert q.strong_convexity - 1e-9 <= eig.min() and eig.max() <= q.smoothness + 1e-9


@given(ft.quadratics("torch", "float64", max_leaves=2))
def test_quadratics_torch_and_hvp(q):
    v = tree.ones_like(q.init_params)
    hv = q.hvp(q.init_params, v)
    n = q.hessian.shape[0]
    want = q.hessian @ np.ones(n)
    got = np.concatenate([x.numpy().reshape(-1) for x in tree.leaves(hv)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert tuple(q.hessian_fn(q.init_params).shape) == (n, n)


@given(ft.hyperparameters("learning_rate", "b1", "b2", "eps"))
def test_hyperparameters_are_accepted_by_adam(hp):
    fnopt.adam(**hp)
    assert 1e-4 <= hp["learning_rate"] <= 1e-1 and 0 <= hp["b1"] < 1


@given(ft.hyperparameters("learning_rate", "momentum", "dampening", "weight_decay"))
def test_hyperparameters_are_accepted_by_sgd(hp):
    opt = fnopt.sgd(**hp)
    x = np.array([1.0, -2.0])
    p, s = opt.step(x, lambda v: (0.5 * (v * v).sum(), v), opt.init(x))
    assert s.count == 1 and p.shape == x.shape and np.isfinite(p).all()
    assert 0 <= hp["dampening"] <= 0.5 and 0 <= hp["weight_decay"] <= 0.1


@given(st.data())
def test_a_descent_step_lowers_a_drawn_quadratic(data):
    q = data.draw(ft.quadratics("numpy"))
    lr = data.draw(ft.learning_rates(1e-3, 0.5))  # below 2 / smoothness = 1
    opt = fnopt.sgd(lr)
    p, _ = opt.step(q.init_params, q.grad_fn, opt.init(q.init_params))
    assert float(q.loss(p)) < float(q.loss(q.init_params))


STRATEGY_ERRORS = [
    (lambda: ft.arrays("jax"), ValueError, "backend"),
    (lambda: ft.arrays("numpy", "float16"), ValueError, "dtype"),
    (lambda: ft.pytrees(structures=("set",)), ValueError, "structures"),
    (lambda: ft.learning_rates(0.0, 1.0), ValueError, "low"),
    (lambda: ft.decay_rates(0.5, 1.0), ValueError, "low"),
    (lambda: ft.hyperparameters("lr"), ValueError, "names"),
    (lambda: ft.make_quadratic(eigenvalues=(0.0, 1.0)), ValueError, "eigenvalues"),
    (lambda: ft.make_quadratic({}), ValueError, "like"),
    (lambda: ft.make_quadratic(backend="cupy"), ValueError, "backend"),
]


@pytest.mark.parametrize("make,exc,pattern", STRATEGY_ERRORS)
def test_strategy_arguments_are_validated(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_the_kit_works_without_torch_and_hypothesis(tmp_path):
    import json
    import subprocess
    import textwrap
    from pathlib import Path

    script = textwrap.dedent(
        """
        import importlib.abc, json, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "hypothesis"):
                    raise ImportError(f"No module named {name!r} (blocked)")
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import fnopt

        report = fnopt.testing.check_optimizer(lambda: fnopt.sgd(1e-2, momentum=0.9))
        path = sys.argv[1]
        p = {"w": np.ones(3)}
        fnopt.save(path, p, fnopt.adam(0.1).init(p))
        ck = fnopt.load(path)
        try:
            fnopt.testing.pytrees()
            strategies = "built"
        except ImportError as exc:
            strategies = str(exc)
        print(json.dumps({"ok": report.ok, "skipped": list(report.skipped),
                          "state": type(ck.state).__name__, "strategies": strategies,
                          "torch_loaded": "torch" in sys.modules}))
        """
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "c.npz")], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["skipped"] == ["backend_agreement"]
    assert res["state"] == "DescentState" and not res["torch_loaded"]
    assert "pip install hypothesis" in res["strategies"]


def test_conformance_report_iterates_over_its_entries():
    report = ft.check_optimizer(lambda: fnopt.sgd(LR), backends=("numpy",))
    entries = list(report)  # used to raise KeyError: 0
    assert entries == list(report.results) and len(report) == len(ft.PROPERTIES)
    assert all(isinstance(r, ft.PropertyResult) for r in report)
    assert [r.name for r in report] == list(ft.PROPERTIES)
    assert report[0] is report.results[0] and report[-1].name == ft.PROPERTIES[-1]
    assert report["purity"].name == "purity"  # lookup by name still works
    with pytest.raises(KeyError):
        report["no such property"]
