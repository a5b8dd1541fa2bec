"""Gradient providers and a gradient checker.

A gradient provider is a function ``grad_fn(params, *batch) -> (value, grads)``: the
loss (a 0-d array or tensor) and a pytree of gradients with exactly the structure,
shapes and dtypes of ``params``. The providers here build one from

* hand-written derivatives (:func:`from_functions`, NumPy or torch),
* ``torch.func`` (:func:`torch_func`) or ``torch.autograd`` (:func:`torch_autograd`),
* central finite differences (:func:`finite_differences`, either backend),
* a ``torch.nn.Module`` and a loss on its outputs (:func:`module`),

and :func:`check` compares two providers at a point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import (
    GradFn,
    Params,
    check_callable,
    check_grad_fn_output,
    check_grads,
    check_loss,
    check_params,
)

__all__ = [
    "from_functions",
    "torch_func",
    "torch_autograd",
    "finite_differences",
    "check",
    "GradCheckReport",
    "validated",
    "module",
    "hessian_from_function",
    "torch_hessian",
    "hvp_torch",
    "hvp_finite_differences",
    "hvp_from_hessian",
]

LossFn = Callable[..., Any]


def _fast_check(params: Params, value: Any, grads: Any, what: str) -> Any:
    """Validate a provider's output; cheap for a single-array params."""
    if (
        type(params) is np.ndarray
        and type(grads) is np.ndarray
        and params.shape == grads.shape
        and params.dtype == grads.dtype
        and type(value) is np.ndarray
        and value.ndim == 0
    ):
        return value
    value = check_loss(value, what=f"{what} value")
    check_grads(params, grads, what=f"{what} grads")
    return value


_NP_FLOAT_SCALARS = (np.float64, np.float32)


def from_functions(value_fn: LossFn, grad_fn: LossFn) -> GradFn:
    """A provider from a hand-written loss and its hand-written gradient.

    Args:
      value_fn: ``value_fn(params, *batch) -> loss`` (a scalar).
      grad_fn: ``grad_fn(params, *batch) -> grads`` (same structure as params).

    Returns:
      ``provider(params, *batch) -> (value, grads)``; the loss is returned as a 0-d
      array/tensor and both outputs are checked against ``params`` (a clear
      ``ValueError``/``TypeError`` naming the leaf path otherwise).

    >>> import numpy as np
    >>> g = from_functions(lambda p: p @ p, lambda p: 2 * p)
    >>> g(np.array([1.0, 2.0]))
    (array(5.), array([2., 4.]))
    """
    check_callable(value_fn, "value_fn")
    check_callable(grad_fn, "grad_fn")

    def provider(params: Params, *batch: Any) -> tuple[Any, Any]:
        value = value_fn(params, *batch)
        grads = grad_fn(params, *batch)
        if type(value) in _NP_FLOAT_SCALARS:  # a NumPy scalar: a cheap 0-d array
            value = np.asarray(value)
        elif type(value) is not np.ndarray and not _backend.is_tensor(value):
            value = check_loss(value, what="value_fn")
        if type(grads) in _NP_FLOAT_SCALARS:  # ``2 * p`` for a 0-d array p
            grads = np.asarray(grads)
        return _fast_check(params, value, grads, "from_functions"), grads

    return provider


def validated(grad_fn: GradFn) -> GradFn:
    """Wrap any ``grad_fn`` so that each output is checked against ``params``."""
    check_callable(grad_fn, "grad_fn")

    def provider(params: Params, *batch: Any) -> tuple[Any, Any]:
        return check_grad_fn_output(grad_fn(params, *batch), params)

    return provider


def torch_func(loss_fn: LossFn) -> GradFn:
    """A provider from a torch loss via ``torch.func.grad_and_value``.

    ``loss_fn(params, *batch)`` must return a 0-d tensor. The provider is composable
    with ``torch.func`` transforms (``vmap``); for tiny problems, :func:`torch_autograd`
    has less per-call overhead.

    >>> import torch
    >>> g = torch_func(lambda p: (p ** 2).sum())
    >>> g(torch.tensor([1.0, 2.0], dtype=torch.float64))
    (tensor(5., dtype=torch.float64), tensor([2., 4.], dtype=torch.float64))
    """
    check_callable(loss_fn, "loss_fn")
    import torch.func

    gv = torch.func.grad_and_value(loss_fn)

    def provider(params: Params, *batch: Any) -> tuple[Any, Any]:
        grads, value = gv(params, *batch)
        if value.ndim != 0:
            raise ValueError(
                f"loss_fn: must return a scalar (0-d tensor), got shape {tuple(value.shape)}"
            )
        return value, grads

    return provider


