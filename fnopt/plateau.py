"""Old import path of :mod:`fnopt.transforms.plateau` (moved in 0.3).

Its public names are re-exported here and any other attribute is looked up in the new
module, so code and checkpoints written against ``fnopt.plateau`` keep working."""

from typing import Any

import fnopt.transforms.plateau as _new
from fnopt.transforms.plateau import *  # noqa: F403
from fnopt.transforms.plateau import __all__ as __all__


def __getattr__(name: str) -> Any:
    return getattr(_new, name)
