"""Data-parallel gradients over ``torch.distributed``.

fnopt stays pure and lets PyTorch do the communication: :func:`all_reduce` wraps a
gradient provider so that the loss and the gradients it returns are *averaged over the
process group*. Every rank then holds the same value and gradient, takes the same
step from the same params and reaches the same stopping decision, so any fnopt
optimizer and :func:`fnopt.fixed_point` run data-parallel unchanged::

    dist.init_process_group("gloo")            # "nccl" for CUDA tensors
    try:
        grad_fn = fnopt.distributed.all_reduce(fnopt.grad.torch_func(loss))
        result = fnopt.fixed_point(fnopt.sgd(0.1), params, grad_fn, data=my_shard, stop=...)
        dist.barrier()
    finally:
        dist.destroy_process_group()

Each rank passes its own shard of the data (batches of equal size, so the mean of the
per-rank means is the mean over all the data). All leaves of one dtype travel in one
flat buffer: one ``all_reduce`` per dtype per evaluation.

Failures. A rank whose ``grad_fn`` raises still joins the collective, with a flag set,
so no rank is left waiting. With CPU tensors (``gloo``) every rank then raises
:class:`RemoteError` naming the failed rank(s) and their exception messages (the
failed rank chains its own exception), and :func:`fnopt.fixed_point` stops with an
``OptimizationError`` on every rank. With CUDA tensors reading the flags would be a
host synchronisation inside the step, so instead the averaged loss and gradients
become NaN on the device: the failed rank raises :class:`RemoteError`, the others stop
with reason ``non_finite`` at the same iteration. A rank that dies or stalls outside
``grad_fn`` cannot be helped this way: set a ``timeout`` in ``init_process_group``,
after which the collective on the other ranks fails. In :func:`all_reduce` and
:func:`broadcast` that raises :class:`RemoteError` (inside :func:`fnopt.fixed_point`:
``OptimizationError`` from it); in an :func:`agree` criterion the loop stops at that
iterate with reason ``error`` and a message naming the failed collective
(``OptimizationError`` with ``on_failure="raise"``).

Shut the group down on every exit path, ``try: ... finally:
dist.destroy_process_group()`` (after a ``dist.barrier()`` on the success path): a
``gloo`` group still alive at interpreter exit can abort the process
("terminate called without an active exception") after it has done its work.

Agreement before the first collective. Params of another structure, shape or dtype
on one rank would make the ranks' buffers differ, which aborts a ``gloo`` process in
C++ ("terminate called") or hangs. So :func:`all_reduce` and :func:`broadcast` first
exchange a fixed-size signature of the params (a hash of the tree structure, shapes
and dtypes) whenever it differs from the last one the group agreed on (the first call
included), and on a mismatch every rank raises :class:`MismatchError` naming what each
rank holds, before any buffer of the params is sent.

Uneven shards. A rank whose data runs out leaves the loop while the others wait in
the next collective. :func:`even_batches` prevents that: the ranks agree on how many
batches to take, and every rank stops after the shortest shard with reason
``data_exhausted``, at the same iteration (data with a ``len()`` on every rank: the
lengths are exchanged once and a ``RuntimeWarning`` names them when they differ; other
iterables: one tiny ``all_reduce`` per batch says whether every rank still has one).
:func:`fnopt.fixed_point` applies it itself when ``grad_fn`` is an :func:`all_reduce`
provider and a process group is initialised, so uneven shards end in seconds, not at
the group's timeout. Wrap the data yourself when ``grad_fn`` wraps the provider.

Stopping decisions depend only on the averaged loss and gradient norm and the
iteration count, which are identical on every rank. A ``time_limit`` criterion or a
``callback`` reads rank-local facts; wrap them with :func:`agree` so that all ranks
stop together.

``torch`` is imported only when these functions are called.
"""

from __future__ import annotations

import hashlib
import itertools
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import optree

from fnopt import backend as _backend
from fnopt._base import GradFn, Params, check_callable
from fnopt.stop import Criterion, Info, Reason

__all__ = [
    "all_reduce", "agree", "broadcast", "even_batches", "RemoteError", "MismatchError", "rank",
    "world_size",
]


