"""fnopt.grad: every provider agrees with the others and with finite differences on
every task, on both backends; check() reports; validation names the leaf path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fnopt
from fnopt import grad
from fnopt import tasks as T
from tests.strategies import to_backend, to_numpy


def _linreg(backend):
    x, y = T.make_linear_data(n=16, seed=3, backend=backend)
    return T.linear_regression(x, y)


# task name -> factory(backend) -> Task; float64 throughout
TASKS = {
    "rosenbrock2d": lambda be: T.rosenbrock(be),
    "rosenbrock5d": lambda be: T.rosenbrock(be, dim=5),
    "rosenbrock3d_a2_b10": lambda be: T.rosenbrock(be, dim=3, a=2.0, b=10.0),
    "linear_regression": _linreg,
    **{
        f"mlp_{act}_{loss}": (
            lambda be, act=act, loss=loss: T.mlp(
                (4, 5, 3, 1), activation=act, loss=loss, backend=be, n_samples=12
            )
        )
        for act in ("sigmoid", "tanh", "relu")
        for loss in ("mse", "bce")
    },
}

BACKENDS = ("numpy", "torch")
# points per task: the conventional start and two random ones
SEEDS = (None, 1, 2)


def _point(task, seed):
    return task.init_params if seed is None else task.init(seed)


def _providers(task):
    """All providers applicable to ``task`` (name -> grad_fn), the task's own first."""
    out = {"task": task.grad_fn, "fd": grad.finite_differences(task.loss)}
    if task.backend == "torch":
        out["torch_func"] = grad.torch_func(task.loss)
        out["torch_autograd"] = grad.torch_autograd(task.loss)
    else:
        out["validated"] = grad.validated(task.grad_fn)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(TASKS))
def test_providers_agree_with_each_other_and_finite_differences(name, backend):
    task = TASKS[name](backend)
    providers = _providers(task)
    for seed in SEEDS:
        params = _point(task, seed)
        ref_value, _ = providers["task"](params)
        for pname, g in providers.items():
            if pname == "task":
                continue
            exact = pname != "fd"
            rep = grad.check(
                g, providers["task"], params,
                rtol=1e-10 if exact else 1e-5, atol=1e-12 if exact else 1e-6,
            )
            assert rep.ok, (name, backend, seed, pname, rep)
            assert rep.value_abs_error <= 1e-12 * max(1.0, abs(float(ref_value)))


@pytest.mark.parametrize("name", list(TASKS))
def test_numpy_and_torch_agree_in_float64(name):
    t_np, t_th = TASKS[name]("numpy"), TASKS[name]("torch")
    for seed in SEEDS:
        p_np = _point(t_np, seed)
        p_th = _point(t_th, seed)
        np.testing.assert_array_equal(
            np.concatenate([np.ravel(x) for x in fnopt.tree.leaves(p_np)]),
            np.concatenate([np.ravel(x) for x in fnopt.tree.leaves(to_numpy(p_th))]),
        )
        v1, g1 = t_np.grad_fn(p_np)
        v2, g2 = t_th.grad_fn(p_th)
        assert type(v1) is np.ndarray and v1.ndim == 0
        assert isinstance(v2, torch.Tensor) and v2.ndim == 0
        np.testing.assert_allclose(float(v1), float(v2), rtol=1e-12, atol=1e-14)
        for a, b in zip(fnopt.tree.leaves(g1), fnopt.tree.leaves(to_numpy(g2))):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_providers_keep_structure_and_dtype_float32(backend):
    task = T.mlp((3, 4, 2), activation="tanh", backend=backend, dtype="float32", n_samples=8)
    for g in _providers(task).values():
        value, grads = g(task.init_params)
        assert value.dtype == task.init_params["w1"].dtype
        assert fnopt.tree.structure(grads) == fnopt.tree.structure(task.init_params)
        for a, b in zip(fnopt.tree.leaves(grads), fnopt.tree.leaves(task.init_params)):
            assert a.dtype == b.dtype and a.shape == b.shape


