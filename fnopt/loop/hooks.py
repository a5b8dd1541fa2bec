"""What :func:`fnopt.fixed_point` does around its steps: feed batches, save checkpoints,
and keep Ctrl-C from tearing an update that runs in place."""

from __future__ import annotations

import os
import signal
import threading
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from fnopt.loop.result import Iterate

__all__ = ["Batches", "Checkpointer", "InterruptGuard"]


def _as_args(batch: Any) -> tuple[Any, ...]:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


class Batches:
    """The batches of ``data`` one per step (a tuple/list batch is unpacked into
    ``grad_fn``'s arguments); without data, every step gets ``()``.

    ``epoch`` is the pass over ``data`` the last batch came from (0-based) when ``data``
    tells it (e.g. :func:`fnopt.epochs`), else ``None``.
    """

    __slots__ = ("_data", "_it")

    def __init__(self, data: Iterable[Any] | None) -> None:
        self._data = data
        self._it: Iterator[Any] | None = iter(data) if data is not None else None

    def next(self) -> tuple[Any, ...] | None:
        """The next batch's arguments, ``()`` without data, ``None`` when exhausted."""
        if self._it is None:
            return ()
        try:
            return _as_args(next(self._it))
        except StopIteration:
            return None

    @property
    def epoch(self) -> int | None:
        epoch = getattr(self._data, "epoch", None)
        return epoch if isinstance(epoch, int) else None


class Checkpointer:
    """Saves iterates to ``path`` (:func:`fnopt.save`): every ``every`` iterations and
    the final one. A failing save (a full disk) warns and the run goes on."""

    __slots__ = ("every", "path", "saved_at", "start")

    def __init__(self, path: str | os.PathLike[str] | None, every: int | None, start: int):
        self.path = path
        self.every = every
        self.start = start
        self.saved_at = -1

    def due(self, iteration: int) -> bool:
        return self.every is not None and iteration % self.every == 0 and (
            iteration != self.start
        )

    def save(self, it: Iterate, n_evals: int, epoch: int | None = None,
             stop_state: Any = None) -> None:
        """Save ``it`` with the stop criterion's state at it (``stop_state``, so early
        stopping resumes where it was; left out when it holds what a file cannot)."""
        if self.path is None or it.iteration == self.saved_at:
            return
        from fnopt.checkpoint import check_saveable, save

        meta: dict[str, Any] = {"value": it.value, "grad_norm": it.grad_norm, "n_evals": n_evals}
        if epoch is not None:
            meta["epoch"] = epoch
        try:
            check_saveable(it.params, stop_state)
        except (TypeError, ValueError):  # e.g. a user criterion keeping a callable
            stop_state = None
        try:
            save(self.path, it.params, it.state, iteration=it.iteration, metadata=meta,
                 stop_state=stop_state)
        except OSError as exc:  # a full disk must not cost the run: warn, go on
            warnings.warn(
                f"checkpoint_path: could not save iteration {it.iteration} ({exc}); "
                "the run goes on and the previous checkpoint is intact",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        self.saved_at = it.iteration


class InterruptGuard:
    """Defers Ctrl-C (SIGINT) while an update writes into loop-owned buffers.

    Inside ``with guard:`` a Ctrl-C that arrives while ``guard.critical`` is set is
    held back and raised as ``KeyboardInterrupt`` by :meth:`release`, once the update
    is complete; at any other moment it is raised at once, as usual. Only the main
    thread receives signals, and only the default handler is replaced: elsewhere the
    guard does nothing.
    """

    __slots__ = ("_active", "_old", "critical", "pending")

    def __init__(self, active: bool) -> None:
        self.critical = False
        self.pending = False
        self._old: Any = None
        self._active = active

    def _handler(self, signum: int, frame: Any) -> None:
        if self.critical:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> InterruptGuard:
        if (
            self._active
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def release(self) -> None:
        """End a critical section; raise the Ctrl-C it held back, if any."""
        self.critical = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt
