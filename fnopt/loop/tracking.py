"""What :func:`fnopt.fixed_point` remembers of the iterates it has accepted: the last
finite one and the best one (lowest loss). Nothing is recomputed: on loop-owned
buffers the best iterate is copied only when the buffer holding it is about to be
overwritten while it is still the best (in a descent that keeps improving: never)."""

from __future__ import annotations

import math
from typing import Any

from fnopt import tree as _tree
from fnopt.loop.result import Iterate

__all__ = ["Tracker"]


class Tracker:
    """The last accepted iterate and the best one seen."""

    __slots__ = (
        "best_iteration",
        "best_params",
        "best_value",
        "last",
        "prev_params",
        "prev_value",
    )

    def __init__(self, start: Iterate) -> None:
        self.last = start
        self.best_params: Any = start.params
        self.best_value = math.nan
        self.best_iteration = start.iteration
        self.prev_params: Any = None  # the iterate accepted before ``last`` (for Info)
        self.prev_value = math.nan

    def accept(self, it: Iterate) -> None:
        """``it`` has a finite loss: it becomes the last good iterate (and the best one
        if its loss is lower)."""
        self.last = it
        if not it.value >= self.best_value:  # also true while best_value is NaN
            self.best_params, self.best_value, self.best_iteration = (
                it.params, it.value, it.iteration,
            )

    def moved_on(self, it: Iterate) -> None:
        """The loop steps on from ``it``: it becomes the previous iterate."""
        self.prev_params, self.prev_value = it.params, it.value

    def protect(self, buffer: Any) -> None:
        """``buffer`` is about to be overwritten: keep a copy if it holds the best."""
        if buffer is not None and self.best_params is buffer:
            self.best_params = _tree.clone(buffer)