@pytest.mark.parametrize("backend", BACKENDS)
def test_minibatch_arguments_are_passed(backend):
    task = _linreg(backend)
    x, y = task.data
    theta = task.init(0)
    full = task.grad_fn(theta)
    half = task.grad_fn(theta, x[:8], y[:8])
    fd_half = grad.finite_differences(task.loss)(theta, x[:8], y[:8])
    assert float(full[0]) != pytest.approx(float(half[0]))
    np.testing.assert_allclose(to_numpy(half[1]), to_numpy(fd_half[1]), rtol=1e-6, atol=1e-8)


def test_torch_autograd_unused_params_get_zero_grads_and_detached_outputs():
    g = grad.torch_autograd(lambda p: (p["a"] ** 2).sum())
    p = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([5.0])}
    value, grads = g(p)
    assert not value.requires_grad and not grads["a"].requires_grad
    torch.testing.assert_close(grads["b"], torch.zeros(1))
    assert not p["a"].requires_grad  # the caller's tensors are untouched


def test_from_functions_accepts_python_and_numpy_scalars():
    g = grad.from_functions(lambda p: float(p @ p), lambda p: 2 * p)
    v, _ = g(np.array([1.0, 2.0]))
    assert isinstance(v, np.ndarray) and v.ndim == 0 and float(v) == 5.0


# -- check() report -------------------------------------------------------------------


def test_check_reports_worst_leaf_path_and_errors():
    loss = lambda p: (p["w"] ** 2).sum() + 3.0 * p["b"][0].sum()  # noqa: E731
    right = grad.from_functions(loss, lambda p: {"w": 2 * p["w"], "b": [np.full(2, 3.0)]})
    wrong = grad.from_functions(
        loss, lambda p: {"w": 2 * p["w"], "b": [np.array([3.0, 3.5])]}
    )
    params = {"w": np.array([1.0, -2.0]), "b": [np.zeros(2)]}
    ok = grad.check(right, grad.finite_differences(loss), params)
    assert ok.ok and bool(ok) and ok.max_abs_error < 1e-6 and ok.max_rel_error < 1e-6
    rep = grad.check(wrong, right, params)
    assert not rep.ok and not bool(rep)
    assert rep.worst_path == "['b'][0]"
    assert rep.max_abs_error == pytest.approx(0.5)
    assert rep.max_rel_error == pytest.approx(0.5 / 3.0)
    assert rep.value_abs_error == 0.0
    # a looser tolerance accepts it; the worst leaf is still named
    loose = grad.check(wrong, right, params, rtol=0.2)
    assert loose.ok and loose.worst_path == "['b'][0]"


def test_check_value_error_and_torch_params():
    f = lambda p: (p ** 2).sum()  # noqa: E731
    shifted = lambda p: (f(p) + 1.0, 2 * p)  # noqa: E731
    rep = grad.check(shifted, grad.torch_func(f), torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert rep.ok and rep.value_abs_error == pytest.approx(1.0)
    assert rep.worst_path == "<root>"


@pytest.mark.parametrize("rtol, atol", [(-1.0, 0.0), (1e-5, float("nan"))])
def test_check_validates_tolerances(rtol, atol):
    g = grad.from_functions(lambda p: p @ p, lambda p: 2 * p)
    with pytest.raises(ValueError, match="rtol" if rtol < 0 else "atol"):
        grad.check(g, g, np.ones(2), rtol=rtol, atol=atol)


# -- validation at the boundary ---------------------------------------------------------

PARAMS = {"w": np.ones((2, 3)), "b": [np.zeros(3), np.zeros(1)]}


def _bad_from_functions(kind):
    good = lambda p: {"w": 2 * p["w"], "b": [p["b"][0] + 1, p["b"][1] + 1]}  # noqa: E731
    loss = lambda p: (p["w"] ** 2).sum()  # noqa: E731
    if kind == "shape":
        return loss, lambda p: {**good(p), "w": np.ones((3, 2))}
    if kind == "dtype":
        return loss, lambda p: {**good(p), "b": [np.zeros(3), np.zeros(1, np.float32)]}
    if kind == "structure":
        return loss, lambda p: {"w": good(p)["w"], "b": good(p)["b"][:1]}
    if kind == "backend":
        return loss, lambda p: {**good(p), "b": [torch.zeros(3), torch.zeros(1)]}
    if kind == "scalar":
        return loss, lambda p: {**good(p), "b": [np.zeros(3), np.float64(0.0)]}
    if kind == "nonscalar":
        return (lambda p: p["w"] ** 2), good
    if kind == "notnumber":
        return (lambda p: "1.0"), good
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, exc, match",
    [
        ("shape", ValueError, r"leaf \['w'\] has shape \(3, 2\), params leaf has \(2, 3\)"),
        ("dtype", TypeError, r"leaf \['b'\]\[1\] has dtype float32, params leaf has float64"),
        ("structure", ValueError, r"grads: structure .* does not match params structure"),
        ("backend", TypeError, r"grads: leaf \['b'\]\[0\] is Tensor, params leaf is ndarray"),
        ("scalar", TypeError, r"grads: leaf \['b'\]\[1\] is float64, params leaf is ndarray"),
        ("nonscalar", ValueError, r"value.*must be a scalar.*shape \(2, 3\)"),
        ("notnumber", TypeError, r"value_fn: must be a 0-d array or tensor, got str"),
    ],
)
def test_from_functions_validation_names_the_leaf(kind, exc, match):
    g = grad.from_functions(*_bad_from_functions(kind))
    before = to_backend(PARAMS, "numpy")
    with pytest.raises(exc, match=match):
        g(PARAMS)
    np.testing.assert_array_equal(PARAMS["w"], before["w"])


