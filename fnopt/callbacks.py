"""Ready-made callbacks for :func:`fnopt.fixed_point`.

A callback is any ``callback(info)`` taking an :class:`fnopt.stop.Info` (iteration,
loss ``info.value``, ``info.grad_norm``, ``info.learning_rate``, ``info.elapsed``, the
params and state); it is called at every iterate, and a truthy return value stops the
run with reason ``callback``. Here:

* :func:`progress` — a progress bar (tqdm when it is installed, a plain status line
  otherwise) showing the loss, gradient norm and learning rate;
* :func:`log_every` — one line every ``n`` iterations, printed or sent to a logger;
* :func:`combine` — several callbacks as one.

>>> import io, fnopt
>>> task = fnopt.tasks.rosenbrock()
>>> out = io.StringIO()
>>> r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
...                       stop=fnopt.stop.max_iters(200),
...                       callback=fnopt.callbacks.log_every(100, file=out))
>>> print(out.getvalue().strip())
iter 0  loss 1  grad_norm 2  lr 0.001  ...s
iter 100  loss 0.681143  grad_norm 1.557  lr 0.001  ...s
iter 200  loss 0.492466  grad_norm 1.203  lr 0.001  ...s
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from fnopt.loop.checks import truth
from fnopt.stop import Info

__all__ = ["progress", "log_every", "combine", "Progress", "format_info"]

Callback = Callable[[Info], Any]


def format_info(info: Info) -> str:
    """One line describing an iterate: iteration, loss, gradient norm, lr, elapsed.

    >>> from fnopt.stop import Info
    >>> format_info(Info(3, 0.5, 0.25, None, None, None, float("nan"), 1.5))
    'iter 3  loss 0.5  grad_norm 0.25  1.5s'
    """
    parts = [f"iter {info.iteration}", f"loss {info.value:.6g}", f"grad_norm {info.grad_norm:.4g}"]
    lr = _show_rate(info.learning_rate)
    if lr is not None:
        parts.append(f"lr {lr}")
    parts.append(f"{info.elapsed:.3g}s")
    return "  ".join(parts)


def _show_rate(lr: Any, fmt: str = "{:.4g}") -> str | None:
    """A learning rate as text; a dict of group rates as ``label=rate`` pairs."""
    if isinstance(lr, dict):
        shown = {k: _show_rate(v, fmt) for k, v in lr.items()}
        return ",".join(f"{k}={v}" for k, v in shown.items() if v is not None) or None
    return None if lr is None else fmt.format(lr)


def _check_count(name: str, n: Any, *, allow_none: bool = False) -> None:
    if n is None and allow_none:
        return
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name}: expected an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {n}")


def log_every(
    n: int,
    *,
    file: IO[str] | None = None,
    logger: logging.Logger | None = None,
    level: int = logging.INFO,
) -> Callback:
    """A callback writing :func:`format_info` of every ``n``-th iterate (iterations
    ``0, n, 2n, ...``).

    Args:
      n: the interval, an int >= 1.
      file: where to print (default ``sys.stdout`` at the time of the call).
      logger: send the line to this :class:`logging.Logger` instead of printing.
      level: the logging level used with ``logger``.

    Returns:
      ``callback(info) -> None`` (it never asks to stop).
    """
    _check_count("n", n)
    if logger is not None and not isinstance(logger, logging.Logger):
        raise TypeError(f"logger: expected a logging.Logger, got {type(logger).__name__}")

    def callback(info: Info) -> None:
        if info.iteration % n:
            return
        line = format_info(info)
        if logger is not None:
            logger.log(level, line)
        else:
            print(line, file=file if file is not None else sys.stdout, flush=True)

    return callback


def combine(*callbacks: Callback) -> Callback:
    """Several callbacks as one: each is called in turn at every iterate, and the run
    stops if any of them returns a truthy value (all are still called)."""
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise TypeError(f"callbacks: argument {i} is not callable ({type(cb).__name__})")

    def callback(info: Info) -> bool:
        stop = False
        for i, cb in enumerate(callbacks):
            stop = truth(f"callbacks[{i}]", cb(info)) or stop
        return stop

    return callback


def _have_tqdm() -> bool:
    return importlib.util.find_spec("tqdm") is not None


class Progress:
    """The callback made by :func:`progress`; call :meth:`close` (or use it as a
    context manager) to finish the bar or print the last line."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        file: IO[str] | None,
        use_tqdm: bool,
        min_interval: float,
    ) -> None:
        self.total = total
        self.desc = desc
        self.file = file
        self.use_tqdm = use_tqdm
        self.min_interval = min_interval
        self._bar: Any = None
        self._last_shown = -float("inf")
        self._last_info: Info | None = None
        self._shown_info: Info | None = None
        self._closed = False

    def _out(self) -> IO[str]:
        return self.file if self.file is not None else sys.stderr

    def __call__(self, info: Info) -> None:
        if self._closed:
            return
        self._last_info = info
        now = time.monotonic()
        due = now - self._last_shown >= self.min_interval
        if self.use_tqdm:
            if self._bar is None:
                import tqdm

                self._bar = tqdm.tqdm(
                    total=self.total,
                    desc=self.desc,
                    file=self._out(),
                    unit="it",
                    initial=info.iteration,
                    mininterval=self.min_interval,
                )
            self._bar.update(info.iteration - self._bar.n)
            if due:
                self._bar.set_postfix_str(self._postfix(info), refresh=False)
                self._last_shown = now
        elif due:
            self._show(info)
            self._last_shown = now

    def _postfix(self, info: Info) -> str:
        parts = [f"loss={info.value:.4g}", f"grad_norm={info.grad_norm:.3g}"]
        lr = _show_rate(info.learning_rate, "{:.3g}")
        if lr is not None:
            parts.append(f"lr={lr}")
        return ", ".join(parts)

    def _show(self, info: Info) -> None:
        out = self._out()
        count = f"{info.iteration}/{self.total}" if self.total else str(info.iteration)
        line = f"{self.desc}: {count}  " + format_info(info).split("  ", 1)[1]
        if _isatty(out):
            out.write("\r" + line.ljust(79))
        else:
            out.write(line + "\n")
        out.flush()
        self._shown_info = info

    def close(self) -> None:
        """Finish: close the tqdm bar, or print the last iterate seen (once)."""
        if self._closed:
            return
        self._closed = True
        info = self._last_info
        if self._bar is not None:
            if info is not None:
                self._bar.set_postfix_str(self._postfix(info), refresh=False)
            self._bar.close()
        elif info is not None:
            if info is not self._shown_info:
                self._show(info)
            if _isatty(self._out()):
                self._out().write("\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(f: IO[str]) -> bool:
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError):
        return False


