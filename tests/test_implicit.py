"""Differentiating through the solver: implicit (fnopt.implicit) and unrolled
(fixed_point(differentiable=True)) derivatives against closed forms and finite
differences on ridge regression, whose solution is known in closed form in θ."""

import numpy as np
import pytest

import fnopt
from fnopt import implicit

torch = pytest.importorskip("torch")

F64 = torch.float64
M, D = 40, 5
RNG = np.random.default_rng(7)
A = torch.tensor(RNG.standard_normal((M, D)), dtype=F64)
Y = torch.tensor(RNG.standard_normal(M), dtype=F64)
AV = torch.tensor(RNG.standard_normal((M, D)), dtype=F64)
YV = torch.tensor(RNG.standard_normal(M), dtype=F64)


def ridge_loss(x, theta):
    """f(x, θ) = |A x - y|²/(2m) + λ|x|²/2, θ = (λ, y)."""
    lam, y = theta
    r = A @ x - y
    return (r @ r) / (2 * M) + 0.5 * lam * (x @ x)


def hessian(lam):
    return A.T @ A / M + lam * torch.eye(D, dtype=F64)


def closed_form(lam, y=Y):
    return torch.linalg.solve(hessian(lam), A.T @ y / M)


def val_loss(x):
    r = AV @ x - YV
    return (r @ r) / (2 * M)


def analytic_dval(lam):
    """dV/dλ and dV/dy at x*(λ): dx*/dλ = -H⁻¹x*, dx*/dy = H⁻¹Aᵀ/m."""
    lam = torch.as_tensor(lam, dtype=F64)
    x = closed_form(lam)
    gv = AV.T @ (AV @ x - YV) / M
    u = torch.linalg.solve(hessian(lam), gv)
    return -(u @ x), A @ u / M


def fd_dval_dlam(lam, h=1e-6):
    plus = val_loss(closed_form(torch.tensor(lam + h, dtype=F64)))
    minus = val_loss(closed_form(torch.tensor(lam - h, dtype=F64)))
    return (plus - minus) / (2 * h)


def lipschitz(lam):
    return float(torch.linalg.eigvalsh(hessian(torch.tensor(lam, dtype=F64))).max())


STOP = fnopt.stop.grad_norm_below(1e-13) | fnopt.stop.max_iters(5000)
LAMBDAS = [0.05, 0.3, 2.0]


