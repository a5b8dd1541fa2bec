"""Old import path of :mod:`fnopt.transforms.projections` (moved in 0.3).

Its public names are re-exported here and any other attribute is looked up in the new
module, so code and checkpoints written against ``fnopt.projections`` keep working."""

from typing import Any

import fnopt.transforms.projections as _new
from fnopt.transforms.projections import *  # noqa: F403
from fnopt.transforms.projections import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_new, name)
