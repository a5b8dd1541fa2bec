"""Named first-order optimizers, each built from :mod:`fnopt.transform` blocks and
lifted to an :class:`fnopt.Optimizer` by :func:`descent`."""

from __future__ import annotations

from typing import Any

from fnopt import backend as _backend
from fnopt import transform as _t
from fnopt import tree
from fnopt._base import (
    DescentState,
    GradFn,
    Optimizer,
    Params,
    ScalarOrSchedule,
    State,
    Transform,
    check_nonnegative,
    check_unit_interval,
)

__all__ = ["descent", "sgd"]


def descent(transform: Transform) -> Optimizer:
    """Lift a :class:`fnopt.Transform` to an :class:`fnopt.Optimizer`.

    Each step evaluates ``grad_fn`` once at the current params, passes the gradient
    through ``transform`` and adds the resulting updates:
    :math:`(f_t, g_t) = \\text{grad\\_fn}(p_t)`, :math:`u_t = T(g_t)`,
    :math:`p_{t+1} = p_t + u_t`. The state records the step count, :math:`f_t` and
    :math:`\\|g_t\\|` (evaluated at the *input* params).

    >>> import numpy as np, fnopt
    >>> opt = fnopt.descent(fnopt.scale_by_learning_rate(0.5))
    >>> grad_fn = lambda p: (0.5 * (p @ p), p)
    >>> p, s = opt.step(np.array([2.0]), grad_fn, opt.init(np.array([2.0])))
    >>> p, s.count, float(s.value)
    (array([1.]), 1, 2.0)
    """
    if not isinstance(transform, Transform):
        raise TypeError(f"transform: expected a Transform, got {type(transform).__name__}")

    def init(params: Params) -> DescentState:
        leaves = tree.leaves(params)
        if not leaves:
            raise ValueError("params: empty pytree (no arrays to optimize)")
        be = _backend.of_leaves(leaves)
        nan = be.scalar(float("nan"), leaves[0])
        return DescentState(0, nan, nan, transform.init(params))

    def step(
        params: Params, grad_fn: GradFn, state: State, *batch: Any
    ) -> tuple[Params, DescentState]:
        value, grads = grad_fn(params, *batch)
        updates, inner = transform.update(grads, state.inner, params)
        new_params = tree.add(params, updates)
        return new_params, DescentState(state.count + 1, value, tree.global_norm(grads), inner)

    return Optimizer(init, step, "input")


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Stochastic gradient descent with torch.optim.SGD semantics.

    With :math:`\\eta` = ``learning_rate``, :math:`\\mu` = ``momentum``,
    :math:`\\tau` = ``dampening`` and :math:`\\lambda` = ``weight_decay``:

    .. math::
        g_t \\leftarrow g_t + \\lambda p_t,\\quad
        b_t = \\mu b_{t-1} + (1-\\tau) g_t \\ (b_1 = g_1),\\quad
        p_{t+1} = p_t - \\eta\\,(g_t + \\mu b_t \\text{ if nesterov else } b_t)

    Args:
      learning_rate: a number >= 0, or a schedule ``count -> lr`` (count from 0).
      momentum: momentum factor in [0, 1].
      dampening: dampening for momentum in [0, 1].
      nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
      weight_decay: L2 penalty coefficient >= 0, added to the gradient.

    Returns:
      An :class:`fnopt.Optimizer`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.sgd(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> p
    array([0.8])

    Reference: Sutskever et al., "On the importance of initialization and momentum in
    deep learning", ICML 2013.
    """
    check_nonnegative("learning_rate", learning_rate)
    check_unit_interval("momentum", momentum, closed=True)
    check_unit_interval("dampening", dampening, closed=True)
    check_nonnegative("weight_decay", weight_decay)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov: requires momentum > 0 and dampening == 0")
    blocks: list[Transform] = []
    if weight_decay:
        blocks.append(_t.add_decayed_weights(weight_decay))
    if momentum:
        blocks.append(_t.trace(momentum, dampening=dampening, nesterov=nesterov))
    blocks.append(_t.scale_by_learning_rate(learning_rate))
    return descent(_t.chain(*blocks))
