"""One expression of each update, two destinations.

``Descent.apply(..., out=buffers)`` (the loop-owned path: new params written into
``out``, the state's buffers overwritten) gives bitwise the pure ``apply``'s numbers for
every public first-order optimizer and for hand-built chains, on NumPy and torch, in
float32 and float64; the pure path never touches its inputs and no path writes into the
gradient. Torch's fused kernels, picked for recognised chains, agree with the generic
path (each transform's own update) to round-off over 200 float64 steps. Also: the
``mu_dtype`` option of Adam.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optree
import pytest

import fnopt
from fnopt import backend as B
from fnopt import tree

torch = pytest.importorskip("torch")

BACKENDS = ["numpy", "torch"]
DTYPES = ["float32", "float64"]


def _user_scale(c: float) -> fnopt.Transform:
    """An optax-shaped user transform (no ``inplace`` keyword) with a buffer in its state:
    the running sum of the updates, scaled by ``c``."""

    def init(params: Any) -> Any:
        return (tree.zeros_like(params),)

    def update(updates: Any, state: Any, params: Any = None) -> Any:
        del params
        total = tree.add(state[0], updates)
        return tree.scale(c, updates), (total,)

    return fnopt.Transform(init, update)


# every public first-order alias, with the options that change its arithmetic, and
# hand-built chains (combinators, a user transform)
OPTIMIZERS: dict[str, Callable[[], Any]] = {
    "sgd": lambda: fnopt.sgd(0.02),
    "sgd_momentum": lambda: fnopt.sgd(0.02, momentum=0.9),
    "sgd_nesterov_wd": lambda: fnopt.sgd(0.02, momentum=0.8, nesterov=True, weight_decay=0.01),
    "sgd_dampening_max": lambda: fnopt.sgd(0.01, momentum=0.5, dampening=0.3, maximize=True),
    "sgd_schedule": lambda: fnopt.sgd(lambda count: 0.02 / (1 + count)),
    "adam": lambda: fnopt.adam(0.05),
    "adam_wd_amsgrad": lambda: fnopt.adam(0.05, weight_decay=0.1, amsgrad=True),
    "adam_max_schedule": lambda: fnopt.adam(lambda count: 0.05 * 0.99**count, maximize=True),
    "adam_mu_float32": lambda: fnopt.adam(0.05, mu_dtype="float32"),
    "adamw": lambda: fnopt.adamw(0.05, weight_decay=0.1),
    "adamax": lambda: fnopt.adamax(0.05),
    "nadam": lambda: fnopt.nadam(0.05),
    "radam": lambda: fnopt.radam(0.05),
    "rmsprop": lambda: fnopt.rmsprop(0.01),
    "rmsprop_centered_momentum": lambda: fnopt.rmsprop(0.01, centered=True, momentum=0.5),
    "adagrad": lambda: fnopt.adagrad(0.1, lr_decay=0.01, weight_decay=0.01),
    "adadelta": lambda: fnopt.adadelta(1.0),
    "asgd": lambda: fnopt.asgd(0.01, t0=5),
    "rprop": lambda: fnopt.rprop(0.01),
    "lion": lambda: fnopt.lion(0.005, weight_decay=0.1),
    "adafactor": lambda: fnopt.adafactor(0.05, weight_decay=0.01),
    "lamb": lambda: fnopt.lamb(0.05, weight_decay=0.01),
    "lars": lambda: fnopt.lars(0.05, momentum=0.9, weight_decay=0.01),
    "adabelief": lambda: fnopt.adabelief(0.05),
    "clip_then_adam": lambda: fnopt.chain(fnopt.clip_by_global_norm(1.0), fnopt.adam(0.05)),
    "user_then_adam": lambda: fnopt.chain(_user_scale(0.5), fnopt.adam(0.05)),
    "adam_then_user": lambda: fnopt.descent(fnopt.chain(
        fnopt.scale_by_adam(), _user_scale(-0.05))),
    "masked_momentum": lambda: fnopt.chain(
        fnopt.masked(fnopt.trace(0.9), {"w": True, "b": False}), fnopt.sgd(0.02)),
    "partition": lambda: fnopt.partition(
        {"a": fnopt.adam(0.05), "r": fnopt.rmsprop(0.01)}, {"w": "a", "b": "r"}),
    "apply_if_finite": lambda: fnopt.apply_if_finite(fnopt.adam(0.05)),
    "accumulate_sum": lambda: fnopt.descent(fnopt.accumulate(
        3, fnopt.chain(fnopt.trace(0.5), fnopt.scale_by_learning_rate(0.02)), average=False)),
    "accumulate_identity": lambda: fnopt.chain(fnopt.accumulate(2, average=False),
                                               fnopt.sgd(0.02)),
    "lookahead": lambda: fnopt.lookahead(fnopt.adam(0.05), sync_period=3, alpha=0.5),
    "inject_hyperparams": lambda: fnopt.inject_hyperparams(fnopt.adam)(learning_rate=0.05),
}
# muon orthogonalises matrices: its own params (two matrices)
MATRIX_ONLY = {"muon": lambda: fnopt.muon(0.02, weight_decay=0.01)}
ALL = {**OPTIMIZERS, **MATRIX_ONLY}
STEPS = 50


def test_the_table_names_every_public_first_order_alias() -> None:
    aliases = set(fnopt.optimizers.first_order.__all__) - {"descent"}
    tested = {name.split("_")[0] for name in ALL}
    assert aliases <= tested, aliases - tested


def make_params(name: str, backend: str, dtype: str, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    shapes = {"w": (3, 2), "b": (2, 4)} if name in MATRIX_ONLY else {"w": (3, 2), "b": (2,)}
    p = {k: rng.uniform(-1.5, 1.5, s).astype(dtype) for k, s in shapes.items()}
    if backend == "torch":
        return {k: torch.from_numpy(v) for k, v in p.items()}
    return p


def grads_at(p: Any) -> Any:
    """The gradient of ``sum(x^4/4 - x^2)`` (minima at ±sqrt(2)): new arrays."""
    return tree.map(lambda x: x**3 - 2 * x, p)


def value_at(p: Any) -> Any:
    return sum((x**4 / 4 - x**2).sum() for x in tree.leaves(p))


def as_numpy(x: Any) -> Any:
    return x.detach().cpu().numpy() if B.is_tensor(x) else x


def assert_bitwise(a: Any, b: Any) -> None:
    la, sa = optree.tree_flatten(a)
    lb, sb = optree.tree_flatten(b)
    assert sa == sb
    for x, y in zip(la, lb):
        x, y = as_numpy(x), as_numpy(y)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert np.asarray(x).dtype == np.asarray(y).dtype
            assert np.array_equal(x, y, equal_nan=True), (x, y)
        elif isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y)
        else:
            assert x == y, (x, y)


def snapshot(t: Any) -> Any:
    return optree.tree_map(lambda x: np.array(as_numpy(x), copy=True) if B.is_array(x) else x, t)


def fresh_copy(t: Any) -> Any:
    """``t`` with every array copied (a state the in-place path may overwrite)."""
    return optree.tree_map(
        lambda x: B.of_leaves([x]).clone([x])[0] if B.is_array(x) else x, t
    )


def leaf_ids(t: Any) -> list[int]:
    return [id(x) for x in tree.leaves(t) if B.is_array(x)]


# -- apply(out=...) against the pure apply ----------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(ALL))
def test_apply_into_buffers_is_bitwise_the_pure_apply(name: str, backend: str, dtype: str) -> None:
    """``out=params`` (in place) and ``out=`` a second buffer (ping-pong) both give the
    pure path's params and state, bitwise, at every one of 50 steps; the in-place path
    writes into the buffers it was given, never into the gradient."""
    opt = ALL[name]()
    assert isinstance(opt, fnopt.Descent)
    p0 = make_params(name, backend, dtype)
    pure_p, pure_s = p0, opt.init(p0)
    own_p, own_s = tree.clone(p0), opt.init(p0)  # out = params (in place)
    pp_p, pp_s, spare = tree.clone(p0), opt.init(p0), tree.clone(p0)  # ping-pong
    for _ in range(STEPS):
        g = grads_at(pure_p)
        g_before = snapshot(g)
        pure_p, pure_s = opt.apply(pure_p, value_at(pure_p), g, pure_s)
        assert_bitwise(g, g_before)
        ids = leaf_ids(own_p)
        g = grads_at(own_p)
        own_p, own_s = opt.apply(own_p, value_at(own_p), g, own_s, out=own_p)
        assert leaf_ids(own_p) == ids  # written into the buffers given
        assert_bitwise(g, g_before)  # the gradient is only read
        g = grads_at(pp_p)
        new_p, pp_s = opt.apply(pp_p, value_at(pp_p), g, pp_s, out=spare)
        assert new_p is spare
        pp_p, spare = new_p, pp_p
        assert_bitwise(pure_p, own_p)
        assert_bitwise(pure_s, own_s)
        assert_bitwise(pure_p, pp_p)
        assert_bitwise(pure_s, pp_s)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(ALL))
def test_pure_apply_never_touches_its_inputs(name: str, backend: str) -> None:
    """Params, gradient and state passed to the pure path are unchanged after it, and
    the new state shares no buffer with the old one (the old one stays usable)."""
    opt = ALL[name]()
    p = make_params(name, backend, "float64")
    s = opt.init(p)
    for _ in range(3):  # past the first steps (momentum buffers are then in use)
        p, s = opt.step(p, lambda x: (value_at(x), grads_at(x)), s)
    g = grads_at(p)
    before = (snapshot(p), snapshot(g), snapshot(s))
    new_p, new_s = opt.apply(p, value_at(p), g, s)
    assert_bitwise((p, g, s), before)
    old_ids = set(leaf_ids((p, g, s)))
    assert not old_ids & set(leaf_ids(new_p))
    # a second pure step from the old state gives the same result (nothing was consumed)
    again_p, again_s = opt.apply(p, value_at(p), g, s)
    assert_bitwise((again_p, again_s), (new_p, new_s))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "rmsprop", "adagrad", "lion"])
def test_the_same_gradient_array_every_step_is_never_written(name: str, backend: str) -> None:
    """A grad_fn may return one array every call: the in-place path only reads it."""
    opt = ALL[name]()
    p = make_params(name, backend, "float64")
    g = grads_at(p)
    g_before = snapshot(g)
    s = opt.init(p)
    ref_p, ref_s = tree.clone(p), fresh_copy(s)
    for _ in range(5):
        p, s = opt.apply(p, 0.0, g, s, grad_norm=1.0, out=p)
        ref_p, ref_s = opt.apply(ref_p, 0.0, g, ref_s, grad_norm=1.0)
    assert_bitwise(g, g_before)
    assert_bitwise(p, ref_p)


def test_apply_records_value_and_grad_norm_on_both_paths() -> None:
    opt = fnopt.adam(0.1)
    p = np.array([1.0, -2.0])
    q, s = opt.apply(p, 5.0, 2 * p, opt.init(p))
    r, s2 = opt.apply(p.copy(), 5.0, 2 * p, opt.init(p), out=np.empty(2), grad_norm=np.asarray(3.0))
    assert float(s.value) == 5.0 and float(s.grad_norm) == pytest.approx(math.sqrt(20.0))
    assert float(s2.value) == 5.0 and float(s2.grad_norm) == 3.0
    assert np.array_equal(q, r) and s.count == s2.count == 1


# -- the in-place protocol --------------------------------------------------------------


def test_builtin_transforms_declare_inplace_user_transforms_do_not() -> None:
    assert fnopt.scale_by_adam().inplace and fnopt.chain().inplace and fnopt.adam(0.1).inplace
    assert fnopt.scale_by_adam().name == "scale_by_adam"
    assert fnopt.scale_by_adam(b1=0.5).hyperparams["b1"] == 0.5
    user = _user_scale(1.0)
    assert not user.inplace and user.name is None and dict(user.hyperparams) == {}
    with pytest.raises(TypeError):
        fnopt.scale_by_adam().hyperparams["b1"] = 0.1  # type: ignore[index]


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_inplace_overwrites_the_state_and_matches_the_pure_update(backend: str) -> None:
    """``update(..., inplace=True)`` writes the new moments into the old state's
    buffers; the numbers are the pure update's."""
    t = fnopt.scale_by_adam()
    p = make_params("adam", backend, "float64")
    s = t.update(grads_at(p), t.init(p), p)[1]
    mine = fresh_copy(s)
    g = grads_at(tree.scale(0.5, p))
    u, s_pure = t.update(g, s, p)
    v, s_in = t.update(g, mine, p, inplace=True)
    assert_bitwise((u, s_pure), (v, s_in))
    assert leaf_ids(s_in.mu) == leaf_ids(mine.mu) and leaf_ids(s_in.nu) == leaf_ids(mine.nu)


