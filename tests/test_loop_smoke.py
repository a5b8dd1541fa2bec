"""First checks of the loop on the classic Rosenbrock run (the full loop tests live in
test_loop.py)."""

import numpy as np
import pytest

import fnopt


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_seed_rosenbrock_reproduces_5771_iterations(backend):
    task = fnopt.tasks.rosenbrock(backend)
    stop = fnopt.stop.loss_below(1e-3) | fnopt.stop.max_iters(10_000)
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn, stop=stop)
    assert r.iterations == 5771
    assert r.reason == "loss_below" and r.converged
    np.testing.assert_allclose(np.asarray(r.params), [0.96840573, 0.93768081], atol=1e-8)
    assert r.value <= 1e-3
