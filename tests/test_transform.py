"""The building blocks of fnopt.transforms: closed-form first steps, composition,
clipping, masking, partitions, skipping non-finite steps, accumulation, lookahead and
injected hyperparameters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optree
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import assert_same_tree, pytrees, snapshot, to_numpy

import fnopt
from fnopt import transforms as T

G = np.array([0.5, -2.0, 3.0])
P = np.array([1.0, 2.0, -1.0])


def first_update(t: fnopt.Transform, g: Any = G, p: Any = P) -> Any:
    return t.update(g, t.init(p), p)[0]


# -- closed-form first (and second) steps ----------------------------------------------

FIRST_STEP = [
    ("scale", T.scale(-3.0), -3.0 * G),
    ("identity", T.identity(), G),
    ("scale_by_learning_rate", T.scale_by_learning_rate(0.1), -0.1 * G),
    ("scale_by_learning_rate-no-flip", T.scale_by_learning_rate(0.1, flip_sign=False), 0.1 * G),
    ("trace", T.trace(0.9), G),
    ("trace-nesterov", T.trace(0.9, nesterov=True), 1.9 * G),
    ("add_decayed_weights", T.add_decayed_weights(0.5), G + 0.5 * P),
    # Adam's first step: m_hat = g, v_hat = g^2 -> g / (|g| + eps)
    ("scale_by_adam", T.scale_by_adam(eps=0.0), np.sign(G)),
    ("scale_by_adam-amsgrad", T.scale_by_adam(eps=0.0, amsgrad=True), np.sign(G)),
    ("scale_by_adamax", T.scale_by_adamax(eps=0.0), np.sign(G)),
    # NAdam's first step: mu_1 (m_1 = (1-b1) g) over (1 - mu_1 mu_2) plus (1 - mu_1)/(1 - mu_1)
    ("scale_by_radam", T.scale_by_radam(), G),  # rho_1 <= 5: un-rectified momentum
    ("scale_by_rms", T.scale_by_rms(decay=0.75, eps=0.0), G / np.sqrt(0.25 * G**2)),
    ("scale_by_stddev", T.scale_by_stddev(decay=0.75, eps=0.0),
     G / np.sqrt(0.25 * G**2 - (0.25 * G) ** 2)),
    ("scale_by_adagrad", T.scale_by_adagrad(eps=0.0), np.sign(G)),
    ("scale_by_adagrad-init", T.scale_by_adagrad(initial_accumulator_value=1.0, eps=0.0),
     G / np.sqrt(1.0 + G**2)),
    ("scale_by_adadelta", T.scale_by_adadelta(rho=0.5, eps=1e-6),
     np.sqrt(1e-6) / np.sqrt(0.5 * G**2 + 1e-6) * G),
    ("scale_by_lion", T.scale_by_lion(), np.sign(G)),
    ("scale_by_rprop", T.scale_by_rprop(0.1), -0.1 * np.sign(G)),
    ("clip", T.clip(1.0), np.clip(G, -1.0, 1.0)),
    ("clip_by_global_norm-inactive", T.clip_by_global_norm(10.0), G),
    ("clip_by_global_norm", T.clip_by_global_norm(1.0), G / np.linalg.norm(G)),  # optax's
    ("clip_by_global_norm-torch", T.clip_by_global_norm(1.0, eps=1e-6),
     G / (np.linalg.norm(G) + 1e-6)),
    ("polyak_average", T.polyak_average(), G),
    # AdaBelief's first step: m_1 = 0.1 g, s_1 = 0.001 (0.9 g)^2 -> g / (0.9 |g|)
    ("scale_by_belief", T.scale_by_belief(eps=0.0), np.sign(G) / 0.9),
    ("scale_by_trust_ratio", T.scale_by_trust_ratio(trust_coefficient=0.5),
     0.5 * np.linalg.norm(P) / np.linalg.norm(G) * G),
]


@pytest.mark.parametrize(("name", "t", "expected"), FIRST_STEP, ids=[c[0] for c in FIRST_STEP])
def test_first_step_closed_form(name: str, t: fnopt.Transform, expected: Any) -> None:
    np.testing.assert_allclose(first_update(t), expected, rtol=1e-12)


def test_nadam_first_step_closed_form() -> None:
    b1, psi = 0.9, 4e-3
    mu1 = b1 * (1 - 0.5 * 0.96 ** (1 * psi))
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    d = np.abs(G)  # sqrt(v_1 / (1 - b2)) = |g|
    expected = (1 - mu1) / (1 - mu1) * G / d + mu2 / (1 - mu1 * mu2) * (1 - b1) * G / d
    np.testing.assert_allclose(first_update(T.scale_by_nadam(eps=0.0)), expected, rtol=1e-12)


def test_factored_rms_is_exact_for_rank_one_squares() -> None:
    # g = a b^T: the row/column factorisation of g^2 is exact, so the first step is
    # g / |g| = sign(g); a vector leaf has an unfactored moment with the same result
    a, b = np.array([1.0, -2.0, 3.0]), np.array([0.5, -4.0])
    g = {"m": np.outer(a, b), "v": b, "s": np.array(-3.0)}
    t = T.scale_by_factored_rms(eps=0.0)
    u, s = t.update(g, t.init(g))
    for k in g:
        np.testing.assert_allclose(u[k], np.sign(g[k]), rtol=1e-12)
    assert s.v_row["m"].shape == (3, 1) and s.v_col["m"].shape == (1, 2)
    assert s.v["v"].shape == (2,) and s.v["m"].shape == ()


def test_factored_rms_clips_the_update_rms() -> None:
    # second step with a gradient 100x larger: the raw update has RMS >> d, clipped to d
    t = T.scale_by_factored_rms(d=1.0)
    g = np.array([1.0, 2.0, 3.0])
    s = t.init(g)
    _, s = t.update(g, s)
    u, _ = t.update(100 * g, s)
    assert np.sqrt(np.mean(u**2)) == pytest.approx(1.0, rel=1e-12)


def test_radam_rectifies_after_five_steps() -> None:
    # rho_t > 5 from t = 6 on (b2 = 0.999): the update changes from m_hat to the
    # rectified adaptive step; with a constant gradient m_hat = g
    t = T.scale_by_radam(eps=0.0)
    s = t.init(P)
    outs = []
    for _ in range(7):
        u, s = t.update(G, s)
        outs.append(u)
    np.testing.assert_allclose(outs[4], G, rtol=1e-12)
    assert not np.allclose(outs[6], G)
    assert np.all(np.sign(outs[6]) == np.sign(G))


def test_trace_dampening_and_nesterov_second_step() -> None:
    t = T.trace(0.9, dampening=0.5)
    s = t.init(P)
    _, s = t.update(G, s)
    u, s = t.update(2 * G, s)
    np.testing.assert_allclose(u, 0.9 * G + 0.5 * 2 * G)
    t = T.trace(0.9, nesterov=True)
    s = t.init(P)
    _, s = t.update(G, s)
    u, _ = t.update(G, s)
    np.testing.assert_allclose(u, G + 0.9 * (0.9 * G + G))


def test_adam_amsgrad_keeps_the_maximum() -> None:
    t = T.scale_by_adam(amsgrad=True)
    s = t.init(P)
    _, s = t.update(10 * G, s)
    _, s = t.update(0.1 * G, s)
    np.testing.assert_array_equal(s.nu_max, np.maximum(s.nu_max, s.nu))
    assert np.all(s.nu_max > s.nu)


def test_lion_momentum_uses_b2() -> None:
    t = T.scale_by_lion(b1=0.5, b2=0.9)
    _, s = t.update(G, t.init(P))
    np.testing.assert_allclose(s.mu, 0.1 * G)


def test_rprop_shrinks_on_sign_change_and_zeroes_the_gradient() -> None:
    t = T.scale_by_rprop(0.1, etas=(0.5, 1.2), step_sizes=(1e-3, 1.0))
    s = t.init(P)
    _, s = t.update(np.array([1.0, 1.0, 0.0]), s)
    u, s = t.update(np.array([2.0, -1.0, 1.0]), s)
    # same sign: step 0.1*1.2; flipped: 0.1*0.5 and no move; zero before: unchanged 0.1
    np.testing.assert_allclose(s.step_size, [0.12, 0.05, 0.1])
    np.testing.assert_allclose(u, [-0.12, 0.0, -0.1])
    np.testing.assert_array_equal(s.prev, [2.0, 0.0, 1.0])


# -- composition -----------------------------------------------------------------------


def test_chain_applies_in_order_and_keeps_a_tuple_of_states() -> None:
    t = T.chain(T.add_decayed_weights(1.0), T.scale(2.0), T.trace(0.5))
    s = t.init(P)
    assert isinstance(s, tuple) and len(s) == 3
    u, s = t.update(G, s, P)
    np.testing.assert_allclose(u, 2 * (G + P))
    assert s[2].count == 1


def test_chain_rejects_non_transforms() -> None:
    with pytest.raises(TypeError, match="argument 1"):
        T.chain(T.identity(), lambda g: g)  # type: ignore[arg-type]


TRANSFORMS = [
    T.scale_by_adam(), T.scale_by_adam(amsgrad=True), T.scale_by_adamax(), T.scale_by_nadam(),
    T.scale_by_radam(), T.scale_by_rms(), T.scale_by_stddev(), T.scale_by_adagrad(),
    T.scale_by_adadelta(), T.scale_by_lion(), T.scale_by_rprop(), T.trace(0.9),
    T.clip(0.5), T.clip_by_global_norm(0.5), T.polyak_average(0),
    T.masked(T.scale_by_adam(), lambda p: optree.tree_map(lambda _: True, p)),
    T.apply_if_finite(T.scale_by_adam()), T.accumulate(2, T.scale_by_adam()),
    T.lookahead(T.scale_by_learning_rate(0.1)),
    T.inject_hyperparams(T.scale_by_adam)(b1=0.8),
    T.scale_by_factored_rms(), T.scale_by_param_block_rms(),
    T.scale_by_trust_ratio(), T.scale_by_belief(),
]


@pytest.mark.parametrize("t", TRANSFORMS, ids=range(len(TRANSFORMS)))
@settings(max_examples=10)
@given(data=st.data())
def test_transforms_are_pure_and_keep_structure(t: fnopt.Transform, data: Any) -> None:
    params = data.draw(pytrees(bound=3.0))
    grads = fnopt.tree.sub(params, fnopt.tree.ones_like(params))
    state = t.init(params)
    snaps = snapshot(params), snapshot(grads), snapshot(state)
    u, s1 = t.update(grads, state, params)
    for tree_, snap in zip((params, grads, state), snaps):
        assert_same_tree(tree_, snap)
    assert optree.tree_structure(u) == optree.tree_structure(params)
    for a, b in zip(fnopt.tree.leaves(u), fnopt.tree.leaves(params)):
        assert type(a) is type(b) and a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    _, s2 = t.update(grads, s1, params)
    assert optree.tree_structure(s2) == optree.tree_structure(s1) == optree.tree_structure(state)


# -- clipping --------------------------------------------------------------------------


@given(tree=pytrees(backend="numpy", dtype="float64"), c=st.floats(0.01, 5.0))
def test_clip_by_global_norm_bounds_the_norm(tree: Any, c: float) -> None:
    u, _ = T.clip_by_global_norm(c).update(tree, T.EmptyState())
    n0 = float(fnopt.tree.global_norm(tree))
    n1 = float(fnopt.tree.global_norm(u))
    assert n1 <= c * (1 + 1e-12)
    if n0 + 1e-6 <= c:
        assert n1 == pytest.approx(n0, rel=1e-12)


def test_clip_by_global_norm_keeps_float32() -> None:
    g = {"a": np.array([3.0], np.float32), "b": np.array(4.0, np.float32)}
    u, _ = T.clip_by_global_norm(1.0).update(g, T.EmptyState())
    assert u["a"].dtype == np.float32 and u["b"].dtype == np.float32
    assert float(fnopt.tree.global_norm(u)) == pytest.approx(1.0, rel=1e-6)


# -- masked / partition -----------------------------------------------------------------

PT = {"w": np.ones((2, 2)), "b": np.full(2, 2.0), "layer": {"w": np.full(3, 3.0), "b": np.ones(1)}}
GT = fnopt.tree.full_like(PT, 0.5)


def test_masked_leaves_the_unmasked_leaves_alone() -> None:
    mask = {"w": True, "b": False, "layer": {"w": True, "b": False}}
    t = T.masked(T.chain(T.add_decayed_weights(0.1), T.scale(-1.0)), mask)
    u, _ = t.update(GT, t.init(PT), PT)
    np.testing.assert_allclose(u["w"], -(0.5 + 0.1 * PT["w"]))
    np.testing.assert_allclose(u["layer"]["w"], -(0.5 + 0.1 * PT["layer"]["w"]))
    assert u["b"] is GT["b"] and u["layer"]["b"] is GT["layer"]["b"]


def test_masked_accepts_a_prefix_and_a_function() -> None:
    adam = T.scale_by_adam()
    prefix = T.masked(adam, {"w": True, "b": True, "layer": False})
    fn = T.masked(adam, lambda p: {"w": True, "b": True, "layer": {"w": False, "b": False}})
    u1, s1 = prefix.update(GT, prefix.init(PT), PT)
    u2, _ = fn.update(GT, fn.init(PT), PT)
    for a, b in zip(fnopt.tree.leaves(u1), fnopt.tree.leaves(u2)):
        np.testing.assert_array_equal(a, b)
    assert len(s1.inner.mu) == 2  # adam state only for the two selected leaves
    assert u1["layer"]["w"] is GT["layer"]["w"]


def test_masked_rejects_a_mismatched_mask() -> None:
    t = T.masked(T.identity(), {"x": True})
    with pytest.raises(ValueError, match="mask"):
        t.init(PT)


def test_partition_is_parameter_groups() -> None:
    # no weight decay on biases: the torch.optim param-group idiom
    labels = {"w": "decay", "b": "plain", "layer": {"w": "decay", "b": "plain"}}
    t = T.partition(
        {"decay": T.chain(T.add_decayed_weights(0.1), T.scale_by_learning_rate(1.0)),
         "plain": T.scale_by_learning_rate(1.0)},
        labels,
    )
    s = t.init(PT)
    assert set(s.inner) == {"decay", "plain"}
    u, s = t.update(GT, s, PT)
    np.testing.assert_allclose(u["w"], -(0.5 + 0.1 * PT["w"]))
    np.testing.assert_allclose(u["b"], -0.5)
    np.testing.assert_allclose(u["layer"]["b"], -0.5)
    np.testing.assert_allclose(u["layer"]["w"], -(0.5 + 0.1 * PT["layer"]["w"]))


def test_partition_matches_torch_param_groups() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0, b0 = rng.standard_normal((3, 2)), rng.standard_normal(2)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    tw = torch.tensor(w0, requires_grad=True)
    tb = torch.tensor(b0, requires_grad=True)

    def loss(w: Any, b: Any) -> Any:
        r = torch.as_tensor(x) @ w + b - torch.as_tensor(y)
        return (r * r).mean()

    opt = torch.optim.AdamW(
        [{"params": [tw], "weight_decay": 0.5}, {"params": [tb], "weight_decay": 0.0}], lr=0.05
    )
    t = T.partition(
        {"w": T.chain(T.scale_by_adam(), T.add_decayed_weights(0.5),
                      T.scale_by_learning_rate(0.05)),
         "b": T.chain(T.scale_by_adam(), T.scale_by_learning_rate(0.05))},
        lambda p: {"w": "w", "b": "b"},
    )

    def grad_fn(p: Any) -> tuple[Any, Any]:
        w = torch.tensor(p["w"], requires_grad=True)
        b = torch.tensor(p["b"], requires_grad=True)
        v = loss(w, b)
        gw, gb = torch.autograd.grad(v, [w, b])
        return v.detach().numpy(), {"w": gw.numpy(), "b": gb.numpy()}

    ours = fnopt.descent(t)
    p, s = {"w": w0, "b": b0}, ours.init({"w": w0, "b": b0})
    for _ in range(30):
        opt.zero_grad()
        loss(tw, tb).backward()
        opt.step()
        p, s = ours.step(p, grad_fn, s)
        np.testing.assert_allclose(p["w"], tw.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(p["b"], tb.detach().numpy(), rtol=1e-10)


def test_partition_rejects_unknown_labels() -> None:
    t = T.partition({"a": T.identity()}, {"w": "a", "b": "zzz", "layer": "a"})
    with pytest.raises(ValueError, match="zzz"):
        t.init(PT)
    with pytest.raises(TypeError, match="transforms"):
        T.partition({"a": 3}, {})  # type: ignore[dict-item]


# -- apply_if_finite ----------------------------------------------------------------------


def test_apply_if_finite_skips_and_counts() -> None:
    t = T.apply_if_finite(T.scale_by_adam())
    s = t.init(P)
    u, s = t.update(G, s)
    inner_after_one = s.inner
    bad = np.array([np.nan, 1.0, np.inf])
    u, s = t.update(bad, s)
    np.testing.assert_array_equal(u, 0.0)
    assert s.inner is inner_after_one
    assert (s.notfinite_count, s.last_finite, s.total_notfinite) == (1, False, 1)
    u, s = t.update(bad, s)
    assert (s.notfinite_count, s.total_notfinite) == (2, 2)
    u, s = t.update(G, s)
    assert (s.notfinite_count, s.last_finite, s.total_notfinite) == (0, True, 2)
    assert s.inner.count == 2 and np.all(np.isfinite(u))


def test_apply_if_finite_gives_up_after_max_consecutive_errors() -> None:
    t = T.apply_if_finite(T.identity(), max_consecutive_errors=1)
    s = t.init(P)
    bad = np.array([np.nan, 1.0, 1.0])
    u, s = t.update(bad, s)
    assert np.all(u == 0)
    u, s = t.update(bad, s)
    assert np.isnan(u[0])


# -- accumulate ----------------------------------------------------------------------------


def test_accumulate_equals_one_large_batch_step() -> None:
    # two half-batch gradients averaged == the full-batch gradient (mean loss)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal(8)

    def grad_fn(w: Any, xb: Any, yb: Any) -> tuple[Any, Any]:
        r = xb @ w - yb
        return np.asarray(0.5 * (r @ r) / len(r)), xb.T @ r / len(r)

    inner = T.chain(T.scale_by_adam(), T.scale_by_learning_rate(0.1))
    acc = fnopt.descent(T.accumulate(2, inner))
    ref = fnopt.descent(inner)
    w = v = np.zeros(3)
    sa, sr = acc.init(w), ref.init(v)
    for _ in range(5):
        w1, sa = acc.step(w, grad_fn, sa, x[:4], y[:4])
        np.testing.assert_array_equal(w1, w)  # no move on the first micro-batch
        w, sa = acc.step(w1, grad_fn, sa, x[4:], y[4:])
        v, sr = ref.step(v, grad_fn, sr, x, y)
        np.testing.assert_allclose(w, v, rtol=1e-12)
    assert sa.inner.inner[0].count == 5 and sa.inner.count == 10


def test_accumulate_sum_and_validation() -> None:
    t = T.accumulate(3, average=False)
    s = t.init(P)
    for _ in range(2):
        u, s = t.update(G, s)
        np.testing.assert_array_equal(u, 0.0)
    u, s = t.update(G, s)
    np.testing.assert_allclose(u, 3 * G)
    np.testing.assert_array_equal(s.acc, 0.0)
    with pytest.raises(ValueError, match="k"):
        T.accumulate(0)
    with pytest.raises(TypeError, match="k"):
        T.accumulate(2.5)  # type: ignore[arg-type]


# -- lookahead ----------------------------------------------------------------------------


def test_lookahead_matches_the_papers_loop() -> None:
    def grad(p: Any) -> Any:
        return np.array([2.0, 20.0]) * p

    k, alpha, lr = 3, 0.5, 0.04
    # Zhang et al. 2019, Algorithm 1 with SGD as the inner optimizer
    slow = np.array([1.0, 1.0])
    ref = []
    for _ in range(4):
        fast = slow.copy()
        for _ in range(k):
            fast = fast - lr * grad(fast)
            ref.append(fast.copy())
        slow = slow + alpha * (fast - slow)
        ref[-1] = slow.copy()
    t = T.lookahead(T.scale_by_learning_rate(lr), sync_period=k, alpha=alpha)
    p, s = np.array([1.0, 1.0]), t.init(np.array([1.0, 1.0]))
    ours = []
    for _ in range(4 * k):
        u, s = t.update(grad(p), s, p)
        p = p + u
        ours.append(p.copy())
    np.testing.assert_allclose(ours, ref, rtol=1e-14)
    np.testing.assert_allclose(s.slow, ref[-1], rtol=1e-14)


def test_lookahead_validation() -> None:
    with pytest.raises(ValueError, match="sync_period"):
        T.lookahead(T.identity(), sync_period=0)
    with pytest.raises(ValueError, match="alpha"):
        T.lookahead(T.identity(), alpha=1.5)
    with pytest.raises(ValueError, match="params"):
        t = T.lookahead(T.identity())
        t.update(G, t.init(P))


# -- inject_hyperparams ---------------------------------------------------------------------


def test_inject_hyperparams_same_trajectory_when_unchanged() -> None:
    plain = fnopt.adam(0.05, b1=0.8)
    inj = T.inject_hyperparams(fnopt.adam)(0.05, b1=0.8)
    p, q = P, P
    sp, sq = plain.init(p), inj.init(q)

    def grad_fn(x: Any) -> tuple[Any, Any]:
        return np.asarray(0.5 * x @ x), x

    for _ in range(5):
        p, sp = plain.step(p, grad_fn, sp)
        q, sq = inj.step(q, grad_fn, sq)
    np.testing.assert_array_equal(p, q)
    assert {k: sq.hyperparams[k] for k in ("learning_rate", "b1")} == {
        "learning_rate": 0.05, "b1": 0.8}
    assert sq.hyperparams["b2"] == 0.999  # the defaults are recorded too (optax)
    assert sq.count == 5 and float(sq.value) == float(sp.value)


def test_inject_hyperparams_change_between_steps_keeps_the_inner_state() -> None:
    def grad_fn(x: Any) -> tuple[Any, Any]:
        return np.asarray(0.5 * x @ x), x

    inj = T.inject_hyperparams(fnopt.sgd)(learning_rate=0.1, momentum=0.9)
    s = inj.init(P)
    p, s = inj.step(P, grad_fn, s)
    s = s._replace(hyperparams={**s.hyperparams, "learning_rate": 0.01})
    p2, s2 = inj.step(p, grad_fn, s)
    # by hand: momentum buffer carries over, new rate applies
    buf = 0.9 * P + p
    np.testing.assert_allclose(p2, p - 0.01 * buf)
    assert fnopt.learning_rate_of(s2) == 0.01


def test_inject_hyperparams_schedules_and_transforms() -> None:
    sched = fnopt.schedules.linear(1.0, 0.0, 4)
    t = T.inject_hyperparams(T.scale_by_learning_rate)(sched)
    s = t.init(P)
    for k in range(3):
        u, s = t.update(G, s)
        np.testing.assert_allclose(u, -sched(k) * G)
        assert s.hyperparams["learning_rate"] == sched(k)
    with pytest.raises(TypeError, match="factory"):
        T.inject_hyperparams(lambda: 3)()
    with pytest.raises(ValueError, match="b1"):
        T.inject_hyperparams(T.scale_by_adam)(b1=2.0)


# -- scale_by_learning_rate -------------------------------------------------------------------


def test_scale_by_learning_rate_records_the_rate_used() -> None:
    t = T.scale_by_learning_rate(lambda c: 1.0 / (c + 1))
    s = t.init(P)
    for k in range(3):
        _, s = t.update(G, s)
        assert s.learning_rate == 1.0 / (k + 1)


@pytest.mark.parametrize(
    ("factory", "arg", "bad"),
    [
        (T.scale_by_adam, "b1", 1.0), (T.scale_by_adam, "eps", -1.0),
        (T.scale_by_adamax, "b2", -0.1), (T.scale_by_nadam, "momentum_decay", -1.0),
        (T.scale_by_radam, "b2", math.nan), (T.scale_by_rms, "decay", 1.5),
        (T.scale_by_stddev, "eps", math.inf), (T.scale_by_adagrad, "initial_accumulator_value", -1),
        (T.scale_by_adadelta, "rho", 2.0), (T.scale_by_lion, "b1", 1.0),
        (T.clip, "max_delta", -1.0), (T.clip_by_global_norm, "max_norm", math.nan),
        (T.add_decayed_weights, "weight_decay", -0.1), (T.scale, "step_size", math.nan),
        (T.scale_by_learning_rate, "learning_rate", -1.0), (T.polyak_average, "t0", -1.0),
    ],
)
def test_hyperparameter_validation(factory: Any, arg: str, bad: float) -> None:
    with pytest.raises(ValueError, match=arg):
        factory(**{arg: bad})


def test_wrappers_reject_non_transforms() -> None:
    for wrap in (T.masked, T.apply_if_finite, T.lookahead):
        with pytest.raises(TypeError, match="transform"):
            wrap(lambda g: g, *([True] if wrap is T.masked else []))
    with pytest.raises(TypeError, match="transform"):
        T.accumulate(2, lambda g: g)  # type: ignore[arg-type]


def test_torch_leaves_stay_torch() -> None:
    torch = pytest.importorskip("torch")
    p = {"w": torch.ones(2, 3, dtype=torch.float32), "b": torch.zeros(3, dtype=torch.float32)}
    for t in TRANSFORMS:
        u, _ = t.update(fnopt.tree.ones_like(p), t.init(p), p)
        assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float32
                   for x in fnopt.tree.leaves(u))
        assert to_numpy(u)["w"].shape == (2, 3)


# -- Muon ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_muon_orthogonalises_towards_the_polar_factor(shape: tuple[int, int]) -> None:
    # the cubic Newton-Schulz iteration (1.5, -0.5, 0) converges to U V^T of the SVD
    g = np.random.default_rng(3).standard_normal(shape)
    t = T.scale_by_muon(momentum=0.0, nesterov=False, ns_coefficients=(1.5, -0.5, 0.0),
                        ns_steps=60)
    u, _ = t.update(g, t.init(np.zeros(shape)))
    left, _, right = np.linalg.svd(g, full_matrices=False)
    scale = math.sqrt(max(1.0, shape[0] / shape[1]))
    np.testing.assert_allclose(u, scale * left @ right, atol=1e-8)


def test_muon_default_iteration_flattens_the_spectrum() -> None:
    # torch's quintic coefficients push every singular value into roughly [0.7, 1.2]
    g = np.diag([10.0, 1.0, 0.1]) @ np.random.default_rng(0).standard_normal((3, 6))
    t = T.scale_by_muon(momentum=0.0, adjust_lr_fn="match_rms_adamw")
    u, _ = t.update(g, t.init(np.zeros_like(g)))
    sv = np.linalg.svd(u / (0.2 * math.sqrt(6)), compute_uv=False)
    assert sv.min() > 0.6 and sv.max() < 1.25


def test_muon_momentum_and_nesterov() -> None:
    mu = 0.9
    t = T.scale_by_muon(momentum=mu, ns_steps=0)
    g1, g2 = np.array([[1.0, 2.0]]), np.array([[3.0, -1.0]])
    s = t.init(g1)
    _, s = t.update(g1, s)
    np.testing.assert_allclose(s.mu, (1 - mu) * g1)
    u, s = t.update(g2, s)
    buf = mu * (1 - mu) * g1 + (1 - mu) * g2
    d = (1 - mu) * g2 + mu * buf  # nesterov: g.lerp(buf, mu)
    np.testing.assert_allclose(u, d / np.linalg.norm(d))
    np.testing.assert_allclose(s.mu, buf)


def test_muon_needs_matrices() -> None:
    t = T.scale_by_muon()
    with pytest.raises(ValueError, match=r"\['b'\].*partition"):
        t.init({"w": np.ones((2, 3)), "b": np.ones(3)})
    with pytest.raises(ValueError, match="ns_steps"):
        T.scale_by_muon(ns_steps=100)


def test_inject_hyperparams_with_a_keyword_forwarding_factory() -> None:
    def factory(learning_rate: float, **kw: Any) -> fnopt.Transform:
        return T.chain(T.scale_by_adam(**kw), T.scale_by_learning_rate(learning_rate))

    t = T.inject_hyperparams(factory)(0.1, b1=0.5, amsgrad=True)
    s = t.init(P)
    assert s.hyperparams == {"learning_rate": 0.1, "b1": 0.5}
    u, s = t.update(G, s)
    np.testing.assert_allclose(u, -0.1 * np.sign(G), rtol=1e-6)
    assert s.inner[0].nu_max is not None  # the static flag reached the factory


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_backend_norms_and_mean(backend: str) -> None:
    # the two per-leaf reductions scale_by_factored_rms and scale_by_param_block_rms use
    if backend == "torch":
        pytest.importorskip("torch")
    from strategies import to_backend

    xs_np = [np.arange(6.0, dtype=np.float32).reshape(2, 3), np.array([3.0, 4.0]), np.array(2.0)]
    xs = fnopt.tree.leaves(to_backend(xs_np, backend))
    be = fnopt.backend.of_leaves(xs)
    norms = [to_numpy(n) for n in be.norms(xs)]
    np.testing.assert_allclose(norms, [np.linalg.norm(np.arange(6.0)), 5.0, 2.0], rtol=1e-6)
    assert norms[0].dtype == np.float32 and norms[0].shape == ()
    m = to_numpy(be.mean(xs[:1], -1)[0])
    np.testing.assert_allclose(m, [[1.0], [4.0]])
    np.testing.assert_allclose(to_numpy(be.mean(xs[:1], -2)[0]), [[1.5, 2.5, 3.5]])
    assert m.dtype == np.float32


def test_trust_ratio_leaves_zero_norm_leaves_alone() -> None:
    t = T.scale_by_trust_ratio(min_norm=0.1)
    p = {"zero": np.zeros(2), "small": np.full(2, 0.01), "big": np.array([3.0, 4.0])}
    g = {"zero": np.ones(2), "small": np.ones(2), "big": np.array([0.0, 1.0])}
    u, _ = t.update(g, t.init(p), p)
    np.testing.assert_array_equal(u["zero"], 1.0)
    np.testing.assert_array_equal(u["small"], 1.0)  # |p| = 0.014 <= min_norm
    np.testing.assert_allclose(u["big"], [0.0, 5.0])
