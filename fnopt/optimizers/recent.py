"""The optimizers people moved to after Adam: Yogi, Adan, ADOPT, AdEMAMix, NovoGrad,
Prodigy, D-Adaptation (Adam), schedule-free SGD/AdamW and SAM.

Each algorithm is one ``scale_by_*`` transform (its arithmetic, written once over the
backend's list ops) and a short alias that chains it with the usual blocks
(``maximize`` negation, weight decay, :func:`fnopt.scale_by_learning_rate`) and lifts
the chain to a :class:`fnopt.Descent`. Hyperparameter names follow fnopt's conventions
(``learning_rate``, ``b1``/``b2``/``b3`` for the reference's ``betas``,
``decoupled_weight_decay`` for ``weight_decouple``); defaults are the reference
package's, so ``fnopt.yogi(learning_rate=0.02)`` follows
``pytorch_optimizer.Yogi(params, lr=0.02)`` step for step (to round-off in float64).

Prodigy, D-Adaptation and schedule-free methods need the learning rate inside their
arithmetic (the step-size estimate and the averaging weights depend on it), so their
transforms take ``learning_rate`` and return the final update; the rate used is in
the state (:func:`fnopt.learning_rate_of`).

:func:`sam` evaluates the gradient twice per step, so it is an :class:`fnopt.Optimizer`
around any first-order base (a Descent or a Transform), not a transform itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs
import optree

from fnopt import transforms as _t
from fnopt import tree
from fnopt._base import (
    Descent,
    GradFn,
    Optimizer,
    Params,
    ScalarOrSchedule,
    State,
    Transform,
    Updates,
    _as_0d,
    as_transform,
    call_grad_fn,
    check_bool,
    check_int,
    check_nonnegative,
    check_params,
    check_positive,
    check_unit_interval,
)
from fnopt.optimizers._names import torch_spellings
from fnopt.transforms._common import _flat

__all__ = [
    "yogi",
    "adan",
    "adopt",
    "ademamix",
    "novograd",
    "prodigy",
    "dadapt_adam",
    "schedule_free_sgd",
    "schedule_free_adamw",
    "sam",
    "schedule_free_eval_params",
    "scale_by_yogi",
    "scale_by_adan",
    "scale_by_adopt",
    "scale_by_ademamix",
    "scale_by_novograd",
    "scale_by_prodigy",
    "scale_by_dadapt_adam",
    "scale_by_schedule_free",
    "ScaleByYogiState",
    "ScaleByAdanState",
    "ScaleByAdoptState",
    "ScaleByAdemamixState",
    "ScaleByNovogradState",
    "ScaleByProdigyState",
    "ScaleByDadaptAdamState",
    "ScheduleFreeState",
    "SAMState",
]


# -- helpers ---------------------------------------------------------------------------




def _lr_at(learning_rate: ScalarOrSchedule, count: int) -> Any:
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _need(params: Params | None, name: str) -> Params:
    if params is None:
        raise ValueError(f"{name}: update needs params")
    return params


def _check_growth(growth_rate: Any) -> None:
    if isinstance(growth_rate, bool) or not isinstance(growth_rate, (int, float)):
        raise TypeError(f"growth_rate: expected a real number, got {type(growth_rate).__name__}")
    if not growth_rate > 0:  # inf (no limit) is allowed
        raise ValueError(f"growth_rate: expected a number > 0 (inf allowed), got {growth_rate}")


class _CountState(NamedTuple):
    count: int  # type: ignore[assignment]


def _decay_after_lr(weight_decay: float) -> Transform:
    """``u - wd * p`` after the learning rate: the reference's ``fixed_decay``
    (``p <- p (1 - wd)``, not scaled by the learning rate)."""

    def init(params: Params) -> _t.EmptyState:
        del params
        return _t.EmptyState()

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        return tree.axpy(-weight_decay, _need(params, "weight_decay"), updates), state

    return Transform(init, update)


def _proximal_decay(learning_rate: ScalarOrSchedule, weight_decay: float) -> Transform:
    """``u / (1 + lr * wd)`` after ``-lr (d + wd p)``: Adan's proximal weight decay
    ``p <- (p - lr d) / (1 + lr wd)``."""

    def init(params: Params) -> _CountState:
        del params
        return _CountState(0)

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        lr = _lr_at(learning_rate, state.count)
        return tree.scale(1.0 / (1.0 + lr * weight_decay), updates), _CountState(state.count + 1)

    return Transform(init, update)


def _assemble(
    scaling: list[Transform],
    learning_rate: ScalarOrSchedule,
    *,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    fixed_decay: bool = False,
    proximal: bool = False,
    maximize: bool = False,
) -> Descent:
    """``[negate] [+wd p] scaling [+wd p] -lr [-wd p | /(1 + lr wd)]`` lifted to a
    Descent, in pytorch_optimizer's order: ``maximize`` negates the gradient first;
    coupled decay joins the gradient, decoupled decay the direction (or, with
    ``fixed_decay``, the final update without the learning rate); ``proximal`` is
    Adan's ``(p - lr d) / (1 + lr wd)``."""
    blocks: list[Transform] = [_t.scale(-1.0)] if maximize else []
    if weight_decay and not decoupled and not proximal:
        blocks.append(_t.add_decayed_weights(weight_decay))
    blocks.extend(scaling)
    if weight_decay and ((decoupled and not fixed_decay) or proximal):
        blocks.append(_t.add_decayed_weights(weight_decay))
    blocks.append(_t.scale_by_learning_rate(learning_rate))
    if weight_decay and decoupled and fixed_decay:
        blocks.append(_decay_after_lr(weight_decay))
    if weight_decay and proximal:
        blocks.append(_proximal_decay(learning_rate, weight_decay))
    return Descent(_t.chain(*blocks))


def _lift(t: Transform, maximize: bool) -> Descent:
    """``t`` lifted to a Descent, after a negation of the gradient for ``maximize``."""
    check_bool("maximize", maximize)
    return Descent(_t.chain(_t.scale(-1.0), t) if maximize else t)


def _check_common(learning_rate: Any, weight_decay: Any, eps: Any, **flags: Any) -> None:
    for name, flag in flags.items():
        check_bool(name, flag)
    check_nonnegative("learning_rate", learning_rate)
    check_nonnegative("weight_decay", weight_decay)
    check_nonnegative("eps", eps)


# -- Yogi ------------------------------------------------------------------------------


