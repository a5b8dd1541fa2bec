"""Muon's Newton-Schulz iteration in bfloat16, as torch.optim.Muon runs it
(``fnopt.muon(..., ns_dtype="bfloat16")``; issue 21)."""

from __future__ import annotations

import numpy as np
import pytest

import fnopt
from fnopt import backend
from fnopt.transforms.layerwise import _newton_schulz

torch = pytest.importorskip("torch")
zeropower = pytest.importorskip("torch.optim._muon")._zeropower_via_newtonschulz

COEFFS = (3.4445, -4.775, 2.0315)


@pytest.mark.parametrize("shape", [(12, 7), (5, 9), (6, 6)])
def test_bfloat16_iteration_matches_torch(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    ours = _newton_schulz(x, backend.by_name("torch"), COEFFS, 5, 1e-7, "bfloat16")
    theirs = zeropower(x, COEFFS, 5, 1e-7).float()
    assert ours.dtype == torch.float32  # cast back to the params' dtype
    # to bfloat16's precision (one unit in the last place at 1 is 2**-7)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2.0 ** -7)


def _trajectories(ns_dtype, *, nesterov=True, adjust_lr_fn=None, steps=8):
    g = torch.Generator().manual_seed(0)
    a, t = torch.randn(12, 7, generator=g), torch.randn(12, 7, generator=g)

    def loss(p):
        return ((p @ p.T - t @ t.T) ** 2).sum() / 100 + (p * a).sum()

    p = torch.randn(12, 7, generator=g).requires_grad_()
    q = p.detach().clone()
    ref = torch.optim.Muon([p], lr=0.02, nesterov=nesterov, adjust_lr_fn=adjust_lr_fn)
    opt = fnopt.muon(0.02, nesterov=nesterov, adjust_lr_fn=adjust_lr_fn, ns_dtype=ns_dtype)
    s, gf = opt.init(q), fnopt.grad.torch_func(loss)
    worst = 0.0
    for _ in range(steps):
        ref.zero_grad()
        loss(p).backward()
        ref.step()
        q, s = opt.step(q, gf, s)
        worst = max(worst, float((q - p.detach()).abs().max()))
    assert q.dtype == torch.float32
    return worst


@pytest.mark.parametrize("kw", [{}, {"nesterov": False, "adjust_lr_fn": "match_rms_adamw"}])
def test_muon_with_ns_dtype_bfloat16_follows_torch_muon(kw):
    close = _trajectories("bfloat16", **kw)
    far = _trajectories(None, **kw)
    # torch's own precision: float32 params moved by bfloat16-rounded updates agree to a
    # few float32 ulps, where the iteration in float32 strays by the bfloat16 rounding
    assert close < 1e-5
    assert far > 10 * close


def test_torch_dtype_accepted_and_bad_values_refused():
    assert fnopt.scale_by_muon(ns_dtype=torch.bfloat16).hyperparams["ns_dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="ns_dtype"):
        fnopt.muon(ns_dtype="int8")
    with pytest.raises(TypeError, match="ns_dtype: 'bfloat16' needs torch params"):
        fnopt.muon(ns_dtype="bfloat16").init(np.zeros((2, 3)))


def test_numpy_float16_iteration_is_close_to_float64():
    x = np.random.default_rng(0).normal(size=(6, 4))
    be = backend.by_name("numpy")
    low = _newton_schulz(x, be, COEFFS, 5, 1e-7, "float16")
    assert low.dtype == np.float64
    np.testing.assert_allclose(low, _newton_schulz(x, be, COEFFS, 5, 1e-7), atol=2e-2)
