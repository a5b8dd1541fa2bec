"""Data-parallel training of a small MLP with fnopt.distributed.

    torchrun --nproc_per_node=2 demos/distributed_mlp.py [--iters N] [--out DIR] [--fast]
    python demos/distributed_mlp.py                   # one process, same code path

Every rank builds the same synthetic regression data (a seeded teacher network), keeps
every ``world_size``-th sample as its shard, and runs the *unchanged* fnopt loop with
a gradient provider wrapped in :func:`fnopt.distributed.all_reduce`: the loss and the
gradients are averaged over the ranks, so all ranks take identical steps and stop at
the same iteration. The time limit is wrapped in :func:`fnopt.distributed.agree`, since
elapsed time is a rank-local fact. ``gloo`` on CPU, ``nccl`` when every rank has a GPU.
Rank 0 prints the result and saves the loss curve into ``--out``; ``main(argv)``
returns the result as a dict.
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fnopt
from fnopt import plots


def _setup() -> tuple[Any, str]:
    """Join the process group torchrun describes, or make a one-process group."""
    import torch
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    timeout = datetime.timedelta(seconds=60)
    if "RANK" in os.environ:  # launched by torchrun
        local = int(os.environ.get("LOCAL_RANK", 0))
        if use_cuda and local >= torch.cuda.device_count():
            backend, use_cuda = "gloo", False
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=timeout)
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dist.init_process_group(
            backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1, timeout=timeout
        )
    device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
    return device, backend


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=300, help="iteration limit")
    parser.add_argument("--out", default="demo-output/distributed_mlp",
                        help="folder for the PNG file (written by rank 0)")
    parser.add_argument("--fast", action="store_true", help="a short run (for tests)")
    args = parser.parse_args(argv)
    iters = 40 if args.fast else args.iters

    import torch
    import torch.distributed as dist

    device, backend = _setup()
    ok = False
    try:
        rank, world = fnopt.distributed.rank(), fnopt.distributed.world_size()
        task = fnopt.tasks.mlp((8, 32, 1), activation="tanh", backend="torch",
                               dtype="float64", n_samples=512, seed=0)
        x, y = task.data  # type: ignore[misc]
        x, y = x[rank::world].to(device), y[rank::world].to(device)
        params = fnopt.tree.map(lambda t: t.to(device), task.init_params)

        def loss(p: Any, xb: Any, yb: Any) -> Any:
            return task.loss(p, xb, yb)

        grad_fn = fnopt.distributed.all_reduce(fnopt.grad.torch_func(loss))
        # full-shard batches: the averaged loss is the loss on all 512 samples
        batches = ((x, y) for _ in range(iters + 1))
        stop = (
            fnopt.stop.loss_below(1e-3)
            | fnopt.stop.max_iters(iters)
            | fnopt.distributed.agree(fnopt.stop.time_limit(120.0))
        )
        result = fnopt.fixed_point(fnopt.adam(1e-2), params, grad_fn, stop=stop, data=batches,
                                   record=True)
        summary = {
            "rank": rank,
            "world_size": world,
            "backend": backend,
            "device": str(device),
            "iterations": result.iterations,
            "reason": str(result.reason),
            "first_loss": float(result.history.loss[0]),  # type: ignore[union-attr]
            "final_loss": result.value,
        }
        summary["files"] = []
        if rank == 0:
            print(
                f"{world} rank(s), {backend} on {device}: {result.iterations} iterations, "
                f"loss {summary['first_loss']:.4f} -> {result.value:.4f} ({result.reason}); "
                f"{len(x)} samples per rank"
            )
            png = Path(args.out) / "distributed-mlp-loss.png"
            summary["files"] = plots.save_all([(png, lambda: plots.loss_curves(
                {f"adam, {world} rank(s)": result.history.loss},  # type: ignore[union-attr]
                png, title="Data-parallel MLP: averaged loss per iteration"))])
        # every rank holds the same params: check it with one more collective
        flat = torch.cat([t.reshape(-1) for t in fnopt.tree.leaves(result.params)])
        spread = flat.clone()
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
        summary["max_param_difference_between_ranks"] = float((spread - flat).abs().max())
        ok = True
        return summary
    finally:
        _teardown(ok)


def _teardown(ok: bool) -> None:
    """Shut the process group down on every exit path: a gloo group still alive at
    interpreter exit can abort a rank ("terminate called without an active
    exception") after its work is done. On success every rank first meets at a
    barrier, so that none closes its connections while another still finishes the
    last collective; after a failure the peers may be gone, so no barrier."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    try:
        if ok:
            dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
