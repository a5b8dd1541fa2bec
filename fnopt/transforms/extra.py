"""The small transforms optax users chain: :func:`set_to_zero`, :func:`zero_nans`,
:func:`adaptive_grad_clip`, :func:`add_noise`, :func:`centralize`,
:func:`scale_by_schedule` and :func:`keep_params_nonnegative`.

Each follows optax's documented formula (names and arguments as optax) and composes
with :func:`fnopt.chain` like any other :class:`fnopt.Transform`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import Params, State, Transform, Updates, check_int, check_nonnegative
from fnopt.transforms._common import _flat, _stateless, _stateless_on_params
from fnopt.transforms.scaling import scheduled_value

__all__ = [
    "set_to_zero",
    "zero_nans",
    "adaptive_grad_clip",
    "add_noise",
    "centralize",
    "scale_by_schedule",
    "keep_params_nonnegative",
    "ZeroNansState",
    "AddNoiseState",
    "ScaleByScheduleState",
]


def set_to_zero() -> Transform:
    """Replace every update by zeros: :math:`u \\leftarrow 0` (freezes params when
    chained last, e.g. inside :func:`fnopt.partition`).

    >>> import numpy as np
    >>> t = set_to_zero()
    >>> t.update(np.array([1.0, 2.0]), t.init(None))[0]
    array([0., 0.])
    """
    return _stateless(lambda updates, params: tree.zeros_like(updates), "set_to_zero")


class ZeroNansState(NamedTuple):
    """``found_nan``: per leaf, whether the last updates had a NaN (0-d booleans)."""

    found_nan: Any


def zero_nans() -> Transform:
    """Replace NaN entries of the updates by 0 and record, per leaf, whether there was
    one: :math:`u \\leftarrow \\operatorname{where}(\\operatorname{isnan}(u), 0, u)`.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ZeroNansState`.

    >>> import numpy as np
    >>> t = zero_nans()
    >>> u, s = t.update(np.array([1.0, np.nan]), t.init(np.zeros(2)))
    >>> u, bool(s.found_nan)
    (array([1., 0.]), True)
    """

    def init(params: Params) -> ZeroNansState:
        leaves, spec, be = _flat(params)
        return ZeroNansState(spec.unflatten(
            [be.isnan([be.scalar(0.0, x)])[0].any() for x in leaves]))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        g, spec, be = _flat(updates)
        masks = be.isnan(g)
        out = be.where(masks, [0.0] * len(g), g)
        return spec.unflatten(out), ZeroNansState(spec.unflatten([m.any() for m in masks]))

    return Transform(init, update)


def _unit_axes(x: Any, axis: Any = None) -> tuple[int, ...]:
    """optax's ``unitwise_norm`` axes: ``axis`` when given; else all for (squeezed)
    ndim <= 1, ``(0,)`` for ndim 2 or 3, ``(0, 1, 2)`` for ndim 4 and
    ``(0, 1, 2, 3)`` for ndim 5."""
    shape = tuple(x.shape)
    if axis is not None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        return tuple(a % len(shape) for a in axes)
    if sum(1 for n in shape if n != 1) <= 1:
        return tuple(range(len(shape)))
    if len(shape) in (2, 3, 4, 5):
        return tuple(range(max(1, len(shape) - 1))) if len(shape) >= 4 else (0,)
    raise ValueError(f"adaptive_grad_clip: no unit-wise norm for a leaf of shape {shape}; "
                     "pass axis= (the axes of one unit)")


def adaptive_grad_clip(clipping: float, eps: float = 1e-3, axis: Any = None) -> Transform:
    """Adaptive gradient clipping (AGC): clip each unit's gradient relative to its
    parameter's norm, as optax.adaptive_grad_clip.

    With unit-wise norms :math:`\\|\\cdot\\|_u` (over ``axis``; by default a whole
    vector, axis 0 for 2-3-d leaves (linear, multi-head), axes 0-2 for 4-d (conv
    HWIO) and 0-3 for 5-d leaves (conv3d DHWIO)), :math:`m = c \\max(\\|p\\|_u,
    \\epsilon)`:

    .. math::
        u \\leftarrow \\begin{cases} u & \\|u\\|_u < m \\\\
        u \\, m / \\max(\\|u\\|_u, 10^{-6}) & \\text{otherwise} \\end{cases}

    Args:
      clipping: the maximum ratio :math:`c` of gradient to parameter norm, >= 0.
      eps: lower bound of the parameter norm, >= 0.
      axis: an axis or tuple of axes of one unit, for every leaf; ``None``: the
        defaults above (other ranks then need it).

    Returns:
      A :class:`fnopt.Transform` (its update needs params).

    >>> import numpy as np
    >>> t = adaptive_grad_clip(0.1)
    >>> t.update(np.array([3.0, 4.0]), t.init(None), np.array([6.0, 8.0]))[0]
    array([0.6, 0.8])

    Brock et al., "High-Performance Large-Scale Image Recognition Without
    Normalization", ICML 2021.
    """
    check_nonnegative("clipping", clipping)
    check_nonnegative("eps", eps)
    if axis is not None and not (isinstance(axis, int) or (
            isinstance(axis, tuple) and all(isinstance(a, int) for a in axis))):
        raise TypeError(f"axis: expected None, an int or a tuple of ints, got {axis!r}")

    def fn(g: list[Any], p: list[Any], be: _backend.Backend) -> list[Any]:
        out = []
        for gi, pi in zip(g, p):
            axes = _unit_axes(gi, axis)
            g_norm = be.sqrt([be.sum_axes(be.mul([gi], [gi])[0], axes)])[0]
            p_norm = be.sqrt([be.sum_axes(be.mul([pi], [pi])[0], axes)])[0]
            max_norm = be.scale(be.clip([p_norm], eps, math.inf), clipping)[0]
            clipped = be.mul([gi], be.div([max_norm], be.clip([g_norm], 1e-6, math.inf)))[0]
            out.append(be.where([g_norm < max_norm], [gi], [clipped])[0])
        return out

    return _stateless_on_params(fn, "adaptive_grad_clip", axis=axis)


class AddNoiseState(NamedTuple):
    """``count``: steps taken; ``seed``: the seed of the noise stream."""

    count: int  # type: ignore[assignment]
    seed: int


def add_noise(eta: float, gamma: float, seed: int) -> Transform:
    """Add annealed Gaussian noise to the updates, as optax.add_noise.

    .. math::
        u_t \\leftarrow u_t + \\sigma_t\\,\\xi_t,\\quad
        \\sigma_t^2 = \\frac{\\eta}{(1+t)^{\\gamma}},\\quad \\xi_t \\sim \\mathcal N(0, I)

    (:math:`t` = steps taken before this one). The draws are a pure function of
    ``(seed, t, leaf index)`` (NumPy's PCG64), the same on both backends; they are not
    optax's (JAX) draws.

    Args:
      eta: noise scale :math:`\\eta` >= 0.
      gamma: annealing exponent :math:`\\gamma` >= 0.
      seed: an int >= 0.

    Returns:
      A :class:`fnopt.Transform` with state :class:`AddNoiseState`.

    >>> import numpy as np
    >>> t = add_noise(0.0, 0.55, seed=0)
    >>> t.update(np.array([1.0]), t.init(np.zeros(1)))[0]
    array([1.])

    Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep
    Networks", 2015.
    """
    check_nonnegative("eta", eta)
    check_nonnegative("gamma", gamma)
    check_int("seed", seed, 0)

    def init(params: Params) -> AddNoiseState:
        del params
        return AddNoiseState(0, int(seed))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        g, spec, be = _flat(updates)
        std = math.sqrt(eta / (1.0 + state.count) ** gamma)
        noise = [
            be.from_numpy(
                np.random.default_rng([state.seed, state.count, i]).standard_normal(
                    tuple(x.shape)), x)
            for i, x in enumerate(g)
        ]
        return spec.unflatten(be.axpy(std, noise, g)), AddNoiseState(state.count + 1, state.seed)

    # the draws depend on each leaf's whole shape: a batch of stacked problems gets other
    # noise than each problem alone (fnopt.batched refuses it)
    return Transform(init, update, name="add_noise",
                     hyperparams={"eta": eta, "gamma": gamma, "seed": seed, "whole_tree": True})


def centralize() -> Transform:
    """Gradient centralisation, as optax.centralize: every leaf with ndim > 1 has its
    mean over all axes but the first subtracted,
    :math:`u \\leftarrow u - \\operatorname{mean}_{1..n-1}(u)`; vectors pass unchanged.

    >>> import numpy as np
    >>> t = centralize()
    >>> t.update(np.array([[1.0, 3.0], [0.0, 4.0]]), t.init(None))[0]
    array([[-1.,  1.],
           [-2.,  2.]])

    Yong et al., "Gradient Centralization: A New Optimization Technique for Deep Neural
    Networks", ECCV 2020.
    """

    def fn(updates: Updates, params: Params | None) -> Updates:
        del params
        g, spec, be = _flat(updates)
        out = []
        for x in g:
            if x.ndim > 1:
                axes = tuple(range(1, x.ndim))
                n = math.prod(tuple(x.shape)[1:])
                x = be.sub([x], be.scale([be.sum_axes(x, axes)], 1.0 / n))[0]
            out.append(x)
        return spec.unflatten(out)

    return _stateless(fn, "centralize")


class ScaleByScheduleState(NamedTuple):
    """``count``: steps taken."""

    count: int  # type: ignore[assignment]


def scale_by_schedule(step_size_fn: Callable[[int], Any]) -> Transform:
    """Multiply the updates by a schedule, as optax.scale_by_schedule:
    :math:`u_t \\leftarrow s(t)\\,u_t` with :math:`s` = ``step_size_fn`` and :math:`t`
    the steps taken before this one. No sign flip (unlike
    :func:`fnopt.scale_by_learning_rate`).

    >>> import numpy as np
    >>> t = scale_by_schedule(lambda count: 1.0 / (count + 1))
    >>> s = t.init(None)
    >>> u, s = t.update(np.array([1.0]), s)
    >>> u, s = t.update(np.array([1.0]), s)
    >>> u
    array([0.5])
    """
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn: expected a callable, got {type(step_size_fn).__name__}")

    def init(params: Params) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(0)

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        step = scheduled_value(step_size_fn, state.count, "step_size_fn")
        return tree.scale(step, updates), ScaleByScheduleState(
            state.count + 1)

    return Transform(init, update)


def keep_params_nonnegative() -> Transform:
    """Keep params >= 0, as optax.keep_params_nonnegative: where a step would make a
    param negative, move it to 0 instead,
    :math:`u \\leftarrow \\operatorname{where}(p + u < 0, -p, u)`. Chain it last.

    >>> import numpy as np
    >>> t = keep_params_nonnegative()
    >>> t.update(np.array([-2.0, -0.5]), t.init(None), np.array([1.0, 1.0]))[0]
    array([-1. , -0.5])
    """

    def fn(g: list[Any], p: list[Any], be: _backend.Backend) -> list[Any]:
        conds = [s < 0 for s in be.add(p, g)]
        return be.where(conds, be.scale(p, -1.0), g)

    return _stateless_on_params(fn, "keep_params_nonnegative")
