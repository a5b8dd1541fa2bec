"""Small real datasets that ship with fnopt, and helpers to split them.

>>> from fnopt import datasets
>>> data = datasets.iris()
>>> len(data), data.target_names
(150, ('setosa', 'versicolor', 'virginica'))
"""

from fnopt.datasets._iris import Dataset as Dataset
from fnopt.datasets._iris import iris as iris
from fnopt.datasets._iris import one_hot as one_hot
from fnopt.datasets._iris import stratified_indices as stratified_indices
from fnopt.datasets._iris import train_test_split as train_test_split

__all__ = ["Dataset", "iris", "one_hot", "stratified_indices", "train_test_split"]

from fnopt.datasets._nist import NistDataset as NistDataset
from fnopt.datasets._nist import misra1a as misra1a

__all__ += ["NistDataset", "misra1a"]

from fnopt.datasets._nist_strd import NIST_STRD_NAMES as NIST_STRD_NAMES  # noqa: E402
from fnopt.datasets._nist_strd import NistProblem as NistProblem  # noqa: E402
from fnopt.datasets._nist_strd import nist_strd as nist_strd  # noqa: E402

__all__ += ["NIST_STRD_NAMES", "NistProblem", "nist_strd"]
