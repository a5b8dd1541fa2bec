"""Moved to :mod:`fnopt.objectives.problems`.

``fnopt.problems`` is the same module object, so old imports and pickled paths keep working.
"""

import sys

from fnopt.objectives import problems as _m
from fnopt.objectives.problems import *  # noqa: F403

sys.modules[__name__] = _m
