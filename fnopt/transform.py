"""First-order building blocks (:class:`fnopt.Transform`), composable with :func:`chain`.

Each factory captures its hyperparameters and returns ``Transform(init, update)``;
``update(grads, state, params) -> (updates, state)`` is pure. Updates are *added* to
params by :func:`fnopt.descent`, so the transform that applies the learning rate
carries the minus sign.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from fnopt import tree
from fnopt._base import (
    Params,
    ScalarOrSchedule,
    State,
    Transform,
    Updates,
    check_nonnegative,
    check_unit_interval,
)

__all__ = [
    "chain",
    "identity",
    "scale",
    "scale_by_learning_rate",
    "trace",
    "add_decayed_weights",
    "EmptyState",
    "ScaleByLearningRateState",
    "TraceState",
]


class EmptyState(NamedTuple):
    """State of a stateless transform."""


def identity() -> Transform:
    """The transform that returns the gradients unchanged."""

    def init(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(
        updates: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        del params
        return updates, state

    return Transform(init, update)


def chain(*transforms: Transform) -> Transform:
    """Apply ``transforms`` one after the other; the state is the tuple of their states.

    >>> import numpy as np, fnopt
    >>> t = fnopt.chain(fnopt.scale(2.0), fnopt.scale_by_learning_rate(0.1))
    >>> u, _ = t.update(np.array([1.0]), t.init(np.zeros(1)))
    >>> u
    array([-0.2])
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, Transform):
            raise TypeError(
                f"chain: argument {i} must be a Transform, got {type(t).__name__}"
            )

    def init(params: Params) -> tuple[Any, ...]:
        return tuple(t.init(params) for t in transforms)

    def update(
        updates: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        new_states = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_states.append(s)
        return updates, tuple(new_states)

    return Transform(init, update)


def scale(step_size: float) -> Transform:
    """Multiply updates by a constant: :math:`u \\leftarrow s\\,u` (``s = step_size``)."""

    def init(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(
        updates: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        del params
        return tree.scale(step_size, updates), state

    return Transform(init, update)


class ScaleByLearningRateState(NamedTuple):
    """``count``: steps taken; ``learning_rate``: the rate used by the last step."""

    count: int  # type: ignore[assignment]
    learning_rate: Any


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool = True) -> Transform:
    """Scale updates by ``-learning_rate`` (a float or a schedule ``count -> lr``).

    :math:`u \\leftarrow -\\eta_t\\,u`, with :math:`\\eta_t` = ``learning_rate(count)``
    for a schedule (``count`` starts at 0) or the constant ``learning_rate``. The rate
    used is stored in the state. ``flip_sign=False`` drops the minus sign.

    Args:
      learning_rate: a number >= 0 or a callable schedule.
      flip_sign: whether to negate (descent) — the default.

    Returns:
      A :class:`fnopt.Transform`.
    """
    check_nonnegative("learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0

    def init(params: Params) -> ScaleByLearningRateState:
        del params
        lr0 = learning_rate(0) if callable(learning_rate) else learning_rate
        return ScaleByLearningRateState(0, lr0)

    def update(
        updates: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        del params
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        return tree.scale(sign * lr, updates), ScaleByLearningRateState(state.count + 1, lr)

    return Transform(init, update)


class TraceState(NamedTuple):
    """``count``: steps taken; ``trace``: the momentum buffer."""

    count: int  # type: ignore[assignment]
    trace: Any


def trace(decay: float, *, dampening: float = 0.0, nesterov: bool = False) -> Transform:
    """Momentum with torch.optim.SGD semantics.

    With :math:`\\mu` = ``decay`` and :math:`\\tau` = ``dampening``:
    :math:`b_1 = g_1`, :math:`b_t = \\mu b_{t-1} + (1-\\tau) g_t`; the update is
    :math:`b_t`, or :math:`g_t + \\mu b_t` with ``nesterov=True``.

    Args:
      decay: the momentum coefficient, in [0, 1].
      dampening: dampening of the gradient term, in [0, 1].
      nesterov: use Nesterov momentum (needs ``decay > 0`` and ``dampening == 0``).
    """
    check_unit_interval("momentum", decay, closed=True)
    check_unit_interval("dampening", dampening, closed=True)
    if nesterov and (decay <= 0 or dampening != 0):
        raise ValueError("nesterov: requires momentum > 0 and dampening == 0")

    def init(params: Params) -> TraceState:
        return TraceState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        del params
        if state.count == 0:
            buf = tree.clone(updates)
        else:
            buf = tree.axpy(1.0 - dampening, updates, tree.scale(decay, state.trace))
        out = tree.axpy(decay, buf, updates) if nesterov else buf
        return out, TraceState(state.count + 1, buf)

    return Transform(init, update)


def add_decayed_weights(weight_decay: float = 0.0) -> Transform:
    """Add ``weight_decay * params`` to the updates (L2 regularisation, coupled).

    :math:`u \\leftarrow u + \\lambda\\,p` with :math:`\\lambda` = ``weight_decay``.
    """
    check_nonnegative("weight_decay", weight_decay)

    def init(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(
        updates: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        if params is None:
            raise ValueError("add_decayed_weights: update needs params")
        return tree.axpy(weight_decay, params, updates), state

    return Transform(init, update)
