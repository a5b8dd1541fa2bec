"""Reduce the step size when the loss stops improving: ``torch.optim.lr_scheduler.
ReduceLROnPlateau`` as a transform (:func:`reduce_on_plateau`).

The transform multiplies the updates by a scale held in its state and reads the loss
through a keyword: ``update(updates, state, params, *, value=loss)``. Inside an
optimizer (``fnopt.chain(fnopt.adamw(1e-3), fnopt.reduce_on_plateau())``, run by
``opt.step`` or :func:`fnopt.fixed_point`) the step's loss is passed to it: the
transform declares ``takes_value`` and :meth:`fnopt.Descent.apply` hands it over.

>>> import numpy as np, fnopt
>>> t = fnopt.reduce_on_plateau(factor=0.5, patience=1)
>>> s = t.init(np.zeros(1))
>>> for loss in [1.0, 0.5, 0.6, 0.7, 0.8]:
...     u, s = t.update(np.ones(1), s, value=loss)
>>> float(u[0]), s.scale, s.best
(0.5, 0.5, 0.5)

**On a validation metric** (torch's ``scheduler.step(val_loss)`` after each epoch):
pass ``value_fn`` (e.g. the loss on a validation set) and ``every`` (the updates
between two plateau steps: the batches of one epoch). A plateau step then reads
:math:`v` = ``value_fn(params)`` instead of the training losses: at each call that
follows a multiple of ``every`` calls (calls ``every + 1``, ``2 every + 1``, ...),
``params`` being the params after those updates (the end of an epoch), the plateau
step is taken first and its scale already multiplies that call's updates, the first
of the next epoch, as torch's rate after ``scheduler.step(val_loss)``. In
:func:`fnopt.fixed_point` with ``data=loader, epochs=n`` and ``every=len(loader)``
that is once per epoch, at the params the epoch ended with (the metric of the last
epoch is never read: no update follows it). ``value`` is then not needed (ignored).
:func:`fnopt.learning_rate_of` at an epoch's end (``on_epoch``) gives the rate that
epoch ran with; the rate after its metric shows from the next step on.

>>> import numpy as np, fnopt
>>> val = lambda p: float(abs(p[0] - 1.0))            # a "validation" metric
>>> opt = fnopt.chain(fnopt.sgd(1.0), fnopt.reduce_on_plateau(
...     0.5, patience=0, value_fn=val, every=2))
>>> p, s = np.zeros(1), opt.init(np.zeros(1))
>>> for _ in range(7):
...     p, s = opt.step(p, lambda p: (float(p[0] ** 2), np.array([-1.0])), s)
>>> fnopt.learning_rate_of(s), s.inner[-1].steps, s.inner[-1].best
(0.25, 3, 1.0)
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

from fnopt import tree as _tree
from fnopt._base import Params, State, Transform, Updates, check_int

__all__ = ["reduce_on_plateau", "ReduceLROnPlateauState"]


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau`.

    Attributes:
      scale: the factor the next updates are multiplied by (1.0 at first).
      best: the best (accumulated) loss so far (``inf`` for ``mode="min"``).
      plateau_count: plateau steps without improvement (torch's ``num_bad_epochs``).
      cooldown_count: plateau steps of cooldown left.
      count: losses accumulated towards the next plateau step.
      avg_value: their running mean.
      steps: plateau steps taken (torch's ``last_epoch``).
    """

    scale: float
    best: float
    plateau_count: int
    cooldown_count: int
    count: int  # type: ignore[assignment]
    avg_value: float
    steps: int


def _number(name: str, value: Any, *, low: float, high: float = math.inf,
            open_low: bool = False, open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    bad_low = value <= low if open_low else value < low
    bad_high = value >= high if open_high else value > high
    if not math.isfinite(value) or bad_low or bad_high:
        lo = "(" if open_low else "["
        hi = ")" if open_high or math.isinf(high) else "]"
        raise ValueError(f"{name}: expected a number in {lo}{low:g}, {high:g}{hi}, got {value}")
    return value


def _improves(mode: str, threshold_mode: str, threshold: float, a: float, best: float) -> bool:
    if mode == "min":
        bound = best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold
        return a < bound
    bound = best * (1.0 + threshold) if threshold_mode == "rel" else best + threshold
    return a > bound


def _choice(name: str, value: Any, options: str) -> None:
    """Refuse ``value`` unless it is one of the quoted ``options`` (``"'a' or 'b'"``)."""
    if not isinstance(value, str) or f"'{value}'" not in options.split(" or "):
        raise ValueError(f"{name}: expected {options}, got {value!r}")


def _plateau_step(
    s: ReduceLROnPlateauState, v: float, *, mode: str, threshold_mode: str,
    threshold: float, patience: int, factor: float, min_scale: float, eps: float,
    cooldown: int,
) -> ReduceLROnPlateauState:
    """The state after one plateau step whose mean loss is ``v`` (see
    :func:`reduce_on_plateau`)."""
    best, bad = (v, 0) if _improves(mode, threshold_mode, threshold, v, s.best) else (
        s.best, s.plateau_count + 1)
    cool = s.cooldown_count
    if cool > 0:  # non-improvements during cooldown are not counted
        cool, bad = cool - 1, 0
    scale = s.scale
    if bad > patience:
        new = max(scale * factor, min_scale)
        scale = new if scale - new > eps else scale
        cool, bad = cooldown, 0
    return ReduceLROnPlateauState(scale, best, bad, cool, 0, 0.0, s.steps + 1)


def _update_on_loss(
    updates: Updates, state: ReduceLROnPlateauState, value: Any, accumulation_size: int,
    plateau_step: Callable[..., Any],
) -> tuple[Updates, ReduceLROnPlateauState]:
    """``reduce_on_plateau``'s update on the training loss ``value``: the scale, then a
    plateau step on the mean of every ``accumulation_size`` losses."""
    if value is None:
        raise TypeError(
            "reduce_on_plateau: update needs the loss, update(updates, state, params, "
            "value=loss)"
        )
    v = float(value)
    out = updates if state.scale == 1.0 else _tree.scale(state.scale, updates)
    count = state.count + 1
    avg = state.avg_value + (v - state.avg_value) / count
    if count < accumulation_size:
        return out, state._replace(count=count, avg_value=avg)
    return out, plateau_step(state, avg)


def _update_on_metric(
    updates: Updates, state: ReduceLROnPlateauState, params: Params | None,
    value_fn: Callable[[Any], Any], every: int, plateau_step: Callable[..., Any],
) -> tuple[Updates, ReduceLROnPlateauState]:
    """``reduce_on_plateau(value_fn=, every=)``'s update: a plateau step on
    ``value_fn(params)`` once ``every`` updates were made since the last one, then the
    scale."""
    if state.count >= every:  # `every` updates since the last plateau step
        if params is None:
            raise TypeError(
                "reduce_on_plateau(value_fn=...): update needs the params to evaluate "
                "value_fn on, update(updates, state, params)"
            )
        state = plateau_step(state, float(value_fn(params)))
    out = updates if state.scale == 1.0 else _tree.scale(state.scale, updates)
    return out, state._replace(count=state.count + 1)


def _check_metric_args(value_fn: Any, every: Any, accumulation_size: int) -> None:
    if value_fn is None:
        if every is not None:
            raise ValueError("every: given without value_fn; every sets how often value_fn "
                             "is read (use accumulation_size to average training losses)")
        return
    if not callable(value_fn):
        raise TypeError(f"value_fn: expected a callable, got {type(value_fn).__name__}")
    if every is None:
        raise ValueError("every: required with value_fn (the updates between two plateau "
                         "steps, e.g. the batches per epoch)")
    check_int("every", every, 1)
    if accumulation_size != 1:
        raise ValueError("accumulation_size: averages training losses; with value_fn the "
                         "plateau step reads value_fn(params) every `every` updates instead")


def reduce_on_plateau(
    factor: float = 0.1,
    *,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_scale: float = 0.0,
    mode: str = "min",
    eps: float = 1e-8,
    accumulation_size: int = 1,
    value_fn: Callable[[Any], Any] | None = None,
    every: int | None = None,
) -> Transform:
    """Multiply the updates by a scale that drops by ``factor`` when the loss plateaus.

    Every ``accumulation_size`` calls (a *plateau step*; e.g. the batches of one epoch)
    the mean :math:`v` of the losses passed as ``value`` is compared with the best so
    far, :math:`v^*`: it improves when :math:`v < v^*(1 - \\tau)` (``threshold_mode=
    "rel"``) or :math:`v < v^* - \\tau` (``"abs"``), :math:`\\tau` = ``threshold``
    (reversed for ``mode="max"``). After more than ``patience`` plateau steps in a row
    without improvement the scale becomes :math:`s \\leftarrow \\max(\\gamma s,
    s_{\\min})` (:math:`\\gamma` = ``factor``, :math:`s_{\\min}` = ``min_scale``; kept
    when the change is ``<= eps``), then ``cooldown`` plateau steps pass in which
    non-improvements are not counted. The updates are multiplied by the scale held
    *before* the call's loss is taken into account, as with torch, where
    ``scheduler.step(loss)`` changes the rate of the following steps.

    This is ``torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode, factor, patience,
    threshold, threshold_mode, cooldown, min_lr=min_scale * lr, eps=eps * lr)``: put it
    last in a chain, after the learning rate (``fnopt.chain(fnopt.scale_by_adam(),
    fnopt.scale_by_learning_rate(1e-3), fnopt.reduce_on_plateau())``), and pass each
    step's loss; with ``accumulation_size`` = batches per epoch it steps
    once per epoch on the epoch's mean training loss. (optax's
    ``contrib.reduce_on_plateau`` applies the new scale to the same call's updates.)

    With ``value_fn`` and ``every`` it reads a validation metric (module docstring).

    Args:
      factor: the multiplier of the scale at a plateau, in ``(0, 1)``.
      patience: plateau steps without improvement tolerated, >= 0.
      threshold: the relative or absolute margin of an improvement, >= 0.
      threshold_mode: ``"rel"`` or ``"abs"``.
      cooldown: plateau steps to wait after a reduction, >= 0.
      min_scale: the lower bound of the scale, in ``[0, 1]``.
      mode: ``"min"`` (a loss) or ``"max"`` (e.g. an accuracy).
      eps: the smallest change of the scale that is applied, >= 0.
      accumulation_size: calls whose losses are averaged into one plateau step, >= 1.
      value_fn: ``value_fn(params) -> float`` (or a 0-d array/tensor): the metric a
        plateau step reads (e.g. the validation loss); needs ``every``.
      every: with ``value_fn``, the calls (updates) between two plateau steps, >= 1
        (the batches per epoch for torch's per-epoch ``scheduler.step(val_loss)``).

    Returns:
      A :class:`fnopt.Transform` whose ``update(updates, state, params=None, *,
      value)`` requires ``value``, the loss (a float or 0-d array/tensor): a
      ``TypeError`` when it is missing.

    >>> import numpy as np
    >>> t = reduce_on_plateau(factor=0.5, patience=0, accumulation_size=2)
    >>> s = t.init(np.zeros(1))
    >>> for loss in [3.0, 1.0, 2.0, 4.0]:    # means 2.0 then 3.0: a plateau
    ...     _, s = t.update(np.ones(1), s, value=loss)
    >>> s.scale, s.steps
    (0.5, 2)

    Reference: ``torch.optim.lr_scheduler.ReduceLROnPlateau``; optax
    ``contrib.reduce_on_plateau``.
    """
    factor = _number("factor", factor, low=0.0, high=1.0, open_low=True, open_high=True)
    patience = check_int("patience", patience, 0)
    threshold = _number("threshold", threshold, low=0.0)
    _choice("threshold_mode", threshold_mode, "'rel' or 'abs'")
    cooldown = check_int("cooldown", cooldown, 0)
    min_scale = _number("min_scale", min_scale, low=0.0, high=1.0)
    _choice("mode", mode, "'min' or 'max'")
    eps = _number("eps", eps, low=0.0)
    accumulation_size = check_int("accumulation_size", accumulation_size, 1)
    _check_metric_args(value_fn, every, accumulation_size)

    def init(params: Params) -> ReduceLROnPlateauState:
        del params
        worst = math.inf if mode == "min" else -math.inf
        return ReduceLROnPlateauState(1.0, worst, 0, 0, 0, 0.0, 0)

    plateau_step = functools.partial(
        _plateau_step, mode=mode, threshold_mode=threshold_mode, threshold=threshold,
        patience=patience, factor=factor, min_scale=min_scale, eps=eps, cooldown=cooldown,
    )

    def update(
        updates: Updates, state: State, params: Params | None = None, *, value: Any = None
    ) -> tuple[Updates, ReduceLROnPlateauState]:
        if value_fn is not None:
            return _update_on_metric(updates, state, params, value_fn, every or 1, plateau_step)
        return _update_on_loss(updates, state, value, accumulation_size, plateau_step)

    # takes_value: inside a Descent (fixed_point, opt.step) the step's loss is passed in
    return Transform(init, update, name="reduce_on_plateau", hyperparams={"takes_value": True})
