"""fnopt's optax-named optimizers against optax's own functions, step by step.

The same float64 problem (a pytree of a matrix and a vector, a convex quadratic with a
linear term) is stepped by fnopt on NumPy and by optax on JAX (CPU, x64); the params
must agree after every step to round-off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnopt

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RNG = np.random.default_rng(0)
P0 = {"w": RNG.normal(size=(3, 2)), "b": RNG.normal(size=2)}
C = {"w": RNG.uniform(0.5, 2.0, size=(3, 2)), "b": RNG.uniform(0.5, 2.0, size=2)}
D = {"w": RNG.normal(size=(3, 2)), "b": RNG.normal(size=2)}
STEPS = 12


def value_and_grad(p: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """f(p) = sum(0.5 c p^2 + d p) + 3 (positive at the start, for the Polyak step)."""
    f = sum(float(np.sum(0.5 * C[k] * np.asarray(p[k]) ** 2 + D[k] * np.asarray(p[k])))
            for k in p) + 3.0
    return f, {k: C[k] * np.asarray(p[k]) + D[k] for k in p}


def run_fnopt(opt: Any) -> list[dict[str, np.ndarray]]:
    p = {k: v.copy() for k, v in P0.items()}
    s = opt.init(p)
    out = []
    for _ in range(STEPS):
        p, s = opt.step(p, value_and_grad, s)
        out.append(p)
    return out


def run_optax(opt: Any) -> list[dict[str, np.ndarray]]:
    p = {k: jnp.asarray(v) for k, v in P0.items()}
    s = opt.init(p)
    out = []
    for _ in range(STEPS):
        f, g = value_and_grad(p)
        u, s = opt.update({k: jnp.asarray(v) for k, v in g.items()}, s, p, value=f)
        p = optax.apply_updates(p, u)
        out.append({k: np.asarray(v) for k, v in p.items()})
    return out


def sched(count: Any) -> Any:
    return 0.05 / (1.0 + 0.1 * count)


CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "adamaxw": (lambda: fnopt.adamaxw(0.05, weight_decay=0.1),
                lambda: optax.adamaxw(0.05, weight_decay=0.1)),
    "adamaxw_mask": (
        lambda: fnopt.adamaxw(0.05, weight_decay=0.1, mask={"w": True, "b": False}),
        lambda: optax.adamaxw(0.05, weight_decay=0.1, mask={"w": True, "b": False})),
    "amsgrad": (lambda: fnopt.amsgrad(0.05), lambda: optax.amsgrad(0.05)),
    "amsgrad_eps_root": (lambda: fnopt.amsgrad(0.05, eps_root=1e-3, b2=0.9),
                         lambda: optax.amsgrad(0.05, eps_root=1e-3, b2=0.9)),
    "nadamw": (lambda: fnopt.nadamw(0.05, weight_decay=0.1),
               lambda: optax.nadamw(0.05, weight_decay=0.1)),
    "nadamw_schedule": (lambda: fnopt.nadamw(sched), lambda: optax.nadamw(sched)),
    "fromage": (lambda: fnopt.fromage(0.1), lambda: optax.fromage(0.1)),
    "fromage_schedule": (lambda: fnopt.fromage(sched), lambda: optax.fromage(sched)),
    "noisy_sgd_no_noise": (lambda: fnopt.noisy_sgd(0.05, eta=0.0),
                           lambda: optax.noisy_sgd(0.05, eta=0.0, key=0)),
    "optimistic_gradient_descent": (
        lambda: fnopt.optimistic_gradient_descent(0.05, alpha=0.7, beta=0.4),
        lambda: optax.optimistic_gradient_descent(0.05, alpha=0.7, beta=0.4)),
    "optimistic_adam": (lambda: fnopt.optimistic_adam(0.05, optimism=0.02),
                        lambda: optax.optimistic_adam(0.05, optimism=0.02)),
    "optimistic_adam_v2": (lambda: fnopt.optimistic_adam_v2(0.05, alpha=0.8, beta=0.3),
                           lambda: optax.optimistic_adam_v2(0.05, alpha=0.8, beta=0.3)),
    "polyak_sgd": (lambda: fnopt.polyak_sgd(max_learning_rate=0.5, f_min=-5.0),
                   lambda: optax.polyak_sgd(max_learning_rate=0.5, f_min=-5.0)),
    "polyak_sgd_plus": (
        lambda: fnopt.polyak_sgd(max_learning_rate=0.5, scaling=0.5, variant="sps+"),
        lambda: optax.polyak_sgd(max_learning_rate=0.5, scaling=0.5, variant="sps+")),
    "sign_sgd": (lambda: fnopt.sign_sgd(0.05), lambda: optax.sign_sgd(0.05)),
    "signum": (lambda: fnopt.signum(0.05, beta=0.8), lambda: optax.signum(0.05, beta=0.8)),
    "sm3": (lambda: fnopt.sm3(0.1), lambda: optax.sm3(0.1)),
    "sm3_no_momentum": (lambda: fnopt.sm3(0.1, momentum=0.0),
                        lambda: optax.sm3(0.1, momentum=0.0)),
    "adamw_mask": (
        lambda: fnopt.adamw(0.05, weight_decay=0.1, mask={"w": True, "b": False}),
        lambda: optax.adamw(0.05, weight_decay=0.1, mask={"w": True, "b": False})),
    "lion_smooth": (
        lambda: fnopt.descent(fnopt.chain(fnopt.scale_by_lion(mode="smooth", smooth_beta=2.0),
                                          fnopt.scale_by_learning_rate(0.05))),
        lambda: optax.chain(optax.scale_by_lion(mode="smooth", smooth_beta=2.0),
                            optax.scale_by_learning_rate(0.05))),
    "lion_refined": (
        lambda: fnopt.descent(fnopt.chain(fnopt.scale_by_lion(mode="refined"),
                                          fnopt.scale_by_learning_rate(0.05))),
        lambda: optax.chain(optax.scale_by_lion(mode="refined"),
                            optax.scale_by_learning_rate(0.05))),
    "rmsprop_eps_in_sqrt": (
        lambda: fnopt.rmsprop(0.01, decay=0.9, eps_in_sqrt=True, initial_scale=0.1),
        lambda: optax.rmsprop(0.01, decay=0.9, initial_scale=0.1)),
    "rmsprop_bias_correction": (
        lambda: fnopt.rmsprop(0.01, decay=0.9, eps=1e-3, bias_correction=True,
                              eps_in_sqrt=True),
        lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-3, bias_correction=True)),
    "adam_eps_root": (
        lambda: fnopt.descent(fnopt.chain(fnopt.scale_by_adam(eps_root=1e-4),
                                          fnopt.scale_by_learning_rate(0.05))),
        lambda: optax.chain(optax.scale_by_adam(eps_root=1e-4),
                            optax.scale_by_learning_rate(0.05))),
    "ema_debiased": (
        lambda: fnopt.descent(fnopt.chain(fnopt.ema(0.7), fnopt.scale_by_learning_rate(0.1))),
        lambda: optax.chain(optax.ema(0.7), optax.scale_by_learning_rate(0.1))),
    "clip_by_global_norm": (
        lambda: fnopt.descent(fnopt.chain(fnopt.clip_by_global_norm(0.5),
                                          fnopt.scale_by_learning_rate(0.1))),
        lambda: optax.chain(optax.clip_by_global_norm(0.5),
                            optax.scale_by_learning_rate(0.1))),
    "clip_by_block_rms": (
        lambda: fnopt.descent(fnopt.chain(fnopt.clip_by_block_rms(0.3),
                                          fnopt.scale_by_learning_rate(0.1))),
        lambda: optax.chain(optax.clip_by_block_rms(0.3), optax.scale_by_learning_rate(0.1))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_step_by_step(name: str) -> None:
    make_fnopt, make_optax = CASES[name]
    ours, theirs = run_fnopt(make_fnopt()), run_optax(make_optax())
    moved = 0.0
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for k in P0:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}, step {t + 1}, leaf {k}")
            moved = max(moved, float(np.abs(a[k] - P0[k]).max()))
    assert moved > 1e-3  # the comparison is not between two unmoved starts


def test_noisy_sgd_noise_has_optax_scale() -> None:
    """The draws differ from JAX's; their scale is optax's: the update's deviation from
    plain SGD has variance lr^2 eta / (1 + t)^gamma."""
    p = np.zeros(20000)
    opt = fnopt.noisy_sgd(1.0, eta=0.04, gamma=0.55, seed=3)
    s = opt.init(p)
    for t in range(3):
        q, s = opt.step(p, lambda x: (0.0, np.zeros_like(x)), s)
        std = float(np.std(q))
        assert abs(std - (0.04 / (1 + t) ** 0.55) ** 0.5) < 0.01 * std + 1e-3


def run_transform_fnopt(t: Any, steps: int = STEPS) -> list[dict[str, np.ndarray]]:
    """Drive a transform by hand, optax's way: ``update`` then ``apply_updates``."""
    p = {k: v.copy() for k, v in P0.items()}
    s = t.init(p)
    out = []
    for _ in range(steps):
        f, g = value_and_grad(p)
        u, s = t.update(g, s, p, value=f)
        p = fnopt.apply_updates(p, u)
        out.append(p)
    return out