@pytest.mark.parametrize("lam", LAMBDAS)
def test_analytic_matches_finite_differences(lam):
    # the reference itself: closed form dV/dλ against central differences
    dlam, _ = analytic_dval(lam)
    np.testing.assert_allclose(float(dlam), float(fd_dval_dlam(lam)), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("lam", LAMBDAS)
def test_implicit_matches_analytic_and_finite_differences(lam, momentum):
    lam_t = torch.tensor(lam, dtype=F64, requires_grad=True)
    y_t = Y.clone().requires_grad_(True)
    opt = fnopt.sgd(1.0 / lipschitz(lam), momentum=momentum)
    r = implicit.fixed_point(opt, torch.zeros(D, dtype=F64), ridge_loss, (lam_t, y_t), stop=STOP)
    assert r.converged
    np.testing.assert_allclose(r.params.detach(), closed_form(lam_t.detach()), atol=1e-10)
    g_lam, g_y = torch.autograd.grad(val_loss(r.params), (lam_t, y_t))
    a_lam, a_y = analytic_dval(lam)
    np.testing.assert_allclose(float(g_lam), float(a_lam), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(float(g_lam), float(fd_dval_dlam(lam)), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(g_y.numpy(), a_y.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("solver", ["lbfgs", "bfgs"])
def test_implicit_with_a_quasi_newton_inner_solver(solver):
    # value_at="output" optimizers: the final iterate is the solution being attached
    lam_t = torch.tensor(0.3, dtype=F64, requires_grad=True)
    opt = fnopt.lbfgs() if solver == "lbfgs" else fnopt.bfgs()
    r = implicit.fixed_point(opt, torch.zeros(D, dtype=F64), ridge_loss, (lam_t, Y),
                             stop=fnopt.stop.grad_norm_below(1e-12) | fnopt.stop.max_iters(200))
    assert r.converged and r.iterations < 50
    (g,) = torch.autograd.grad(val_loss(r.params), lam_t)
    np.testing.assert_allclose(float(g), float(analytic_dval(0.3)[0]), rtol=1e-7)


@pytest.mark.parametrize("lam", LAMBDAS)
def test_unrolled_matches_analytic_and_finite_differences(lam):
    lam_t = torch.tensor(lam, dtype=F64, requires_grad=True)
    grad_fn = fnopt.grad.torch_autograd(lambda x: ridge_loss(x, (lam_t, Y)), create_graph=True)
    lr = 1.0 / lipschitz(lam)
    r = fnopt.fixed_point(
        fnopt.sgd(lr),
        torch.zeros(D, dtype=F64),
        grad_fn,
        stop=fnopt.stop.grad_norm_below(1e-12) | fnopt.stop.max_iters(3000),
        differentiable=True,
    )
    assert r.converged
    (g_lam,) = torch.autograd.grad(val_loss(r.params), lam_t)
    np.testing.assert_allclose(float(g_lam), float(analytic_dval(lam)[0]), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(float(g_lam), float(fd_dval_dlam(lam)), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("provider", ["torch_autograd", "torch_func"])
@pytest.mark.parametrize("k", [1, 7, 25])
def test_unrolled_learning_rate_gradient_matches_closed_form(k, provider):
    """k steps of gradient descent on the ridge quadratic from x0:
    x_k = x* + (I - ηH)^k (x0 - x*), so dx_k/dη = -k H (I - ηH)^(k-1) (x0 - x*)."""
    lam = torch.tensor(0.3, dtype=F64)
    H, xs = hessian(lam), closed_form(lam)
    x0 = torch.ones(D, dtype=F64)
    eta = 0.7 / lipschitz(0.3)
    loss = lambda x: ridge_loss(x, (lam, Y))  # noqa: E731
    grad_fn = (
        fnopt.grad.torch_autograd(loss, create_graph=True)
        if provider == "torch_autograd"
        else fnopt.grad.torch_func(loss)
    )

    def run(lr):
        r = fnopt.fixed_point(
            fnopt.sgd(lr), x0, grad_fn, stop=fnopt.stop.max_iters(k), differentiable=True
        )
        assert r.iterations == k
        return val_loss(r.params)

    lr_t = torch.tensor(eta, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(run(lr_t), lr_t)
    step = torch.eye(D, dtype=F64) - eta * H
    xk = xs + torch.linalg.matrix_power(step, k) @ (x0 - xs)
    dxk = -k * H @ torch.linalg.matrix_power(step, k - 1) @ (x0 - xs)
    ref = (AV.T @ (AV @ xk - YV) / M) @ dxk
    np.testing.assert_allclose(float(g), float(ref), rtol=1e-9, atol=1e-13)
    with torch.no_grad():
        h = 1e-6
        fd = (run(torch.tensor(eta + h, dtype=F64)) - run(torch.tensor(eta - h, dtype=F64))) / (
            2 * h
        )
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-6, atol=1e-10)


UNROLLED_OPTIMIZERS = {
    "sgd_momentum": lambda lr: fnopt.sgd(lr, momentum=0.9),
    "sgd_nesterov_wd": lambda lr: fnopt.sgd(lr, momentum=0.5, nesterov=True, weight_decay=0.1),
    "adam": lambda lr: fnopt.adam(lr),
    "adamw": lambda lr: fnopt.adamw(lr, weight_decay=0.1),
    "rmsprop": lambda lr: fnopt.rmsprop(lr, momentum=0.5),
}


@pytest.mark.parametrize("name", sorted(UNROLLED_OPTIMIZERS))
def test_unrolled_learning_rate_gradient_of_each_optimizer_matches_finite_differences(name):
    """No fast in-place path may cut the graph: adam's fused kernel, sgd's donated
    buffers and the loop's own buffers all step aside with differentiable=True."""
    grad_fn = fnopt.grad.torch_autograd(lambda x: ridge_loss(x, (0.3, Y)), create_graph=True)

    def run(lr):
        r = fnopt.fixed_point(UNROLLED_OPTIMIZERS[name](lr), torch.zeros(D, dtype=F64), grad_fn,
                              stop=fnopt.stop.max_iters(12), differentiable=True)
        return val_loss(r.params)

    lr_t = torch.tensor(0.05, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(run(lr_t), lr_t)
    h = 1e-6
    with torch.no_grad():
        fd = (run(torch.tensor(0.05 + h, dtype=F64)) - run(torch.tensor(0.05 - h, dtype=F64))) / (
            2 * h
        )
    assert abs(float(g)) > 1e-8
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-6, atol=1e-10)


def test_unrolled_gradient_with_respect_to_data_and_start():
    lam = torch.tensor(0.3, dtype=F64)
    y_t = Y.clone().requires_grad_(True)
    x0 = torch.zeros(D, dtype=F64, requires_grad=True)
    grad_fn = fnopt.grad.torch_autograd(lambda x: ridge_loss(x, (lam, y_t)), create_graph=True)
    r = fnopt.fixed_point(
        fnopt.sgd(1.0 / lipschitz(0.3)),
        x0,
        grad_fn,
        stop=fnopt.stop.grad_norm_below(1e-12) | fnopt.stop.max_iters(3000),
        differentiable=True,
    )
    g_y, g_x0 = torch.autograd.grad(val_loss(r.params), (y_t, x0))
    np.testing.assert_allclose(g_y.numpy(), analytic_dval(0.3)[1].numpy(), rtol=1e-6, atol=1e-10)
    # at convergence the solution forgets where it started
    assert float(g_x0.abs().max()) < 1e-8


def test_differentiable_with_a_detaching_grad_fn_still_tracks_the_update():
    lr_t = torch.tensor(0.1, dtype=F64, requires_grad=True)
    grad_fn = fnopt.grad.torch_autograd(lambda x: ridge_loss(x, (torch.tensor(0.3), Y)))
    r = fnopt.fixed_point(fnopt.sgd(lr_t), torch.zeros(D, dtype=F64), grad_fn,
                          stop=fnopt.stop.max_iters(3), differentiable=True)
    # the update -lr*g still depends on lr, with g treated as a constant (documented)
    assert r.params.requires_grad


@pytest.mark.parametrize("lam", [0.05, 0.5])
def test_implicit_on_logistic_regression_matches_finite_differences(lam):
    """A non-quadratic loss: the Hessian depends on x*, the mixed term on λ and data."""
    labels = (Y > 0).to(F64)

    def logistic(x, theta):
        lam, a = theta
        z = a @ x
        return torch.nn.functional.softplus(z).mean() - (labels * z).mean() + 0.5 * lam * (x @ x)

    def solve(lam_value, a=A):
        theta = (torch.tensor(lam_value, dtype=F64), a)
        grad_fn = fnopt.grad.torch_autograd(lambda x: logistic(x, theta))
        r = fnopt.fixed_point(fnopt.sgd(1.0, momentum=0.5), torch.zeros(D, dtype=F64), grad_fn,
                              stop=fnopt.stop.grad_norm_below(1e-13) | fnopt.stop.max_iters(20000))
        assert r.converged
        return r.params

    lam_t = torch.tensor(lam, dtype=F64, requires_grad=True)
    a_t = A.clone().requires_grad_(True)
    r = implicit.fixed_point(fnopt.sgd(1.0, momentum=0.5), torch.zeros(D, dtype=F64), logistic,
                             (lam_t, a_t), stop=fnopt.stop.grad_norm_below(1e-13)
                             | fnopt.stop.max_iters(20000))
    g_lam, g_a = torch.autograd.grad(val_loss(r.params), (lam_t, a_t))
    h = 1e-5
    fd_lam = (val_loss(solve(lam + h)) - val_loss(solve(lam - h))) / (2 * h)
    np.testing.assert_allclose(float(g_lam), float(fd_lam), rtol=1e-6, atol=1e-10)
    e = torch.zeros_like(A)
    e[3, 1] = h
    fd_a = (val_loss(solve(lam, A + e)) - val_loss(solve(lam, A - e))) / (2 * h)
    np.testing.assert_allclose(float(g_a[3, 1]), float(fd_a), rtol=1e-6, atol=1e-10)


def test_differentiable_rejects_numpy_params():
    with pytest.raises(ValueError, match="differentiable"):
        fnopt.fixed_point(
            fnopt.sgd(0.1), np.zeros(2), lambda p: (p @ p, 2 * p),
            stop=fnopt.stop.max_iters(1), differentiable=True,
        )


def test_implicit_memory_does_not_grow_with_iterations():
    def graph_size(n_iters):
        lam_t = torch.tensor(0.3, dtype=F64, requires_grad=True)
        r = implicit.fixed_point(
            fnopt.sgd(1e-3), torch.zeros(D, dtype=F64), ridge_loss, (lam_t, Y),
            stop=fnopt.stop.max_iters(n_iters), cg_max_iters=D,
        )
        seen, stack = set(), [r.params.grad_fn]
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            stack.extend(n for n, _ in node.next_functions)
        return len(seen)

    with pytest.warns(RuntimeWarning, match="without converging"):
        small = graph_size(5)
    with pytest.warns(RuntimeWarning, match="without converging"):
        large = graph_size(200)
    assert small == large <= 3


def test_implicit_under_vmap_matches_analytic():
    lams = torch.tensor(LAMBDAS, dtype=F64)
    x_stars = torch.stack([closed_form(lam) for lam in lams])

    def outer(lam, x_star):
        return val_loss(implicit.solution(ridge_loss, x_star, (lam, Y), cg_max_iters=2 * D))

    grads = torch.func.vmap(torch.func.grad(outer))(lams, x_stars)
    ref = [float(analytic_dval(lam)[0]) for lam in LAMBDAS]
    np.testing.assert_allclose(grads.numpy(), ref, rtol=1e-8, atol=1e-12)


def test_implicit_pytree_params_and_theta():
    def split_loss(p, theta):
        return ridge_loss(torch.cat([p["head"], p["tail"]]), (theta["lam"], theta["y"]))

    lam_t = torch.tensor(0.3, dtype=F64, requires_grad=True)
    x = closed_form(lam_t.detach())
    p = implicit.solution(split_loss, {"head": x[:2], "tail": x[2:]}, {"lam": lam_t, "y": Y})
    assert set(p) == {"head", "tail"} and p["head"].shape == (2,)
    (g,) = torch.autograd.grad(val_loss(torch.cat([p["head"], p["tail"]])), lam_t)
    np.testing.assert_allclose(float(g), float(analytic_dval(0.3)[0]), rtol=1e-8)


def test_implicit_damping_and_not_positive_definite():
    lam = torch.tensor(0.0, dtype=F64, requires_grad=True)

    def saddle(x, lam):
        return 0.5 * (x[0] ** 2 - x[1] ** 2) + lam * x.sum()

    x = implicit.solution(saddle, torch.zeros(2, dtype=F64), lam)
    with pytest.raises(ValueError, match="positive definite"):
        torch.autograd.grad(x.sum(), lam)

    def bowl(x, lam):
        return 0.5 * (x @ x) - lam * x.sum()  # x* = lam, H = I

    x = implicit.solution(bowl, torch.zeros(2, dtype=F64), lam, damping=1.0)
    (g,) = torch.autograd.grad(x.sum(), lam)  # (H + I)^-1 · 1 summed = 0.5 * 2
    np.testing.assert_allclose(float(g), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"cg_tol": -1.0}, ValueError, "cg_tol"),
        ({"cg_tol": "x"}, TypeError, "cg_tol"),
        ({"cg_max_iters": 0}, ValueError, "cg_max_iters"),
        ({"damping": -1.0}, ValueError, "damping"),
    ],
)
def test_implicit_solution_validates(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        implicit.solution(ridge_loss, torch.zeros(D, dtype=F64), (torch.tensor(0.1), Y), **kwargs)


def test_implicit_rejects_bad_inputs():
    with pytest.raises(TypeError, match="x_star"):
        implicit.solution(ridge_loss, np.zeros(D), (torch.tensor(0.1), Y))
    with pytest.raises(TypeError, match="theta"):
        implicit.solution(ridge_loss, torch.zeros(D, dtype=F64), (0.1, Y))
    with pytest.raises(TypeError, match="params"):
        implicit.fixed_point(fnopt.sgd(0.1), np.zeros(D), ridge_loss, (torch.tensor(0.1), Y),
                             stop=fnopt.stop.max_iters(1))
    for key in ("data", "differentiable"):
        with pytest.raises(ValueError, match=key):
            implicit.fixed_point(fnopt.sgd(0.1), torch.zeros(D, dtype=F64), ridge_loss,
                                 (torch.tensor(0.1), Y), stop=fnopt.stop.max_iters(1),
                                 **{key: True})


def test_ridge_hyper_demo_learns_the_penalty(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "demos" / "ridge_hyper.py"
    spec = importlib.util.spec_from_file_location("ridge_hyper_demo", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    s = demo.main(["--fast", "--out", str(tmp_path)])
    # the implicit hypergradient is the closed-form one, and the outer descent moved the
    # penalty from 0.01 to within 10 % of the grid optimum, close to its validation loss
    np.testing.assert_allclose(s["hypergradient_implicit"], s["hypergradient_closed_form"],
                               rtol=1e-6, atol=1e-9)
    assert abs(np.log(s["lambda_learned"] / s["lambda_grid_best"])) < 0.1
    assert s["val_loss_learned"] < 1.01 * s["val_loss_grid_best"] < s["val_loss_start"]
    if "plot" in s:
        assert Path(s["plot"]).stat().st_size > 0


def test_implicit_float32_uses_a_float32_tolerance():
    lam_t = torch.tensor(0.3, dtype=torch.float32, requires_grad=True)
    a32, y32 = A.float(), Y.float()

    def loss32(x, lam):
        r = a32 @ x - y32
        return (r @ r) / (2 * M) + 0.5 * lam * (x @ x)

    x_star = closed_form(torch.tensor(0.3, dtype=F64)).float()
    x = implicit.solution(loss32, x_star, lam_t)
    assert x.dtype == torch.float32
    (g,) = torch.autograd.grad(val_loss(x.double()), lam_t)
    np.testing.assert_allclose(float(g), float(analytic_dval(0.3)[0]), rtol=1e-4)
