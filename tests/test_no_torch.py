"""Without torch: in a subprocess where ``import torch`` fails, ``import fnopt`` works
and the NumPy tasks train with sgd + fixed_point."""

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
    assert out["torch_loaded"] is False
