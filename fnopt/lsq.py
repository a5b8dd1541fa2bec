"""Old import path of :mod:`fnopt.optimizers.lsq` (moved in 0.3).

Its public names are re-exported here and any other attribute is looked up in the new
module, so code and checkpoints written against ``fnopt.lsq`` keep working."""

from typing import Any

import fnopt.optimizers.lsq as _new
from fnopt.optimizers.lsq import *  # noqa: F403
from fnopt.optimizers.lsq import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_new, name)
