"""fnopt.optimizers.second_order and the Hessian providers of fnopt.grad: finite termination on
quadratics, every method reaching 1e-8 on the problem set, evaluation counts against
scipy.optimize, float64 agreement between NumPy and torch, purity and validation."""

from __future__ import annotations

import copy

import attrs
import numpy as np
import optree
import pytest
import scipy.optimize as so
import torch
from hypothesis import given
from hypothesis import strategies as st

import fnopt
from fnopt import problems
from fnopt.optimizers.second_order import scale_by_lbfgs
from fnopt.stop import Criterion, Reason
from tests.strategies import assert_same_tree, pytrees, snapshot

EXACT = fnopt.strong_wolfe(c1=1e-8, c2=1e-6, max_trials=60)  # a near-exact line search


def _spd(n, cond, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    a = (q * np.logspace(0.0, np.log10(cond), n)) @ q.T
    return 0.5 * (a + a.T)


def _quadratic_grad_fn(a, b):
    def grad_fn(x):
        return np.asarray(0.5 * x @ a @ x - b @ x), a @ x - b

    return grad_fn


FINITE = {
    "lbfgs": lambda: fnopt.lbfgs(search=EXACT),
    "lbfgs_memory_n": lambda: fnopt.lbfgs(memory=12, search=EXACT),
    "bfgs": lambda: fnopt.bfgs(search=EXACT),
    "cg_polak_ribiere_plus": lambda: fnopt.nonlinear_cg(search=EXACT),
    "cg_fletcher_reeves": lambda: fnopt.nonlinear_cg("fletcher_reeves", search=EXACT),
}


@pytest.mark.parametrize("method", list(FINITE))
@pytest.mark.parametrize("n, cond, seed", [(2, 10.0, 0), (5, 1e3, 1), (10, 1e4, 2), (12, 1e2, 3)])
def test_quadratic_converges_in_n_plus_1_iterations(method, n, cond, seed):
    """With exact line searches these methods are conjugate-direction methods: at most
    n + 1 iterations to round-off (Nocedal & Wright, Thm 5.2 and section 6.4)."""
    if method == "lbfgs" and n > 10:
        pytest.skip("memory 10 < n: no finite termination claim")
    if method.startswith("cg_") and cond > 1e3:
        pytest.skip("nonlinear CG loses conjugacy to round-off at condition 1e4")
    a = _spd(n, cond, seed)
    b = np.random.default_rng(seed + 10).standard_normal(n)
    grad_fn = _quadratic_grad_fn(a, b)
    x0 = np.zeros(n)
    g0 = np.linalg.norm(grad_fn(x0)[1])
    r = fnopt.fixed_point(
        FINITE[method](), x0, grad_fn,
        stop=fnopt.stop.grad_norm_below(1e-10 * g0) | fnopt.stop.max_iters(n + 1),
    )
    x_star = np.linalg.solve(a, b)
    assert r.iterations <= n + 1
    assert r.grad_norm <= 1e-8 * g0 * cond ** 0.5
    np.testing.assert_allclose(r.params, x_star, rtol=1e-6 * cond, atol=1e-8)


# -- every method on the problem set --------------------------------------------------------

METHODS = {
    "lbfgs": lambda p: fnopt.lbfgs(),
    "bfgs": lambda p: fnopt.bfgs(),
    "bfgs_unscaled": lambda p: fnopt.bfgs(scale_init=False),
    "nonlinear_cg": lambda p: fnopt.nonlinear_cg(),
    "nonlinear_cg_fr": lambda p: fnopt.nonlinear_cg("fletcher_reeves"),
    "newton": lambda p: fnopt.newton(p.hessian_fn()),
    "newton_cg": lambda p: fnopt.newton_cg(p.hvp_fn()),
}
CASES = [(p.name, i) for p in problems.PROBLEMS for i in range(len(p.starts))]
# Fletcher-Reeves used to stall on the badly scaled problem (first trials below the
# resolution of x1 = 1e6); the line search now starts at that resolution. None known.
KNOWN_SHORT: set[tuple[str, str]] = set()


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("name, start", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_reaches_1e_8_on_the_problem_set(method, name, start):
    p = problems.by_name(name)
    r = fnopt.fixed_point(
        METHODS[method](p), p.start(start), p.grad_fn(),
        stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(3000),
    )
    if (method, name) in KNOWN_SHORT:  # the documented stall, checked rather than skipped
        assert r.reason != "grad_norm_below" and r.grad_norm < 1e-6, r.message
        return
    assert r.reason == "grad_norm_below", r.message
    near = min(p.minima, key=lambda m: np.linalg.norm(r.params - m))
    f_near = float(p.loss(near))
    assert r.value - f_near <= 1e-8 * max(1.0, abs(f_near))
    assert r.value == pytest.approx(float(p.loss(r.params)), rel=1e-12, abs=1e-300)


@attrs.frozen
class GradMaxBelow(Criterion):
    """max |g_i| <= tol on the gradient cached by a line-search optimizer (scipy's test)."""

    tol: float
    reason = Reason.GRAD_NORM_BELOW

    def check(self, info, state):
        g = info.state.grads
        return ((self,) if g is not None and np.abs(g).max() <= self.tol else ()), state


FTOL = 1e7 * float(np.finfo(float).eps)  # L-BFGS-B's default factr * eps


@pytest.mark.parametrize("start", [0, 1])
@pytest.mark.parametrize(
    "method, scipy_method",
    [("lbfgs", "L-BFGS-B"), ("bfgs", "BFGS"), ("newton_cg", "Newton-CG")],
)
def test_rosenbrock_evaluations_against_scipy(method, scipy_method, start):
    """Same loss, gradient and tolerance (max |g_i| <= 1e-5; for L-BFGS also
    L-BFGS-B's relative loss-change test). With scipy 1.17 the counts are 44/44 and
    25/25 (L-BFGS), 45/39 and 25/24 (BFGS), 92/105 and 30/53 (Newton-CG); the bounds
    leave room for other scipy versions: no more than scipy for Newton-CG, within 10%
    for L-BFGS and 20% for BFGS."""
    p = problems.by_name("rosenbrock")
    x0 = p.start(start)
    kw = {"hessp": lambda x, v: p.hessian(x) @ v} if method == "newton_cg" else {}
    ref = so.minimize(p.loss, x0, jac=p.grad, method=scipy_method, **kw)
    stop = GradMaxBelow(1e-5) | fnopt.stop.max_iters(1000)
    if method == "lbfgs":
        opt = fnopt.lbfgs()
        stop = stop | fnopt.stop.loss_change_below(FTOL, rtol=FTOL)
    elif method == "bfgs":
        opt = fnopt.bfgs()
    else:
        opt = fnopt.newton_cg(p.hvp_fn())
    r = fnopt.fixed_point(opt, x0, p.grad_fn(), stop=stop)
    assert r.converged and ref.success
    assert p.distance(r.params) < 1e-4
    slack = {"lbfgs": 1.1, "bfgs": 1.2, "newton_cg": 1.0}[method]
    assert r.n_evals <= slack * ref.nfev
    if method == "newton_cg":
        assert r.state.inner.n_hess <= ref.nhev


# -- counting Hessian work -------------------------------------------------------------------


def test_newton_counts_hessian_evaluations():
    p = problems.by_name("rosenbrock")
    calls = []
    hess = p.hessian_fn()

    def counted(x):
        calls.append(1)
        return hess(x)

    r = fnopt.fixed_point(fnopt.newton(counted), p.start(), p.grad_fn(),
                          stop=fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(100))
    assert r.converged
    assert r.state.inner.n_hess == len(calls) == r.iterations


def test_newton_cg_counts_hessian_vector_products():
    p = problems.by_name("wood")
    calls = []
    hvp = p.hvp_fn()

    def counted(x, v):
        calls.append(1)
        return hvp(x, v)

    r = fnopt.fixed_point(fnopt.newton_cg(counted), p.start(), p.grad_fn(),
                          stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(500))
    assert r.converged
    assert r.state.inner.n_hess == len(calls) >= r.iterations


def test_newton_shifts_an_indefinite_hessian_and_descends():
    p = problems.by_name("himmelblau")
    x0 = p.start(0)  # (0, 0): the Hessian has a negative eigenvalue there
    assert np.linalg.eigvalsh(p.hessian(x0)).min() < 0
    opt = fnopt.newton(p.hessian_fn())
    _, s1 = opt.step(x0, p.grad_fn(), opt.init(x0))
    assert s1.inner.shift > 0
    assert float(s1.value) < float(p.loss(x0))


def test_newton_cg_negative_curvature_falls_back_to_scaled_steepest_descent():
    a = np.diag([-4.0, 2.0])
    hvp = lambda x, v: a @ v  # noqa: E731
    t = fnopt.optimizers.second_order.scale_by_newton_cg(hvp)
    d, state = t.update(np.array([1.0, 0.0]), t.init(None), np.ones(2))
    # -g * g'g / |g'Hg| = -(1, 0) * 1 / 4
    np.testing.assert_array_equal(d, [-0.25, 0.0])
    assert state.n_hess == 1


# -- numpy and torch agree in float64 --------------------------------------------------------

BOTH = {
    "lbfgs": lambda p, be: fnopt.lbfgs(),
    "bfgs": lambda p, be: fnopt.bfgs(),
    "nonlinear_cg": lambda p, be: fnopt.nonlinear_cg(),
    "newton": lambda p, be: fnopt.newton(p.hessian_fn(be)),
    "newton_cg": lambda p, be: fnopt.newton_cg(p.hvp_fn(be)),
}


@pytest.mark.parametrize("method", list(BOTH))
@pytest.mark.parametrize("name", ["rosenbrock", "helical_valley", "box_3d"])
def test_numpy_and_torch_trajectories_agree_in_float64(method, name):
    p = problems.by_name(name)
    out = {}
    for be in ("numpy", "torch"):
        out[be] = fnopt.fixed_point(
            BOTH[method](p, be), p.start(0, be), p.grad_fn(be), stop=fnopt.stop.max_iters(12)
        )
    t, n = out["torch"], out["numpy"]
    assert isinstance(t.params, torch.Tensor) and t.params.dtype == torch.float64
    assert t.iterations == n.iterations and t.n_evals == n.n_evals
    np.testing.assert_allclose(t.params.numpy(), n.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(t.value, n.value, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("method", ["lbfgs", "bfgs", "nonlinear_cg", "newton", "newton_cg"])
def test_pytree_params_torch(method):
    """A dict of tensors of different shapes (flattened for the dense methods)."""

    def loss(p):
        x = torch.cat([p["a"].reshape(-1), p["b"].reshape(-1)])
        return problems.by_name("rosenbrock_10d").loss(x)

    params = {"a": torch.full((2, 3), 0.5, dtype=torch.float64),
              "b": torch.zeros(4, dtype=torch.float64)}
    opt = {
        "lbfgs": lambda: fnopt.lbfgs(),
        "bfgs": lambda: fnopt.bfgs(),
        "nonlinear_cg": lambda: fnopt.nonlinear_cg(),
        "newton": lambda: fnopt.newton(fnopt.grad.torch_hessian(loss)),
        "newton_cg": lambda: fnopt.newton_cg(fnopt.grad.hvp_torch(loss)),
    }[method]()
    r = fnopt.fixed_point(opt, params, fnopt.grad.torch_func(loss),
                          stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(500))
    assert r.converged, r.message
    assert set(r.params) == {"a", "b"} and r.params["a"].shape == (2, 3)
    np.testing.assert_allclose(r.params["a"].numpy(), 1.0, atol=1e-7)
    np.testing.assert_allclose(r.params["b"].numpy(), 1.0, atol=1e-7)


@pytest.mark.parametrize("method", ["lbfgs", "bfgs", "newton"])
def test_float32_keeps_its_dtype(method):
    p = problems.by_name("rosenbrock")
    opt = {"lbfgs": fnopt.lbfgs, "bfgs": fnopt.bfgs,
           "newton": lambda: fnopt.newton(p.hessian_fn())}[method]()
    x0 = p.start(1, dtype="float32")
    gf = fnopt.grad.from_functions(
        lambda x: np.asarray(p.loss(x), dtype=np.float32),
        lambda x: p.grad(x).astype(np.float32),
    )
    r = fnopt.fixed_point(opt, x0, gf, stop=fnopt.stop.grad_norm_below(1e-3)
                          | fnopt.stop.max_iters(200))
    assert r.params.dtype == np.float32
    assert p.distance(r.params) < 1e-2


@pytest.mark.parametrize("method", list(BOTH))
def test_float32_torch_all_methods(method):
    """float32 tensors stay float32 (torch.func's forward mode can promote the Hessian and
    HVPs to float64; the providers cast back) and reach a float32-sized tolerance."""
    p = problems.by_name("rosenbrock")
    r = fnopt.fixed_point(
        BOTH[method](p, "torch"), p.start(0, "torch", "float32"), p.grad_fn("torch"),
        stop=fnopt.stop.grad_norm_below(1e-4) | fnopt.stop.max_iters(300),
    )
    assert r.converged, r.message
    assert r.params.dtype == torch.float32
    assert p.distance(r.params) < 1e-3


# -- purity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(BOTH))
def test_step_does_not_mutate_its_inputs(method):
    p = problems.by_name("wood")
    opt = BOTH[method](p, "numpy")
    x = p.start()
    s = opt.init(x)
    for _ in range(3):
        x, s = opt.step(x, p.grad_fn(), s)
    x_c, s_c = copy.deepcopy(x), copy.deepcopy(s)
    opt.step(x, p.grad_fn(), s)
    np.testing.assert_array_equal(x, x_c)
    for a, b in zip(optree.tree_leaves(s), optree.tree_leaves(s_c)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# -- Hessian providers (fnopt.grad) -----------------------------------------------------------


@pytest.mark.parametrize("name", [p.name for p in problems.PROBLEMS])
def test_hessian_providers_agree(name):
    p = problems.by_name(name)
    x = p.starts[0] + 0.05
    v = np.linspace(-1.0, 1.0, p.dim)
    h = p.hessian(x)
    np.testing.assert_allclose(
        fnopt.grad.torch_hessian(p.loss)(torch.tensor(x)).numpy(), h, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        fnopt.grad.hvp_torch(p.loss)(torch.tensor(x), torch.tensor(v)).numpy(), h @ v,
        rtol=1e-9, atol=1e-9,
    )
    np.testing.assert_allclose(fnopt.grad.hvp_from_hessian(p.hessian_fn())(x, v), h @ v)
    fd = fnopt.grad.hvp_finite_differences(p.grad_fn())(x, v)
    scale = np.abs(h).max() * np.abs(v).max()
    np.testing.assert_allclose(fd, h @ v, rtol=1e-5, atol=1e-6 * scale)
    fd_t = fnopt.grad.hvp_finite_differences(p.grad_fn("torch"))(torch.tensor(x), torch.tensor(v))
    np.testing.assert_allclose(fd_t.numpy(), h @ v, rtol=1e-5, atol=1e-6 * scale)


def test_torch_hessian_of_a_pytree_is_over_the_flattened_leaves():
    def loss(p):
        return (p["w"] ** 2).sum() * p["b"] + p["b"] ** 3

    params = {"b": torch.tensor(2.0, dtype=torch.float64),
              "w": torch.tensor([1.0, 3.0], dtype=torch.float64)}
    h = fnopt.grad.torch_hessian(loss)(params)  # leaf order: b, w
    expected = [[12.0, 2.0, 6.0], [2.0, 4.0, 0.0], [6.0, 0.0, 4.0]]
    np.testing.assert_allclose(h.numpy(), expected)
    hv = fnopt.grad.hvp_torch(loss)(params, {"b": torch.tensor(1.0, dtype=torch.float64),
                                             "w": torch.zeros(2, dtype=torch.float64)})
    np.testing.assert_allclose(hv["b"].item(), 12.0)
    np.testing.assert_allclose(hv["w"].numpy(), [2.0, 6.0])


def test_hessian_from_function_checks_the_shape():
    h = fnopt.grad.hessian_from_function(lambda x: np.eye(3))
    with pytest.raises(ValueError, match="hess_fn"):
        h(np.zeros(2))


def test_hvp_finite_differences_of_a_zero_vector_is_zero():
    hvp = fnopt.grad.hvp_finite_differences(problems.by_name("beale").grad_fn())
    np.testing.assert_array_equal(hvp(np.ones(2), np.zeros(2)), np.zeros(2))


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, exc, name",
    [
        (lambda: fnopt.lbfgs(memory=0), ValueError, "memory"),
        (lambda: fnopt.lbfgs(memory=2.0), TypeError, "memory"),
        (lambda: fnopt.nonlinear_cg("hestenes"), ValueError, "method"),
        (lambda: fnopt.nonlinear_cg(restart=0), ValueError, "restart"),
        (lambda: fnopt.newton(3), TypeError, "hessian"),
        (lambda: fnopt.newton_cg(None), TypeError, "hvp"),
        (lambda: fnopt.newton_cg(lambda x, v: v, max_cg_iters=0), ValueError, "max_cg_iters"),
        (lambda: fnopt.lbfgs(search=3), TypeError, "search"),
        (lambda: fnopt.grad.hessian_from_function(None), TypeError, "hess_fn"),
        (lambda: fnopt.grad.hvp_finite_differences(lambda x: x, step=-1.0), ValueError, "step"),
    ],
)
def test_bad_arguments_name_themselves(build, exc, name):
    with pytest.raises(exc, match=name):
        build()


def test_direction_transforms_need_params():
    t = scale_by_lbfgs()
    with pytest.raises(ValueError, match="params"):
        t.update(np.ones(2), t.init(np.ones(2)))


# -- random pytrees (hypothesis) ---------------------------------------------------------------


def _weighted_quadratic(params):
    """f(x) = 0.5 sum_i (i + 1) |leaf_i|^2 on any pytree, with its gradient and Hessian."""
    leaves, spec = optree.tree_flatten(params)
    weights = [float(i + 1) for i in range(len(leaves))]

    def grad_fn(x):
        xs = spec.flatten_up_to(x)
        gs = [fnopt.tree.scale(w, leaf) for w, leaf in zip(weights, xs)]
        value = 0.5 * fnopt.tree.vdot(gs, xs)
        return value, spec.unflatten(gs)

    sizes = [int(np.prod(leaf.shape)) for leaf in leaves]
    diag = np.concatenate([np.full(n, w) for w, n in zip(weights, sizes)])

    def hessian(x):
        h = np.diag(diag)
        return torch.as_tensor(h) if isinstance(leaves[0], torch.Tensor) else h

    return grad_fn, hessian


PYTREE_METHODS = ["lbfgs", "bfgs", "nonlinear_cg", "newton", "newton_cg_fd"]


@given(pytrees(dtype="float64", bound=5.0), st.sampled_from(PYTREE_METHODS))
def test_random_pytrees_keep_structure_and_inputs(tree, method):
    grad_fn, hessian = _weighted_quadratic(tree)
    opt = {
        "lbfgs": lambda: fnopt.lbfgs(),
        "bfgs": lambda: fnopt.bfgs(),
        "nonlinear_cg": lambda: fnopt.nonlinear_cg(),
        "newton": lambda: fnopt.newton(fnopt.grad.hessian_from_function(hessian)),
        "newton_cg_fd": lambda: fnopt.newton_cg(fnopt.grad.hvp_finite_differences(grad_fn)),
    }[method]()
    snap = snapshot(tree)
    r = fnopt.fixed_point(opt, tree, grad_fn,
                          stop=fnopt.stop.grad_norm_below(1e-9) | fnopt.stop.max_iters(200))
    assert_same_tree(tree, snap)  # the caller's params are untouched
    assert r.converged, r.message
    assert optree.tree_structure(r.params) == optree.tree_structure(tree)
    for a, b in zip(optree.tree_leaves(r.params), optree.tree_leaves(tree)):
        assert type(a) is type(b) and a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    assert r.value <= 1e-12


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_lbfgs_state_keeps_its_init_structure_past_memory_pairs(backend):
    # the history is `memory` slots allocated at init, filled oldest-first and shifted
    # once full: structure, leaf types, shapes and dtypes never change
    prob = problems.by_name("rosenbrock")
    x, grad_fn = prob.start(0, backend), prob.grad_fn(backend)
    opt = fnopt.lbfgs(memory=2)
    state = opt.init(x)

    def signature(s):
        leaves, spec = optree.tree_flatten(s)
        return spec, [(type(v), tuple(getattr(v, "shape", ())), str(getattr(v, "dtype", "")))
                      for v in leaves]

    want = signature(state)
    pairs = []
    for _ in range(6):
        x, state = opt.step(x, grad_fn, state)
        assert signature(state) == want
        pairs.append(state.inner.n_pairs)
    assert pairs == [0, 1, 2, 2, 2, 2]


# -- state.value and state.grad_norm: one type ------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", list(BOTH))
def test_state_value_and_grad_norm_are_0d_arrays_of_the_params_dtype(method, dtype, backend):
    p = problems.by_name("rosenbrock")
    opt = BOTH[method](p, backend)
    x = p.start(0, backend, dtype)
    if backend == "numpy":  # a raw loss that returns a float64 NumPy scalar (x @ x style)

        def grad_fn(z):
            return np.float64(p.loss(z)), p.grad(z).astype(dtype)
    else:
        grad_fn = p.grad_fn("torch")
    s = opt.init(x)
    for _ in range(3):
        x, s = opt.step(x, grad_fn, s)
        for field in (s.value, s.grad_norm):
            if backend == "numpy":
                assert type(field) is np.ndarray and field.shape == ()
                assert field.dtype == np.dtype(dtype)
            else:
                assert torch.is_tensor(field) and field.shape == ()
                assert field.dtype == getattr(torch, dtype)
        assert type(s.value) is type(s.grad_norm)
    assert float(s.value) == pytest.approx(float(p.loss(fnopt.backend.to_numpy(x))), rel=1e-5)


# -- torch / optax / scipy argument names ----------------------------------------------------


@pytest.mark.parametrize("alias", ["history_size", "memory_size", "maxcor"])
def test_lbfgs_accepts_the_torch_optax_and_scipy_names_of_memory(alias):
    opt = fnopt.lbfgs(**{alias: 4})
    s = opt.init(np.zeros(3))
    assert len(s.inner.s) == 4
    ref = fnopt.lbfgs(memory=4)
    p = problems.by_name("rosenbrock")
    a = fnopt.fixed_point(opt, p.start(), p.grad_fn(), stop=fnopt.stop.max_iters(20))
    b = fnopt.fixed_point(ref, p.start(), p.grad_fn(), stop=fnopt.stop.max_iters(20))
    np.testing.assert_array_equal(a.params, b.params)


def test_lbfgs_alias_next_to_memory_is_an_error():
    with pytest.raises(TypeError, match=r"history_size= and memory=.*pass only memory="):
        fnopt.lbfgs(memory=3, history_size=5)
    with pytest.raises(TypeError, match=r"memory_size= and history_size=.*memory="):
        fnopt.lbfgs(history_size=3, memory_size=5)


# (torch.optim.LBFGS's own arguments, lr, max_iter, ..., build torch's method instead:
# tests/test_torch_lbfgs.py)
FOREIGN = [
    (fnopt.lbfgs, "linesearch", r"search=fnopt\.strong_wolfe"),
    (fnopt.lbfgs, "scale_init_precond", r"s'y / y'y"),
    (fnopt.bfgs, "learning_rate", r"no learning rate"),
    (fnopt.bfgs, "gtol", r"grad_norm_below"),
    (fnopt.bfgs, "hess_inv0", r"scale_init="),
    (fnopt.nonlinear_cg, "c2", r"search=fnopt\.strong_wolfe\(c1=\.\.\., c2=\.\.\.\)"),
    (fnopt.nonlinear_cg, "maxiter", r"max_iters"),
    (lambda **kw: fnopt.newton(np.eye, **kw), "hess", r"hessian="),
    (lambda **kw: fnopt.newton_cg(np.dot, **kw), "hessp", r"hvp="),
    (fnopt.backtracking, "decrease_factor", r"shrink=.*interpolate=False"),
]


@pytest.mark.parametrize("factory, name, pattern", FOREIGN,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(FOREIGN)])
def test_foreign_argument_names_point_to_the_fnopt_way(factory, name, pattern):
    with pytest.raises(TypeError, match=pattern) as info:
        factory(**{name: 1})
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("factory", [fnopt.lbfgs, fnopt.bfgs, fnopt.nonlinear_cg,
                                     fnopt.strong_wolfe, fnopt.backtracking])
def test_unknown_keywords_are_still_type_errors(factory):
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_option'"):
        factory(no_such_option=1)


def test_line_searches_accept_the_optax_scipy_torch_names():
    assert fnopt.strong_wolfe(slope_rtol=1e-3, curv_rtol=0.5, max_linesearch_steps=7,
                              max_stepsize=10.0) == fnopt.strong_wolfe(
        1e-3, 0.5, max_trials=7, max_step=10.0)
    assert fnopt.strong_wolfe(amax=5.0, max_ls=9) == fnopt.strong_wolfe(max_trials=9,
                                                                         max_step=5.0)
    assert fnopt.backtracking(slope_rtol=0.3, max_backtracking_steps=4) == fnopt.backtracking(
        0.3, max_trials=4)
    with pytest.raises(TypeError, match="curv_rtol= and c2="):
        fnopt.strong_wolfe(c2=0.5, curv_rtol=0.4)
    with pytest.raises(ValueError, match="c1"):  # translated values are validated as c1
        fnopt.backtracking(slope_rtol=2.0)


# -- at the minimum: round-off is convergence, not a failed line search ---------------------


def _second_order_methods(hessian_fn, hvp):
    return {
        "nonlinear_cg": fnopt.nonlinear_cg(),
        "nonlinear_cg_fr": fnopt.nonlinear_cg("fletcher_reeves"),
        "lbfgs": fnopt.lbfgs(),
        "bfgs": fnopt.bfgs(),
        "newton": fnopt.newton(hessian_fn),
        "newton_cg": fnopt.newton_cg(hvp),
    }


METHOD_NAMES = ["nonlinear_cg", "nonlinear_cg_fr", "lbfgs", "bfgs", "newton", "newton_cg"]


@pytest.mark.parametrize("name", METHOD_NAMES)
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_running_on_past_the_minimum_of_rosenbrock_ends_converged_or_at_max_iters(name, backend):
    # no tolerance criterion: the method runs into round-off at the minimum (loss ~1e-28)
    task = fnopt.tasks.rosenbrock(backend)
    hess = fnopt.grad.hessian_from_function(task.hessian)
    opt = _second_order_methods(hess, fnopt.grad.hvp_from_hessian(hess))[name]
    r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=fnopt.stop.max_iters(300))
    assert r.converged or r.reason == "max_iters", r.message
    assert r.reason != "line_search_failed"
    assert r.value < 1e-20
    np.testing.assert_allclose(np.asarray(r.params), [1.0, 1.0], atol=1e-9)


@pytest.mark.parametrize("name", METHOD_NAMES)
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_running_on_past_the_minimum_of_a_quadratic_never_fails(name, seed, dtype):
    # ill-conditioned, with and without an offset f* (then the loss is flat to round-off)
    q = fnopt.testing.make_quadratic(np.zeros(5), seed=seed, dtype=dtype,
                                     eigenvalues=(0.5, 50.0), min_value=3.0 * (seed % 2))
    opt = _second_order_methods(q.hessian_fn, q.hvp)[name]
    r = fnopt.fixed_point(opt, q.init_params, q.grad_fn, stop=fnopt.stop.max_iters(200))
    assert r.converged or r.reason == "max_iters", r.message
    tol = 1e-12 if dtype == "float64" else 1e-4
    assert r.value - q.min_value <= tol * max(1.0, q.min_value)


def test_bfgs_update_does_not_overflow_at_tiny_steps():
    # the curvature pairs near the minimum of 0.5 x^T A x reach |s|, |y| ~ 1e-84: the
    # update's 1/(y^T s)^2 overflowed and the direction turned NaN (non_finite)
    a = np.diag([1.0, 10.0, 100.0])
    with np.errstate(over="raise", invalid="raise"):
        r = fnopt.fixed_point(fnopt.bfgs(), np.ones(3), lambda x: (0.5 * x @ a @ x, a @ x),
                              stop=fnopt.stop.max_iters(400))
    assert r.reason == "max_iters" or r.converged, r.message
    assert r.value < 1e-100
