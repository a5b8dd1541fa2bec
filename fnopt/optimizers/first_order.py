"""Named first-order optimizers, each built from :mod:`fnopt.transforms` blocks and
lifted by :func:`descent` to a :class:`fnopt.Descent`: an optimizer that is still a
transform, so every alias composes (``chain``, ``partition``, ``masked``, ...).

Names follow optax for the concepts optax has (``learning_rate``, ``b1``, ``b2``,
``eps``, ``weight_decay``, ``momentum``, ``nesterov``, ``decay``) and torch.optim for
the options only torch has (``amsgrad``, ``centered``, ``dampening``, ``lr_decay``,
``initial_accumulator_value``, ``rho``, ``momentum_decay``,
``decoupled_weight_decay``, ``maximize``, ``lambd``, ``alpha``, ``t0``, ``etas``,
``step_sizes``). Defaults and semantics follow torch.optim, so the same
hyperparameters give torch.optim's trajectory (to round-off in float64).

Every ``learning_rate`` may be a number or a schedule ``count -> lr``
(:mod:`fnopt.schedules`); the rate used by the last step is in the state
(:func:`fnopt.learning_rate_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from fnopt import transforms as _t
from fnopt import tree
from fnopt._base import (
    Descent,
    Params,
    ScalarOrSchedule,
    State,
    Transform,
    check_bool,
    check_nonnegative,
    check_unit_interval,
)
from fnopt.optimizers._names import torch_spellings

__all__ = [
    "descent",
    "sgd",
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "radam",
    "rmsprop",
    "adagrad",
    "adadelta",
    "asgd",
    "rprop",
    "lion",
    "adafactor",
    "muon",
    "lamb",
    "lars",
    "adabelief",
]


def descent(transform: Transform) -> Descent:
    """Lift a :class:`fnopt.Transform` to a first-order optimizer (a :class:`fnopt.Descent`,
    which is still a transform and composes like one).

    Each step evaluates ``grad_fn`` once at the current params, passes the gradient
    through ``transform`` and adds the resulting updates:
    :math:`(f_t, g_t) = \\text{grad\\_fn}(p_t)`, :math:`u_t = T(g_t)`,
    :math:`p_{t+1} = p_t + u_t`. The state records the step count, :math:`f_t` and
    :math:`\\|g_t\\|` (evaluated at the *input* params). A :class:`fnopt.Descent`
    (e.g. ``fnopt.adam(...)``) is returned as it is.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.descent(fnopt.scale_by_learning_rate(0.5))
    >>> grad_fn = lambda p: (0.5 * (p @ p), p)
    >>> p, s = opt.step(np.array([2.0]), grad_fn, opt.init(np.array([2.0])))
    >>> p, s.count, float(s.value)
    (array([1.]), 1, 2.0)
    """
    if isinstance(transform, Descent):
        return transform
    if not isinstance(transform, Transform):
        raise TypeError(f"transform: expected a Transform, got {type(transform).__name__}")
    if transform.name == "masked" and not transform.hyperparams.get("frozen", True):
        raise ValueError(
            "transform: a masked transform passes the gradient of the leaves outside the "
            "mask through unchanged, and a step would add it to them (climbing the loss); "
            "mask an optimizer instead (fnopt.masked(fnopt.adam(1e-3), mask) freezes those "
            "leaves) or chain a learning rate after masked")
    return Descent(transform)


# -- assembly helpers ------------------------------------------------------------------


def _check_lr(learning_rate: Any) -> None:
    check_nonnegative("learning_rate", learning_rate)


def _build(
    scaling: list[Transform],
    learning_rate: ScalarOrSchedule,
    *,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
    mask: Any = None,
) -> Descent:
    """:func:`descent` of :func:`_chain`."""
    return descent(
        _chain(
            scaling, learning_rate,
            weight_decay=weight_decay, decoupled=decoupled, maximize=maximize, mask=mask,
        )
    )


def _chain(
    scaling: list[Transform],
    learning_rate: ScalarOrSchedule,
    *,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
    mask: Any = None,
) -> Transform:
    """``[negate] [+wd p] scaling [+wd p] -lr`` in torch.optim's order: ``maximize``
    negates the gradient first; coupled weight decay is added to the gradient before
    the scaling, decoupled weight decay to the direction after it; with ``mask``
    (optax's: a pytree of bools or ``params -> mask``) only the leaves it selects are
    decayed. The arguments every alias shares are validated here, under the aliases'
    names."""
    _check_lr(learning_rate)
    check_nonnegative("weight_decay", weight_decay)
    check_bool("decoupled_weight_decay", decoupled)
    check_bool("maximize", maximize)
    blocks: list[Transform] = []
    if maximize:
        blocks.append(_t.scale(-1.0))
    decay = _t.add_decayed_weights(weight_decay)
    if mask is not None:
        decay = _t.masked(decay, mask)
    if weight_decay and not decoupled:
        blocks.append(decay)
    blocks.extend(scaling)
    if weight_decay and decoupled:
        blocks.append(decay)
    blocks.append(_t.scale_by_learning_rate(learning_rate))
    return _t.chain(*blocks)


# -- the optimizers ----------------------------------------------------------------------


@torch_spellings()
def sgd(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> Descent:
    """Stochastic gradient descent with torch.optim.SGD semantics.

    With :math:`\\eta` = ``learning_rate``, :math:`\\mu` = ``momentum``,
    :math:`\\tau` = ``dampening`` and :math:`\\lambda` = ``weight_decay``:

    .. math::
        g_t \\leftarrow g_t + \\lambda p_t,\\quad
        b_t = \\mu b_{t-1} + (1-\\tau) g_t \\ (b_1 = g_1),\\quad
        p_{t+1} = p_t - \\eta\\,(g_t + \\mu b_t \\text{ if nesterov else } b_t)

    Built as ``chain(add_decayed_weights, trace, scale_by_learning_rate)``.

    Args:
      learning_rate: a number >= 0, or a schedule ``count -> lr`` (count from 0).
      momentum: momentum factor in [0, 1].
      dampening: dampening for momentum in [0, 1].
      nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
      weight_decay: L2 penalty coefficient >= 0, added to the gradient.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.sgd(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> p
    array([0.8])

    Reference: Sutskever et al., "On the importance of initialization and momentum in
    deep learning", ICML 2013.
    """
    check_bool("nesterov", nesterov)
    check_unit_interval("momentum", momentum, closed=True)
    check_unit_interval("dampening", dampening, closed=True)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov: requires momentum > 0 and dampening == 0")
    scaling = [_t.trace(momentum, dampening=dampening, nesterov=nesterov)] if momentum else []
    return _build(scaling, learning_rate, weight_decay=weight_decay, maximize=maximize)


@torch_spellings()
def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    mu_dtype: Any = None,
    eps_root: float = 0.0,
    nesterov: bool = False,
    mask: Any = None,
) -> Descent:
    """Adam with torch.optim.Adam semantics.

    .. math::
        g_t \\leftarrow g_t + \\lambda p_t,\\quad
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,

        p_{t+1} = p_t - \\eta\\,\\frac{m_t/(1-\\beta_1^t)}{\\sqrt{v_t}/\\sqrt{1-\\beta_2^t}
        + \\epsilon}

    :math:`\\eta, \\beta_1, \\beta_2, \\epsilon, \\lambda` = ``learning_rate, b1, b2,
    eps, weight_decay``. With ``decoupled_weight_decay=True`` the decay is
    :math:`p \\leftarrow p - \\eta\\lambda p` instead (AdamW). ``amsgrad`` uses
    :math:`\\max_{s\\le t} v_s` in the denominator. Built as
    ``chain(add_decayed_weights, scale_by_adam, scale_by_learning_rate)``.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2: moment decays in [0, 1) (torch's ``betas``).
      eps: added to the denominator outside the square root.
      weight_decay: >= 0; L2 added to the gradient (or decoupled, see above).
      amsgrad: the AMSGrad variant.
      decoupled_weight_decay: AdamW-style decay.
      maximize: maximise the objective.
      mu_dtype: the dtype of the first moment (optax's option; ``None``: the params'
        dtype), see :func:`fnopt.scale_by_adam`.
      eps_root, nesterov: optax's options, see :func:`fnopt.scale_by_adam`
        (``nesterov=True`` is optax's NAdam).
      mask: the leaves to decay (optax's ``mask``: a pytree of bools or
        ``params -> mask``); ``None``: all.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adam(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 6)
    array([0.9])

    Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """
    check_bool("amsgrad", amsgrad)
    return _build(
        [_t.scale_by_adam(b1, b2, eps, amsgrad=amsgrad, mu_dtype=mu_dtype,
                          eps_root=eps_root, nesterov=nesterov)],
        learning_rate,
        weight_decay=weight_decay,
        decoupled=decoupled_weight_decay,
        maximize=maximize,
        mask=mask,
    )


@torch_spellings()
def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
    mu_dtype: Any = None,
    eps_root: float = 0.0,
    nesterov: bool = False,
    mask: Any = None,
) -> Descent:
    """Adam with decoupled weight decay (torch.optim.AdamW).

    :math:`p_{t+1} = p_t - \\eta\\lambda p_t - \\eta\\,\\hat m_t / (\\sqrt{\\hat v_t} +
    \\epsilon)` with the moments of :func:`adam`. Built as
    ``chain(scale_by_adam, add_decayed_weights, scale_by_learning_rate)``.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2: moment decays in [0, 1).
      eps: added to the denominator outside the square root.
      weight_decay: the decoupled decay :math:`\\lambda` >= 0 (default 1e-2, as torch).
      amsgrad: the AMSGrad variant.
      maximize: maximise the objective.
      mu_dtype: the dtype of the first moment, see :func:`fnopt.scale_by_adam`.
      eps_root, nesterov: optax's options, see :func:`fnopt.scale_by_adam`
        (``nesterov=True`` is optax's NAdamW, also :func:`fnopt.nadamw`).
      mask: the leaves to decay (optax's ``mask``: a pytree of bools or
        ``params -> mask``, e.g. no decay on biases); ``None``: all.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adamw(0.1, weight_decay=0.5)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 6)
    array([0.85])

    Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    check_bool("amsgrad", amsgrad)
    check_bool("maximize", maximize)
    return adam(
        learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, decoupled_weight_decay=True, maximize=maximize, mu_dtype=mu_dtype,
        eps_root=eps_root, nesterov=nesterov, mask=mask,
    )


@torch_spellings()
def adamax(
    learning_rate: ScalarOrSchedule = 2e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> Descent:
    """Adamax, the infinity-norm Adam (torch.optim.Adamax).

    :math:`m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t`,
    :math:`u_t = \\max(\\beta_2 u_{t-1}, |g_t| + \\epsilon)`,
    :math:`p_{t+1} = p_t - \\frac{\\eta}{1-\\beta_1^t}\\frac{m_t}{u_t}`, with
    :math:`g_t \\leftarrow g_t + \\lambda p_t`. Built from :func:`fnopt.scale_by_adamax`.

    Args:
      learning_rate: a number >= 0 or a schedule (torch default 2e-3).
      b1, b2: decays in [0, 1).
      eps: added to :math:`|g_t|`.
      weight_decay: L2 coefficient >= 0 added to the gradient.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adamax(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.8052, -1.8025])

    Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.
    """
    return _build(
        [_t.scale_by_adamax(b1, b2, eps)], learning_rate,
        weight_decay=weight_decay, maximize=maximize,
    )


@torch_spellings()
def nadam(
    learning_rate: ScalarOrSchedule = 2e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> Descent:
    """NAdam, Adam with Nesterov momentum (torch.optim.NAdam).

    :math:`p_{t+1} = p_t - \\eta\\,u_t` with :math:`u_t` from
    :func:`fnopt.scale_by_nadam` (momentum schedule
    :math:`\\mu_t = \\beta_1(1 - \\frac12 0.96^{t\\psi})`, :math:`\\psi` =
    ``momentum_decay``); weight decay coupled, or decoupled as in :func:`adamw`.

    Args:
      learning_rate: a number >= 0 or a schedule (torch default 2e-3).
      b1, b2: moment decays in [0, 1).
      eps: added outside the square root.
      weight_decay: >= 0.
      momentum_decay: :math:`\\psi` >= 0 (torch default 4e-3).
      decoupled_weight_decay: NAdamW-style decay.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.nadam(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.82  , -1.8179])

    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    """
    return _build(
        [_t.scale_by_nadam(b1, b2, eps, momentum_decay)], learning_rate,
        weight_decay=weight_decay, decoupled=decoupled_weight_decay, maximize=maximize,
    )


@torch_spellings()
def radam(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> Descent:
    """RAdam, rectified Adam (torch.optim.RAdam).

    :math:`p_{t+1} = p_t - \\eta\\,u_t` with :math:`u_t` from
    :func:`fnopt.scale_by_radam`: the bias-corrected momentum, rescaled by the
    rectified adaptive rate once the variance estimate is tractable
    (:math:`\\rho_t > 5`). Weight decay coupled, or decoupled as in :func:`adamw`.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2: moment decays in [0, 1).
      eps: added outside the square root.
      weight_decay: >= 0.
      decoupled_weight_decay: AdamW-style decay.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.radam(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.6211, -1.2421])

    Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.
    """
    return _build(
        [_t.scale_by_radam(b1, b2, eps)], learning_rate,
        weight_decay=weight_decay, decoupled=decoupled_weight_decay, maximize=maximize,
    )


@torch_spellings({"alpha": "decay"})
def rmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    *,
    decay: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = False,
    bias_correction: bool = False,
) -> Descent:
    """RMSprop (torch.optim.RMSprop; ``decay`` is torch's ``alpha``).

    :math:`v_t = \\alpha v_{t-1} + (1-\\alpha) g_t^2`,
    :math:`d_t = g_t / (\\sqrt{v_t} + \\epsilon)` (:math:`\\sqrt{v_t - m_t^2}` when
    ``centered``), :math:`b_t = \\mu b_{t-1} + d_t`, :math:`p_{t+1} = p_t - \\eta b_t`
    (:math:`b_t = d_t` without momentum); :math:`g_t \\leftarrow g_t + \\lambda p_t`.
    Built as ``chain(add_decayed_weights, scale_by_rms | scale_by_stddev, trace,
    scale_by_learning_rate)``.

    Args:
      learning_rate: a number >= 0 or a schedule (torch default 1e-2).
      decay: smoothing constant :math:`\\alpha` in [0, 1].
      eps: added outside the square root.
      weight_decay: L2 coefficient >= 0 added to the gradient.
      momentum: :math:`\\mu` in [0, 1].
      centered: normalise by the estimated standard deviation.
      maximize: maximise the objective.
      initial_scale, eps_in_sqrt, bias_correction: optax's options, see
        :func:`fnopt.scale_by_rms` (``eps_in_sqrt=True, decay=0.9`` is optax's rmsprop).

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.rmsprop(0.01)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.8329, -1.8309])

    Tieleman and Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine
    Learning, 2012; Graves, "Generating Sequences With Recurrent Neural Networks", 2013.
    """
    check_bool("centered", centered)
    check_unit_interval("momentum", momentum, closed=True)
    scaling = [_t.scale_by_rms(decay, eps, centered=centered, initial_scale=initial_scale,
                               eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction)]
    if momentum:
        scaling.append(_t.trace(momentum))
    return _build(scaling, learning_rate, weight_decay=weight_decay, maximize=maximize)


def _decayed(learning_rate: ScalarOrSchedule, lr_decay: float) -> ScalarOrSchedule:
    """Adagrad's ``lr / (1 + count * lr_decay)`` as a schedule."""
    if not lr_decay:
        return learning_rate
    base: Callable[[int], Any] = (
        learning_rate if callable(learning_rate) else (lambda count: learning_rate)
    )

    def schedule(count: int) -> Any:
        return base(count) / (1.0 + count * lr_decay)

    return schedule


@torch_spellings()
def adagrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    *,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> Descent:
    """Adagrad (torch.optim.Adagrad).

    :math:`s_t = s_{t-1} + g_t^2`, :math:`p_{t+1} = p_t - \\frac{\\eta}{1 + (t-1)\\delta}
    \\frac{g_t}{\\sqrt{s_t} + \\epsilon}` with :math:`\\delta` = ``lr_decay`` and
    :math:`g_t \\leftarrow g_t + \\lambda p_t`. The decayed rate is a schedule fed to
    :func:`fnopt.scale_by_learning_rate`, so the state records it.

    Args:
      learning_rate: a number >= 0 or a schedule (torch default 1e-2).
      lr_decay: :math:`\\delta` >= 0.
      weight_decay: L2 coefficient >= 0 added to the gradient.
      initial_accumulator_value: :math:`s_0` >= 0.
      eps: added outside the square root (torch default 1e-10).
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adagrad(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.8331, -1.8311])

    Duchi et al., "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 2011.
    """
    _check_lr(learning_rate)
    check_nonnegative("lr_decay", lr_decay)
    return _build(
        [_t.scale_by_adagrad(initial_accumulator_value, eps)],
        _decayed(learning_rate, lr_decay),
        weight_decay=weight_decay,
        maximize=maximize,
    )


@torch_spellings()
def adadelta(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> Descent:
    """Adadelta (torch.optim.Adadelta).

    :math:`p_{t+1} = p_t - \\eta\\,\\frac{\\sqrt{E[\\Delta x^2]_{t-1} + \\epsilon}}
    {\\sqrt{E[g^2]_t + \\epsilon}} g_t` (see :func:`fnopt.scale_by_adadelta`), with
    :math:`g_t \\leftarrow g_t + \\lambda p_t`.

    Args:
      learning_rate: a number >= 0 or a schedule (torch default 1.0).
      rho: decay of the running averages in [0, 1].
      eps: inside the square roots (torch default 1e-6).
      weight_decay: L2 coefficient >= 0 added to the gradient.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adadelta(1.0)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.9936, -1.9936])

    Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012.
    """
    return _build(
        [_t.scale_by_adadelta(rho, eps)], learning_rate,
        weight_decay=weight_decay, maximize=maximize,
    )


@torch_spellings()
def asgd(
    learning_rate: ScalarOrSchedule = 1e-2,
    *,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> Descent:
    """Averaged SGD (torch.optim.ASGD).

    :math:`p_{t+1} = p_t(1 - \\lambda\\eta_t) - \\eta_t g_t` with the decaying rate
    :math:`\\eta_t = \\eta / (1 + \\lambda\\eta t)^{\\alpha}` (:math:`t` from 0),
    :math:`g_t \\leftarrow g_t + w p_t` (:math:`w` = ``weight_decay``); the average of
    the iterates from step :math:`t_0` on is kept in the state
    (:class:`fnopt.transforms.scaling.PolyakAverageState`, torch's ``ax``). Built as
    ``chain(add_decayed_weights(w), add_decayed_weights(λ), scale_by_learning_rate(η_t),
    polyak_average(t0))``.

    Args:
      learning_rate: :math:`\\eta` >= 0 (torch default 1e-2), or a schedule: then
        :math:`\\eta_t` uses the scheduled rate of step :math:`t-1`, as
        ``torch.optim.ASGD`` driven by an ``lr_scheduler`` does.
      lambd: decay term :math:`\\lambda` >= 0.
      alpha: power of the rate decay >= 0.
      t0: the step at which averaging starts.
      weight_decay: L2 coefficient >= 0 added to the gradient.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.asgd(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.64, -1.28])

    Polyak and Juditsky, "Acceleration of Stochastic Approximation by Averaging",
    SIAM J. Control Optim. 1992.
    """
    check_bool("maximize", maximize)
    _check_lr(learning_rate)
    check_nonnegative("lambd", lambd)
    check_nonnegative("alpha", alpha)
    check_nonnegative("t0", t0)
    check_nonnegative("weight_decay", weight_decay)

    def eta(count: int) -> float:
        # torch.optim.ASGD computes the next step's rate at the end of a step, from the
        # rate of that step: with a schedule (a torch lr_scheduler) the rate lags by one
        lr = learning_rate(max(count - 1, 0)) if callable(learning_rate) else learning_rate
        return lr / (1.0 + lambd * lr * count) ** alpha

    blocks: list[Transform] = []
    if maximize:
        blocks.append(_t.scale(-1.0))
    if weight_decay:
        blocks.append(_t.add_decayed_weights(weight_decay))
    if lambd:
        blocks.append(_t.add_decayed_weights(lambd))
    blocks += [_t.scale_by_learning_rate(eta), _t.polyak_average(t0)]
    return descent(_t.chain(*blocks))


@torch_spellings()
def rprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    *,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
    maximize: bool = False,
) -> Descent:
    """Rprop, resilient backpropagation (torch.optim.Rprop).

    Per-element step sizes grow by :math:`\\eta_+` while the gradient keeps its sign
    and shrink by :math:`\\eta_-` when it flips; the params move by the step size
    against the gradient's sign (see :func:`fnopt.scale_by_rprop`).

    Args:
      learning_rate: the initial step size >= 0 (torch default 1e-2); a schedule gives
        its rate at step 0 (torch.optim.Rprop reads the rate only at its first step, so
        an lr_scheduler does not change its steps).
      etas: ``(etaminus, etaplus)``, ``0 < etaminus < 1 < etaplus``.
      step_sizes: ``(min, max)`` step sizes.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.rprop(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.78, -1.78])

    Riedmiller and Braun, "A Direct Adaptive Method for Faster Backpropagation
    Learning: The RPROP Algorithm", ICNN 1993.
    """
    check_bool("maximize", maximize)
    # torch.optim.Rprop reads the rate once, at its first step
    initial = learning_rate(0) if callable(learning_rate) else learning_rate
    blocks: list[Transform] = [_t.scale(-1.0)] if maximize else []
    blocks.append(_t.scale_by_rprop(initial, etas, step_sizes))
    return descent(_t.chain(*blocks))


@torch_spellings()
def lion(
    learning_rate: ScalarOrSchedule = 1e-4,
    *,
    b1: float = 0.9,
    b2: float = 0.99,
    weight_decay: float = 0.0,
    maximize: bool = False,
    mu_dtype: Any = None,
    mask: Any = None,
) -> Descent:
    """Lion, evolved sign momentum (not in torch.optim; follows the paper).

    .. math::
        c_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        p_{t+1} = p_t - \\eta\\,(\\operatorname{sign}(c_t) + \\lambda p_t),\\quad
        m_t = \\beta_2 m_{t-1} + (1-\\beta_2) g_t

    (decoupled weight decay :math:`\\lambda`). Built as
    ``chain(scale_by_lion, add_decayed_weights, scale_by_learning_rate)``. Use a rate
    3-10x smaller than AdamW's.

    Args:
      learning_rate: a number >= 0 or a schedule (default 1e-4, the paper's scale).
      b1: interpolation of the update in [0, 1) (default 0.9).
      b2: decay of the momentum in [0, 1) (default 0.99).
      weight_decay: decoupled decay :math:`\\lambda` >= 0.
      maximize: maximise the objective.
      mu_dtype: the dtype of the momentum (optax's option).
      mask: the leaves to decay (optax's ``mask``); ``None``: all.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.lion(0.1)
    >>> p, s = opt.step(np.array([1.0, -1.0]), lambda p: (p @ p, 2 * p),
    ...                 opt.init(np.array([1.0, -1.0])))
    >>> p
    array([ 0.9, -0.9])

    Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023.
    """
    return _build(
        [_t.scale_by_lion(b1, b2, mu_dtype)], learning_rate,
        weight_decay=weight_decay, decoupled=True, maximize=maximize, mask=mask,
    )


class _DecayState(NamedTuple):
    count: int  # type: ignore[assignment]


def _lr_weight_decay(learning_rate: ScalarOrSchedule, weight_decay: float) -> Transform:
    """``u <- u - lr_t * weight_decay * p`` (decay by the *raw* learning rate)."""

    def init(params: Params) -> _DecayState:
        del params
        return _DecayState(0)

    def update(
        updates: Any, state: State, params: Params | None = None
    ) -> tuple[Any, State]:
        if params is None:
            raise ValueError("adafactor: update needs params")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        return tree.axpy(-lr * weight_decay, params, updates), _DecayState(state.count + 1)

    return Transform(init, update)


@torch_spellings()
def adafactor(
    learning_rate: ScalarOrSchedule = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Descent:
    """Adafactor (torch.optim.Adafactor): factored second moments, update clipping and
    a relative step size.

    .. math::
        p_{t+1} = p_t - \\rho_t \\max(\\epsilon_2, \\text{RMS}(p_t))\\,\\hat u_t
        - \\eta_t \\lambda p_t,\\qquad \\rho_t = \\min(\\eta_t, 1/\\sqrt{t})

    with :math:`\\hat u_t` from :func:`fnopt.scale_by_factored_rms` (leaf by leaf:
    gradient over the root of the factored second moment, RMS-clipped at ``d``),
    :math:`(\\epsilon_1, \\epsilon_2)` = ``eps`` and :math:`\\lambda` = ``weight_decay``.
    Built as ``chain(scale_by_factored_rms, scale_by_param_block_rms,
    scale_by_learning_rate(rho_t))`` plus the decay; the state records
    :math:`\\rho_t` as the learning rate.

    Args:
      learning_rate: :math:`\\eta` >= 0 (a cap on the relative step) or a schedule.
      beta2_decay: exponent of :math:`1 - \\beta_{2,t} = t^{c}`, <= 0.
      eps: :math:`(\\epsilon_1, \\epsilon_2)`; ``None`` for :math:`\\epsilon_1` is the
        dtype's machine epsilon.
      d: clipping threshold >= 1.
      weight_decay: :math:`\\lambda` >= 0, decoupled (multiplied by the raw rate).
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    Two steps on :math:`f(p) = \\|p\\|^2`:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adafactor(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.7098, -1.7038])

    Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
    ICML 2018.
    """
    check_bool("maximize", maximize)
    _check_lr(learning_rate)
    check_nonnegative("weight_decay", weight_decay)
    if not (isinstance(eps, tuple) and len(eps) == 2):
        raise TypeError(f"eps: expected a pair (eps1 or None, eps2), got {eps!r}")
    eps1, eps2 = eps
    if eps1 is not None:
        check_nonnegative("eps[0]", eps1)
    check_nonnegative("eps[1]", eps2)
    base: Callable[[int], Any] = (
        learning_rate if callable(learning_rate) else (lambda count: learning_rate)
    )

    def relative_step(count: int) -> Any:
        return min(base(count), 1.0 / (count + 1) ** 0.5)

    blocks: list[Transform] = [_t.scale(-1.0)] if maximize else []
    blocks += [
        _t.scale_by_factored_rms(beta2_decay, eps1, d),
        _t.scale_by_param_block_rms(eps2),
        _t.scale_by_learning_rate(relative_step),
    ]
    if weight_decay:
        blocks.append(_lr_weight_decay(learning_rate, weight_decay))
    return descent(_t.chain(*blocks))


@torch_spellings()
def muon(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    eps: float = 1e-7,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    maximize: bool = False,
    ns_dtype: Any = None,
) -> Descent:
    """Muon, momentum orthogonalised by Newton-Schulz (torch.optim.Muon), for params
    whose leaves are all matrices.

    :math:`p_{t+1} = p_t - \\eta\\lambda p_t - \\eta\\,s\\,\\text{NS}(d_t)` with the
    momentum direction :math:`d_t`, the orthogonalisation NS and the shape factor
    :math:`s` of :func:`fnopt.scale_by_muon`; :math:`\\lambda` = ``weight_decay``
    (decoupled, torch's default 0.1). torch runs the iteration in bfloat16; fnopt in
    the params' dtype unless ``ns_dtype="bfloat16"`` (torch's arithmetic, matching
    torch.optim.Muon to bfloat16's precision). For a network, send the matrices to
    Muon and the rest (biases, embeddings) to AdamW with :func:`fnopt.partition`.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      weight_decay: :math:`\\lambda` >= 0.
      momentum: in [0, 1].
      eps: floor of the Frobenius norm before the iteration.
      nesterov: Nesterov momentum.
      ns_coefficients: the iteration's :math:`(a, b, c)`.
      ns_steps: number of iterations.
      adjust_lr_fn: ``None``/``"original"`` (:math:`s = \\sqrt{\\max(1, m/n)}`) or
        ``"match_rms_adamw"`` (:math:`s = 0.2\\sqrt{\\max(m, n)}`).
      maximize: maximise the objective.
      ns_dtype: the Newton-Schulz iteration's dtype: ``None`` (the params') or
        ``"bfloat16"`` as torch (torch params), ``"float16"``, ``"float32"``, ``"float64"``.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    The update is orthogonalised: both diagonal entries move by about the same amount
    although the gradient of the second is ten times smaller:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.muon(0.1, weight_decay=0.0)
    >>> p = np.array([[1.0, 0.0], [0.0, 0.1]])
    >>> p, s = opt.step(p, lambda p: ((p * p).sum(), 2 * p), opt.init(p))
    >>> np.round(p, 3)
    array([[0.93 , 0.   ],
           [0.   , 0.029]])

    Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024.
    """
    check_bool("nesterov", nesterov)
    return _build(
        [_t.scale_by_muon(momentum, nesterov=nesterov, ns_coefficients=ns_coefficients,
                          ns_steps=ns_steps, eps=eps, adjust_lr_fn=adjust_lr_fn,
                          ns_dtype=ns_dtype)],
        learning_rate, weight_decay=weight_decay, decoupled=True, maximize=maximize,
    )


@torch_spellings()
def lamb(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> Descent:
    """LAMB, layer-wise adaptive Adam for large batches (not in torch.optim; optax's
    composition and defaults).

    :math:`d_t = \\hat m_t / (\\sqrt{\\hat v_t} + \\epsilon) + \\lambda p_t` (Adam's
    direction plus decoupled weight decay), then per leaf
    :math:`p_{t+1} = p_t - \\eta\\,\\frac{\\|p_t\\|}{\\|d_t\\|} d_t`. Built as
    ``chain(scale_by_adam, add_decayed_weights, scale_by_trust_ratio,
    scale_by_learning_rate)``.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      b1, b2: moment decays in [0, 1).
      eps: added outside the square root (default 1e-6, as optax and the paper).
      weight_decay: :math:`\\lambda` >= 0.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.lamb(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.6991, -1.6983])

    You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", ICLR 2020.
    """
    check_nonnegative("weight_decay", weight_decay)
    scaling = [_t.scale_by_adam(b1, b2, eps)]
    if weight_decay:
        scaling.append(_t.add_decayed_weights(weight_decay))
    scaling.append(_t.scale_by_trust_ratio())
    return _build(scaling, learning_rate, maximize=maximize)


@torch_spellings()
def lars(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    weight_decay: float = 0.0,
    trust_coefficient: float = 1e-3,
    eps: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    maximize: bool = False,
) -> Descent:
    """LARS, layer-wise adaptive rate scaling (not in torch.optim; optax's composition
    and defaults).

    :math:`d_t = g_t + \\lambda p_t`, per leaf
    :math:`d_t \\leftarrow c\\,\\frac{\\|p_t\\|}{\\|d_t\\| + \\epsilon} d_t`, then momentum
    on the scaled step: :math:`b_t = \\mu b_{t-1} + \\eta d_t`,
    :math:`p_{t+1} = p_t - b_t` (Nesterov: :math:`\\eta d_t + \\mu b_t`). Built as
    ``chain(add_decayed_weights, scale_by_trust_ratio, scale_by_learning_rate, trace)``.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      weight_decay: :math:`\\lambda` >= 0.
      trust_coefficient: :math:`c` >= 0.
      eps: added to the update norm.
      momentum: :math:`\\mu` in [0, 1].
      nesterov: Nesterov momentum.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.lars(1.0, trust_coefficient=0.1)
    >>> p, s = opt.step(np.array([3.0, 4.0]), lambda p: (p @ p, 2 * p),
    ...                 opt.init(np.array([3.0, 4.0])))
    >>> p  # a step of 0.1 * |p| = 0.5 along the gradient
    array([2.7, 3.6])

    You et al., "Large Batch Training of Convolutional Networks", 2017.
    """
    check_bool("nesterov", nesterov)
    check_bool("maximize", maximize)
    _check_lr(learning_rate)
    check_nonnegative("weight_decay", weight_decay)
    check_unit_interval("momentum", momentum, closed=True)
    blocks: list[Transform] = [_t.scale(-1.0)] if maximize else []
    if weight_decay:
        blocks.append(_t.add_decayed_weights(weight_decay))
    blocks += [
        _t.scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
        _t.scale_by_learning_rate(learning_rate),
    ]
    if momentum:
        blocks.append(_t.trace(momentum, nesterov=nesterov))
    return descent(_t.chain(*blocks))


@torch_spellings()
def adabelief(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> Descent:
    """AdaBelief (not in torch.optim; the paper's algorithm and defaults).

    Adam with the second moment of the prediction error :math:`g_t - m_t` in place of
    :math:`g_t^2` (see :func:`fnopt.scale_by_belief`):
    :math:`p_{t+1} = p_t - \\eta\\,\\hat m_t / (\\sqrt{\\hat s_t} + \\epsilon)`; weight
    decay coupled (L2 on the gradient) or decoupled.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      b1, b2: decays in [0, 1).
      eps: the paper's :math:`\\epsilon` (default 1e-16).
      weight_decay: >= 0.
      decoupled_weight_decay: AdamW-style decay.
      maximize: maximise the objective.

    Returns:
      A :class:`fnopt.Descent`: a first-order optimizer that is also a transform.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adabelief(0.1)
    >>> p, grad_fn = np.array([1.0, -2.0]), lambda p: (p @ p, 2 * p)
    >>> s = opt.init(p)
    >>> for _ in range(2):
    ...     p, s = opt.step(p, grad_fn, s)
    >>> np.round(p, 4)
    array([ 0.7727, -1.7723])

    Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients", NeurIPS 2020.
    """
    return _build(
        [_t.scale_by_belief(b1, b2, eps)], learning_rate,
        weight_decay=weight_decay, decoupled=decoupled_weight_decay, maximize=maximize,
    )
