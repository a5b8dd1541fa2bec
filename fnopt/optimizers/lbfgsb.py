"""L-BFGS-B: limited-memory BFGS for bound-constrained problems :math:`l \\le x \\le u`.

:func:`lbfgsb` returns an :class:`fnopt.Optimizer`. Each step, from a feasible
:math:`x_k` with gradient :math:`g_k` and the limited-memory BFGS matrix
:math:`B_k = \\theta I - W M W^T` in compact form (:math:`W = [Y \\;\\; \\theta S]`,
the last ``memory_size`` pairs :math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1} - g_i`),

1. finds the *generalized Cauchy point* :math:`x^c`: the first local minimiser of the
   quadratic model :math:`m_k(x) = f_k + g_k^T (x - x_k) + \\tfrac12 (x - x_k)^T B_k
   (x - x_k)` along the projected steepest-descent path
   :math:`t \\mapsto P(x_k - t g_k)`, walking its breakpoints in order;
2. minimises the model over the variables still free at :math:`x^c` (the others
   stay at their bounds), by the Sherman-Morrison-Woodbury form of the reduced
   :math:`B_k`, projects the result :math:`\\bar x` onto the box, and falls back to
   the largest feasible fraction of that step if the projected point is not a descent
   direction;
3. searches along :math:`d_k = \\bar x - x_k` with a strong-Wolfe line search whose
   steps never leave the box (the largest step is the distance to the boundary).

Pairs without positive curvature (:math:`s^T y \\le \\epsilon\\, |g_k^T s|`) are
skipped; when no direction or no step can be found, the memory is dropped and the
step retried from steepest descent, and only then does it raise
:class:`fnopt.StepFailed`.

The model algebra (the :math:`2m \\times 2m` middle matrix, the breakpoint walk)
runs on the host in float64 NumPy, like scipy's Fortran: each step moves the flat
iterate, gradient and the :math:`2m` memory vectors to the host once. The params,
the loss evaluations and the state stay on their backend and device.

Reference: R. H. Byrd, P. Lu, J. Nocedal and C. Zhu, "A limited memory algorithm for
bound constrained optimization", SIAM J. Sci. Comput. 16 (1995); J. L. Morales and
J. Nocedal, "Remark on Algorithm 778", ACM TOMS 38 (2011) (the projected subspace
step).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import (
    GradFn,
    Optimizer,
    Params,
    State,
    _dtype_name,
    call_grad_fn,
    check_int,
    check_loss,
    check_params,
)
from fnopt.loop import StepFailed
from fnopt.optimizers.linesearch import Backtracking, LineSearch, StrongWolfe, strong_wolfe
from fnopt.stop import Reason
from fnopt.transforms.projections import Projection, _flat_box, box

__all__ = ["lbfgsb", "LbfgsbState"]

_EPS = float(np.finfo(np.float64).eps)


class LbfgsbState(NamedTuple):
    """State of :func:`lbfgsb`. Every field has its final structure from ``init``.

    Attributes:
      count: steps taken.
      value: the loss at the params returned by the last step (``value_at="output"``).
      grad_norm: the Euclidean norm of the *projected* gradient there,
        :math:`\\|P(x - g) - x\\|_2` (0 exactly at a first-order stationary point of
        the bounded problem; the gradient norm where no bound is active), so
        :func:`fnopt.stop.grad_norm_below` tests first-order optimality.
      pg_max: the max-norm of the same vector, :math:`\\|P(x - g) - x\\|_\\infty`
        (scipy's ``pgtol`` measure, used by :func:`fnopt.minimize`).
      grads: the (unprojected) gradient there (zeros until the first step).
      s, y: ``memory_size`` slots for the pairs as flat vectors, oldest first; the last
        ``n_pairs`` hold pairs, the others zeros.
      theta: the scale :math:`\\theta = y^T y / s^T y` of the newest pair (1 without).
      n_pairs: the number of stored pairs.
      learning_rate: the step length accepted by the last line search.
      n_trials: loss evaluations made by the last line search.
      n_resets: times the memory was dropped because no step could be found.
    """

    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    pg_max: Any
    grads: Any
    s: tuple[Any, ...]
    y: tuple[Any, ...]
    theta: float
    n_pairs: int
    learning_rate: float
    n_trials: int
    n_resets: int


# -- the model (host, float64) ------------------------------------------------------------


def projected_gradient(x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Any:
    """:math:`P(x - g) - x` for the box ``[lo, hi]`` (flat float64 vectors)."""
    return np.clip(x - g, lo, hi) - x


def _compact(s: np.ndarray, y: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """``W^T`` (``2k x n``) and ``M`` (``2k x 2k``) of :math:`B = \\theta I - W M W^T`
    for pairs stored as rows of ``s`` and ``y`` (oldest first)."""
    sy = s @ y.T  # sy[i, j] = s_i^T y_j
    low = np.tril(sy, -1)
    middle = np.block([[-np.diag(np.diag(sy)), low.T], [low, theta * (s @ s.T)]])
    return np.vstack([y, theta * s]), np.linalg.inv(middle)


def _cauchy_point(
    x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    wt: np.ndarray, m: np.ndarray, theta: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The generalized Cauchy point :math:`x^c` and :math:`c = W^T (x^c - x)`
    (Byrd et al. 1995, Algorithm CP)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(g < 0, (x - hi) / g, np.where(g > 0, (x - lo) / g, np.inf))
    d = np.where(t > 0, -g, 0.0)
    xc = x.copy()
    p = wt @ d
    c = np.zeros_like(p)
    fp = -float(d @ d)
    fpp0 = fpp = -theta * fp - float(p @ m @ p)
    idx = np.nonzero((t > 0) & np.isfinite(t))[0]
    idx = idx[np.argsort(t[idx], kind="stable")]
    t_old = 0.0
    dt_min = -fp / fpp if fpp > 0 else 0.0
    for b in idx:
        dt = t[b] - t_old
        if dt_min < dt:
            break
        xc[b] = hi[b] if d[b] > 0 else lo[b]  # variable b reaches its bound
        zb, gb, wb = xc[b] - x[b], g[b], wt[:, b]
        c = c + dt * p
        mwb = m @ wb
        fp += dt * fpp + gb * gb + theta * gb * zb - gb * float(mwb @ c)
        fpp -= theta * gb * gb + 2.0 * gb * float(mwb @ p) + gb * gb * float(mwb @ wb)
        fpp = max(fpp, _EPS * fpp0)
        p = p + gb * wb
        d[b] = 0.0
        t_old = t[b]
        dt_min = -fp / fpp if fpp > 0 else 0.0
    dt_min = max(dt_min, 0.0)
    t_old += dt_min
    moving = d != 0
    xc[moving] = np.clip(x[moving] + t_old * d[moving], lo[moving], hi[moving])
    return xc, c + dt_min * p


def _subspace_min(
    x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    xc: np.ndarray, c: np.ndarray, wt: np.ndarray, m: np.ndarray, theta: float,
) -> np.ndarray:
    """:math:`\\bar x`: the model minimised over the variables free at :math:`x^c`
    (direct primal method, Byrd et al. 1995 section 5.1), then projected (Morales and
    Nocedal 2011) or, when that is no descent direction, truncated to the box."""
    free = (xc > lo) & (xc < hi)
    if not free.any():
        return xc
    a = wt[:, free]  # rows of W^T restricted to the free variables (2k x n_free)
    r = (g + theta * (xc - x) - wt.T @ (m @ c))[free]
    du = -r / theta
    if a.shape[0]:
        v = m @ (a @ r)
        n_mat = np.eye(a.shape[0]) - (m @ (a @ a.T)) / theta
        du = du - (a.T @ np.linalg.solve(n_mat, v)) / theta**2
    xbar = xc.copy()
    xbar[free] = np.clip(xc[free] + du, lo[free], hi[free])
    if float(g @ (xbar - x)) < 0:
        return xbar
    lo_f, hi_f, xc_f = lo[free], hi[free], xc[free]
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(du > 0, (hi_f - xc_f) / du, np.where(du < 0, (lo_f - xc_f) / du, np.inf))
    alpha = min(1.0, float(room.min()))
    xbar[free] = np.clip(xc_f + alpha * du, lo_f, hi_f)
    return xbar


def _direction(
    x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    s: np.ndarray, y: np.ndarray, theta: float,
) -> np.ndarray | None:
    """:math:`d = \\bar x - x`, or ``None`` when it is no descent direction or the
    model is numerically broken."""
    try:
        if s.shape[0]:
            wt, m = _compact(s, y, theta)
        else:
            wt, m = np.zeros((0, x.size)), np.zeros((0, 0))
        xc, c = _cauchy_point(x, g, lo, hi, wt, m, theta)
        d = _subspace_min(x, g, lo, hi, xc, c, wt, m, theta) - x
    except np.linalg.LinAlgError:
        return None
    if not (np.isfinite(d).all() and float(g @ d) < 0):
        return None
    return d


def _max_step(x: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """The largest :math:`\\alpha` with :math:`l \\le x + \\alpha d \\le u`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(d > 0, (hi - x) / d, np.where(d < 0, (lo - x) / d, np.inf))
    return float(room.min()) if room.size else math.inf


# -- the line search ------------------------------------------------------------------------


@attrs.frozen
class _Ctx:
    """What a step's line search needs (the iterate on the host and on its backend)."""

    grad_fn: GradFn
    batch: tuple[Any, ...]
    to_tree: Any
    be: Any
    lo: np.ndarray
    hi: np.ndarray
    x: np.ndarray
    g: np.ndarray
    f0: float
    search: LineSearch
    eps: float


def _search(
    ctx: _Ctx, s: np.ndarray | None, y: np.ndarray | None, theta: float, *, first: bool
) -> tuple[float, Any, int, np.ndarray] | None:
    """Direction and line search from ``ctx.x``: ``(step, (params, value, grads),
    evaluations, direction)``, or ``None`` when there is no descent direction or no
    step with sufficient decrease."""
    x, g, lo, hi = ctx.x, ctx.g, ctx.lo, ctx.hi
    empty = np.zeros((0, x.size))
    d = _direction(x, g, lo, hi, empty if s is None else s, empty if y is None else y, theta)
    if d is None:
        return None
    slope0 = float(g @ d)
    if first:  # no curvature yet: a unit step in x - g may be far off scale
        bounded = np.isfinite(lo) | np.isfinite(hi)
        max_step = 1.0 if bounded.any() else 1e10
        boxed = bool(np.isfinite(lo).all() and np.isfinite(hi).all())
        a0 = 1.0 if boxed else min(1.0 / max(float(np.linalg.norm(d)), 1e-300), max_step)
    else:
        max_step = min(_max_step(x, d, lo, hi), 1e10)
        a0 = min(1.0, max_step)
    if not max_step > 0:
        return None
    search = ctx.search
    if isinstance(search, StrongWolfe):
        search = attrs.evolve(search, max_step=max_step)
    c1 = search.c1 if isinstance(search, (StrongWolfe, Backtracking)) else 1e-4
    best: list[Any] = []  # the lowest trial with sufficient decrease
    n = 0

    def phi(a: float) -> tuple[float, float, Any]:
        nonlocal n
        n += 1
        xt = ctx.to_tree(np.clip(x + a * d, lo, hi))
        v, gt = call_grad_fn(ctx.grad_fn, xt, ctx.batch, keep=True)  # kept across trials
        f = ctx.be.to_float(v)
        slope = float(ctx.be.to_numpy(ctx.be.ravel(tree.leaves(gt))) @ d)
        aux = (xt, v, gt)
        if math.isfinite(f) and f <= ctx.f0 + c1 * a * slope0 and (not best or f < best[1]):
            best[:] = [a, f, aux]
        return f, slope, aux

    res = search(phi, ctx.f0, slope0, a0, eps=ctx.eps)
    if res.ok:
        return res.step, res.aux, n, d
    if best:  # e.g. the boundary reached with the slope still negative
        return best[0], best[2], n, d
    return None


# -- the optimizer ------------------------------------------------------------------------


def _flat_bounds(proj: Projection | None, params: Params) -> tuple[np.ndarray, np.ndarray]:
    if proj is None:
        n = sum(_backend.of_value(p).size(p) for p in tree.leaves(params))
        return np.full(n, -np.inf), np.full(n, np.inf)
    return _flat_box(proj, params)


def _step(
    params: Params, grad_fn: GradFn, state: State, batch: tuple[Any, ...],
    proj: Projection | None, memory_size: int, search: LineSearch,
) -> tuple[Params, LbfgsbState]:
    """One L-BFGS-B step (see :func:`lbfgsb`)."""
    leaves, spec = optree.tree_flatten(params)
    be = _backend.of_leaves(leaves)
    flat = be.ravel(leaves)
    lo, hi = _flat_bounds(proj, params)
    x = be.to_numpy(flat)

    def to_tree(v: np.ndarray) -> Params:
        return spec.unflatten(be.unravel(be.from_numpy(v, flat), leaves))

    if state.count == 0:  # project the start point, evaluate there
        xp = np.clip(x, lo, hi)
        if not np.array_equal(xp, x):
            x, params = xp, to_tree(xp)
        value, grads = call_grad_fn(grad_fn, params, batch, keep=True)  # kept in the state
    else:
        value, grads = state.value, state.grads
    g = be.to_numpy(be.ravel(tree.leaves(grads)))
    if float(np.abs(projected_gradient(x, g, lo, hi)).max()) == 0.0:
        gn = be.scalar(0.0, leaves[0])
        return params, state._replace(
            count=state.count + 1, value=value, grad_norm=gn, pg_max=gn, grads=grads,
            learning_rate=0.0, n_trials=0,
        )
    k = state.n_pairs
    s = np.stack([be.to_numpy(v) for v in state.s[memory_size - k:]]) if k else None
    y = np.stack([be.to_numpy(v) for v in state.y[memory_size - k:]]) if k else None
    eps = float(np.finfo(_dtype_name(leaves[0])).eps)
    ctx = _Ctx(grad_fn, batch, to_tree, be, lo, hi, x, g, be.to_float(value), search, eps)
    out = _search(ctx, s, y, state.theta, first=state.count == 0)
    resets = state.n_resets
    if out is None and k:  # drop the memory and retry from steepest descent
        resets += 1
        k, out = 0, _search(ctx, None, None, 1.0, first=False)
    if out is None:
        raise StepFailed(
            Reason.LINE_SEARCH_FAILED,
            f"no descent step at step {state.count + 1} from steepest descent "
            f"(loss {ctx.f0:.6g}, projected gradient "
            f"{float(np.abs(projected_gradient(x, g, lo, hi)).max()):.3g})",
        )
    a, (x1_tree, v1, g1), n_trials, _ = out
    x1 = be.to_numpy(be.ravel(tree.leaves(x1_tree)))
    g1_np = be.to_numpy(be.ravel(tree.leaves(g1)))
    ss, ys, theta = state.s, state.y, state.theta
    if resets != state.n_resets:  # the dropped pairs: zero their slots
        ss = ys = tuple(be.zeros_like([flat] * memory_size))
        theta = 1.0
    sv, yv = x1 - x, g1_np - g
    sy = float(sv @ yv)
    if math.isfinite(sy) and sy > _EPS * max(-float(g @ sv), 0.0) and sy > 0:
        sv_b, yv_b = be.from_numpy(sv, flat), be.from_numpy(yv, flat)
        ss, ys = (*ss[1:], sv_b), (*ys[1:], yv_b)
        theta = float(yv @ yv) / sy
        k = min(k + 1, memory_size)
    pg = projected_gradient(x1, g1_np, lo, hi)
    pg2 = be.scalar(float(np.linalg.norm(pg)), leaves[0])
    pgmax = be.scalar(float(np.abs(pg).max()), leaves[0])
    return x1_tree, LbfgsbState(
        state.count + 1, check_loss(v1), pg2, pgmax, g1, ss, ys, theta, k, a, n_trials,
        resets,
    )


def _as_box(bounds: Any) -> Projection | None:
    if bounds is None:
        return None
    if isinstance(bounds, Projection):
        if bounds.bounds is None:
            raise TypeError(
                f"bounds: L-BFGS-B needs a box (fnopt.projections.box, non_negative, "
                f"linf_ball), got {bounds!r}"
            )
        return bounds
    if isinstance(bounds, (tuple, list)) and len(bounds) == 2:
        return box(bounds[0], bounds[1])
    raise TypeError(
        "bounds: expected fnopt.projections.box(lower, upper) or a (lower, upper) pair, "
        f"got {type(bounds).__name__}"
    )


def lbfgsb(
    *,
    bounds: Any = None,
    memory_size: int = 10,
    search: LineSearch | None = None,
) -> Optimizer:
    """L-BFGS-B: limited-memory BFGS within bounds :math:`l \\le x \\le u`.

    .. math::
        x_{k+1} = x_k + \\alpha_k (\\bar x_k - x_k), \\qquad
        \\bar x_k \\approx \\arg\\min_{l \\le x \\le u} m_k(x),

    with :math:`\\bar x_k` from the generalized Cauchy point and a subspace
    minimisation of the L-BFGS model :math:`m_k` (see the module docstring), and
    :math:`\\alpha_k \\le` the distance to the boundary from a strong-Wolfe search
    (first trial 1; on the first step :math:`\\min(1, 1/\\|d_0\\|)` unless every
    variable has two finite bounds). The first step projects the start point onto
    the box. ``state.grad_norm`` is the projected-gradient norm
    :math:`\\|P(x - g) - x\\|_2`, so ``fnopt.stop.grad_norm_below(tol)`` tests
    first-order optimality within the bounds (``state.pg_max``, the max-norm, is
    scipy's ``pgtol`` measure).

    Args:
      bounds: ``fnopt.projections.box(lower, upper)`` (or ``non_negative()``,
        ``linf_ball(r)``), or a ``(lower, upper)`` pair of numbers / pytrees like the
        params (``±inf`` for no bound; ``lower == upper`` fixes a variable); ``None``
        for none.
      memory_size: the number of correction pairs kept (>= 1).
      search: the line search; default ``strong_wolfe(c1=1e-3, c2=0.9,
        max_trials=20)`` (scipy's constants). Its largest step is set to the distance
        to the boundary at every step when it is a :class:`fnopt.optimizers.linesearch.StrongWolfe`.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="output"``) with :class:`LbfgsbState`.

    >>> import numpy as np, fnopt
    >>> grad_fn = lambda x: (((x - 2.0) ** 2).sum(), 2.0 * (x - 2.0))  # minimum at 2
    >>> opt = fnopt.lbfgsb(bounds=(-1.0, np.array([1.0, 3.0])))
    >>> r = fnopt.fixed_point(opt, np.zeros(2), grad_fn,
    ...                       stop=fnopt.stop.grad_norm_below(1e-8) | fnopt.stop.max_iters(50))
    >>> r.reason.value, r.params
    ('grad_norm_below', array([1., 2.]))

    Reference: Byrd, Lu, Nocedal and Zhu, SIAM J. Sci. Comput. 16 (1995); Morales
    and Nocedal, ACM TOMS 38 (2011).
    """
    proj = _as_box(bounds)
    check_int("memory_size", memory_size, 1)
    if search is None:
        search = strong_wolfe(1e-3, 0.9, max_trials=20)
    if not isinstance(search, LineSearch):
        raise TypeError(f"search: expected a line search, got {type(search).__name__}")

    def init(params: Params) -> LbfgsbState:
        be = check_params(params)
        if proj is not None:
            proj.init(params)  # bounds that do not fit the params: a named ValueError
        leaves = tree.leaves(params)
        x = be.ravel(leaves)
        nan = be.scalar(math.nan, leaves[0])
        slots = tuple(be.zeros_like([x] * memory_size))
        return LbfgsbState(
            0, nan, nan, nan, tree.zeros_like(params), slots, slots, 1.0, 0, 0.0, 0, 0
        )

    def step(
        params: Params, grad_fn: GradFn, state: State, *batch: Any
    ) -> tuple[Params, LbfgsbState]:
        return _step(params, grad_fn, state, batch, proj, memory_size, search)

    return Optimizer(init, step, "output")