class RemoteError(RuntimeError):
    """Raised on every rank when some rank failed during a collective evaluation.

    Attributes:
      failed_ranks: the ranks whose ``grad_fn`` raised (empty when the collective
        itself failed, e.g. a rank died or timed out).
    """

    def __init__(self, message: str, failed_ranks: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.failed_ranks = failed_ranks


class MismatchError(RemoteError, ValueError):
    """Raised on every rank when the ranks' params differ in structure, shape or dtype
    (found before any of their buffers is sent).

    Attributes:
      failed_ranks: the ranks whose params differ from rank 0's.
    """


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def rank(group: Any = None) -> int:
    """This process's rank in ``group`` (0 when torch.distributed is not initialised)."""
    dist = _dist()
    return int(dist.get_rank(group)) if dist.is_available() and dist.is_initialized() else 0


def world_size(group: Any = None) -> int:
    """The number of ranks in ``group`` (1 when torch.distributed is not initialised)."""
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size(group))
    return 1


def all_reduce(grad_fn: GradFn, group: Any = None) -> GradFn:
    """A gradient provider whose value and gradients are averaged over ``group``.

    .. math::
        (\\bar f, \\bar g) = \\frac{1}{R}\\sum_{r=0}^{R-1} \\text{grad\\_fn}_r(p, b_r)

    where rank :math:`r` evaluates ``grad_fn`` on its own batch :math:`b_r` and
    :math:`R` is the group size. The result is identical on every rank.

    Args:
      grad_fn: ``grad_fn(params, *batch) -> (value, grads)`` on torch tensors (CPU
        tensors with the ``gloo`` backend, CUDA tensors with ``nccl``).
      group: a process group (default: the world group). ``torch.distributed`` must
        be initialised before the provider is first called.

    Returns:
      ``provider(params, *batch) -> (value, grads)``, averaged over the group. If any
      rank's ``grad_fn`` raises, every rank raises :class:`RemoteError`. The averaged
      tensors carry no autograd graph (``differentiable=True`` loops are not
      data-parallel).

    >>> import torch, fnopt
    >>> g = all_reduce(fnopt.grad.torch_func(lambda p: (p ** 2).sum()))
    >>> g(torch.tensor([3.0]))  # one process, no process group: unchanged
    (tensor(9.), tensor([6.]))
    """
    check_callable(grad_fn, "grad_fn")
    return _AllReduce(grad_fn, group)


class _AllReduce:
    """The provider :func:`all_reduce` returns; it remembers the params signature the
    group last agreed on, so the agreement costs one collective per new signature."""

    __slots__ = ("agreed", "grad_fn", "group")

    def __init__(self, grad_fn: GradFn, group: Any) -> None:
        self.grad_fn = grad_fn
        self.group = group
        self.agreed: str | None = None

    def __repr__(self) -> str:
        return f"distributed.all_reduce({self.grad_fn!r})"

    def __call__(self, params: Params, *batch: Any) -> tuple[Any, Any]:
        grad_fn, group = self.grad_fn, self.group
        dist = _dist()
        if not (dist.is_available() and dist.is_initialized()):
            return grad_fn(params, *batch)
        leaves, spec = optree.tree_flatten(params)
        if _backend.of_leaves(leaves) is not _backend.TORCH:
            raise TypeError("params: distributed.all_reduce needs torch tensors")
        sig = _signature(spec, leaves)
        if sig != self.agreed:
            _agree_on(sig, leaves[0].device, group, "distributed.all_reduce")
            self.agreed = sig
        return _evaluate(grad_fn, params, batch, leaves, spec, group)


def _evaluate(grad_fn: GradFn, params: Params, batch: tuple[Any, ...], leaves: list[Any],
              spec: Any, group: Any) -> tuple[Any, Any]:
    """``grad_fn`` on this rank, averaged over the group (the ranks agree on params)."""
    dist = _dist()
    n_ranks = dist.get_world_size(group)
    me = dist.get_rank(group)
    error: BaseException | None = None
    try:
        value, grads = grad_fn(params, *batch)
        g_leaves = spec.flatten_up_to(grads)
        _check_grads(g_leaves, leaves)
        value = _backend.TORCH.as_0d(value, leaves[0])
    except Exception as exc:  # join the collective anyway, with the flag set
        error = exc
        value = leaves[0].new_zeros(())
        g_leaves = [x.new_zeros(x.shape) for x in leaves]
    try:
        value, g_leaves, failed = _reduce(
            value, g_leaves, n_ranks, me, error, group, read_flags=value.device.type == "cpu"
        )
    except RuntimeError as exc:
        raise RemoteError(
            f"distributed.all_reduce: the collective failed on rank {me} ({exc}); "
            "another rank probably stopped, crashed or timed out"
        ) from exc
    if failed is None:  # CUDA: failures show as NaN, read by the loop's check
        if error is not None:
            raise RemoteError(
                f"distributed.all_reduce: grad_fn raised on rank {me} "
                f"({type(error).__name__}: {error}); the other ranks see a NaN loss",
                (me,),
            ) from error
        return value, spec.unflatten(g_leaves)
    if failed:
        try:
            messages = _gather_messages(error, me, n_ranks, group)
        except RuntimeError as exc:  # a rank died between the two collectives
            messages = [f"(message lost: {exc})"] * n_ranks
        detail = "; ".join(f"rank {r}: {messages[r]}" for r in failed)
        raise RemoteError(
            f"distributed.all_reduce: grad_fn raised on rank(s) "
            f"{', '.join(map(str, failed))} ({detail}); stopping every rank",
            tuple(failed),
        ) from error
    return value, spec.unflatten(g_leaves)


