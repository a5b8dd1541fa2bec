"""fnopt.batched: every problem of the batch gets what fixed_point gives it alone
(same iterations, reason, loss and params), and stops on its own."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import stop

torch = pytest.importorskip("torch")


def rosen_batched(x: Any) -> tuple[Any, Any]:
    """2-D Rosenbrock and its gradient, vectorised over the rows of ``x``."""
    x0, x1 = x[:, 0], x[:, 1]
    t = x1 - x0 * x0
    g0 = -2.0 * (1.0 - x0) - 400.0 * x0 * t
    g1 = 200.0 * t
    stack = torch.stack if fnopt.backend.is_tensor(x) else np.stack
    return (1.0 - x0) ** 2 + 100.0 * (t * t), stack([g0, g1], 1)


def rosen_one(x: Any) -> tuple[Any, Any]:
    """The same arithmetic for one problem (a batch of one)."""
    v, g = rosen_batched(x[None])
    return v[0], g[0]


def rosen_loss(x: Any) -> Any:
    t = x[1] - x[0] * x[0]
    return (1.0 - x[0]) ** 2 + 100.0 * (t * t)


STARTS = np.array(
    [[0.0, 0.0], [0.9, 0.8], [-1.0, 1.0], [1.2, 1.2], [2.0, -1.0], [0.5, 0.5], [-0.5, 2.0]]
)

OPTS = {
    "sgd": lambda: fnopt.sgd(1e-3),
    "momentum": lambda: fnopt.sgd(5e-4, momentum=0.9),
    "adam": lambda: fnopt.adam(2e-2),
    "rmsprop": lambda: fnopt.rmsprop(1e-3),  # no in-place form: the generic step
}

STOPS = {
    "loss": lambda: stop.loss_below(1e-3) | stop.max_iters(3000),
    "grad_norm": lambda: stop.grad_norm_below(0.3) | stop.max_iters(3000),
    "loss_change": lambda: stop.loss_change_below(1e-7, patience=3) | stop.max_iters(3000),
    "both": lambda: (stop.loss_below(1e-2) & stop.grad_norm_below(1.0)) | stop.max_iters(2000),
}


def check_against_fixed_point(r: Any, opt_fn: Any, starts: Any, crit_fn: Any,
                              grad_one: Any, exact: bool) -> None:
    for i in range(len(starts)):
        single = fnopt.fixed_point(opt_fn(), starts[i], grad_one, stop=crit_fn())
        assert r.iterations[i] == single.iterations, i
        assert r.reason[i] == single.reason, i
        assert bool(r.converged[i]) == single.converged
        got, want = np.asarray(r.params[i]), np.asarray(single.params)
        if exact:
            assert np.array_equal(got, want), (i, got, want)
            assert r.value[i] == single.value or np.isnan(single.value)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("crit", list(STOPS))
@pytest.mark.parametrize("name", list(OPTS))
def test_numpy_batch_matches_fixed_point_per_problem(name, crit):
    starts = STARTS.copy()
    r = fnopt.batched(OPTS[name](), starts, rosen_batched, stop=STOPS[crit]())
    assert np.array_equal(starts, STARTS)  # the caller's array untouched
    assert r.steps == r.iterations.max()
    if crit == "loss":
        assert len(set(r.iterations)) > 2  # the problems stopped apart
    check_against_fixed_point(r, OPTS[name], STARTS, STOPS[crit], rosen_one, exact=True)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_torch_vmap_batch_matches_fixed_point_per_problem(name):
    starts = torch.tensor(STARTS)
    provider = fnopt.grad.torch_func(rosen_loss)
    crit = STOPS["loss"]
    r = fnopt.batched(OPTS[name](), starts, provider, stop=crit())
    assert isinstance(r.params, torch.Tensor) and r.params.shape == starts.shape
    check_against_fixed_point(r, OPTS[name], starts, crit, provider, exact=False)


def test_torch_batched_grad_fn_without_vmap():
    starts = torch.tensor(STARTS)
    r = fnopt.batched(fnopt.sgd(1e-3), starts, rosen_batched, stop=STOPS["loss"](), vmap=False)
    check_against_fixed_point(r, OPTS["sgd"], starts, STOPS["loss"], rosen_one, exact=True)


def test_diverging_problems_stop_at_their_last_finite_iterate():
    starts = np.array([[0.0, 0.0], [3.0, 3.0], [-2.5, 0.0]])
    crit = lambda: stop.loss_below(1e-3) | stop.max_iters(500)  # noqa: E731
    with np.errstate(over="ignore", invalid="ignore"):
        r = fnopt.batched(fnopt.sgd(5e-3), starts, rosen_batched, stop=crit())
        assert list(map(str, r.reason)) == ["max_iters", "non_finite", "non_finite"]
        assert not r.converged.any()
        check_against_fixed_point(r, lambda: fnopt.sgd(5e-3), starts, crit, rosen_one,
                                  exact=True)


def test_pytree_params_and_reasons():
    params = {"a": np.array([[0.0, 0.0], [0.9, 0.8]]), "b": np.array([1.0, 5.0])}

    def grad_fn(p: Any) -> tuple[Any, Any]:
        v, g = rosen_batched(p["a"])
        return v + 0.5 * p["b"] ** 2, {"a": g, "b": p["b"]}

    r = fnopt.batched(fnopt.sgd(1e-3), params, grad_fn, stop=stop.loss_below(0.5)
                      | stop.max_iters(4000))
    assert set(r.params) == {"a", "b"} and r.params["a"].shape == (2, 2)
    assert [str(x) for x in r.reason] == ["loss_below", "loss_below"]
    assert r.iterations[0] != r.iterations[1]
    np.testing.assert_array_less(r.value, 0.5 + 1e-12)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"params": np.zeros((3, 2)), "stop": stop.param_change_below(1e-3)}, TypeError,
         "cannot be evaluated per problem"),
        ({"params": {"a": np.zeros((3, 2)), "b": np.zeros(4)}}, ValueError, "batch size"),
        ({"params": np.zeros((3, 2)), "vmap": True}, ValueError, "vmap"),
        ({"params": np.zeros((3, 2)), "opt": fnopt.sgd(0.1).step}, TypeError, "opt"),
    ],
)
def test_bad_input_is_rejected(kwargs, exc, match):
    args: dict[str, Any] = {"opt": fnopt.sgd(0.1), "stop": stop.max_iters(3)}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fnopt.batched(args.pop("opt"), args.pop("params"), rosen_batched, **args)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_backend_row_ops(backend):
    be = fnopt.backend.NUMPY if backend == "numpy" else fnopt.backend.TORCH
    x = np.arange(12.0).reshape(4, 3)
    arr = torch.tensor(x) if backend == "torch" else x.copy()
    rows = np.array([3, 1])
    taken = be.take_rows(arr, rows)
    assert fnopt.backend.is_array(taken) and not fnopt.backend.is_array(3.0)
    np.testing.assert_array_equal(be.to_numpy(taken), x[[3, 1]])
    be.put_rows(arr, np.array([0, 2]), taken)
    want = x.copy()
    want[[0, 2]] = x[[3, 1]]
    np.testing.assert_array_equal(be.to_numpy(arr), want)
    assert be.to_numpy(arr).dtype == np.float64


# -- optimizers that couple the problems are refused ----------------------------------------


def _public_optimizers() -> dict[str, Any]:
    """Every public factory in fnopt annotated to return an Optimizer, with its
    required arguments filled in (the Hessian providers are never called: batched
    refuses second-order methods before any step)."""
    import inspect

    fill = {
        "transform": lambda: fnopt.scale_by_learning_rate(1e-3),
        "direction": lambda: fnopt.scale(-1.0),
        "hessian": lambda: (lambda p: np.eye(2)),
        "hvp": lambda: (lambda p, v: v),
        "base": lambda: fnopt.sgd(1e-3),
    }
    found = {}
    for name, obj in fnopt.testing.optimizer_factories().items():
        sig = inspect.signature(obj)
        kw = {k: fill[k]() for k, p in sig.parameters.items()
              if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if "learning_rate" in sig.parameters and "learning_rate" not in kw:
            kw["learning_rate"] = 1e-3
        found[name] = (obj, kw)
    return found


PUBLIC = _public_optimizers()
COUPLED = {"lamb", "lars", "muon", "adafactor", "lbfgs", "bfgs", "nonlinear_cg", "newton",
           "newton_cg", "line_search", "lbfgsb", "sam", "gauss_newton", "levenberg_marquardt",
           "levenberg_marquardt_cg", "trust_region_reflective", "dogbox",
           # whole-pytree step-size estimates (as the references sum over all groups)
           "prodigy", "dadapt_adam", "novograd",
           # optax's: per-leaf trust ratio, per-axis maxima, the Polyak step from the
           # whole gradient's norm, noise drawn for the whole stacked shape
           "fromage", "sm3", "polyak_sgd", "noisy_sgd"}


def test_the_public_optimizers_are_discovered():
    assert COUPLED | {"sgd", "adam", "descent"} <= set(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_optimizer_is_refused_or_exact_per_problem(name):
    factory, kw = PUBLIC[name]
    starts = STARTS[:4].copy()
    crit = lambda: stop.max_iters(5)  # noqa: E731
    try:
        r = fnopt.batched(factory(**kw), starts, rosen_batched, stop=crit())
    except ValueError as exc:
        assert str(exc).startswith("opt: "), exc
        assert "couples the problems" in str(exc) and "fixed_point" in str(exc)
        assert np.array_equal(starts, STARTS[:4])
        assert name in COUPLED, f"{name} refused: {exc}"
        return
    assert name not in COUPLED, f"{name} was run although it couples the problems"
    for i in range(len(starts)):
        single = fnopt.fixed_point(factory(**kw), starts[i], rosen_one, stop=crit())
        np.testing.assert_allclose(r.params[i], single.params, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}, problem {i}")


def test_a_chain_with_a_global_norm_clip_is_refused_and_an_elementwise_clip_is_not():
    def make(first: Any) -> Any:
        return fnopt.descent(fnopt.chain(first, fnopt.scale_by_adam(),
                                         fnopt.scale_by_learning_rate(1e-3)))

    with pytest.raises(ValueError, match=r"^opt: .*couples the problems"):
        fnopt.batched(make(fnopt.clip_by_global_norm(1.0)), STARTS, rosen_batched,
                      stop=stop.max_iters(3))
    r = fnopt.batched(make(fnopt.clip(1.0)), STARTS, rosen_batched, stop=stop.max_iters(3))
    assert r.steps == 3


def test_torch_params_lamb_is_refused():
    with pytest.raises(ValueError, match=r"^opt: .*norm or statistic over the whole batch"):
        fnopt.batched(fnopt.lamb(1e-3), torch.tensor(STARTS),
                      fnopt.grad.torch_func(rosen_loss), stop=stop.max_iters(3))


def test_couples_problems_reasons():
    from fnopt.batched import _couples_problems

    assert _couples_problems(fnopt.adam(1e-3)) is None
    assert _couples_problems(fnopt.sgd(0.1, momentum=0.9), {"w": np.zeros((2, 3, 4))}) is None
    assert "value_at='output'" in _couples_problems(fnopt.lbfgs())
    assert "whole batch" in _couples_problems(fnopt.lars(1e-3), np.zeros((5, 3)))
    # muon needs a matrix per problem: a vector per problem raises inside the probe
    assert "raised ValueError" in _couples_problems(fnopt.muon(1e-3), np.zeros((5, 3)))
