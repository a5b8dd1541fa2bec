"""Scalings that keep no statistics of the gradient's scale: :func:`scale`,
:func:`scale_by_learning_rate`, :func:`trace` (momentum), :func:`ema`,
:func:`add_decayed_weights`, :func:`polyak_average`, :func:`scale_by_sign` and
:func:`scale_by_optimistic_gradient`."""


from __future__ import annotations

import numbers
from typing import Any, NamedTuple

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import (
    Params,
    ScalarOrSchedule,
    State,
    Transform,
    Updates,
    _new,
    as_scalar_hyperparam,
    check_bool,
    check_nonnegative,
    check_unit_interval,
)
from fnopt.transforms._common import (
    Direction,
    _as_dtype,
    _builtin,
    _check_real,
    _dst,
    _dtype_name,
    _flat,
    _stateless,
    add_direction,
)

# -- scaling ---------------------------------------------------------------------------


def scale(step_size: float) -> Transform:
    """Multiply updates by a constant: :math:`u \\leftarrow s\\,u` (``s = step_size``).

    >>> import numpy as np, fnopt
    >>> scale(-1.0).update(np.array([2.0]), fnopt.transforms.EmptyState())[0]
    array([-2.])
    """
    _check_real("step_size", step_size)
    t = _stateless(lambda updates, params: tree.scale(step_size, updates), "scale",
                   step_size=step_size)

    def update_params(
        grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        return tree.axpy(step_size, grads, params, out=out), state

    return _builtin(t.init, t.update, "scale", update_params, step_size=step_size)


class ScaleByLearningRateState(NamedTuple):
    """``count``: steps taken; ``learning_rate``: the rate used by the last step."""

    count: int  # type: ignore[assignment]
    learning_rate: Any


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool = True) -> Transform:
    """Scale updates by ``-learning_rate`` (a float or a schedule ``count -> lr``).

    :math:`u \\leftarrow -\\eta_t\\,u`, with :math:`\\eta_t` = ``learning_rate(count)``
    for a schedule (``count`` starts at 0) or the constant ``learning_rate``. The rate
    used is stored in the state (``state.learning_rate``; before the first step it
    holds the rate the first step will use). ``flip_sign=False`` drops the minus sign.

    Args:
      learning_rate: a number >= 0 or a callable schedule (see :mod:`fnopt.schedules`).
      flip_sign: whether to negate (descent) — the default.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_learning_rate(lambda count: 0.1 / (count + 1))
    >>> u, s = t.update(np.array([1.0]), t.init(np.zeros(1)))
    >>> u, s.learning_rate
    (array([-0.1]), 0.1)
    """
    check_bool("flip_sign", flip_sign)
    check_nonnegative("learning_rate", learning_rate)
    learning_rate = as_scalar_hyperparam(learning_rate)
    sign = -1.0 if flip_sign else 1.0

    def init(params: Params) -> ScaleByLearningRateState:
        del params
        lr0 = scheduled_value(learning_rate, 0) if callable(learning_rate) else learning_rate
        return ScaleByLearningRateState(0, lr0)

    def rate(state: State) -> tuple[Any, ScaleByLearningRateState]:
        lr = (scheduled_value(learning_rate, state.count) if callable(learning_rate)
              else learning_rate)
        return sign * lr, _new(ScaleByLearningRateState, (state.count + 1, lr))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params, inplace  # the state holds no buffers
        coef, new_state = rate(state)
        return tree.scale(coef, updates), new_state

    def update_params(
        grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        coef, new_state = rate(state)  # p + coef * u in one pass
        return tree.axpy(coef, grads, params, out=out), new_state

    def apply_direction(
        d: Direction, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        coef, new_state = rate(state)  # p + (coef c_i) n_i / d_i, one pass per term
        leaves = d.spec.flatten_up_to(params)
        dst = None if out is None else d.spec.flatten_up_to(out)
        res = add_direction(d, coef, leaves, dst)
        return (d.spec.unflatten(res) if out is None else out), new_state

    return Transform(
        init, update, inplace=True, name="scale_by_learning_rate",
        hyperparams={"learning_rate": learning_rate, "flip_sign": flip_sign},
        update_params=update_params, apply_direction=apply_direction,
    )


def scheduled_value(schedule: Any, count: int, name: str = "learning_rate") -> Any:
    """``schedule(count)``, checked to be one real number (a Python or NumPy number, or
    a 0-d floating array or tensor): anything else (``None``, a string, a vector) is a
    ``TypeError`` naming the argument and the count, before it reaches the arithmetic."""
    value = schedule(count)
    be = _backend.of_leaf(value)
    if be is not None:
        if value.ndim == 0 and be.is_floating(value):
            return value
        raise TypeError(
            f"{name}: the schedule returned an array of shape {tuple(value.shape)} and dtype "
            f"{value.dtype} at count {count}; expected one real number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name}: the schedule returned {type(value).__name__} ({value!r:.40}) at count "
            f"{count}; expected a real number")
    return value


class TraceState(NamedTuple):
    """``count``: steps taken; ``trace``: the momentum buffer."""

    count: int  # type: ignore[assignment]
    trace: Any


def trace(decay: float, *, dampening: float = 0.0, nesterov: bool = False) -> Transform:
    """Momentum with torch.optim.SGD semantics.

    With :math:`\\mu` = ``decay`` and :math:`\\tau` = ``dampening``:
    :math:`b_1 = g_1`, :math:`b_t = \\mu b_{t-1} + (1-\\tau) g_t`; the update is
    :math:`b_t`, or :math:`g_t + \\mu b_t` with ``nesterov=True``. (With
    ``dampening=0`` this is also the momentum of torch.optim.RMSprop, whose buffer
    starts at zero.)

    Args:
      decay: the momentum coefficient, in [0, 1].
      dampening: dampening of the gradient term, in [0, 1].
      nesterov: use Nesterov momentum (needs ``decay > 0`` and ``dampening == 0``).

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = trace(0.9)
    >>> s = t.init(np.zeros(1))
    >>> u, s = t.update(np.array([1.0]), s)
    >>> u, s = t.update(np.array([1.0]), s)
    >>> u
    array([1.9])
    """
    check_bool("nesterov", nesterov)
    check_unit_interval("decay", decay, closed=True)
    check_unit_interval("dampening", dampening, closed=True)
    if nesterov and (decay <= 0 or dampening != 0):
        raise ValueError("nesterov: requires decay > 0 and dampening == 0")

    def init(params: Params) -> TraceState:
        return TraceState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        buf = spec.flatten_up_to(state.trace)
        if state.count == 0:
            buf = be.clone(g, _dst(buf, inplace))
        else:  # b <- mu b + (1 - tau) g, as torch: b.mul_(mu).add_(g, alpha=1 - tau)
            buf = be.scale(buf, decay, _dst(buf, inplace))
            if dampening == 0:
                buf = be.add(buf, g, buf)
            else:
                buf = be.axpy(1.0 - dampening, g, buf, buf)
        out = be.axpy(decay, buf, g) if nesterov else buf
        return spec.unflatten(out), TraceState(state.count + 1, spec.unflatten(buf))

    return _builtin(
        init, update, "trace", decay=decay, dampening=dampening, nesterov=nesterov
    )


def add_decayed_weights(weight_decay: float = 0.0) -> Transform:
    """Add ``weight_decay * params`` to the updates.

    :math:`u \\leftarrow u + \\lambda\\,p` with :math:`\\lambda` = ``weight_decay``.
    Placed *before* a ``scale_by_*`` transform this is L2 regularisation coupled to the
    gradient (torch.optim's ``weight_decay``); placed *after* it, just before
    :func:`scale_by_learning_rate`, it is decoupled weight decay (AdamW:
    :math:`p \\leftarrow p - \\eta\\lambda p - \\eta\\,d`).

    >>> import numpy as np, fnopt
    >>> t = add_decayed_weights(0.5)
    >>> t.update(np.array([1.0]), t.init(None), np.array([2.0]))[0]
    array([2.])
    """
    check_nonnegative("weight_decay", weight_decay)

    def fn(updates: Updates, params: Params | None) -> Updates:
        if params is None:
            raise ValueError("add_decayed_weights: update needs params")
        return tree.axpy(weight_decay, params, updates)

    def extend_direction(
        d: Direction, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del inplace  # no buffers
        if params is None:
            raise ValueError("add_decayed_weights: update needs params")
        term = (weight_decay, d.spec.flatten_up_to(params), None)  # lambda p + u
        # first: it reads params, which the destination may be (see add_direction)
        return Direction((term, *d.terms), d.spec, d.be), state

    t = _stateless(fn, "add_decayed_weights", weight_decay=weight_decay)
    return Transform(
        t.init, t.update, inplace=True, name=t.name, hyperparams=t.hyperparams,
        extend_direction=extend_direction,
    )


class PolyakAverageState(NamedTuple):
    """``average``: the running average of the iterates."""

    count: int  # type: ignore[assignment]
    average: Any


def polyak_average(t0: float = 1e6) -> Transform:
    """Track the average of the iterates :math:`p_t + u_t` from step ``t0`` on (ASGD's
    ``ax``); the updates pass through unchanged. Put it last in a chain.

    :math:`\\bar p_t = \\bar p_{t-1} + \\mu_t (p_{t+1} - \\bar p_{t-1})` with
    :math:`\\mu_t = 1/\\max(1, t - t_0)`.

    Args:
      t0: the step at which averaging starts (before it the average is the iterate).

    Returns:
      A :class:`fnopt.Transform` with state :class:`PolyakAverageState`.

    Iterates 1, 2, 3 with ``t0=0``: torch's weights give the mean of the last two:

    >>> import numpy as np
    >>> t = polyak_average(t0=0)
    >>> p, s = np.array([0.0]), t.init(np.array([0.0]))
    >>> for _ in range(3):
    ...     u, s = t.update(np.array([1.0]), s, p)
    ...     p = p + u
    >>> s.average
    array([2.5])

    Polyak and Juditsky, "Acceleration of Stochastic Approximation by Averaging",
    SIAM J. Control Optim. 1992.
    """
    check_nonnegative("t0", t0)

    def init(params: Params) -> PolyakAverageState:
        return PolyakAverageState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        if params is None:
            raise ValueError("polyak_average: update needs params")
        u, spec, be = _flat(updates)
        new_p = be.add(spec.flatten_up_to(params), u)
        mu = 1.0 / max(1.0, state.count - t0)  # the weight torch uses at this step
        avg = spec.flatten_up_to(state.average)
        if mu == 1.0:
            avg = be.clone(new_p, _dst(avg, inplace))
        else:  # avg + mu (p - avg)
            step = be.sub(new_p, avg, new_p)
            avg = be.add(avg, be.scale(step, mu, step), _dst(avg, inplace))
        return updates, PolyakAverageState(state.count + 1, spec.unflatten(avg))

    return _builtin(init, update, "polyak_average", t0=t0)




def scale_by_sign() -> Transform:
    """Replace each update by its sign, :math:`u \\leftarrow \\operatorname{sign}(u)`
    (optax.scale_by_sign; signSGD's direction).

    >>> import numpy as np, fnopt
    >>> scale_by_sign().update(np.array([-3.0, 0.0, 0.5]), fnopt.transforms.EmptyState())[0]
    array([-1.,  0.,  1.])

    Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems", ICML 2018.
    """

    def fn(updates: Updates, params: Params | None) -> Updates:
        del params
        u, spec, be = _flat(updates)
        return spec.unflatten(be.sign(u))

    return _stateless(fn, "scale_by_sign")


class EmaState(NamedTuple):
    """``count``: steps taken; ``ema``: the moving average (optax's ``EmaState``)."""

    count: int  # type: ignore[assignment]
    ema: Any


def ema(decay: float, debias: bool = True, accumulator_dtype: Any = None) -> Transform:
    """Exponential moving average of the updates (optax.ema).

    :math:`m_t = \\beta m_{t-1} + (1-\\beta) g_t` (:math:`m_0 = 0`, :math:`\\beta` =
    ``decay``); the update is :math:`m_t`, or :math:`m_t / (1-\\beta^t)` with
    ``debias=True``. (:func:`trace` is :math:`\\beta b + g`, without the
    :math:`1-\\beta`.)

    Args:
      decay: :math:`\\beta` in [0, 1].
      debias: divide by :math:`1-\\beta^t` (the default, as optax).
      accumulator_dtype: the dtype of the stored average (``None``: the params');
        a name or a NumPy/torch dtype.

    Returns:
      A :class:`fnopt.Transform` with state :class:`EmaState`.

    >>> import numpy as np
    >>> t = ema(0.5)
    >>> u, s = t.update(np.array([2.0]), t.init(np.zeros(1)))
    >>> u, s.ema
    (array([2.]), array([1.]))
    """
    check_unit_interval("decay", decay, closed=True)
    check_bool("debias", debias)
    dtype = _dtype_name("accumulator_dtype", accumulator_dtype)

    def init(params: Params) -> EmaState:
        return EmaState(0, tree.zeros_like(params, dtype=dtype))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        m = spec.flatten_up_to(state.ema)
        if dtype is not None:
            m = _as_dtype(be, m, g)
            inplace = False  # the stored average has another dtype
        m = be.lerp(m, g, 1.0 - decay, _dst(m, inplace))  # m + (1 - b)(g - m)
        count = state.count + 1
        out = be.scale(m, 1.0 / (1.0 - decay**count)) if debias and decay != 1.0 else m
        stored = be.cast(m, dtype) if dtype is not None else m
        return spec.unflatten(out), EmaState(count, spec.unflatten(stored))

    return _builtin(init, update, "ema", decay=decay, debias=debias,
                    accumulator_dtype=dtype)


class ScaleByOptimisticGradientState(NamedTuple):
    """``count``: steps taken; ``previous_gradient``: the last step's gradient."""

    count: int  # type: ignore[assignment]
    previous_gradient: Any


def scale_by_optimistic_gradient(alpha: float = 1.0, beta: float = 1.0) -> Transform:
    """The optimistic gradient, :math:`u_t = (\\alpha + \\beta) g_t - \\beta g_{t-1}`
    (:math:`g_0` = :math:`g_1`, so the first update is :math:`\\alpha g_1`), as
    optax.scale_by_optimistic_gradient.

    Args:
      alpha: :math:`\\alpha` >= 0, the weight of the current gradient.
      beta: :math:`\\beta` >= 0, the weight of the correction (the optimism).

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByOptimisticGradientState`.

    >>> import numpy as np
    >>> t = scale_by_optimistic_gradient()
    >>> s = t.init(np.zeros(1))
    >>> u1, s = t.update(np.array([1.0]), s)
    >>> u2, s = t.update(np.array([3.0]), s)
    >>> u1, u2
    (array([1.]), array([5.]))

    Mokhtari et al., "A Unified Analysis of Extra-gradient and Optimistic Gradient
    Methods for Saddle Point Problems", AISTATS 2020.
    """
    check_nonnegative("alpha", alpha)
    check_nonnegative("beta", beta)

    def init(params: Params) -> ScaleByOptimisticGradientState:
        return ScaleByOptimisticGradientState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        prev = g if state.count == 0 else spec.flatten_up_to(state.previous_gradient)
        out = be.axpy(-beta, prev, be.scale(g, alpha + beta))
        kept = be.clone(g, _dst(spec.flatten_up_to(state.previous_gradient), inplace))
        return spec.unflatten(out), ScaleByOptimisticGradientState(
            state.count + 1, spec.unflatten(kept))

    return _builtin(init, update, "scale_by_optimistic_gradient", alpha=alpha, beta=beta)
