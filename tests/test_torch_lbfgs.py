"""fnopt.lbfgs with torch.optim.LBFGS's arguments follows torch's method: several inner
iterations per step, the same trajectory and evaluation counts, a solved problem a
no-op step (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fnopt
from fnopt.optimizers.torch_lbfgs import TorchLbfgsState, torch_lbfgs

CONFIGS = [
    {"lr": 1},
    {"lr": 1, "line_search_fn": "strong_wolfe"},
    {"lr": 0.5, "max_iter": 7, "history_size": 3},
    {"lr": 1, "max_iter": 4, "line_search_fn": "strong_wolfe", "history_size": 2,
     "tolerance_change": 1e-12},
    {"lr": 0.1, "max_iter": 3, "max_eval": 2},
    {"lr": 1, "tolerance_grad": 1e-3, "line_search_fn": "strong_wolfe"},
]


def rosen(x):
    return ((1 - x[:-1]) ** 2).sum() + 100 * ((x[1:] - x[:-1] ** 2) ** 2).sum()


def rosen_np(x):
    r = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -2 * (1 - x[:-1]) - 400 * x[:-1] * r
    g[1:] += 200 * r
    return np.asarray(rosen(x)), g


X0 = [-1.2, 1.0, 0.5, -0.3]


def _torch_run(kw, steps):
    w = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], **kw)

    def closure():
        opt.zero_grad()
        loss = rosen(w)
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        ret = opt.step(closure)
        out.append((w.detach().clone(), opt.state[w]["func_evals"], float(ret)))
    return out


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_matches_torch_optim_lbfgs_step_by_step(kw, backend):
    want = _torch_run(kw, 6)
    opt = fnopt.lbfgs(**kw)
    if backend == "torch":
        x, grad_fn = torch.tensor(X0, dtype=torch.float64), fnopt.grad.torch_autograd(rosen)
    else:
        x, grad_fn = np.array(X0), rosen_np
    s = opt.init(x)
    for w, evals, ret in want:
        x, s = opt.step(x, grad_fn, s)
        np.testing.assert_allclose(np.asarray(x), w.numpy(), rtol=1e-9, atol=1e-11)
        assert s.func_evals == evals
        assert float(s.value) == pytest.approx(ret, rel=1e-12)  # torch returns the loss at input


def test_a_solved_problem_is_a_no_op_step():
    opt = fnopt.lbfgs(lr=1, line_search_fn="strong_wolfe")
    x = np.ones(4)
    s = opt.init(x)
    x2, s2 = opt.step(x, rosen_np, s)
    assert x2 is x and s2.count == 1 and s2.func_evals == 1 and s2.n_iter == 0
    np.testing.assert_array_equal(x, np.ones(4))


def test_runs_in_fixed_point_like_torch_steps():
    kw = {"lr": 1, "max_iter": 20, "line_search_fn": "strong_wolfe"}
    r = fnopt.fixed_point(fnopt.lbfgs(**kw), np.array(X0), rosen_np,
                          stop=fnopt.stop.max_iters(5))
    w, evals, _ = _torch_run(kw, 5)[-1]
    np.testing.assert_allclose(r.params, w.numpy(), rtol=1e-9, atol=1e-11)
    assert isinstance(r.state, TorchLbfgsState) and r.state.func_evals == evals
    assert r.n_evals == evals + 1  # and once at the params returned, as for any value_at="input"


def test_history_size_and_memory_both_reach_torch_method():
    opt = fnopt.lbfgs(lr=1, history_size=3)
    s = opt.init(np.zeros(2))
    assert isinstance(s, TorchLbfgsState)


@pytest.mark.parametrize("kw, err, match", [
    ({"lr": 0}, ValueError, "lr"),
    ({"max_iter": 0}, ValueError, "max_iter"),
    ({"max_eval": 0}, ValueError, "max_eval"),
    ({"line_search_fn": "armijo"}, ValueError, "line_search_fn"),
    ({"history_size": 0}, ValueError, "history_size"),
    ({"tolerance_grad": -1}, ValueError, "tolerance_grad"),
])
def test_bad_arguments_are_named(kw, err, match):
    with pytest.raises(err, match=match):
        torch_lbfgs(**kw)


def test_torch_and_fnopt_arguments_do_not_mix():
    with pytest.raises(TypeError, match="pass one set"):
        fnopt.lbfgs(lr=1, search=fnopt.backtracking())
