"""Old import path of :mod:`fnopt.grad.residuals` (moved in 0.3).

Its public names are re-exported here and any other attribute is looked up in the new
module, so code and checkpoints written against ``fnopt.residuals`` keep working."""

from typing import Any

import fnopt.grad.residuals as _new
from fnopt.grad.residuals import *  # noqa: F403
from fnopt.grad.residuals import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_new, name)
