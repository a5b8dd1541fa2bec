"""Newton and Newton-CG: directions from the Hessian (:func:`scale_by_newton`) or from
Hessian-vector products (:func:`scale_by_newton_cg`), lifted to optimizers by
:func:`fnopt.line_search` like the quasi-Newton methods
(:mod:`fnopt.optimizers.quasi_newton`). Hessian and Hessian-vector-product calls are
counted in the direction state, ``state.inner.n_hess``.

Hessian providers come from :mod:`fnopt.grad`: :func:`fnopt.grad.hessian_from_function`,
:func:`fnopt.grad.torch_hessian`, :func:`fnopt.grad.hvp_torch`,
:func:`fnopt.grad.hvp_finite_differences`, :func:`fnopt.grad.hvp_from_hessian`.
"""


from __future__ import annotations

import math
from typing import Any, NamedTuple

from fnopt import tree
from fnopt._base import (
    FOREIGN_OPTIMIZER_HINTS,
    Optimizer,
    Params,
    State,
    Transform,
    Updates,
    check_callable,
    check_grads,
    check_hessian,
    check_int,
    translate_kwargs,
)
from fnopt.optimizers.linesearch import (
    LineSearch,
    backtracking,
    line_search,
)

__all__ = [
    "newton",
    "newton_cg",
    "scale_by_newton",
    "scale_by_newton_cg",
    "NewtonState",
]

from fnopt.optimizers.quasi_newton import HessianFn, HvpFn, _f, _flat_direction_inputs

# -- Newton --------------------------------------------------------------------------------


class NewtonState(NamedTuple):
    """State of :func:`scale_by_newton` / :func:`scale_by_newton_cg`: ``count``;
    ``n_hess``, the Hessian (or Hessian-vector product) evaluations so far; ``shift``,
    the multiple of the identity added to the last Hessian (Newton) or the CG iterations
    of the last direction (Newton-CG)."""

    count: int  # type: ignore[assignment]
    n_hess: int
    shift: float


def _newton_init(params: Params) -> NewtonState:
    del params
    return NewtonState(0, 0, 0.0)


