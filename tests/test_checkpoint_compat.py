"""Checkpoints written by fnopt 0.1 (before the one-source-of-truth redesign) load into
today's optimizers and resume the same trajectory; unknown format versions are refused
with a CheckpointError that names both versions."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fnopt

DATA = Path(__file__).parent / "data"
CASES = {
    "sgd_momentum": lambda: fnopt.sgd(1e-3, momentum=0.9),
    "adam": lambda: fnopt.adam(1e-2),
    "lbfgs": lambda: fnopt.lbfgs(),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_v0_1_checkpoint_resumes_the_same_trajectory(name):
    task = fnopt.tasks.rosenbrock()
    opt = CASES[name]()
    ck = fnopt.load(DATA / f"v0.1-{name}.fnopt", state_like=opt.init(task.init_params))
    assert ck.iteration == 5
    resumed = fnopt.fixed_point(opt, ck.params, task.grad_fn, ck.state,
                                start_iteration=ck.iteration, stop=fnopt.stop.max_iters(15))
    straight = fnopt.fixed_point(opt, task.init_params, task.grad_fn,
                                 stop=fnopt.stop.max_iters(15))
    # (fnopt 0.1 ran adam through a hand-written fused twin: the first 5 steps agree
    # with today's single expression to round-off, not to the bit)
    np.testing.assert_allclose(resumed.params, straight.params, rtol=1e-12, atol=0)
    assert type(resumed.state) is type(straight.state)


def test_an_unknown_format_version_is_refused_naming_both(tmp_path):
    src = DATA / "v0.1-adam.fnopt"
    dst = tmp_path / "future.fnopt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(".json"):
                header = json.loads(data)
                header["version"] = 99
                data = json.dumps(header).encode()
            zout.writestr(info, data)
    with pytest.raises(fnopt.CheckpointError, match="99") as err:
        fnopt.load(dst)
    assert "1" in str(err.value)
