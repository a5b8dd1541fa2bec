"""Data over epochs: :func:`epochs` turns a re-iterable loader into ``n`` passes that
know where they are.

A training script hands :func:`fnopt.fixed_point` one batch per step (``data=``). Over
several passes the loop, its criteria (:func:`fnopt.stop.no_improvement`), callbacks,
checkpoints and per-epoch schedules (:func:`fnopt.schedules.per_epoch`) need the epoch
number; an :class:`Epochs` object yields the batches and keeps it in plain attributes.

>>> import fnopt
>>> data = fnopt.epochs([("a",), ("b",), ("c",)], 2)
>>> [(batch[0], data.epoch, data.batch_in_epoch) for batch in data]
[('a', 0, 0), ('b', 0, 1), ('c', 0, 2), ('a', 1, 0), ('b', 1, 1), ('c', 1, 2)]
>>> len(data), data.epoch, data.done
(6, 2, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fnopt._base import check_int

__all__ = ["Epochs", "epochs"]


class Epochs:
    """``n`` passes over a re-iterable ``loader``; see :func:`epochs`.

    Iterating yields the loader's batches unchanged, ``iter(loader)`` once per pass.
    After each batch is yielded the attributes describe that batch (read them between
    ``next`` calls, e.g. in the loop right after it takes a batch):

    Attributes:
      loader: the loader.
      n: the number of passes (the last epoch index is ``n - 1``).
      start: the epoch the iteration starts at (to resume a run).
      epoch: the 0-based epoch of the batch last yielded, which is also the number of
        passes completed before it: the params a loop evaluates on that batch have
        been updated over ``epoch`` full epochs. ``n`` once the iteration is done
        (``start`` before the first batch).
      batch_in_epoch: the 0-based index of the batch last yielded within its epoch
        (``0`` marks the first batch of an epoch, so the params evaluated on it are
        the ones at the end of the previous epoch).
      step: the number of batches yielded so far in this iteration.
      done: whether the iteration has yielded all its batches.
      steps_per_epoch: ``len(loader)`` when the loader has a length, else ``None``.
      batches_seen: the number of batches each finished epoch yielded (a list), so the
        epoch length is known after the first pass even without ``len``.
    """

    def __init__(self, loader: Iterable[Any], n: int, start: int = 0) -> None:
        self.loader = loader
        self.n = n
        self.start = start
        self.steps_per_epoch: int | None = _length(loader)
        self._reset()

    def _reset(self) -> None:
        self.epoch = self.start
        self.batch_in_epoch = -1
        self.step = 0
        self.done = self.start >= self.n
        self.batches_seen: list[int] = []

    @property
    def new_epoch(self) -> bool:
        """Whether the batch last yielded is the first of its epoch."""
        return self.batch_in_epoch == 0 and not self.done

    def __iter__(self) -> Iterator[Any]:
        self._reset()
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        for e in range(self.start, self.n):
            it = iter(self.loader)
            if e > self.start and it is self.loader:
                raise TypeError(
                    "loader: a one-shot iterator cannot be passed over again for epoch "
                    f"{e}; pass a re-iterable loader (a list, a DataLoader) or n=1"
                )
            count = 0
            for batch in it:
                self.epoch, self.batch_in_epoch = e, count
                self.step += 1
                count += 1
                yield batch
            if count == 0:
                raise ValueError(f"loader: yielded no batches in epoch {e}")
            self.batches_seen.append(count)
        self.epoch, self.batch_in_epoch, self.done = self.n, 0, True

    def __len__(self) -> int:
        if self.steps_per_epoch is None:
            raise TypeError(
                f"len(): the loader ({type(self.loader).__name__}) has no length, so "
                "neither have its epochs"
            )
        return (self.n - self.start) * self.steps_per_epoch

    def __repr__(self) -> str:
        return (
            f"epochs({type(self.loader).__name__}, {self.n}"
            + (f", start={self.start}" if self.start else "")
            + f"; at epoch {self.epoch}, batch {self.batch_in_epoch})"
        )


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def epochs(loader: Iterable[Any], n: int, *, start: int = 0) -> Epochs:
    """``n`` passes over ``loader`` that know the current epoch and batch.

    Yields every batch of ``iter(loader)``, then of a fresh ``iter(loader)``, ``n``
    times in all (a ``DataLoader`` with ``shuffle=True`` reshuffles each pass), and
    keeps :attr:`Epochs.epoch`, :attr:`Epochs.batch_in_epoch` and :attr:`Epochs.step`
    up to date for the batch last yielded. ``len()`` is ``(n - start) * len(loader)``
    when the loader has a length. Pass it as ``data=`` to :func:`fnopt.fixed_point`.

    Args:
      loader: a re-iterable of batches (a list, a ``torch.utils.data.DataLoader``);
        a one-shot iterator (``iter(x) is x``, e.g. a generator) only with ``n=1``.
      n: the number of epochs, >= 1.
      start: the first epoch to run (``0 <= start <= n``), to resume from a checkpoint
        taken at the end of epoch ``start - 1``; ``epoch`` counts from it.

    Returns:
      An :class:`Epochs` iterable.

    Raises:
      TypeError: ``loader`` is not iterable, or is a one-shot iterator with ``n > 1``
        (at construction when ``iter(loader) is loader``).
      ValueError: ``n < 1``; ``start`` outside ``[0, n]``; an epoch with no batches
        (raised when iteration reaches it).

    >>> data = epochs([1, 2], 3, start=1)
    >>> [(b, data.epoch) for b in data], len(data)
    ([(1, 1), (2, 1), (1, 2), (2, 2)], 4)
    """
    if not isinstance(loader, Iterable):
        raise TypeError(f"loader: expected an iterable of batches, got {type(loader).__name__}")
    n = check_int("n", n, 1)
    start = check_int("start", start, 0)
    if start > n:
        raise ValueError(f"start: expected an int in [0, n={n}], got {start}")
    if n - start > 1 and isinstance(loader, Iterator):
        raise TypeError(
            f"loader: a one-shot iterator ({type(loader).__name__}) cannot be passed over "
            f"{n - start} times; pass a re-iterable loader (a list, a DataLoader) or n=1"
        )
    return Epochs(loader, n, start)
