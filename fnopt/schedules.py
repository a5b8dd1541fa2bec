"""Learning-rate schedules: pure functions ``count -> value``.

``count`` is the number of steps taken so far (0 for the first step). Pass a schedule
wherever a ``learning_rate`` is accepted; :func:`fnopt.scale_by_learning_rate`
evaluates it at each step and records the value used in the state
(:func:`fnopt.learning_rate_of`). Names and arguments follow optax; each docstring
names the ``torch.optim.lr_scheduler`` it reproduces.

>>> from fnopt import schedules
>>> s = schedules.warmup_cosine_decay(0.0, 1.0, warmup_steps=2, decay_steps=6)
>>> [round(s(t), 3) for t in range(8)]
[0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0, 0.0]
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Schedule",
    "constant",
    "linear",
    "polynomial",
    "exponential_decay",
    "cosine_decay",
    "warmup_cosine_decay",
    "piecewise_constant",
    "join_schedules",
]

Schedule = Callable[[int], float]


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return float(value)


def _steps(name: str, value: Any, *, positive: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < (1 if positive else 0):
        raise ValueError(f"{name}: expected an int >= {1 if positive else 0}, got {value}")
    return int(value)


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    return int(value)


def _count(count: Any) -> int:
    c = int(count)
    if c < 0:
        raise ValueError(f"count: expected an int >= 0, got {count}")
    return c


def _on_arrays(schedule: Callable[[int], Any]) -> Schedule:
    """``schedule`` that also takes an array of counts (a NumPy array, list or tuple,
    or anything with ``ndim > 0``) and returns a float64 NumPy array of the values,
    element by element; a single count gives the value as before."""

    @functools.wraps(schedule)
    def evaluated(count: Any) -> Any:
        if isinstance(count, (list, tuple)) or getattr(count, "ndim", 0) > 0:
            counts = np.asarray(count)
            flat = [float(schedule(int(c))) for c in counts.reshape(-1)]
            return np.asarray(flat, dtype=np.float64).reshape(counts.shape)
        return schedule(count)

    return evaluated


def constant(value: float) -> Schedule:
    """The constant schedule :math:`\\eta_t = v` (``v = value``).

    >>> constant(0.1)(100)
    0.1
    """
    v = _real("value", value)

    def schedule(count: int) -> float:
        _count(count)
        return v

    return _on_arrays(schedule)


def polynomial(
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Polynomial interpolation from ``init_value`` to ``end_value``.

    With :math:`k = \\operatorname{clip}(t - t_b, 0, T)`:
    :math:`\\eta_t = (\\eta_0 - \\eta_T)(1 - k/T)^{p} + \\eta_T`, where :math:`T` =
    ``transition_steps``, :math:`t_b` = ``transition_begin``, :math:`p` = ``power``.
    ``torch.optim.lr_scheduler.PolynomialLR(total_iters=T, power=p)`` is
    ``polynomial(lr, 0.0, p, T)``. As optax, :math:`T \\le 0` gives the constant
    ``init_value`` and a negative :math:`t_b` counts as 0. A NumPy array of counts
    gives an array of values (so does every schedule here).

    >>> [polynomial(1.0, 0.0, 2.0, 4)(t) for t in range(6)]
    [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """
    a, b, p = _real("init_value", init_value), _real("end_value", end_value), _real("power", power)
    n = _int("transition_steps", transition_steps)
    t_b = max(_int("transition_begin", transition_begin), 0)  # optax: < 0 counts as 0
    if n <= 0:  # optax: a constant schedule at init_value
        return constant(a)

    def schedule(count: int) -> float:
        k = min(max(_count(count) - t_b, 0), n)
        return (a - b) * (1.0 - k / n) ** p + b

    return _on_arrays(schedule)


