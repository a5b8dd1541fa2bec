"""fnopt.distributed on 2 processes over loopback with gloo (spawned with timeouts):
data-parallel runs reproduce the one-process trajectory, and a failing rank stops
every rank with a clear error instead of a hang."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fnopt

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

WORKER = Path(__file__).with_name("_distributed_worker.py")
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 90  # seconds for a whole launch; a hang fails the test instead of the suite


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(scenarios, world, tmp_path):
    """Start ``world`` worker processes that run ``scenarios`` in order; return each
    rank's records (scenario -> record; None if the rank wrote nothing)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs, outs = [], []
    for rank in range(world):
        out = tmp_path / f"rank{rank}.json"
        outs.append(out)
        cmd = [sys.executable, str(WORKER), scenarios, str(rank), str(world), str(port), str(out)]
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT)[0].decode(errors="replace"))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"{scenarios}: ranks did not finish within {TIMEOUT} s (a hang)")
    records = [json.loads(o.read_text()) if o.exists() else None for o in outs]
    return records, [p.returncode for p in procs], logs


@pytest.fixture(scope="module")
def reference():
    """The one-process run on all the data, in this process (no process group)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    x, y, _, _ = worker.problem()
    return worker.run("trajectory", 0, 1, worker._interleave(x), worker._interleave(y))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One launch of 2 ranks: a grad_fn that raises on rank 1 (every rank must see the
    error and carry on), then normal training in the same group, then rank 1 dies."""
    return launch("raise,trajectory,crash", 2, tmp_path_factory.mktemp("two_ranks"))


def test_two_ranks_on_half_the_data_follow_the_one_rank_trajectory(reference, two_ranks):
    records, _, logs = two_ranks
    r0, r1 = (rec["trajectory"] for rec in records)
    assert r0["ok"] and r1["ok"], (records, logs)
    # every rank holds bit-identical results and stops at the same iteration
    assert r0 == r1
    assert r0["agree_iterations"] == 3 and r0["agree_reason"] == "max_iters"
    assert r0["iterations"] == reference["iterations"]
    assert r0["reason"] == reference["reason"]
    np.testing.assert_allclose(r0["losses"], reference["losses"], rtol=1e-12, atol=1e-14)
    for k in reference["params"]:
        np.testing.assert_allclose(
            r0["params"][k], reference["params"][k], rtol=1e-10, atol=1e-12, err_msg=k
        )
    # the run did something: the loss fell
    assert reference["losses"][-1] < 0.5 * reference["losses"][0]


def test_a_rank_whose_grad_fn_raises_stops_every_rank_with_a_clear_error(two_ranks):
    records, _, logs = two_ranks
    for rank, rec in enumerate(records):
        rec = rec["raise"]
        assert not rec["ok"], (rank, rec, logs)
        assert rec["type"] == "OptimizationError"
        assert rec["cause_type"] == "RemoteError"
        assert "rank(s) 1" in rec["cause_message"]
        assert "ValueError: boom on rank 1" in rec["cause_message"]


def test_a_rank_that_dies_does_not_hang_the_others(two_ranks):
    records, codes, logs = two_ranks
    assert codes[1] == 3, logs  # the rank that died
    assert "crash" not in records[1]
    rec = records[0]["crash"]
    assert not rec["ok"], (records, logs)
    assert rec["type"] == "OptimizationError"
    assert rec["cause_type"] == "RemoteError"
    assert "collective failed on rank 0" in rec["cause_message"]


def test_every_surviving_rank_destroys_its_group_and_exits_0(two_ranks):
    records, codes, logs = two_ranks
    assert codes[0] == 0, logs  # rank 0 saw a raise and a dead peer, and exits cleanly
    assert records[0]["_teardown"] == {"destroyed": True}, (records, logs)
    assert "_teardown" not in records[1]  # rank 1 died in the crash scenario


@pytest.fixture(scope="module")
def agree_crash(tmp_path_factory):
    """2 ranks; rank 1 dies inside a criterion wrapped in agree() at iteration 3."""
    return launch("agree_crash", 2, tmp_path_factory.mktemp("agree_crash"))


def test_a_rank_that_dies_in_an_agree_criterion_stops_the_others_with_reason_error(
    agree_crash,
):
    records, codes, logs = agree_crash
    assert codes == [0, 3], logs
    rec = records[0]["agree_crash"]
    # a Result with a named reason (it was a raw RuntimeError escaping fixed_point)
    assert rec["ok"], (rec, logs)
    assert rec["reason"] == "error" and not rec["converged"]
    assert rec["iterations"] == 3
    assert "distributed.agree: the collective failed on rank 0" in rec["message"]
    assert records[0]["_teardown"] == {"destroyed": True}