def scale_by_newton(hessian: HessianFn, *, min_shift: float = 1e-3) -> Transform:
    """The Newton direction :math:`d_k = -(H_k + \\tau_k I)^{-1} g_k`.

    :math:`H_k` = ``hessian(params)`` (over the flattened params); :math:`\\tau_k` is
    0 when :math:`H_k` is positive definite, else found by Cholesky with added multiple
    of the identity (Nocedal & Wright Alg. 3.3): start from
    :math:`\\max(0, \\beta - \\min_i H_{ii})` with :math:`\\beta` = ``min_shift`` times the
    largest :math:`|H_{ij}|`, doubling until the factorisation succeeds.

    Args:
      hessian: a Hessian provider ``hessian(params) -> H`` (see
        :func:`fnopt.grad.hessian_from_function`, :func:`fnopt.grad.torch_hessian`).
      min_shift: the relative size :math:`\\beta` of the first shift tried.
    """
    check_callable(hessian, "hessian")

    def update(
        grads: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        leaves, be, g = _flat_direction_inputs("scale_by_newton", grads, params)
        h = check_hessian(hessian(params), params, what="hessian")  # (n, n), params dtype
        d = be.cholesky_solve(h, -g)
        tau = 0.0
        if d is None:
            scale = max(_f(abs(h).max()), 1e-300)
            beta = min_shift * scale
            min_diag = _f(h.diagonal().min())
            tau = beta if min_diag > 0 else beta - min_diag
            eye = be.eye(g.shape[0], g)
            for _ in range(200):
                d = be.cholesky_solve(h + tau * eye, -g)
                if d is not None:
                    break
                tau = max(2.0 * tau, beta)
            if d is None:
                d = -g
        out = tree.structure(params).unflatten(be.unravel(d, leaves))
        return out, NewtonState(state.count + 1, state.n_hess + 1, tau)

    return Transform(_newton_init, update)


_NEWTON_HINTS = {
    **FOREIGN_OPTIMIZER_HINTS,
    "hess": "pass the Hessian provider as hessian= (the first argument), e.g. "
    "fnopt.grad.hessian_from_function(hess)",
    "hessp": "pass Hessian-vector products to fnopt.newton_cg as hvp= (its first argument)",
}


def newton(
    hessian: HessianFn, *, search: LineSearch | None = None, **aliases: Any
) -> Optimizer:
    """Newton's method with a Hessian provider and a backtracking line search.

    .. math:: x_{k+1} = x_k - \\alpha_k (H_k + \\tau_k I)^{-1} g_k,

    :math:`\\tau_k \\ge 0` making the matrix positive definite (see
    :func:`scale_by_newton`), :math:`\\alpha_k` from ``search`` first tried at 1.
    Hessian evaluations are counted in ``state.inner.n_hess``.

    Args:
      hessian: ``hessian(params) -> H``, e.g. :func:`fnopt.grad.hessian_from_function`
        or :func:`fnopt.grad.torch_hessian`.
      search: the line search; default ``backtracking()`` (Armijo, unit step first).
      **aliases: torch/optax/scipy names (``hess``, ``lr``, ``maxiter``, ...) raise a
        ``TypeError`` saying what fnopt takes instead.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``).

    >>> import numpy as np, fnopt
    >>> task = fnopt.tasks.rosenbrock()
    >>> opt = fnopt.newton(fnopt.grad.hessian_from_function(task.hessian))
    >>> r = fnopt.fixed_point(opt, task.init_params, task.grad_fn,
    ...                       stop=fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(50))
    >>> r.converged, r.state.inner.n_hess == r.iterations
    (True, True)

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., section 3.4.
    """
    if aliases:
        translate_kwargs("newton", aliases, {}, _NEWTON_HINTS)
    return line_search(
        scale_by_newton(hessian), backtracking() if search is None else search
    )


def scale_by_newton_cg(
    hvp: HvpFn, *, max_cg_iters: int | None = None
) -> Transform:
    """The truncated-Newton (Newton-CG) direction from Hessian-vector products.

    Approximately solves :math:`H_k d = -g_k` by conjugate gradients (Nocedal & Wright
    Alg. 7.1), stopping when the residual falls below
    :math:`\\eta_k \\|g_k\\|`, :math:`\\eta_k = \\min(0.5, \\sqrt{\\|g_k\\|})`, or at
    negative curvature (returning the iterate so far, or at the first CG step the
    steepest-descent direction scaled by the curvature magnitude,
    :math:`-g_k g_k^T g_k / |g_k^T H_k g_k|`). Each CG iteration costs one
    ``hvp(params, v)`` call, counted in ``n_hess``.

    Args:
      hvp: ``hvp(params, v) -> Hv`` (see :func:`fnopt.grad.hvp_torch`,
        :func:`fnopt.grad.hvp_finite_differences`, :func:`fnopt.grad.hvp_from_hessian`).
      max_cg_iters: the most CG iterations per direction (default: the number of
        parameters).
    """
    check_callable(hvp, "hvp")
    if max_cg_iters is not None:
        check_int("max_cg_iters", max_cg_iters, 1)

    def update(
        grads: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        if params is None:
            raise ValueError("scale_by_newton_cg: update needs params")
        n = sum(math.prod(tuple(x.shape)) for x in tree.leaves(params))
        iters = max_cg_iters if max_cg_iters is not None else max(n, 1) + 1
        gnorm = math.sqrt(_f(tree.sq_norm(grads)))
        tol = min(0.5, math.sqrt(gnorm)) * gnorm
        z = tree.zeros_like(grads)
        r = grads
        p = tree.scale(-1.0, grads)
        rr = _f(tree.sq_norm(r))
        n_hess = state.n_hess
        j = 0
        for j in range(iters):
            bp = check_grads(params, hvp(params, p), what="hvp")  # shaped like params
            n_hess += 1
            curv = _f(tree.vdot(p, bp))
            if curv <= 0:
                if j == 0:  # steepest descent, scaled by |g^T H g| when that is nonzero
                    z = p if curv == 0 else tree.scale(rr / -curv, p)
                break
            alpha = rr / curv
            z = tree.axpy(alpha, p, z)
            r = tree.axpy(alpha, bp, r)
            rr_new = _f(tree.sq_norm(r))
            if math.sqrt(rr_new) <= tol:
                break
            p = tree.axpy(rr_new / rr, p, tree.scale(-1.0, r))
            rr = rr_new
        return z, NewtonState(state.count + 1, n_hess, float(j + 1))

    return Transform(_newton_init, update)


def newton_cg(
    hvp: HvpFn,
    *,
    max_cg_iters: int | None = None,
    search: LineSearch | None = None,
    **aliases: Any,
) -> Optimizer:
    """Truncated Newton (Newton-CG) with Hessian-vector products and a line search.

    .. math:: x_{k+1} = x_k + \\alpha_k d_k, \\quad H_k d_k \\approx -g_k

    solved inexactly by CG (see :func:`scale_by_newton_cg`); :math:`\\alpha_k` from
    ``search`` first tried at 1. Hessian-vector products are counted in
    ``state.inner.n_hess``.

    Args:
      hvp: ``hvp(params, v) -> Hv``.
      max_cg_iters: the most CG iterations per step (default: number of params + 1).
      search: the line search; default ``backtracking()``.
      **aliases: torch/optax/scipy names (``hessp``, ``lr``, ``maxiter``, ...) raise a
        ``TypeError`` saying what fnopt takes instead.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``).

    >>> import numpy as np, fnopt
    >>> task = fnopt.tasks.rosenbrock()
    >>> hvp = fnopt.grad.hvp_from_hessian(fnopt.grad.hessian_from_function(task.hessian))
    >>> r = fnopt.fixed_point(fnopt.newton_cg(hvp), task.init_params, task.grad_fn,
    ...                       stop=fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(100))
    >>> r.converged
    True

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.1; R. S.
    Dembo and T. Steihaug, "Truncated-Newton algorithms for large-scale unconstrained
    optimization", Math. Programming 26 (1983).
    """
    if aliases:
        translate_kwargs("newton_cg", aliases, {}, _NEWTON_HINTS)
    return line_search(
        scale_by_newton_cg(hvp, max_cg_iters=max_cg_iters),
        backtracking() if search is None else search,
    )