def linear(
    init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """Linear interpolation from ``init_value`` to ``end_value`` over
    ``transition_steps`` steps, starting at ``transition_begin``
    (:func:`polynomial` with power 1).
    ``torch.optim.lr_scheduler.LinearLR(start_factor=a, end_factor=b, total_iters=T)`` is
    ``linear(a * lr, b * lr, T)``.

    >>> [linear(0.0, 1.0, 4)(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    return polynomial(init_value, end_value, 1.0, transition_steps, transition_begin)


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    *,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """Exponential decay :math:`\\eta_t = \\eta_0\\,r^{(t - t_b)/T}` for :math:`t \\ge t_b`
    (:math:`\\eta_0` before), with the exponent floored when ``staircase``.

    :math:`r` = ``decay_rate``, :math:`T` = ``transition_steps``, :math:`t_b` =
    ``transition_begin``. ``end_value`` bounds the value (from below when
    :math:`r < 1`, from above when :math:`r > 1`), before :math:`t_b` too. As optax,
    :math:`T \\le 0` or :math:`r = 0` give the constant ``init_value`` and a negative
    :math:`t_b` counts as 0. ``ExponentialLR(gamma)`` is
    ``exponential_decay(lr, 1, gamma)``; ``StepLR(step_size, gamma)`` is
    ``exponential_decay(lr, step_size, gamma, staircase=True)``.

    >>> [exponential_decay(1.0, 2, 0.5, staircase=True)(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    a = _real("init_value", init_value)
    n = _int("transition_steps", transition_steps)
    r = _real("decay_rate", decay_rate)
    if r < 0:
        raise ValueError(f"decay_rate: expected a number >= 0, got {decay_rate}")
    t_b = max(_int("transition_begin", transition_begin), 0)  # optax: < 0 counts as 0
    end = None if end_value is None else _real("end_value", end_value)
    if n <= 0 or r == 0:  # optax: a constant schedule at init_value
        return constant(a)

    def schedule(count: int) -> float:
        k = _count(count) - t_b
        v = a if k <= 0 else a * r ** (k // n if staircase else k / n)
        if end is not None:  # the bound holds before transition_begin too (optax)
            v = max(v, end) if r < 1 else min(v, end)
        return v

    return _on_arrays(schedule)


def cosine_decay(
    init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0
) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    :math:`\\eta_t = \\eta_0\\left((1-\\alpha)\\,c_t^{\\,e} + \\alpha\\right)`,
    :math:`c_t = \\tfrac12\\left(1 + \\cos(\\pi \\min(t, T)/T)\\right)` with :math:`T` =
    ``decay_steps``, :math:`e` = ``exponent``. ``CosineAnnealingLR(T_max=T,
    eta_min=m)`` is ``cosine_decay(lr, T, alpha=m / lr)`` for :math:`t \\le T`.

    >>> [round(cosine_decay(1.0, 4)(t), 4) for t in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]

    Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017.
    """
    a = _real("init_value", init_value)
    n = _steps("decay_steps", decay_steps, positive=True)
    al = _real("alpha", alpha)
    e = _real("exponent", exponent)

    def schedule(count: int) -> float:
        k = min(_count(count), n)
        c = 0.5 * (1.0 + math.cos(math.pi * k / n))
        return a * ((1.0 - al) * c**e + al)

    return _on_arrays(schedule)


def warmup_cosine_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then
    cosine decay to ``end_value``; ``decay_steps`` counts the whole schedule, warm-up
    included (as optax).

    :math:`\\eta_t = \\eta_0 + (\\eta_p - \\eta_0) t / W` for :math:`t < W`, then
    :func:`cosine_decay` from :math:`\\eta_p` with :math:`\\alpha = \\eta_{end}/\\eta_p`
    over :math:`T - W` steps (:math:`\\alpha = 0` when :math:`\\eta_p = 0`, as optax).

    >>> s = warmup_cosine_decay(0.0, 1.0, warmup_steps=2, decay_steps=4, end_value=0.5)
    >>> [s(t) for t in range(5)]
    [0.0, 0.5, 1.0, 0.75, 0.5]
    """
    peak = _real("peak_value", peak_value)
    w = _steps("warmup_steps", warmup_steps)
    n = _steps("decay_steps", decay_steps, positive=True)
    if n <= w:
        raise ValueError(
            f"decay_steps: must exceed warmup_steps ({w}) (it counts the warm-up), got {n}"
        )
    end = _real("end_value", end_value)
    decay = cosine_decay(peak, n - w, alpha=end / peak if peak else 0.0, exponent=exponent)
    if w == 0:
        return decay
    return join_schedules([linear(init_value, peak, w), decay], [w])


def piecewise_constant(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    """A constant that is multiplied by ``scale`` from each ``boundary`` on.

    :math:`\\eta_t = \\eta_0 \\prod_{b \\le t} s_b` over the items ``{b: s_b}`` of
    ``boundaries_and_scales``. ``MultiStepLR(milestones, gamma)`` is
    ``piecewise_constant(lr, {m: gamma for m in milestones})``.

    >>> s = piecewise_constant(1.0, {2: 0.1, 4: 0.5})
    >>> [round(s(t), 6) for t in range(6)]
    [1.0, 1.0, 0.1, 0.1, 0.05, 0.05]
    """
    a = _real("init_value", init_value)
    if boundaries_and_scales is not None and not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            "boundaries_and_scales: expected a mapping {step: scale} or None, got "
            f"{type(boundaries_and_scales).__name__}"
        )
    items = sorted((boundaries_and_scales or {}).items())
    for b, s in items:
        _steps("boundaries_and_scales key", b)
        if _real(f"boundaries_and_scales[{b}]", s) < 0:
            raise ValueError(f"boundaries_and_scales[{b}]: expected a scale >= 0, got {s}")

    def schedule(count: int) -> float:
        c = _count(count)
        v = a
        for b, s in items:
            if c >= b:
                v *= s
        return v

    return _on_arrays(schedule)


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` between ``boundaries[i-1]`` and ``boundaries[i]``, each
    restarted at count 0 when it takes over (``SequentialLR``).

    Args:
      schedules: n schedules.
      boundaries: n - 1 increasing step counts.

    Returns:
      A schedule.

    >>> s = join_schedules([constant(1.0), linear(1.0, 0.0, 2)], [3])
    >>> [s(t) for t in range(6)]
    [1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """
    scheds = list(schedules)
    bounds = [_steps("boundaries", b) for b in boundaries]
    if not scheds:
        raise ValueError("schedules: expected at least one schedule")
    for i, s in enumerate(scheds):
        if not callable(s):
            raise TypeError(f"schedules[{i}]: expected a callable, got {type(s).__name__}")
    if len(bounds) != len(scheds) - 1:
        raise ValueError(
            f"boundaries: expected {len(scheds) - 1} boundaries for {len(scheds)} schedules, "
            f"got {len(bounds)}"
        )
    if any(b1 >= b2 for b1, b2 in itertools.pairwise(bounds)):
        raise ValueError(f"boundaries: expected strictly increasing step counts, got {bounds}")

    def schedule(count: int) -> float:
        c = _count(count)
        i = bisect.bisect_right(bounds, c)
        return scheds[i](c - (bounds[i - 1] if i else 0))

    return _on_arrays(schedule)


# -- optax's names ------------------------------------------------------------------------
# The schedules above under the names (and signatures) optax gives them, and optax's
# one-cycle schedule. ``exponential_decay`` and ``join_schedules`` already carry optax's
# names.

__all__ += [
    "linear_schedule",
    "polynomial_schedule",
    "cosine_decay_schedule",
    "warmup_cosine_decay_schedule",
    "piecewise_constant_schedule",
    "cosine_onecycle_schedule",
]


# Same signatures as the functions they name; optax's argument names throughout.
linear_schedule = linear
polynomial_schedule = polynomial
cosine_decay_schedule = cosine_decay
warmup_cosine_decay_schedule = warmup_cosine_decay
piecewise_constant_schedule = piecewise_constant


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """The one-cycle schedule with cosine annealing, as optax.cosine_onecycle_schedule.

    With :math:`T` = ``transition_steps``, :math:`b = \\lfloor p_s T \\rfloor`,
    values :math:`v_0 = \\eta_p/d`, :math:`v_1 = v_0 d`, :math:`v_2 = v_1 / (d f)`:
    on :math:`[0, b)` and :math:`[b, T)` the value moves from :math:`v_i` to
    :math:`v_{i+1}` along :math:`v_{i+1} + \\tfrac{v_i - v_{i+1}}{2}(\\cos(\\pi\\,\\rho) + 1)`
    (:math:`\\rho` the fraction of the interval done); :math:`v_2` from :math:`T` on.
    ``torch.optim.lr_scheduler.OneCycleLR(anneal_strategy="cos")`` with the same
    factors.

    Args:
      transition_steps: total length :math:`T`, an int >= 1.
      peak_value: the largest value :math:`\\eta_p`.
      pct_start: fraction :math:`p_s` of the cycle spent rising, in [0, 1].
      div_factor: :math:`d > 0`, the start is :math:`\\eta_p / d`.
      final_div_factor: :math:`f > 0`, the end is :math:`\\eta_p / (d f)`.

    Returns:
      A schedule.

    >>> s = cosine_onecycle_schedule(4, 1.0, pct_start=0.5, div_factor=10.0, final_div_factor=10.0)
    >>> [round(s(t), 4) for t in range(5)]
    [0.1, 0.55, 1.0, 0.505, 0.01]

    Smith and Topin, "Super-Convergence: Very Fast Training of Neural Networks Using
    Large Learning Rates", 2017.
    """
    n = _steps("transition_steps", transition_steps, positive=True)
    peak = _real("peak_value", peak_value)
    pct = _real("pct_start", pct_start)
    if not 0.0 <= pct <= 1.0:
        raise ValueError(f"pct_start: expected a number in [0, 1], got {pct_start}")
    div, fdiv = _real("div_factor", div_factor), _real("final_div_factor", final_div_factor)
    for name, v in (("div_factor", div), ("final_div_factor", fdiv)):
        if v <= 0:
            raise ValueError(f"{name}: expected a number > 0, got {v}")
    bounds = (0, int(pct * n), n)
    v0 = peak / div
    v1 = v0 * div
    values = (v0, v1, v1 * (1.0 / (div * fdiv)))

    def schedule(count: int) -> float:
        c = _count(count)
        for i in (0, 1):
            lo, hi = bounds[i], bounds[i + 1]
            if lo <= c < hi:
                rho = (c - lo) / (hi - lo)
                return values[i + 1] + (values[i] - values[i + 1]) / 2.0 * (
                    math.cos(math.pi * rho) + 1.0)
        return values[2]

    return _on_arrays(schedule)


def per_epoch(schedule: Schedule, steps_per_epoch: int) -> Schedule:
    """Step ``schedule`` once per epoch, as ``lr_scheduler.step()`` after each epoch does.

    :math:`\\eta_t = s(\\lfloor t / B \\rfloor)`, :math:`s` = ``schedule`` (indexed by
    epoch), :math:`B` = ``steps_per_epoch``: every step of epoch :math:`e` uses
    :math:`s(e)`. With a torch scheduler stepped at the end of each epoch,
    ``StepLR(step_size=k, gamma=g)`` is ``per_epoch(exponential_decay(lr, k, g,
    staircase=True), B)`` and ``CosineAnnealingLR(T_max=T)`` is
    ``per_epoch(cosine_decay(lr, T), B)``. (A last epoch shorter than ``B``, as with a
    ``DataLoader`` whose ``drop_last=False``, is counted in ``B``: pass ``len(loader)``.)

    Args:
      schedule: a schedule ``epoch -> value``.
      steps_per_epoch: optimizer steps per epoch (batches per epoch), >= 1.

    Returns:
      A schedule ``count -> value`` over steps.

    >>> s = per_epoch(exponential_decay(1.0, 1, 0.5), steps_per_epoch=3)
    >>> [s(t) for t in range(7)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """
    if not callable(schedule):
        raise TypeError(f"schedule: expected a callable, got {type(schedule).__name__}")
    n = _steps("steps_per_epoch", steps_per_epoch, positive=True)

    def stepped(count: int) -> Any:
        return schedule(_count(count) // n)

    return _on_arrays(stepped)


__all__ += ["per_epoch"]


# -- the rest of optax's schedules ---------------------------------------------------------

constant_schedule = constant


def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then
    ``peak_value`` (optax.warmup_constant_schedule; :func:`linear`).

    >>> [warmup_constant_schedule(0.0, 1.0, 2)(t) for t in range(4)]
    [0.0, 0.5, 1.0, 1.0]
    """
    return linear(init_value, peak_value, warmup_steps)


def warmup_exponential_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """Linear warm-up to ``peak_value`` over ``warmup_steps``, then
    :func:`exponential_decay` from it (restarted at count 0), as
    optax.warmup_exponential_decay_schedule.

    >>> s = warmup_exponential_decay_schedule(0.0, 1.0, 2, 1, 0.5)
    >>> [s(t) for t in range(5)]
    [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    decay = exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
                              staircase=staircase, end_value=end_value)
    w = _int("warmup_steps", warmup_steps)
    if w <= 0:
        return decay
    return join_schedules([linear(init_value, peak_value, w), decay], [w])


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: float,
    boundaries_and_scales: Mapping[int, float] | None = None,
) -> Schedule:
    """Interpolate between the values :math:`v_0 = \\eta_0`,
    :math:`v_i = v_{i-1} s_i` reached at the boundaries :math:`b_i` (the items
    ``{b_i: s_i}``, sorted), linearly or along a half cosine
    (optax.piecewise_interpolate_schedule); :math:`v_n` after the last boundary.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: :math:`\\eta_0`, the value at count 0.
      boundaries_and_scales: ``{step: scale}`` with scales >= 0.

    Returns:
      A schedule.

    >>> s = piecewise_interpolate_schedule("linear", 1.0, {2: 3.0, 4: 0.5})
    >>> [s(t) for t in range(6)]
    [1.0, 2.0, 3.0, 2.25, 1.5, 1.5]
    """
    if interpolate_type not in ("linear", "cosine"):
        raise ValueError(
            f"interpolate_type: expected 'linear' or 'cosine', got {interpolate_type!r}")
    a = _real("init_value", init_value)
    if boundaries_and_scales is not None and not isinstance(boundaries_and_scales, Mapping):
        raise TypeError("boundaries_and_scales: expected a mapping {step: scale} or None, "
                        f"got {type(boundaries_and_scales).__name__}")
    items = sorted((boundaries_and_scales or {}).items())
    bounds, values = [0], [a]
    for b, sc in items:
        _steps("boundaries_and_scales key", b)
        if _real(f"boundaries_and_scales[{b}]", sc) < 0:
            raise ValueError(f"boundaries_and_scales[{b}]: expected a scale >= 0, got {sc}")
        bounds.append(int(b))
        values.append(values[-1] * float(sc))

    def interpolate(v0: float, v1: float, pct: float) -> float:
        if interpolate_type == "linear":
            return (v1 - v0) * pct + v0
        return v1 + (v0 - v1) / 2.0 * (math.cos(math.pi * pct) + 1.0)

    def schedule(count: int) -> float:
        c = _count(count)
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            if lo <= c < hi:
                return interpolate(values[i], values[i + 1], (c - lo) / max(hi - lo, 1))
        return values[-1]

    return _on_arrays(schedule)


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """The linear one-cycle schedule (optax.linear_onecycle_schedule): from
    :math:`\\eta_p/d` up to :math:`\\eta_p` at :math:`p_s T`, down to :math:`\\eta_p/d`
    at :math:`p_f T`, then to :math:`\\eta_p/(d f)` at :math:`T`
    (:func:`piecewise_interpolate_schedule`).

    >>> s = linear_onecycle_schedule(10, 1.0, pct_start=0.2, pct_final=0.6,
    ...                              div_factor=10.0, final_div_factor=10.0)
    >>> [round(s(t), 4) for t in (0, 1, 2, 4, 6, 8, 10)]
    [0.1, 0.55, 1.0, 0.55, 0.1, 0.055, 0.01]

    Smith and Topin, "Super-Convergence", 2017.
    """
    n = _int("transition_steps", transition_steps)
    if n <= 0:
        raise ValueError(f"transition_steps: expected an int >= 1, got {transition_steps}")
    peak, d = _real("peak_value", peak_value), _real("div_factor", div_factor)
    f = _real("final_div_factor", final_div_factor)
    if d <= 0 or f <= 0:
        raise ValueError("div_factor, final_div_factor: expected numbers > 0")
    return piecewise_interpolate_schedule("linear", peak / d, {
        int(_real("pct_start", pct_start) * n): d,
        int(_real("pct_final", pct_final) * n): 1.0 / d,
        n: 1.0 / f,
    })


def sgdr_schedule(cosine_kwargs: Sequence[Mapping[str, Any]]) -> Schedule:
    """Stochastic gradient descent with warm restarts (optax.sgdr_schedule): one
    :func:`warmup_cosine_decay` per dict of ``cosine_kwargs`` (its arguments:
    ``init_value``, ``peak_value``, ``warmup_steps``, ``decay_steps``, ...), each run
    for its ``decay_steps`` and restarted at count 0.

    >>> s = sgdr_schedule([dict(init_value=0.0, peak_value=1.0, warmup_steps=1,
    ...                         decay_steps=3)] * 2)
    >>> [round(s(t), 3) for t in range(7)]
    [0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0]

    Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017.
    """
    scheds, bounds, step = [], [], 0
    for i, kw in enumerate(cosine_kwargs):
        if not isinstance(kw, Mapping) or "decay_steps" not in kw:
            raise TypeError(f"cosine_kwargs[{i}]: expected a dict of warmup_cosine_decay "
                            "arguments with 'decay_steps'")
        scheds.append(warmup_cosine_decay(**kw))
        step += int(kw["decay_steps"])
        bounds.append(step)
    if not scheds:
        raise ValueError("cosine_kwargs: expected at least one dict")
    return join_schedules(scheds, bounds[:-1])


__all__ += [
    "constant_schedule", "warmup_constant_schedule", "warmup_exponential_decay_schedule",
    "piecewise_interpolate_schedule", "linear_onecycle_schedule", "sgdr_schedule",
]
