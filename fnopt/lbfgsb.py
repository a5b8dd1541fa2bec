"""Old import path of :mod:`fnopt.optimizers.lbfgsb` (moved in 0.3).

Its public names are re-exported here and any other attribute is looked up in the new
module, so code and checkpoints written against ``fnopt.lbfgsb`` keep working."""

from typing import Any

import fnopt.optimizers.lbfgsb as _new
from fnopt.optimizers.lbfgsb import *  # noqa: F403
from fnopt.optimizers.lbfgsb import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_new, name)
