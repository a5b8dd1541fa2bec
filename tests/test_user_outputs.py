"""What a user's functions return: NumPy scalars as the gradient of 0-d leaves (on every
optimizer, by a pure step, inside fixed_point and batched), and wrong outputs reaching
the caller as the same named ValueError/TypeError on every path."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt import grad

# y = 2 x + 1: a line fit with two 0-d params whose hand-written gradients are means,
# so they come back as np.float64, not as 0-d arrays
X = np.linspace(-1.0, 1.0, 8)
Y = 2.0 * X + 1.0


def _params() -> dict[str, np.ndarray]:
    return {"w": np.array(0.0), "b": np.array(0.0)}


def _loss(p: dict[str, Any]) -> Any:
    r = p["w"] * X + p["b"] - Y
    return (r * r).mean()


def _grads(p: dict[str, Any]) -> dict[str, Any]:
    r = p["w"] * X + p["b"] - Y
    return {"w": 2.0 * (r * X).mean(), "b": 2.0 * r.mean()}


def _raw(p: dict[str, Any]) -> tuple[Any, Any]:
    return _loss(p), _grads(p)


def _hessian(p: dict[str, Any]) -> np.ndarray:
    del p
    return np.array([[2.0, 2.0 * X.mean()], [2.0 * X.mean(), 2.0 * (X * X).mean()]])


def test_the_gradients_really_are_numpy_scalars():
    g = _grads(_params())
    assert type(g["w"]) is np.float64 and type(g["b"]) is np.float64
    assert type(_loss(_params())) is np.float64


def _first_order() -> dict[str, Any]:
    """Every public optimizer factory whose first argument is the learning rate."""
    found = {}
    for name, obj in fnopt.testing.optimizer_factories().items():
        if next(iter(inspect.signature(obj).parameters), None) == "learning_rate":
            found[name] = obj
    return found


FIRST_ORDER = _first_order()
# muon orthogonalises matrices and rejects other leaves by design (route them with
# fnopt.partition): it is covered by test_muon_rejects_scalar_leaves_by_design
MATRIX_ONLY = {"muon"}
OPTIMIZERS: dict[str, Any] = {
    **{name: (lambda f=f: f(0.05)) for name, f in FIRST_ORDER.items() if name not in MATRIX_ONLY},
    "descent": lambda: fnopt.descent(fnopt.scale_by_learning_rate(0.05)),
    "sgd_momentum": lambda: fnopt.sgd(0.05, momentum=0.9),
    "sgd_nesterov": lambda: fnopt.sgd(0.05, momentum=0.9, nesterov=True),
    "adam_amsgrad_wd": lambda: fnopt.adam(0.05, amsgrad=True, weight_decay=1e-3),
    "lbfgs": lambda: fnopt.lbfgs(),
    "bfgs": lambda: fnopt.bfgs(),
    "nonlinear_cg": lambda: fnopt.nonlinear_cg(),
    "newton": lambda: fnopt.newton(grad.hessian_from_function(_hessian)),
    "newton_raw_hessian": lambda: fnopt.newton(_hessian),
    "newton_cg": lambda: fnopt.newton_cg(
        lambda p, v: {"w": 2.0 * (X * (v["w"] * X + v["b"])).mean(),
                      "b": 2.0 * (v["w"] * X + v["b"]).mean()}
    ),
    "line_search": lambda: fnopt.line_search(fnopt.scale(-1.0)),
}


def test_the_table_covers_the_first_order_zoo():
    assert {"sgd", "adam", "adamw", "rmsprop", "adagrad", "lion"} <= set(FIRST_ORDER)


def test_muon_rejects_scalar_leaves_by_design():
    with pytest.raises(ValueError, match=r"leaf \['b'\] has shape \(\); scale_by_muon needs"):
        fnopt.muon(0.05).init(_params())


def _is_0d_array_tree(p: Any) -> bool:
    return (set(p) == {"w", "b"}
            and all(type(p[k]) is np.ndarray and p[k].shape == () for k in p))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("provider", ["raw", "from_functions"])
def test_numpy_scalar_gradients_by_pure_step(name, provider):
    opt = OPTIMIZERS[name]()
    grad_fn = _raw if provider == "raw" else grad.from_functions(_loss, _grads)
    p = _params()
    s = opt.init(p)
    for _ in range(3):
        p, s = opt.step(p, grad_fn, s)
    assert _is_0d_array_tree(p), p
    assert all(p[k].dtype == np.float64 for k in p)
    assert np.isfinite(float(s.value)) and np.isfinite(float(s.grad_norm))
    assert float(_loss(p)) < float(_loss(_params()))  # it moved downhill


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("provider", ["raw", "from_functions"])
def test_numpy_scalar_gradients_inside_fixed_point(name, provider):
    opt = OPTIMIZERS[name]()
    grad_fn = _raw if provider == "raw" else grad.from_functions(_loss, _grads)
    start = _params()
    r = fnopt.fixed_point(opt, start, grad_fn, stop=fnopt.stop.max_iters(4))
    assert r.reason == "max_iters" or r.converged, r.message
    assert _is_0d_array_tree(r.params), r.params
    assert float(_loss(r.params)) < float(_loss(start))
    assert start["w"] == 0.0 and start["b"] == 0.0  # the caller's arrays untouched


def test_second_order_methods_converge_with_numpy_scalar_gradients():
    for name in ("lbfgs", "bfgs", "newton", "newton_cg"):
        r = fnopt.fixed_point(OPTIMIZERS[name](), _params(), _raw,
                              stop=fnopt.stop.grad_norm_below(1e-9) | fnopt.stop.max_iters(50))
        assert r.converged, (name, r.message)
        np.testing.assert_allclose([r.params["w"], r.params["b"]], [2.0, 1.0], atol=1e-7)


def test_float32_scalar_gradients_keep_the_dtype():
    x32, y32 = X.astype(np.float32), Y.astype(np.float32)

    def raw(p):
        r = p["w"] * x32 + p["b"] - y32
        return (r * r).mean(), {"w": 2 * (r * x32).mean(), "b": 2 * r.mean()}

    p32 = {"w": np.array(0.0, np.float32), "b": np.array(0.0, np.float32)}
    assert type(raw(p32)[1]["b"]) is np.float32
    for opt in (fnopt.adam(0.05), fnopt.lbfgs()):
        r = fnopt.fixed_point(opt, p32, raw, stop=fnopt.stop.max_iters(3))
        assert all(type(v) is np.ndarray and v.dtype == np.float32 for v in r.params.values())


def test_a_numpy_scalar_of_the_wrong_dtype_is_named():
    p32 = {"w": np.array(0.0, np.float32), "b": np.array(0.0, np.float32)}
    g = grad.from_functions(lambda p: np.float32(0.0),
                            lambda p: {"w": np.float32(1.0), "b": np.float64(1.0)})
    with pytest.raises(TypeError, match=r"leaf \['b'\] has dtype float64, params leaf has float32"):
        g(p32)


def test_numpy_scalar_hessian_and_hvp_for_one_parameter():
    p = np.array(1.0)  # f = x^4 / 4: f' = x^3, f'' = 3 x^2, as NumPy scalars
    h = grad.hessian_from_function(lambda x: 3.0 * x[()] ** 2)
    np.testing.assert_array_equal(h(p), np.array([[3.0]]))
    opt = fnopt.newton(h)
    r = fnopt.fixed_point(opt, p, lambda x: (x[()] ** 4 / 4, x[()] ** 3),
                          stop=fnopt.stop.max_iters(30))
    assert abs(float(r.params)) < 1e-3 and r.params.shape == ()
    opt_cg = fnopt.newton_cg(lambda x, v: 3.0 * x[()] ** 2 * v[()])
    r = fnopt.fixed_point(opt_cg, p, lambda x: (x[()] ** 4 / 4, x[()] ** 3),
                          stop=fnopt.stop.max_iters(30))
    assert abs(float(r.params)) < 1e-3 and r.params.shape == ()


def test_batched_with_per_problem_scalar_params():
    # the batched form of the 0-d params: one scalar per problem, shape (B,)
    params = {"w": np.zeros(3), "b": np.array([0.0, 1.0, 2.0])}

    def grad_fn(p):
        r = p["w"][:, None] * X + p["b"][:, None] - Y
        return (r * r).mean(1), {"w": 2 * (r * X).mean(1), "b": 2 * r.mean(1)}

    r = fnopt.batched(fnopt.adam(0.1), params, grad_fn,
                      stop=fnopt.stop.loss_below(1e-6) | fnopt.stop.max_iters(3000))
    assert r.converged.all()
    np.testing.assert_allclose(r.params["w"], 2.0, atol=1e-2)
    np.testing.assert_allclose(r.params["b"], 1.0, atol=1e-2)


@pytest.mark.parametrize("leaf", [1.0, np.float64(1.0)], ids=["python_float", "numpy_scalar"])
def test_a_scalar_params_leaf_says_what_to_pass(leaf):
    with pytest.raises(TypeError, match=r"leaf \['b'\] .*pass a 0-d array instead.*np\.a"):
        fnopt.adam(0.1).init({"w": np.array(0.0), "b": leaf})
    with pytest.raises(TypeError, match=r"leaf \['b'\] .*pass a 0-d array"):
        fnopt.fixed_point(fnopt.sgd(0.1), {"w": np.array(0.0), "b": leaf}, _raw,
                          stop=fnopt.stop.max_iters(2))


# -- wrong outputs: the same ValueError/TypeError on every path ------------------------------

def _bad_shape(p):
    return {"w": np.zeros(2), "b": 2.0 * p["b"]}


def _bad_structure(p):
    return {"w": 2.0 * p["w"]}


def _bad_type(p):
    return {"w": 2.0 * p["w"], "b": 0.0}  # a Python float


BAD = {
    "shape": (_bad_shape, ValueError, r"leaf \['w'\] has shape \(2,\), params leaf has \(\)"),
    "structure": (_bad_structure, ValueError, r"structure .* does not match params structure"),
    "type": (_bad_type, TypeError, r"leaf \['b'\] is float, params leaf is ndarray"),
}


def _when(bad_grads, at_call, good=_grads):
    """A gradient function that goes wrong at call number ``at_call`` (1-based)."""
    calls = [0]

    def g(p):
        calls[0] += 1
        return bad_grads(p) if calls[0] >= at_call else good(p)

    return g


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_output_from_functions_raises_named_error(kind):
    bad, exc, pattern = BAD[kind]
    with pytest.raises(exc, match=pattern) as info:
        grad.from_functions(_loss, bad)(_params())
    assert "from_functions grads" in str(info.value)


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("at_call", [1, 3])
@pytest.mark.parametrize("opt_name", ["sgd", "adam", "lbfgs"])
def test_bad_output_from_functions_inside_fixed_point_is_not_wrapped(kind, at_call, opt_name):
    bad, exc, pattern = BAD[kind]
    provider = grad.from_functions(_loss, _when(bad, at_call))
    opt = OPTIMIZERS[opt_name]()
    with pytest.raises(exc, match=pattern) as info:
        fnopt.fixed_point(opt, _params(), provider, stop=fnopt.stop.max_iters(10))
    assert not isinstance(info.value, fnopt.OptimizationError)


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("opt_name", ["sgd", "adam", "lbfgs"])
def test_bad_output_of_a_raw_grad_fn_at_the_first_step(kind, opt_name):
    bad, exc, pattern = BAD[kind]
    raw = lambda p: (_loss(p), bad(p))  # noqa: E731
    with pytest.raises(exc, match=pattern) as info:
        fnopt.fixed_point(OPTIMIZERS[opt_name](), _params(), raw, stop=fnopt.stop.max_iters(5))
    assert not isinstance(info.value, fnopt.OptimizationError)
    assert "grad_fn grads" in str(info.value)


def test_non_scalar_loss_is_a_value_error_on_every_path():
    value_fn = lambda p: np.ones(2) * p["b"]  # noqa: E731
    with pytest.raises(ValueError, match="from_functions value: must be a scalar"):
        grad.from_functions(value_fn, _grads)(_params())
    with pytest.raises(ValueError, match="grad_fn value: must be a scalar"):
        fnopt.fixed_point(fnopt.sgd(0.1), _params(), lambda p: (value_fn(p), _grads(p)),
                          stop=fnopt.stop.max_iters(3))
    calls = [0]

    def later(p):
        calls[0] += 1
        return value_fn(p) if calls[0] >= 3 else _loss(p)

    with pytest.raises(ValueError, match="from_functions value: must be a scalar") as info:
        fnopt.fixed_point(fnopt.adam(0.1), _params(), grad.from_functions(later, _grads),
                          stop=fnopt.stop.max_iters(10))
    assert not isinstance(info.value, fnopt.OptimizationError)


def test_other_errors_of_a_user_function_later_still_become_optimization_errors():
    calls = [0]

    def flaky(p):
        calls[0] += 1
        if calls[0] == 3:
            raise ValueError("my own bug")
        return _grads(p)

    with pytest.raises(fnopt.OptimizationError, match="my own bug") as info:
        fnopt.fixed_point(fnopt.sgd(0.1), _params(), grad.from_functions(_loss, flaky),
                          stop=fnopt.stop.max_iters(10))
    assert info.value.iteration == 2 and info.value.result.iterations <= 2


def test_bad_hessian_and_hvp_outputs_are_named():
    with pytest.raises(ValueError, match=r"hess_fn: expected a \(2, 2\) Hessian"):
        fnopt.fixed_point(fnopt.newton(grad.hessian_from_function(lambda p: np.eye(3))),
                          _params(), _raw, stop=fnopt.stop.max_iters(3))
    with pytest.raises(ValueError, match=r"hessian: expected a \(2, 2\) Hessian"):
        fnopt.fixed_point(fnopt.newton(lambda p: np.eye(3)), _params(), _raw,
                          stop=fnopt.stop.max_iters(3))
    with pytest.raises(ValueError, match=r"hvp: leaf \['w'\] has shape \(3,\)"):
        fnopt.fixed_point(fnopt.newton_cg(lambda p, v: {"w": np.ones(3), "b": v["b"]}),
                          _params(), _raw, stop=fnopt.stop.max_iters(3))


def test_batched_bad_gradient_shape_is_named():
    params = {"w": np.zeros(3), "b": np.zeros(3)}

    def grad_fn(p):
        return np.zeros(3), {"w": np.zeros(3), "b": np.zeros(2)}

    with pytest.raises(ValueError, match=r"leaf \['b'\] has shape \(2,\), params leaf has \(3,\)"):
        fnopt.batched(fnopt.sgd(0.1), params, grad_fn, stop=fnopt.stop.max_iters(3))


def test_torch_wrong_shapes_are_named_on_every_path():
    torch = pytest.importorskip("torch")
    p = {"w": torch.zeros(()), "b": torch.zeros(())}
    bad = lambda q: {"w": torch.zeros(2), "b": q["b"] * 2}  # noqa: E731
    loss = lambda q: (q["w"] - 1) ** 2 + (q["b"] - 2) ** 2  # noqa: E731
    with pytest.raises(ValueError, match=r"leaf \['w'\] has shape \(2,\)"):
        grad.from_functions(loss, bad)(p)
    good = lambda q: {"w": 2 * (q["w"] - 1), "b": 2 * (q["b"] - 2)}  # noqa: E731
    with pytest.raises(ValueError, match=r"leaf \['w'\] has shape \(2,\)") as info:
        fnopt.fixed_point(fnopt.adam(0.1), p, grad.from_functions(loss, _when(bad, 3, good)),
                          stop=fnopt.stop.max_iters(5))
    assert not isinstance(info.value, fnopt.OptimizationError)
    with pytest.raises(ValueError, match="loss_fn: must be a scalar") as info:
        fnopt.fixed_point(fnopt.sgd(0.1), p, grad.torch_func(lambda q: q["w"] * torch.ones(2)),
                          stop=fnopt.stop.max_iters(5))
    assert not isinstance(info.value, fnopt.OptimizationError)
