"""The optax optimizers that torch.optim has no counterpart of, with optax's names,
defaults and arithmetic: :func:`adamaxw`, :func:`amsgrad`, :func:`nadamw`,
:func:`fromage`, :func:`noisy_sgd`, :func:`optimistic_adam`,
:func:`optimistic_gradient_descent`, :func:`polyak_sgd`, :func:`sign_sgd`,
:func:`signum` and :func:`sm3`.

Each is one :func:`fnopt.chain` of transforms, lifted by :func:`fnopt.descent`; tests
compare each with optax's own function step by step (tests/test_optax_parity.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from fnopt import transforms as _t
from fnopt import tree
from fnopt._base import (
    Descent,
    Params,
    ScalarOrSchedule,
    State,
    Transform,
    Updates,
    check_bool,
    check_int,
    check_nonnegative,
    check_unit_interval,
)
from fnopt.optimizers._names import torch_spellings
from fnopt.optimizers.first_order import descent

__all__ = [
    "adamaxw", "amsgrad", "nadamw", "fromage", "noisy_sgd", "optimistic_adam",
    "optimistic_adam_v2", "optimistic_gradient_descent", "polyak_sgd", "sign_sgd", "signum", "sm3",
]


def _lift(maximize: bool, *blocks: Transform) -> Descent:
    """:func:`descent` of ``chain(*blocks)``, the gradient negated first with
    ``maximize`` (torch.optim's option, which every fnopt alias takes)."""
    check_bool("maximize", maximize)
    head = [_t.scale(-1.0)] if maximize else []
    return descent(_t.chain(*head, *blocks))


def decayed_weights(weight_decay: float, mask: Any = None) -> Transform:
    """``add_decayed_weights(weight_decay)``, applied only to the leaves where ``mask``
    (a pytree of bools or ``params -> mask``; optax's ``mask``) is true."""
    t = _t.add_decayed_weights(weight_decay)
    return t if mask is None else _t.masked(t, mask)


@torch_spellings()
def adamaxw(
    learning_rate: ScalarOrSchedule = 2e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
    mask: Any = None,
    maximize: bool = False,
) -> Descent:
    """Adamax with decoupled weight decay (optax.adamaxw).

    :math:`p_{t+1} = p_t - \\eta\\,(\\hat m_t / u_t + \\lambda p_t)` with Adamax's
    :math:`\\hat m_t, u_t` (:func:`fnopt.scale_by_adamax`). Built as
    ``chain(scale_by_adamax, add_decayed_weights, scale_by_learning_rate)``.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      b1, b2: decays in [0, 1).
      eps: added to :math:`|g_t|`.
      weight_decay: :math:`\\lambda` >= 0 (optax's default 1e-4).
      mask: the leaves to decay (a pytree of bools, or ``params -> mask``); ``None``: all.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.adamaxw(0.1, weight_decay=0.0)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 6)
    array([0.9])

    Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    return _lift(
        maximize, _t.scale_by_adamax(b1, b2, eps), decayed_weights(weight_decay, mask),
        _t.scale_by_learning_rate(learning_rate))


@torch_spellings()
def amsgrad(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    maximize: bool = False,
) -> Descent:
    """AMSGrad as optax.amsgrad: Adam with the running maximum of the bias-corrected
    second moment (:func:`fnopt.transforms.scale_by_amsgrad`). torch's
    ``Adam(amsgrad=True)`` is ``fnopt.adam(amsgrad=True)`` (the maximum of the
    uncorrected moment; the two differ from the second step on).

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2: moment decays in [0, 1).
      eps: outside the square root; eps_root: inside it.
      mu_dtype: the dtype of the first moment.
      bias_correction_mu, bias_correction_nu: whether to correct each moment.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.amsgrad(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 6)
    array([0.9])

    Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018.
    """
    return _lift(
        maximize,
        _t.scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu,
                            bias_correction_nu),
        _t.scale_by_learning_rate(learning_rate))


@torch_spellings()
def nadamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: float = 1e-4,
    mask: Any = None,
    maximize: bool = False,
) -> Descent:
    """NAdamW as optax.nadamw: optax's Nesterov Adam with decoupled weight decay,
    :math:`p_{t+1} = p_t - \\eta\\,(\\hat m_t / (\\sqrt{\\hat v_t + \\epsilon_r} +
    \\epsilon) + \\lambda p_t)`,
    :math:`\\hat m_t = \\beta_1 m_t/(1-\\beta_1^{t+1}) + (1-\\beta_1) g_t/(1-\\beta_1^t)`.
    (torch's NAdam, with its momentum schedule, is :func:`fnopt.nadam`.)

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1, b2: moment decays in [0, 1).
      eps: outside the square root; eps_root: inside it.
      mu_dtype: the dtype of the first moment.
      weight_decay: :math:`\\lambda` >= 0 (optax's default 1e-4).
      mask: the leaves to decay; ``None``: all.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.nadamw(0.1, weight_decay=0.0)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 4)
    array([0.8526])

    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    """
    return _lift(
        maximize,
        _t.scale_by_adam(b1, b2, eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=True),
        decayed_weights(weight_decay, mask), _t.scale_by_learning_rate(learning_rate))


class _FromageState(NamedTuple):
    count: int  # type: ignore[assignment]


def _fromage_pull(learning_rate: ScalarOrSchedule) -> Transform:
    """``m u + (m - 1) p`` with :math:`m = 1/\\sqrt{1 + \\eta_t^2}`: Fromage's
    rescaling of the new params, :math:`p + u \\to m (p + u)`."""

    def init(params: Params) -> _FromageState:
        del params
        return _FromageState(0)

    def update(
        updates: Updates, state: State, params: Params | None = None
    ) -> tuple[Updates, State]:
        if params is None:
            raise ValueError("fromage: update needs params")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        m = 1.0 / (1.0 + lr**2) ** 0.5
        return tree.axpy(m - 1.0, params, tree.scale(m, updates)), _FromageState(state.count + 1)

    return Transform(init, update, name="fromage_pull",
                     hyperparams={"learning_rate": learning_rate})


@torch_spellings()
def fromage(
    learning_rate: ScalarOrSchedule = 1e-2, *, min_norm: float = 1e-6, maximize: bool = False,
) -> Descent:
    """Fromage, the Frobenius matched gradient descent (optax.fromage).

    .. math::
        p_{t+1} = \\frac{1}{\\sqrt{1+\\eta^2}}\\Big(p_t - \\eta\\,
        \\frac{\\|p_t\\|}{\\|g_t\\|}\\,g_t\\Big)

    leaf by leaf (norms floored at ``min_norm``). Built as
    ``chain(scale_by_trust_ratio(min_norm), scale_by_learning_rate(η))`` followed by
    the rescaling :math:`p + u \\to (p + u)/\\sqrt{1+\\eta^2}`; the state records
    :math:`\\eta`.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      min_norm: the floor of the norms, >= 0.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.fromage(1.0)
    >>> p, s = opt.step(np.array([3.0, 4.0]), lambda p: (p @ p, 2 * p),
    ...                 opt.init(np.array([3.0, 4.0])))
    >>> np.round(p, 6) + 0.0
    array([0., 0.])

    Bernstein et al., "On the distance between two neural networks and the stability of
    learning", NeurIPS 2020.
    """
    check_nonnegative("learning_rate", learning_rate)
    check_nonnegative("min_norm", min_norm)
    return _lift(maximize, _t.scale_by_trust_ratio(min_norm),
                 _t.scale_by_learning_rate(learning_rate), _fromage_pull(learning_rate))


@torch_spellings()
def noisy_sgd(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    eta: float = 0.01,
    gamma: float = 0.55,
    seed: int | None = None,
    maximize: bool = False,
) -> Descent:
    """SGD with annealed Gaussian gradient noise (optax.noisy_sgd):
    :math:`p_{t+1} = p_t - \\eta_t (g_t + \\sigma_t\\xi_t)`,
    :math:`\\sigma_t^2 = \\text{eta} / (1+t)^{\\gamma}` (:func:`fnopt.add_noise`;
    the draws are NumPy's, a pure function of ``seed`` and the step, not JAX's).

    Args:
      learning_rate: a number >= 0 or a schedule.
      eta: the noise scale >= 0.
      gamma: the annealing exponent >= 0.
      seed: an int >= 0 (optax's ``key``/``seed``); ``None``: 0.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.noisy_sgd(0.1, eta=0.0)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> p
    array([0.8])

    Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep
    Networks", 2015.
    """
    seed = 0 if seed is None else check_int("seed", seed, 0)
    return _lift(maximize, _t.add_noise(eta, gamma, seed),
                 _t.scale_by_learning_rate(learning_rate))


@torch_spellings()
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule = 1e-3, *, alpha: float = 1.0, beta: float = 1.0,
    maximize: bool = False,
) -> Descent:
    """Optimistic gradient descent (optax.optimistic_gradient_descent), for min-max
    games: :math:`p_{t+1} = p_t - \\eta((\\alpha+\\beta) g_t - \\beta g_{t-1})`
    (:func:`fnopt.scale_by_optimistic_gradient`).

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      alpha: the weight of the current gradient, >= 0.
      beta: the optimism, >= 0.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.optimistic_gradient_descent(0.1)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> p
    array([0.8])

    Mokhtari et al., "A Unified Analysis of Extra-gradient and Optimistic Gradient
    Methods for Saddle Point Problems", AISTATS 2020.
    """
    return _lift(maximize, _t.scale_by_optimistic_gradient(alpha, beta),
                 _t.scale_by_learning_rate(learning_rate))


@torch_spellings()
def optimistic_adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    optimism: float | None = None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
    maximize: bool = False,
) -> Descent:
    """Optimistic Adam (optax.optimistic_adam): the optimistic correction applied to
    Adam's direction :math:`d_t` (optax's Nesterov form by default),
    :math:`p_{t+1} = p_t - ((\\eta + o) d_t - o\\,d_{t-1})`, :math:`o` = ``optimism``
    (default: ``learning_rate``).

    Args:
      learning_rate: :math:`\\eta` >= 0, or a schedule (then ``optimism=None``).
      optimism: :math:`o` >= 0; ``None``: :math:`\\eta`.
      b1, b2, eps, eps_root, mu_dtype, nesterov: Adam's, see :func:`fnopt.scale_by_adam`.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.optimistic_adam(0.1, nesterov=False)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 6)
    array([0.9])

    Daskalakis et al., "Training GANs with Optimism", ICLR 2018.
    """
    check_nonnegative("learning_rate", learning_rate)
    if optimism is not None:
        check_nonnegative("optimism", optimism)
    if callable(learning_rate) and optimism is not None:
        raise TypeError("optimism: with a schedule learning_rate leave optimism=None "
                        "(the optimism is then the scheduled rate)")
    # (lr + o) d_t - o d_{t-1} = lr ((1 + o/lr) d_t - (o/lr) d_{t-1}): the rate in the state
    beta = 1.0
    if optimism is not None and not callable(learning_rate):
        beta = optimism / learning_rate if learning_rate else 0.0
    return _lift(
        maximize,
        _t.scale_by_adam(b1, b2, eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        _t.scale_by_optimistic_gradient(1.0, beta), _t.scale_by_learning_rate(learning_rate))


@torch_spellings()
def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
    maximize: bool = False,
) -> Descent:
    """Optimistic Adam, optax's second form (optax.optimistic_adam_v2):
    :math:`p_{t+1} = p_t - \\eta((\\alpha + \\beta) d_t - \\beta d_{t-1})` with Adam's
    direction :math:`d_t` (:func:`fnopt.scale_by_optimistic_gradient`).

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      alpha, beta: the optimistic weights, >= 0.
      b1, b2, eps, eps_root, mu_dtype, nesterov: Adam's, see :func:`fnopt.scale_by_adam`.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.optimistic_adam_v2(0.1, nesterov=False)
    >>> p, s = opt.step(np.array([1.0]), lambda p: (p @ p, 2 * p), opt.init(np.array([1.0])))
    >>> np.round(p, 6)
    array([0.9])

    Daskalakis et al., "Training GANs with Optimism", ICLR 2018.
    """
    return _lift(
        maximize,
        _t.scale_by_adam(b1, b2, eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        _t.scale_by_optimistic_gradient(alpha, beta), _t.scale_by_learning_rate(learning_rate))


@torch_spellings({"learning_rate": "scaling", "lr": "scaling"})
def polyak_sgd(
    max_learning_rate: float = 1.0,
    *,
    scaling: ScalarOrSchedule = 1.0,
    f_min: float = 0.0,
    eps: float = 0.0,
    variant: str = "sps",
    maximize: bool = False,
) -> Descent:
    """SGD with the Polyak step size (optax.polyak_sgd):
    :math:`p_{t+1} = p_t - \\min(\\frac{f(p_t) - f^*}{\\|s g_t\\|^2 + \\epsilon},
    \\eta_{\\max})\\,s\\,g_t` (:func:`fnopt.scale_by_polyak`; :math:`s` = ``scaling``).
    It reads the loss of each step, which :meth:`fnopt.Descent.step` and
    :func:`fnopt.fixed_point` pass on; driven as a transform, call
    ``update(grads, state, params, value=loss)``.

    Args:
      max_learning_rate: :math:`\\eta_{\\max}` >= 0.
      scaling: :math:`s` >= 0, or a schedule (the rate of optax's inner ``sgd``;
        ``learning_rate=`` is accepted for it, and the state records it as the
        learning rate).
      f_min: :math:`f^*`, a lower bound on the loss.
      eps: >= 0, added to the squared norm.
      variant: ``"sps"`` or ``"sps+"`` (the gap clipped at 0).
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    One step on :math:`f(p) = \\|p\\|^2` lands on the minimum:

    >>> import numpy as np, fnopt
    >>> opt = fnopt.polyak_sgd(max_learning_rate=10.0)
    >>> p, s = opt.step(np.array([1.0, 2.0]), lambda p: (p @ p, 2 * p),
    ...                 opt.init(np.array([1.0, 2.0])))
    >>> np.round(p, 6) + 0.0
    array([0.5, 1. ])

    Loizou et al., "Stochastic Polyak Step-size for SGD", AISTATS 2021.
    """
    check_nonnegative("scaling", scaling)
    return _lift(
        maximize, _t.scale_by_learning_rate(scaling),
        _t.scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps,
                           variant=variant, maximize=maximize))


@torch_spellings()
def sign_sgd(learning_rate: ScalarOrSchedule = 1e-3, *, maximize: bool = False) -> Descent:
    """signSGD (optax.sign_sgd): :math:`p_{t+1} = p_t - \\eta\\,\\operatorname{sign}(g_t)`.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.sign_sgd(0.1)
    >>> p, s = opt.step(np.array([1.0, -3.0]), lambda p: (p @ p, 2 * p),
    ...                 opt.init(np.array([1.0, -3.0])))
    >>> p
    array([ 0.9, -2.9])

    Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems", ICML 2018.
    """
    return _lift(maximize, _t.scale_by_sign(), _t.scale_by_learning_rate(learning_rate))


@torch_spellings()
def signum(
    learning_rate: ScalarOrSchedule = 1e-3, *, beta: float = 0.9,
    accumulator_dtype: Any = None, maximize: bool = False,
) -> Descent:
    """Signum, signSGD with momentum (optax.signum):
    :math:`m_t = \\beta m_{t-1} + (1-\\beta) g_t`,
    :math:`p_{t+1} = p_t - \\eta\\,\\operatorname{sign}(m_t)`. Built as
    ``chain(ema(beta, debias=False), scale_by_sign, scale_by_learning_rate)``.

    Args:
      learning_rate: a number >= 0 or a schedule.
      beta: the momentum decay in [0, 1].
      accumulator_dtype: the dtype of the momentum.
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.signum(0.1)
    >>> p, s = opt.step(np.array([1.0, -3.0]), lambda p: (p @ p, 2 * p),
    ...                 opt.init(np.array([1.0, -3.0])))
    >>> p
    array([ 0.9, -2.9])

    Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems", ICML 2018.
    """
    check_unit_interval("beta", beta, closed=True)
    return _lift(
        maximize, _t.ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        _t.scale_by_sign(), _t.scale_by_learning_rate(learning_rate))


@torch_spellings()
def sm3(
    learning_rate: ScalarOrSchedule = 1e-2, *, momentum: float = 0.9, maximize: bool = False,
) -> Descent:
    """SM3 (optax.sm3): memory-efficient adaptive rates from per-axis accumulators
    (:func:`fnopt.scale_by_sm3`), :math:`p_{t+1} = p_t - \\eta\\,m_t`.

    Args:
      learning_rate: :math:`\\eta` >= 0 or a schedule.
      momentum: the momentum decay in [0, 1].
      maximize: maximise the objective (the gradient is negated first).

    Returns:
      A :class:`fnopt.Descent`.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.sm3(0.1, momentum=0.0)
    >>> p, s = opt.step(np.array([1.0, -3.0]), lambda p: (p @ p, 2 * p),
    ...                 opt.init(np.array([1.0, -3.0])))
    >>> np.round(p, 6)
    array([ 0.9, -2.9])

    Anil et al., "Memory-Efficient Adaptive Optimization", NeurIPS 2019.
    """
    check_unit_interval("momentum", momentum, closed=True)
    return _lift(maximize, _t.scale_by_sm3(momentum), _t.scale_by_learning_rate(learning_rate))
