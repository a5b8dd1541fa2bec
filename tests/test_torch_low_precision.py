"""bfloat16 and float16 params, as torch.optim takes them (issue 21): the first-order
optimizers keep the params' dtype and run their arithmetic in it; parity with
torch.optim step by step to the dtype's precision. Methods whose line search, solver
or differences need float32/64 refuse low precision naming the dtype; complex params
are refused with the way to optimize them (their real and imaginary parts)."""

from __future__ import annotations

import numpy as np
import pytest

import fnopt

torch = pytest.importorskip("torch")

CASES = [
    ("sgd", "SGD", {"lr": 0.05, "momentum": 0.9}, {"momentum": 0.9}),
    ("sgd", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
     {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("adam", "Adam", {"lr": 0.02}, {}),
    ("adam", "Adam", {"lr": 0.02, "amsgrad": True, "weight_decay": 0.01},
     {"amsgrad": True, "weight_decay": 0.01}),
    ("adamw", "AdamW", {"lr": 0.02, "weight_decay": 0.1}, {"weight_decay": 0.1}),
    ("rmsprop", "RMSprop", {"lr": 0.01}, {}),
    ("rmsprop", "RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True},
     {"momentum": 0.5, "centered": True}),
    ("adagrad", "Adagrad", {"lr": 0.1}, {}),
]
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
STEPS = 6


def _problem(dt):
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(64, generator=g).to(dt)
    curv = (0.5 + 1.5 * torch.rand(64, generator=g)).to(dt)
    return p0, curv


def _torch_run(cls, kw, p0, curv):
    p = p0.clone().requires_grad_()
    opt = getattr(torch.optim, cls)([p], **kw)
    for _ in range(STEPS):
        p.grad = curv * p.detach()  # computed in the params' dtype, as autograd would
        opt.step()
    return p.detach()


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize(("name", "cls", "tkw", "fkw"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_low_precision_parity_with_torch_optim(dtype, name, cls, tkw, fkw):
    dt = DTYPES[dtype]
    p0, curv = _problem(dt)
    ref = _torch_run(cls, tkw, p0, curv)

    def grad_fn(x):
        return (0.5 * curv.float() * x.float() ** 2).sum(), curv * x

    opt = getattr(fnopt, name)(tkw["lr"], **fkw)
    q, s = p0.clone(), opt.init(p0)
    for _ in range(STEPS):
        q, s = opt.step(q, grad_fn, s)
    loop = fnopt.fixed_point(opt, p0, grad_fn, stop=fnopt.stop.max_iters(STEPS)).params
    ulp = torch.finfo(dt).eps
    for got in (q, loop):  # the pure step and the loop's own buffers (fused kernels)
        assert got.dtype == dt
        # a few units in the last place of the params' magnitude: rounding order differs
        torch.testing.assert_close(got.float(), ref.float(), rtol=4 * ulp, atol=4 * ulp)
    assert float((ref.float() - p0.float()).abs().max()) > 8 * ulp  # the params moved


def test_mu_dtype_keeps_the_moment_in_bfloat16_for_float32_params():
    opt = fnopt.adam(0.01, mu_dtype="bfloat16")
    p = torch.ones(4)
    p, s = opt.step(p, lambda x: ((x ** 2).sum(), 2 * x), opt.init(p))
    assert p.dtype == torch.float32
    mus = [x for x in fnopt.tree.leaves(s) if getattr(x, "ndim", 0) == 1]
    assert torch.bfloat16 in {x.dtype for x in mus}


def test_low_precision_checkpoint_round_trip(tmp_path):
    p0, curv = _problem(torch.bfloat16)
    opt = fnopt.adam(0.02)
    r = fnopt.fixed_point(opt, p0, lambda x: ((curv * x * x).sum(), curv * x),
                          stop=fnopt.stop.max_iters(3), checkpoint_path=tmp_path / "c.npz")
    ck = fnopt.load(tmp_path / "c.npz")
    assert ck.params.dtype == torch.bfloat16
    torch.testing.assert_close(ck.params, r.params, rtol=0, atol=0)


@pytest.mark.parametrize("make", [fnopt.lbfgs, fnopt.bfgs])
def test_methods_that_need_float32_refuse_low_precision_naming_the_dtype(make):
    with pytest.raises(TypeError, match="has dtype bfloat16; this method needs float32"):
        make().init(torch.zeros(3, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="has dtype float16"):
        fnopt.fixed_point(make(), np.zeros(3, dtype=np.float16),
                          lambda x: ((x * x).sum(), 2 * x), stop=fnopt.stop.max_iters(2))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128, np.complex128])
def test_complex_params_are_refused_with_the_real_view_to_use(dtype):
    x = (np.zeros(3, dtype=dtype) if isinstance(dtype, type) else torch.zeros(3, dtype=dtype))
    with pytest.raises(TypeError, match=r"complex params are not supported.*view_as_real"):
        fnopt.adam(0.1).init(x)


def test_numpy_float16_params_keep_their_dtype():
    opt = fnopt.adam(0.1)
    p = np.ones(3, dtype=np.float16)
    p, _ = opt.step(p, lambda x: ((x * x).sum(), 2 * x), opt.init(p))
    assert p.dtype == np.float16
    np.testing.assert_allclose(p, 0.9, rtol=1e-3)