def torch_autograd(loss_fn: LossFn, *, create_graph: bool = False) -> GradFn:
    """A provider from a torch loss via ``torch.autograd.grad``.

    On tiny problems this is about 2x cheaper per call than :func:`torch_func` on a
    2-core CPU (about 57 µs against 134 µs for the 2-D Rosenbrock), because it skips
    ``torch.func``'s functional transforms; on large models the two cost the same.
    Params that ``loss_fn`` does not use get zero gradients.

    Args:
      loss_fn: ``loss_fn(params, *batch) -> 0-d tensor``.
      create_graph: keep the graph of the gradient computation (for differentiating
        through the optimizer). Off by default: outputs are detached.

    >>> import torch
    >>> g = torch_autograd(lambda p: (p["w"] ** 2).sum())
    >>> g({"w": torch.tensor([3.0])})
    (tensor(9.), {'w': tensor([6.])})
    """
    check_callable(loss_fn, "loss_fn")
    import torch

    def provider(params: Params, *batch: Any) -> tuple[Any, Any]:
        leaves, spec = optree.tree_flatten(params)
        if create_graph:
            req = [x if x.requires_grad else x.detach().requires_grad_(True) for x in leaves]
        else:
            req = [x.detach().requires_grad_(True) for x in leaves]
        with torch.enable_grad():
            value = loss_fn(spec.unflatten(req), *batch)
            if not (_backend.is_tensor(value) and value.ndim == 0):
                check_loss(value, what="loss_fn")
            raw = torch.autograd.grad(value, req, allow_unused=True, create_graph=create_graph)
        grads = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, raw)]
        if not create_graph:
            value = value.detach()
        return value, spec.unflatten(grads)

    return provider


def finite_differences(loss_fn: LossFn, step: float | None = None) -> GradFn:
    """A provider by central differences: :math:`\\partial_i f \\approx
    (f(x + h e_i) - f(x - h e_i)) / 2h`, on either backend.

    Costs ``2n + 1`` loss evaluations for ``n`` parameters: a reference for tests and
    :func:`check`, not a way to train.

    Args:
      loss_fn: ``loss_fn(params, *batch) -> scalar``.
      step: the absolute step ``h``; by default
        :math:`h_i = \\epsilon^{1/3} \\max(1, |x_i|)` with :math:`\\epsilon` the machine
        epsilon of the leaf's dtype.

    >>> import numpy as np
    >>> v, g = finite_differences(lambda p: (p ** 3).sum())(np.array([2.0]))
    >>> bool(abs(g[0] - 12.0) < 1e-6)
    True
    """
    check_callable(loss_fn, "loss_fn")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            raise TypeError(f"step: expected a number or None, got {type(step).__name__}")
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"step: expected a finite number > 0, got {step}")

    def f(p: Params, batch: tuple[Any, ...]) -> float:
        v = check_loss(loss_fn(p, *batch), what="loss_fn")
        return _backend.NUMPY.to_float(v.item() if _backend.is_tensor(v) else v)

    def provider(params: Params, *batch: Any) -> tuple[Any, Any]:
        be = check_params(params)
        leaves, spec = optree.tree_flatten(params)
        value = check_loss(loss_fn(params, *batch), what="loss_fn")
        grads = []
        for li, leaf in enumerate(leaves):
            flat_np = _backend.to_numpy(leaf).reshape(-1)
            eps = float(np.finfo(flat_np.dtype).eps)
            g = np.zeros(flat_np.shape, dtype=np.float64)
            for i in range(flat_np.size):
                xi = float(flat_np[i])
                h = step if step is not None else eps ** (1.0 / 3.0) * max(1.0, abs(xi))
                vals = []
                for sign in (1.0, -1.0):
                    pert = be.clone([leaf])[0]
                    be.set_flat_(pert, i, xi + sign * h)
                    new_leaves = list(leaves)
                    new_leaves[li] = pert
                    vals.append(f(spec.unflatten(new_leaves), batch))
                g[i] = (vals[0] - vals[1]) / (2.0 * h)
            grads.append(be.from_numpy(g.reshape(tuple(leaf.shape)), leaf))
        return value, spec.unflatten(grads)

    return provider