def _check_grads(g_leaves: list[Any], leaves: list[Any]) -> None:
    """Grads that would not fit the agreed buffers are this rank's failure (the ranks
    then still exchange buffers of the agreed sizes)."""
    for i, (g, x) in enumerate(zip(g_leaves, leaves)):
        if getattr(g, "shape", None) != x.shape or getattr(g, "dtype", None) != x.dtype:
            raise ValueError(
                f"grad_fn: gradient leaf {i} is {_describe(g)}, expected the params "
                f"leaf's {_describe(x)}"
            )


def _describe(x: Any) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{tuple(x.shape)} {str(x.dtype).replace('torch.', '')}"
    return type(x).__name__


def _signature(spec: Any, leaves: list[Any]) -> str:
    """What every rank's params must share: the tree structure, shapes and dtypes."""
    return f"{spec}: " + ", ".join(_describe(x) for x in leaves)


def _agree_on(sig: str, device: Any, group: Any, who: str) -> None:
    """Every rank checks that every rank has signature ``sig`` (one fixed-size
    collective, so it cannot itself mismatch); on a difference every rank raises
    :class:`MismatchError` naming each rank's params."""
    import torch

    dist = _dist()
    h = int.from_bytes(hashlib.blake2b(sig.encode(), digest_size=7).digest(), "little")
    t = torch.tensor([h, -h], dtype=torch.int64, device=device)
    try:
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)  # max(h) and -min(h)
    except RuntimeError as exc:
        raise RemoteError(f"{who}: the collective failed on rank {dist.get_rank(group)} "
                          f"({exc}); another rank probably stopped, crashed or timed out"
                          ) from exc
    if t.tolist() == [h, -h]:
        return
    sigs: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(sigs, sig, group=group)
    differ = tuple(r for r, x in enumerate(sigs) if x != sigs[0])
    detail = "; ".join(f"rank {r}: {_short(str(x))}" for r, x in enumerate(sigs))
    raise MismatchError(
        f"{who}: the ranks' params differ in structure, shape or dtype ({detail}); every "
        "rank must pass params of the same structure, shapes and dtypes",
        differ,
    )


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def broadcast(tree: Any, src: int = 0, group: Any = None) -> Any:
    """Rank ``src``'s copy of a pytree of tensors, on every rank (e.g. the start point,
    so that ranks that initialised with different seeds agree).

    Pure: the result is new tensors; ``tree`` itself is not modified. Without an
    initialised process group it returns a copy of ``tree``. Trees of another
    structure, shape or dtype on some rank raise :class:`MismatchError` on every rank
    before anything is sent.

    >>> import torch
    >>> broadcast({"w": torch.ones(2)})
    {'w': tensor([1., 1.])}
    """
    leaves, spec = optree.tree_flatten(tree)
    if _backend.of_leaves(leaves, what="tree") is not _backend.TORCH:
        raise TypeError("tree: distributed.broadcast needs torch tensors")
    out = [x.detach().clone() for x in leaves]
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        _agree_on(_signature(spec, leaves), leaves[0].device, group, "distributed.broadcast")
        try:
            for x in out:
                dist.broadcast(x, src=src, group=group)
        except RuntimeError as exc:
            raise RemoteError(
                f"distributed.broadcast: the collective failed on rank "
                f"{dist.get_rank(group)} ({exc}); another rank probably stopped, crashed "
                "or timed out"
            ) from exc
    return spec.unflatten(out)


