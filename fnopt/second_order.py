"""Old import path of :mod:`fnopt.optimizers.second_order` (moved in 0.3).

Its public names are re-exported here and any other attribute is looked up in the new
module, so code and checkpoints written against ``fnopt.second_order`` keep working."""

from typing import Any

import fnopt.optimizers.second_order as _new
from fnopt.optimizers.second_order import *  # noqa: F403
from fnopt.optimizers.second_order import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_new, name)
