"""Robust loss functions for least squares (the ``loss`` of ``least_squares``).

A robust loss replaces the cost :math:`\\tfrac12\\sum_i r_i^2` by
:math:`\\tfrac12\\sum_i C^2\\rho((r_i / C)^2)` with :math:`C` = ``f_scale`` and
:math:`\\rho(z)` one of (scipy.optimize.least_squares' conventions)::

    linear   rho(z) = z
    soft_l1  rho(z) = 2 (sqrt(1 + z) - 1)
    huber    rho(z) = z if z <= 1 else 2 sqrt(z) - 1
    cauchy   rho(z) = ln(1 + z)
    arctan   rho(z) = arctan(z)

or a callable ``loss(z) -> (3, m)`` array of :math:`\\rho, \\rho', \\rho''`. The
trust-region methods then work on the scaled residuals and Jacobian of Triggs et al.'s
"Bundle adjustment — a modern synthesis" (section 4.3): with
:math:`s_i = \\sqrt{\\max(\\rho'_i + 2\\rho''_i r_i^2, \\epsilon)}`,
:math:`\\tilde r_i = r_i \\rho'_i / s_i` and :math:`\\tilde J_i = s_i J_i`, so that
:math:`\\tilde J^T \\tilde r` is the gradient of the robust cost and
:math:`\\tilde J^T \\tilde J` its Gauss–Newton Hessian.

>>> import numpy as np
>>> loss = robust_loss("huber", 1.0)
>>> float(loss.cost(np.array([0.5, 3.0])))  # 0.5 * (0.25 + (2 * 3 - 1))
2.625
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["LOSSES", "RobustLoss", "robust_loss"]

_EPS = float(np.finfo(np.float64).eps)


def _soft_l1(z: np.ndarray) -> np.ndarray:
    t = 1.0 + z
    return np.stack([2.0 * (t**0.5 - 1.0), t**-0.5, -0.5 * t**-1.5])


def _huber(z: np.ndarray) -> np.ndarray:
    inner = z <= 1.0
    zo = np.where(inner, 1.0, z)  # keeps the outer formulas finite where unused
    return np.stack([
        np.where(inner, z, 2.0 * zo**0.5 - 1.0),
        np.where(inner, 1.0, zo**-0.5),
        np.where(inner, 0.0, -0.5 * zo**-1.5),
    ])


def _cauchy(z: np.ndarray) -> np.ndarray:
    t = 1.0 + z
    return np.stack([np.log1p(z), 1.0 / t, -1.0 / t**2])


def _arctan(z: np.ndarray) -> np.ndarray:
    t = 1.0 + z**2
    return np.stack([np.arctan(z), 1.0 / t, -2.0 * z / t**2])


LOSSES: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "linear": None, "soft_l1": _soft_l1, "huber": _huber, "cauchy": _cauchy,
    "arctan": _arctan,
}


class RobustLoss(NamedTuple):
    """A loss :math:`\\rho` with its scale ``f_scale`` (see the module docstring)."""

    rho_of_z: Callable[[np.ndarray], Any]
    f_scale: float

    def rho(self, r: np.ndarray) -> np.ndarray:
        """:math:`C^2\\rho(z), \\rho'(z), \\rho''(z)/C^2` at :math:`z = (r/C)^2`, as
        a ``(3, m)`` array (``ValueError`` naming ``loss`` for another shape)."""
        c = self.f_scale
        out = np.array(self.rho_of_z((r / c) ** 2), dtype=np.float64)
        if out.shape != (3, r.size):
            raise ValueError(
                f"loss: the callable must return a (3, {r.size}) array of rho, rho' and "
                f"rho'', got shape {out.shape}"
            )
        out[0] *= c**2
        out[2] /= c**2
        return out

    def cost(self, r: np.ndarray) -> float:
        """The robust cost :math:`\\tfrac12\\sum C^2\\rho((r/C)^2)`."""
        return 0.5 * float(np.sum(self.rho(r)[0]))

    def scale(self, r: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scaled residuals and Jacobian :math:`(\\tilde r, \\tilde J)`."""
        rho = self.rho(r)
        s = rho[1] + 2.0 * rho[2] * r**2
        s[s < _EPS] = _EPS
        s **= 0.5
        return r * (rho[1] / s), j * s[:, None]


def robust_loss(loss: Any, f_scale: Any) -> RobustLoss | None:
    """The :class:`RobustLoss` for ``loss`` (a name in :data:`LOSSES` or a callable
    ``loss(z) -> (3, m)``) and ``f_scale`` (> 0); ``None`` for ``"linear"``.

    >>> robust_loss("linear", 1.0) is None
    True
    """
    if isinstance(f_scale, bool) or not isinstance(f_scale, (int, float, np.integer,
                                                             np.floating)):
        raise TypeError(f"f_scale: expected a number > 0, got {type(f_scale).__name__}")
    if not (np.isfinite(f_scale) and f_scale > 0):
        raise ValueError(f"f_scale: expected a finite number > 0, got {f_scale!r}")
    if callable(loss):
        return RobustLoss(loss, float(f_scale))
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(
            f"loss: expected one of {sorted(LOSSES)} or a callable, got {loss!r}"
        )
    fn = LOSSES[loss]
    return None if fn is None else RobustLoss(fn, float(f_scale))
