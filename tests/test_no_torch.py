"""Without torch: in a subprocess where ``import torch`` fails, ``import fnopt`` works,
the NumPy tasks train with sgd + fixed_point, and the public modules that do not need
torch (testing, checkpoint, callbacks, plots, datasets, problems, batched, cli) work on
NumPy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import json
    import sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, BlockTorch())
    try:
        import torch  # noqa: F401
        raise SystemExit("torch was importable")
    except ImportError:
        pass

    import numpy as np
    import fnopt

    out = {}
    task = fnopt.tasks.rosenbrock()
    stop = fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10_000)
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn, stop=stop)
    out["rosenbrock"] = [r.iterations, str(r.reason), [float(v) for v in r.params]]

    lin = fnopt.tasks.linear_regression(*fnopt.tasks.make_linear_data())
    r = fnopt.fixed_point(fnopt.sgd(0.1, momentum=0.5), lin.init_params, lin.grad_fn,
                          stop=fnopt.stop.grad_norm_below(1e-9) | fnopt.stop.max_iters(5000))
    out["linreg_err"] = float(np.abs(r.params - lin.solution).max())

    mlp = fnopt.tasks.mlp(activation="tanh", loss="bce")
    r = fnopt.fixed_point(fnopt.sgd(0.5, momentum=0.9, nesterov=True, weight_decay=1e-4),
                          mlp.init_params, mlp.grad_fn, stop=fnopt.stop.max_iters(200))
    out["mlp"] = [float(mlp.loss(mlp.init_params)), r.value]

    rep = fnopt.grad.check(task.grad_fn, fnopt.grad.finite_differences(task.loss),
                           task.init(0))
    out["grad_check_ok"] = rep.ok
    try:
        fnopt.grad.torch_func(lambda p: p)
        out["torch_func"] = "no error"
    except ImportError as exc:
        out["torch_func"] = "ImportError"
    import os
    import tempfile

    from fnopt import batched, callbacks, checkpoint, cli, datasets, plots, problems, testing

    tmp = tempfile.mkdtemp()
    opt = fnopt.adam(1e-2)
    p, s = opt.step(task.init_params, task.grad_fn, opt.init(task.init_params))
    checkpoint.save(os.path.join(tmp, "c.npz"), p, s, iteration=1)
    ck = checkpoint.load(os.path.join(tmp, "c.npz"), state_like=opt.init(p))
    out["checkpoint"] = [ck.iteration, bool(np.array_equal(ck.params, p))]
    rep = testing.check_optimizer(lambda: fnopt.sgd(1e-2, momentum=0.9))
    out["testing"] = [rep.ok, list(rep.skipped)]
    seen = []
    r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=fnopt.stop.max_iters(10),
                          callback=callbacks.combine(lambda info: seen.append(info.iteration)))
    out["callbacks"] = [r.iterations, len(seen)]
    try:
        import matplotlib  # noqa: F401
        png = plots.loss_curves({"sgd": [3.0, 2.0, 1.0]}, os.path.join(tmp, "l.png"))
        out["plots"] = os.path.getsize(png) > 0
    except ImportError:
        out["plots"] = True
    x, y = datasets.iris()
    out["iris"] = [list(x.shape), type(x).__name__]
    pr = problems.by_name("booth")
    r = fnopt.fixed_point(fnopt.lbfgs(), pr.start(), pr.grad_fn(),
                          stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(100))
    out["problems"] = r.converged
    b = batched(fnopt.sgd(0.1), np.ones((3, 2)), lambda x: ((x * x).sum(1), 2 * x),
                stop=fnopt.stop.max_iters(5))
    out["batched"] = [int(i) for i in b.iterations]
    out["cli"] = cli.main(["run", "rosenbrock", "--optimizer", "lbfgs", "--max-iters", "50"])
    out["torch_loaded"] = any(m == "torch" or m.startswith("torch.") for m in sys.modules)
    print(json.dumps(out))
    """
)


def test_fnopt_works_without_torch():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    iters, reason, point = out["rosenbrock"]
    assert iters == 5771 and reason == "loss_below"
    assert [round(v, 4) for v in point] == [0.9684, 0.9377]
    assert out["linreg_err"] < 1e-7
    start, end = out["mlp"]
    assert end < start
    assert out["grad_check_ok"] is True
    assert out["torch_func"] == "ImportError"
    assert out["checkpoint"] == [1, True]
    assert out["testing"] == [True, ["backend_agreement"]]
    assert out["callbacks"] == [10, 11]  # iterations 0..10
    assert out["plots"] is True
    assert out["iris"] == [[150, 4], "ndarray"]
    assert out["problems"] is True
    assert out["batched"] == [5, 5, 5]
    assert out["cli"] == 0
    assert out["torch_loaded"] is False