class ScaleByYogiState(NamedTuple):
    """``mu``: first moment; ``nu``: Yogi's additive second moment."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def scale_by_yogi(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3, *, initial_accumulator: float = 1e-6
) -> Transform:
    """Rescale updates by Yogi's moments (pytorch_optimizer.Yogi arithmetic).

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        v_t = v_{t-1} - (1-\\beta_2)\\,\\operatorname{sign}(v_{t-1} - g_t^2)\\,g_t^2,\\quad
        u_t = \\frac{m_t / (1-\\beta_1^t)}{\\sqrt{v_t} / \\sqrt{1-\\beta_2^t} + \\epsilon}

    with :math:`m_0 = v_0` = ``initial_accumulator``.

    Args:
      b1, b2: decays of the moments, in [0, 1).
      eps: added to the denominator, >= 0.
      initial_accumulator: the initial value of both moments, >= 0.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByYogiState`.

    >>> import numpy as np
    >>> t = scale_by_yogi()
    >>> u, s = t.update(np.array([1.0]), t.init(np.zeros(1)))
    >>> np.round(u, 3)
    array([0.999])

    Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS 2018.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("initial_accumulator", initial_accumulator)

    def init(params: Params) -> ScaleByYogiState:
        full = tree.full_like
        acc = initial_accumulator
        return ScaleByYogiState(0, full(params, acc), full(params, acc))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mu = be.axpy(1.0 - b1, g, be.scale(spec.flatten_up_to(state.mu), b1))
        nu = spec.flatten_up_to(state.nu)
        g2 = be.mul(g, g)
        nu = be.addcmul(nu, be.sign(be.sub(nu, g2)), g2, -(1.0 - b2))
        denom = be.add_scalar(be.scale(be.sqrt(nu), 1.0 / math.sqrt(1.0 - b2**t)), eps)
        out = be.scale(be.div(mu, denom), 1.0 / (1.0 - b1**t))
        return spec.unflatten(out), ScaleByYogiState(t, spec.unflatten(mu), spec.unflatten(nu))

    return Transform(init, update)


@torch_spellings()
def yogi(
    learning_rate: ScalarOrSchedule = 1e-2,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-3,
    initial_accumulator: float = 1e-6,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = True,
    fixed_decay: bool = False,
    maximize: bool = False,
) -> Descent:
    """Yogi with pytorch_optimizer.Yogi semantics and defaults.

    :func:`scale_by_yogi`, then :math:`p \\leftarrow p - \\eta u_t`; weight decay
    :math:`\\lambda` is decoupled by default (:math:`p \\leftarrow p(1 - \\eta\\lambda)`),
    or added to the gradient with ``decoupled_weight_decay=False``.

    Args:
      learning_rate: a number >= 0 or a schedule ``count -> lr``.
      b1, b2, eps, initial_accumulator: see :func:`scale_by_yogi`.
      weight_decay: decay coefficient >= 0.
      decoupled_weight_decay: AdamW-style decay (the reference's ``weight_decouple``).
      fixed_decay: decoupled decay not scaled by the learning rate.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.yogi(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 4)
    array([0.9001])

    Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS 2018.
    """
    _check_common(learning_rate, weight_decay, eps, decoupled_weight_decay=decoupled_weight_decay,
                  fixed_decay=fixed_decay, maximize=maximize)
    return _assemble(
        [scale_by_yogi(b1, b2, eps, initial_accumulator=initial_accumulator)], learning_rate,
        weight_decay=weight_decay, decoupled=decoupled_weight_decay, fixed_decay=fixed_decay,
        maximize=maximize,
    )


# -- Adan ------------------------------------------------------------------------------


class ScaleByAdanState(NamedTuple):
    """``mu``: EMA of gradients; ``delta``: EMA of gradient differences; ``nu``: EMA of
    the squared Nesterov-corrected gradient; ``prev``: the last (clipped) gradient."""

    count: int  # type: ignore[assignment]
    mu: Any
    delta: Any
    nu: Any
    prev: Any


def scale_by_adan(
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    *,
    max_grad_norm: float = 0.0,
) -> Transform:
    """Rescale updates by Adan's three moments (pytorch_optimizer.Adan arithmetic).

    With :math:`\\Delta_t = g_t - g_{t-1}` (:math:`\\Delta_1 = 0`),
    :math:`w_t = g_t + \\beta_2 \\Delta_t`:

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        n_t = \\beta_2 n_{t-1} + (1-\\beta_2) \\Delta_t,\\quad
        v_t = \\beta_3 v_{t-1} + (1-\\beta_3) w_t^2,

    .. math::
        u_t = \\frac{m_t / (1-\\beta_1^t) + \\beta_2\\, n_t / (1-\\beta_2^t)}
                    {\\sqrt{v_t} / \\sqrt{1-\\beta_3^t} + \\epsilon}

    With ``max_grad_norm`` :math:`c > 0` the gradient is first scaled by
    :math:`\\min(1, c / (\\|g\\| + \\epsilon))`.

    Args:
      b1, b2, b3: decays (the reference's ``betas``), in [0, 1).
      eps: added to the denominator, >= 0.
      max_grad_norm: global-norm clipping threshold, 0 to disable.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByAdanState`.

    >>> import numpy as np
    >>> t = scale_by_adan()
    >>> u, s = t.update(np.array([2.0]), t.init(np.zeros(1)))
    >>> np.round(u, 6)
    array([1.])

    Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
    Models", 2022 (TPAMI 2024).
    """
    for name, b in (("b1", b1), ("b2", b2), ("b3", b3)):
        check_unit_interval(name, b)
    check_nonnegative("eps", eps)
    check_nonnegative("max_grad_norm", max_grad_norm)

    def init(params: Params) -> ScaleByAdanState:
        z = tree.zeros_like
        return ScaleByAdanState(0, z(params), z(params), z(params), z(params))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        if max_grad_norm:
            norm = be.to_float(be.sq_norm(g)) ** 0.5
            g = be.scale(g, min(max_grad_norm / (norm + eps), 1.0))
        diff = be.zeros_like(g) if t == 1 else be.sub(g, spec.flatten_up_to(state.prev))
        mu = be.axpy(1.0 - b1, g, be.scale(spec.flatten_up_to(state.mu), b1))
        delta = be.axpy(1.0 - b2, diff, be.scale(spec.flatten_up_to(state.delta), b2))
        w = be.axpy(b2, diff, g)
        nu = be.addcmul(be.scale(spec.flatten_up_to(state.nu), b3), w, w, 1.0 - b3)
        denom = be.add_scalar(be.scale(be.sqrt(nu), 1.0 / math.sqrt(1.0 - b3**t)), eps)
        out = be.addcdiv(
            be.scale(be.div(mu, denom), 1.0 / (1.0 - b1**t)), delta, denom, b2 / (1.0 - b2**t)
        )
        u = spec.unflatten
        return u(out), ScaleByAdanState(t, u(mu), u(delta), u(nu), u(be.clone(g)))

    return Transform(init, update)


@torch_spellings()
def adan(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    max_grad_norm: float = 0.0,
    maximize: bool = False,
) -> Descent:
    """Adan with pytorch_optimizer.Adan semantics and defaults.

    :func:`scale_by_adan`, then :math:`p \\leftarrow (p - \\eta u_t)/(1 + \\eta\\lambda)`
    (the paper's proximal weight decay, the default) or, with
    ``decoupled_weight_decay=True``, :math:`p \\leftarrow p(1-\\eta\\lambda) - \\eta u_t`.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2, b3, eps, max_grad_norm: see :func:`scale_by_adan`.
      weight_decay: decay coefficient >= 0.
      decoupled_weight_decay: AdamW-style instead of proximal decay.
      maximize: maximise the objective: exactly Adan on :math:`-f`. (The reference's
        ``maximize=True`` differs at step 1: it seeds the gradient difference with the
        un-negated gradient, so its :math:`\\Delta_1 = 2 g_1` instead of 0.)

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adan(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 4)
    array([0.9])

    Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm", 2022.
    """
    _check_common(learning_rate, weight_decay, eps, decoupled_weight_decay=decoupled_weight_decay,
                  maximize=maximize)
    return _assemble(
        [scale_by_adan(b1, b2, b3, eps, max_grad_norm=max_grad_norm)], learning_rate,
        weight_decay=weight_decay, decoupled=decoupled_weight_decay,
        proximal=not decoupled_weight_decay, maximize=maximize,
    )


# -- ADOPT -----------------------------------------------------------------------------


class ScaleByAdoptState(NamedTuple):
    """``mu``: EMA of normalised gradients; ``nu``: second moment (of earlier steps)."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def _quarter_power(step: int) -> float:
    return math.pow(step, 0.25)


def scale_by_adopt(
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    *,
    clip_lambda: Callable[[int], float] | None = _quarter_power,
) -> Transform:
    """Rescale updates by ADOPT (pytorch_optimizer.ADOPT arithmetic): normalise by the
    second moment of *earlier* gradients, then take the momentum.

    Step 1 only sets :math:`v_1 = g_1^2` (the update is 0). Then

    .. math::
        \\tilde g_t = \\operatorname{clip}\\!\\left(\\frac{g_t}{\\max(\\sqrt{v_{t-1}},
        \\epsilon)}, \\pm c(t)\\right),\\quad
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1)\\tilde g_t,\\quad u_t = m_t,\\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2

    with :math:`c(t)` = ``clip_lambda(t)`` (:math:`t^{1/4}` by default; ``None``: no
    clipping).

    Args:
      b1, b2: decays, in [0, 1).
      eps: lower bound of the denominator, >= 0.
      clip_lambda: ``step -> clip value`` (step from 1), or ``None``.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByAdoptState`.

    >>> import numpy as np
    >>> t = scale_by_adopt()
    >>> s = t.init(np.zeros(1))
    >>> u, s = t.update(np.array([2.0]), s)
    >>> u, s = t.update(np.array([2.0]), s)
    >>> np.round(u, 6)
    array([0.1])

    Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2 with the
    Optimal Rate", NeurIPS 2024.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    if clip_lambda is not None and not callable(clip_lambda):
        raise TypeError(
            f"clip_lambda: expected a callable or None, got {type(clip_lambda).__name__}")

    def init(params: Params) -> ScaleByAdoptState:
        return ScaleByAdoptState(0, tree.zeros_like(params), tree.zeros_like(params))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        nu = spec.flatten_up_to(state.nu)
        if t == 1:
            return spec.unflatten(be.zeros_like(g)), ScaleByAdoptState(
                t, state.mu, spec.unflatten(be.addcmul(nu, g, g, 1.0))
            )
        normed = be.div(g, be.clip(be.sqrt(nu), eps, math.inf))
        if clip_lambda is not None:
            c = float(clip_lambda(t))
            normed = be.clip(normed, -c, c)
        mu = be.lerp(spec.flatten_up_to(state.mu), normed, 1.0 - b1)
        nu = be.addcmul(be.scale(nu, b2), g, g, 1.0 - b2)
        return spec.unflatten(mu), ScaleByAdoptState(t, spec.unflatten(mu), spec.unflatten(nu))

    return Transform(init, update)


@torch_spellings()
def adopt(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    clip_lambda: Callable[[int], float] | None = _quarter_power,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    fixed_decay: bool = False,
    maximize: bool = False,
) -> Descent:
    """ADOPT with pytorch_optimizer.ADOPT semantics and defaults.

    :func:`scale_by_adopt`, then :math:`p \\leftarrow p - \\eta u_t`, with weight decay
    added to the gradient (default) or decoupled.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2, eps, clip_lambda: see :func:`scale_by_adopt`.
      weight_decay: decay coefficient >= 0.
      decoupled_weight_decay: AdamW-style decay (the reference's ``weight_decouple``).
      fixed_decay: decoupled decay not scaled by the learning rate.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adopt(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> p  # the first step only measures the second moment
    array([1.])

    Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2", NeurIPS 2024.
    """
    _check_common(learning_rate, weight_decay, eps, decoupled_weight_decay=decoupled_weight_decay,
                  fixed_decay=fixed_decay, maximize=maximize)
    return _assemble(
        [scale_by_adopt(b1, b2, eps, clip_lambda=clip_lambda)], learning_rate,
        weight_decay=weight_decay, decoupled=decoupled_weight_decay, fixed_decay=fixed_decay,
        maximize=maximize,
    )


# -- AdEMAMix --------------------------------------------------------------------------


class ScaleByAdemamixState(NamedTuple):
    """``mu``: fast EMA; ``mu_slow``: slow EMA; ``nu``: second moment."""

    count: int  # type: ignore[assignment]
    mu: Any
    mu_slow: Any
    nu: Any


def _ademamix_schedules(
    t: int, alpha: float, b1: float, b3: float, t_alpha_beta3: float | None
) -> tuple[float, float]:
    """:math:`(\\alpha_t, \\beta_{3,t})`: the paper's warm-ups of the slow EMA."""
    if t_alpha_beta3 is None:
        return alpha, b3
    f = t / t_alpha_beta3
    lb1, lb3 = math.log(b1), math.log(b3)
    return min(t * alpha / t_alpha_beta3, alpha), min(
        math.exp(lb1 * lb3 / ((1.0 - f) * lb3 + f * lb1)), b3
    )


def scale_by_ademamix(
    b1: float = 0.9,
    b2: float = 0.999,
    b3: float = 0.9999,
    eps: float = 1e-8,
    *,
    alpha: float = 5.0,
    t_alpha_beta3: float | None = None,
) -> Transform:
    """Rescale updates by AdEMAMix's mixture of a fast and a slow EMA
    (pytorch_optimizer.AdEMAMix arithmetic).

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        s_t = \\beta_{3,t} s_{t-1} + (1-\\beta_{3,t}) g_t,\\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,

    .. math::
        u_t = \\frac{m_t/(1-\\beta_1^t) + \\alpha_t s_t}{\\sqrt{v_t}/\\sqrt{1-\\beta_2^t}
        + \\epsilon}

    :math:`\\alpha_t = \\alpha`, :math:`\\beta_{3,t} = \\beta_3`, or with ``t_alpha_beta3``
    :math:`T`: :math:`\\alpha_t = \\min(t\\alpha/T, \\alpha)` and
    :math:`\\beta_{3,t} = \\min(\\exp(\\frac{\\ln\\beta_1 \\ln\\beta_3}{(1-t/T)\\ln\\beta_3 +
    (t/T)\\ln\\beta_1}), \\beta_3)`.

    Args:
      b1, b2, b3: decays, in [0, 1).
      eps: added to the denominator, >= 0.
      alpha: weight of the slow EMA, >= 0.
      t_alpha_beta3: warm-up length of ``alpha`` and ``b3`` (``None``: none).

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByAdemamixState`.

    >>> import numpy as np
    >>> t = scale_by_ademamix()
    >>> u, s = t.update(np.array([1.0]), t.init(np.zeros(1)))
    >>> np.round(u, 4)
    array([1.0005])

    Pagliardini et al., "The AdEMAMix Optimizer: Better, Faster, Older", 2024.
    """
    for name, b in (("b1", b1), ("b2", b2), ("b3", b3)):
        check_unit_interval(name, b)
    check_nonnegative("eps", eps)
    check_nonnegative("alpha", alpha)
    if t_alpha_beta3 is not None:
        check_positive("t_alpha_beta3", t_alpha_beta3)
        if b1 == 0 or b3 == 0:
            raise ValueError("t_alpha_beta3: needs b1 > 0 and b3 > 0 (their logarithms)")

    def init(params: Params) -> ScaleByAdemamixState:
        z = tree.zeros_like
        return ScaleByAdemamixState(0, z(params), z(params), z(params))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        alpha_t, b3_t = _ademamix_schedules(t, alpha, b1, b3, t_alpha_beta3)
        mu = be.axpy(1.0 - b1, g, be.scale(spec.flatten_up_to(state.mu), b1))
        slow = be.axpy(1.0 - b3_t, g, be.scale(spec.flatten_up_to(state.mu_slow), b3_t))
        nu = be.addcmul(be.scale(spec.flatten_up_to(state.nu), b2), g, g, 1.0 - b2)
        denom = be.add_scalar(be.scale(be.sqrt(nu), 1.0 / math.sqrt(1.0 - b2**t)), eps)
        out = be.div(be.axpy(alpha_t, slow, be.scale(mu, 1.0 / (1.0 - b1**t))), denom)
        u = spec.unflatten
        return u(out), ScaleByAdemamixState(t, u(mu), u(slow), u(nu))

    return Transform(init, update)


@torch_spellings()
def ademamix(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: float = 0.9999,
    eps: float = 1e-8,
    alpha: float = 5.0,
    t_alpha_beta3: float | None = None,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    fixed_decay: bool = False,
    maximize: bool = False,
) -> Descent:
    """AdEMAMix with pytorch_optimizer.AdEMAMix semantics and defaults.

    :func:`scale_by_ademamix`, then :math:`p \\leftarrow p - \\eta u_t`, with weight decay
    added to the gradient (default) or decoupled.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2, b3, eps, alpha, t_alpha_beta3: see :func:`scale_by_ademamix`.
      weight_decay: decay coefficient >= 0.
      decoupled_weight_decay: AdamW-style decay (the reference's ``weight_decouple``).
      fixed_decay: decoupled decay not scaled by the learning rate.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.ademamix(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 5)
    array([0.89995])

    Pagliardini et al., "The AdEMAMix Optimizer: Better, Faster, Older", 2024.
    """
    _check_common(learning_rate, weight_decay, eps, decoupled_weight_decay=decoupled_weight_decay,
                  fixed_decay=fixed_decay, maximize=maximize)
    return _assemble(
        [scale_by_ademamix(b1, b2, b3, eps, alpha=alpha, t_alpha_beta3=t_alpha_beta3)],
        learning_rate, weight_decay=weight_decay, decoupled=decoupled_weight_decay,
        fixed_decay=fixed_decay, maximize=maximize,
    )


# -- NovoGrad --------------------------------------------------------------------------


class ScaleByNovogradState(NamedTuple):
    """``mu``: momentum; ``nu``: per-leaf (layer-wise) EMA of :math:`\\|g\\|^2`, 0-d."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def scale_by_novograd(
    b1: float = 0.95,
    b2: float = 0.98,
    eps: float = 1e-8,
    *,
    weight_decay: float = 0.0,
    grad_averaging: bool = False,
) -> Transform:
    """Rescale updates by NovoGrad's layer-wise normalisation and momentum
    (pytorch_optimizer.NovoGrad arithmetic). For each leaf :math:`\\ell`:

    .. math::
        v_t^\\ell = \\beta_2 v_{t-1}^\\ell + (1-\\beta_2)\\|g_t^\\ell\\|^2
        \\ (v_1^\\ell = \\|g_1^\\ell\\|^2),\\quad
        \\hat g_t = \\frac{g_t^\\ell}{\\sqrt{v_t^\\ell} + \\epsilon} + \\lambda p_t,

    .. math::
        m_t = \\beta_1 m_{t-1} + a\\,\\hat g_t\\ (m_1 = \\hat g_1),\\quad u_t = m_t

    with :math:`a = 1 - \\beta_1` if ``grad_averaging`` else 1, :math:`\\lambda` =
    ``weight_decay`` (the coupled decay sits between normalisation and momentum).

    Args:
      b1, b2: decays, in [0, 1).
      eps: added to the denominator, >= 0.
      weight_decay: coupled decay coefficient >= 0 (needs params).
      grad_averaging: scale the new term of the momentum by ``1 - b1``.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByNovogradState`.

    >>> import numpy as np
    >>> t = scale_by_novograd()
    >>> u, s = t.update(np.array([3.0, 4.0]), t.init(np.zeros(2)))
    >>> np.round(u, 6)
    array([0.6, 0.8])

    Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for
    Training of Deep Networks", 2019.
    """
    check_bool("grad_averaging", grad_averaging)
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("weight_decay", weight_decay)

    def init(params: Params) -> ScaleByNovogradState:
        leaves, spec, be = _flat(params)
        nu = [be.scalar(0.0, x) for x in leaves]
        return ScaleByNovogradState(0, tree.zeros_like(params), spec.unflatten(nu))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        g, spec, be = _flat(updates)
        t = state.count + 1
        norms = be.norms(g)
        n2 = be.mul(norms, norms)
        nu = n2 if t == 1 else be.axpy(1.0 - b2, n2, be.scale(spec.flatten_up_to(state.nu), b2))
        g = be.div(g, be.add_scalar(be.sqrt(nu), eps))
        if weight_decay:
            g = be.axpy(weight_decay, spec.flatten_up_to(_need(params, "weight_decay")), g)
        if t == 1:
            mu = be.clone(g)
        else:
            mu = be.axpy(1.0 - b1 if grad_averaging else 1.0, g,
                         be.scale(spec.flatten_up_to(state.mu), b1))
        return spec.unflatten(mu), ScaleByNovogradState(t, spec.unflatten(mu), spec.unflatten(nu))

    return Transform(init, update)


@torch_spellings()
def novograd(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.95,
    b2: float = 0.98,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    fixed_decay: bool = False,
    grad_averaging: bool = False,
    maximize: bool = False,
) -> Descent:
    """NovoGrad with pytorch_optimizer.NovoGrad semantics and defaults.

    :func:`scale_by_novograd` (coupled weight decay inside it, after the
    normalisation), then :math:`p \\leftarrow p - \\eta u_t`.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2, eps, grad_averaging: see :func:`scale_by_novograd`.
      weight_decay: decay coefficient >= 0.
      decoupled_weight_decay: AdamW-style decay (the reference's ``weight_decouple``).
      fixed_decay: decoupled decay not scaled by the learning rate.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.novograd(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 4)
    array([0.9])

    Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments",
    2019.
    """
    _check_common(learning_rate, weight_decay, eps, decoupled_weight_decay=decoupled_weight_decay,
                  fixed_decay=fixed_decay, maximize=maximize)
    coupled = 0.0 if decoupled_weight_decay else weight_decay
    return _assemble(
        [scale_by_novograd(b1, b2, eps, weight_decay=coupled, grad_averaging=grad_averaging)],
        learning_rate, weight_decay=weight_decay if decoupled_weight_decay else 0.0,
        decoupled=True, fixed_decay=fixed_decay, maximize=maximize,
    )


# -- Prodigy ---------------------------------------------------------------------------


class ScaleByProdigyState(NamedTuple):
    """``count``: steps taken; ``k``: steps that moved (the reference skips a step whose
    statistics are all zero); ``d``, ``d_max``, ``d_numerator``: the step-size estimate
    and its running numerator (Python floats, over the whole pytree);
    ``learning_rate``: the rate of the last step; ``mu``, ``nu``: Adam moments
    (``mu`` is ``None`` when ``b1 == 0``); ``s``: the weighted gradient sum; ``p0``: the
    initial params."""

    count: int  # type: ignore[assignment]
    k: int
    d: float
    d_max: float
    d_numerator: float
    learning_rate: Any
    mu: Any
    nu: Any
    s: Any
    p0: Any


def _check_dadapt_common(learning_rate: Any, b1: Any, b2: Any, eps: Any, weight_decay: Any,
                         d0: Any, growth_rate: Any, **flags: Any) -> None:
    for name, flag in flags.items():
        check_bool(name, flag)
    check_positive("learning_rate", learning_rate)
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_positive("eps", eps)
    check_nonnegative("weight_decay", weight_decay)
    check_positive("d0", d0)
    _check_growth(growth_rate)


def scale_by_prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    *,
    beta3: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decouple: bool = True,
    use_bias_correction: bool = False,
    safeguard_warmup: bool = False,
    d0: float = 1e-6,
    d_coef: float = 1.0,
    growth_rate: float = math.inf,
) -> Transform:
    """Prodigy's whole update, step-size estimate included (prodigyopt.Prodigy arithmetic).

    With :math:`\\eta` = ``learning_rate``, :math:`\\beta_3` = ``beta3`` (default
    :math:`\\sqrt{\\beta_2}`), :math:`\\gamma_t = d_t \\eta\\,b_t` (:math:`b_t` the optional
    bias correction :math:`\\sqrt{1-\\beta_2^{k+1}}/(1-\\beta_1^{k+1})`) and sums over the
    *whole* pytree:

    .. math::
        r_t = \\beta_3 r_{t-1} + \\tfrac{d_t}{d_0}\\gamma_t \\langle g_t, p_0 - p_t\\rangle,\\quad
        s_t = \\beta_3 s_{t-1} + \\tfrac{d_t}{d_0}\\gamma_t g_t,\\quad
        \\hat d = c\\,\\frac{r_t}{\\|s_t\\|_1},

    .. math::
        d_{t+1} = \\min(\\max(d_t, \\hat d)\\ \\text{growth-limited}),\\quad
        m_t = \\beta_1 m_{t-1} + d_t(1-\\beta_1) g_t,\\quad
        v_t = \\beta_2 v_{t-1} + d_t^2(1-\\beta_2) g_t^2,

    .. math::
        u_t = -\\gamma_t\\,\\frac{m_t}{\\sqrt{v_t} + d_{t+1}\\epsilon} - \\gamma_t\\lambda p_t

    (decoupled decay; coupled decay :math:`\\lambda p` is added to :math:`g` first).

    Args:
      learning_rate: a number > 0 or a schedule (multiplies the estimate :math:`d`).
      b1, b2: Adam decays, in [0, 1).
      beta3: decay of the estimate's sums, in [0, 1); ``None``: :math:`\\sqrt{\\beta_2}`.
      eps: > 0, scaled by :math:`d` in the denominator.
      weight_decay: >= 0; ``decouple``: AdamW-style (default) or added to the gradient.
      use_bias_correction: Adam's bias correction folded into the step size.
      safeguard_warmup: leave the learning rate out of :math:`s` (warm-up safeguard).
      d0: initial estimate > 0; d_coef: multiplier of :math:`\\hat d`, > 0;
      growth_rate: largest factor :math:`d` may grow by per step (> 0, ``inf``).

    Returns:
      A :class:`fnopt.Transform` whose updates include the step size (no
      :func:`fnopt.scale_by_learning_rate` after it); state :class:`ScaleByProdigyState`.

    >>> import numpy as np
    >>> t = scale_by_prodigy()
    >>> u, s = t.update(np.array([1.0]), t.init(np.array([1.0])), np.array([1.0]))
    >>> float(s.d)  # no progress yet: the estimate stays at d0
    1e-06

    Mishchenko and Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
    Learner", ICML 2024.
    """
    _check_dadapt_common(learning_rate, b1, b2, eps, weight_decay, d0, growth_rate,
                         decouple=decouple, use_bias_correction=use_bias_correction,
                         safeguard_warmup=safeguard_warmup)
    if beta3 is not None:
        check_unit_interval("beta3", beta3)
    check_positive("d_coef", d_coef)
    b3 = math.sqrt(b2) if beta3 is None else beta3
    t = _Prodigy(learning_rate, b1, b2, b3, eps, weight_decay, decouple, use_bias_correction,
                 safeguard_warmup, d0, d_coef, growth_rate)
    # one step size estimated from sums over the whole tree (fnopt.batched reads this)
    return Transform(t.init, t.update, name="scale_by_prodigy", hyperparams={"whole_tree": True})


def _step_size(d: float, lr: Any, k: int, b1: float, b2: float, bias_correction: bool) -> Any:
    """:math:`\\gamma_t = d_t \\eta\\,b_t` of Prodigy and D-Adaptation, :math:`b_t` Adam's
    bias correction when ``bias_correction`` (else 1)."""
    bc = math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1)) if bias_correction else 1.0
    return d * lr * bc


def _skip_at_zero_rate(updates: Updates, state: Any, lr: Any) -> tuple[Any, Any]:
    """The step of a schedule at 0: the references neither accumulate nor move."""
    return tree.zeros_like(updates), state._replace(count=state.count + 1, learning_rate=lr)


@attrs.frozen
class _Prodigy:
    """The ``init`` and ``update`` of :func:`scale_by_prodigy` (its checked arguments;
    ``b3`` resolved)."""

    learning_rate: ScalarOrSchedule
    b1: float
    b2: float
    b3: float
    eps: float
    weight_decay: float
    decouple: bool
    use_bias_correction: bool
    safeguard_warmup: bool
    d0: float
    d_coef: float
    growth_rate: float

    def init(self, params: Params) -> ScaleByProdigyState:
        z, d0 = tree.zeros_like, self.d0
        return ScaleByProdigyState(0, 0, d0, d0, 0.0, _lr_at(self.learning_rate, 0),
                                   z(params) if self.b1 > 0 else None, z(params), z(params),
                                   tree.clone(params))

    def update(self, updates: Updates, state: State, params: Params | None = None) -> Any:
        b1, b2, b3, d0, wd = self.b1, self.b2, self.b3, self.d0, self.weight_decay
        g, spec, be = _flat(updates)
        p = spec.flatten_up_to(_need(params, "scale_by_prodigy"))
        fl = spec.flatten_up_to
        k, d, lr = state.k, state.d, _lr_at(self.learning_rate, state.count)
        if lr == 0:
            return _skip_at_zero_rate(updates, state, lr)
        dlr = _step_size(d, lr, k, b1, b2, self.use_bias_correction)
        if wd and not self.decouple:
            g = be.axpy(wd, p, g)
        delta = (d / d0) * dlr * be.to_float(be.vdot(g, be.sub(fl(state.p0), p)))
        mu = be.axpy(d * (1 - b1), g, be.scale(fl(state.mu), b1)) if b1 > 0 else None
        nu = be.addcmul(be.scale(fl(state.nu), b2), g, g, d * d * (1 - b2))
        s_rate = (d / d0) * (d if self.safeguard_warmup else dlr)
        s = be.axpy(s_rate, g, be.scale(fl(state.s), b3))
        d_denom = be.to_float(be.vdot(s, be.sign(s)))  # the l1 norm of s
        u = spec.unflatten
        if d_denom == 0:  # no gradient at all: the reference returns before moving
            return u(be.zeros_like(g)), state._replace(
                count=state.count + 1, learning_rate=lr, mu=None if mu is None else u(mu),
                nu=u(nu), s=u(s))
        numerator = b3 * state.d_numerator + delta
        d_new, d_max = self.estimate(d, state.d_max, self.d_coef * numerator / d_denom)
        denom = be.add_scalar(be.sqrt(nu), d_new * self.eps)
        out = be.scale(be.div(mu, denom), -dlr) if mu is not None else be.scale(
            be.div(g, denom), -dlr * d_new)
        if wd and self.decouple:
            out = be.axpy(-wd * dlr, p, out)
        return u(out), ScaleByProdigyState(
            state.count + 1, k + 1, d_new, d_max, numerator, lr,
            None if mu is None else u(mu), u(nu), u(s), state.p0)

    def estimate(self, d: float, d_max: float, d_hat: float) -> tuple[float, float]:
        """The next estimate :math:`d_{t+1}` (growth-limited) and the running maximum of
        :math:`\\hat d = c\\,r_t / \\|s_t\\|_1`."""
        d_new = max(d, d_hat) if d == self.d0 else d
        d_max = max(d_max, d_hat)
        return min(d_max, d_new * self.growth_rate), d_max


@torch_spellings()
def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    beta3: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decouple: bool = True,
    use_bias_correction: bool = False,
    safeguard_warmup: bool = False,
    d0: float = 1e-6,
    d_coef: float = 1.0,
    growth_rate: float = math.inf,
    maximize: bool = False,
) -> Descent:
    """Prodigy (prodigyopt.Prodigy semantics and defaults): Adam whose step size
    :math:`d` is estimated from the distance travelled, over the whole pytree.

    The optimizer is :func:`scale_by_prodigy` lifted (its updates include the step
    size). ``learning_rate`` multiplies the estimate (keep 1.0 unless scheduling).

    Args:
      learning_rate: multiplies the estimate; ``b1``, ``b2``, ``beta3``, ``eps``,
        ``weight_decay``, ``decouple``, ``use_bias_correction``, ``safeguard_warmup``,
        ``d0``, ``d_coef``, ``growth_rate``: see :func:`scale_by_prodigy`.
      maximize: maximise the objective (an fnopt extra; the reference has none).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.prodigy()
    >>> grad_fn = lambda p: (0.5 * (p @ p), p)
    >>> r = fnopt.fixed_point(opt, np.array([1.0, -2.0]), grad_fn, stop=fnopt.stop.max_iters(200))
    >>> bool(r.value < 1e-3)
    True

    Mishchenko and Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
    Learner", ICML 2024.
    """
    return _lift(scale_by_prodigy(
        learning_rate, b1, b2, beta3=beta3, eps=eps, weight_decay=weight_decay,
        decouple=decouple, use_bias_correction=use_bias_correction,
        safeguard_warmup=safeguard_warmup, d0=d0, d_coef=d_coef, growth_rate=growth_rate),
        maximize)


# -- D-Adaptation (Adam) ---------------------------------------------------------------


class ScaleByDadaptAdamState(NamedTuple):
    """``count``: steps taken; ``k``: steps that moved; ``d``: the step-size estimate;
    ``numerator_weighted``: its running numerator (Python floats, whole pytree);
    ``learning_rate``: the rate of the last step; ``mu`` (scaled by the step size),
    ``nu``: Adam moments; ``s``: the weighted gradient sum."""

    count: int  # type: ignore[assignment]
    k: int
    d: float
    numerator_weighted: float
    learning_rate: Any
    mu: Any
    nu: Any
    s: Any


def scale_by_dadapt_adam(
    learning_rate: ScalarOrSchedule = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    *,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decouple: bool = False,
    use_bias_correction: bool = False,
    d0: float = 1e-6,
    growth_rate: float = math.inf,
) -> Transform:
    """D-Adapt Adam's whole update, step-size estimate included (dadaptation.DAdaptAdam
    arithmetic).

    With :math:`\\gamma_t = d_t \\eta\\,b_t`, :math:`\\beta = \\sqrt{\\beta_2}` and sums over
    the whole pytree:

    .. math::
        r_t = \\beta r_{t-1} + (1-\\beta)\\gamma_t \\langle g_t, s_{t-1} /
        (\\sqrt{v_{t-1}}+\\epsilon)\\rangle,\\quad
        s_t = \\beta s_{t-1} + (1-\\beta)\\gamma_t g_t,

    .. math::
        d_{t+1} = \\max\\!\\left(d_t, \\min\\!\\left(\\frac{r_t}{(1-\\beta)\\|s_t\\|_1},
        d_t\\,\\text{growth\\_rate}\\right)\\right),\\quad
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1)\\gamma_t g_t,

    .. math::
        u_t = -\\frac{m_t}{\\sqrt{v_t}+\\epsilon} - \\gamma_t\\lambda p_t

    (:math:`v_t` Adam's second moment; decoupled decay shown, coupled decay is added to
    :math:`g` first, the default).

    Args:
      learning_rate: a number > 0 or a schedule (multiplies the estimate).
      b1, b2: Adam decays in [0, 1); eps: > 0.
      weight_decay: >= 0; decouple: AdamW-style instead of added to the gradient.
      use_bias_correction: Adam's bias correction folded into the step size.
      d0: initial estimate > 0; growth_rate: largest growth factor per step.

    Returns:
      A :class:`fnopt.Transform` whose updates include the step size; state
      :class:`ScaleByDadaptAdamState`.

    >>> import numpy as np
    >>> t = scale_by_dadapt_adam()
    >>> u, s = t.update(np.array([1.0]), t.init(np.array([1.0])), np.array([1.0]))
    >>> float(s.d)
    1e-06

    Defazio and Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023.
    """
    _check_dadapt_common(learning_rate, b1, b2, eps, weight_decay, d0, growth_rate,
                         decouple=decouple, use_bias_correction=use_bias_correction)
    t = _DadaptAdam(learning_rate, b1, b2, eps, weight_decay, decouple, use_bias_correction,
                    d0, growth_rate)
    # one step size estimated from sums over the whole tree (fnopt.batched reads this)
    return Transform(t.init, t.update, name="scale_by_dadapt_adam",
                     hyperparams={"whole_tree": True})


@attrs.frozen
class _DadaptAdam:
    """The ``init`` and ``update`` of :func:`scale_by_dadapt_adam` (its checked
    arguments)."""

    learning_rate: ScalarOrSchedule
    b1: float
    b2: float
    eps: float
    weight_decay: float
    decouple: bool
    use_bias_correction: bool
    d0: float
    growth_rate: float

    def init(self, params: Params) -> ScaleByDadaptAdamState:
        z = tree.zeros_like
        return ScaleByDadaptAdamState(0, 0, self.d0, 0.0, _lr_at(self.learning_rate, 0),
                                      z(params), z(params), z(params))

    def update(self, updates: Updates, state: State, params: Params | None = None) -> Any:
        b1, b2, eps, wd = self.b1, self.b2, self.eps, self.weight_decay
        sb2 = b2**0.5
        g, spec, be = _flat(updates)
        p = spec.flatten_up_to(_need(params, "scale_by_dadapt_adam"))
        fl = spec.flatten_up_to
        k, d, lr = state.k, state.d, _lr_at(self.learning_rate, state.count)
        if lr == 0:
            return _skip_at_zero_rate(updates, state, lr)
        dlr = _step_size(d, lr, k, b1, b2, self.use_bias_correction)
        if wd and not self.decouple:
            g = be.axpy(wd, p, g)
        nu_old, s_old = fl(state.nu), fl(state.s)
        acc = dlr * be.to_float(be.vdot(g, be.div(s_old, be.add_scalar(be.sqrt(nu_old), eps))))
        mu = be.axpy(dlr * (1 - b1), g, be.scale(fl(state.mu), b1))
        nu = be.addcmul(be.scale(nu_old, b2), g, g, 1 - b2)
        s = be.axpy(dlr * (1 - sb2), g, be.scale(s_old, sb2))
        sk_l1 = be.to_float(be.vdot(s, be.sign(s)))
        u = spec.unflatten
        if sk_l1 == 0:  # no gradient at all: the reference returns before moving
            return u(be.zeros_like(g)), state._replace(
                count=state.count + 1, learning_rate=lr, mu=u(mu), nu=u(nu), s=u(s))
        numerator = sb2 * state.numerator_weighted + (1 - sb2) * acc
        d_new = max(d, min(numerator / ((1 - sb2) * sk_l1), d * self.growth_rate))
        out = be.scale(be.div(mu, be.add_scalar(be.sqrt(nu), eps)), -1.0)
        if wd and self.decouple:
            out = be.axpy(-wd * dlr, p, out)
        return u(out), ScaleByDadaptAdamState(
            state.count + 1, k + 1, d_new, numerator, lr, u(mu), u(nu), u(s))


@torch_spellings()
def dadapt_adam(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decouple: bool = False,
    use_bias_correction: bool = False,
    d0: float = 1e-6,
    growth_rate: float = math.inf,
    maximize: bool = False,
) -> Descent:
    """D-Adaptation Adam (dadaptation.DAdaptAdam semantics and defaults): Adam whose step
    size is estimated on the fly over the whole pytree.

    The optimizer is :func:`scale_by_dadapt_adam` lifted. ``learning_rate`` multiplies
    the estimate (keep 1.0 unless scheduling).

    Args:
      learning_rate: multiplies the estimate; ``b1``, ``b2``, ``eps``, ``weight_decay``,
        ``decouple``, ``use_bias_correction``, ``d0``, ``growth_rate``: see
        :func:`scale_by_dadapt_adam`.
      maximize: maximise the objective (an fnopt extra; the reference has none).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.dadapt_adam()
    >>> grad_fn = lambda p: (0.5 * (p @ p), p)
    >>> r = fnopt.fixed_point(opt, np.array([1.0, -2.0]), grad_fn, stop=fnopt.stop.max_iters(200))
    >>> bool(r.value < 0.5 * 5.0)
    True

    Defazio and Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023.
    """
    return _lift(scale_by_dadapt_adam(
        learning_rate, b1, b2, eps=eps, weight_decay=weight_decay, decouple=decouple,
        use_bias_correction=use_bias_correction, d0=d0, growth_rate=growth_rate), maximize)


# -- schedule-free ---------------------------------------------------------------------


class ScheduleFreeState(NamedTuple):
    """``count``: steps taken; ``b1``: the interpolation constant (read by
    :func:`schedule_free_eval_params`); ``weight_sum``, ``lr_max``: the averaging
    weights' running sum and the largest rate so far; ``learning_rate``: the
    (warmed-up) rate of the last step; ``z``: the base (SGD) sequence."""

    count: int  # type: ignore[assignment]
    b1: float
    weight_sum: float
    lr_max: float
    learning_rate: Any
    z: Any


def scale_by_schedule_free(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    *,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
) -> Transform:
    """The schedule-free update around a direction :math:`d_t` (the incoming updates:
    the gradient for SGD, the Adam-normalised gradient for AdamW), as the
    ``schedulefree`` package computes it.

    The params are the training point :math:`y_t`; :math:`z` is the base sequence and
    :math:`x_t` (the evaluation point, :func:`schedule_free_eval_params`) satisfies
    :math:`y_t = (1-\\beta)z_t + \\beta x_t`. With :math:`\\eta_t` the rate (linear warm-up
    over ``warmup_steps``), :math:`w_t = (t+1)^r \\max_{s\\le t}\\eta_s^{q}`,
    :math:`c_t = w_t / \\sum_{s \\le t} w_s` and :math:`\\hat d_t = d_t + \\lambda y_t`:

    .. math::
        y_{t+1} = (1-c_t) y_t + c_t z_t + \\eta_t(\\beta(1-c_t) - 1)\\hat d_t,\\quad
        z_{t+1} = z_t - \\eta_t \\hat d_t

    and the update is :math:`y_{t+1} - y_t`.

    Args:
      learning_rate: a number >= 0 or a schedule (before the warm-up factor).
      b1: the interpolation constant :math:`\\beta`, in (0, 1) (the reference's
        ``momentum`` / ``betas[0]``).
      weight_decay: >= 0, evaluated at :math:`y`.
      warmup_steps: linear warm-up length, an int >= 0.
      r: polynomial weighting power, >= 0; weight_lr_power: :math:`q`, >= 0.

    Returns:
      A :class:`fnopt.Transform` (needs params) with state :class:`ScheduleFreeState`.

    >>> import numpy as np
    >>> t = scale_by_schedule_free(0.1)
    >>> y = np.array([1.0])
    >>> u, s = t.update(np.array([1.0]), t.init(y), y)
    >>> u
    array([-0.1])

    Defazio et al., "The Road Less Scheduled", NeurIPS 2024.
    """
    check_nonnegative("learning_rate", learning_rate)
    check_unit_interval("b1", b1)
    if b1 == 0:
        raise ValueError("b1: expected a number in (0, 1), got 0")
    check_nonnegative("weight_decay", weight_decay)
    check_int("warmup_steps", warmup_steps, 0)
    check_nonnegative("r", r)
    check_nonnegative("weight_lr_power", weight_lr_power)

    def init(params: Params) -> ScheduleFreeState:
        return ScheduleFreeState(0, float(b1), 0.0, -1.0, _lr_at(learning_rate, 0),
                                 tree.clone(params))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        d, spec, be = _flat(updates)
        y = spec.flatten_up_to(_need(params, "scale_by_schedule_free"))
        k = state.count
        lr = _lr_at(learning_rate, k) * ((k + 1) / warmup_steps if k < warmup_steps else 1.0)
        lr_max = max(lr, state.lr_max)
        weight = ((k + 1) ** r) * (lr_max**weight_lr_power)
        weight_sum = state.weight_sum + weight
        ckp1 = weight / weight_sum if weight_sum else 0.0
        if weight_decay:
            d = be.axpy(weight_decay, y, d)
        z = spec.flatten_up_to(state.z)
        # y_new - y = c (z - y) + lr (b1 (1 - c) - 1) d
        out = be.axpy(lr * (b1 * (1 - ckp1) - 1), d, be.scale(be.sub(z, y), ckp1))
        z = be.axpy(-lr, d, z)
        return spec.unflatten(out), ScheduleFreeState(
            k + 1, state.b1, weight_sum, lr_max, lr, spec.unflatten(z))

    return Transform(init, update)


class _ScaleByRmsDebiasedState(NamedTuple):
    count: int  # type: ignore[assignment]
    nu: Any


def _scale_by_rms_debiased(b2: float, eps: float) -> Transform:
    """:math:`g_t / (\\sqrt{v_t / (1-\\beta_2^t)} + \\epsilon)`, :math:`v_t` the EMA of
    :math:`g^2`: schedule-free AdamW's direction (Adam without a first moment)."""
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)

    def init(params: Params) -> _ScaleByRmsDebiasedState:
        return _ScaleByRmsDebiasedState(0, tree.zeros_like(params))

    def update(updates: Updates, state: State, params: Params | None = None) -> Any:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        nu = be.addcmul(be.scale(spec.flatten_up_to(state.nu), b2), g, g, 1.0 - b2)
        denom = be.add_scalar(be.sqrt(be.scale(nu, 1.0 / (1.0 - b2**t))), eps)
        return spec.unflatten(be.div(g, denom)), _ScaleByRmsDebiasedState(t, spec.unflatten(nu))

    return Transform(init, update)


@torch_spellings()
def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    b1: float = 0.9,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    maximize: bool = False,
) -> Descent:
    """Schedule-free SGD (schedulefree.SGDScheduleFree semantics and defaults).

    :func:`scale_by_schedule_free` around the plain gradient. The loop's params are the
    training point :math:`y` (the reference model in ``train()`` mode); evaluate or
    deploy :func:`schedule_free_eval_params` ``(state, params)`` (``eval()`` mode).

    Args:
      learning_rate, b1 (the reference's ``momentum``), weight_decay, warmup_steps, r,
      weight_lr_power: see :func:`scale_by_schedule_free`.
      maximize: maximise the objective (an fnopt extra; the reference has none).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.schedule_free_sgd(0.5)
    >>> grad_fn = lambda p: (0.5 * (p @ p), p)
    >>> r = fnopt.fixed_point(opt, np.array([1.0]), grad_fn, stop=fnopt.stop.max_iters(50))
    >>> x = fnopt.schedule_free_eval_params(r.state, r.params)
    >>> bool(abs(x[0]) < 0.1)
    True

    Defazio et al., "The Road Less Scheduled", NeurIPS 2024.
    """
    return _lift(scale_by_schedule_free(
        learning_rate, b1, weight_decay=weight_decay, warmup_steps=warmup_steps, r=r,
        weight_lr_power=weight_lr_power), maximize)


@torch_spellings()
def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    maximize: bool = False,
) -> Descent:
    """Schedule-free AdamW (schedulefree.AdamWScheduleFree semantics and defaults).

    The direction :math:`g_t / (\\sqrt{v_t/(1-\\beta_2^t)} + \\epsilon)` (Adam without its
    first moment, :math:`v_t` the EMA of :math:`g^2`) goes through
    :func:`scale_by_schedule_free`; weight decay is added to
    it at :math:`y`. Params are the training point; see
    :func:`schedule_free_eval_params` for the evaluation point.

    Args:
      learning_rate, b1, weight_decay, warmup_steps, r, weight_lr_power: see
        :func:`scale_by_schedule_free`.
      b2: second-moment decay in [0, 1); eps: added to the denominator, >= 0.
      maximize: maximise the objective (an fnopt extra; the reference has none).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.schedule_free_adamw(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 4)
    array([0.9])

    Defazio et al., "The Road Less Scheduled", NeurIPS 2024.
    """
    return _lift(_t.chain(
        _scale_by_rms_debiased(b2, eps),
        scale_by_schedule_free(learning_rate, b1, weight_decay=weight_decay,
                               warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power),
    ), maximize)


def _find_schedule_free(state: Any) -> ScheduleFreeState | None:
    stack = [state]
    while stack:
        s = stack.pop()
        if isinstance(s, ScheduleFreeState):
            return s
        if isinstance(s, (tuple, list)):
            stack.extend(reversed(s))
        elif isinstance(s, dict):
            stack.extend(s.values())
    return None


def schedule_free_eval_params(state: State, params: Params) -> Params:
    """The evaluation point :math:`x` of a schedule-free run from its training point.

    :math:`x = y + (1 - 1/\\beta)(z - y)` (the reference's ``optimizer.eval()``), with
    :math:`y` = ``params`` and :math:`z`, :math:`\\beta` from the
    :class:`ScheduleFreeState` found inside ``state`` (any optimizer state that holds
    one, e.g. ``fnopt.schedule_free_adamw(...)``'s). New arrays; nothing is modified.

    Args:
      state: an optimizer state containing a :class:`ScheduleFreeState` whose ``z`` has
        the structure of ``params``.
      params: the training point (what the loop returns).

    Returns:
      The evaluation point, a pytree like ``params``.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.schedule_free_sgd(0.1)
    >>> y = np.array([1.0])
    >>> y1, s = opt.step(y, lambda p: (p @ p, 2 * p), opt.init(y))
    >>> fnopt.schedule_free_eval_params(s, y1)
    array([0.8])

    Defazio et al., "The Road Less Scheduled", NeurIPS 2024; optax's function of the
    same name.
    """
    sf = _find_schedule_free(state)
    if sf is None:
        raise ValueError("state: holds no ScheduleFreeState (not a schedule-free optimizer's)")
    y, spec, be = _flat(params)
    if optree.tree_structure(sf.z) != spec:
        raise ValueError("params: structure differs from the schedule-free state's z "
                         f"({optree.tree_structure(sf.z)} vs {spec})")
    return spec.unflatten(be.lerp(y, spec.flatten_up_to(sf.z), 1.0 - 1.0 / sf.b1))


# -- SAM -------------------------------------------------------------------------------


class SAMState(NamedTuple):
    """``count``: steps taken; ``value``, ``grad_norm``: loss and gradient norm at the
    params passed into the last step; ``base``: the base transform's state."""

    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    base: Any


def sam(
    base: Transform,
    *,
    rho: float = 0.05,
    adaptive: bool = False,
    perturb_eps: float = 1e-12,
) -> Optimizer:
    """Sharpness-aware minimisation around a first-order ``base`` (pytorch_optimizer.SAM
    ``first_step`` / ``second_step``): two gradient evaluations per step.

    .. math::
        (f_t, g_t) = \\nabla f(p_t),\\quad
        e_t = \\rho\\,\\frac{a_t^2 \\odot g_t}{\\|a_t \\odot g_t\\| + \\epsilon},\\quad
        \\tilde g_t = \\nabla f(p_t + e_t),\\quad
        p_{t+1} = p_t + B(\\tilde g_t; p_t)

    with :math:`a_t = |p_t|` for ``adaptive`` (ASAM) or 1, and :math:`B` the base's
    update, computed at :math:`p_t`.

    Args:
      base: a :class:`fnopt.Descent` (``fnopt.sgd(0.1)``) or any transform chain.
      rho: neighbourhood radius >= 0.
      adaptive: element-wise adaptive SAM (ASAM).
      perturb_eps: added to the norm, >= 0.

    Returns:
      An :class:`fnopt.Optimizer` (``value_at="input"``) with state :class:`SAMState`;
      its step calls ``grad_fn`` exactly twice.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.sam(fnopt.sgd(0.1), rho=0.5)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> p  # the gradient is taken at 1.5
    array([0.7])

    Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
    Generalization", ICLR 2021; Kwon et al., "ASAM", ICML 2021.
    """
    if not isinstance(base, Transform):
        raise TypeError(f"base: expected a Transform or Descent, got {type(base).__name__}")
    check_bool("adaptive", adaptive)
    check_nonnegative("rho", rho)
    check_nonnegative("perturb_eps", perturb_eps)
    inner = as_transform(base)

    def init(params: Params) -> SAMState:
        be = check_params(params)
        nan = be.scalar(float("nan"), tree.leaves(params)[0])
        return SAMState(0, nan, nan, inner.init(params))

    def step(params: Params, grad_fn: GradFn, state: State, *batch: Any) -> tuple[Params, State]:
        # kept across the second call: fnopt's own copies
        value, grads = call_grad_fn(grad_fn, params, batch, keep=True)
        g, spec, be = _flat(grads)
        p = spec.flatten_up_to(params)
        scaled = be.mul(be.abs(p), g) if adaptive else g
        norm = be.sqrt([be.sq_norm(scaled)])[0]
        factor = rho / (norm + perturb_eps)
        e = be.scale(be.mul(be.mul(p, p), g) if adaptive else g, factor)
        _, grads2 = call_grad_fn(grad_fn, spec.unflatten(be.add(p, e)), batch)
        updates, base_state = inner.update(grads2, state.base, params)
        grad_norm = tree.global_norm(grads)
        return tree.add(params, updates), SAMState(
            state.count + 1, _as_0d(value, grad_norm), grad_norm, base_state)

    return Optimizer(init, step, "input")
