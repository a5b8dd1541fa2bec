"""Implicit differentiation of a converged solution (torch).

At a minimiser :math:`x^*(\\theta)` of a smooth loss :math:`f(x, \\theta)` the gradient
vanishes, :math:`\\nabla_x f(x^*(\\theta), \\theta) = 0`. Differentiating that identity
(the implicit function theorem) gives

.. math::
    \\frac{\\partial x^*}{\\partial \\theta}
    = -H^{-1} \\, \\partial_\\theta \\nabla_x f(x^*, \\theta),
    \\qquad H = \\nabla_x^2 f(x^*, \\theta),

so the reverse-mode product with an incoming cotangent :math:`\\bar x` is
:math:`\\bar\\theta = -(\\partial_\\theta \\nabla_x f)^\\top w` with :math:`H w = \\bar x`.
:func:`solution` attaches exactly that backward rule to a solution found by any means
(a custom :class:`torch.autograd.Function`); :func:`fixed_point` runs
:func:`fnopt.fixed_point` without a graph and then attaches it. The linear system is
solved by conjugate gradients with Hessian-vector products (``torch.func.vjp`` of the
gradient, linearised once), so neither the Hessian nor the iterates are ever stored:
memory does not grow with the number of solver iterations, unlike the unrolled
``fnopt.fixed_point(..., differentiable=True)``.

What works, honestly:

* reverse mode (``backward``, ``torch.autograd.grad``, ``torch.func.grad``) with respect
  to any tensor leaf of ``theta`` that requires grad (hyperparameters, data);
* ``torch.func.vmap`` over :func:`solution` (the function sets
  ``generate_vmap_rule=True``): a batch of problems solved beforehand can be
  differentiated in one vectorised backward. Under any ``torch.func`` transform the
  CG solve cannot stop early on its residual (that needs a host-side decision), so it
  runs all ``cg_max_iters`` iterations;
* :func:`fixed_point` itself cannot run under ``vmap``: its loop decides when to stop
  on the host;
* first derivatives only: the backward is not itself differentiable (no Hessians of
  the outer objective), and forward mode (``jvp``) is not implemented.

The Hessian must be positive definite at the solution (a strict local minimum);
``damping`` adds :math:`\\delta I` to it for nearly singular problems.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import optree

from fnopt import backend as _backend
from fnopt import grad as _grad
from fnopt import loop as _loop
from fnopt._base import Optimizer, Params, check_callable, check_params
from fnopt.stop import Criterion

__all__ = ["solution", "fixed_point"]

LossFn = Callable[[Params, Any], Any]


def solution(
    loss_fn: LossFn,
    x_star: Params,
    theta: Any,
    *,
    cg_tol: float | None = None,
    cg_max_iters: int | None = None,
    damping: float = 0.0,
) -> Params:
    """``x_star`` with the implicit derivative :math:`\\partial x^*/\\partial\\theta`
    attached, for a minimiser ``x_star`` of ``loss_fn(·, theta)``.

    The returned params equal ``x_star`` (fresh tensors); gradients flow from them to
    the leaves of ``theta`` that require grad through
    :math:`\\bar\\theta = -(\\partial_\\theta\\nabla_x f)^\\top (H + \\delta I)^{-1}\\bar x`
    (see the module docstring), never through how ``x_star`` was computed.

    Args:
      loss_fn: ``loss_fn(params, theta) -> 0-d tensor``, twice differentiable, written
        with torch operations that ``torch.func`` can transform.
      x_star: a minimiser of ``loss_fn(·, theta)`` (a pytree of tensors).
      theta: a tensor or pytree of tensors; leaves with ``requires_grad`` receive
        gradients.
      cg_tol: stop CG when the residual norm is ``<= cg_tol * |x̄|``; default
        ``1e-10`` when ``x_star`` has a float64 leaf, else ``1e-5``.
      cg_max_iters: CG iteration limit; default ``min(number of elements of x, 200)``.
      damping: :math:`\\delta \\ge 0` added to the Hessian's diagonal.

    Returns:
      A pytree like ``x_star`` connected to ``theta``'s autograd graph.

    >>> import torch
    >>> lam = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    >>> loss = lambda x, lam: 0.5 * (x - 3.0).pow(2).sum() + 0.5 * lam * x.pow(2).sum()
    >>> x = solution(loss, torch.tensor([1.5], dtype=torch.float64), lam)  # x* = 3/(1+lam)
    >>> torch.autograd.grad(x.sum(), lam)  # d x*/d lam = -3/(1+lam)^2
    (tensor(-0.7500, dtype=torch.float64),)
    """
    check_callable(loss_fn, "loss_fn")
    if check_params(x_star, what="x_star") is not _backend.TORCH:
        raise TypeError("x_star: implicit differentiation needs torch tensors")
    th_leaves, th_spec = optree.tree_flatten(theta)
    for i, t in enumerate(th_leaves):
        if not _backend.is_tensor(t):
            raise TypeError(f"theta: leaf {i} is {type(t).__name__}; expected a torch.Tensor")
    x_leaves, x_spec = optree.tree_flatten(x_star)
    if cg_tol is None:
        cg_tol = 1e-10 if any(x.dtype.itemsize >= 8 for x in x_leaves) else 1e-5
    _check_number("cg_tol", cg_tol, positive=True)
    _check_number("damping", damping, positive=False)
    if cg_max_iters is None:
        cg_max_iters = max(1, min(sum(x.numel() for x in x_leaves), 200))
    elif isinstance(cg_max_iters, bool) or not isinstance(cg_max_iters, int) or cg_max_iters < 1:
        raise ValueError(f"cg_max_iters: expected an int >= 1, got {cg_max_iters!r}")
    opts = _Options(loss_fn, x_spec, th_spec, len(x_leaves), cg_tol, cg_max_iters, damping)
    out = _IMPLICIT.apply(opts, *x_leaves, *th_leaves)
    return x_spec.unflatten(list(out))


def fixed_point(
    opt: Optimizer,
    params: Params,
    loss_fn: LossFn,
    theta: Any,
    *,
    stop: Criterion,
    cg_tol: float | None = None,
    cg_max_iters: int | None = None,
    damping: float = 0.0,
    **loop_kwargs: Any,
) -> _loop.Result:
    """Minimise ``loss_fn(·, theta)`` with :func:`fnopt.fixed_point`, then make the
    solution differentiable with respect to ``theta`` by implicit differentiation.

    The loop runs with ``theta`` detached and without an autograd graph, so memory
    does not depend on the number of iterations; ``Result.params`` is
    :func:`solution` applied to the final iterate. The derivative is exact only at a
    stationary point: stop on a tight criterion (a ``RuntimeWarning`` is issued when
    the run did not converge).

    Args:
      opt: an :class:`fnopt.Optimizer`.
      params: the starting point (torch tensors; only its values are used).
      loss_fn: ``loss_fn(params, theta) -> 0-d tensor``.
      theta: a tensor or pytree of tensors (hyperparameters, data).
      stop: the stopping criterion, as in :func:`fnopt.fixed_point`.
      cg_tol, cg_max_iters, damping: passed to :func:`solution`.
      **loop_kwargs: other keywords of :func:`fnopt.fixed_point` (``callback``,
        ``record``, ``on_failure``); ``data`` and ``differentiable`` are rejected.

    Returns:
      The :class:`fnopt.Result` of the run, with ``params`` attached to ``theta``.

    >>> import torch, fnopt
    >>> lam = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    >>> loss = lambda x, lam: 0.5 * (x - 3.0).pow(2).sum() + 0.5 * lam * x.pow(2).sum()
    >>> r = fixed_point(fnopt.sgd(0.5), torch.zeros(1, dtype=torch.float64), loss, lam,
    ...                 stop=fnopt.stop.grad_norm_below(1e-12) | fnopt.stop.max_iters(100))
    >>> r.params, torch.autograd.grad(r.params.sum(), lam)
    (tensor([1.5000], dtype=torch.float64, grad_fn=...), (tensor(-0.7500, dtype=torch.float64),))
    """
    check_callable(loss_fn, "loss_fn")
    for key in ("data", "differentiable"):
        if key in loop_kwargs:
            raise ValueError(
                f"{key}: not supported by implicit.fixed_point (the optimality condition "
                "is that of the full, deterministic loss; the loop keeps no graph)"
            )
    if check_params(params) is not _backend.TORCH:
        raise TypeError("params: implicit differentiation needs torch tensors")
    theta_const = optree.tree_map(_detach, theta)
    start = optree.tree_map(_detach, params)
    grad_fn = _grad.torch_autograd(lambda p: loss_fn(p, theta_const))
    result = _loop.fixed_point(opt, start, grad_fn, stop=stop, **loop_kwargs)
    if not result.converged:
        warnings.warn(
            f"implicit.fixed_point: the run stopped without converging ({result.reason}); "
            "the implicit derivative assumes a stationary point",
            RuntimeWarning,
            stacklevel=2,
        )
    x = solution(
        loss_fn,
        result.params,
        theta,
        cg_tol=cg_tol,
        cg_max_iters=cg_max_iters,
        damping=damping,
    )
    return attrs.evolve(result, params=x)


# -- implementation ------------------------------------------------------------------


@attrs.frozen
class _Options:
    loss_fn: LossFn
    x_spec: Any
    th_spec: Any
    n_x: int
    cg_tol: float
    cg_max_iters: int
    damping: float


def _check_number(name: str, value: Any, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name}: expected a finite number {'>' if positive else '>='} 0, "
                         f"got {value}")


def _detach(x: Any) -> Any:
    """``x`` cut from the autograd graph (a tensor); any other leaf as it is."""
    return _backend.of_value(x).detach([x])[0]


def _torch() -> Any:
    import torch

    return torch


def _make_function() -> Any:
    function_base: Any = _torch().autograd.Function

    class _ImplicitSolution(function_base):
        generate_vmap_rule = True

        @staticmethod
        def forward(opts: _Options, *tensors: Any) -> tuple[Any, ...]:
            return tuple(x.detach().clone() for x in tensors[: opts.n_x])

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            del output
            opts = inputs[0]
            ctx.opts = opts
            ctx.save_for_backward(*inputs[1:])

        @staticmethod
        def backward(ctx: Any, *x_bar: Any) -> tuple[Any, ...]:
            opts: _Options = ctx.opts
            saved = ctx.saved_tensors
            xs, ths = tuple(saved[: opts.n_x]), tuple(saved[opts.n_x :])
            wanted = [i for i, need in enumerate(ctx.needs_input_grad[1 + opts.n_x :]) if need]
            none_x: tuple[Any, ...] = (None,) * opts.n_x
            if not wanted:
                return (None, *none_x, *([None] * len(ths)))
            w = _solve_hessian(opts, xs, ths, list(x_bar))
            th_grads = _mixed_vjp(opts, xs, ths, wanted, w)
            out: list[Any] = [None] * len(ths)
            for i, g in zip(wanted, th_grads):
                out[i] = -g
            return (None, *none_x, *out)

    return _ImplicitSolution


class _LazyFunction:
    """Builds the autograd.Function on first use, so importing fnopt needs no torch."""

    _fn: Any = None

    def apply(self, *args: Any) -> Any:
        if _LazyFunction._fn is None:
            _LazyFunction._fn = _make_function()
        return _LazyFunction._fn.apply(*args)


_IMPLICIT = _LazyFunction()


def _grad_x(opts: _Options, ths: tuple[Any, ...]) -> Callable[[tuple[Any, ...]], Any]:
    torch = _torch()

    def loss_of_x(xs: tuple[Any, ...]) -> Any:
        return opts.loss_fn(opts.x_spec.unflatten(list(xs)), opts.th_spec.unflatten(list(ths)))

    return torch.func.grad(loss_of_x)


def _solve_hessian(
    opts: _Options, xs: tuple[Any, ...], ths: tuple[Any, ...], b: list[Any]
) -> list[Any]:
    """Solve ``(H + damping I) w = b`` by CG with Hessian-vector products."""
    torch = _torch()
    _, hvp_fn = torch.func.vjp(_grad_x(opts, ths), xs)  # H is symmetric: vjp = H @ v

    def matvec(v: list[Any]) -> list[Any]:
        hv = list(hvp_fn(tuple(v))[0])
        if opts.damping:
            hv = [h + opts.damping * vi for h, vi in zip(hv, v)]
        return hv

    return _cg(matvec, b, tol=opts.cg_tol, max_iters=opts.cg_max_iters)


def _mixed_vjp(
    opts: _Options, xs: tuple[Any, ...], ths: tuple[Any, ...], wanted: list[int], w: list[Any]
) -> tuple[Any, ...]:
    """``(d/d theta[wanted] grad_x f(x, theta))^T w``."""
    torch = _torch()

    def grad_of_theta(sub: tuple[Any, ...]) -> Any:
        full = list(ths)
        for i, t in zip(wanted, sub):
            full[i] = t
        return _grad_x(opts, tuple(full))(xs)

    _, vjp_fn = torch.func.vjp(grad_of_theta, tuple(ths[i] for i in wanted))
    return tuple(vjp_fn(tuple(w))[0])


def _dot(a: Sequence[Any], b: Sequence[Any]) -> Any:
    total = (a[0] * b[0]).sum()
    for x, y in zip(a[1:], b[1:]):
        total = total + (x * y).sum()
    return total


def _under_functorch(x: Any) -> bool:
    """Whether ``x`` is wrapped by a ``torch.func`` transform (vmap, grad, ...), where
    no value can be read on the host."""
    torch = _torch()
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(x))


def _cg(
    matvec: Callable[[list[Any]], list[Any]], b: list[Any], *, tol: float, max_iters: int
) -> list[Any]:
    """Conjugate gradients for a symmetric positive definite operator, from ``x = 0``.

    Stops when :math:`\\|r\\| \\le` ``tol`` :math:`\\|b\\|`, checked on the host once per
    iteration, or, under a ``torch.func`` transform, after ``max_iters`` iterations
    (guarded so that a converged residual does not turn into NaN).
    """
    torch = _torch()
    can_stop_early = not any(_under_functorch(v) for v in b)
    x = [torch.zeros_like(v) for v in b]
    r = list(b)
    p = list(b)
    rs = _dot(r, r)
    threshold = (tol * tol) * rs
    for _ in range(max_iters):
        if can_stop_early and bool(rs <= threshold):
            break
        ap = matvec(p)
        p_ap = _dot(p, ap)
        if can_stop_early and not bool(p_ap > 0):
            raise ValueError(
                "loss_fn: the Hessian at x_star is not positive definite along a CG "
                f"direction (curvature {float(p_ap):.3g}); implicit differentiation needs "
                "a strict local minimum (or damping > 0)"
            )
        alpha = torch.where(p_ap > 0, rs / p_ap, torch.zeros_like(rs))
        x = [xi + alpha * pi for xi, pi in zip(x, p)]
        r = [ri - alpha * api for ri, api in zip(r, ap)]
        rs_new = _dot(r, r)
        beta = torch.where(rs > 0, rs_new / rs, torch.zeros_like(rs))
        p = [ri + beta * pi for ri, pi in zip(r, p)]
        rs = rs_new
    return x
