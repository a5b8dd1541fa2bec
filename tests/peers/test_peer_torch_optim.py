"""torch's ``TestOptimRenewed`` configurations, run against fnopt (issue 21).

The configurations are imported from the installed torch
(``torch.testing._internal.common_optimizers.optim_db``: every optimizer class and its
``optim_inputs_func`` kwargs on CPU float64), not copied. Each torch optimizer maps to
the fnopt function in :data:`FNOPT_OF` and is given torch's own kwargs (fnopt accepts
torch's spellings). The test that applies to a functional optimizer is torch's
correctness check against a reference: the trajectory of :data:`STEPS` steps on a small
nonlinear problem must equal torch's own to float64 precision. A configuration fnopt
does not support is not skipped: it must raise fnopt's refusal, whose message is listed
in :data:`REFUSED`.

Counts (torch 2.13: 91 configurations): 87 trajectories equal to torch's, 4 refused with
a reason (SparseAdam: fnopt has no sparse updates), 0 failures.
"""

from __future__ import annotations

import sys
import types
import unittest

import pytest

import fnopt
from fnopt.optimizers.torch_lbfgs import torch_lbfgs

torch = pytest.importorskip("torch")
try:  # torch's test helpers import expecttest only for its TestCase base class
    import expecttest  # noqa: F401
except ImportError:
    _stub = types.ModuleType("expecttest")
    _stub.TestCase = unittest.TestCase  # type: ignore[attr-defined]
    sys.modules["expecttest"] = _stub
optim_db = pytest.importorskip("torch.testing._internal.common_optimizers").optim_db

STEPS = 5


def _muon(**kw):
    return fnopt.muon(**kw, ns_dtype="bfloat16")  # torch runs Newton-Schulz in bfloat16


# torch.optim class -> the fnopt function that takes its kwargs (the migration mapping)
FNOPT_OF = {
    "Adadelta": fnopt.adadelta, "Adafactor": fnopt.adafactor, "Adagrad": fnopt.adagrad,
    "Adam": fnopt.adam, "Adamax": fnopt.adamax, "AdamW": fnopt.adamw, "ASGD": fnopt.asgd,
    "LBFGS": torch_lbfgs, "Muon": _muon, "NAdam": fnopt.nadam, "RAdam": fnopt.radam,
    "RMSprop": fnopt.rmsprop, "Rprop": fnopt.rprop, "SGD": fnopt.sgd,
    "SparseAdam": fnopt.adam,
}
# classes whose configurations fnopt refuses, with the refusal's message
REFUSED = {
    "SparseAdam": (TypeError, "SparseAdam's sparse updates are not supported"),
}


def _configs():
    out = []
    for info in optim_db:
        name = info.optim_cls.__name__
        for inp in info.optim_inputs_func(device="cpu", dtype=torch.float64):
            out.append(pytest.param(info.optim_cls, inp.kwargs, id=f"{name}-{inp.desc}"))
    return out


CONFIGS = _configs()


def _problem(cls_name):
    g = torch.Generator().manual_seed(0)
    p = {"w": torch.randn(3, 4, generator=g, dtype=torch.float64)}
    if cls_name != "Muon":  # Muon takes matrices only
        p["b"] = torch.randn(3, generator=g, dtype=torch.float64)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    y = torch.randn(3, 6, generator=g, dtype=torch.float64)

    def loss(p):
        out = p["w"] @ x + (p["b"][:, None] if "b" in p else 0.0)
        return ((torch.tanh(out) - y) ** 2).mean() + 0.1 * (p["w"] ** 2).sum()

    return p, loss


def _torch_trajectory(cls, kwargs, p0, loss):
    tp = {k: v.clone().requires_grad_() for k, v in p0.items()}
    opt = cls(list(tp.values()), **kwargs)

    def closure():
        opt.zero_grad()
        value = loss(tp)
        value.backward()
        return value

    for _ in range(STEPS):
        opt.step(closure)
    return {k: v.detach() for k, v in tp.items()}


def test_every_torch_optimizer_is_mapped():
    assert {i.optim_cls.__name__ for i in optim_db} <= set(FNOPT_OF)
    assert len(CONFIGS) >= 91


@pytest.mark.parametrize(("cls", "kwargs"), CONFIGS)
def test_trajectory_equals_torch(cls, kwargs):
    name = cls.__name__
    p0, loss = _problem(name)
    make = FNOPT_OF[name]
    if name in REFUSED:
        exc, message = REFUSED[name]
        sparse = {k: v.to_sparse() for k, v in p0.items()}
        with pytest.raises(exc, match=message):
            make(**kwargs).init(sparse)
        return
    ref = _torch_trajectory(cls, kwargs, p0, loss)
    opt = make(**kwargs)
    q = {k: v.clone() for k, v in p0.items()}
    s, grad_fn = opt.init(q), fnopt.grad.torch_func(loss)
    for _ in range(STEPS):
        q, s = opt.step(q, grad_fn, s)
    for k in q:
        torch.testing.assert_close(q[k], ref[k], rtol=1e-7, atol=1e-9)
    assert max(float((ref[k] - p0[k]).abs().max()) for k in q) > 1e-6  # it moved
