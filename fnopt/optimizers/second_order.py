"""Quasi-Newton, nonlinear conjugate gradient and Newton methods.

Each method is a *direction* :class:`fnopt.Transform` (``scale_by_lbfgs``,
``scale_by_bfgs``, ``scale_by_nonlinear_cg``, ``scale_by_newton``,
``scale_by_newton_cg``) lifted to an :class:`fnopt.Optimizer` by
:func:`fnopt.line_search`. The optimizers evaluate the loss where they return
(``value_at="output"``) and reuse the loss and gradient found by the line search, so a
run's ``grad_fn`` calls (``Result.n_evals``) compare directly with scipy.optimize's
``nfev``/``njev``. Hessian and Hessian-vector-product calls are counted in the direction
state, ``state.inner.n_hess``.

Hessian providers come from :mod:`fnopt.grad`: :func:`fnopt.grad.hessian_from_function`,
:func:`fnopt.grad.torch_hessian`, :func:`fnopt.grad.hvp_torch`,
:func:`fnopt.grad.hvp_finite_differences`, :func:`fnopt.grad.hvp_from_hessian`.

>>> import numpy as np, fnopt
>>> task = fnopt.tasks.rosenbrock()
>>> r = fnopt.fixed_point(fnopt.lbfgs(), task.init_params, task.grad_fn,
...                       stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(100))
>>> r.reason.value, np.round(r.params, 8)
('grad_norm_below', array([1., 1.]))
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

from fnopt import backend as _backend
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
    guarded_call,
    translate_kwargs,
)
from fnopt.grad.hessians import HessianFn, HvpFn
from fnopt.optimizers.linesearch import (
    InitialStep,
    LineSearch,
    backtracking,
    line_search,
    strong_wolfe,
)
from fnopt.optimizers.torch_lbfgs import torch_lbfgs, wants_torch_semantics

__all__ = [
    "lbfgs",
    "bfgs",
    "nonlinear_cg",
    "scale_by_lbfgs",
    "scale_by_bfgs",
    "scale_by_nonlinear_cg",
    "LbfgsState",
    "BfgsState",
    "NonlinearCGState",
    "newton",
    "newton_cg",
    "scale_by_newton",
    "scale_by_newton_cg",
    "NewtonState",
]



def _f(x: Any) -> float:
    return float(x)  # a Python float from a 0-d array or tensor (or a number)


def _curvature_ok(sy: float, ss: float, yy: float) -> bool:
    """Keep a pair (s, y) only with clearly positive curvature (scale-free test)."""
    return sy > 1e-10 * math.sqrt(ss * yy) and math.isfinite(sy)


def _flat_direction_inputs(
    name: str, grads: Updates, params: Params | None
) -> tuple[list[Any], Any, Any]:
    """The leaves of ``params``, their backend and the gradient as one flat vector: what
    a direction transform works on (it needs ``params``)."""
    if params is None:
        raise ValueError(f"{name}: update needs params")
    leaves = tree.leaves(params)
    be = _backend.of_leaves(leaves)
    return leaves, be, be.ravel(tree.leaves(grads))


# -- L-BFGS -----------------------------------------------------------------------------

_LBFGS_ALIASES = {"history_size": "memory", "memory_size": "memory", "maxcor": "memory"}
_LBFGS_HINTS = {
    **FOREIGN_OPTIMIZER_HINTS,
    "scale_init_precond": "fnopt.lbfgs always scales the initial inverse Hessian by "
    "s'y / y'y (optax's scale_init_precond=True); leave the argument out",
}


class LbfgsState(NamedTuple):
    """State of :func:`scale_by_lbfgs`.

    Every field is allocated by ``init`` with its final structure (zeros until filled),
    so the state's pytree structure, shapes and dtypes never change between steps.

    Attributes:
      count: directions computed.
      prev_params, prev_grads: the iterate and gradient of the previous call, as flat
        vectors (all leaves concatenated in leaf order); valid when ``count > 0``.
      s, y: ``memory`` slots each for the pairs :math:`s_i = x_{i+1} - x_i`,
        :math:`y_i = g_{i+1} - g_i` as flat vectors, oldest first; the last
        ``n_pairs`` slots hold the stored pairs, the others are zeros.
      rho: ``memory`` 0-d arrays, :math:`1 / y_i^T s_i` for each stored pair (0 in the
        empty slots).
      gamma: the initial inverse-Hessian scale :math:`s^T y / y^T y` of the newest pair
        (a 0-d array; 1 while ``n_pairs`` is 0).
      n_pairs: the number of stored pairs, at most ``memory``.
    """

    count: int  # type: ignore[assignment]
    prev_params: Any
    prev_grads: Any
    s: tuple[Any, ...]
    y: tuple[Any, ...]
    rho: tuple[Any, ...]
    gamma: Any
    n_pairs: int


def scale_by_lbfgs(memory: int = 10) -> Transform:
    """The L-BFGS direction :math:`d_k = -H_k g_k` by the two-loop recursion.

    :math:`H_k` is the BFGS inverse-Hessian approximation built from the last ``memory``
    pairs :math:`(s_i, y_i)` on top of :math:`H^0_k = \\gamma_k I`,
    :math:`\\gamma_k = s_{k-1}^T y_{k-1} / y_{k-1}^T y_{k-1}`. Pairs without positive
    curvature are skipped, so :math:`d_k` is always a descent direction. The first
    direction is :math:`-g_0`. Needs ``params`` in ``update``.

    Args:
      memory: the number of pairs kept (>= 1).

    Returns:
      A :class:`fnopt.Transform` (the update is the direction, minus sign included).

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.4 and 7.5.
    """
    check_int("memory", memory, 1)

    def init(params: Params) -> LbfgsState:
        leaves = tree.leaves(params)
        be = _backend.of_leaves(leaves)
        x = be.ravel(leaves)
        zero, one = be.scalar(0.0, x), be.scalar(1.0, x)
        prev_params, prev_grads = be.zeros_like([x, x])
        return LbfgsState(
            0,
            prev_params,
            prev_grads,
            tuple(be.zeros_like([x] * memory)),
            tuple(be.zeros_like([x] * memory)),
            tuple(be.zeros_like([zero] * memory)),
            one,
            0,
        )

    def update(
        grads: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        # The pairs are kept as flat vectors (one array per pair, all leaves
        # concatenated), so the two loops are a few vector operations each.
        leaves, be, g = _flat_direction_inputs("scale_by_lbfgs", grads, params)
        x = be.ravel(leaves)
        ss, ys, rhos, gamma = state.s, state.y, state.rho, state.gamma
        n_pairs = state.n_pairs
        if state.count > 0:
            s = x - state.prev_params
            y = g - state.prev_grads
            sy, yy = s @ y, y @ y
            if _curvature_ok(_f(sy), _f(s @ s), _f(yy)):
                # shift the slots: drop the oldest, append the new pair (new tuples of
                # the same length; the arrays are shared, never written to)
                ss = (*ss[1:], s)
                ys = (*ys[1:], y)
                # 0-d arrays on every backend (NumPy would give scalars), so the leaf
                # types match the slots allocated by init
                rho, gamma = be.clone([1.0 / sy, sy / yy])
                rhos = (*rhos[1:], rho)
                n_pairs = min(n_pairs + 1, memory)
        stored = range(memory - n_pairs, memory)
        q = g
        alphas = []
        for i in reversed(stored):
            a = rhos[i] * (ss[i] @ q)
            alphas.append(a)
            q = q - a * ys[i]
        r = q if n_pairs == 0 else gamma * q
        for i, a in zip(stored, reversed(alphas)):
            b = rhos[i] * (ys[i] @ r)
            r = r + (a - b) * ss[i]
        d = tree.structure(params).unflatten(be.unravel(-r, leaves))
        return d, LbfgsState(state.count + 1, x, g, ss, ys, rhos, gamma, n_pairs)

    return Transform(init, update)


def lbfgs(
    memory: int = 10,
    *,
    search: LineSearch | None = None,
    initial_step: InitialStep = "unit",
    bounds: Any = None,
    **aliases: Any,
) -> Optimizer:
    """Limited-memory BFGS with a strong-Wolfe line search.

    .. math:: x_{k+1} = x_k - \\alpha_k H_k g_k,

    :math:`H_k` from the last ``memory`` pairs (see :func:`scale_by_lbfgs`),
    :math:`\\alpha_k` from ``search``, first tried at 1 (at :math:`\\min(1, 1/\\|g_0\\|)`
    on the first step).

    Args:
      memory: the number of correction pairs kept (>= 1).
      search: the line search; default ``strong_wolfe(c1=1e-4, c2=0.9)``.
      initial_step: the first trial step, see :func:`fnopt.line_search`.
      bounds: box constraints (``fnopt.projections.box(lower, upper)`` or a
        ``(lower, upper)`` pair): then this is :func:`fnopt.lbfgsb` (L-BFGS-B) with
        ``memory_size=memory`` and ``search``; ``initial_step`` is not used.
      **aliases: ``history_size`` (torch.optim.LBFGS), ``memory_size`` (optax.lbfgs)
        or ``maxcor`` (scipy) in place of ``memory``. Any argument only
        ``torch.optim.LBFGS`` has (``lr``, ``max_iter``, ``max_eval``,
        ``tolerance_grad``, ``tolerance_change``, ``line_search_fn``) gives torch's
        method instead, :func:`fnopt.optimizers.torch_lbfgs.torch_lbfgs` (up to
        ``max_iter`` iterations per step, the same trajectory as torch). Other
        optax/scipy names raise a ``TypeError`` saying what fnopt takes instead.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``).

    >>> import numpy as np, fnopt
    >>> fnopt.lbfgs(history_size=5).init(np.ones(3)).inner.s.__len__()
    5
    >>> a = np.diag([1.0, 10.0, 100.0])
    >>> grad_fn = lambda x: (0.5 * x @ a @ x, a @ x)
    >>> r = fnopt.fixed_point(fnopt.lbfgs(), np.ones(3), grad_fn,
    ...                       stop=fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(50))
    >>> r.converged, r.n_evals < 20
    (True, True)

    Reference: D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large
    scale optimization", Math. Programming 45 (1989).
    """
    if wants_torch_semantics(aliases):
        if search is not None or initial_step != "unit" or bounds is not None:
            raise TypeError("lbfgs: torch.optim.LBFGS's arguments (lr, max_iter, max_eval, "
                            "tolerance_grad, tolerance_change, line_search_fn) choose "
                            "torch's method; search, initial_step and bounds belong to "
                            "fnopt's: pass one set")
        if memory != 10:
            aliases.setdefault("history_size", memory)
        return torch_lbfgs(**{("history_size" if k in _LBFGS_ALIASES else k): v
                              for k, v in aliases.items()})
    if aliases:
        memory = translate_kwargs(
            "lbfgs", aliases, _LBFGS_ALIASES, _LBFGS_HINTS, {"memory": (memory, 10)}
        ).get("memory", memory)
    if bounds is not None:
        from fnopt.optimizers.lbfgsb import lbfgsb

        return lbfgsb(bounds=bounds, memory_size=memory, search=search)
    return line_search(
        scale_by_lbfgs(memory),
        strong_wolfe() if search is None else search,
        initial_step=initial_step,
        scale_first=True,
    )


# -- BFGS -------------------------------------------------------------------------------


class BfgsState(NamedTuple):
    """State of :func:`scale_by_bfgs`.

    Every field is allocated by ``init`` with its final structure, so the state's
    pytree structure, shapes and dtypes never change between steps.

    Attributes:
      count: directions computed.
      prev_params, prev_grads: the iterate and gradient of the previous call (zeros
        like the params until then; valid when ``count > 0``).
      inv_hessian: the dense inverse-Hessian approximation (``n x n`` over the flattened
        params); the identity, unused, until the first curvature pair.
      n_pairs: the number of curvature pairs used so far (``inv_hessian`` is valid
        when it is positive).
    """

    count: int  # type: ignore[assignment]
    prev_params: Any
    prev_grads: Any
    inv_hessian: Any
    n_pairs: int


def scale_by_bfgs(*, scale_init: bool = True) -> Transform:
    """The BFGS direction :math:`d_k = -H_k g_k` with a dense inverse Hessian.

    .. math::
        H_{k+1} = (I - \\rho s y^T) H_k (I - \\rho y s^T) + \\rho s s^T,
        \\quad \\rho = 1 / y^T s,

    with :math:`H_0 = (y^T s / y^T y) I` set at the first pair (Nocedal & Wright
    eq. 6.20; :math:`H_0 = I` with ``scale_init=False``, as scipy does, unless
    :math:`y^T s / y^T y` is outside :math:`[10^{-8}, 10^8]`, where the update from
    :math:`I` would cancel to round-off: a badly scaled loss); pairs without
    positive curvature are skipped. The first direction is :math:`-g_0`. Memory is
    :math:`O(n^2)` in the number of parameters.

    Args:
      scale_init: scale the initial inverse Hessian by :math:`y^T s / y^T y`.

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 6.1.
    """

    def init(params: Params) -> BfgsState:
        leaves = tree.leaves(params)
        be = _backend.of_leaves(leaves)
        x = be.ravel(leaves)
        zeros = tree.zeros_like
        return BfgsState(0, zeros(params), zeros(params), be.eye(x.shape[0], x), 0)

    def update(
        grads: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        leaves, be, g = _flat_direction_inputs("scale_by_bfgs", grads, params)
        h = state.inv_hessian
        n_pairs = state.n_pairs
        if state.count > 0:
            s = be.ravel(leaves) - be.ravel(tree.leaves(state.prev_params))
            y = g - be.ravel(tree.leaves(state.prev_grads))
            sy, yy = s @ y, y @ y
            if _curvature_ok(_f(sy), _f(s @ s), _f(yy)):
                if n_pairs == 0:  # the first pair sets H_0
                    h = be.eye(s.shape[0], s)
                    ratio = _f(sy) / _f(yy)
                    if scale_init or not 1e-8 <= ratio <= 1e8:
                        # (H_0 = I off the pair's scale by > 1e8 would cancel in the update)
                        h = h * (sy / yy)
                hy = h @ y
                rho = 1.0 / sy
                h = (
                    h
                    + (rho * (1.0 + rho * (y @ hy))) * (s[:, None] * s[None, :])
                    - rho * (hy[:, None] * s[None, :] + s[:, None] * hy[None, :])
                )
                n_pairs += 1
        d = -g if n_pairs == 0 else -(h @ g)
        out = tree.structure(params).unflatten(be.unravel(d, leaves))
        # copies: the pair is read at the next call, after grad_fn may have refilled the
        # arrays it returned (a p.grad-style buffer) and the caller reused its params
        return out, BfgsState(state.count + 1, tree.clone(params), tree.clone(grads), h, n_pairs)

    return Transform(init, update)


_BFGS_HINTS = {
    **FOREIGN_OPTIMIZER_HINTS,
    "hess_inv0": "BFGS starts from a multiple of the identity: scale_init=True "
    "(s'y / y'y) or scale_init=False (the identity, as scipy's default)",
}


def bfgs(
    *,
    scale_init: bool = True,
    search: LineSearch | None = None,
    initial_step: InitialStep = "unit",
    **aliases: Any,
) -> Optimizer:
    """BFGS (dense inverse Hessian) with a strong-Wolfe line search.

    .. math:: x_{k+1} = x_k - \\alpha_k H_k g_k

    with :math:`H_k` from :func:`scale_by_bfgs` and :math:`\\alpha_k` from ``search``,
    first tried at 1 (at :math:`\\min(1, 1/\\|g_0\\|)` on the first step).

    Args:
      scale_init: scale :math:`H_0` by :math:`y^T s / y^T y` at the first pair (see
        :func:`scale_by_bfgs`); ``False`` keeps :math:`H_0 = I` like scipy's BFGS.
      search: the line search; default ``strong_wolfe(c1=1e-4, c2=0.9)``.
      initial_step: the first trial step, see :func:`fnopt.line_search`.
      **aliases: torch/optax/scipy names (``lr``, ``maxiter``, ``gtol``, ``c1``,
        ``hess_inv0``, ...) raise a ``TypeError`` saying what fnopt takes instead.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``).

    >>> import numpy as np, fnopt
    >>> task = fnopt.tasks.rosenbrock()
    >>> r = fnopt.fixed_point(fnopt.bfgs(), task.init_params, task.grad_fn,
    ...                       stop=fnopt.stop.grad_norm_below(1e-5) | fnopt.stop.max_iters(100))
    >>> r.converged
    True

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., section 6.1.
    """
    if aliases:
        translate_kwargs("bfgs", aliases, {}, _BFGS_HINTS)
    return line_search(
        scale_by_bfgs(scale_init=scale_init),
        strong_wolfe() if search is None else search,
        initial_step=initial_step,
        scale_first=True,
    )


# -- nonlinear conjugate gradients -----------------------------------------------------------


class NonlinearCGState(NamedTuple):
    """State of :func:`scale_by_nonlinear_cg`: ``count``; the previous gradient and
    direction (zeros like the params until the first step; valid when ``count > 0``);
    ``restarts``, the number of steepest-descent restarts."""

    count: int  # type: ignore[assignment]
    prev_grads: Any
    prev_direction: Any
    restarts: int


CGMethod = Literal["polak_ribiere_plus", "fletcher_reeves"]


def scale_by_nonlinear_cg(
    method: CGMethod = "polak_ribiere_plus", *, restart: int | None = None
) -> Transform:
    """Nonlinear conjugate-gradient directions :math:`d_k = -g_k + \\beta_k d_{k-1}`.

    .. math::
        \\beta^{PR+}_k = \\max\\Big(0, \\frac{g_k^T (g_k - g_{k-1})}{g_{k-1}^T g_{k-1}}\\Big),
        \\qquad
        \\beta^{FR}_k = \\frac{g_k^T g_k}{g_{k-1}^T g_{k-1}}.

    The direction restarts at :math:`-g_k` every ``restart`` steps, when successive
    gradients are far from orthogonal, :math:`|g_k^T g_{k-1}| \\ge 0.2 \\|g_k\\|^2`
    (Powell's test, Nocedal & Wright eq. 5.52), and whenever it is not a descent
    direction.

    Args:
      method: ``"polak_ribiere_plus"`` or ``"fletcher_reeves"``.
      restart: restart period in steps (``None``: never on a schedule).

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., section 5.2.
    """
    if method not in ("polak_ribiere_plus", "fletcher_reeves"):
        raise ValueError(
            f"method: expected 'polak_ribiere_plus' or 'fletcher_reeves', got {method!r}"
        )
    if restart is not None:
        check_int("restart", restart, 1)

    def init(params: Params) -> NonlinearCGState:
        return NonlinearCGState(0, tree.zeros_like(params), tree.zeros_like(params), 0)

    def update(
        grads: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        del params
        steepest = tree.scale(-1.0, grads)
        restarts = state.restarts
        if state.count == 0 or (restart is not None and state.count % restart == 0):
            d = steepest
        elif _f(abs(tree.vdot(grads, state.prev_grads))) >= 0.2 * _f(tree.sq_norm(grads)):
            d = steepest  # Powell's restart: successive gradients far from orthogonal
            restarts += 1
        else:
            gg_prev = tree.sq_norm(state.prev_grads)
            if method == "fletcher_reeves":
                beta = tree.sq_norm(grads) / gg_prev
            else:
                beta = tree.vdot(grads, tree.sub(grads, state.prev_grads)) / gg_prev
                beta = beta if _f(beta) > 0 else 0.0 * beta
            d = tree.axpy(beta, state.prev_direction, steepest)
            if not _f(tree.vdot(grads, d)) < 0:
                d = steepest
                restarts += 1
        # a copy: read at the next call, after grad_fn may have refilled its buffer
        return d, NonlinearCGState(state.count + 1, tree.clone(grads), d, restarts)

    return Transform(init, update)


def nonlinear_cg(
    method: CGMethod = "polak_ribiere_plus",
    *,
    restart: int | None = None,
    search: LineSearch | None = None,
    **aliases: Any,
) -> Optimizer:
    """Nonlinear conjugate gradients (Polak-Ribière+ or Fletcher-Reeves).

    .. math:: x_{k+1} = x_k + \\alpha_k d_k, \\quad d_k = -g_k + \\beta_k d_{k-1}

    (see :func:`scale_by_nonlinear_cg`), with a strong-Wolfe search (:math:`c_2 = 0.1`,
    as CG needs a fairly exact search; Fletcher-Reeves needs :math:`c_2 < 1/2`) whose
    first trial is :math:`\\min(1, 2.02 (f_k - f_{k-1})/\\phi'(0))`.

    Args:
      method: ``"polak_ribiere_plus"`` (default) or ``"fletcher_reeves"``.
      restart: restart period (``None``: restart only on a non-descent direction).
      search: the line search; default ``strong_wolfe(c1=1e-4, c2=0.1)``.
      **aliases: torch/optax/scipy names (``lr``, ``maxiter``, ``gtol``, ``c2``, ...)
        raise a ``TypeError`` saying what fnopt takes instead.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``).

    >>> import numpy as np, fnopt
    >>> a = np.diag([1.0, 4.0])
    >>> r = fnopt.fixed_point(fnopt.nonlinear_cg(), np.ones(2), lambda x: (0.5 * x @ a @ x, a @ x),
    ...                       stop=fnopt.stop.grad_norm_below(1e-10) | fnopt.stop.max_iters(50))
    >>> r.converged
    True

    Reference: E. Polak and G. Ribière (1969); R. Fletcher and C. M. Reeves, "Function
    minimization by conjugate gradients", Computer J. 7 (1964); Nocedal & Wright ch. 5.
    """
    if aliases:
        translate_kwargs("nonlinear_cg", aliases, {}, FOREIGN_OPTIMIZER_HINTS)
    return line_search(
        scale_by_nonlinear_cg(method, restart=restart),
        strong_wolfe(c2=0.1) if search is None else search,
        initial_step="quadratic",
        scale_first=True,
    )



# -- Newton --------------------------------------------------------------------------------


class NewtonState(NamedTuple):
    """State of :func:`scale_by_newton` / :func:`scale_by_newton_cg`: ``count``;
    ``n_hess``, the Hessian (or Hessian-vector product) evaluations so far; ``shift``,
    the multiple of the identity added to the last Hessian (Newton) or the CG iterations
    of the last direction (Newton-CG)."""

    count: int  # type: ignore[assignment]
    n_hess: int
    shift: float


def _hvp_of(pv: tuple[Params, Params], hvp: HvpFn) -> Params:
    """``hvp(params, v)`` from the pair guarded together (:func:`fnopt._base.guarded_call`)."""
    return hvp(pv[0], pv[1])


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
        h = check_hessian(guarded_call(hessian, params, what="hessian"), params,
                          what="hessian")  # (n, n), params dtype; read at once, not kept
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
            # shaped like params; hvp may write into neither params nor p
            bp = check_grads(params, guarded_call(_hvp_of, (params, p), (hvp,), what="hvp"),
                             what="hvp")
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


