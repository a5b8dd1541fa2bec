"""The torch backend is device-agnostic: params on CUDA stay on CUDA, a step never
synchronises with the host, and CUDA float64 follows the CPU trajectory. Skipped when
CUDA is unavailable (the benchmark's no-GPU path is checked instead)."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import fnopt
from fnopt import implicit

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()
cuda_only = pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available")

OPTIMIZERS = {
    "sgd": lambda: fnopt.sgd(0.05),
    "sgd_nesterov_wd": lambda: fnopt.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: fnopt.adam(1e-2),
    "adamw_amsgrad": lambda: fnopt.adamw(1e-2, amsgrad=True),
    "rmsprop": lambda: fnopt.rmsprop(1e-3, momentum=0.5),
    "adagrad": lambda: fnopt.adagrad(1e-2),
    "lion": lambda: fnopt.lion(1e-3),
}


def mlp_on(device, dtype=torch.float32):
    task = fnopt.tasks.mlp((6, 16, 1), activation="tanh", backend="torch",
                           dtype=str(dtype).replace("torch.", ""), n_samples=128, seed=1)
    x, y = (t.to(device) for t in task.data)
    params = fnopt.tree.map(lambda t: t.to(device), task.init_params)
    return task, params, x, y


def devices_of(tree):
    return {leaf.device.type for leaf in fnopt.tree.leaves(tree) if torch.is_tensor(leaf)}


@cuda_only
@pytest.mark.parametrize("provider", ["torch_func", "torch_autograd"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_stays_on_cuda_and_never_syncs(name, provider):
    task, params, x, y = mlp_on("cuda")
    grad_fn = getattr(fnopt.grad, provider)(task.loss)
    opt = OPTIMIZERS[name]()
    state = opt.init(params)
    params, state = opt.step(params, grad_fn, state, x, y)  # warm-up: lazy init, caches
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            params, state = opt.step(params, grad_fn, state, x, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert devices_of(params) == {"cuda"}
    assert devices_of(state) == {"cuda"}
    assert all(p.dtype == torch.float32 for p in fnopt.tree.leaves(params))
    assert np.isfinite(float(state.value))


@cuda_only
@pytest.mark.parametrize("name", ["sgd_nesterov_wd", "adam", "rmsprop"])
def test_cuda_float64_follows_the_cpu_trajectory(name):
    runs = {}
    for device in ("cpu", "cuda"):
        task, params, x, y = mlp_on(device, torch.float64)
        r = fnopt.fixed_point(
            OPTIMIZERS[name](), params, fnopt.grad.torch_func(task.loss),
            stop=fnopt.stop.max_iters(50), data=[(x, y)] * 60, record=True,
        )
        assert devices_of(r.params) == {device} and devices_of(r.state) == {device}
        runs[device] = r
    np.testing.assert_allclose(runs["cuda"].history.loss, runs["cpu"].history.loss, rtol=1e-10)
    for a, b in zip(fnopt.tree.leaves(runs["cuda"].params), fnopt.tree.leaves(runs["cpu"].params)):
        np.testing.assert_allclose(a.cpu().numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


@cuda_only
def test_fixed_point_syncs_at_most_twice_per_iteration():
    task, params, x, y = mlp_on("cuda")
    grad_fn = fnopt.grad.torch_func(task.loss)
    opt = fnopt.adam(1e-2)
    fnopt.fixed_point(opt, params, grad_fn, stop=fnopt.stop.max_iters(2), data=[(x, y)] * 3)
    iters = 20
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = fnopt.fixed_point(opt, params, grad_fn, stop=fnopt.stop.max_iters(iters),
                                  data=[(x, y)] * (iters + 1))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert r.iterations == iters
    # the stopping check reads the loss and the gradient norm (2 per iteration) plus a
    # fixed number at the start (finite check of the params); nothing inside the steps
    assert len(syncs) <= 2 * (iters + 1) + 2 * len(fnopt.tree.leaves(params)) + 4, len(syncs)


@cuda_only
def test_tree_reductions_and_scalars_stay_on_cuda():
    xs = {"a": torch.ones(3, device="cuda"), "b": torch.full((2, 2), 2.0, device="cuda")}
    torch.cuda.set_sync_debug_mode("error")
    try:
        outs = [fnopt.tree.vdot(xs, xs), fnopt.tree.sq_norm(xs), fnopt.tree.global_norm(xs),
                fnopt.backend.TORCH.scalar(1.0, xs["a"])]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(o.device.type == "cuda" and o.ndim == 0 for o in outs)
    assert float(outs[0]) == 19.0


@cuda_only
def test_differentiable_and_implicit_on_cuda_match_cpu():
    grads = {}
    for device in ("cpu", "cuda"):
        rng = np.random.default_rng(0)
        a = torch.tensor(rng.standard_normal((30, 4)), device=device)
        y = torch.tensor(rng.standard_normal(30), device=device)
        lam = torch.tensor(0.5, dtype=torch.float64, device=device, requires_grad=True)
        lr = torch.tensor(0.2, dtype=torch.float64, device=device, requires_grad=True)

        def loss(x, lam, a=a, y=y):
            r = a @ x - y
            return (r @ r) / 60 + 0.5 * lam * (x @ x)

        x0 = torch.zeros(4, dtype=torch.float64, device=device)
        stop = fnopt.stop.grad_norm_below(1e-12) | fnopt.stop.max_iters(2000)
        r = implicit.fixed_point(fnopt.sgd(0.5), x0, loss, lam, stop=stop)
        g_imp = torch.autograd.grad((r.params ** 2).sum(), lam)[0]
        gf = fnopt.grad.torch_autograd(lambda x, lam=lam, loss=loss: loss(x, lam),
                                       create_graph=True)
        u = fnopt.fixed_point(fnopt.sgd(lr), x0, gf, stop=fnopt.stop.max_iters(10),
                              differentiable=True)
        g_lr = torch.autograd.grad((u.params ** 2).sum(), lr)[0]
        assert r.params.device.type == device and u.params.device.type == device
        grads[device] = (float(g_imp), float(g_lr))
    np.testing.assert_allclose(grads["cuda"], grads["cpu"], rtol=1e-9)


@pytest.mark.skipif(HAS_CUDA, reason="checks the no-GPU path of the benchmark")
def test_benchmark_without_gpu_prints_a_note_and_exits_0(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out
