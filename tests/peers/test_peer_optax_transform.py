"""optax's ``_src/transform_test.py`` (optax 0.2.8), ported: the same updates, params,
steps and tolerances, with fnopt's transforms and NumPy arrays.

optax's ``scale_by_param_block_norm``, ``scale_by_distance_over_gradients`` and
``normalize_by_update_norm`` have no fnopt counterpart (listed in
docs/migration/optax-table.md); their scaler cases are asserted absent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt

STEPS = 50
LR = 1e-2
INIT_PARAMS = (np.array([1.0, 2.0]), np.array([3.0, 4.0]))
PER_STEP_UPDATES = (np.array([500.0, 5.0]), np.array([300.0, 3.0]))
E = fnopt.transforms.EmptyState()


def close(a: Any, b: Any, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    for x, y in zip(fnopt.tree.leaves(a), fnopt.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


SCALERS = {
    "adadelta": fnopt.scale_by_adadelta, "adam": fnopt.scale_by_adam,
    "adamax": fnopt.scale_by_adamax, "adan": fnopt.scale_by_adan,
    "lion": fnopt.scale_by_lion, "polyak": fnopt.scale_by_polyak,
    "rmsprop": fnopt.scale_by_rms, "stddev": fnopt.scale_by_stddev,
    "trust_ratio": fnopt.scale_by_trust_ratio,
    "param_block_rms": fnopt.scale_by_param_block_rms,
}


@pytest.mark.parametrize("name", sorted(SCALERS))
def test_scalers(name: str) -> None:
    params = INIT_PARAMS
    scaler = SCALERS[name]()
    state = scaler.init(params)
    assert fnopt.tree.all_finite([x for x in fnopt.tree.leaves(state)
                                  if isinstance(x, np.ndarray)])
    extra = {"value": np.array(0.0)} if name == "polyak" else {}
    updates, state = scaler.update(PER_STEP_UPDATES, state, params, **extra)
    assert fnopt.tree.all_finite(updates)
    assert [u.shape for u in updates] == [p.shape for p in params]


@pytest.mark.parametrize("name", ["scale_by_param_block_norm",
                                  "scale_by_distance_over_gradients",
                                  "normalize_by_update_norm"])
def test_unsupported_scalers_are_absent(name: str) -> None:
    assert not hasattr(fnopt, name)


def test_apply_every() -> None:
    k = 4
    zero_update = (np.zeros(2), np.zeros(2))
    sgd = fnopt.sgd(LR)
    p_sgd, s_sgd = INIT_PARAMS, sgd.init(INIT_PARAMS)
    every = fnopt.chain(fnopt.accumulate(k, average=False),
                        fnopt.trace(decay=0.0, nesterov=False), fnopt.scale(-LR))
    p_every, s_every = INIT_PARAMS, every.init(INIT_PARAMS)
    for i in range(STEPS):
        u, s_sgd = sgd.update(PER_STEP_UPDATES, s_sgd)
        p_sgd = fnopt.apply_updates(p_sgd, u)
        v, s_every = every.update(PER_STEP_UPDATES, s_every)
        p_every = fnopt.apply_updates(p_every, v)
        if i % k == k - 1:
            close(p_every, p_sgd, atol=1e-6, rtol=1e-5)
        else:
            close(v, zero_update, atol=0.0, rtol=0.0)


def test_scale() -> None:
    for i in range(1, STEPS + 1):
        factor = 0.1**i
        scaled, _ = fnopt.scale(factor).update(PER_STEP_UPDATES, E)
        close(scaled, tuple(t * factor for t in PER_STEP_UPDATES))


@pytest.mark.parametrize(("inputs", "outputs"), [
    ([1.0, 2.0], [1.0, 2.0]),
    ([[1.0, 2.0], [3.0, 4.0]], [[-0.5, 0.5], [-0.5, 0.5]]),
    ([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]],
     [[[-1.5, -0.5], [0.5, 1.5]], [[-1.5, -0.5], [0.5, 1.5]]]),
], ids=["1d", "2d", "3d"])
def test_centralize(inputs: Any, outputs: Any) -> None:
    out, _ = fnopt.centralize().update(np.asarray(inputs), E)
    close(out, np.asarray(outputs))


def test_scale_by_optimistic_gradient() -> None:
    opt = fnopt.scale_by_optimistic_gradient()
    state = opt.init(np.asarray(10.0))
    g0, g1, g2 = np.asarray(2.0), np.asarray(3.0), np.asarray(4.0)
    o0, state = opt.update(g0, state)
    o1, state = opt.update(g1, state)
    o2, _ = opt.update(g2, state)
    close(o0, g0)
    close(o1, 2 * g1 - g0)
    close(o2, 2 * g2 - g1)


def test_lion_modes_variants() -> None:
    updates = np.array([0.2, -2.0, 0.5, -0.8])
    b1, smooth_beta = 0.5, 2.0
    for mode in ("hard", "smooth", "refined"):
        opt = fnopt.scale_by_lion(b1=b1, b2=0.9, mode=mode, smooth_beta=smooth_beta)
        state = opt.init(updates)
        out, _ = opt.update(updates, state)
        x = (1.0 - b1) * updates + b1 * state.mu
        expected = (np.sign(x) if mode == "hard" else np.tanh(smooth_beta * x)
                    if mode == "smooth" else np.where(np.abs(x) < 1.0, x, np.sign(x)))
        close(out, expected)


def test_lion_invalid_mode_raises() -> None:
    # optax raises at the first update; fnopt at construction (the argument is named)
    with pytest.raises(ValueError, match="mode"):
        fnopt.scale_by_lion(mode="invalid_mode")


def test_scale_by_polyak_l1_norm() -> None:
    tol = 1e-10
    init_params = np.array([1.0, -1.0])
    polyak = fnopt.scale_by_polyak()
    state = polyak.init(init_params)
    with pytest.raises(TypeError):
        polyak.update(PER_STEP_UPDATES, state, init_params)
    value, grad = float(np.abs(init_params).sum()), np.sign(init_params)
    updates, _ = polyak.update(grad, state, init_params, value=value)
    assert np.abs(init_params - updates).sum() < tol


def test_rms_match_adam() -> None:
    rms = fnopt.scale_by_rms(decay=0.999, eps_in_sqrt=False, bias_correction=True)
    adam = fnopt.scale_by_adam(b1=0)
    rp, rs = INIT_PARAMS, rms.init(INIT_PARAMS)
    ap, as_ = INIT_PARAMS, adam.init(INIT_PARAMS)
    for _ in range(5):
        u, rs = rms.update(tuple(2 * x for x in rp), rs)
        rp = fnopt.apply_updates(rp, u)
        v, as_ = adam.update(tuple(2 * x for x in ap), as_)
        ap = fnopt.apply_updates(ap, v)
    close(ap, rp)