def _reduce(
    value: Any,
    g_leaves: list[Any],
    n_ranks: int,
    me: int,
    error: BaseException | None,
    group: Any,
    *,
    read_flags: bool,
) -> tuple[Any, list[Any], list[int] | None]:
    """Average value and grads over the group, one flat buffer per dtype; the first
    buffer also carries one failure flag per rank. The failed ranks are read on the
    host for CPU tensors; for device tensors (``None``) a failure turns the results
    into NaN instead, without a synchronisation."""
    import torch

    dist = _dist()
    flags = value.new_zeros(n_ranks)
    if error is not None:
        flags[me] = 1.0
    tensors = [flags, value.reshape(1), *g_leaves]
    by_dtype: dict[Any, list[int]] = {}
    for i, t in enumerate(tensors):
        by_dtype.setdefault(t.dtype, []).append(i)
    out: list[Any] = list(tensors)
    for idx in by_dtype.values():
        flat = torch.cat([tensors[i].detach().reshape(-1) for i in idx])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        offset = 0
        for i in idx:
            n = tensors[i].numel()
            out[i] = flat[offset : offset + n].view(tensors[i].shape)
            offset += n
    flags_sum, value_sum, grads_sum = out[0], out[1], out[2:]
    inv = 1.0 / n_ranks
    value_mean = (value_sum * inv).reshape(())
    grads_mean = [g * inv for g in grads_sum]
    if read_flags:
        return value_mean, grads_mean, [r for r, f in enumerate(flags_sum.tolist()) if f > 0]
    poison = torch.where(flags_sum.sum() > 0, float("nan"), 1.0).to(value_mean.dtype)
    return value_mean * poison, [g * poison.to(g.dtype) for g in grads_mean], None


def _gather_messages(
    error: BaseException | None, me: int, n_ranks: int, group: Any
) -> list[str]:
    dist = _dist()
    mine = "" if error is None else f"{type(error).__name__}: {error}"
    messages: list[Any] = [None] * n_ranks
    dist.all_gather_object(messages, mine, group=group)
    return [str(m) for m in messages]


@attrs.frozen(slots=True, repr=False)
class _Agree(Criterion):
    """Holds on every rank as soon as ``inner`` holds on any rank."""

    inner: Criterion
    group: Any = None

    @property
    def reason(self) -> Reason:  # type: ignore[override]
        return self.inner.leaves()[0].reason

    @property
    def reads(self) -> frozenset[str]:  # type: ignore[override]
        return self.inner.reads

    def init(self) -> Any:
        return self.inner.init()

    def leaves(self) -> tuple[Criterion, ...]:
        return self.inner.leaves()

    def best(self, state: Any) -> tuple[Any, float] | None:
        return self.inner.best(state)

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        import torch

        fired, state = self.inner.check(info, state)
        dist = _dist()
        if not (dist.is_available() and dist.is_initialized()):
            return fired, state
        # one small collective per iteration: which of the leaf criteria fired anywhere
        leaves = self.inner.leaves()
        mask = torch.tensor([1.0 if c in fired else 0.0 for c in leaves], dtype=torch.float64)
        try:
            if dist.get_backend(self.group) == "nccl":
                mask = mask.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(mask, op=dist.ReduceOp.MAX, group=self.group)
            flags = mask.tolist()
        except RuntimeError as exc:  # a rank died or timed out: stop here, named
            me = dist.get_rank(self.group)
            return (_CollectiveFailed(
                f"distributed.agree: the collective failed on rank {me} ({exc}); another "
                "rank probably stopped, crashed or timed out"
            ),), state
        return tuple(c for c, m in zip(leaves, flags) if m > 0), state

    def describe(self, info: Info) -> str:
        return self.inner.describe(info)

    def __repr__(self) -> str:
        return f"agree({self.inner!r})"


@attrs.frozen(slots=True)
class _CollectiveFailed(Criterion):
    """What :class:`_Agree` reports as fired when its collective fails: the loop then
    stops at this iterate with reason ``error`` and this message (and raises
    ``OptimizationError`` carrying the Result with ``on_failure="raise"``)."""

    message: str

    @property
    def reason(self) -> Reason:  # type: ignore[override]
        return Reason.ERROR

    def check(self, info: Info, state: Any) -> tuple[tuple[Criterion, ...], Any]:
        return (), state

    def describe(self, info: Info) -> str:
        return self.message


def agree(criterion: Criterion, group: Any = None) -> Criterion:
    """``criterion`` made collective: it holds on every rank when it holds on any.

    For criteria that read rank-local facts (``time_limit``, or anything in a
    callback): one tiny ``all_reduce`` per iteration makes every rank stop at the same
    iteration. Criteria on the loss, gradient norm and iteration count need no
    wrapping when the gradient comes from :func:`all_reduce`.

    >>> from fnopt import stop
    >>> agree(stop.time_limit(60.0))
    agree(time_limit(60.0))
    """
    if not isinstance(criterion, Criterion):
        raise TypeError(f"criterion: expected a criterion from fnopt.stop, got "
                        f"{type(criterion).__name__}")
    return _Agree(criterion, group)