@attrs.frozen
class GradCheckReport:
    """The outcome of :func:`check`.

    Attributes:
      ok: whether every element satisfies ``|g - r| <= atol + rtol * |r|``.
      max_abs_error: ``max |g - r|`` over all elements.
      max_rel_error: ``max |g - r| / max(|r|, tiny)`` over all elements.
      worst_path: the leaf path (e.g. ``"['w']"``) where the tolerance is most violated
        (or most nearly so).
      value_abs_error: ``|f_g - f_r|`` between the two providers' losses.
    """

    ok: bool
    max_abs_error: float
    max_rel_error: float
    worst_path: str
    value_abs_error: float

    def __bool__(self) -> bool:
        return self.ok


def check(
    grad_fn: GradFn,
    reference: GradFn,
    params: Params,
    *batch: Any,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> GradCheckReport:
    """Compare ``grad_fn`` with ``reference`` at ``params`` (e.g. against
    :func:`finite_differences`).

    >>> import numpy as np
    >>> mine = from_functions(lambda p: (p ** 2).sum(), lambda p: 2 * p)
    >>> ref = finite_differences(lambda p: (p ** 2).sum())
    >>> check(mine, ref, np.array([1.0, -2.0])).ok
    True
    """
    check_callable(grad_fn, "grad_fn")
    check_callable(reference, "reference")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    check_params(params)
    v1, g1 = check_grad_fn_output(grad_fn(params, *batch), params, what="grad_fn")
    v2, g2 = check_grad_fn_output(reference(params, *batch), params, what="reference")
    paths = [
        "".join(f"[{k!r}]" for k in p) if p else "<root>" for p in optree.tree_paths(params)
    ]
    ok = True
    max_abs = max_rel = 0.0
    worst, worst_ratio = paths[0], -1.0
    for path, a, b in zip(paths, optree.tree_leaves(g1), optree.tree_leaves(g2)):
        a64 = _backend.to_numpy(a).astype(np.float64)
        b64 = _backend.to_numpy(b).astype(np.float64)
        d = np.abs(a64 - b64)
        tiny = np.finfo(np.float64).tiny
        max_abs = max(max_abs, float(d.max()))
        max_rel = max(max_rel, float((d / np.maximum(np.abs(b64), tiny)).max()))
        ratio = float((d / (atol + rtol * np.abs(b64) + tiny)).max())
        ok = ok and bool(np.all(d <= atol + rtol * np.abs(b64)))
        if ratio > worst_ratio:
            worst, worst_ratio = path, ratio
    fv1 = float(_backend.to_numpy(v1))
    fv2 = float(_backend.to_numpy(v2))
    return GradCheckReport(ok, max_abs, max_rel, worst, abs(fv1 - fv2))


def module(module: Any, loss_fn: LossFn) -> GradFn:
    """A provider for a ``torch.nn.Module``: ``grad_fn(params, inputs, *targets)``.

    The loss is ``loss_fn(module(inputs), *targets)``, evaluated with ``params`` (a dict
    as made by :func:`fnopt.torch.params_of`) in place of the module's own parameters
    through ``torch.func.functional_call``; the gradient comes from
    ``torch.func.grad_and_value``. The module itself is not modified, except as its own
    ``forward`` does: buffers (e.g. BatchNorm running statistics) are the module's
    live buffers, so in ``train()`` mode they update as they would in a plain forward
    pass, and in ``eval()`` mode they are only read. Dropout and BatchNorm follow
    ``module.training`` at each call. Parameters missing from ``params`` (e.g. frozen
    ones left out by ``params_of``) are taken from the module and get no gradient.

    Args:
      module: a ``torch.nn.Module``.
      loss_fn: ``loss_fn(outputs, *targets) -> 0-d tensor``, e.g.
        ``torch.nn.functional.cross_entropy``.

    Returns:
      ``grad_fn(params, inputs, *targets) -> (value, grads)``; with
      :func:`fnopt.fixed_point`, pass ``data=`` an iterable of ``(inputs, targets)``.

    >>> import torch, fnopt
    >>> net = torch.nn.Linear(2, 1).double()
    >>> grad_fn = fnopt.grad.module(net, lambda out, y: ((out[:, 0] - y) ** 2).mean())
    >>> params = fnopt.torch.params_of(net)
    >>> x, y = torch.ones(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    >>> value, grads = grad_fn(params, x, y)
    >>> sorted(grads), grads["weight"].shape
    (['bias', 'weight'], torch.Size([1, 2]))
    """
    import torch
    import torch.func

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    check_callable(loss_fn, "loss_fn")
    net = module
    names = frozenset(name for name, _ in net.named_parameters())

    def loss_of(params: dict[str, Any], buffers: dict[str, Any], inputs: Any, *targets: Any) -> Any:
        # buffers are an argument (not captured) so train-mode updates are allowed
        outputs = torch.func.functional_call(net, (params, buffers), (inputs,))
        return loss_fn(outputs, *targets)

    gv = torch.func.grad_and_value(loss_of)

    def provider(params: Params, *batch: Any) -> tuple[Any, Any]:
        if not isinstance(params, dict):
            raise TypeError(
                f"params: expected a dict of name -> tensor (see fnopt.torch.params_of), "
                f"got {type(params).__name__}"
            )
        unknown = [k for k in params if k not in names]
        if unknown:
            raise ValueError(
                f"params: {unknown!r} are not parameters of the module "
                f"(it has {sorted(names)!r})"
            )
        if not batch:
            raise TypeError(
                "grad_fn: expected a batch (inputs, *targets) after params; with "
                "fixed_point pass data=[(inputs, targets), ...]"
            )
        grads, value = gv(params, dict(net.named_buffers()), *batch)
        if value.ndim != 0:
            raise ValueError(
                f"loss_fn: must return a scalar (0-d tensor), got shape {tuple(value.shape)}"
            )
        return value, grads

    return provider


# -- Hessian providers and Hessian-vector products (second-order methods) --------------
#
# A Hessian provider is ``hessian(params, *batch) -> H``: the ``n x n`` matrix of second
# derivatives with respect to the params flattened in leaf order (``fnopt.tree.leaves``),
# on the params' backend. A Hessian-vector product is ``hvp(params, v, *batch) -> Hv``
# with ``v`` and ``Hv`` pytrees shaped like ``params``.

HessianFn = Callable[..., Any]
HvpFn = Callable[..., Any]


def _n_params(leaves: list[Any]) -> int:
    return sum(int(x.numel()) if _backend.is_tensor(x) else int(np.size(x)) for x in leaves)


def hessian_from_function(hess_fn: Callable[..., Any]) -> HessianFn:
    """A Hessian provider from a hand-written Hessian.

    Args:
      hess_fn: ``hess_fn(params, *batch) -> H``, the ``n x n`` Hessian with respect to
        the params flattened in leaf order (an array or tensor).

    Returns:
      ``hessian(params, *batch) -> H``, with the shape checked (``ValueError`` naming
      ``hess_fn`` otherwise) and the dtype of the params.

    >>> import numpy as np
    >>> h = hessian_from_function(lambda p: np.diag(6.0 * p))   # f = sum(p ** 3)
    >>> h(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    check_callable(hess_fn, "hess_fn")

    def hessian(params: Params, *batch: Any) -> Any:
        leaves = optree.tree_leaves(params)
        n = _n_params(leaves)
        h = hess_fn(params, *batch)
        if tuple(h.shape) != (n, n):
            raise ValueError(
                f"hess_fn: expected a ({n}, {n}) Hessian for {n} parameters, got shape "
                f"{tuple(h.shape)}"
            )
        if h.dtype != leaves[0].dtype:
            h = h.to(leaves[0].dtype) if _backend.is_tensor(h) else h.astype(leaves[0].dtype)
        return h

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
            eps = float(np.finfo(_backend.to_numpy(leaf).dtype).eps)
            x_norm = float(_backend.to_numpy(tree.global_norm(params)))
            h = eps ** (1.0 / 3.0) * max(1.0, x_norm) / v_norm
        else:
            h = float(step)
        _, g_plus = grad_fn(tree.axpy(h, v, params), *batch)
        _, g_minus = grad_fn(tree.axpy(-h, v, params), *batch)
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


# -- residual providers for least squares (fnopt.residuals) -----------------------------
from fnopt.residuals import Linearization as Linearization  # noqa: E402
from fnopt.residuals import check_jacobian as check_jacobian  # noqa: E402
from fnopt.residuals import residuals_finite_differences as residuals_finite_differences  # noqa: E402
from fnopt.residuals import residuals_from_functions as residuals_from_functions  # noqa: E402
from fnopt.residuals import residuals_matrix_free as residuals_matrix_free  # noqa: E402
from fnopt.residuals import residuals_torch as residuals_torch  # noqa: E402

__all__ += [
    "Linearization",
    "check_jacobian",
    "residuals_finite_differences",
    "residuals_from_functions",
    "residuals_matrix_free",
    "residuals_torch",
]
