"""Hessian providers and Hessian-vector products, for the second-order methods.

A Hessian provider is ``hessian(params, *batch) -> H``: the ``n x n`` matrix of second
derivatives with respect to the params flattened in leaf order (``fnopt.tree.leaves``),
on the params' backend. A Hessian-vector product is ``hvp(params, v, *batch) -> Hv``
with ``v`` and ``Hv`` pytrees shaped like ``params``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import (
    GradFn,
    Params,
    call_grad_fn,
    check_callable,
    check_hessian,
)

__all__ = [
    "hessian_from_function",
    "torch_hessian",
    "hvp_torch",
    "hvp_finite_differences",
    "hvp_from_hessian",
]

LossFn = Callable[..., Any]

HessianFn = Callable[..., Any]
HvpFn = Callable[..., Any]


def hessian_from_function(hess_fn: Callable[..., Any]) -> HessianFn:
    """A Hessian provider from a hand-written Hessian.

    Args:
      hess_fn: ``hess_fn(params, *batch) -> H``, the ``n x n`` Hessian with respect to
        the params flattened in leaf order (an array or tensor; for a single
        parameter also a 0-d array or NumPy scalar).

    Returns:
      ``hessian(params, *batch) -> H``, an ``(n, n)`` array/tensor with the dtype of
      the params (a ``ValueError``/``TypeError`` naming ``hess_fn`` otherwise).

    >>> import numpy as np
    >>> h = hessian_from_function(lambda p: np.diag(6.0 * p))   # f = sum(p ** 3)
    >>> h(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    check_callable(hess_fn, "hess_fn")

    def hessian(params: Params, *batch: Any) -> Any:
        return check_hessian(hess_fn(params, *batch), params, what="hess_fn")

    return hessian


def torch_hessian(loss_fn: LossFn) -> HessianFn:
    """A Hessian provider from a torch loss via ``torch.func.hessian``.

    The params pytree is flattened to one vector, so the Hessian is the ``n x n``
    matrix in leaf order (forward-over-reverse differentiation).

    >>> import torch
    >>> h = torch_hessian(lambda p: (p ** 3).sum())
    >>> h(torch.tensor([1.0, 2.0], dtype=torch.float64))
    tensor([[ 6.,  0.],
            [ 0., 12.]], dtype=torch.float64)
    """
    check_callable(loss_fn, "loss_fn")
    import torch.func

    def hessian(params: Params, *batch: Any) -> Any:
        leaves, spec = optree.tree_flatten(params)
        sizes = [x.numel() for x in leaves]

        def f(v: Any) -> Any:
            parts = torch.split(v, sizes)
            return loss_fn(
                spec.unflatten([p.reshape(x.shape) for p, x in zip(parts, leaves)]), *batch
            )

        h = torch.func.hessian(f)(torch.cat([x.reshape(-1) for x in leaves]))
        # forward-mode AD can promote float32 to float64 (python scalars times 0-d
        # tensors under jacfwd, torch 2.13): return the params' dtype
        return h.to(leaves[0].dtype)

    return hessian


def hvp_torch(loss_fn: LossFn) -> HvpFn:
    """Hessian-vector products of a torch loss: ``torch.func.jvp`` of its gradient.

    :math:`Hv = \\frac{d}{dt} \\nabla f(x + t v) |_{t=0}`, exact, at the cost of about
    two gradient evaluations and without forming :math:`H`.

    >>> import torch
    >>> hvp = hvp_torch(lambda p: (p ** 3).sum())
    >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> hvp(x, torch.tensor([1.0, 1.0], dtype=torch.float64))
    tensor([ 6., 12.], dtype=torch.float64)
    """
    check_callable(loss_fn, "loss_fn")
    import torch.func

    def hvp(params: Params, v: Params, *batch: Any) -> Any:
        g = torch.func.grad(lambda p: loss_fn(p, *batch))
        hv = torch.func.jvp(g, (params,), (v,))[1]
        # forward mode can promote float32 to float64 (see torch_hessian)
        return optree.tree_map(lambda a, p: a.to(p.dtype), hv, params)

    return hvp


def hvp_finite_differences(grad_fn: GradFn, step: float | None = None) -> HvpFn:
    """Hessian-vector products by central differences of a gradient provider.

    :math:`Hv \\approx (\\nabla f(x + h v) - \\nabla f(x - h v)) / 2h` with
    :math:`h = \\epsilon^{1/3} \\max(1, \\|x\\|) / \\|v\\|` by default (``epsilon`` the
    machine epsilon of the params' dtype): two ``grad_fn`` calls per product, either
    backend.

    Args:
      grad_fn: a gradient provider ``grad_fn(params, *batch) -> (value, grads)``.
      step: the step ``h`` along ``v`` (absolute); default as above.

    >>> import numpy as np
    >>> from fnopt.grad import from_functions
    >>> hvp = hvp_finite_differences(from_functions(lambda p: (p ** 3).sum(),
    ...                                             lambda p: 3 * p ** 2))
    >>> np.round(hvp(np.array([1.0, 2.0]), np.array([1.0, 1.0])), 6)
    array([ 6., 12.])
    """
    check_callable(grad_fn, "grad_fn")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            raise TypeError(f"step: expected a number or None, got {type(step).__name__}")
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"step: expected a finite number > 0, got {step}")

    def hvp(params: Params, v: Params, *batch: Any) -> Any:
        from fnopt import tree

        v_norm = float(_backend.to_numpy(tree.global_norm(v)))
        if v_norm == 0.0:
            return tree.zeros_like(params)
        if step is None:
            leaf = optree.tree_leaves(params)[0]
            eps = float(np.finfo(_backend.dtype_name(leaf.dtype)).eps)
            x_norm = float(_backend.to_numpy(tree.global_norm(params)))
            h = eps ** (1.0 / 3.0) * max(1.0, x_norm) / v_norm
        else:
            h = float(step)
        # g_plus kept across the second call: fnopt's own copy
        _, g_plus = call_grad_fn(grad_fn, tree.axpy(h, v, params), batch, keep=True)
        _, g_minus = call_grad_fn(grad_fn, tree.axpy(-h, v, params), batch)
        return tree.scale(0.5 / h, tree.sub(g_plus, g_minus))

    return hvp


def hvp_from_hessian(hessian: HessianFn) -> HvpFn:
    """Hessian-vector products from a Hessian provider: :math:`Hv` by a matrix-vector
    product on the flattened params (the Hessian is formed at every call).

    >>> import numpy as np
    >>> hvp = hvp_from_hessian(hessian_from_function(lambda p: np.diag(6.0 * p)))
    >>> hvp(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    array([ 6., 12.])
    """
    check_callable(hessian, "hessian")

    def hvp(params: Params, v: Params, *batch: Any) -> Any:
        leaves, spec = optree.tree_flatten(params)
        be = _backend.of_leaves(leaves)
        hv = hessian(params, *batch) @ be.ravel(spec.flatten_up_to(v))
        return spec.unflatten(be.unravel(hv, leaves))

    return hvp