def test_validated_wraps_any_grad_fn():
    g = grad.validated(lambda p: (p.sum(), p[:1]))
    with pytest.raises(ValueError, match=r"grad_fn grads: leaf <root> has shape \(1,\)"):
        g(np.ones(2))
    with pytest.raises(TypeError, match=r"must return a \(value, grads\) pair"):
        grad.validated(lambda p: p)(np.ones(2))


def test_torch_providers_reject_nonscalar_loss():
    p = torch.ones(3, dtype=torch.float64)
    with pytest.raises((ValueError, RuntimeError)):
        grad.torch_func(lambda p: p * 2)(p)
    with pytest.raises(ValueError, match="loss_fn: must be a scalar"):
        grad.torch_autograd(lambda p: p * 2)(p)
    with pytest.raises(ValueError, match="loss_fn: must be a scalar"):
        grad.finite_differences(lambda p: p * 2)(p)


@pytest.mark.parametrize(
    "params, exc, match",
    [
        ({"w": np.ones(2, dtype=np.int64)}, TypeError, r"leaf \['w'\] has dtype int64"),
        ({"w": np.ones(2), "b": torch.ones(1)}, TypeError, "mix numpy and torch"),
        ({"w": np.ones(0)}, ValueError, r"leaf \['w'\] has zero size"),
        ({}, ValueError, "empty pytree"),
    ],
)
def test_finite_differences_and_check_validate_params(params, exc, match):
    f = grad.finite_differences(lambda p: sum(float(x.sum()) for x in fnopt.tree.leaves(p)))
    with pytest.raises(exc, match=match):
        f(params)
    with pytest.raises(exc, match=match):
        grad.check(f, f, params)


@pytest.mark.parametrize(
    "factory, args, exc, match",
    [
        (grad.from_functions, (1, lambda p: p), TypeError, "value_fn: expected a callable"),
        (grad.from_functions, (lambda p: p, None), TypeError, "grad_fn: expected a callable"),
        (grad.torch_func, (3,), TypeError, "loss_fn: expected a callable"),
        (grad.torch_autograd, ("f",), TypeError, "loss_fn: expected a callable"),
        (grad.finite_differences, (lambda p: p, -1.0), ValueError, "step: expected"),
        (grad.finite_differences, (lambda p: p, "a"), TypeError, "step: expected"),
    ],
)
def test_factories_validate_arguments(factory, args, exc, match):
    with pytest.raises(exc, match=match):
        factory(*args)


def test_finite_differences_explicit_step_and_float32():
    f = lambda p: (p ** 3).sum()  # noqa: E731
    _, g = grad.finite_differences(f, step=1e-4)(np.array([2.0, -1.0]))
    np.testing.assert_allclose(g, [12.0, 3.0], rtol=1e-7)
    _, g32 = grad.finite_differences(f)(np.array([2.0, -1.0], dtype=np.float32))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, [12.0, 3.0], rtol=1e-3)


# -- properties ----------------------------------------------------------------------------

