"""The command line: every sub-command, --help, bad arguments and exit codes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fnopt import cli

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _field(out: str, name: str) -> str:
    m = re.search(rf"^  {re.escape(name)}\s+(.+)$", out, re.M)
    assert m, f"no {name!r} line in:\n{out}"
    return m.group(1)


# -- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--help"], ["run", "compare", "tour"]),
        (["run", "--help"], ["--optimizer", "--backend", "--tol", "--lr", "--max-iters"]),
        (["compare", "--help"], ["--optimizers", "--out", "--no-plots"]),
        (["tour", "--help"], ["--out", "--fast", "--only"]),
    ],
)
def test_help(capsys, argv, words):
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.startswith("usage: fnopt")
    for w in words:
        assert w in out


# -- run ---------------------------------------------------------------------------------------


def test_run_prints_progress_and_summary(capsys):
    code, out, _ = run(capsys, "run", "rosenbrock", "--optimizer", "sgd", "--max-iters", "60")
    assert code == 0
    progress = re.findall(r"^iter\s+(\d+)\s+loss (\S+)", out, re.M)
    assert [int(i) for i, _ in progress] == [0, 1, 2, 5, 10, 20, 50]
    assert float(progress[0][1]) == 1.0  # Rosenbrock at the origin
    assert _field(out, "iterations") == "60"
    assert _field(out, "reason").startswith("max_iters")
    assert float(_field(out, "loss")) < 1.0
    assert _field(out, "time").endswith(" s")
    assert "not converged" in out


def test_run_lbfgs_torch_reaches_the_minimum(capsys):
    code, out, _ = run(capsys, "run", "rosenbrock", "--optimizer", "lbfgs", "--backend",
                       "torch", "--tol", "1e-10", "--quiet")
    assert code == 0
    assert "done: converged" in out
    assert _field(out, "reason").startswith("grad_norm_below")
    assert float(_field(out, "|grad|")) <= 1e-10
    params = np.array(eval(_field(out, "params")))
    np.testing.assert_allclose(params, [1.0, 1.0], atol=1e-8)
    assert "iter " not in out  # --quiet


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        (["linear", "-o", "bfgs"], lambda out: _field(out, "reason").startswith("grad_norm")),
        (["mlp", "-o", "adam", "--max-iters", "50", "--dtype", "float32"],
         lambda out: _field(out, "iterations") == "50"),
        (["iris", "-o", "lbfgs", "--max-iters", "100"],
         lambda out: float(re.search(r"held-out accuracy (\S+)", out).group(1)) >= 0.8),
        (["rosenbrock", "-o", "newton", "--dim", "4", "--seed", "1"],
         lambda out: np.allclose(eval(_field(out, "params")), 1.0, atol=1e-6)),
        (["rosenbrock", "-o", "adam", "--lr", "0.05", "--loss-below", "1e-3"],
         lambda out: _field(out, "reason").startswith("loss_below") and "0.05" in out),
        (["rosenbrock", "-o", "sgd", "--time-limit", "0.05", "--max-iters", "100000000",
          "--tol", "0"], lambda out: _field(out, "reason").startswith("time_limit")),
    ],
)
def test_run_tasks_and_options(capsys, argv, check):
    code, out, _ = run(capsys, "run", *argv, "--quiet")
    assert code == 0, out
    assert check(out), out


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_run_failure_exits_1(capsys):
    code, out, _ = run(capsys, "run", "rosenbrock", "-o", "sgd", "--lr", "1.0", "--quiet")
    assert code == 1
    assert _field(out, "reason").startswith("non_finite")


# -- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required"),
        (["fly"], "invalid choice"),
        (["run"], "required: task"),
        (["run", "rosenbrok"], "invalid choice: 'rosenbrok'"),
        (["run", "rosenbrock", "--backend", "jax"], "invalid choice: 'jax'"),
        (["run", "rosenbrock", "--dtype", "float16"], "invalid choice"),
        (["run", "rosenbrock", "--lr", "-1"], "expected a finite number > 0"),
        (["run", "rosenbrock", "--lr", "fast"], "expected a number"),
        (["run", "rosenbrock", "--tol", "nan"], "expected a finite number >= 0"),
        (["run", "rosenbrock", "--max-iters", "-3"], "expected an integer >= 0"),
        (["run", "rosenbrock", "--dim", "1"], "expected an integer >= 2"),
        (["run", "rosenbrock", "--optimizer", "adamx"], "unknown optimizer 'adamx'"),
        (["run", "rosenbrock", "--optimizer", "descent"], "unknown optimizer 'descent'"),
        (["run", "rosenbrock", "-o", "lbfgs", "--lr", "0.1"], "takes no learning rate"),
        (["run", "mlp", "-o", "newton"], "needs a Hessian"),
        (["run", "rosenbrock", "--frobnicate"], "unrecognized arguments"),
        (["compare", "rosenbrock", "--optimizers", ","], "at least one"),
        (["compare", "rosenbrock", "--optimizers", "sgd,sgd"], "repeat"),
        (["compare", "rosenbrock", "--optimizers", "sgd,nope"], "unknown optimizer 'nope'"),
        (["tour", "--only", "no_such_demo"], "no demo named no_such_demo"),
        (["tour", "--demos", "/no/such/folder"], "is not a folder"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "error" in err


def test_unknown_optimizer_lists_the_available_ones(capsys):
    _, _, err = run(capsys, "run", "rosenbrock", "-o", "adamx")
    listed = err.split("available in this fnopt:")[1]
    for name in ("sgd", "adam", "lbfgs"):
        assert name in listed
    assert "line_search" not in listed  # a building block, not a ready optimizer


def test_make_optimizer_defaults():
    _, lr = cli.make_optimizer("sgd", "rosenbrock")
    assert lr == 1e-3
    _, lr = cli.make_optimizer("adam", "linear", lr=0.3)
    assert lr == 0.3
    _, lr = cli.make_optimizer("lbfgs", "rosenbrock")
    assert lr is None


# -- compare -------------------------------------------------------------------------------


def test_compare_prints_a_table_and_saves_plots(capsys, tmp_path):
    code, out, _ = run(capsys, "compare", "rosenbrock", "--optimizers", "sgd,adam,lbfgs",
                       "--max-iters", "300", "--out", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("optimizer"))
    assert lines[header].split()[:5] == ["optimizer", "lr", "iters", "evals", "loss"]
    rows = {line.split()[0]: line.split() for line in lines[header + 2:header + 5]}
    assert set(rows) == {"sgd", "adam", "lbfgs"}
    assert rows["sgd"][2] == "300" and rows["sgd"][6] == "max_iters"
    assert rows["lbfgs"][6] == "grad_norm_below"
    assert float(rows["lbfgs"][4]) < 1e-10 < float(rows["sgd"][4])
    for name in ("rosenbrock-loss.png", "rosenbrock-paths.png"):
        f = tmp_path / name
        assert f"saved {f}" in out
        data = f.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000


def test_compare_without_a_2d_start_saves_only_the_loss_plot(capsys, tmp_path):
    code, _, _ = run(capsys, "compare", "mlp", "--optimizers", "sgd,adam",
                       "--max-iters", "20", "--backend", "torch", "--out", str(tmp_path))
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp-loss.png"]


def test_compare_no_plots(capsys, tmp_path):
    code, out, _ = run(capsys, "compare", "linear", "--optimizers", "sgd",
                       "--out", str(tmp_path / "x"), "--no-plots")
    assert code == 0 and "saved" not in out
    assert not (tmp_path / "x").exists()


# -- tour ----------------------------------------------------------------------------------


def test_tour_runs_each_demo_and_reports_failures(capsys, tmp_path):
    demos = tmp_path / "demos"
    demos.mkdir()
    (demos / "good.py").write_text(
        "import argparse, pathlib\n"
        "from helper_mod import VALUE\n"  # demos may import their neighbours
        "def main(argv):\n"
        "    a = argparse.ArgumentParser(); a.add_argument('--out'); "
        "a.add_argument('--fast', action='store_true')\n"
        "    args = a.parse_args(argv)\n"
        "    p = pathlib.Path(args.out); p.mkdir(parents=True)\n"
        "    (p / 'x.png').write_bytes(b'png')\n"
        "    print('fast' if args.fast else 'slow', VALUE)\n"
        "    return {}\n"
    )
    (demos / "bad.py").write_text("def main(argv):\n    raise RuntimeError('boom')\n")
    (demos / "_helper.py").write_text("raise SystemExit('private modules are not demos')\n")
    (demos / "helper_mod.py").write_text("VALUE = 42\ndef main(argv):\n    return {}\n")
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "tour", "--demos", str(demos), "--out", str(out_dir), "--fast")
    assert code == 1
    assert "fast 42" in out
    assert "RuntimeError: boom" in err
    assert re.search(r"FAILED\s+bad", out) and re.search(r"ok\s+good", out)
    assert "2/3 demos ok" in out
    assert (out_dir / "good" / "x.png").exists()

    code, out, _ = run(capsys, "tour", "--demos", str(demos), "--out", str(out_dir / "2"),
                       "--only", "good")
    assert code == 0 and "slow 42" in out and "1/1 demos ok" in out


def test_tour_runs_the_real_demos(capsys, tmp_path):
    code, out, _ = run(capsys, "tour", "--demos", str(ROOT / "demos"), "--out", str(tmp_path),
                       "--fast", "--only", "mlp,torch_module")
    assert code == 0, out
    pngs = sorted(tmp_path.rglob("*.png"))
    assert {p.parent.name for p in pngs} == {"mlp", "torch_module"}
    for p in pngs:
        assert p.read_bytes().startswith(PNG) and p.stat().st_size > 1000


def test_python_dash_m_fnopt(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fnopt", "run", "rosenbrock", "-o", "bfgs", "-q"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "done: converged" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "fnopt", "run", "nope"],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_console_script(tmp_path):
    script = shutil.which("fnopt", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the fnopt console script is not installed in this environment")
    proc = subprocess.run([script, "compare", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, check=False)
    assert proc.returncode == 0 and "--optimizers" in proc.stdout
