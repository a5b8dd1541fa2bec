"""The 27 NIST StRD nonlinear-regression problems, with their certified values.

The data files in ``fnopt/datasets/nist/`` are NIST's own ``.dat`` files, unchanged:
the Statistical Reference Datasets of the NIST Information Technology Laboratory
(https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml), public-domain US Government
data. The copies shipped here were taken from the ``NIST_STRD/`` folder of the lmfit
project (https://github.com/lmfit/lmfit-py), which mirrors them. Each file holds the
observations, NIST's two starting points, the certified parameter values and standard
deviations, and the certified residual sum of squares; :func:`nist_strd` reads one
and attaches the model as a Python function ``model(x, b)`` (the formula of the file's
"Model:" section; ``x`` is ``(n_obs,)``, or ``(2, n_obs)`` for Nelson).

>>> d = nist_strd("Misra1a")
>>> len(d), d.certified
(14, (238.94212918, 0.00055015643181))
>>> float(d.residuals(d.certified) @ d.residuals(d.certified))  # the certified RSS
0.12455138894...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import attrs
import numpy as np

__all__ = ["NIST_STRD_NAMES", "NistProblem", "nist_strd"]

_PI = np.pi


def _rat(num: int) -> Callable[[Any, Any], Any]:
    """A rational model: a polynomial of degree ``num - 1`` over ``1 + ...`` (Kirby2,
    Hahn1, Thurber)."""

    def model(x: Any, b: Any) -> Any:
        top = sum(b[i] * x**i for i in range(num))
        bottom = 1.0 + sum(b[num + i] * x ** (i + 1) for i in range(len(b) - num))
        return top / bottom

    return model


def _enso(x: Any, b: Any) -> Any:
    w = 2 * _PI * x
    return (b[0] + b[1] * np.cos(w / 12) + b[2] * np.sin(w / 12) + b[4] * np.cos(w / b[3])
            + b[5] * np.sin(w / b[3]) + b[7] * np.cos(w / b[6]) + b[8] * np.sin(w / b[6]))


def _gauss(x: Any, b: Any) -> Any:
    return (b[0] * np.exp(-b[1] * x) + b[2] * np.exp(-((x - b[3]) ** 2) / b[4] ** 2)
            + b[5] * np.exp(-((x - b[6]) ** 2) / b[7] ** 2))


def _lanczos(x: Any, b: Any) -> Any:
    return b[0] * np.exp(-b[1] * x) + b[2] * np.exp(-b[3] * x) + b[4] * np.exp(-b[5] * x)


def _chwirut(x: Any, b: Any) -> Any:
    return np.exp(-b[0] * x) / (b[1] + b[2] * x)


def _exp_rise(x: Any, b: Any) -> Any:
    return b[0] * (1 - np.exp(-b[1] * x))


_MODELS: dict[str, Callable[[Any, Any], Any]] = {
    "Misra1a": _exp_rise,
    "Chwirut2": _chwirut,
    "Chwirut1": _chwirut,
    "Lanczos3": _lanczos,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "DanWood": lambda x, b: b[0] * x ** b[1],
    "Misra1b": lambda x, b: b[0] * (1 - (1 + b[1] * x / 2) ** (-2)),
    "Kirby2": _rat(3),
    "Hahn1": _rat(4),
    "Nelson": lambda x, b: b[0] - b[1] * x[0] * np.exp(-b[2] * x[1]),  # fits log(y)
    "MGH17": lambda x, b: b[0] + b[1] * np.exp(-x * b[3]) + b[2] * np.exp(-x * b[4]),
    "Lanczos1": _lanczos,
    "Lanczos2": _lanczos,
    "Gauss3": _gauss,
    "Misra1c": lambda x, b: b[0] * (1 - (1 + 2 * b[1] * x) ** (-0.5)),
    "Misra1d": lambda x, b: b[0] * b[1] * x * (1 + b[1] * x) ** (-1),
    "Roszman1": lambda x, b: b[0] - b[1] * x - np.arctan(b[2] / (x - b[3])) / _PI,
    "ENSO": _enso,
    "MGH09": lambda x, b: b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3]),
    "Thurber": _rat(4),
    "BoxBOD": _exp_rise,
    "Rat42": lambda x, b: b[0] / (1 + np.exp(b[1] - b[2] * x)),
    "MGH10": lambda x, b: b[0] * np.exp(b[1] / (x + b[2])),
    "Eckerle4": lambda x, b: (b[0] / b[1]) * np.exp(-0.5 * ((x - b[2]) / b[1]) ** 2),
    "Rat43": lambda x, b: b[0] / (1 + np.exp(b[1] - b[2] * x)) ** (1 / b[3]),
    "Bennett5": lambda x, b: b[0] * (b[1] + x) ** (-1 / b[2]),
}

#: the 27 problems, in NIST's order of difficulty (lower, average, higher)
NIST_STRD_NAMES: tuple[str, ...] = tuple(_MODELS)
_DIFFICULTY = {**dict.fromkeys(NIST_STRD_NAMES[:8], "lower"),
               **dict.fromkeys(NIST_STRD_NAMES[8:19], "average"),
               **dict.fromkeys(NIST_STRD_NAMES[19:], "higher")}


@attrs.frozen(eq=False)
class NistProblem:
    """A NIST StRD nonlinear regression problem (NumPy float64).

    Attributes:
      name: NIST's name (``"Misra1a"``, ...).
      x, y: the observations (``x`` is ``(2, n)`` for Nelson; ``y`` there is
        ``log(y)``, the response NIST's model fits).
      model: ``model(x, b) -> predictions``.
      starts: NIST's two starting points (far, near).
      certified, certified_std: the certified parameters and standard deviations.
      certified_rss: the certified residual sum of squares.
      difficulty: ``"lower"``, ``"average"`` or ``"higher"``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    model: Callable[[Any, Any], Any]
    starts: tuple[tuple[float, ...], ...]
    certified: tuple[float, ...]
    certified_std: tuple[float, ...]
    certified_rss: float
    difficulty: str

    def residuals(self, b: Any) -> np.ndarray:
        """``model(x, b) - y``."""
        return np.asarray(self.model(self.x, np.asarray(b, dtype=float))) - self.y

    def __len__(self) -> int:
        return int(self.y.shape[0])


_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _parse(text: str) -> tuple[list[list[float]], float, np.ndarray]:
    lines = text.splitlines()
    params = [[float(v) for v in _NUM.findall(ln.split("=", 1)[1])]
              for ln in lines if re.match(r"^\s*b\d+\s*=", ln)]
    rss = next(float(_NUM.findall(ln.split(":", 1)[1])[0])
               for ln in lines if ln.startswith("Residual Sum of Squares"))
    start = max(i for i, ln in enumerate(lines) if re.match(r"^Data:\s+y\b", ln))
    rows = [[float(v) for v in ln.split()] for ln in lines[start + 1:] if ln.strip()]
    return params, rss, np.array(rows)


def nist_strd(name: str) -> NistProblem:
    """The NIST StRD problem ``name`` (one of :data:`NIST_STRD_NAMES`, any case).

    Raises:
      ValueError: naming ``name`` when it is not one of the 27.
    """
    match = {n.lower(): n for n in NIST_STRD_NAMES}.get(str(name).lower())
    if match is None:
        raise ValueError(f"name: expected one of {list(NIST_STRD_NAMES)}, got {name!r}")
    text = resources.files("fnopt.datasets").joinpath("nist", f"{match}.dat").read_text()
    params, rss, data = _parse(text)
    y, x = data[:, 0], (data[:, 1:].T if data.shape[1] > 2 else data[:, 1])
    if match == "Nelson":
        y = np.log(y)
    starts = (tuple(p[0] for p in params), tuple(p[1] for p in params))
    return NistProblem(match, x, y, _MODELS[match], starts, tuple(p[2] for p in params),
                       tuple(p[3] for p in params), rss, _DIFFICULTY[match])
