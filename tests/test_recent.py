"""The post-Adam optimizers as fnopt citizens: the conformance kit, composition
(chain, partition, masked, apply_if_finite), fixed_point, bitwise checkpoint/resume,
hyperparameter validation and the schedule-free evaluation point. Step-for-step
agreement with the reference packages is in test_parity_recent.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import optree
import pytest

import fnopt

LR = {"yogi": 1e-2, "adan": 1e-2, "adopt": 1e-2, "ademamix": 1e-2, "novograd": 1e-2,
      "prodigy": 1.0, "dadapt_adam": 1.0, "schedule_free_sgd": 0.1,
      "schedule_free_adamw": 1e-2}
NAMES = sorted(LR)


def make(name: str, **kw: Any) -> Any:
    if name == "sam":
        return fnopt.sam(fnopt.adam(1e-2), **kw)
    return getattr(fnopt, name)(LR[name], **kw)


def quad(p: Any) -> tuple[Any, Any]:
    """0.5 |p - 1|^2 over all leaves."""
    d = fnopt.tree.sub(p, fnopt.tree.ones_like(p))
    return 0.5 * fnopt.tree.vdot(d, d), d


def tree_np() -> dict[str, Any]:
    return {"w": np.arange(6.0).reshape(2, 3) / 6, "b": np.array([0.5, -0.5]),
            "s": np.array(2.0)}


@pytest.mark.parametrize("name", [*NAMES, "sam"])
def test_conformance_kit(name: str) -> None:
    fnopt.testing.check_optimizer(lambda: make(name), steps=6).assert_ok()


@pytest.mark.parametrize("name", NAMES)
def test_every_alias_is_a_descent_and_composes(name: str) -> None:
    opt = make(name)
    assert isinstance(opt, fnopt.Descent)
    p = tree_np()
    labels = {"w": "a", "b": "frozen", "s": "a"}
    composed = {
        "chain": fnopt.chain(fnopt.clip_by_global_norm(10.0), opt),
        "partition": fnopt.partition({"a": opt, "frozen": fnopt.set_to_zero()}, labels),
        "masked": fnopt.masked(opt, {"w": True, "b": False, "s": True}),
        "apply_if_finite": fnopt.apply_if_finite(opt, 3),
    }
    def run(o: Any, q: Any, n: int = 5) -> Any:
        st = o.init(q)
        for _ in range(n):
            q, st = o.step(q, quad, st)
        return q

    full = run(opt, p)
    sub = run(make(name), {"w": p["w"], "s": p["s"]})  # what a partition/mask sees
    for kind, c in composed.items():
        assert isinstance(c, fnopt.Descent), kind
        q = run(c, p)
        ref = sub if kind in ("partition", "masked") else full
        for k in ("w", "s"):  # the optimized leaves follow the plain optimizer ...
            np.testing.assert_allclose(q[k], ref[k], rtol=1e-12, err_msg=f"{kind} {k}")
        if kind in ("partition", "masked"):  # ... b is frozen (set_to_zero; a masked
            # optimizer freezes the leaves outside its mask, issue 21)
            np.testing.assert_array_equal(q["b"], p["b"])
        else:
            np.testing.assert_allclose(q["b"], full["b"], rtol=1e-12, err_msg=kind)


@pytest.mark.parametrize("name", NAMES)
def test_apply_if_finite_skips_a_nan_step(name: str) -> None:
    opt = fnopt.apply_if_finite(make(name), 5)
    p = tree_np()
    s = opt.init(p)
    p1, s1 = opt.step(p, quad, s)
    bad = lambda q: (np.asarray(np.nan), fnopt.tree.full_like(q, np.nan))  # noqa: E731
    p2, _ = opt.step(p1, bad, s1)
    for k in p1:
        np.testing.assert_array_equal(p2[k], p1[k])


@pytest.mark.parametrize("name", [*NAMES, "sam"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fixed_point_and_bitwise_resume(name: str, backend: str, tmp_path: Any) -> None:
    if backend == "torch":
        pytest.importorskip("torch")
    p0 = fnopt.to_torch(tree_np()) if backend == "torch" else tree_np()
    opt = make(name)
    stop = fnopt.stop.max_iters(30)
    full = fnopt.fixed_point(opt, p0, quad, stop=stop)
    assert full.iterations == 30 and full.value < float(quad(tree_np())[0])
    path = tmp_path / "run.npz"
    part = fnopt.fixed_point(opt, p0, quad, stop=stop, checkpoint_every=5,
                             checkpoint_path=path, callback=lambda i: i.iteration == 12)
    assert part.reason == "callback"
    ck = fnopt.load(path, state_like=opt.init(p0))
    rest = fnopt.fixed_point(opt, ck.params, quad, ck.state, start_iteration=ck.iteration,
                             stop=stop)
    assert rest.iterations == 30
    for x, y in zip(optree.tree_leaves(fnopt.to_numpy(rest.params)),
                    optree.tree_leaves(fnopt.to_numpy(full.params))):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
    for x, y in zip(optree.tree_leaves(fnopt.to_numpy(rest.state)),
                    optree.tree_leaves(fnopt.to_numpy(full.state))):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_minimises_a_quadratic(name: str) -> None:
    steps = 400
    r = fnopt.fixed_point(make(name), tree_np(), quad, stop=fnopt.stop.max_iters(steps))
    start = float(quad(tree_np())[0])
    value = r.value
    if name.startswith("schedule_free"):  # the evaluation point is the one that converges
        value = float(quad(fnopt.schedule_free_eval_params(r.state, r.params))[0])
    assert value < 0.05 * start, (name, value, start)


BAD = [
    ("yogi", dict(b1=1.0), ValueError, "b1"),
    ("yogi", dict(eps=-1.0), ValueError, "eps"),
    ("yogi", dict(maximize="yes"), TypeError, "maximize"),
    ("yogi", dict(initial_accumulator=-1.0), ValueError, "initial_accumulator"),
    ("adan", dict(b3=1.5), ValueError, "b3"),
    ("adan", dict(max_grad_norm=-1.0), ValueError, "max_grad_norm"),
    ("adan", dict(decoupled_weight_decay=1), TypeError, "decoupled_weight_decay"),
    ("adopt", dict(clip_lambda=3.0), TypeError, "clip_lambda"),
    ("ademamix", dict(alpha=-1.0), ValueError, "alpha"),
    ("ademamix", dict(t_alpha_beta3=0.0), ValueError, "t_alpha_beta3"),
    ("novograd", dict(grad_averaging=None), TypeError, "grad_averaging"),
    ("novograd", dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ("prodigy", dict(d0=0.0), ValueError, "d0"),
    ("prodigy", dict(beta3=1.0), ValueError, "beta3"),
    ("prodigy", dict(growth_rate=0.0), ValueError, "growth_rate"),
    ("prodigy", dict(safeguard_warmup="no"), TypeError, "safeguard_warmup"),
    ("dadapt_adam", dict(eps=0.0), ValueError, "eps"),
    ("dadapt_adam", dict(decouple=0), TypeError, "decouple"),
    ("schedule_free_sgd", dict(b1=0.0), ValueError, "b1"),
    ("schedule_free_sgd", dict(warmup_steps=-1), ValueError, "warmup_steps"),
    ("schedule_free_adamw", dict(b2=1.0), ValueError, "b2"),
    ("sam", dict(rho=-0.1), ValueError, "rho"),
    ("sam", dict(adaptive=1), TypeError, "adaptive"),
]


@pytest.mark.parametrize(("name", "kw", "exc", "arg"), BAD)
def test_bad_hyperparameters_are_named(name: str, kw: dict[str, Any], exc: type,
                                       arg: str) -> None:
    with pytest.raises(exc, match=arg):
        make(name, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_learning_rate_is_positional_first_and_options_keyword_only(name: str) -> None:
    import inspect

    sig = inspect.signature(getattr(fnopt, name))
    params = list(sig.parameters.values())
    assert params[0].name == "learning_rate"
    assert all(p.kind is p.KEYWORD_ONLY for p in params[1:])


def test_sam_rejects_a_non_transform_base() -> None:
    with pytest.raises(TypeError, match="base"):
        fnopt.sam("sgd")  # type: ignore[arg-type]


def test_schedule_free_eval_point_is_the_average() -> None:
    """x = (y - (1 - b1) z) / b1, the identity optax's function of the name uses."""
    opt = fnopt.schedule_free_adamw(0.05, b1=0.8)
    p, s = tree_np(), opt.init(tree_np())
    for _ in range(7):
        p, s = opt.step(p, quad, s)
    x = fnopt.schedule_free_eval_params(s, p)
    sf = s.inner[1]
    assert isinstance(sf, fnopt.optimizers.recent.ScheduleFreeState)
    for k in p:
        np.testing.assert_allclose(x[k], (p[k] - 0.2 * sf.z[k]) / 0.8, rtol=1e-12, atol=1e-15)
    assert fnopt.learning_rate_of(s) == 0.05
    with pytest.raises(ValueError, match="ScheduleFreeState"):
        fnopt.schedule_free_eval_params(fnopt.adam(0.1).init(p), p)
    with pytest.raises(ValueError, match="params"):
        fnopt.schedule_free_eval_params(s, {"w": p["w"]})


