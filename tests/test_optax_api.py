"""optax's names and calling conventions in fnopt (issue 21, "optax users"), and the
clear refusal of a schedule returning something that is not a number (issue 19)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt


def quad(p: Any) -> tuple[Any, Any]:
    return float(p @ p), 2 * p


@pytest.mark.parametrize(("bad", "count", "what"), [
    (lambda c: None, 0, "NoneType"),
    (lambda c: "0.1", 0, "str"),
    (lambda c: np.ones(3), 0, r"an array of shape \(3,\)"),
    (lambda c: 0.1 if c < 2 else None, 2, "NoneType"),
])
def test_a_schedule_returning_a_non_number_is_named(bad: Any, count: int, what: str) -> None:
    opt = fnopt.adam(bad)
    p = np.ones(2)
    with pytest.raises(TypeError, match=rf"learning_rate: the schedule returned {what}.* "
                                        rf"at count {count}"):
        s = opt.init(p)
        for _ in range(3):
            p, s = opt.step(p, quad, s)


def test_apply_updates_is_pure_and_keeps_dtypes() -> None:
    p = {"w": np.ones(2, np.float32), "b": None}
    u = {"w": np.full(2, 0.5), "b": None}
    out = fnopt.apply_updates(p, u)
    assert out["w"].dtype == np.float32 and out["b"] is None
    np.testing.assert_array_equal(out["w"], [1.5, 1.5])
    np.testing.assert_array_equal(p["w"], [1.0, 1.0])


def test_named_chain_state_is_a_dict_and_steps_like_chain() -> None:
    named = fnopt.named_chain(("adam", fnopt.scale_by_adam()),
                              ("lr", fnopt.scale_by_learning_rate(0.1)))
    plain = fnopt.chain(fnopt.scale_by_adam(), fnopt.scale_by_learning_rate(0.1))
    p = np.array([1.0, -2.0])
    sn, sp = named.init(p), plain.init(p)
    assert set(sn) == {"adam", "lr"}
    for _ in range(3):
        un, sn = named.update(2 * p, sn, p)
        up, sp = plain.update(2 * p, sp, p)
        np.testing.assert_array_equal(un, up)
        p = p + un
    assert sn["adam"].count == 3
    with pytest.raises(ValueError, match="used twice"):
        fnopt.named_chain(("a", fnopt.clip(1.0)), ("a", fnopt.clip(1.0)))
    assert isinstance(fnopt.named_chain(("opt", fnopt.adam(0.1))), fnopt.Descent)


def test_update_takes_value_for_the_loss_readers_inside_a_chain() -> None:
    t = fnopt.chain(fnopt.scale_by_learning_rate(1.0), fnopt.reduce_on_plateau(
        patience=0, factor=0.5))
    s = t.init(np.zeros(1))
    scales = []
    for _ in range(3):  # the same loss three times: a plateau
        u, s = t.update(np.array([1.0]), s, np.zeros(1), value=1.0, unused_extra=3)
        scales.append(float(-u[0]))
    assert scales == [1.0, 1.0, 0.5]
    with pytest.raises(TypeError, match="value="):  # a missing argument, as optax
        fnopt.scale_by_polyak().update(np.ones(1), fnopt.transforms.EmptyState())


def test_accumulate_takes_optax_order() -> None:
    a = fnopt.accumulate(2, fnopt.scale_by_learning_rate(1.0))
    b = fnopt.accumulate(fnopt.scale_by_learning_rate(1.0), 2)
    sa, sb = a.init(np.zeros(1)), b.init(np.zeros(1))
    for g in (1.0, 3.0):
        ua, sa = a.update(np.array([g]), sa)
        ub, sb = b.update(np.array([g]), sb)
        np.testing.assert_array_equal(ua, ub)
    np.testing.assert_array_equal(ub, [-2.0])
    assert isinstance(fnopt.accumulate(fnopt.adam(0.1), 4), fnopt.Descent)


def test_lookahead_takes_optax_names() -> None:
    fast = fnopt.scale_by_learning_rate(1.0)
    t = fnopt.lookahead(fast, sync_period=2, slow_step_size=0.5)
    ref = fnopt.lookahead(fast, sync_period=2, alpha=0.5)
    p = q = np.array([0.0])
    s, r = t.init(p), ref.init(q)
    for _ in range(4):
        u, s = t.update(np.array([-1.0]), s, p)
        v, r = ref.update(np.array([-1.0]), r, q)
        p, q = p + u, q + v
    np.testing.assert_array_equal(p, q)
    with pytest.raises(TypeError, match="slow_step_size"):
        fnopt.lookahead(fast, alpha=0.5, slow_step_size=0.5)


def test_lookahead_reset_state_restarts_the_fast_optimizer() -> None:
    t = fnopt.lookahead(fnopt.sgd(0.1, momentum=0.9).inner, sync_period=2, reset_state=True)
    p = np.array([1.0])
    s = t.init(p)
    for _ in range(2):
        u, s = t.update(2 * p, s, p)
        p = p + u
    trace_state = s.inner[0]
    assert trace_state.count == 0  # re-initialised at the synchronisation


def _two_leaf_loss(p: Any) -> tuple[Any, Any]:
    return float(p["w"] @ p["w"] + p["b"] @ p["b"]) * 2, {"w": 4 * p["w"], "b": 4 * p["b"]}


def test_masked_optimizer_freezes_the_leaves_outside_the_mask_in_fixed_point() -> None:
    p = {"w": np.array([1.0]), "b": np.array([1.0])}
    r = fnopt.fixed_point(fnopt.masked(fnopt.adam(0.1), {"w": True, "b": False}), p,
                          _two_leaf_loss, stop=fnopt.stop.max_iters(20))
    np.testing.assert_array_equal(r.params["b"], [1.0])  # frozen, never moved uphill
    assert abs(float(r.params["w"][0])) < 0.5 and float(r.value) < 4.0
    np.testing.assert_array_equal(p["b"], [1.0])


def test_masked_transform_keeps_optax_pass_through_and_refuses_to_be_a_step() -> None:
    mask = {"w": True, "b": False}
    t = fnopt.masked(fnopt.scale(-0.5), mask)
    p = {"w": np.array([1.0]), "b": np.array([1.0])}
    u, _ = t.update({"w": np.array([2.0]), "b": np.array([2.0])}, t.init(p), p)
    np.testing.assert_array_equal(u["b"], [2.0])  # optax: passed through
    with pytest.raises(ValueError, match="mask an optimizer instead"):
        fnopt.descent(fnopt.masked(fnopt.scale_by_adam(), mask))
    # the optax pattern, a learning rate after masked, is a descent on every leaf
    opt = fnopt.descent(fnopt.chain(fnopt.masked(fnopt.scale_by_adam(), mask),
                                    fnopt.scale_by_learning_rate(0.1)))
    q, _ = opt.step(p, _two_leaf_loss, opt.init(p))
    assert float(q["b"][0]) < 1.0 and float(q["w"][0]) < 1.0


@pytest.mark.parametrize("container", [dict, list, tuple])
def test_partition_accepts_empty_containers(container: Any) -> None:
    # optax's combine_test.test_empty; an optimizer's init refuses empty params (nothing
    # to optimize), so the transform view (.inner) is the one that takes them
    t = fnopt.partition({0: fnopt.sgd(1.0)}, lambda _: 0).inner
    updates, _ = t.update(container(), t.init(container()))
    assert updates == container()
    with pytest.raises(ValueError, match="empty pytree"):
        fnopt.partition({0: fnopt.sgd(1.0)}, lambda _: 0).init(container())
    with pytest.raises(ValueError, match="empty pytree"):  # nothing to optimize
        fnopt.fixed_point(fnopt.sgd(1.0), container(), lambda p: (0.0, p),
                          stop=fnopt.stop.max_iters(1))


def test_inject_hyperparams_records_defaults_static_args_and_dtype() -> None:
    opt = fnopt.inject_hyperparams(fnopt.adam, static_args="eps",
                                   hyperparam_dtype="float32")(learning_rate=0.1)
    p = np.array([1.0, -2.0])
    s = opt.init(p)
    hp = s.hyperparams
    assert "eps" not in hp  # static
    assert hp["b1"] == np.float32(0.9) and isinstance(hp["b2"], np.float32)  # defaults
    assert isinstance(hp["learning_rate"], np.float32)
    q, s = opt.step(p, quad, s)
    ref = fnopt.adam(float(np.float32(0.1)), b1=float(np.float32(0.9)),
                     b2=float(np.float32(0.999)))
    r, _ = ref.step(p, quad, ref.init(p))
    np.testing.assert_allclose(q, r, rtol=1e-6)  # float32 hyperparameter arithmetic
    with pytest.raises(ValueError, match="static_args"):
        fnopt.inject_hyperparams(fnopt.adam, static_args=("nope",))(learning_rate=0.1)


def test_tree_map_params_maps_the_params_shaped_parts_of_a_state() -> None:
    p = {"w": np.zeros(2), "b": np.zeros(3)}
    s = fnopt.chain(fnopt.clip(1.0), fnopt.adam(0.1)).init(p)
    s2 = fnopt.tree.map_params(p, lambda x: x + 1.0, s, transform_non_params=lambda x: x)
    adam_state = s2.inner[1][0]
    np.testing.assert_array_equal(adam_state.mu["b"], np.ones(3))
    np.testing.assert_array_equal(adam_state.nu["w"], np.ones(2))
    assert adam_state.count == 0 and s2.count == 0
    np.testing.assert_array_equal(s.inner[1][0].mu["b"], np.zeros(3))  # input untouched


def test_scale_by_schedule_names_a_bad_schedule() -> None:
    t = fnopt.scale_by_schedule(lambda count: "fast")
    with pytest.raises(TypeError, match=r"step_size_fn: the schedule returned str"):
        t.update(np.ones(1), t.init(np.ones(1)))