# -- fused kernels against the generic path ---------------------------------------------


def _generic(opt: fnopt.Descent) -> fnopt.Descent:
    """The same chain with the declarations stripped (no names, no own update_params):
    nothing is recognised, each transform runs its own update (in place where
    declared), then an add."""
    members = opt.inner.hyperparams["transforms"]
    plain = [fnopt.Transform(t.init, t.update, inplace=t.inplace) for t in members]
    return fnopt.descent(fnopt.chain(*plain))


FUSED = {
    "adam": (lambda: fnopt.adam(0.05), "fused_adam_"),
    "adam_wd_amsgrad_max": (
        lambda: fnopt.adam(0.05, weight_decay=0.1, amsgrad=True, maximize=True), "fused_adam_"),
    "adam_schedule": (lambda: fnopt.adam(lambda c: 0.05 / (1 + 0.1 * c)), "fused_adam_"),
    "adamw": (lambda: fnopt.adamw(0.05, weight_decay=0.1), "fused_adam_"),
    "adamw_amsgrad": (lambda: fnopt.adamw(0.05, weight_decay=0.1, amsgrad=True), "fused_adam_"),
    "sgd": (lambda: fnopt.sgd(0.02), "fused_sgd_"),
    "sgd_momentum": (lambda: fnopt.sgd(0.02, momentum=0.9), "fused_sgd_"),
    "sgd_nesterov_wd_max": (
        lambda: fnopt.sgd(0.02, momentum=0.8, nesterov=True, weight_decay=0.01, maximize=True),
        "fused_sgd_"),
    "sgd_dampening": (lambda: fnopt.sgd(0.02, momentum=0.5, dampening=0.3), "fused_sgd_"),
    "adagrad": (lambda: fnopt.adagrad(0.1), "fused_adagrad_"),
    "adagrad_decay_wd_max": (
        lambda: fnopt.adagrad(0.1, lr_decay=0.01, weight_decay=0.01,
                              initial_accumulator_value=0.1, maximize=True),
        "fused_adagrad_"),
    # the inner chain of adam is recognised: the kernel runs on the clipped gradient
    "clip_then_adam": (
        lambda: fnopt.chain(fnopt.clip_by_global_norm(1.0), fnopt.adam(0.05)), "fused_adam_"),
    "user_chain_adam": (
        lambda: fnopt.descent(fnopt.chain(fnopt.scale_by_adam(b1=0.8),
                                          fnopt.scale_by_learning_rate(0.05))),
        "fused_adam_"),
}


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the fused-kernel calls of the torch backend."""
    calls: dict[str, int] = {}
    cls = type(B.TORCH)
    for name in ("fused_adam_", "fused_sgd_", "fused_adagrad_"):
        original = getattr(cls, name)

        def counted(self: Any, *a: Any, _name: str = name, _f: Any = original, **k: Any) -> Any:
            calls[_name] = calls.get(_name, 0) + 1
            return _f(self, *a, **k)

        monkeypatch.setattr(cls, name, counted)
    return calls


@pytest.mark.parametrize("name", list(FUSED))
def test_fused_kernel_matches_the_generic_path(name: str, kernel_calls: dict[str, int]) -> None:
    """200 float64 steps on torch, pure and in place, against the generic chain:
    params and every state buffer agree to rtol 1e-12; the kernel did run."""
    make, kernel = FUSED[name]
    opt = make()
    generic = _generic(opt)
    p0 = make_params(name, "torch", "float64", seed=1)
    fp, fs = p0, opt.init(p0)
    ip, is_ = tree.clone(p0), opt.init(p0)
    gp, gs = p0, generic.init(p0)
    for _ in range(200):
        fp, fs = opt.apply(fp, value_at(fp), grads_at(fp), fs)
        ip, is_ = opt.apply(ip, value_at(ip), grads_at(ip), is_, out=ip)
        gp, gs = generic.apply(gp, value_at(gp), grads_at(gp), gs)
    # pure and in place; plain pure sgd is one allocating pass, no kernel (a copy first
    # would cost more)
    assert kernel_calls.get(kernel, 0) == (200 if name == "sgd" else 400)
    assert_bitwise((fp, fs), (ip, is_))
    # params and state buffers (moments, counts, rates) to rtol 1e-12; an element
    # that has converged to 0 is compared at 1e-15 absolute
    for a, b in zip(tree.leaves((fp, fs.inner)), tree.leaves((gp, gs.inner))):
        if B.is_array(a):
            np.testing.assert_allclose(as_numpy(a), as_numpy(b), rtol=1e-12, atol=1e-15)
        else:
            assert a == b
    # the recorded loss and gradient norm are the user's functions of those params
    # (the gradient norm cancels near the minimum)
    np.testing.assert_allclose(float(fs.value), float(gs.value), rtol=1e-12)
    np.testing.assert_allclose(float(fs.grad_norm), float(gs.grad_norm), rtol=1e-9)


def test_fused_kernels_are_not_used_for_other_chains(kernel_calls: dict[str, int]) -> None:
    """Recognition reads the declared names and hyperparameters: a chain with another
    shape, Adam with mu_dtype, NumPy leaves or an autograd graph take the generic path."""
    p = make_params("adam", "torch", "float64")
    g = grads_at(p)
    for opt in (
        fnopt.chain(fnopt.adam(0.05), fnopt.clip(1.0)),
        fnopt.adam(0.05, mu_dtype="float32"),
        fnopt.descent(fnopt.chain(fnopt.scale_by_adam(), _user_scale(-0.1))),
        fnopt.rmsprop(0.01),
    ):
        opt.apply(p, 0.0, g, opt.init(p))
    opt = fnopt.adam(0.05)
    q = make_params("adam", "numpy", "float64")
    opt.apply(q, 0.0, grads_at(q), opt.init(q))
    lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    opt = fnopt.sgd(lr, momentum=0.9)
    new_p, _ = opt.apply(p, 0.0, g, opt.init(p))
    assert kernel_calls == {}
    new_p["w"].sum().backward()  # the graph through the learning rate is intact
    assert lr.grad is not None and float(lr.grad) != 0.0


# -- mu_dtype -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_mu_dtype_keeps_the_first_moment_in_that_dtype(backend: str) -> None:
    """float64 params, float32 first moment: the state says so, updates stay float64,
    and the trajectory is float64 Adam's to float32 precision."""
    opt32 = fnopt.adam(0.05, mu_dtype="float32")
    opt64 = fnopt.adam(0.05)
    p = q = make_params("adam", backend, "float64")
    s, t = opt32.init(p), opt64.init(q)
    for _ in range(30):
        p, s = opt32.apply(p, value_at(p), grads_at(p), s)
        q, t = opt64.apply(q, value_at(q), grads_at(q), t)
    mu, nu = s.inner[0].mu, s.inner[0].nu
    assert {str(x.dtype).replace("torch.", "") for x in tree.leaves(mu)} == {"float32"}
    assert {str(x.dtype).replace("torch.", "") for x in tree.leaves(nu)} == {"float64"}
    assert {str(x.dtype).replace("torch.", "") for x in tree.leaves(p)} == {"float64"}
    for a, b in zip(tree.leaves(p), tree.leaves(q)):
        np.testing.assert_allclose(as_numpy(a), as_numpy(b), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(as_numpy(p["w"]), as_numpy(q["w"]))  # it did round


def test_mu_dtype_float32_moment_for_bfloat16_params() -> None:
    t = fnopt.scale_by_adam(mu_dtype=torch.float32)
    p = [torch.ones(4, dtype=torch.bfloat16)]
    g = [torch.full((4,), 0.5, dtype=torch.bfloat16)]
    u, s = t.update(g, t.init(p))
    assert s.mu[0].dtype == torch.float32 and s.nu[0].dtype == torch.bfloat16
    assert u[0].dtype == torch.bfloat16
    np.testing.assert_allclose(u[0].float().numpy(), 1.0, rtol=1e-2)


@pytest.mark.parametrize("bad", ["int32", 3, "float"])
def test_mu_dtype_rejects_what_is_not_a_float_dtype(bad: Any) -> None:
    with pytest.raises(ValueError, match="mu_dtype"):
        fnopt.adam(0.1, mu_dtype=bad)


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam", "sgd_nesterov_wd", "lion", "asgd"])
def test_large_numpy_leaves_in_place_are_bitwise_the_pure_path(name: str) -> None:
    """Large float32 leaves (two of the same shape), in place: bitwise the pure path."""
    opt = ALL[name]()
    rng = np.random.default_rng(3)
    p0 = {k: rng.uniform(-1.5, 1.5, (200, 100)).astype("float32") for k in ("a", "b")}
    pure_p, pure_s = p0, opt.init(p0)
    own_p, own_s = tree.clone(p0), opt.init(p0)
    for _ in range(5):
        pure_p, pure_s = opt.apply(pure_p, value_at(pure_p), grads_at(pure_p), pure_s)
        own_p, own_s = opt.apply(own_p, value_at(own_p), grads_at(own_p), own_s, out=own_p)
    assert_bitwise((pure_p, pure_s), (own_p, own_s))
    assert not np.array_equal(pure_p["a"], p0["a"])
