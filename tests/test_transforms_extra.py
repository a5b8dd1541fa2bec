"""The small optax transforms (fnopt.transforms.extra) and the optax-named schedules,
each against optax's documented formula written out here in NumPy (optax itself is not
needed), on both backends."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import schedules as S

BACKENDS = ["numpy", "torch"]


def to(backend: str, tree: Any) -> Any:
    if backend == "torch":
        pytest.importorskip("torch")
        return fnopt.to_torch(tree)
    return tree


def np_of(tree: Any) -> Any:
    return fnopt.to_numpy(tree)


def sample(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = {"m": rng.normal(size=(3, 4)), "t": rng.normal(size=(2, 3, 2)),
              "c": rng.normal(size=(2, 2, 2, 3)), "v": rng.normal(size=5),
              "s": np.array(0.7)}
    grads = {k: np.asarray(rng.normal(size=np.shape(x)) * 3) for k, x in params.items()}
    return params, grads


# -- optax's formulas, written out ---------------------------------------------------------


def agc_formula(g: np.ndarray, p: np.ndarray, clipping: float, eps: float) -> np.ndarray:
    """optax.adaptive_grad_clip: unitwise_norm over all axes (squeezed ndim <= 1), axis
    0 (ndim 2, 3), (0, 1, 2) (ndim 4) or (0, 1, 2, 3) (ndim 5); max_norm = clipping *
    max(p_norm, eps); where(g_norm < max_norm, g, g * max_norm / max(g_norm, 1e-6))."""
    if np.squeeze(g).ndim <= 1:
        axes: Any = None
    elif g.ndim in (2, 3):
        axes = (0,)
    else:
        axes = tuple(range(g.ndim - 1))

    def unorm(x: np.ndarray) -> np.ndarray:
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=True))

    g_norm, p_norm = unorm(g), unorm(p)
    max_norm = clipping * np.maximum(p_norm, eps)
    return np.where(g_norm < max_norm, g, g * (max_norm / np.maximum(g_norm, 1e-6)))


def centralize_formula(g: np.ndarray) -> np.ndarray:
    """optax.centralize: x - mean(x, axis=range(1, ndim), keepdims) for ndim > 1."""
    return g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True) if g.ndim > 1 else g


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_to_zero(backend: str) -> None:
    p, g = sample()
    t = fnopt.set_to_zero()
    u, _ = t.update(to(backend, g), t.init(to(backend, p)))
    for k, x in np_of(u).items():
        np.testing.assert_array_equal(x, np.zeros_like(g[k]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_nans(backend: str) -> None:
    p, g = sample()
    g["m"][1, 2] = np.nan
    g["s"] = np.array(np.nan)
    t = fnopt.zero_nans()
    s0 = t.init(to(backend, p))
    assert not any(bool(v) for v in s0.found_nan.values())
    u, s = t.update(to(backend, g), s0)
    for k, x in np_of(u).items():
        np.testing.assert_array_equal(x, np.where(np.isnan(g[k]), 0.0, g[k]))
    assert {k: bool(v) for k, v in s.found_nan.items()} == {
        k: bool(np.isnan(g[k]).any()) for k in g}
    assert np.isnan(g["m"][1, 2])  # the input is untouched


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("clipping", [0.05, 0.5, 100.0])
def test_adaptive_grad_clip(backend: str, clipping: float) -> None:
    p, g = sample()
    p["v"][:] = 1e-5  # a unit below eps: max_norm uses eps
    t = fnopt.adaptive_grad_clip(clipping, eps=1e-3)
    u, _ = t.update(to(backend, g), t.init(to(backend, p)), to(backend, p))
    for k, x in np_of(u).items():
        np.testing.assert_allclose(x, agc_formula(g[k], p[k], clipping, 1e-3), rtol=1e-12)
    with pytest.raises(ValueError, match="params"):
        t.update(g, t.init(p))


def test_adaptive_grad_clip_5d_leaves_and_axis() -> None:
    rng = np.random.default_rng(1)
    g, p = rng.normal(size=(2, 3, 2, 2, 4)), rng.normal(size=(2, 3, 2, 2, 4))
    t = fnopt.adaptive_grad_clip(0.1)
    np.testing.assert_allclose(t.update(g, t.init(p), p)[0], agc_formula(g, p, 0.1, 1e-3),
                               rtol=1e-12)
    x = np.ones((2, 2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="axis="):
        t.update(x, t.init(x), x)
    u, _ = fnopt.adaptive_grad_clip(0.1, axis=(0, 1)).update(x, t.init(x), 3 * x)
    np.testing.assert_allclose(u, np.full(x.shape, 0.3))  # 1 * (0.1 * 6) / 2, units of 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_centralize(backend: str) -> None:
    p, g = sample()
    t = fnopt.centralize()
    u, _ = t.update(to(backend, g), t.init(to(backend, p)))
    for k, x in np_of(u).items():
        np.testing.assert_allclose(x, centralize_formula(g[k]), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scale_by_schedule(backend: str) -> None:
    p, g = sample()
    fn = S.exponential_decay(2.0, 1, 0.5)
    t = fnopt.scale_by_schedule(fn)
    s = t.init(to(backend, p))
    for count in range(4):  # optax: updates * step_size_fn(count), count from 0
        u, s = t.update(to(backend, g), s)
        for k, x in np_of(u).items():
            np.testing.assert_allclose(x, g[k] * fn(count), rtol=1e-15)
    assert s.count == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_keep_params_nonnegative(backend: str) -> None:
    p, g = sample()
    p = {k: np.asarray(np.abs(x)) for k, x in p.items()}
    t = fnopt.keep_params_nonnegative()
    u, _ = t.update(to(backend, g), t.init(to(backend, p)), to(backend, p))
    for k, x in np_of(u).items():  # optax: where(p + u < 0, -p, u)
        np.testing.assert_array_equal(x, np.where(p[k] + g[k] < 0, -p[k], g[k]))
        assert (p[k] + x >= 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_add_noise_has_optax_variance(backend: str) -> None:
    """optax.add_noise: u + N(0, eta / (1 + t)^gamma), t the steps before this one."""
    eta, gamma = 0.3, 0.55
    big = {"a": np.zeros((300, 200)), "b": np.zeros(1000)}
    t = fnopt.add_noise(eta, gamma, seed=3)
    s = t.init(to(backend, big))
    for step in range(3):
        u, s = t.update(to(backend, big), s)
        noise = np.concatenate([x.ravel() for x in np_of(u).values()])
        var = eta / (1 + step) ** gamma
        assert abs(noise.var() / var - 1) < 0.03 and abs(noise.mean()) < 0.01 * math.sqrt(var)
    # a pure function of (seed, count): the same on both backends, a new draw each step
    t2 = fnopt.add_noise(eta, gamma, seed=3)
    u0, _ = t2.update(big, t2.init(big))
    u1, _ = t.update(to(backend, big), t.init(to(backend, big)))
    np.testing.assert_array_equal(np_of(u1)["b"], u0["b"])
    u2, _ = t2.update(big, t2.update(big, t2.init(big))[1])
    assert not np.array_equal(u2["b"], u0["b"])


def test_transforms_chain_and_validate() -> None:
    p, g = sample()
    opt = fnopt.chain(fnopt.zero_nans(), fnopt.centralize(), fnopt.adaptive_grad_clip(0.1),
                      fnopt.sgd(0.1), fnopt.keep_params_nonnegative())
    assert isinstance(opt, fnopt.Descent)
    q = {k: np.asarray(np.abs(x)) for k, x in p.items()}
    r = fnopt.fixed_point(opt, q, lambda x: (fnopt.tree.vdot(x, x), g),
                          stop=fnopt.stop.max_iters(5))
    assert all((x >= 0).all() for x in r.params.values())
    with pytest.raises(ValueError, match="clipping"):
        fnopt.adaptive_grad_clip(-1.0)
    with pytest.raises(ValueError, match="seed"):
        fnopt.add_noise(0.1, 0.5, seed=-1)
    with pytest.raises(ValueError, match="eta"):
        fnopt.add_noise(-0.1, 0.5, seed=0)
    with pytest.raises(TypeError, match="step_size_fn"):
        fnopt.scale_by_schedule(0.1)  # type: ignore[arg-type]


# -- schedules under optax's names ----------------------------------------------------------


def test_optax_named_schedules_follow_optax_formulas() -> None:
    T = range(0, 40)
    lin = S.linear_schedule(1.0, 0.1, 20, transition_begin=5)
    poly = S.polynomial_schedule(1.0, 0.1, 3.0, 20, transition_begin=5)
    for t in T:
        k = min(max(t - 5, 0), 20)
        assert lin(t) == pytest.approx(1.0 + (0.1 - 1.0) * k / 20, rel=1e-14)
        assert poly(t) == pytest.approx((1.0 - 0.1) * (1 - k / 20) ** 3 + 0.1, rel=1e-14)
    cos = S.cosine_decay_schedule(0.5, 30, alpha=0.2, exponent=2.0)
    for t in T:
        c = 0.5 * (1 + math.cos(math.pi * min(t, 30) / 30))
        assert cos(t) == pytest.approx(0.5 * ((1 - 0.2) * c**2 + 0.2), rel=1e-14)
    w = S.warmup_cosine_decay_schedule(0.0, 1.0, 10, 30, end_value=0.1)
    for t in T:
        if t < 10:
            want = t / 10
        else:
            c = 0.5 * (1 + math.cos(math.pi * min(t - 10, 20) / 20))
            want = 0.1 + (1.0 - 0.1) * c
        assert w(t) == pytest.approx(want, rel=1e-14, abs=1e-15)
    pc = S.piecewise_constant_schedule(2.0, {5: 0.5, 10: 0.1})
    assert [pc(t) for t in (0, 4, 5, 9, 10, 30)] == pytest.approx([2, 2, 1, 1, 0.1, 0.1])
    ex = S.exponential_decay(1.0, 4, 0.5, 2, staircase=True)
    assert [ex(t) for t in (0, 2, 5, 6, 10)] == [1.0, 1.0, 1.0, 0.5, 0.5**2]
    j = S.join_schedules([S.linear_schedule(0.0, 1.0, 4), S.cosine_decay_schedule(1.0, 4)], [4])
    assert [j(t) for t in range(9)] == pytest.approx(
        [0, 0.25, 0.5, 0.75, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5,
         0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0], abs=1e-15)


def test_cosine_onecycle_schedule_follows_optax() -> None:
    """optax.cosine_onecycle_schedule: piecewise cosine interpolation through
    boundaries {int(pct_start T): div, T: 1 / (div final_div)} from peak / div."""
    n, peak, pct, div, fdiv = 100, 0.4, 0.25, 25.0, 1e4
    s = S.cosine_onecycle_schedule(n, peak, pct, div, fdiv)
    bounds = np.array([0, int(pct * n), n])
    values = np.cumprod([peak / div, div, 1.0 / (div * fdiv)])
    for t in range(0, 130):
        if t >= n:
            want = values[-1]
        else:
            i = int(np.searchsorted(bounds, t, side="right")) - 1
            frac = (t - bounds[i]) / (bounds[i + 1] - bounds[i])
            want = values[i + 1] + (values[i] - values[i + 1]) / 2 * (math.cos(math.pi * frac) + 1)
        assert s(t) == pytest.approx(want, rel=1e-13), t
    assert s(0) == pytest.approx(peak / div) and s(25) == pytest.approx(peak)
    with pytest.raises(ValueError, match="pct_start"):
        S.cosine_onecycle_schedule(10, 1.0, pct_start=1.5)
    with pytest.raises(ValueError, match="div_factor"):
        S.cosine_onecycle_schedule(10, 1.0, div_factor=0.0)
    with pytest.raises(ValueError, match="transition_steps"):
        S.cosine_onecycle_schedule(0, 1.0)