def test_all_reduce_without_a_process_group_is_the_identity():
    grad_fn = fnopt.grad.torch_func(lambda p: (p * p).sum())
    value, grads = fnopt.distributed.all_reduce(grad_fn)(torch.tensor([1.0, 2.0]))
    assert float(value) == 5.0
    assert grads.tolist() == [2.0, 4.0]
    assert fnopt.distributed.rank() == 0 and fnopt.distributed.world_size() == 1


def test_all_reduce_and_agree_validate_their_arguments():
    with pytest.raises(TypeError, match="grad_fn"):
        fnopt.distributed.all_reduce(3)
    with pytest.raises(TypeError, match="criterion"):
        fnopt.distributed.agree("max_iters")


def test_agree_without_a_process_group_is_the_criterion():
    rule = fnopt.distributed.agree(fnopt.stop.max_iters(3)) | fnopt.stop.loss_below(-1.0)
    r = fnopt.fixed_point(
        fnopt.sgd(0.1), np.ones(2), lambda p: (p @ p, 2 * p), stop=rule
    )
    assert r.iterations == 3 and r.reason == "max_iters"


def _load_demo():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "distributed_mlp_demo", ROOT / "demos" / "distributed_mlp.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_runs_as_one_process(tmp_path):
    summary = _load_demo().main(["--fast", "--out", str(tmp_path)])
    assert summary["world_size"] == 1 and summary["iterations"] == 40
    assert summary["final_loss"] < 0.2 * summary["first_loss"]
    assert not torch.distributed.is_initialized()  # the demo cleans up after itself


def test_demo_runs_under_torchrun_with_two_ranks(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():  # pragma: no cover
        pytest.skip("torchrun not installed next to this python")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--nproc_per_node=2", f"--master_port={free_port()}",
           str(ROOT / "demos" / "distributed_mlp.py"), "--fast", "--out", str(tmp_path)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    # every rank exits 0: no abort at exit from a process group left alive
    assert out.returncode == 0, out.stdout + out.stderr
    assert "terminate called" not in out.stderr, out.stderr
    assert "2 rank(s), gloo on cpu: 40 iterations" in out.stdout
    assert (tmp_path / "distributed-mlp-loss.png").exists()


@pytest.fixture
def group_of_one():
    """A one-process gloo group in this process, destroyed afterwards."""
    import datetime

    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1,
        timeout=datetime.timedelta(seconds=20),
    )
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def test_failures_in_a_group_of_one_on_the_host_and_device_paths(group_of_one):
    from fnopt.distributed import RemoteError, _reduce

    def bad(p):
        raise KeyError("missing batch")

    params = {"w": torch.ones(2, dtype=torch.float64), "s": torch.ones((), dtype=torch.float32)}
    with pytest.raises(RemoteError, match=r"rank\(s\) 0 \(rank 0: KeyError: 'missing batch'\)"):
        fnopt.distributed.all_reduce(bad)(params)
    good = fnopt.distributed.all_reduce(lambda p: (p["w"].sum(), {"w": 2 * p["w"], "s": p["s"]}))
    value, grads = good(params)
    assert float(value) == 2.0 and grads["w"].tolist() == [2.0, 2.0] and float(grads["s"]) == 1
    # the device path (used for CUDA tensors) reads no flag: a failure poisons the results
    leaves = [torch.ones(2, dtype=torch.float64), torch.ones((), dtype=torch.float32)]
    for error, finite in ((None, True), (ValueError("x"), False)):
        v, g, failed = _reduce(torch.tensor(1.0, dtype=torch.float64), leaves, 1, 0, error,
                               None, read_flags=False)
        assert failed is None
        assert all(bool(torch.isfinite(t).all()) == finite for t in [v, *g])
        assert [t.dtype for t in g] == [torch.float64, torch.float32]


def _readme_distributed_snippet():
    import re

    text = (ROOT / "docs" / "distributed.md").read_text()  # the docs site's page
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    snippet = [b for b in blocks if "init_process_group" in b]
    assert len(snippet) == 1, blocks
    return snippet[0]


def test_readme_distributed_snippet_runs_and_destroys_its_group(monkeypatch):
    # run as written in a group of one (env:// rendezvous), with a tiny problem
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    x = torch.linspace(-1.0, 1.0, 16, dtype=torch.float64)
    namespace = {
        "loss": lambda p, xb, yb: ((p["w"] * xb - yb) ** 2).mean(),
        "params": {"w": torch.zeros((), dtype=torch.float64)},
        "my_shard": [(x, 0.3 * x)] * 1000,
    }
    try:
        exec(_readme_distributed_snippet(), namespace)
        assert namespace["result"].reason == "loss_below"
        assert not torch.distributed.is_initialized()  # torn down by the snippet itself
    finally:
        if torch.distributed.is_initialized():  # pragma: no cover - only when it fails
            torch.distributed.destroy_process_group()


def test_demo_destroys_its_group_when_the_run_raises(monkeypatch, tmp_path):
    demo = _load_demo()

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(fnopt, "fixed_point", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        demo.main(["--fast", "--out", str(tmp_path)])
    assert not torch.distributed.is_initialized()
