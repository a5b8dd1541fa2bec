"""fnopt.problems: hand-written gradients and Hessians agree with finite differences and
torch.func; the listed minimisers are stationary with the listed minimum; the losses
are the same on both backends; lookup and start points behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fnopt
from fnopt import problems

NAMES = [p.name for p in problems.PROBLEMS]

# Moré-Garbow-Hillstrom values at the standard start points (MGH 1981, p. 26-28)
# and other closed forms, as an independent check of the formulas.
F_AT_START = {
    "rosenbrock": 24.2,
    "beale": 14.203125,
    "booth": 74.0,
    "himmelblau": 170.0,
    "powell_singular": 215.0,
    "wood": 19192.0,
    "freudenstein_roth": 400.5,
    "brown_badly_scaled": 0.999998000003e12,
    "helical_valley": 2500.0,
    "jennrich_sampson": 4171.306,
    "box_3d": 1031.1538,
}


def test_names_are_unique_and_lookup_works():
    assert len(set(NAMES)) == len(NAMES) >= 12
    assert problems.names() == NAMES
    assert problems.by_name("wood").dim == 4
    with pytest.raises(ValueError, match="name: no problem"):
        problems.by_name("nope")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_start_points(name):
    p = problems.by_name(name)
    assert p.starts and p.minima
    for x in (*p.starts, *p.minima):
        assert x.shape == (p.dim,) and x.dtype == np.float64
    x0 = p.start()
    x0[0] += 1.0  # a fresh copy every time
    assert p.start()[0] == p.starts[0][0]
    t = p.start(0, "torch", "float32")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    with pytest.raises(ValueError, match="backend"):
        p.start(0, "jax")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(F_AT_START))
def test_loss_at_the_standard_start_matches_the_literature(name):
    p = problems.by_name(name)
    np.testing.assert_allclose(float(p.loss(p.starts[0])), F_AT_START[name], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_minimisers_are_stationary_with_the_listed_minimum(name):
    p = problems.by_name(name)
    np.testing.assert_allclose(float(p.loss(p.minima[0])), p.f_min, rtol=1e-12, atol=1e-20)
    for m in p.minima:
        g = p.grad(m)
        assert np.linalg.norm(g) <= 1e-8 * max(1.0, np.abs(p.hessian(m)).max())
        # a minimiser: the Hessian is positive semidefinite there
        assert np.linalg.eigvalsh(p.hessian(m)).min() >= -1e-8 * np.abs(p.hessian(m)).max()
    assert p.distance(p.minima[0]) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    p = problems.by_name(name)
    for x in (*p.starts, *p.minima):
        x = x + 0.01
        atol = 1e-6 * max(1.0, np.abs(p.grad(x)).max())  # brown_badly_scaled: |g| ~ 1e10
        report = fnopt.grad.check(
            p.grad_fn(), fnopt.grad.finite_differences(p.loss), x, rtol=1e-5, atol=atol
        )
        assert report.ok, (name, report)


@given(st.sampled_from(NAMES), st.integers(0, 2**31 - 1))
def test_numpy_derivatives_match_torch_func(name, seed):
    p = problems.by_name(name)
    rng = np.random.default_rng(seed)
    x = p.starts[0] + 0.1 * rng.standard_normal(p.dim) * np.maximum(1.0, np.abs(p.starts[0]))
    xt = torch.tensor(x)
    f_t = float(p.loss(xt))
    np.testing.assert_allclose(float(p.loss(x)), f_t, rtol=1e-12)
    g_t = torch.func.grad(p.loss)(xt).numpy()
    h_t = torch.func.hessian(p.loss)(xt).numpy()
    np.testing.assert_allclose(p.grad(x), g_t, rtol=1e-9, atol=1e-9 * np.abs(g_t).max())
    np.testing.assert_allclose(p.hessian(x), h_t, rtol=1e-9, atol=1e-9 * np.abs(h_t).max())
    v, g = p.grad_fn("torch")(xt)
    np.testing.assert_allclose(g.numpy(), g_t)
    assert float(v) == f_t


@pytest.mark.parametrize("name", NAMES)
def test_hessian_is_symmetric_and_the_providers_return_it(name):
    p = problems.by_name(name)
    x = p.starts[0]
    h = p.hessian(x)
    np.testing.assert_array_equal(h, h.T)
    np.testing.assert_array_equal(p.hessian_fn()(x), h)
    v = np.ones(p.dim)
    np.testing.assert_allclose(p.hvp_fn()(x, v), h @ v)


def test_distance_is_to_the_nearest_minimiser():
    p = problems.by_name("himmelblau")
    assert p.distance(np.array([3.0, 2.5])) == pytest.approx(0.5)
    x = torch.tensor([-2.805118086952745, 3.131312518250573], dtype=torch.float64)
    assert p.distance(x) < 1e-12
