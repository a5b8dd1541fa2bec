"""The nn.Module bridge: fnopt.torch.params_of / load_into and fnopt.grad.module, checked
against plain torch autograd and against torch.optim on the same model."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fnopt
from fnopt import datasets

F = torch.nn.functional
ROOT = Path(__file__).resolve().parent.parent


def _classifier(seed: int = 0, *, batchnorm: bool = False, dropout: float = 0.0):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(4, 6)]
    if batchnorm:
        layers.append(torch.nn.BatchNorm1d(6))
    layers += [torch.nn.Tanh(), torch.nn.Dropout(dropout), torch.nn.Linear(6, 3)]
    return torch.nn.Sequential(*layers).double()


def _iris():
    x, y = datasets.iris(backend="torch")
    mean = x.mean(0)
    return (x - mean) / ((x - mean) ** 2).mean(0) ** 0.5, y


# -- params_of / load_into ----------------------------------------------------------------


def test_params_of_names_values_and_independence():
    net = _classifier()
    params = fnopt.torch.params_of(net)
    assert list(params) == [n for n, _ in net.named_parameters()]
    for name, p in net.named_parameters():
        assert torch.equal(params[name], p)
        assert not params[name].requires_grad
        assert params[name].data_ptr() != p.data_ptr()
    params["0.weight"].add_(1.0)  # the copy is ours: the module does not change
    assert not torch.equal(params["0.weight"], net[0].weight)


def test_params_of_skips_frozen_parameters_unless_asked():
    net = _classifier()
    net[0].bias.requires_grad_(False)
    assert "0.bias" not in fnopt.torch.params_of(net)
    assert "0.bias" in fnopt.torch.params_of(net, trainable_only=False)


def test_buffers_of_copies_batchnorm_statistics():
    net = _classifier(batchnorm=True)
    bufs = fnopt.torch.buffers_of(net)
    assert set(bufs) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    assert bufs["1.running_var"].data_ptr() != net[1].running_var.data_ptr()


def test_load_into_round_trip_and_partial_update():
    src, dst = _classifier(0), _classifier(1)
    out = fnopt.torch.load_into(dst, fnopt.torch.params_of(src))
    assert out is dst
    for (_, a), (_, b) in zip(src.named_parameters(), dst.named_parameters()):
        assert torch.equal(a, b)
    before = dst[3].weight.clone()
    fnopt.torch.load_into(dst, {"0.bias": torch.zeros(6, dtype=torch.float64)})
    assert torch.equal(dst[0].bias, torch.zeros(6, dtype=torch.float64))
    assert torch.equal(dst[3].weight, before)


def test_load_into_accepts_numpy_and_keeps_module_dtype():
    net = torch.nn.Linear(2, 1).double()
    fnopt.torch.load_into(net, {"weight": np.array([[1.0, 2.0]], dtype=np.float32)})
    assert net.weight.dtype == torch.float64
    assert net.weight.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("params", "exc", "word"),
    [
        ({"nope": torch.zeros(1)}, ValueError, "nope"),
        ({"0.bias": torch.zeros(6), "3.bias": torch.zeros(4)}, ValueError, "shape"),
        ({"0.bias": torch.zeros(6, dtype=torch.int64)}, TypeError, "non-float"),
        ([torch.zeros(6)], TypeError, "dict"),
    ],
)
def test_load_into_rejects_bad_params_and_writes_nothing(params, exc, word):
    net = _classifier()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(exc, match=word):
        fnopt.torch.load_into(net, params)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("fn", [fnopt.torch.params_of, fnopt.torch.buffers_of])
def test_bridge_rejects_non_modules(fn):
    with pytest.raises(TypeError, match="module"):
        fn(object())


# -- grad.module --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batchnorm", "mode"),
    [(False, "train"), (True, "train"), (True, "eval")],
)
def test_module_grad_fn_matches_autograd(batchnorm, mode):
    x, y = _iris()
    xb, yb = x[::5], y[::5]
    net = _classifier(batchnorm=batchnorm)
    twin = copy.deepcopy(net)
    getattr(net, mode)()
    getattr(twin, mode)()
    grad_fn = fnopt.grad.module(net, F.cross_entropy)
    params = fnopt.torch.params_of(net)
    saved = {k: v.clone() for k, v in params.items()}
    value, grads = grad_fn(params, xb, yb)

    loss = F.cross_entropy(twin(xb), yb)
    loss.backward()
    assert value.item() == pytest.approx(loss.item(), rel=1e-14)
    for name, p in twin.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-12, atol=1e-14)
    # buffers follow the mode: updated in train(), only read in eval()
    for (_, a), (_, b) in zip(net.named_buffers(), twin.named_buffers()):
        assert torch.equal(a, b)
    if batchnorm:
        assert int(net[1].num_batches_tracked) == (1 if mode == "train" else 0)
    # the params passed in are not modified, and neither are the module's weights
    for k, v in params.items():
        assert torch.equal(v, saved[k])
    for name, p in net.named_parameters():
        assert torch.equal(p, saved[name])


def test_module_dropout_respects_train_and_eval():
    x, y = _iris()
    net = _classifier(dropout=0.5)
    grad_fn = fnopt.grad.module(net, F.cross_entropy)
    params = fnopt.torch.params_of(net)
    net.train()
    train_values = {grad_fn(params, x, y)[0].item() for _ in range(3)}
    net.eval()
    eval_values = {grad_fn(params, x, y)[0].item() for _ in range(3)}
    assert len(train_values) > 1  # random masks
    assert len(eval_values) == 1
    with torch.no_grad():
        assert eval_values.pop() == pytest.approx(F.cross_entropy(net(x), y).item(), rel=1e-14)


def test_module_frozen_parameters_come_from_the_module():
    x, y = _iris()
    net = _classifier()
    net[0].weight.requires_grad_(False)
    params = fnopt.torch.params_of(net)
    value, grads = fnopt.grad.module(net, F.cross_entropy)(params, x, y)
    assert "0.weight" not in grads and set(grads) == set(params)
    assert value.item() == pytest.approx(F.cross_entropy(net(x), y).item(), rel=1e-14)


@pytest.mark.parametrize(
    ("call", "exc", "word"),
    [
        (lambda g, p, x, y: g(p), TypeError, "batch"),
        (lambda g, p, x, y: g({**p, "extra": p["0.bias"]}, x, y), ValueError, "extra"),
        (lambda g, p, x, y: g(list(p.values()), x, y), TypeError, "dict"),
    ],
)
def test_module_grad_fn_rejects_bad_calls(call, exc, word):
    x, y = _iris()
    net = _classifier()
    grad_fn = fnopt.grad.module(net, F.cross_entropy)
    with pytest.raises(exc, match=word):
        call(grad_fn, fnopt.torch.params_of(net), x, y)


def test_module_rejects_bad_construction_and_non_scalar_loss():
    with pytest.raises(TypeError, match="module"):
        fnopt.grad.module(lambda x: x, F.cross_entropy)
    with pytest.raises(TypeError, match="loss_fn"):
        fnopt.grad.module(torch.nn.Linear(1, 1), "mse")
    net = torch.nn.Linear(2, 1).double()
    grad_fn = fnopt.grad.module(net, lambda out: out.sum(0))
    with pytest.raises(Exception, match="scalar"):
        grad_fn(fnopt.torch.params_of(net), torch.ones(3, 2, dtype=torch.float64))


# -- parity with torch.optim ----------------------------------------------------------------

PARITY = [
    ("sgd", lambda: fnopt.sgd(0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    (
        "sgd-momentum-wd",
        lambda: fnopt.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                   weight_decay=1e-3),
    ),
    ("adam", lambda: fnopt.adam(1e-2), lambda ps: torch.optim.Adam(ps, lr=1e-2)),
    (
        "adamw",
        lambda: fnopt.adamw(1e-2, weight_decay=0.1),
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    ),
    ("rmsprop", lambda: fnopt.rmsprop(1e-3), lambda ps: torch.optim.RMSprop(ps, lr=1e-3)),
]


@pytest.mark.parametrize(("name", "ours", "theirs"), PARITY, ids=[p[0] for p in PARITY])
def test_fixed_point_with_minibatches_matches_torch_optim(name, ours, theirs):
    x, y = _iris()
    order = np.random.default_rng(0).permutation(150)
    batches = [(x[order[i:i + 25]], y[order[i:i + 25]]) for i in range(0, 150, 25)] * 3
    steps = len(batches) - 1  # the loop evaluates the loss at the last iterate too

    net = _classifier()
    reference = copy.deepcopy(net)
    start = fnopt.torch.params_of(net)
    result = fnopt.fixed_point(ours(), start, fnopt.grad.module(net, F.cross_entropy),
                               data=batches, stop=fnopt.stop.max_iters(steps), record=True)
    assert result.iterations == steps

    opt = theirs(reference.parameters())
    losses = []
    for xb, yb in batches[:steps]:
        opt.zero_grad()
        loss = F.cross_entropy(reference(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    np.testing.assert_allclose(result.history.loss[:steps], losses, rtol=1e-12, atol=1e-14)
    for pname, p in reference.named_parameters():
        torch.testing.assert_close(result.params[pname], p.detach(), rtol=1e-11, atol=1e-13)
    # the starting params and the module that built grad_fn are untouched
    for pname, p in net.named_parameters():
        assert torch.equal(start[pname], p)


def test_torch_module_demo_agrees_with_torch_optim(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("_demo_tm", ROOT / "demos" / "torch_module.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--fast", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert out["max_loss_diff"] < 1e-12
    assert out["max_param_diff"] < 1e-12
    assert len(out["fnopt_losses"]) == out["steps"] == len(out["torch_losses"])
    assert "torch.optim loss" in text
    assert Path(out["files"][0]).stat().st_size > 1000


def test_import_fnopt_does_not_import_torch():
    code = (
        "import sys, fnopt; assert 'torch' not in sys.modules; "
        "fnopt.datasets.iris(); assert 'torch' not in sys.modules; "
        "m = fnopt.torch; assert 'torch' in sys.modules and m.__name__ == 'fnopt.torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
