"""Clipping: :func:`clip` (element-wise), :func:`clip_by_global_norm` and
:func:`clip_by_block_rms` (leaf by leaf)."""


from __future__ import annotations

from fnopt._base import (
    Params,
    Transform,
    Updates,
    check_nonnegative,
    check_positive,
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


def clip_by_global_norm(max_norm: float, *, eps: float = 0.0) -> Transform:
    """Rescale the updates so their global norm is at most ``max_norm``.

    With ``eps=0`` (the default) this is optax's exact rule:
    :math:`u \\leftarrow u` when :math:`\\|u\\| < c`, else :math:`u \\cdot c / \\|u\\|`
    (:math:`c` = ``max_norm``, :math:`\\|u\\|` the Euclidean norm over all leaves).
    With ``eps > 0`` it is ``torch.nn.utils.clip_grad_norm_``'s rule,
    :math:`u \\cdot \\min(1, c / (\\|u\\| + \\epsilon))`; torch uses
    ``eps=1e-6``, so pass that for torch's trajectories to round-off. No host
    synchronisation.

    Args:
      max_norm: :math:`c` >= 0.
      eps: added to the norm before dividing (torch: 1e-6), >= 0.

    Returns:
      A stateless :class:`fnopt.Transform`.

    >>> import numpy as np, fnopt
    >>> u, _ = clip_by_global_norm(1.0).update(np.array([3.0, 4.0]), fnopt.transforms.EmptyState())
    >>> u
    array([0.6, 0.8])
    """
    check_nonnegative("max_norm", max_norm)
    check_nonnegative("eps", eps)

    def fn(updates: Updates, params: Params | None) -> Updates:
        u, spec, be = _flat(updates)
        norm = be.sq_norm(u) ** 0.5
        if eps:
            coef = (max_norm / (norm + eps)).clip(max=1.0)
        else:  # c / max(|u|, c): 1 below the threshold, exact above it
            coef = max_norm / norm.clip(min=max_norm) if max_norm else (norm < 0) * 1.0
        return spec.unflatten(be.scale(u, coef))

    return _stateless(fn, "clip_by_global_norm", max_norm=max_norm, eps=eps)


def clip_by_block_rms(threshold: float) -> Transform:
    """Clip each leaf so that its root-mean-square is at most ``threshold``
    (optax.clip_by_block_rms): :math:`u \\leftarrow u / \\max(1, \\text{RMS}(u)/\\tau)`.

    Args:
      threshold: :math:`\\tau` > 0.

    Returns:
      A stateless :class:`fnopt.Transform`.

    >>> import numpy as np, fnopt
    >>> t = clip_by_block_rms(1.0)
    >>> t.update([np.array([3.0, 4.0]), np.array([0.5])], fnopt.transforms.EmptyState())[0]
    [array([0.84852814, 1.13137085]), array([0.5])]
    """
    check_positive("threshold", threshold)

    def fn(updates: Updates, params: Params | None) -> Updates:
        u, spec, be = _flat(updates)
        out = []
        for x, n in zip(u, be.norms(u)):
            rms = n / max(be.size(x), 1) ** 0.5
            out.append(x / (rms / threshold).clip(min=1.0))
        return spec.unflatten(out)

    return _stateless(fn, "clip_by_block_rms", threshold=threshold)
