"""One rank of tests/test_fault_distributed.py (run as a script).

Usage: python _fault_distributed_worker.py SCENARIO[,SCENARIO...] RANK WORLD_SIZE PORT OUT_JSON

Each scenario makes the ranks disagree (params of another shape or dtype on rank 1,
shards of different lengths, grads of the wrong shape) and records what this rank saw.
"""

import datetime
import json
import os
import sys
import time
import warnings


def scenario(name, rank):
    import torch

    import fnopt

    def loss(p, x):
        return ((p["w"] - x) ** 2).sum()

    provider = fnopt.distributed.all_reduce(fnopt.grad.torch_func(loss))
    w = {"w": torch.zeros(3, dtype=torch.float64)}
    x = torch.ones(3, dtype=torch.float64)
    stop = fnopt.stop.max_iters(50)
    if name == "shape":
        if rank == 1:
            w = {"w": torch.zeros(4, dtype=torch.float64)}
            x = torch.ones(4, dtype=torch.float64)
        return fnopt.fixed_point(fnopt.sgd(0.1), w, provider, data=[(x,)] * 5, stop=stop)
    if name == "dtype":
        if rank == 1:
            w = {"w": torch.zeros(3, dtype=torch.float32)}
            x = torch.ones(3, dtype=torch.float32)
        return fnopt.fixed_point(fnopt.adam(0.1), w, provider, data=[(x,)] * 5, stop=stop)
    if name == "structure":
        if rank == 1:
            w = {"w": torch.zeros(3, dtype=torch.float64), "b": torch.zeros(1, dtype=torch.float64)}
        return provider(w, x)
    if name == "broadcast":
        return fnopt.distributed.broadcast(torch.zeros(2 + rank))
    if name == "grad_shape":
        def bad(p, xb):
            g = 2 * (p["w"] - xb)
            return (g * g).sum(), {"w": g if rank == 0 else g[:2]}
        return fnopt.fixed_point(fnopt.sgd(0.1), w, fnopt.distributed.all_reduce(bad),
                                 data=[(x,)] * 5, stop=stop)
    if name == "uneven_list":
        n = 5 if rank == 0 else 9
        return fnopt.fixed_point(fnopt.sgd(0.1), w, provider, data=[(x,)] * n, stop=stop)
    if name == "uneven_generator":
        n = 9 if rank == 0 else 4
        batches = ((x,) for _ in range(n))
        return fnopt.fixed_point(fnopt.sgd(0.1), w, provider, data=batches, stop=stop)
    if name == "uneven_epochs":
        n = 3 if rank == 0 else 4
        return fnopt.fixed_point(fnopt.sgd(0.1), w, provider, data=[(x,)] * n, epochs=2,
                                 stop=stop)
    if name == "even_after":  # the group still works after all of the above
        return fnopt.fixed_point(fnopt.sgd(0.1), w, provider, data=[(x,)] * 6, stop=stop)
    raise ValueError(name)


def record(result, seconds, caught):
    out = {"seconds": seconds, "warnings": [str(w.message) for w in caught]}
    if isinstance(result, BaseException):
        cause = result.__cause__
        out.update(ok=False, type=type(result).__name__, message=str(result),
                   cause_type=type(cause).__name__ if cause is not None else None,
                   cause_message=str(cause) if cause is not None else None,
                   failed_ranks=list(getattr(result, "failed_ranks", None)
                                     or getattr(cause, "failed_ranks", ()) or ()))
    elif hasattr(result, "reason"):
        out.update(ok=True, reason=str(result.reason), iterations=result.iterations,
                   params=result.params["w"].tolist())
    else:
        out.update(ok=True, value=repr(result))
    return out


def main():
    scenarios, rank, world, port, out = sys.argv[1:6]
    rank, world = int(rank), int(world)
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=20))
    records = {}
    try:
        for name in scenarios.split(","):
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result = scenario(name, rank)
                except Exception as exc:
                    result = exc
            records[name] = record(result, time.perf_counter() - t0, caught)
            with open(out, "w") as f:
                json.dump(records, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # see tests/_distributed_worker.py: gloo threads can race the exit
