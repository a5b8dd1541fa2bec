"""One rank of the distributed tests (run as a script by tests/test_distributed.py).

Usage: python _distributed_worker.py SCENARIO[,SCENARIO...] RANK WORLD_SIZE PORT OUT_JSON
"""

import datetime
import json
import os
import sys

import numpy as np


def problem():
    """A float64 MLP regression problem: 64 samples, shared by every scenario."""
    import torch

    rng = np.random.default_rng(3)
    x = torch.tensor(rng.standard_normal((64, 4)))
    y = torch.tensor(np.sin(rng.standard_normal((64, 1)) + x.numpy()[:, :1]))
    w = {
        "w1": torch.tensor(rng.standard_normal((4, 8)) / 2),
        "b1": torch.zeros(8, dtype=torch.float64),
        "w2": torch.tensor(rng.standard_normal((8, 1)) / 3),
        "b2": torch.zeros(1, dtype=torch.float64),
    }

    def loss(p, xb, yb):
        h = torch.tanh(xb @ p["w1"] + p["b1"])
        r = h @ p["w2"] + p["b2"] - yb
        return (r * r).mean()

    return x, y, w, loss


def run(scenario, rank, world, shard_x, shard_y):
    """Train on this rank's shard; return what the test compares."""
    import fnopt

    x, y, w, loss = problem()
    del x, y
    base = fnopt.grad.torch_func(loss)
    calls = {"n": 0}

    def grad_fn(p, xb, yb):
        calls["n"] += 1
        if scenario == "raise" and rank == 1 and calls["n"] == 3:
            raise ValueError("boom on rank 1")
        if scenario == "crash" and rank == 1 and calls["n"] == 3:
            os._exit(3)  # dies outside the protocol, like a killed process
        return base(p, xb, yb)

    provider = fnopt.distributed.all_reduce(grad_fn) if world > 1 else grad_fn
    if scenario == "agree_crash":
        return _agree_crash(rank, provider, w, shard_x, shard_y)
    # ranks that initialised differently: broadcast (collective) gives all rank 0's start
    w_local = {k: v + rank for k, v in w.items()}
    w = fnopt.distributed.broadcast(w_local)
    assert all(float((w[k] - w_local[k]).abs().max()) == rank for k in w)
    # four minibatches per epoch on every rank, two epochs
    n = shard_x.shape[0]
    b = n // 4
    batches = [(shard_x[i * b : (i + 1) * b], shard_y[i * b : (i + 1) * b]) for i in range(4)] * 6
    result = fnopt.fixed_point(
        fnopt.sgd(0.1, momentum=0.9),
        w,
        provider,
        stop=fnopt.stop.loss_below(0.2) | fnopt.stop.max_iters(100),
        data=batches,
        record=True,
    )
    # a rank-local criterion (rank 0 wants 3 iterations, the others 1000) made
    # collective with agree(): every rank stops at iteration 3
    local = fnopt.stop.max_iters(3 if rank == 0 else 1000)
    short = fnopt.fixed_point(
        fnopt.sgd(0.1), w, provider, stop=fnopt.distributed.agree(local), data=batches
    )
    return {
        "agree_iterations": short.iterations,
        "agree_reason": str(short.reason),
        "losses": result.history.loss.tolist(),
        "params": {k: v.reshape(-1).tolist() for k, v in result.params.items()},
        "iterations": result.iterations,
        "reason": str(result.reason),
    }


def _agree_crash(rank, provider, w, shard_x, shard_y):
    """Rank 1 dies inside a rank-local criterion wrapped in agree(), at iteration 3:
    the other ranks' agree() collective fails there."""
    import fnopt

    class DieAt3OnRank1(fnopt.stop.Criterion):
        reason = fnopt.Reason.MAX_ITERS

        def check(self, info, state):
            if rank == 1 and info.iteration == 3:
                os._exit(3)
            return (), state

    stop = fnopt.distributed.agree(DieAt3OnRank1()) | fnopt.stop.max_iters(50)
    result = fnopt.fixed_point(fnopt.sgd(0.1), w, provider, stop=stop,
                               data=[(shard_x, shard_y)] * 60)
    return {"iterations": result.iterations, "reason": str(result.reason),
            "converged": result.converged, "message": result.message}


def _record_error(exc):
    cause = exc.__cause__
    result = getattr(exc, "result", None)
    return {
        "ok": False,
        "type": type(exc).__name__,
        "message": str(exc),
        "cause_type": type(cause).__name__ if cause is not None else None,
        "cause_message": str(cause) if cause is not None else None,
        "result_reason": str(result.reason) if result is not None else None,
    }


def _teardown(dist, healthy):
    """Shut the process group down (every exit path): a gloo group still alive at
    interpreter exit can abort the process after its work is done. When every
    scenario succeeded the peers are alive: a barrier first, so that no rank closes
    its connections while another still finishes the last collective."""
    try:
        if healthy:
            dist.barrier()
    finally:
        dist.destroy_process_group()


def main():
    """Run the comma-separated scenarios in order in one process group; after each,
    write every record so far to OUT_JSON (a rank that dies leaves the earlier ones).
    The last record, ``_teardown``, says whether the group was destroyed."""
    scenarios, rank, world, port, out = sys.argv[1:6]
    rank, world = int(rank), int(world)
    import torch.distributed as dist

    if world > 1:
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=20),
        )
    records = {}

    def write():
        with open(out, "w") as f:
            json.dump(records, f)

    try:
        x, y, _, _ = problem()
        # rank r gets every world-th sample: equal shards, so the mean of shard means
        # is the mean over all the data
        shard_x, shard_y = x[rank::world], y[rank::world]
        if world == 1:  # the one-process reference: batches interleave the same samples
            shard_x, shard_y = _interleave(x), _interleave(y)
        for scenario in scenarios.split(","):
            try:
                record = {"ok": True, **run(scenario, rank, world, shard_x, shard_y)}
            except Exception as exc:  # report what every rank saw
                record = _record_error(exc)
            records[scenario] = record
            write()
    finally:
        if world > 1 and dist.is_initialized():
            healthy = bool(records) and all(r["ok"] for r in records.values())
            _teardown(dist, healthy and "agree_crash" not in records)
            records["_teardown"] = {"destroyed": not dist.is_initialized()}
            write()


def _interleave(t):
    """Order samples so that batch i of the full data is the union of batch i of each
    of two shards x[0::2], x[1::2] (used to build the one-process reference)."""
    import torch

    even, odd = t[0::2], t[1::2]
    b = even.shape[0] // 4
    parts = []
    for i in range(4):
        parts += [even[i * b : (i + 1) * b], odd[i * b : (i + 1) * b]]
    return torch.cat(parts)


if __name__ == "__main__":
    main()
    # Everything is written and the group destroyed. Leave without the interpreter's
    # teardown: after a peer died, gloo's background threads can still be unwinding when
    # C++ static destructors run, and the process then aborts ("terminate called without
    # an active exception") although its work is done: a race at exit, not a result.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
