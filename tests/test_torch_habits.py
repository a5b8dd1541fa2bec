"""torch.optim users' first contact and habits (issue 21): passing the parameters to the
factory, one-element tensor learning rates, sparse tensors, and the learning rate a
torch user reads (plateau scale included, per parameter group)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fnopt

ALIASES = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
           "radam", "asgd", "rprop", "lion"]


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


@pytest.mark.parametrize("name", ALIASES)
@pytest.mark.parametrize("first", ["parameters", "list", "groups", "module", "group"])
def test_passing_the_parameters_explains_the_functional_form(name, first):
    m = _model()
    given = {
        "parameters": lambda: m.parameters(),
        "list": lambda: list(m.parameters()),
        "groups": lambda: [{"params": list(m[0].parameters()), "lr": 0.1},
                           {"params": list(m[2].parameters())}],
        "module": lambda: m,
        "group": lambda: {"params": list(m.parameters())},
    }[first]()
    with pytest.raises(TypeError) as err:
        getattr(fnopt, name)(given, lr=0.1)
    text = str(err.value)
    assert "do not take the parameters" in text
    assert "fnopt.torch.params_of(model)" in text and "fnopt.partition(" in text
    assert "got both" not in text


def test_params_keyword_is_explained_too():
    with pytest.raises(TypeError, match="do not take the parameters"):
        fnopt.adam(params=_model().parameters(), lr=1e-3)


@pytest.mark.parametrize("shape", [(1,), (1, 1)])
@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW),
                                       ("rmsprop", torch.optim.RMSprop)])
def test_one_element_tensor_learning_rates_match_torch(shape, name, cls):
    lr = torch.full(shape, 0.05, dtype=torch.float64)
    w0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    b0 = torch.tensor(0.7, dtype=torch.float64)  # a 0-d leaf must stay 0-d

    def loss(p):
        return (p["w"] ** 2).sum() + torch.sin(p["w"]).sum() * p["b"] + p["b"] ** 2

    opt = getattr(fnopt, name)(lr)
    res = fnopt.fixed_point(opt, {"w": w0, "b": b0}, fnopt.grad.torch_autograd(loss),
                            stop=fnopt.stop.max_iters(7))
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    topt = cls([w, b], lr=lr.clone())
    for _ in range(7):
        topt.zero_grad()
        loss({"w": w, "b": b}).backward()
        topt.step()
    assert res.params["b"].shape == ()
    torch.testing.assert_close(res.params["w"], w.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(res.params["b"], b.detach(), rtol=1e-10, atol=1e-12)


def test_a_learning_rate_tensor_with_several_elements_is_refused():
    with pytest.raises(ValueError, match="learning_rate: expected a number or a one-element"):
        fnopt.scale_by_learning_rate(np.array([0.1, 0.2]))


def test_sparse_params_and_gradients_are_refused_clearly():
    with pytest.raises(TypeError, match=r"params: leaf \['w'\] is a sparse_coo tensor.*SparseAdam"):
        fnopt.fixed_point(fnopt.adam(0.1), {"w": torch.zeros(3).to_sparse()},
                          lambda p: (p["w"].sum(), p), stop=fnopt.stop.max_iters(2))

    def sparse_grad(p):
        return p["w"].sum(), {"w": torch.ones(3).to_sparse()}

    with pytest.raises(TypeError, match=r"leaf \['w'\] is a sparse_coo tensor.*to_dense"):
        fnopt.fixed_point(fnopt.adam(0.1), {"w": torch.zeros(3)}, sparse_grad,
                          stop=fnopt.stop.max_iters(2))


def test_learning_rate_of_includes_the_plateau_scale():
    p = {"w": np.ones(2)}
    opt = fnopt.chain(fnopt.adamw(0.1), fnopt.reduce_on_plateau(factor=0.5, patience=0))
    s = opt.init(p)
    flat = lambda q: (np.array(1.0), fnopt.tree.ones_like(q))  # noqa: E731 (never improves)
    seen = []
    for _ in range(4):
        p, s = opt.step(p, flat, s)
        seen.append(fnopt.learning_rate_of(s))
    # torch: ReduceLROnPlateau(patience=0) halves param_groups[0]["lr"] after every step
    # that does not improve on the best loss (the first one sets it)
    scales = []
    w = torch.zeros(1, requires_grad=True)
    topt = torch.optim.AdamW([w], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.5, patience=0)
    for _ in range(4):
        sched.step(1.0)
        scales.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(seen, scales, rtol=1e-15)


def test_learning_rate_of_partition_is_per_group():
    p = {"w": np.ones(2), "b": np.ones(1)}
    opt = fnopt.partition({"fast": fnopt.adam(0.1), "slow": fnopt.sgd(0.01),
                           "frozen": fnopt.set_to_zero()},
                          {"w": "fast", "b": "slow"})
    s = opt.init(p)
    assert fnopt.learning_rate_of(s) == {"fast": 0.1, "slow": 0.01, "frozen": None}
    sched = fnopt.partition({"a": fnopt.sgd(lambda c: 0.1 / (c + 1)), "b": fnopt.adam(0.2)},
                            {"w": "a", "b": "b"})
    s = sched.init(p)
    for _ in range(3):
        p, s = sched.step(p, lambda q: (np.array(0.0), fnopt.tree.ones_like(q)), s)
    got = fnopt.learning_rate_of(s)
    assert got["b"] == 0.2 and got["a"] == pytest.approx(0.1 / 3)
    from fnopt.callbacks import format_info
    from fnopt.stop import Info
    line = format_info(Info(3, 0.5, 0.25, p, s, None, float("nan"), 1.5))
    assert "lr a=0.03333,b=0.2" in line


@pytest.mark.parametrize("name, cls, kw", [
    ("asgd", torch.optim.ASGD, {"lambd": 1e-2, "alpha": 0.75, "t0": 3.0}),
    ("asgd", torch.optim.ASGD, {"weight_decay": 0.1}),
    ("rprop", torch.optim.Rprop, {}),
])
def test_schedules_drive_asgd_and_rprop_as_torch_lr_schedulers_do(name, cls, kw):
    # torch keeps ASGD's eta in the default dtype: float64 for a float64 comparison
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _compare_scheduled(name, cls, kw)
    finally:
        torch.set_default_dtype(old)


def _compare_scheduled(name, cls, kw):
    lr0, gamma, every = 0.1, 0.5, 3
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    topt = cls([w], lr=lr0, **kw)
    sched = torch.optim.lr_scheduler.StepLR(topt, step_size=every, gamma=gamma)
    want = []
    for _ in range(10):
        topt.zero_grad()
        (w ** 4).sum().backward()
        topt.step()
        sched.step()
        want.append(w.detach().clone())
    schedule = fnopt.schedules.exponential_decay(lr0, every, gamma, staircase=True)
    opt = getattr(fnopt, name)(schedule, **kw)
    p = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    s = opt.init(p)
    grad_fn = fnopt.grad.torch_autograd(lambda q: (q ** 4).sum())
    for k in range(10):
        p, s = opt.step(p, grad_fn, s)
        torch.testing.assert_close(p, want[k], rtol=1e-12, atol=1e-14)