@pytest.mark.parametrize("name", ["prodigy", "dadapt_adam"])
def test_step_size_estimate_is_global_and_skips_zero_gradients(name: str) -> None:
    opt = make(name)
    p = tree_np()
    s = opt.init(p)
    zero = lambda q: (np.asarray(0.0), fnopt.tree.zeros_like(q))  # noqa: E731
    p1, s1 = opt.step(p, zero, s)
    for k in p:
        np.testing.assert_array_equal(p1[k], p[k])
    assert s1.inner.k == 0 and s1.inner.count == 1  # the reference's early return
    for _ in range(20):
        p1, s1 = opt.step(p1, quad, s1)
    assert s1.inner.d > s.inner.d  # the estimate grew, one scalar for the whole tree
    assert isinstance(s1.inner.d, float)


def test_smoke_bench_recent_runs_and_prints_its_table() -> None:
    """benchmarks/bench_recent.py runs (``--quick --rounds 1``) and prints a row for
    every alias whose reference is installed. No timings are asserted."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("torch")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_recent.py"), "--quick", "--rounds", "1"],
        capture_output=True, text=True, timeout=300, cwd=root, check=True, env=env,
    ).stdout
    assert "Post-Adam optimizers, one step" in out and "| variant |" in out
    assert "grad restore" in out
    for name in NAMES:
        module = {"prodigy": "prodigyopt", "dadapt_adam": "dadaptation"}.get(
            name, "schedulefree" if name.startswith("schedule_free") else "pytorch_optimizer")
        try:
            __import__(module)
        except ImportError:
            continue
        assert f"`fnopt.{name}` apply" in out, name
