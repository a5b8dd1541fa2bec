"""fnopt.grad.module: the default autograd route against the torch.func route and plain
``loss.backward()`` (values, gradients, BatchNorm statistics, train/eval, frozen, tied
and parametrized weights), and the promises it keeps (no mutation, detached outputs)."""

from __future__ import annotations

import copy

import pytest
import torch

import fnopt

F = torch.nn.functional
ROUTES = ["autograd", "func"]


class _CNN(torch.nn.Module):
    def __init__(self, *, batchnorm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4) if batchnorm else torch.nn.Identity()
        self.c2 = torch.nn.Conv2d(4, 6, 3, padding=1)
        self.drop = torch.nn.Dropout(dropout)
        self.f1 = torch.nn.Linear(6 * 2 * 2, 8)
        self.f2 = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.f2(self.drop(F.relu(self.f1(x.flatten(1)))))


def _net(seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return _CNN(**kw).double()


def _batch(n: int = 12, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 3, (n,), generator=g)


def _backward(net, x, y):
    for p in net.parameters():
        p.grad = None
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_routes_agree_with_backward_on_values_grads_and_batchnorm_stats(mode):
    x, y = _batch()
    nets = {r: getattr(_net(), mode)() for r in ROUTES}
    twin = getattr(_net(), mode)()
    fns = {r: fnopt.grad.module(nets[r], F.cross_entropy, via=r) for r in ROUTES}
    params = fnopt.torch.params_of(twin)
    for _ in range(3):  # running statistics accumulate over several calls alike
        ref_value, ref_grads = _backward(twin, x, y)
        for r in ROUTES:
            value, grads = fns[r](params, x, y)
            torch.testing.assert_close(value, ref_value, rtol=1e-13, atol=1e-15)
            assert list(grads) == list(params)
            for name in params:
                torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-11, atol=1e-13)
    for r in ROUTES:
        for (name, a), (_, b) in zip(nets[r].named_buffers(), twin.named_buffers()):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15, msg=name)
    assert int(nets["autograd"].bn.num_batches_tracked) == (3 if mode == "train" else 0)


def test_autograd_route_keeps_params_module_and_outputs_clean():
    x, y = _batch()
    net = _net()
    own = {n: (p, p.detach().clone()) for n, p in net.named_parameters()}
    params = fnopt.torch.params_of(net)
    params["f2.bias"] = params["f2.bias"].requires_grad_()  # a caller's own leaf
    saved = {k: v.detach().clone() for k, v in params.items()}
    value, grads = fnopt.grad.module(net, F.cross_entropy)(params, x, y)
    assert not value.requires_grad and value.grad_fn is None
    assert all(not g.requires_grad and g.grad_fn is None for g in grads.values())
    for k, v in params.items():
        assert torch.equal(v, saved[k])
    assert params["f2.bias"].requires_grad and params["f2.bias"].grad is None
    assert not any(v.requires_grad for k, v in params.items() if k != "f2.bias")
    for n, p in net.named_parameters():  # the very same Parameter objects, untouched
        assert p is own[n][0] and torch.equal(p, own[n][1]) and p.grad is None


@pytest.mark.parametrize("via", ROUTES)
def test_frozen_and_unused_parameters(via):
    x, y = _batch()
    net = _net(batchnorm=False)
    net.c1.weight.requires_grad_(False)
    net.extra = torch.nn.Linear(2, 2).double()  # not used by forward: zero gradient
    params = fnopt.torch.params_of(net)
    _, grads = fnopt.grad.module(net, F.cross_entropy, via=via)(params, x, y)
    assert "c1.weight" not in grads and set(grads) == set(params)
    assert torch.equal(grads["extra.weight"], torch.zeros(2, 2, dtype=torch.float64))
    _, ref = _backward(net, x, y)
    assert "c1.weight" not in ref
    torch.testing.assert_close(grads["c1.bias"], ref["c1.bias"], rtol=1e-11, atol=1e-13)


