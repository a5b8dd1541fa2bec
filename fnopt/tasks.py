"""Moved to :mod:`fnopt.objectives.tasks`.

``fnopt.tasks`` is the same module object, so old imports and pickled paths keep working.
"""

import sys

from fnopt.objectives import tasks as _m
from fnopt.objectives.tasks import *  # noqa: F403

sys.modules[__name__] = _m
