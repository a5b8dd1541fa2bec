"""Distributed faults (issue 19, item 9) on 2 gloo ranks over loopback: params of
another shape, dtype or structure on one rank give a clear error on every rank (no C++
abort), and uneven data shards end together with reason ``data_exhausted`` instead of
hanging until the group's timeout."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import fnopt  # noqa: E402

WORKER = Path(__file__).with_name("_fault_distributed_worker.py")
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # the whole launch; the group's own timeout is 20 s: a hang fails here
SCENARIOS = ["shape", "dtype", "structure", "broadcast", "grad_shape", "uneven_list",
             "uneven_generator", "uneven_epochs", "even_after"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """One launch of 2 ranks running every scenario in order in one process group."""
    tmp = tmp_path_factory.mktemp("fault_distributed")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs, outs = [], []
    for rank in range(2):
        out = tmp / f"rank{rank}.json"
        outs.append(out)
        cmd = [sys.executable, str(WORKER), ",".join(SCENARIOS), str(rank), "2", str(port),
               str(out)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT)[0].decode(errors="replace"))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"the ranks did not finish within {TIMEOUT} s (a hang)")
    records = [json.loads(o.read_text()) if o.exists() else {} for o in outs]
    return records, [p.returncode for p in procs], logs


def _both(ranks, name):
    records, _, logs = ranks
    got = [r.get(name) for r in records]
    assert all(g is not None for g in got), (name, logs)
    return got


def test_every_rank_exits_0_without_an_abort(ranks):
    records, codes, logs = ranks
    assert codes == [0, 0], logs
    assert all("terminate called" not in log for log in logs), logs
    assert all(set(r) == set(SCENARIOS) for r in records), logs


@pytest.mark.parametrize("name", ["shape", "dtype"])
def test_params_of_another_shape_or_dtype_stop_every_rank_with_a_clear_error(ranks, name):
    for rec in _both(ranks, name):
        assert not rec["ok"]
        assert rec["type"] == "OptimizationError"
        assert rec["cause_type"] == "MismatchError"
        assert "differ in structure, shape or dtype" in rec["cause_message"]
        assert "rank 0:" in rec["cause_message"] and "rank 1:" in rec["cause_message"]
        assert rec["failed_ranks"] == [1]
    shape = _both(ranks, "shape")[0]["cause_message"]
    assert "(3,) float64" in shape and "(4,) float64" in shape
    dtype = _both(ranks, "dtype")[0]["cause_message"]
    assert "(3,) float32" in dtype


def test_params_of_another_structure_raise_mismatch_on_every_rank(ranks):
    for rec in _both(ranks, "structure"):
        assert rec["type"] == "MismatchError" and "'b'" in rec["message"]


def test_broadcast_of_mismatched_trees_raises_on_every_rank(ranks):
    for rec in _both(ranks, "broadcast"):
        assert rec["type"] == "MismatchError"
        assert "(2,) float32" in rec["message"] and "(3,) float32" in rec["message"]


def test_grads_of_the_wrong_shape_on_one_rank_fail_every_rank_cleanly(ranks):
    for rec in _both(ranks, "grad_shape"):
        assert rec["type"] == "OptimizationError" and rec["cause_type"] == "RemoteError"
        assert "rank(s) 1" in rec["cause_message"]
        assert "gradient leaf 0 is (2,) float64" in rec["cause_message"]


@pytest.mark.parametrize("name, n", [("uneven_list", 5), ("uneven_generator", 4),
                                     ("uneven_epochs", 6)])
def test_uneven_shards_stop_every_rank_together_after_the_shortest(ranks, name, n):
    a, b = _both(ranks, name)
    for rec in (a, b):
        assert rec["ok"], rec
        assert rec["reason"] == "data_exhausted"
        assert rec["iterations"] == n
    assert a["params"] == b["params"]  # the same averaged steps on both ranks
    if name == "uneven_list":  # known lengths: the policy is announced
        assert any("uneven shards" in w for w in a["warnings"])


def test_the_group_is_usable_after_every_fault(ranks):
    a, b = _both(ranks, "even_after")
    assert a["ok"] and b["ok"] and a["reason"] == b["reason"] == "data_exhausted"
    assert a["iterations"] == 6 and a["warnings"] == []


def test_even_batches_without_a_group_is_the_data():
    data = [1, 2, 3]
    assert fnopt.distributed.even_batches(data) is data
    with pytest.raises(TypeError, match="data: expected an iterable"):
        fnopt.distributed.even_batches(5)