def even_batches(data: Iterable[Any], group: Any = None) -> Iterable[Any]:
    """``data`` cut so that every rank of ``group`` takes the same number of batches:
    all ranks stop together after the shortest shard, and :func:`fnopt.fixed_point`
    ends on each with reason ``data_exhausted`` at the same iteration.

    When ``data`` has a ``len()`` on every rank, the lengths are exchanged once per
    pass (one collective) and, if they differ, a ``RuntimeWarning`` names them and
    every rank takes the shortest; otherwise, before each batch, one small
    ``all_reduce`` tells whether every rank still has one (a rank's extra batch is
    dropped). :func:`fnopt.fixed_point` applies this itself when ``grad_fn`` is an
    :func:`all_reduce` provider; wrap the data yourself when it is not.

    Args:
      data: this rank's iterable of batches (re-iterable for several passes).
      group: a process group (default: the world group).

    Returns:
      An iterable of the same batches (``data`` itself without a process group).

    >>> even_batches([1, 2, 3])  # one process, no process group: unchanged
    [1, 2, 3]
    """
    if isinstance(data, _EvenBatches):
        return data
    if not isinstance(data, Iterable):
        raise TypeError(f"data: expected an iterable of batches, got {type(data).__name__}")
    dist = _dist()
    if not (dist.is_available() and dist.is_initialized()):
        return data
    return _EvenBatches(data, group)


class _EvenBatches:
    """What :func:`even_batches` returns in a process group."""

    __slots__ = ("data", "group")

    def __init__(self, data: Iterable[Any], group: Any) -> None:
        self.data = data
        self.group = group

    @property
    def epoch(self) -> Any:  # the loop reads the pass number of fnopt.epochs data
        return getattr(self.data, "epoch", None)

    def __iter__(self) -> Iterator[Any]:
        try:
            n = len(self.data)  # type: ignore[arg-type]
        except TypeError:
            n = -1
        counts = _gather_counts(n, self.group)
        if min(counts) >= 0:
            if len(set(counts)) > 1:
                warnings.warn(
                    f"distributed: uneven shards (batches per rank: {counts}); every rank "
                    f"takes {min(counts)} (reason data_exhausted after them)",
                    RuntimeWarning, stacklevel=2,
                )
            return itertools.islice(iter(self.data), min(counts))
        return _while_all_have(iter(self.data), self.group)


def _gather_counts(n: int, group: Any) -> list[int]:
    """Every rank's ``n`` (one fixed-size collective)."""
    import torch

    dist = _dist()
    size = dist.get_world_size(group)
    mine = torch.zeros(size, dtype=torch.int64, device=_collective_device(group))
    mine[dist.get_rank(group)] = n + 1  # 0: a rank without a count (n = -1)
    try:
        dist.all_reduce(mine, op=dist.ReduceOp.SUM, group=group)
    except RuntimeError as exc:
        raise RemoteError(f"distributed.even_batches: the collective failed ({exc}); "
                          "another rank probably stopped, crashed or timed out") from exc
    return [int(x) - 1 for x in mine.tolist()]


def _while_all_have(it: Iterator[Any], group: Any) -> Iterator[Any]:
    """The batches of ``it`` while every rank has one (one small collective each)."""
    import torch

    dist = _dist()
    device = _collective_device(group)
    while True:
        try:
            batch, have = next(it), 1
        except StopIteration:
            batch, have = None, 0
        flag = torch.tensor([have], dtype=torch.int64, device=device)
        try:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=group)
        except RuntimeError as exc:
            raise RemoteError(f"distributed.even_batches: the collective failed ({exc}); "
                              "another rank probably stopped, crashed or timed out") from exc
        if int(flag.item()) == 0:
            return
        yield batch


def _collective_device(group: Any) -> Any:
    """Where a small control tensor must live for ``group``'s backend."""
    import torch

    if _dist().get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def loop_data(data: Iterable[Any] | None, grad_fn: Any) -> Iterable[Any] | None:
    """The data :func:`fnopt.fixed_point` iterates: :func:`even_batches` of ``data``
    when ``grad_fn`` is an :func:`all_reduce` provider in a process group."""
    if data is None or not isinstance(grad_fn, _AllReduce):
        return data
    return even_batches(data, grad_fn.group)
