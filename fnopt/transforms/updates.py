"""Applying updates, optax's way: :func:`apply_updates`, :func:`incremental_update`
and :func:`periodic_update` (pure: they return new arrays)."""

from __future__ import annotations

from typing import Any

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import Params, Updates, check_int, check_unit_interval


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates``, leaf by leaf, in the params' dtypes (optax.apply_updates).
    A leaf whose update is ``None`` is kept. New arrays: nothing is modified.

    >>> import numpy as np
    >>> apply_updates({"w": np.array([1.0, 2.0])}, {"w": np.array([-0.5, 0.5])})
    {'w': array([0.5, 2.5])}
    """
    def add(p: Any, u: Any) -> Any:
        if u is None:
            return p
        return _backend.of_value(p).cast_like(p + u, p)

    return tree.map(add, params, updates)


def incremental_update(new_tensors: Params, old_tensors: Params, step_size: float) -> Params:
    """:math:`\\tau\\,x_{new} + (1-\\tau)\\,x_{old}` leaf by leaf (optax's Polyak
    averaging of target networks; :math:`\\tau` = ``step_size`` in [0, 1]).

    >>> import numpy as np
    >>> incremental_update(np.array([1.0]), np.array([0.0]), 0.25)
    array([0.25])
    """
    check_unit_interval("step_size", step_size, closed=True)
    return tree.map(lambda n, o: step_size * n + (1.0 - step_size) * o, new_tensors, old_tensors)


def periodic_update(
    new_tensors: Params, old_tensors: Params, steps: int, update_period: int
) -> Params:
    """``new_tensors`` when ``steps`` is a multiple of ``update_period``, else
    ``old_tensors`` (optax.periodic_update).

    >>> import numpy as np
    >>> periodic_update(np.array([1.0]), np.array([0.0]), 4, 2)
    array([1.])
    """
    check_int("update_period", update_period, 1)
    return new_tensors if int(steps) % update_period == 0 else old_tensors