MULTI = {
    "every_3_mean": (lambda: fnopt.MultiSteps(fnopt.adam(0.05), every_k_schedule=3),
                     lambda: optax.MultiSteps(optax.adam(0.05), every_k_schedule=3,
                                              accumulator_dtype=jnp.float64)),
    "schedule_sum": (
        lambda: fnopt.MultiSteps(fnopt.sgd(0.05), lambda step: 1 + step % 3,
                                 use_grad_mean=False),
        lambda: optax.MultiSteps(optax.sgd(0.05), lambda step: 1 + step % 3,
                                 use_grad_mean=False, accumulator_dtype=jnp.float64)),
    "polyak_in_chain_by_value": (
        lambda: fnopt.chain(fnopt.clip(2.0), fnopt.scale_by_polyak(max_learning_rate=0.3)),
        lambda: optax.chain(optax.clip(2.0), optax.scale_by_polyak(max_learning_rate=0.3))),
    "named_chain": (
        lambda: fnopt.named_chain(("clip", fnopt.clip_by_global_norm(0.5)),
                                  ("adam", fnopt.scale_by_adam()),
                                  ("lr", fnopt.scale_by_learning_rate(0.05))),
        lambda: optax.named_chain(("clip", optax.clip_by_global_norm(0.5)),
                                  ("adam", optax.scale_by_adam()),
                                  ("lr", optax.scale_by_learning_rate(0.05)))),
}


