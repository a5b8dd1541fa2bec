"""``reduce_on_plateau(value_fn=, every=)``: the plateau reads a validation metric once
per epoch inside ``fixed_point``, as ``scheduler.step(val_loss)`` after each epoch of a
torch loop does (issue 21, "training-loop habits")."""

from __future__ import annotations

import numpy as np
import pytest

import fnopt

torch = pytest.importorskip("torch")

EPOCHS, LR = 25, 0.3


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 6, generator=g, dtype=torch.float64)
    w = torch.randn(6, generator=g, dtype=torch.float64)
    y = x @ w + 0.8 * torch.randn(16, generator=g, dtype=torch.float64)
    xv = torch.randn(40, 6, generator=g, dtype=torch.float64)
    yv = xv @ w + 0.3 * torch.randn(40, generator=g, dtype=torch.float64)
    batches = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 16, 4)]
    return batches, xv, yv


def _torch_run(batches, val, **plateau):
    p = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR, momentum=0.9)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **plateau)
    lrs, vals = [], []
    for _ in range(EPOCHS):
        for xb, yb in batches:
            opt.zero_grad()
            (0.5 * ((xb @ p - yb) ** 2).mean()).backward()
            opt.step()
        v = val(p.detach())
        vals.append(v)
        sched.step(v)
        lrs.append(opt.param_groups[0]["lr"])
    return p.detach(), lrs, vals


def grad_fn(q, xb, yb):
    r = xb @ q - yb
    return 0.5 * (r ** 2).mean(), xb.T @ r / len(yb)


@pytest.mark.parametrize("plateau", [
    {"factor": 0.5, "patience": 1, "threshold": 1e-3},
    {"factor": 0.3, "patience": 0, "threshold": 0.05, "threshold_mode": "abs", "cooldown": 1},
], ids=["rel", "abs-cooldown"])
def test_validation_metric_per_epoch_matches_torch_reduce_lr_on_plateau(plateau):
    batches, xv, yv = _problem()
    seen = []

    def val(p):
        v = float(((xv @ p - yv) ** 2).mean())
        seen.append(v)
        return v

    ref, lrs, ref_vals = _torch_run(batches, val, **plateau)
    seen.clear()
    opt = fnopt.chain(fnopt.sgd(LR, momentum=0.9),
                      fnopt.reduce_on_plateau(**plateau, value_fn=val, every=len(batches)))
    rates = []
    r = fnopt.fixed_point(opt, torch.zeros(6, dtype=torch.float64), grad_fn,
                          stop=fnopt.stop.max_iters(10**6), data=batches, epochs=EPOCHS,
                          on_epoch=lambda info: rates.append(fnopt.learning_rate_of(info.state)))
    assert r.reason is fnopt.stop.Reason.DATA_EXHAUSTED
    assert lrs[-1] < LR / 4  # the plateau did reduce the rate, several times
    # the metric of every epoch but the last is read, at the params that epoch ended with
    np.testing.assert_allclose(seen, ref_vals[:-1], rtol=1e-12)
    # the rate of epoch e + 1 is torch's after scheduler.step(val of epoch e)
    np.testing.assert_allclose(rates[1:], lrs[:-1], rtol=1e-12)
    torch.testing.assert_close(r.params, ref, rtol=1e-10, atol=1e-12)


def test_training_loss_is_not_read_with_value_fn():
    t = fnopt.reduce_on_plateau(0.5, patience=0, value_fn=lambda p: 1.0, every=1)
    s = t.init(np.zeros(1))
    for loss in [5.0, 4.0, 3.0]:  # improving training losses, a flat metric
        _, s = t.update(np.ones(1), s, np.zeros(1), value=loss)
    assert s.scale == 0.5 and s.steps == 2


def test_value_fn_arguments_are_checked():
    with pytest.raises(ValueError, match="every: required with value_fn"):
        fnopt.reduce_on_plateau(value_fn=lambda p: 0.0)
    with pytest.raises(ValueError, match="every: given without value_fn"):
        fnopt.reduce_on_plateau(every=3)
    with pytest.raises(TypeError, match="value_fn: expected a callable"):
        fnopt.reduce_on_plateau(value_fn=3.0, every=3)
    with pytest.raises(ValueError, match="accumulation_size"):
        fnopt.reduce_on_plateau(value_fn=lambda p: 0.0, every=3, accumulation_size=2)
    with pytest.raises(ValueError, match="every"):
        fnopt.reduce_on_plateau(value_fn=lambda p: 0.0, every=0)
    t = fnopt.reduce_on_plateau(value_fn=lambda p: 0.0, every=1)
    s = t.init(np.zeros(1))
    _, s = t.update(np.ones(1), s, np.zeros(1))
    with pytest.raises(TypeError, match="needs the params"):
        t.update(np.ones(1), s)
