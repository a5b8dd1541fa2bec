"""NIST StRD nonlinear regression data with certified values (Misra1a), shipped as CSV."""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import attrs
import numpy as np

from fnopt import backend as _backend

__all__ = ["NistDataset", "misra1a"]


@attrs.frozen(eq=False)
class NistDataset:
    """A NIST StRD nonlinear regression problem. Unpacks as ``x, y = data``.

    Attributes:
      x, y: the observations (1-D).
      model: the model, as NIST writes it.
      starts: NIST's two starting points (far, near).
      certified: the certified parameter values.
      certified_std: their certified standard deviations (standard errors).
      certified_rss: the certified residual sum of squares.
      description: where the data comes from.
    """

    x: Any
    y: Any
    model: str
    starts: tuple[tuple[float, ...], ...]
    certified: tuple[float, ...]
    certified_std: tuple[float, ...]
    certified_rss: float
    description: str

    def __iter__(self) -> Any:
        return iter((self.x, self.y))

    def __len__(self) -> int:
        return int(self.x.shape[0])


def misra1a(*, backend: Literal["numpy", "torch"] = "numpy", dtype: Any = "float64") -> NistDataset:
    """The NIST StRD dataset Misra1a: 14 observations of a dental-research adsorption
    study, model :math:`y = b_1 (1 - e^{-b_2 x})`, with NIST's certified estimates.

    Source: https://www.itl.nist.gov/div898/strd/nls/data/misra1a.shtml (D. Misra,
    NIST, 1978; public domain).

    >>> from fnopt import datasets
    >>> d = datasets.misra1a()
    >>> len(d), d.certified
    (14, (238.94212918, 0.00055015643181))
    """
    text = resources.files("fnopt.datasets").joinpath("misra1a.csv").read_text()
    rows = [ln for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    data = np.array([[float(v) for v in ln.split(",")] for ln in rows])
    y: Any = _backend.array(data[:, 0], backend, dtype)
    x: Any = _backend.array(data[:, 1], backend, dtype)
    return NistDataset(
        x, y, "y = b1 * (1 - exp(-b2 * x))", ((500.0, 1e-4), (250.0, 5e-4)),
        (2.3894212918e02, 5.5015643181e-04), (2.7070075241e00, 7.2668688436e-06),
        1.2455138894e-01,
        "NIST StRD Misra1a (D. Misra, NIST, 1978): dental research monomolecular "
        "adsorption study; public domain. https://www.itl.nist.gov/div898/strd/nls/data/"
        "misra1a.shtml",
    )