def progress(
    total: int | None = None,
    *,
    desc: str = "fnopt",
    file: IO[str] | None = None,
    use_tqdm: bool | None = None,
    min_interval: float = 0.1,
) -> Progress:
    """A progress display for :func:`fnopt.fixed_point`: a tqdm bar when tqdm is
    installed, otherwise a plain status line (rewritten in place on a terminal, one
    line per update in a log file). Both show the iteration, loss, gradient norm and
    learning rate, at most once per ``min_interval`` seconds.

    Use it as a context manager so the display is finished when the run ends::

        with fnopt.callbacks.progress(total=10_000) as bar:
            result = fnopt.fixed_point(opt, params, grad_fn, stop=..., callback=bar)

    Args:
      total: the expected number of iterations (e.g. the ``max_iters``), or ``None``.
      desc: a label shown before the bar.
      file: where to write (default ``sys.stderr``).
      use_tqdm: force tqdm on (``True``; an ``ImportError`` if it is missing) or off
        (``False``); ``None`` uses it when installed.
      min_interval: seconds between refreshes (``0`` shows every iterate).

    Returns:
      A :class:`Progress` callback (it never asks to stop).
    """
    _check_count("total", total, allow_none=True)
    if not isinstance(desc, str):
        raise TypeError(f"desc: expected a str, got {type(desc).__name__}")
    if isinstance(min_interval, bool) or not isinstance(min_interval, (int, float)):
        raise TypeError(f"min_interval: expected a number, got {type(min_interval).__name__}")
    if not min_interval >= 0:
        raise ValueError(f"min_interval: expected a number >= 0, got {min_interval}")
    if use_tqdm is None:
        use_tqdm = _have_tqdm()
    elif use_tqdm and not _have_tqdm():
        raise ImportError("use_tqdm: tqdm is not installed (pip install tqdm)")
    return Progress(total, desc, file, bool(use_tqdm), float(min_interval))
