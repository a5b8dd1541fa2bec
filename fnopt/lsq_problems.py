"""Moved to :mod:`fnopt.objectives.lsq_problems`.

``fnopt.lsq_problems`` is the same module object, so old imports and pickled paths keep working.
"""

import sys

from fnopt.objectives import lsq_problems as _m
from fnopt.objectives.lsq_problems import *  # noqa: F403

sys.modules[__name__] = _m
