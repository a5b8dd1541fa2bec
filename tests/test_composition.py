"""Aliases are transforms: every first-order alias composes in chain, partition, masked,
apply_if_finite, lookahead, accumulate and inject_hyperparams, and the result is an
optimizer that fixed_point, batched and opt.step accept."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import optimizers

ALIASES = sorted(set(optimizers.__all__) - {"descent", "muon"})  # muon: matrices only
BACKENDS = ["numpy", "torch"]


def make(name: str) -> fnopt.Descent:
    return getattr(fnopt, name)(1e-2)


def params_for(backend: str) -> Any:
    rng = np.random.default_rng(0)
    p = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    return fnopt.to_torch(p) if backend == "torch" else p


def grad_fn(p: Any) -> tuple[Any, Any]:
    # 0.5 * sum(w^2) + 0.5 * sum((b - 1)^2)
    w, b = p["w"], p["b"]
    return 0.5 * ((w * w).sum() + ((b - 1) * (b - 1)).sum()), {"w": 1.0 * w, "b": b - 1}


def run(opt: Any, backend: str, n: int = 5) -> Any:
    p = params_for(backend)
    s = opt.init(p)
    for _ in range(n):
        p, s = opt.step(p, grad_fn, s)
    return fnopt.to_numpy(p)


@pytest.mark.parametrize("name", ALIASES)
def test_every_alias_is_a_transform_and_an_optimizer(name):
    opt = make(name)
    assert isinstance(opt, fnopt.Transform) and isinstance(opt, fnopt.Descent)
    init, update = opt  # unpacks like an optax GradientTransformation
    assert init is opt.init and update is opt.update


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ALIASES)
def test_every_alias_composes_in_chain_and_partition(name, backend):
    alone = run(make(name), backend)
    # a clip that never clips, in front: the same trajectory
    chained = fnopt.chain(fnopt.clip_by_global_norm(1e12), make(name))
    assert isinstance(chained, fnopt.Descent)
    np.testing.assert_allclose(run(chained, backend)["w"], alone["w"], rtol=1e-12, atol=0)
    # every leaf to the alias: the same trajectory (elementwise optimizers see the
    # leaves as a list; compare leaf by leaf)
    labels = {"w": "a", "b": "a"}
    parted = fnopt.partition({"a": make(name)}, labels)
    assert isinstance(parted, fnopt.Descent)
    got = run(parted, backend)
    for k in ("w", "b"):
        np.testing.assert_allclose(got[k], alone[k], rtol=1e-12, atol=0)


def test_partition_muon_and_adamw_as_muon_error_suggests():
    labels = {"w": "m", "b": "a"}
    opt = fnopt.partition({"m": fnopt.muon(learning_rate=0.02), "a": fnopt.adamw(1e-3)}, labels)
    r = fnopt.fixed_point(opt, params_for("numpy"), grad_fn, stop=fnopt.stop.max_iters(20))
    assert r.iterations == 20 and np.isfinite(r.value)
    # each group moved by its own optimizer
    ref_b = run(fnopt.adamw(1e-3), "numpy", 20)["b"]
    np.testing.assert_allclose(r.params["b"], ref_b, rtol=1e-12)


@pytest.mark.parametrize("wrap", ["masked", "apply_if_finite", "lookahead", "accumulate",
                                  "inject_hyperparams"])
def test_wrappers_take_aliases_and_stay_optimizers(wrap):
    if wrap == "masked":
        opt = fnopt.masked(fnopt.adam(1e-2), {"w": True, "b": True})
    elif wrap == "apply_if_finite":
        opt = fnopt.apply_if_finite(fnopt.adam(1e-2))
    elif wrap == "lookahead":
        opt = fnopt.lookahead(fnopt.adam(1e-2))
    elif wrap == "accumulate":
        opt = fnopt.accumulate(2, fnopt.adam(1e-2))
    else:
        opt = fnopt.inject_hyperparams(fnopt.adam)(learning_rate=1e-2)
    assert isinstance(opt, fnopt.Descent)
    r = fnopt.fixed_point(opt, params_for("numpy"), grad_fn, stop=fnopt.stop.max_iters(10))
    assert r.iterations == 10 and r.value < grad_fn(params_for("numpy"))[0]


def test_hand_built_chain_runs_in_fixed_point_and_descent_is_idempotent():
    chain = fnopt.chain(fnopt.scale_by_adam(), fnopt.scale_by_learning_rate(1e-2))
    assert not isinstance(chain, fnopt.Descent)
    r1 = fnopt.fixed_point(chain, params_for("numpy"), grad_fn, stop=fnopt.stop.max_iters(7))
    r2 = fnopt.fixed_point(fnopt.adam(1e-2), params_for("numpy"), grad_fn,
                           stop=fnopt.stop.max_iters(7))
    np.testing.assert_array_equal(r1.params["w"], r2.params["w"])
    opt = fnopt.adam(1e-2)
    assert fnopt.descent(opt) is opt


@pytest.mark.parametrize("max_norm", [0.05, 1.0])
def test_chain_clip_adam_matches_torch_clip_grad_norm_and_adam(max_norm):
    torch = pytest.importorskip("torch")
    p0 = params_for("numpy")
    # eps=1e-6: torch's clip_grad_norm_ rule
    opt = fnopt.chain(fnopt.clip_by_global_norm(max_norm, eps=1e-6), fnopt.adam(1e-2))
    p, s = fnopt.to_torch(p0), None
    s = opt.init(p)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
    topt = torch.optim.Adam(list(tp.values()), lr=1e-2, foreach=True)
    for _ in range(50):
        p, s = opt.step(p, grad_fn, s)
        topt.zero_grad()
        _, g = grad_fn({k: v.detach() for k, v in tp.items()})
        for k in tp:
            tp[k].grad = g[k].clone()
        torch.nn.utils.clip_grad_norm_(list(tp.values()), max_norm)
        topt.step()
    for k in p0:
        np.testing.assert_allclose(fnopt.to_numpy(p[k]), tp[k].detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_combinators_refuse_non_transforms_naming_the_argument():
    with pytest.raises(TypeError, match="chain: argument 1"):
        fnopt.chain(fnopt.clip(1.0), fnopt.lbfgs())
    with pytest.raises(TypeError, match="transform"):
        fnopt.apply_if_finite(object())


@pytest.mark.parametrize("name", [*ALIASES, "muon"])
def test_options_after_learning_rate_are_keyword_only(name):
    with pytest.raises(TypeError, match="keyword-only"):
        getattr(fnopt, name)(0.1, 0.9)


def test_sgd_torch_positional_order_cannot_turn_nesterov_on():
    # torch.optim.SGD(params, 0.1, 0.9, 0.0, 1e-4) means weight decay 1e-4
    with pytest.raises(TypeError, match="keyword-only"):
        fnopt.sgd(0.1, 0.9, 0.0, 1e-4)


@pytest.mark.parametrize("call", [
    lambda: fnopt.adam(amsgrad="no"), lambda: fnopt.sgd(momentum=0.9, nesterov="yes"),
    lambda: fnopt.rmsprop(centered=1), lambda: fnopt.adam(maximize=None),
])
def test_flags_must_be_booleans(call):
    with pytest.raises(TypeError, match="expected True or False"):
        call()


def test_torch_spellings_work_or_point_to_the_fnopt_name():
    a = fnopt.adam(lr=0.01, betas=(0.8, 0.95))
    b = fnopt.adam(0.01, b1=0.8, b2=0.95)
    assert run(a, "numpy")["w"].tolist() == run(b, "numpy")["w"].tolist()
    r1 = fnopt.rmsprop(lr=0.01, alpha=0.9)
    r2 = fnopt.rmsprop(0.01, decay=0.9)
    assert run(r1, "numpy")["w"].tolist() == run(r2, "numpy")["w"].tolist()
    with pytest.raises(TypeError, match="picks its kernels"):
        fnopt.adam(lr=0.01, foreach=True)
    with pytest.raises(TypeError, match="differentiable=True"):
        fnopt.sgd(lr=0.01, differentiable=True)
    with pytest.raises(TypeError, match="both"):
        fnopt.sgd(0.1, lr=0.2)
