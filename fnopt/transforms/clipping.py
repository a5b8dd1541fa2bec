"""Clipping: :func:`clip` (element-wise), :func:`clip_by_global_norm` and
:func:`adaptive_grad_clip` (unit-wise, relative to the params)."""


from __future__ import annotations

from fnopt._base import (
    Params,
    Transform,
    Updates,
    check_nonnegative,
)
from fnopt.transforms._common import (
    _flat,
    _stateless,
)

# -- clipping ---------------------------------------------------------------------------


def clip(max_delta: float) -> Transform:
    """Clip every element of the updates to ``[-max_delta, max_delta]``.

    >>> import numpy as np, fnopt
    >>> clip(1.0).update(np.array([-3.0, 0.5, 2.0]), fnopt.transforms.EmptyState())[0]
    array([-1. ,  0.5,  1. ])
    """
    check_nonnegative("max_delta", max_delta)

    def fn(updates: Updates, params: Params | None) -> Updates:
        u, spec, be = _flat(updates)
        return spec.unflatten(be.clip(u, -max_delta, max_delta))

    return _stateless(fn, "clip", max_delta=max_delta)


def clip_by_global_norm(max_norm: float) -> Transform:
    """Rescale the updates so their global norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_`` does.

    :math:`u \\leftarrow u \\cdot \\min(1, c / (\\|u\\| + 10^{-6}))` with :math:`c` =
    ``max_norm`` and :math:`\\|u\\|` the Euclidean norm over all leaves (torch's
    :math:`10^{-6}` is kept so the two agree to round-off). No host synchronisation.

    >>> import numpy as np, fnopt
    >>> u, _ = clip_by_global_norm(1.0).update(np.array([3.0, 4.0]), fnopt.transforms.EmptyState())
    >>> np.round(u, 6)
    array([0.6, 0.8])
    """
    check_nonnegative("max_norm", max_norm)

    def fn(updates: Updates, params: Params | None) -> Updates:
        u, spec, be = _flat(updates)
        norm = be.sq_norm(u) ** 0.5
        coef = (max_norm / (norm + 1e-6)).clip(max=1.0)
        return spec.unflatten(be.scale(u, coef))

    return _stateless(fn, "clip_by_global_norm", max_norm=max_norm)


