"""Objectives: one type for the tasks, the test problems and the testing kit.

* :class:`Objective` — the type every objective is (:mod:`fnopt.objectives._objective`).
* :mod:`~fnopt.objectives.tasks` — Rosenbrock, linear regression, an MLP (also
  ``fnopt.tasks``).
* :mod:`~fnopt.objectives.problems` — test problems with known minima (also
  ``fnopt.problems``).
* :mod:`~fnopt.objectives.lsq_problems` — least-squares test problems (also
  ``fnopt.lsq_problems``).
* :mod:`~fnopt.objectives.quadratic` — random convex quadratics (also in
  ``fnopt.testing``).
"""

from fnopt.objectives import lsq_problems as lsq_problems
from fnopt.objectives import problems as problems
from fnopt.objectives import quadratic as quadratic
from fnopt.objectives import tasks as tasks
from fnopt.objectives._objective import Objective as Objective
from fnopt.objectives._objective import Providers as Providers
from fnopt.objectives.lsq_problems import LeastSquaresProblem as LeastSquaresProblem
from fnopt.objectives.problems import Problem as Problem
from fnopt.objectives.quadratic import Quadratic as Quadratic
from fnopt.objectives.quadratic import make_quadratic as make_quadratic
from fnopt.objectives.tasks import Task as Task

__all__ = [
    "LeastSquaresProblem",
    "Objective",
    "Problem",
    "Providers",
    "Quadratic",
    "Task",
    "lsq_problems",
    "make_quadratic",
    "problems",
    "quadratic",
    "tasks",
]
