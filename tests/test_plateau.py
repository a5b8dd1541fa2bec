"""reduce_on_plateau against torch.optim.lr_scheduler.ReduceLROnPlateau on fixed loss
sequences, and per_epoch schedules against torch schedulers stepped once per epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnopt
from fnopt import schedules

torch = pytest.importorskip("torch")

LOSSES = [
    1.0, 0.9, 0.9, 0.95, 0.91, 0.92, 0.899, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.49995,
    0.5, 0.6, 0.7, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4,
]

CONFIGS = [
    dict(),
    dict(factor=0.5, patience=2),
    dict(factor=0.5, patience=1, threshold=0.05, threshold_mode="abs"),
    dict(factor=0.3, patience=1, cooldown=2),
    dict(factor=0.5, patience=0, min_scale=0.1),
    dict(factor=0.5, patience=1, mode="max"),
    dict(factor=0.5, patience=0, threshold=0.0),
]


def _torch_rates(losses, lr, **kw):
    """The learning rate torch uses at each step when scheduler.step(loss) follows it."""
    if "min_scale" in kw:
        kw["min_lr"] = kw.pop("min_scale") * lr
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    rates = []
    for loss in losses:
        rates.append(opt.param_groups[0]["lr"])
        sched.step(loss)
    return rates, opt.param_groups[0]["lr"]


def _our_scales(losses, **kw):
    t = fnopt.reduce_on_plateau(**kw)
    s = t.init(np.zeros(1))
    scales = []
    for loss in losses:
        u, s = t.update(np.ones(1), s, np.zeros(1), value=loss)
        scales.append(float(u[0]))
    return scales, s


@pytest.mark.parametrize("kw", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_reduce_on_plateau_matches_torch_per_step(kw):
    lr = 0.1
    rates, final = _torch_rates(LOSSES, lr, **kw)
    scales, state = _our_scales(LOSSES, eps=1e-8 / lr, **kw)  # torch's eps is in lr units
    np.testing.assert_allclose(np.array(scales) * lr, rates, rtol=1e-12)
    assert state.scale * lr == pytest.approx(final, rel=1e-12)
    assert len(set(rates)) > 1 or kw == {}  # the configs do reduce (default: patience 10)


def test_reduce_on_plateau_per_epoch_on_the_mean_training_loss():
    rng = np.random.default_rng(0)
    per_batch = [float(v) for v in np.repeat([1.0, 0.8, 0.8, 0.82, 0.81, 0.7, 0.7, 0.7], 4)
                 + rng.normal(0, 1e-3, 32)]
    epoch_means = [float(np.mean(per_batch[i:i + 4])) for i in range(0, 32, 4)]
    rates, _ = _torch_rates(epoch_means, 1.0, factor=0.5, patience=1)
    scales, state = _our_scales(per_batch, factor=0.5, patience=1, accumulation_size=4,
                                eps=1e-8)
    # the rate torch uses in epoch e is our scale at every step of epoch e
    np.testing.assert_allclose(scales, np.repeat(rates, 4), rtol=1e-12)
    assert state.steps == 8 and state.count == 0 and min(rates) < 1.0


def test_reduce_on_plateau_after_a_learning_rate_on_torch_tensors_without_mutation():
    lr, plateau = fnopt.scale_by_learning_rate(0.1), fnopt.reduce_on_plateau(
        factor=0.5, patience=0)
    params = {"w": torch.ones(3, dtype=torch.float64)}
    grads = {"w": torch.full((3,), 2.0, dtype=torch.float64)}
    s_lr, s_p = lr.init(params), plateau.init(params)
    steps = []
    for loss in [1.0, 2.0, 3.0]:  # the 2nd is worse: the scale halves for the 3rd step
        u, s_lr = lr.update(grads, s_lr, params)
        u, s_p = plateau.update(u, s_p, params, value=torch.tensor(loss))
        steps.append(u["w"])
    torch.testing.assert_close(torch.stack(steps)[:, 0],
                               torch.tensor([-0.2, -0.2, -0.1], dtype=torch.float64))
    assert s_p.scale == 0.25 and s_p.best == 1.0 and s_p.steps == 3
    assert torch.equal(grads["w"], torch.full((3,), 2.0, dtype=torch.float64))


def test_reduce_on_plateau_needs_the_loss():
    t = fnopt.reduce_on_plateau()
    with pytest.raises(TypeError, match="value"):
        t.update(np.ones(1), t.init(np.zeros(1)), np.zeros(1))


@pytest.mark.parametrize(
    ("kw", "exc", "word"),
    [
        (dict(factor=1.0), ValueError, "factor"),
        (dict(factor=0.0), ValueError, "factor"),
        (dict(factor="0.1"), TypeError, "factor"),
        (dict(patience=-1), ValueError, "patience"),
        (dict(patience=1.0), TypeError, "patience"),
        (dict(threshold=-1e-3), ValueError, "threshold"),
        (dict(threshold_mode="relative"), ValueError, "threshold_mode"),
        (dict(cooldown=-1), ValueError, "cooldown"),
        (dict(min_scale=2.0), ValueError, "min_scale"),
        (dict(mode="lower"), ValueError, "mode"),
        (dict(eps=math.nan), ValueError, "eps"),
        (dict(accumulation_size=0), ValueError, "accumulation_size"),
    ],
)
def test_reduce_on_plateau_rejects_bad_arguments(kw, exc, word):
    with pytest.raises(exc, match=word):
        fnopt.reduce_on_plateau(**kw)


def _torch_epoch_rates(make_sched, lr, epochs, steps_per_epoch):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_sched(opt)
    rates = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
        sched.step()
    return rates


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: schedules.exponential_decay(0.1, 2, 0.5, staircase=True),
         lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
        (lambda: schedules.cosine_decay(0.1, 6),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6)),
        (lambda: schedules.piecewise_constant(0.1, {2: 0.1, 5: 0.1}),
         lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5], gamma=0.1)),
    ],
    ids=["StepLR", "CosineAnnealingLR", "MultiStepLR"],
)
def test_per_epoch_matches_a_torch_scheduler_stepped_each_epoch(ours, theirs):
    rates = _torch_epoch_rates(theirs, 0.1, epochs=7, steps_per_epoch=5)
    s = schedules.per_epoch(ours(), 5)
    np.testing.assert_allclose([s(t) for t in range(35)], rates, rtol=1e-12, atol=1e-15)


def test_per_epoch_drives_an_optimizer_like_torch():
    # adam with the per-epoch schedule, stepping by hand, against Adam + StepLR
    steps_per_epoch, epochs = 3, 4
    w0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    grad_at = lambda w: (w**2).sum() * 0.5, lambda w: w
    opt = fnopt.adam(schedules.per_epoch(schedules.exponential_decay(0.1, 1, 0.5), 3))
    w, s = w0.clone(), opt.init(w0)
    for _ in range(steps_per_epoch * epochs):
        w, s = opt.step(w, lambda p: (grad_at[0](p), grad_at[1](p)), s)
    p = torch.nn.Parameter(w0.clone())
    topt = torch.optim.Adam([p], lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(topt, gamma=0.5)
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            topt.zero_grad()
            (0.5 * (p**2).sum()).backward()
            topt.step()
        sched.step()
    torch.testing.assert_close(w, p.detach(), rtol=1e-12, atol=1e-14)


def test_per_epoch_rejects_bad_arguments():
    with pytest.raises(TypeError, match="schedule"):
        schedules.per_epoch(0.1, 3)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        schedules.per_epoch(schedules.constant(0.1), 0)


def test_reduce_on_plateau_reads_the_loss_inside_fixed_point_and_chains():
    # chained after a descent direction, the plateau transform gets each step's loss
    # from the loop (no value= to pass by hand) and scales the following steps
    losses = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0]
    calls = [0]

    def grad_fn(p):
        v = losses[min(calls[0], len(losses) - 1)]
        calls[0] += 1
        return np.asarray(v), np.ones(2)

    opt = fnopt.chain(fnopt.sgd(0.1), fnopt.reduce_on_plateau(factor=0.5, patience=2))
    r = fnopt.fixed_point(opt, np.zeros(2), grad_fn, stop=fnopt.stop.max_iters(len(losses)))
    # the same by hand, passing the loss to the transform ourselves
    t = fnopt.reduce_on_plateau(factor=0.5, patience=2)
    s, p = t.init(np.zeros(2)), np.zeros(2)
    for v in losses:
        u, s = t.update(np.full(2, -0.1), s, value=v)
        p = p + u
    np.testing.assert_allclose(r.params, p, rtol=1e-15)
    assert s.scale < 1.0 and r.state.inner[-1].scale == s.scale


def test_a_descent_nested_in_a_descent_still_gets_the_loss():
    inner = fnopt.descent(fnopt.chain(fnopt.scale_by_learning_rate(0.1),
                                      fnopt.reduce_on_plateau()))
    outer = fnopt.Descent(inner)
    p = np.array([1.0, 2.0])
    new, _ = outer.step(p, lambda x: (x @ x, 2 * x), outer.init(p))
    np.testing.assert_allclose(new, [0.8, 1.6])
    assert fnopt.adam(1e-3)._reads_loss is False  # nothing reads it: no context is set