@pytest.mark.parametrize("name", sorted(MULTI))
def test_wrappers_match_optax_driven_by_update(name: str) -> None:
    make_fnopt, make_optax = MULTI[name]
    ours, theirs = run_transform_fnopt(make_fnopt()), run_optax(make_optax())
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for k in P0:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}, step {t + 1}, leaf {k}")
    assert max(float(np.abs(ours[-1][k] - P0[k]).max()) for k in P0) > 1e-3


def test_multi_steps_in_fixed_point_matches_optax() -> None:
    opt = fnopt.MultiSteps(fnopt.adam(0.05), every_k_schedule=3)
    r = fnopt.fixed_point(opt, {k: v.copy() for k, v in P0.items()}, value_and_grad,
                          stop=fnopt.stop.max_iters(STEPS))
    theirs = run_optax(optax.MultiSteps(optax.adam(0.05), every_k_schedule=3,
                                        accumulator_dtype=jnp.float64))[-1]
    assert r.iterations == STEPS
    for k in P0:
        np.testing.assert_allclose(r.params[k], theirs[k], rtol=1e-9, atol=1e-12)
    assert opt.has_updated(r.state) == (STEPS % 3 == 0)


@pytest.mark.parametrize("shape", [(5,), (4, 3), (3, 4, 2), (2, 3, 2, 4), (2, 2, 3, 2, 3)])
def test_adaptive_grad_clip_matches_optax_on_every_rank(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    g, p = rng.normal(size=shape), 0.3 * rng.normal(size=shape)
    ours = fnopt.adaptive_grad_clip(0.2)
    theirs = optax.adaptive_grad_clip(0.2)
    u, _ = ours.update(g, ours.init(p), p)
    v, _ = theirs.update(jnp.asarray(g), theirs.init(jnp.asarray(p)), jnp.asarray(p))
    np.testing.assert_allclose(u, np.asarray(v), rtol=1e-12)
    assert not np.allclose(u, g)  # some unit was clipped
