"""Old import path of :mod:`fnopt.optimizers.quasi_newton` and
:mod:`fnopt.optimizers.newton` (split in 0.3).

Their public names are re-exported here and any other attribute is looked up in them,
so code and checkpoints written against ``fnopt.second_order`` keep working."""

from typing import Any

from fnopt.optimizers import newton as _newton
from fnopt.optimizers import quasi_newton as _quasi_newton
from fnopt.optimizers.newton import *  # noqa: F403
from fnopt.optimizers.quasi_newton import *  # noqa: F403

__all__ = [*_quasi_newton.__all__, *_newton.__all__]


def __getattr__(name: str) -> Any:
    for module in (_quasi_newton, _newton):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
