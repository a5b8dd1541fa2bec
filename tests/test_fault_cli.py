"""The command line under bad input (issue 19 item 10, issue 21's CLI bullet): every bad
argument and every optimizer that cannot run on a task exit 2 with a one-line message
(no traceback); the user's own objective (``MODULE:FUNCTION --x0``), ``--opt KEY=VALUE``
and ``--version``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fnopt
from fnopt import cli

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_usage_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    error_lines = [ln for ln in lines if ": error: " in ln]
    assert len(error_lines) == 1, err  # one message line (+ argparse's usage / a hint)
    for w in words:
        assert w in error_lines[0], (w, err)


def _params(out: str) -> np.ndarray:
    m = re.search(r"^  params\s+\[(.+)\]$", out, re.M)
    assert m, out
    return np.array([float(t) for t in m.group(1).split(",")])


# -- every listed optimizer runs or is refused with exit 2 ------------------------------


@pytest.mark.parametrize("task", ["rosenbrock", "mlp"])
def test_every_listed_optimizer_runs_or_exits_2_with_one_line(capsys, task):
    refused = []
    for name in cli.available_optimizers():
        code, out, err = run(capsys, "run", task, "-o", name, "--max-iters", "2", "-q")
        assert "Traceback" not in out + err, (name, err)
        if code == 2:
            _assert_usage_error(code, err, f"'{name}'")
            refused.append(name)
        else:  # it ran (1: the run itself ended in a failure such as a NaN loss)
            assert code in (0, 1), (name, code, err)
            assert "done: " in out and "  iterations" in out, (name, out)
    # the pairs the issue names are refused, the common ones run
    assert {"muon", "levenberg_marquardt"} <= set(refused)
    assert not {"sgd", "adam", "lbfgs"} & set(refused)


@pytest.mark.parametrize("name, words", [
    ("muon", ["cannot run on task 'rosenbrock'", "needs matrices"]),
    ("levenberg_marquardt", ["cannot run on task 'rosenbrock'", "least-squares"]),
])
def test_unusable_pairs_are_refused_before_the_run(capsys, name, words):
    code, out, err = run(capsys, "run", "rosenbrock", "-o", name)
    _assert_usage_error(code, err, *words)
    assert out == ""  # refused before the banner, nothing ran


def test_compare_refuses_an_unusable_optimizer_before_running_any(capsys, tmp_path):
    code, out, err = run(capsys, "compare", "rosenbrock", "--optimizers", "sgd,muon",
                         "--no-plots", "--max-iters", "2")
    _assert_usage_error(code, err, "'muon'")
    assert "sgd" not in out


# -- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    (["run", "rosenbrock", "--loss-below", "nan"], ["--loss-below", "finite"]),
    (["run", "rosenbrock", "--loss-below", "inf"], ["--loss-below", "finite"]),
    (["run", "rosenbrock", "--dim", "1e11"], ["--dim"]),
    (["run", "rosenbrock", "--dim", "100000000000"], ["--dim", "<="]),
    (["run", "rosenbrock", "--x0", "a,b"], ["--x0"]),
    (["run", "rosenbrock", "--x0", "1,nan"], ["--x0", "finite"]),
    (["run", "rosenbrock", "--x0", "1,2,3"], ["--x0", "2 parameters, got 3"]),
    (["run", "mlp", "--x0", "1,2"], ["--x0"]),
    (["run", "rosenbrok"], ["invalid choice: 'rosenbrok'"]),
    (["run", "rosenbrock", "--opt", "b1"], ["--opt", "KEY=VALUE"]),
    (["run", "rosenbrock", "-o", "adam", "--opt", "bogus=1"], ["--opt", "no option 'bogus'",
                                                               "b1"]),
    (["run", "rosenbrock", "-o", "adam", "--opt", "b1=2"], ["'adam'", "b1"]),
    (["run", "rosenbrock", "-o", "adam", "--opt", "b1=0.8", "--opt", "b1=0.7"],
     ["given twice"]),
    (["run", "rosenbrock", "-o", "adam", "--lr", "0.1", "--opt", "learning_rate=0.2"],
     ["once"]),
    (["run", "rosenbrock", "-o", "adam", "--opt", "mu_dtype='no_such_dtype'"], ["'adam'"]),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, words):
    code, _, err = run(capsys, *argv)
    _assert_usage_error(code, err, *words)


def test_unwritable_out_is_refused_before_any_run(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, out, err = run(capsys, "compare", "rosenbrock", "--optimizers", "sgd",
                         "--out", str(blocker / "plots"), "--max-iters", "2")
    _assert_usage_error(code, err, "--out", "cannot write")
    assert out == ""


def test_version_prints_fnopts_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"fnopt {fnopt.__version__}"


# -- --opt KEY=VALUE ----------------------------------------------------------------------


def test_opt_passes_factory_arguments(capsys):
    code, out, _ = run(capsys, "run", "rosenbrock", "-o", "adam", "--opt", "b1=0.8",
                       "--max-iters", "5", "-q")
    assert code == 0
    got = _params(out)
    task = fnopt.tasks.rosenbrock("numpy")
    stop = fnopt.stop.max_iters(5)
    want = fnopt.fixed_point(fnopt.adam(2e-2, b1=0.8), task.init_params, task.grad_fn,
                             stop=stop).params
    default = fnopt.fixed_point(fnopt.adam(2e-2), task.init_params, task.grad_fn,
                                stop=stop).params
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    assert np.abs(want - default).max() > 1e-4  # the option changed the run


def test_opt_values_are_python_literals(capsys):
    code, out, err = run(capsys, "run", "rosenbrock", "-o", "sgd", "--opt", "momentum=0.9",
                         "--opt", "nesterov=True", "--max-iters", "3", "-q")
    assert code == 0, err
    assert "iterations   3" in out


# -- your own objective -------------------------------------------------------------------


MODULE = """
import numpy as np

