"""fnopt.tasks: Rosenbrock derivatives, the linear-regression data and its closed-form
solution, and an MLP whose loss can approach zero."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import fnopt
from fnopt import tasks as T
from tests.strategies import to_numpy

BACKENDS = ("numpy", "torch")


# -- Rosenbrock ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim, a, b", [(2, 1.0, 100.0), (4, 1.0, 100.0), (3, 0.5, 20.0)])
def test_rosenbrock_hessian_matches_finite_differences(backend, dim, a, b):
    task = T.rosenbrock(backend, dim=dim, a=a, b=b)
    conv = (lambda v: torch.tensor(v)) if backend == "torch" else (lambda v: v)
    for seed in (0, 1, 2):
        x = to_numpy(task.init(seed))
        n = x.size
        cols = []
        for i in range(n):
            e = np.zeros(n)
            e[i] = 1e-5
            gp = to_numpy(task.grad_fn(conv(x + e))[1])
            gm = to_numpy(task.grad_fn(conv(x - e))[1])
            cols.append((gp - gm) / 2e-5)
        fd = np.stack(cols, axis=1)
        hess = to_numpy(task.hessian(conv(x)))
        assert hess.shape == (n, n)
        np.testing.assert_allclose(hess, hess.T, atol=1e-12)
        np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim, a", [(2, 1.0), (2, 2.0), (6, 1.0)])
def test_rosenbrock_start_and_solution(backend, dim, a):
    task = T.rosenbrock(backend, dim=dim, a=a)
    start = to_numpy(task.init_params)
    np.testing.assert_array_equal(start, np.zeros(dim))  # the classic start (0, 0)
    assert float(task.loss(task.init_params)) == pytest.approx((dim - 1) * a * a)
    sol = to_numpy(task.solution)
    np.testing.assert_allclose(sol, [a, a * a] if dim == 2 else np.ones(dim))
    value, g = task.grad_fn(task.solution)
    assert float(value) == 0.0
    np.testing.assert_array_equal(to_numpy(g), np.zeros(dim))
    # the Hessian at the minimum is positive definite
    assert np.linalg.eigvalsh(to_numpy(task.hessian(task.solution))).min() > 0


def test_rosenbrock_no_solution_known_for_nd_with_other_a():
    assert T.rosenbrock(dim=3, a=2.0).solution is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_task_dtypes_and_backends(backend, dtype):
    for task in (
        T.rosenbrock(backend, dtype=dtype),
        T.linear_regression(*T.make_linear_data(backend=backend, dtype=dtype)),
        T.mlp(backend=backend, dtype=dtype),
    ):
        assert task.backend == backend and task.dtype == dtype
        for p in (task.init_params, task.init(3)):
            assert fnopt.backend.name_of(p) == backend
            for leaf in fnopt.tree.leaves(p):
                assert str(leaf.dtype).replace("torch.", "") == dtype
        value, grads = task.grad_fn(task.init_params)
        assert str(value.dtype).replace("torch.", "") == dtype
        assert fnopt.tree.structure(grads) == fnopt.tree.structure(task.init_params)


def test_init_is_seeded_and_same_on_both_backends():
    for make in (lambda be: T.rosenbrock(be, dim=3), lambda be: T.mlp(backend=be)):
        a, b = make("numpy"), make("torch")
        for s in (0, 7):
            for x, y in zip(fnopt.tree.leaves(a.init(s)), fnopt.tree.leaves(to_numpy(b.init(s)))):
                np.testing.assert_array_equal(x, y)
        assert not np.array_equal(
            fnopt.tree.leaves(a.init(0))[0], fnopt.tree.leaves(a.init(1))[0]
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"backend": "jax"}, "backend"),
        ({"dim": 1}, "dim"),
        ({"dim": 2.5}, "dim"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_rosenbrock_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.rosenbrock(**kwargs)


# -- linear regression ----------------------------------------------------------------------


def test_make_linear_data_same_numbers_on_both_backends():
    for seed in (0, 5):
        xn, yn = T.make_linear_data(n=50, seed=seed)
        xt, yt = T.make_linear_data(n=50, seed=seed, backend="torch")
        assert isinstance(xt, torch.Tensor) and xt.dtype == torch.float64
        np.testing.assert_array_equal(xn, xt.numpy())
        np.testing.assert_array_equal(yn, yt.numpy())
    x, y = T.make_linear_data(n=1000, slope=2.0, intercept=3.0, noise=2.0, seed=1)
    assert x.min() >= 0 and x.max() < 5
    resid = y - (2.0 * x + 3.0)
    assert resid.min() >= 0 and resid.max() < 2.0  # uniform noise in [0, noise)
    x0, y0 = T.make_linear_data(n=10, noise=0.0, slope=-1.0, intercept=0.5)
    np.testing.assert_allclose(y0, -x0 + 0.5)
    assert not np.array_equal(T.make_linear_data(seed=0)[0], T.make_linear_data(seed=1)[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": 1}, "n:"), ({"noise": -1.0}, "noise"), ({"backend": "cupy"}, "backend")],
)
def test_make_linear_data_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.make_linear_data(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_regression_solution_is_least_squares(backend):
    x, y = T.make_linear_data(n=40, seed=2, backend=backend)
    task = T.linear_regression(x, y)
    xn, yn = to_numpy(x), to_numpy(y)
    slope, intercept = np.polyfit(xn, yn, 1)
    np.testing.assert_allclose(to_numpy(task.solution), [slope, intercept], rtol=1e-10)
    _, g = task.grad_fn(task.solution)
    assert float(fnopt.tree.global_norm(g)) < 1e-10
    # loss = 1/(2m) |X theta - y|^2
    theta = np.array([1.5, -0.5])
    want = np.sum((xn * 1.5 - 0.5 - yn) ** 2) / (2 * len(yn))
    got = task.loss(torch.tensor(theta) if backend == "torch" else theta)
    assert float(got) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(to_numpy(task.predict(task.solution, x)),
                               slope * xn + intercept, rtol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_reaches_the_closed_form_least_squares_solution(backend):
    task = T.linear_regression(*T.make_linear_data(backend=backend))
    stop = fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(20_000)
    r = fnopt.fixed_point(fnopt.sgd(0.1), task.init_params, task.grad_fn, stop=stop)
    assert r.reason == "grad_norm_below" and r.converged
    np.testing.assert_allclose(to_numpy(r.params), to_numpy(task.solution), atol=1e-8)
    assert r.value == pytest.approx(float(task.loss(task.solution)), rel=1e-12)


def test_linear_regression_multivariate():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 4.0
    task = T.linear_regression(x, y)
    np.testing.assert_allclose(task.solution, [1.0, -2.0, 0.5, 4.0], atol=1e-10)
    assert task.init_params.shape == (4,)
    ref = fnopt.grad.finite_differences(task.loss)
    assert fnopt.grad.check(task.grad_fn, ref, task.init(1), rtol=1e-6).ok


@pytest.mark.parametrize(
    "x, y, exc",
    [
        (np.ones((3, 2, 2)), np.ones(3), ValueError),
        (np.ones(3), np.ones(4), ValueError),
        (np.ones(3), np.ones((3, 1)), ValueError),
        (np.ones(3), torch.ones(3), TypeError),
    ],
)
def test_linear_regression_validation(x, y, exc):
    with pytest.raises(exc, match="x, y"):
        T.linear_regression(x, y)


# -- MLP ------------------------------------------------------------------------------------


def test_mlp_param_shapes():
    task = T.mlp((5, 4, 3, 2))
    shapes = {k: v.shape for k, v in task.init_params.items()}
    assert shapes == {"w1": (5, 4), "b1": (4,), "w2": (4, 3), "b2": (3,),
                      "w3": (3, 2), "b3": (2,)}
    x, y = task.data
    assert x.shape == (64, 5) and y.shape == (64, 2)
    assert task.predict(task.init_params, x).shape == (64, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mlp_synthetic_data_same_on_both_backends(backend):
    a, b = T.mlp(loss="bce"), T.mlp(loss="bce", backend=backend)
    for u, v in zip(a.data, b.data):
        np.testing.assert_array_equal(u, to_numpy(v))
    assert set(np.unique(a.data[1])) <= {0.0, 1.0} and 0 < a.data[1].mean() < 1
    assert float(a.loss(a.init_params)) == pytest.approx(float(b.loss(b.init_params)), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_mlp_loss_can_approach_zero(backend, loss):
    task = T.mlp((5, 3, 1), activation="sigmoid", loss=loss, backend=backend)
    start = float(task.loss(task.init_params))
    r = fnopt.fixed_point(
        fnopt.sgd(0.5, momentum=0.9), task.init_params, task.grad_fn,
        stop=fnopt.stop.loss_below(1e-2 * start) | fnopt.stop.max_iters(4000),
    )
    assert r.reason == "loss_below", (start, r.value)
    assert r.value <= 1e-2 * start


def test_mlp_with_user_data():
    x = np.random.default_rng(0).standard_normal((10, 2))
    y = (x[:, 0] > 0).astype(float)
    task = T.mlp((2, 4, 1), activation="tanh", loss="bce", data=(x, y))
    assert task.data[1].shape == (10, 1)
    ref = fnopt.grad.finite_differences(task.loss)
    assert fnopt.grad.check(task.grad_fn, ref, task.init_params, rtol=1e-6).ok
    # bce from logits is the textbook formula
    z = task.init_params
    p = task.predict(z, x)[:, 0]
    want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert float(task.loss(z)) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "gelu"}, "activation"),
        ({"loss": "hinge"}, "loss"),
        ({"sizes": (5,)}, "sizes"),
        ({"sizes": (5, 0, 1)}, "sizes"),
        ({"backend": "jax"}, "backend"),
        ({"dtype": "int32"}, "dtype"),
        ({"data": (np.ones((4, 3)), np.ones(4))}, "data"),
    ],
)
def test_mlp_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.mlp(**kwargs)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["rosenbrock", "linear_regression", "mlp"])
def test_every_task_init_takes_the_seed_keyword(name, backend):
    make = {
        "rosenbrock": lambda: T.rosenbrock(backend),
        "linear_regression": lambda: T.linear_regression(
            *T.make_linear_data(n=8, seed=0, backend=backend)
        ),
        "mlp": lambda: T.mlp((2, 3, 1), backend=backend, n_samples=4),
    }[name]
    task = make()
    assert list(inspect.signature(task.init).parameters) == ["seed"]
    a, b, c = task.init(seed=3), task.init(3), task.init(seed=4)
    leaves = fnopt.tree.leaves
    assert all(np.array_equal(to_numpy(x), to_numpy(y)) for x, y in zip(leaves(a), leaves(b)))
    assert not all(np.array_equal(to_numpy(x), to_numpy(y)) for x, y in zip(leaves(a), leaves(c)))