_ROSEN = {be: {d: T.rosenbrock(be, dim=d) for d in (2, 3, 4)} for be in BACKENDS}


@settings(max_examples=25)
@given(
    x=st.integers(2, 4).flatmap(
        lambda d: hnp.arrays(np.float64, d, elements=st.floats(-2, 2, allow_subnormal=False))
    )
)
def test_rosenbrock_providers_agree_at_random_points(x):
    t_np, t_th = _ROSEN["numpy"][x.size], _ROSEN["torch"][x.size]
    v1, g1 = t_np.grad_fn(x)
    v2, g2 = t_th.grad_fn(torch.tensor(x))
    v3, g3 = grad.torch_autograd(t_th.loss)(torch.tensor(x))
    _, g4 = grad.finite_differences(t_np.loss)(x)
    assert float(v1) == pytest.approx(float(v2), rel=1e-12, abs=1e-12)
    assert float(v3) == float(v2)
    np.testing.assert_allclose(g1, g2.numpy(), rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(g2.numpy(), g3.numpy())
    np.testing.assert_allclose(g1, g4, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_finite_differences_on_non_contiguous_leaves(backend):
    # a Fortran-ordered array / a transposed tensor: every element must be perturbed
    base = np.arange(1.0, 7.0).reshape(2, 3)
    if backend == "numpy":
        leaf = np.asfortranarray(base)
    else:
        leaf = torch.tensor(base.T.copy()).T
    _, g = fnopt.grad.finite_differences(lambda p: (p**3).sum())(leaf)
    np.testing.assert_allclose(fnopt.backend.to_numpy(g), 3 * base**2, rtol=1e-6)


# -- check() with its default tolerances: from the params' dtype ---------------------------


def _smooth_problem(seed, backend, dtype):
    """A random smooth function (quadratic + sines + quartic) at a random point of a
    random scale, with its hand-written gradient, evaluated in ``dtype``."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    m = rng.standard_normal((n, n))
    a, b, c = m @ m.T / n, rng.standard_normal(n), rng.standard_normal(n)
    x = 10.0 ** rng.uniform(-1, 1) * rng.standard_normal(n)
    if backend == "numpy":
        a, b, c, x = (np.asarray(v, dtype=dtype) for v in (a, b, c, x))
        sin, cos, q = np.sin, np.cos, np.asarray(0.05, dtype=dtype)
    else:
        tdt = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
        a, b, c, x = (torch.tensor(v, dtype=tdt) for v in (a, b, c, x))
        sin, cos, q = torch.sin, torch.cos, torch.tensor(0.05, dtype=tdt)

    def f(p):
        return 0.5 * p @ a @ p + b @ p + (c * sin(p)).sum() + q * (p**4).sum()

    def g(p):
        return a @ p + b + c * cos(p) + 4 * q * p**3

    wrong_by = rng.choice([-0.01, 0.01], size=n)  # each element off by 1%
    wrong_by = to_backend(wrong_by.astype(dtype), backend)

    def g_wrong(p):
        return g(p) * (1 + wrong_by)

    return f, g, g_wrong, x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_check_defaults_pass_correct_and_fail_1_percent_wrong_gradients(backend, dtype):
    passed = caught = 0
    for seed in range(20):
        f, g, g_wrong, x = _smooth_problem(seed, backend, dtype)
        fd = grad.finite_differences(f)
        passed += grad.check(grad.from_functions(f, g), fd, x).ok
        caught += not grad.check(grad.from_functions(f, g_wrong), fd, x).ok
    assert passed == 20 and caught == 20, (passed, caught)


def test_check_default_tolerances_follow_the_dtype():
    # an error of 1e-6 (relative) is round-off in float32 but a bug in float64
    g32 = lambda p: ((p * p).sum(), 2 * p)  # noqa: E731
    off = lambda p: ((p * p).sum(), 2 * p * (1 + p.dtype.type(1e-6)))  # noqa: E731
    x = np.array([1.0, -2.0, 3.0])
    assert grad.check(off, g32, x.astype(np.float32)).ok
    assert not grad.check(off, g32, x).ok
    # explicit tolerances still win
    assert grad.check(off, g32, x, rtol=1e-5, atol=0.0).ok