def loss(x):
    return ((x - np.array([3.0, -1.0])) ** 2).sum()

def vector(x):
    return x * 2

def with_grad(x):
    r = x - np.array([3.0, -1.0])
    return (r ** 2).sum(), 2 * r
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"fnopt_cli_user_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_own_objective_from_a_module(capsys, user_module):
    code, out, err = run(capsys, "run", f"{user_module}:loss", "--x0", "1,2", "-o", "lbfgs",
                         "-q")
    assert code == 0, err
    np.testing.assert_allclose(_params(out), [3.0, -1.0], atol=1e-5)
    assert "fnopt run: loss (numpy, float64) with lbfgs" in out


def test_own_objective_with_its_own_gradient(capsys, user_module):
    code, out, err = run(capsys, "run", f"{user_module}:with_grad", "--x0", "0,0", "-o",
                         "bfgs", "-q")
    assert code == 0, err
    np.testing.assert_allclose(_params(out), [3.0, -1.0], atol=1e-6)


def test_own_objective_from_a_file_with_opt(capsys, user_module, tmp_path):
    code, out, err = run(capsys, "run", f"{tmp_path / user_module}.py:loss", "--x0", "1,2",
                         "-o", "adam", "--lr", "0.05", "--opt", "b1=0.8", "--max-iters", "3000",
                         "-q")
    assert code == 0, err
    np.testing.assert_allclose(_params(out), [3.0, -1.0], atol=1e-3)


def test_own_objective_on_torch(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    name = f"fnopt_cli_torch_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(
        "def loss(x):\n    return ((x - 2.0) ** 2).sum()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code, out, err = run(capsys, "run", f"{name}:loss", "--x0", "0,0,0", "-o", "lbfgs",
                             "--backend", "torch", "-q")
    finally:
        sys.modules.pop(name, None)
    assert code == 0, err
    np.testing.assert_allclose(_params(out), [2.0, 2.0, 2.0], atol=1e-6)


@pytest.mark.parametrize("spec, extra, words", [
    (":loss", ["--x0", "1,2"], ["--x0"]),  # no --x0 (replaced below)
    (":nope", ["--x0", "1,2"], ["has no 'nope'"]),
    (":vector", ["--x0", "1,2"], ["scalar loss"]),
    (":loss", ["--x0", "1,2", "--seed", "3"], ["--seed"]),
])
def test_own_objective_mistakes_exit_2(capsys, user_module, spec, extra, words):
    if words == ["--x0"]:
        extra = []
    code, _, err = run(capsys, "run", user_module + spec, *extra)
    _assert_usage_error(code, err, *words)


def test_own_objective_module_that_cannot_import_exits_2(capsys, tmp_path, monkeypatch):
    (tmp_path / "fnopt_cli_broken.py").write_text("raise RuntimeError('broken on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run(capsys, "run", "fnopt_cli_broken:loss", "--x0", "1")
    _assert_usage_error(code, err, "cannot import", "broken on import")
    code, _, err = run(capsys, "run", "no_such_module_anywhere:loss", "--x0", "1")
    _assert_usage_error(code, err, "cannot import")


# -- two real processes ---------------------------------------------------------------------


def test_python_m_fnopt_runs_an_own_objective_and_refuses_muon(tmp_path):
    (tmp_path / "my_module.py").write_text(MODULE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "fnopt", "run", "my_module:loss", "--x0", "1,2",
                         "-q"], cwd=tmp_path, env=env, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "done: converged" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "fnopt", "run", "rosenbrock", "-o", "muon"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "optimizer 'muon' cannot run on task 'rosenbrock'" in bad.stderr