def test_tied_and_parametrized_weights_match_backward():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False), torch.nn.Tanh(),
                              torch.nn.Linear(4, 4, bias=False), torch.nn.Tanh(),
                              torch.nn.Linear(4, 4)).double()
    net[2].weight = net[0].weight  # tied: one parameter reached under two names
    torch.nn.utils.parametrizations.weight_norm(net[4])
    x = torch.randn(5, 4, dtype=torch.float64)
    loss = lambda out: (out**2).mean()  # noqa: E731
    params = fnopt.torch.params_of(net)
    for p in net.parameters():
        p.grad = None
    ref_value = loss(net(x))
    ref_value.backward()
    for via in ROUTES:
        value, grads = fnopt.grad.module(net, loss, via=via)(params, x)
        torch.testing.assert_close(value, ref_value.detach(), rtol=1e-13, atol=1e-15)
        for n, p in net.named_parameters():
            torch.testing.assert_close(grads[n], p.grad, rtol=1e-11, atol=1e-13, msg=n)


def test_autograd_route_restores_the_module_when_forward_raises():
    net = _net(batchnorm=False)
    own = dict(net.named_parameters())
    grad_fn = fnopt.grad.module(net, F.cross_entropy)
    with pytest.raises(RuntimeError):
        grad_fn(fnopt.torch.params_of(net), torch.zeros(2, 3, dtype=torch.float64),
                torch.zeros(2, dtype=torch.int64))
    assert all(p is own[n] for n, p in net.named_parameters())


def test_autograd_route_works_under_no_grad():
    x, y = _batch()
    net = _net()
    params = fnopt.torch.params_of(net)
    ref = fnopt.grad.module(copy.deepcopy(net), F.cross_entropy)(params, x, y)
    with torch.no_grad():
        value, grads = fnopt.grad.module(net, F.cross_entropy)(params, x, y)
    torch.testing.assert_close(value, ref[0])
    torch.testing.assert_close(grads, ref[1])


def test_func_route_gives_per_example_gradients_under_vmap():
    x, y = _batch(6)
    net = _net(batchnorm=False)
    params = fnopt.torch.params_of(net)
    func_fn = fnopt.grad.module(net, F.cross_entropy, via="func")
    auto_fn = fnopt.grad.module(net, F.cross_entropy)
    per_example = torch.func.vmap(
        lambda xi, yi: func_fn(params, xi[None], yi[None])[1]
    )(x, y)
    for i in range(len(x)):
        _, g = auto_fn(params, x[i:i + 1], y[i:i + 1])
        for name in params:
            torch.testing.assert_close(per_example[name][i], g[name], rtol=1e-11, atol=1e-13)


def test_module_rejects_an_unknown_route():
    with pytest.raises(ValueError, match="via"):
        fnopt.grad.module(torch.nn.Linear(1, 1), F.mse_loss, via="jit")


def test_autocast_inside_the_forward_works_with_the_provider():
    # mixed precision as a torch user writes it: autocast around the forward pass, the
    # loss in float32; params, gradients and the optimizer stay float32
    torch.manual_seed(0)
    F = torch.nn.functional

    class Autocast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                         torch.nn.Linear(16, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.m(x)

    net = Autocast()
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    grad_fn = fnopt.grad.module(net, lambda out, t: F.cross_entropy(out.float(), t))
    params = fnopt.torch.params_of(net)
    value, grads = grad_fn(params, x, y)
    assert value.dtype == torch.float32
    assert all(g.dtype == torch.float32 for g in grads.values())
    # the bfloat16 forward's gradient agrees with the float32 one to bfloat16 precision
    ref = fnopt.grad.module(net.m, F.cross_entropy)
    _, g32 = ref({k[2:]: v for k, v in params.items()}, x, y)
    for k, g in grads.items():
        assert torch.allclose(g, g32[k[2:]], rtol=0.1, atol=2e-2)
    r = fnopt.fixed_point(fnopt.adamw(1e-2), params, grad_fn, data=[(x, y)] * 20,
                          stop=fnopt.stop.max_iters(100))
    assert r.iterations == 20 and float(grad_fn(r.params, x, y)[0]) < float(value)
