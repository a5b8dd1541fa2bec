"""What the current :mod:`fnopt.loop` still imports from the old donating steps.

The hand-written in-place twins of sgd and adam are gone: every first-order optimizer
is a :class:`fnopt.Descent` whose :meth:`fnopt.Descent.apply` takes a destination
(``out=``) and runs the same arithmetic into buffers the caller owns. No optimizer has a
donating step any more, so :func:`loop_can_donate` is always ``False`` and the loop runs
the pure step. This module goes away with the loop rewrite that calls
``opt.apply(..., out=buffers)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import optree

from fnopt import backend as _backend
from fnopt import stop as _stop
from fnopt._base import Params, State

__all__ = ["UpdateFn", "clone_buffers", "loop_can_donate"]


class UpdateFn(Protocol):
    """``update(params, grads, state, value, grad_norm, donate) -> (params, state)``."""

    def __call__(
        self, params: Params, grads: Any, state: State, value: Any, grad_norm: Any,
        donate: bool, /,
    ) -> tuple[Params, State]: ...


def clone_buffers(state: State) -> State:
    """A copy of ``state`` whose arrays/tensors are fresh copies (other leaves, such as
    Python numbers, are shared)."""

    def copy(x: Any) -> Any:  # Python numbers and NumPy scalars are immutable: shared
        return _backend.of_leaves([x]).clone([x])[0] if _backend.is_array(x) else x

    return optree.tree_map(copy, state, none_is_leaf=False)


def loop_can_donate(
    opt: Any,
    *,
    stop: _stop.Criterion,
    data: Any,
    callback: Callable[..., Any] | None,
    differentiable: bool,
) -> bool:
    """Always ``False``: no optimizer has a donating step (see the module docstring)."""
    del opt, stop, data, callback, differentiable
    return False
