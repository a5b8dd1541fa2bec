"""Step sizes computed from the loss: :func:`scale_by_polyak` (the Polyak step)."""


from __future__ import annotations

import math
from typing import Any

from fnopt._base import (
    _STEP_LOSS,
    Params,
    State,
    Transform,
    Updates,
    check_bool,
    check_nonnegative,
)
from fnopt.transforms._common import EmptyState, _flat

_VARIANTS = ("sps", "sps+")
_FLOAT_EPS = 2.220446049250313e-16  # float64's machine epsilon, as optax's threshold


def scale_by_polyak(
    f_min: float = 0.0,
    max_learning_rate: float = 1.0,
    eps: float = 0.0,
    variant: str = "sps",
    *,
    maximize: bool = False,
) -> Transform:
    """Scale the updates by the Polyak step size (optax.scale_by_polyak).

    .. math::
        u \\leftarrow \\min\\Big(\\frac{f(p) - f^*}{\\|g\\|^2 + \\epsilon},
        \\eta_{\\max}\\Big)\\,g

    with :math:`f^*` = ``f_min``, :math:`\\eta_{\\max}` = ``max_learning_rate``; the
    step is 0 when :math:`\\|g\\|^2 + \\epsilon` is at most machine epsilon. ``"sps+"``
    clips the gap :math:`f(p) - f^*` at 0. The loss :math:`f(p)` is the ``value``
    keyword of ``update`` (optax's extra argument); inside :func:`fnopt.descent` or
    :func:`fnopt.fixed_point` it is the loss of the step, passed automatically.

    Args:
      f_min: a lower bound on the loss (0 for interpolating models).
      max_learning_rate: the largest step, >= 0.
      eps: added to :math:`\\|g\\|^2`, >= 0.
      variant: ``"sps"`` or ``"sps+"``.
      maximize: ``value`` is of an objective being maximised (the updates already
        ascend it): the gap is :math:`-f(p) - f^*`, that of the minimised :math:`-f`.

    Returns:
      A :class:`fnopt.Transform` whose ``update`` takes ``value=``. It scales the
      gradient: use it *last* (:func:`fnopt.polyak_sgd`), not before a learning rate.

    >>> import numpy as np
    >>> t = scale_by_polyak()
    >>> t.update(np.array([2.0]), t.init(None), value=2.0)[0]  # 2 / 4 = 0.5
    array([1.])

    Loizou et al., "Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for
    Fast Convergence", AISTATS 2021.
    """
    check_nonnegative("max_learning_rate", max_learning_rate)
    check_nonnegative("eps", eps)
    check_bool("maximize", maximize)
    if isinstance(f_min, bool) or not isinstance(f_min, (int, float)):
        raise TypeError(f"f_min: expected a real number, got {type(f_min).__name__}")
    if not math.isfinite(f_min):
        raise ValueError(f"f_min: expected a finite number, got {f_min}")
    if variant not in _VARIANTS:
        raise ValueError(f"variant: expected one of {_VARIANTS}, got {variant!r}")

    def init(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(
        updates: Updates, state: State, params: Params | None = None, *,
        value: Any = None, **extra_args: Any,
    ) -> tuple[Updates, State]:
        del params, extra_args
        if value is None:
            value = _STEP_LOSS.get()
        if value is None:
            raise TypeError(
                "scale_by_polyak: update needs value= (the loss at params); pass "
                "update(grads, state, params, value=loss) or step it with fnopt.descent")
        u, spec, be = _flat(updates)
        sq = be.to_float(be.sq_norm(u))
        gap = (-float(value) if maximize else float(value)) - f_min
        if variant == "sps+":
            gap = max(gap, 0.0)
        step = 0.0 if sq + eps <= _FLOAT_EPS else min(gap / (sq + eps), max_learning_rate)
        return spec.unflatten(be.scale(u, step)), state

    return Transform(
        init, update, name="scale_by_polyak",
        hyperparams={"f_min": f_min, "max_learning_rate": max_learning_rate, "eps": eps,
                     "variant": variant, "maximize": maximize, "takes_value": True,
                     # one step size from the norm of the whole tree (fnopt.batched refuses)
                     "whole_tree": True},
    )
