"""Projections onto convex sets: a pure function on params and a transform in one.

Each factory returns a :class:`Projection`, which is two things at once:

* a pure function on a params pytree, ``proj.project(params)``: the Euclidean
  projection :math:`P_C(x) = \\arg\\min_{z \\in C} \\|z - x\\|_2` onto the set
  :math:`C`, with the structure, shapes, dtypes and devices of ``params`` (new arrays;
  ``params`` is only read);
* a :class:`fnopt.Transform` that, placed *last* in a chain, makes any first-order
  optimizer a projected one. Its update replaces the incoming update :math:`u` by

  .. math:: u' = P_C(x + u) - x,

  so the step :math:`x + u'` lands on :math:`P_C(x + u)` (it needs ``params``).

The sets: :func:`box` (elementwise bounds, ``±inf`` allowed), :func:`non_negative`,
:func:`linf_ball`, :func:`l2_ball` and :func:`simplex` (the last two treat the whole
pytree as one vector, like the global norm). Every projection runs on NumPy and torch
through :mod:`fnopt.tree` / :mod:`fnopt.backend`, on the params' device.

>>> import numpy as np, fnopt
>>> fnopt.projections.box(0.0, 1.0).project(np.array([-0.5, 0.5, 2.0]))
array([0. , 0.5, 1. ])
>>> opt = fnopt.chain(fnopt.adam(0.1), fnopt.projections.non_negative())  # projected Adam
>>> grad_fn = lambda x: (float(((x + 1.0) ** 2).sum()), 2.0 * (x + 1.0))  # minimum at -1
>>> r = fnopt.fixed_point(opt, np.array([1.0, 2.0]), grad_fn, stop=fnopt.stop.max_iters(200))
>>> np.round(r.params, 6)
array([0., 0.])

Reference: J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra, "Efficient
projections onto the l1-ball for learning in high dimensions", ICML 2008 (the simplex).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import Params, State, Transform, Updates

__all__ = [
    "Projection",
    "ProjectionState",
    "box",
    "non_negative",
    "simplex",
    "l2_ball",
    "linf_ball",
]


class ProjectionState(NamedTuple):
    """The (empty) state of a :class:`Projection` used as a transform."""


class Projection(Transform):
    """A projection onto a convex set: a :class:`fnopt.Transform` with ``project``.

    ``init(params)`` checks that the set fits the params (bounds of the right
    structure and shapes) and returns an empty :class:`ProjectionState`;
    ``update(updates, state, params)`` returns :math:`P(x + u) - x`;
    ``project(params)`` returns :math:`P(x)`. Build one with :func:`box`,
    :func:`non_negative`, :func:`linf_ball`, :func:`l2_ball` or :func:`simplex`.
    """

    __slots__ = ("_repr", "bounds", "project")
    project: Callable[[Params], Params]
    bounds: tuple[Any, Any] | None
    _repr: str

    def __init__(
        self,
        project: Callable[[Params], Params],
        check: Callable[[Params], None],
        name: str,
        bounds: tuple[Any, Any] | None = None,
    ) -> None:
        def init(params: Params) -> ProjectionState:
            check(params)
            return ProjectionState()

        def update(
            updates: Updates, state: State, params: Params | None = None
        ) -> tuple[Updates, State]:
            if params is None:
                raise ValueError(f"{name}: update needs params (u' = P(params + u) - params)")
            return tree.sub(project(tree.add(params, updates)), params), state

        def project_checked(params: Params) -> Params:
            check(params)
            return project(params)

        super().__init__(init, update)
        object.__setattr__(self, "project", project_checked)
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "_repr", name)

    def __repr__(self) -> str:
        return self._repr


# -- boxes -------------------------------------------------------------------------------


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_bound_tree(name: str, bound: Any) -> None:
    """A bound is a real number or a pytree of numbers / arrays / tensors, none NaN."""
    if _is_number(bound):
        if math.isnan(bound):
            raise ValueError(f"{name}: expected a number or ±inf, got nan")
        return
    leaves = optree.tree_leaves(bound)
    if not leaves:
        raise ValueError(f"{name}: expected a number or a pytree of arrays, got an empty tree")
    for path, leaf in zip(tree.paths(bound), leaves):
        if not (_is_number(leaf) or _backend.is_array(leaf) or isinstance(leaf, np.generic)):
            raise TypeError(
                f"{name}: leaf {path} is {type(leaf).__name__}; expected a number or an array"
            )
        if np.isnan(_backend.to_numpy(leaf)).any():
            raise ValueError(f"{name}: leaf {path} contains NaN")


def _check_order(lower: Any, upper: Any) -> None:
    """``lower <= upper`` everywhere (either may be a number broadcast over the other)."""
    lo_leaves = [lower] if _is_number(lower) else optree.tree_leaves(lower)
    hi_leaves = [upper] if _is_number(upper) else optree.tree_leaves(upper)
    paths = ["<all>"]
    if not _is_number(lower) and not _is_number(upper):
        if optree.tree_structure(lower) != optree.tree_structure(upper):
            raise ValueError(
                f"upper: structure {optree.tree_structure(upper)} does not match lower's "
                f"{optree.tree_structure(lower)}"
            )
        paths = tree.paths(lower)
    elif not _is_number(lower):
        paths, hi_leaves = tree.paths(lower), hi_leaves * len(lo_leaves)
    elif not _is_number(upper):
        paths, lo_leaves = tree.paths(upper), lo_leaves * len(hi_leaves)
    for path, lo, hi in zip(paths, lo_leaves, hi_leaves):
        try:
            a, b = np.broadcast_arrays(_backend.to_numpy(lo), _backend.to_numpy(hi))
        except ValueError:
            raise ValueError(
                f"upper: leaf {path} has shape {np.shape(hi)}, lower has {np.shape(lo)}"
            ) from None
        bad = a > b
        if bad.any():
            raise ValueError(
                f"lower, upper: lower > upper at leaf {path} ({a[bad].flat[0]} > "
                f"{b[bad].flat[0]}); expected lower <= upper everywhere"
            )


def _bound_leaves(name: str, bound: Any, params: Params) -> list[Any]:
    """The bound for each leaf of ``params``: a Python float or an array of its shape."""
    p_leaves, spec = optree.tree_flatten(params)
    if _is_number(bound):
        return [float(bound)] * len(p_leaves)
    try:
        b_leaves: list[Any] = spec.flatten_up_to(bound)
    except (ValueError, TypeError):
        raise ValueError(
            f"{name}: structure {optree.tree_structure(bound)} does not match the params "
            f"structure {spec}; give a number or a pytree like the params"
        ) from None
    out: list[Any] = []
    for path, p, b in zip(tree.paths(params), p_leaves, b_leaves):
        if _is_number(b):
            out.append(float(np.asarray(b)))
            continue
        shape = tuple(b.shape) if _backend.is_array(b) else np.shape(b)
        if shape not in ((), tuple(p.shape)):
            raise ValueError(
                f"{name}: leaf {path} has shape {shape}, params leaf has {tuple(p.shape)}"
            )
        out.append(b)
    return out


def box(lower: Any, upper: Any) -> Projection:
    """Projection onto the box :math:`\\{x : l \\le x \\le u\\}`, elementwise.

    .. math:: P(x)_i = \\min(\\max(x_i, l_i), u_i)

    with :math:`l` = ``lower`` and :math:`u` = ``upper``, each a number (for every
    element; ``-inf``/``inf`` for no bound) or a pytree with the params' structure whose
    leaves are numbers or arrays of the leaf's shape (NumPy or torch, converted to the
    params' backend, dtype and device).

    Args:
      lower: the lower bounds.
      upper: the upper bounds; ``lower <= upper`` everywhere (equal bounds fix a
        variable).

    Returns:
      A :class:`Projection` (a transform with ``project``); its ``bounds`` attribute is
      ``(lower, upper)``, read by :func:`fnopt.lbfgsb`.

    Raises:
      ValueError: naming ``lower``/``upper`` when ``lower > upper`` somewhere, a bound
        is NaN, or (at ``init``/``project``) a bound does not fit the params.

    >>> import numpy as np
    >>> box({"a": 0.0, "b": np.array([1.0, 2.0])}, 3.0).project(
    ...     {"a": np.array(-1.0), "b": np.array([0.0, 5.0])})
    {'a': array(0.), 'b': array([1., 3.])}
    """
    _check_bound_tree("lower", lower)
    _check_bound_tree("upper", upper)
    _check_order(lower, upper)
    return _box(lower, upper, f"box({_short(lower)}, {_short(upper)})")


def _short(b: Any) -> str:
    return repr(b) if _is_number(b) else "<pytree>"


def _box(lower: Any, upper: Any, name: str) -> Projection:
    def leaf_bounds(params: Params) -> tuple[list[Any], list[Any]]:
        return _bound_leaves("lower", lower, params), _bound_leaves("upper", upper, params)

    def check(params: Params) -> None:
        leaf_bounds(params)

    def project(params: Params) -> Params:
        leaves, spec = optree.tree_flatten(params)
        lows, highs = leaf_bounds(params)
        return spec.unflatten(_backend.of_leaves(leaves).clamp(leaves, lows, highs))

    return Projection(project, check, name, (lower, upper))


def non_negative() -> Projection:
    """Projection onto the non-negative orthant, :math:`P(x) = \\max(x, 0)` elementwise.

    The same as ``box(0.0, inf)``.

    >>> import numpy as np
    >>> non_negative().project(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    return _box(0.0, math.inf, "non_negative()")


def linf_ball(radius: float = 1.0) -> Projection:
    """Projection onto the :math:`\\ell_\\infty` ball of radius :math:`r` = ``radius``:
    :math:`P(x)_i = \\min(\\max(x_i, -r), r)` (``box(-radius, radius)``).

    >>> import numpy as np
    >>> linf_ball(1.0).project(np.array([-3.0, 0.5]))
    array([-1. ,  0.5])
    """
    r = _check_radius("radius", radius)
    return _box(-r, r, f"linf_ball({r!r})")


def l2_ball(radius: float = 1.0) -> Projection:
    """Projection onto the Euclidean ball of radius :math:`r` = ``radius``, the whole
    pytree taken as one vector:

    .. math:: P(x) = x \\cdot \\frac{r}{\\max(\\|x\\|_2, r)}.

    >>> import numpy as np
    >>> l2_ball(1.0).project(np.array([3.0, 4.0]))
    array([0.6, 0.8])
    """
    r = _check_radius("radius", radius)

    def check(params: Params) -> None:
        _backend.of(params)

    def project(params: Params) -> Params:
        leaves = optree.tree_leaves(params)
        be = _backend.of_leaves(leaves)
        norm = tree.global_norm(params)
        denom = be.maximum([norm], [be.scalar(r, norm)])[0]
        return tree.scale(r / denom, params)

    return Projection(project, check, f"l2_ball({r!r})")


def simplex(total: float = 1.0) -> Projection:
    """Projection onto the simplex :math:`\\{x : x \\ge 0, \\sum_i x_i = s\\}`,
    :math:`s` = ``total``, the whole pytree taken as one vector:

    .. math:: P(x)_i = \\max(x_i - \\tau, 0), \\quad
        \\tau = \\frac{1}{\\rho}\\Big(\\sum_{j \\le \\rho} v_j - s\\Big),

    where :math:`v` is :math:`x` sorted in decreasing order and :math:`\\rho` the
    largest :math:`j` with :math:`v_j - (\\sum_{i \\le j} v_i - s)/j > 0` (exact, one
    sort: :math:`O(n \\log n)`).

    Args:
      total: the sum :math:`s` of the projected vector (> 0).

    >>> import numpy as np
    >>> simplex().project(np.array([0.5, 0.2, -1.0]))
    array([0.65, 0.35, 0.  ])

    Reference: Duchi, Shalev-Shwartz, Singer and Chandra, ICML 2008, Fig. 1.
    """
    s = _check_radius("total", total)

    def check(params: Params) -> None:
        _backend.of(params)

    def project(params: Params) -> Params:
        leaves, spec = optree.tree_flatten(params)
        be = _backend.of_leaves(leaves)
        v = be.sort_desc(be.ravel(leaves))
        css = v.cumsum(0)
        j = (v * 0 + 1).cumsum(0)  # 1, 2, ..., n with v's dtype and device
        rho = int((v * j > css - s).sum())  # >= 1: the first element always qualifies
        tau = (be.to_float(css[rho - 1]) - s) / rho
        out = be.clip(be.add_scalar(leaves, -tau), 0.0, math.inf)
        return spec.unflatten(out)

    return Projection(project, check, f"simplex({s!r})")


def _check_radius(name: str, value: Any) -> float:
    if not _is_number(value):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value}")
    return float(value)


def _flat_box(proj: Projection, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """A box projection's bounds for the flattened params (leaf order, C order within
    a leaf) as two float64 NumPy vectors (for :func:`fnopt.lbfgsb`)."""
    if proj.bounds is None:
        raise TypeError(f"bounds: expected a box (box, non_negative, linf_ball), got {proj!r}")
    lower, upper = proj.bounds
    leaves = optree.tree_leaves(params)
    out = []
    for name, bound in (("lower", lower), ("upper", upper)):
        parts = [
            np.broadcast_to(_backend.to_numpy(b).astype(np.float64), tuple(p.shape)).reshape(-1)
            for p, b in zip(leaves, _bound_leaves(name, bound, params))
        ]
        out.append(np.concatenate(parts))
    return out[0], out[1]
