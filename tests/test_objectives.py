"""fnopt.objectives: tasks, test problems, least-squares problems and the testing kit's
quadratics are one Objective type with the same fields and providers; the old module
paths are the same module objects; Rosenbrock is one function in tasks and problems."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import fnopt
from fnopt import backend as B
from fnopt.objectives import LeastSquaresProblem, Objective, Problem, Providers, Quadratic, Task


def _objectives():
    x, y = fnopt.tasks.make_linear_data(n=16)
    yield "task_rosenbrock", fnopt.tasks.rosenbrock()
    yield "task_rosenbrock_torch", fnopt.tasks.rosenbrock("torch", dim=3)
    yield "task_linear", fnopt.tasks.linear_regression(x, y)
    yield "task_mlp", fnopt.tasks.mlp((3, 4, 1), n_samples=8)
    yield "quadratic", fnopt.testing.make_quadratic({"w": np.zeros((2, 2)), "b": np.zeros(2)})
    yield "quadratic_torch", fnopt.testing.make_quadratic(backend="torch", dtype="float32")
    for p in fnopt.problems.PROBLEMS:
        yield "problem_" + p.name, p
    for p in fnopt.lsq_problems.PROBLEMS[::4]:
        yield "lsq_" + p.name, p


CASES = dict(_objectives())


@pytest.mark.parametrize("key", sorted(CASES))
def test_every_objective_has_the_shared_fields_and_a_consistent_gradient(key):
    obj = CASES[key]
    assert isinstance(obj, Objective)
    assert isinstance(obj.name, str) and obj.name
    assert obj.backend in ("numpy", "torch") and obj.dtype in ("float32", "float64")
    x0 = obj.init_params
    assert B.name_of(x0) == obj.backend
    p = obj.providers()
    assert isinstance(p, Providers)
    x = fnopt.tree.map(lambda a: a + 0.05, x0)  # off helical_valley's atan2 branch cut
    value, g = p.grad_fn(x)
    np.testing.assert_allclose(float(value), float(obj.loss(x)), rtol=1e-6)
    ref = fnopt.grad.finite_differences(obj.loss)
    scale = max(1.0, max(float(abs(B.to_numpy(v)).max()) for v in fnopt.tree.leaves(g)))
    assert fnopt.grad.check(p.grad_fn, ref, x, rtol=1e-4, atol=1e-4 * scale).ok
    if p.hvp_fn is not None and obj.dtype == "float64":  # against differences of the gradient
        v = fnopt.tree.map(lambda a: a * 0 + 1, x)
        hv = np.concatenate([B.to_numpy(a).ravel() for a in fnopt.tree.leaves(p.hvp_fn(x, v))])
        fd = fnopt.grad.hvp_finite_differences(p.grad_fn)(x, v)
        fd = np.concatenate([B.to_numpy(a).ravel() for a in fnopt.tree.leaves(fd)])
        np.testing.assert_allclose(hv, fd, rtol=1e-4, atol=1e-4 * max(1.0, abs(fd).max()))


@pytest.mark.parametrize("key", sorted(CASES))
def test_minimizers_give_min_value_and_zero_distance(key):
    obj = CASES[key]
    if not obj.minimizers:
        assert obj.min_value is None or isinstance(obj, LeastSquaresProblem)
        if isinstance(obj, LeastSquaresProblem):
            with pytest.raises(ValueError, match=r"x: .* no known minimiser"):
                obj.distance(obj.init_params)
        return
    m = obj.minimizers[0]
    assert obj.distance(m) == 0.0
    assert float(obj.loss(m)) == pytest.approx(obj.min_value, abs=1e-6)
    n = sum(int(np.size(B.to_numpy(a))) for a in fnopt.tree.leaves(m))
    moved = fnopt.tree.map(lambda a: a + 1e-3, m)  # every element 1e-3 off: 1e-3 sqrt(n)
    assert obj.distance(moved) == pytest.approx(1e-3 * np.sqrt(n), rel=1e-3)
    with pytest.raises(ValueError, match=rf"x: expected {n} elements"):
        obj.distance(np.zeros(n + 1))
    with pytest.raises(ValueError, match="x: expected params"):
        obj.distance(None)


def test_the_kinds_are_the_one_type():
    assert all(issubclass(k, Objective) for k in (Task, Problem, LeastSquaresProblem, Quadratic))
    assert fnopt.testing.Quadratic is Quadratic
    assert fnopt.testing.make_quadratic is fnopt.objectives.make_quadratic
    with pytest.raises(TypeError):
        Objective()  # type: ignore[abstract]


def test_distance_without_a_known_minimiser_is_a_value_error():
    task = fnopt.tasks.mlp((2, 3, 1), n_samples=4)
    assert task.minimizers == () and task.min_value is None
    with pytest.raises(ValueError, match="x: mlp has no known minimiser"):
        task.distance(task.init_params)


def test_providers_reject_a_backend_the_data_do_not_live_on():
    task = fnopt.tasks.rosenbrock()
    with pytest.raises(ValueError, match="backend: the rosenbrock task lives on 'numpy'"):
        task.providers("torch")
    with pytest.raises(ValueError, match="backend: expected 'numpy' or 'torch'"):
        task.providers("jax")
    q = fnopt.testing.make_quadratic()
    with pytest.raises(ValueError, match="backend"):
        q.providers("torch")
    beale = fnopt.problems.by_name("beale")  # the method forms name the backend too
    for method in (beale.grad_fn, beale.hessian_fn, beale.hvp_fn):
        with pytest.raises(ValueError, match="backend: expected 'numpy' or 'torch'"):
            method("jax")


@pytest.mark.parametrize("name", ["rosenbrock", "beale", "wood"])
def test_problem_providers_agree_across_backends(name):
    p = fnopt.problems.by_name(name)
    x = p.starts[0] + 0.1
    pn, pt = p.providers("numpy"), p.providers("torch")
    xt = torch.tensor(x)
    vn, gn = pn.grad_fn(x)
    vt, gt = pt.grad_fn(xt)
    np.testing.assert_allclose(float(vn), float(vt), rtol=1e-12)
    np.testing.assert_allclose(gn, gt.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pn.hessian_fn(x), pt.hessian_fn(xt).numpy(), rtol=1e-9, atol=1e-7)
    v = np.arange(1.0, x.size + 1.0)
    np.testing.assert_allclose(pn.hvp_fn(x, v), pt.hvp_fn(xt, torch.tensor(v)).numpy(),
                               rtol=1e-9, atol=1e-7)


def test_rosenbrock_is_one_function_in_tasks_and_problems():
    task, prob = fnopt.tasks.rosenbrock(), fnopt.problems.by_name("rosenbrock")
    rng = np.random.default_rng(0)
    for x in rng.uniform(-2, 2, size=(5, 2)):
        a, b = x  # the formula itself, written out here
        f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        g = [-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)]
        h = [[2 - 400 * (b - a * a) + 800 * a * a, -400 * a], [-400 * a, 200]]
        for obj in (task, prob):
            np.testing.assert_allclose(float(obj.loss(x)), f, rtol=1e-12)
        np.testing.assert_allclose(task.grad_fn(x)[1], g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(prob.grad(x), g, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(task.hessian(x), h, rtol=1e-12)
        np.testing.assert_allclose(prob.hessian(x), h, rtol=1e-12)
        r = prob.residuals(x)
        np.testing.assert_allclose((r * r).sum(), float(task.loss(x)), rtol=1e-12)
    # the data differ: the tutorial starts at the origin, MGH at (-1.2, 1)
    np.testing.assert_array_equal(task.init_params, [0.0, 0.0])
    np.testing.assert_array_equal(prob.init_params, [-1.2, 1.0])
    np.testing.assert_array_equal(task.solution, prob.minima[0])


def test_chained_rosenbrock_residuals_and_jacobian():
    from fnopt.objectives import _rosenbrock

    f = _rosenbrock.functions(5, 1.5, 30.0)
    x = np.random.default_rng(1).standard_normal(5)
    r = f.residuals(x)
    np.testing.assert_allclose((r * r).sum(), f.loss(x), rtol=1e-12)
    rt = f.residuals(torch.tensor(x))
    np.testing.assert_allclose(rt.numpy(), r, rtol=1e-15)
    jt = torch.func.jacrev(f.residuals)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(f.jacobian(x), jt, rtol=1e-12, atol=1e-12)


def test_linear_regression_hessian_lives_on_the_backend():
    x, y = fnopt.tasks.make_linear_data(n=10, backend="torch", dtype="float32")
    task = fnopt.tasks.linear_regression(x, y)
    h = task.hessian(task.init_params)
    assert isinstance(h, torch.Tensor) and h.dtype == torch.float32 and h.shape == (2, 2)
    xd = np.stack([x.numpy(), np.ones(10)], 1).astype(np.float64)
    np.testing.assert_allclose(h.numpy(), xd.T @ xd / 10, rtol=1e-6)


_NAMESPACES = {"tasks": "fnopt.objectives.tasks", "problems": "fnopt.objectives.problems",
               "lsq_problems": "fnopt.objectives.lsq_problems", "lsq": "fnopt.optimizers.lsq",
               "residuals": "fnopt.grad.residuals",
               "projections": "fnopt.transforms.projections"}


def test_public_namespaces_are_their_modules_whatever_the_import_order():
    # a fresh interpreter: each public name imported first, then its home module
    code = (
        "import importlib, fnopt\n"
        f"for name, home in {_NAMESPACES!r}.items():\n"
        "    a = importlib.import_module('fnopt.' + name)\n"
        "    b = importlib.import_module(home)\n"
        "    assert a is b is getattr(fnopt, name) and a.__name__ == home, name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    for name, home in _NAMESPACES.items():  # and in this process, imported the other way
        assert importlib.import_module(home) is importlib.import_module("fnopt." + name)


@pytest.mark.parametrize("old", ["fnopt.transform", "fnopt.transforms_extra", "fnopt.plateau",
                                 "fnopt.linesearch", "fnopt.second_order",
                                 "fnopt.lbfgsb"])
def test_unreleased_old_module_paths_are_gone(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_classes_pickle_under_their_home_module():
    assert Task.__module__ == "fnopt.objectives.tasks"
    assert pickle.loads(pickle.dumps(Task)) is Task
    assert pickle.loads(pickle.dumps(Problem)) is Problem


@pytest.mark.parametrize("be", [B.NUMPY, B.TORCH])
def test_backend_logsumexp_and_namespace(be):
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -5.0]])
    zz = be.from_numpy(z, torch.zeros((), dtype=torch.float64) if be is B.TORCH else z)
    got = B.to_numpy(be.logsumexp(zz, 1))
    want = np.array([[np.log(np.exp(z[0]).sum())], [1000.0 + np.log(2.0 + np.exp(-1005.0))]])
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert be.xp is (torch if be is B.TORCH else np)
