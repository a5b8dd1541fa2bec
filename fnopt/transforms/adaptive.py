"""Adaptive scalings from running moments of the gradient (torch.optim's conventions):
Adam, Adamax, NAdam, RAdam, RMSprop, Adagrad, Adadelta, Lion, Rprop, AdaBelief."""


from __future__ import annotations

import math
from typing import Any, NamedTuple

from fnopt import tree
from fnopt._base import (
    Params,
    State,
    Transform,
    Updates,
    check_bool,
    check_nonnegative,
    check_unit_interval,
)
from fnopt.transforms._common import (
    Direction,
    _as_dtype,
    _builtin,
    _dst,
    _dtype_name,
    _flat,
    _scaling,
)

# -- adaptive scalings -----------------------------------------------------------------


class ScaleByAdamState(NamedTuple):
    """``mu``, ``nu``: first and second moment estimates; ``nu_max``: the running
    maximum of ``nu`` (AMSGrad; ``None`` without it)."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any
    nu_max: Any


def _optax_form(amsgrad: bool, eps_root: float, nesterov: bool) -> bool:
    """Whether :func:`scale_by_adam` takes optax's form (``eps_root`` or ``nesterov``)."""
    check_bool("amsgrad", amsgrad)
    check_bool("nesterov", nesterov)
    check_nonnegative("eps_root", eps_root)
    if (nesterov or eps_root) and amsgrad:
        raise ValueError("amsgrad: not combined with nesterov or eps_root; use "
                         "fnopt.scale_by_amsgrad(eps_root=...) for optax's AMSGrad")
    return bool(nesterov or eps_root)


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    amsgrad: bool = False,
    mu_dtype: Any = None,
    eps_root: float = 0.0,
    nesterov: bool = False,
) -> Transform:
    """Rescale updates by Adam's moment estimates (torch.optim.Adam arithmetic).

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,\\quad
        u_t = \\frac{m_t / (1-\\beta_1^t)}{\\sqrt{\\hat v_t} / \\sqrt{1-\\beta_2^t} + \\epsilon}

    with :math:`\\hat v_t = v_t`, or :math:`\\max(\\hat v_{t-1}, v_t)` with
    ``amsgrad=True`` (the maximum of the *uncorrected* :math:`v`, as torch does).
    :math:`\\beta_1, \\beta_2, \\epsilon` = ``b1, b2, eps``.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator *outside* the square root, >= 0.
      amsgrad: use the AMSGrad maximum of the second moment.
      mu_dtype: the dtype of the first moment :math:`m` (optax's option), e.g.
        ``"float32"`` to keep it in float32 for bfloat16 params; ``None`` (default):
        the params' dtype. A name or a NumPy/torch dtype. The update has the
        gradient's dtype.
      eps_root, nesterov: optax's options (:math:`\\sqrt{\\hat v_t + \\epsilon_r}`;
        optax's NAdam): the transform is then
        :func:`fnopt.transforms.adam_optax.optax_adam` (without ``amsgrad``).

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByAdamState`.

    >>> import numpy as np
    >>> t = scale_by_adam()
    >>> u, s = t.update(np.array([0.5, -2.0]), t.init(np.zeros(2)))
    >>> np.round(u, 6)
    array([ 1., -1.])

    Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015;
    Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
    """
    if _optax_form(amsgrad, eps_root, nesterov):
        from fnopt.transforms.adam_optax import optax_adam
        return optax_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    mu_dtype = _dtype_name("mu_dtype", mu_dtype)

    def init(params: Params) -> ScaleByAdamState:
        zeros = tree.zeros_like
        return ScaleByAdamState(
            0, zeros(params, dtype=mu_dtype), zeros(params), zeros(params) if amsgrad else None
        )

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        # m <- m + (1 - b1) (g - m);  v <- b2 v + (1 - b2) g^2
        gm = g if mu_dtype is None else _as_dtype(be, g, mu)
        mu = be.lerp(mu, gm, 1.0 - b1, _dst(mu, inplace))
        nu = be.scale(nu, b2, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - b2, nu)
        nu_max = nu
        if amsgrad:
            nu_max = spec.flatten_up_to(state.nu_max)
            nu_max = be.maximum(nu_max, nu, _dst(nu_max, inplace))
        bc1 = 1.0 - b1**t
        bc2_sqrt = (1.0 - b2**t) ** 0.5
        # denom = sqrt(v_hat) / sqrt(1 - b2^t) + eps;  u = (m / (1 - b1^t)) / denom
        denom = be.sqrt(nu_max)
        denom = be.scale(denom, 1.0 / bc2_sqrt, denom)
        denom = be.add_scalar(denom, eps, denom)
        if mu_dtype is None:  # u = (1 / (1 - b1^t)) * (m / denom), as torch's addcdiv
            terms: tuple[Any, ...] = ((1.0 / bc1, mu, denom),)
        else:
            out = _as_dtype(be, be.scale(mu, 1.0 / bc1), g)
            terms = ((1.0, be.div(out, denom, out), None),)
        return Direction(terms, spec, be), ScaleByAdamState(
            t,
            spec.unflatten(mu),
            spec.unflatten(nu),
            spec.unflatten(nu_max) if amsgrad else None,
        )

    return _scaling(
        init, direction, "scale_by_adam", b1=b1, b2=b2, eps=eps, amsgrad=amsgrad,
        mu_dtype=mu_dtype,
    )


class ScaleByAdamaxState(NamedTuple):
    """``mu``: first moment; ``nu``: exponentially weighted infinity norm."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def scale_by_adamax(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Transform:
    """Rescale updates by the infinity-norm variant of Adam (torch.optim.Adamax).

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        u_t' = \\max(\\beta_2 u_{t-1}', |g_t| + \\epsilon),\\quad
        u_t = \\frac{m_t}{(1-\\beta_1^t)\\,u_t'}

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the infinity norm, in [0, 1).
      eps: added to :math:`|g_t|` inside the maximum, >= 0.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_adamax(eps=0.0)
    >>> t.update(np.array([2.0]), t.init(np.zeros(1)))[0]
    array([1.])

    Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleByAdamaxState:
        return ScaleByAdamaxState(0, tree.zeros_like(params), tree.zeros_like(params))

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        mu = be.lerp(mu, g, 1.0 - b1, _dst(mu, inplace))
        nu = be.scale(nu, b2, _dst(nu, inplace))
        g_abs = be.abs(g)
        nu = be.maximum(nu, be.add_scalar(g_abs, eps, g_abs), nu)
        terms = ((1.0 / (1.0 - b1**t), mu, nu),)  # (m / (1 - b1^t)) / u'
        return Direction(terms, spec, be), ScaleByAdamaxState(
            t, spec.unflatten(mu), spec.unflatten(nu)
        )

    return _scaling(init, direction, "scale_by_adamax", b1=b1, b2=b2, eps=eps)


class ScaleByNadamState(NamedTuple):
    """``mu``, ``nu``: moment estimates; ``mu_product``: :math:`\\prod_{i\\le t}\\mu_i`."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any
    mu_product: float


def scale_by_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum_decay: float = 4e-3
) -> Transform:
    """Rescale updates by Nesterov-accelerated Adam (torch.optim.NAdam arithmetic).

    With the momentum schedule :math:`\\mu_t = \\beta_1(1 - \\tfrac12 0.96^{t\\psi})`
    (:math:`\\psi` = ``momentum_decay``) and :math:`\\Pi_t = \\prod_{i\\le t}\\mu_i`:

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,\\quad
        d_t = \\sqrt{v_t / (1-\\beta_2^t)} + \\epsilon,

        u_t = \\frac{1-\\mu_t}{1-\\Pi_t}\\frac{g_t}{d_t}
            + \\frac{\\mu_{t+1}}{1-\\Pi_{t+1}}\\frac{m_t}{d_t}

    Args:
      b1, b2: moment decays in [0, 1).
      eps: added outside the square root, >= 0.
      momentum_decay: :math:`\\psi` >= 0.

    Returns:
      A :class:`fnopt.Transform`. (torch keeps :math:`\\Pi_t` in float32 unless the
      default dtype is float64; fnopt keeps it as a Python float.)

    >>> import numpy as np
    >>> t = scale_by_nadam()
    >>> np.round(t.update(np.array([0.5, -2.0]), t.init(np.zeros(2)))[0], 4)
    array([ 1.0565, -1.0565])

    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("momentum_decay", momentum_decay)

    def init(params: Params) -> ScaleByNadamState:
        return ScaleByNadamState(0, tree.zeros_like(params), tree.zeros_like(params), 1.0)

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mom = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mom_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mom
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        mu = be.lerp(mu, g, 1.0 - b1, _dst(mu, inplace))
        nu = be.scale(nu, b2, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - b2, nu)
        denom = be.scale(nu, 1.0 / (1.0 - b2**t))
        denom = be.add_scalar(be.sqrt(denom, denom), eps, denom)
        c_g = (1.0 - mom) / (1.0 - mu_product)
        c_m = mom_next / (1.0 - mu_product * mom_next)
        terms = ((c_g, g, denom), (c_m, mu, denom))
        return Direction(terms, spec, be), ScaleByNadamState(
            t, spec.unflatten(mu), spec.unflatten(nu), mu_product
        )

    return _scaling(
        init, direction, "scale_by_nadam", b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay
    )


class ScaleByRadamState(NamedTuple):
    """``mu``, ``nu``: moment estimates."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Transform:
    """Rescale updates by rectified Adam (torch.optim.RAdam arithmetic).

    With :math:`\\rho_\\infty = 2/(1-\\beta_2) - 1` and
    :math:`\\rho_t = \\rho_\\infty - 2t\\beta_2^t/(1-\\beta_2^t)`:
    :math:`u_t = \\hat m_t\\, r_t \\sqrt{1-\\beta_2^t} / (\\sqrt{v_t} + \\epsilon)` when
    :math:`\\rho_t > 5`, with the rectification
    :math:`r_t = \\sqrt{\\frac{(\\rho_t-4)(\\rho_t-2)\\rho_\\infty}{(\\rho_\\infty-4)
    (\\rho_\\infty-2)\\rho_t}}`; otherwise :math:`u_t = \\hat m_t` (SGD with momentum).
    :math:`\\hat m_t = m_t/(1-\\beta_1^t)`; moments as in :func:`scale_by_adam`.

    Args:
      b1, b2: moment decays in [0, 1).
      eps: added outside the square root, >= 0.

    Returns:
      A :class:`fnopt.Transform`.

    For the first steps (:math:`\\rho_t \\le 5`) the update is the corrected momentum:

    >>> import numpy as np
    >>> t = scale_by_radam()
    >>> t.update(np.array([0.5, -2.0]), t.init(np.zeros(2)))[0]
    array([ 0.5, -2. ])

    Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def init(params: Params) -> ScaleByRadamState:
        return ScaleByRadamState(0, tree.zeros_like(params), tree.zeros_like(params))

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        mu = be.lerp(mu, g, 1.0 - b1, _dst(mu, inplace))
        nu = be.scale(nu, b2, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - b2, nu)
        bc1 = 1.0 - b1**t
        bc2 = 1.0 - b2**t
        rho_t = rho_inf - 2.0 * t * b2**t / bc2
        terms: tuple[Any, ...] = ((1.0 / bc1, mu, None),)  # m_hat (SGD with momentum)
        if rho_t > 5.0:
            rect = (
                (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
            ) ** 0.5
            denom = be.sqrt(nu)
            denom = be.add_scalar(denom, eps, denom)
            terms = ((bc2**0.5 * rect / bc1, mu, denom),)
        return Direction(terms, spec, be), ScaleByRadamState(
            t, spec.unflatten(mu), spec.unflatten(nu)
        )

    return _scaling(init, direction, "scale_by_radam", b1=b1, b2=b2, eps=eps)


class ScaleByRmsState(NamedTuple):
    """``nu``: running average of squared gradients."""

    count: int  # type: ignore[assignment]
    nu: Any


class ScaleByStddevState(NamedTuple):
    """``mu``: running average of gradients; ``nu``: of squared gradients."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def scale_by_rms(
    decay: float = 0.99,
    eps: float = 1e-8,
    *,
    centered: bool = False,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = False,
    bias_correction: bool = False,
) -> Transform:
    """Rescale updates by the root mean square of past gradients (RMSprop).

    :math:`v_t = \\alpha v_{t-1} + (1-\\alpha) g_t^2`,
    :math:`u_t = g_t / (\\sqrt{v_t} + \\epsilon)`, with :math:`\\alpha` = ``decay``
    (torch's ``alpha``), ``eps`` outside the root, :math:`v_0 = 0` (torch's
    conventions). ``centered=True`` is :func:`scale_by_stddev`. optax's options:
    ``initial_scale`` (:math:`v_0`), ``eps_in_sqrt`` (:math:`g_t/\\sqrt{v_t +
    \\epsilon}`, optax's default) and ``bias_correction`` (:math:`v_t / (1 -
    \\alpha^t)`).

    Args:
      decay: smoothing constant in [0, 1].
      eps: added outside the square root (inside with ``eps_in_sqrt``), >= 0.
      centered: divide by the estimated standard deviation instead.
      initial_scale: :math:`v_0` >= 0.
      eps_in_sqrt: put ``eps`` inside the square root (optax's default).
      bias_correction: divide :math:`v_t` by :math:`1-\\alpha^t`.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_rms(decay=0.75, eps=0.0)
    >>> t.update(np.array([3.0]), t.init(np.zeros(1)))[0]
    array([2.])

    Tieleman and Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine
    Learning, 2012.
    """
    check_bool("centered", centered)
    check_bool("eps_in_sqrt", eps_in_sqrt)
    check_bool("bias_correction", bias_correction)
    check_nonnegative("initial_scale", initial_scale)
    optax_form = bool(initial_scale or eps_in_sqrt or bias_correction)
    if centered:
        if optax_form:
            raise ValueError("centered: not combined with initial_scale, eps_in_sqrt or "
                             "bias_correction")
        return scale_by_stddev(decay, eps)
    check_unit_interval("decay", decay, closed=True)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleByRmsState:
        nu = tree.zeros_like(params)
        return ScaleByRmsState(0, tree.full_like(nu, initial_scale) if initial_scale else nu)

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        nu = spec.flatten_up_to(state.nu)
        nu = be.scale(nu, decay, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - decay, nu)
        t = state.count + 1
        if optax_form:
            v = be.scale(nu, 1.0 / (1.0 - decay**t)) if bias_correction and decay != 1 else nu
            denom = be.sqrt(be.add_scalar(v, eps)) if eps_in_sqrt else be.add_scalar(
                be.sqrt(v), eps)
        else:
            denom = be.sqrt(nu)
            denom = be.add_scalar(denom, eps, denom)
        return Direction(((1.0, g, denom),), spec, be), ScaleByRmsState(t, spec.unflatten(nu))

    hp: dict[str, Any] = {"decay": decay, "eps": eps}
    if optax_form:
        hp.update(initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
                  bias_correction=bias_correction)
    return _scaling(init, direction, "scale_by_rms", **hp)


def scale_by_stddev(decay: float = 0.99, eps: float = 1e-8) -> Transform:
    """Rescale updates by the estimated standard deviation of past gradients
    (centered RMSprop).

    :math:`m_t = \\alpha m_{t-1} + (1-\\alpha) g_t`,
    :math:`v_t = \\alpha v_{t-1} + (1-\\alpha) g_t^2`,
    :math:`u_t = g_t / (\\sqrt{v_t - m_t^2} + \\epsilon)` with :math:`\\alpha` = ``decay``.

    Args:
      decay: smoothing constant in [0, 1].
      eps: added outside the square root, >= 0.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_stddev(decay=0.5, eps=0.0)
    >>> t.update(np.array([0.5, -2.0]), t.init(np.zeros(2)))[0]
    array([ 2., -2.])

    Graves, "Generating Sequences With Recurrent Neural Networks", 2013, eq. (38)-(40).
    """
    check_unit_interval("decay", decay, closed=True)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleByStddevState:
        return ScaleByStddevState(0, tree.zeros_like(params), tree.zeros_like(params))

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        nu = be.scale(nu, decay, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - decay, nu)
        mu = be.lerp(mu, g, 1.0 - decay, _dst(mu, inplace))
        std = be.addcmul(nu, mu, mu, -1.0)
        std = be.add_scalar(be.sqrt(std, std), eps, std)
        return Direction(((1.0, g, std),), spec, be), ScaleByStddevState(
            state.count + 1, spec.unflatten(mu), spec.unflatten(nu)
        )

    return _scaling(init, direction, "scale_by_stddev", decay=decay, eps=eps)


class ScaleByAdagradState(NamedTuple):
    """``sum_of_squares``: accumulated squared gradients."""

    count: int  # type: ignore[assignment]
    sum_of_squares: Any


def scale_by_adagrad(initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> Transform:
    """Rescale updates by the root of the sum of all past squared gradients (Adagrad).

    :math:`s_t = s_{t-1} + g_t^2` (:math:`s_0` = ``initial_accumulator_value``),
    :math:`u_t = g_t / (\\sqrt{s_t} + \\epsilon)`.

    Args:
      initial_accumulator_value: starting value of the accumulator, >= 0.
      eps: added outside the square root, >= 0.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_adagrad(eps=0.0)
    >>> t.update(np.array([-4.0]), t.init(np.zeros(1)))[0]
    array([-1.])

    Duchi et al., "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 2011.
    """
    check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleByAdagradState:
        return ScaleByAdagradState(0, tree.full_like(params, initial_accumulator_value))

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        acc = spec.flatten_up_to(state.sum_of_squares)
        acc = be.addcmul(acc, g, g, 1.0, _dst(acc, inplace))
        denom = be.sqrt(acc)
        terms = ((1.0, g, be.add_scalar(denom, eps, denom)),)
        return Direction(terms, spec, be), ScaleByAdagradState(
            state.count + 1, spec.unflatten(acc)
        )

    return _scaling(
        init, direction, "scale_by_adagrad",
        initial_accumulator_value=initial_accumulator_value, eps=eps,
    )


class ScaleByAdadeltaState(NamedTuple):
    """``e_g``: running average of squared gradients; ``e_x``: of squared updates."""

    count: int  # type: ignore[assignment]
    e_g: Any
    e_x: Any


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> Transform:
    """Rescale updates with Adadelta's unit correction (torch.optim.Adadelta).

    .. math::
        E[g^2]_t = \\rho E[g^2]_{t-1} + (1-\\rho) g_t^2,\\quad
        u_t = \\frac{\\sqrt{E[\\Delta x^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}}\\,g_t,
        \\quad E[\\Delta x^2]_t = \\rho E[\\Delta x^2]_{t-1} + (1-\\rho) u_t^2

    Args:
      rho: decay of both running averages, in [0, 1].
      eps: added inside both square roots, >= 0.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_adadelta()
    >>> np.round(t.update(np.array([0.5, -2.0]), t.init(np.zeros(2)))[0], 4)
    array([ 0.0032, -0.0032])

    Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012.
    """
    check_unit_interval("rho", rho, closed=True)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleByAdadeltaState:
        return ScaleByAdadeltaState(0, tree.zeros_like(params), tree.zeros_like(params))

    def direction(
        updates: Updates, state: State, params: Params | None, *, inplace: bool
    ) -> tuple[Direction, State]:
        del params
        g, spec, be = _flat(updates)
        e_g, e_x = spec.flatten_up_to(state.e_g), spec.flatten_up_to(state.e_x)
        e_g = be.scale(e_g, rho, _dst(e_g, inplace))
        e_g = be.addcmul(e_g, g, g, 1.0 - rho, e_g)
        std = be.add_scalar(e_g, eps)
        std = be.sqrt(std, std)
        delta = be.add_scalar(e_x, eps)  # from the previous E[dx^2], before it moves
        delta = be.sqrt(delta, delta)
        delta = be.mul(be.div(delta, std, delta), g, delta)
        del std  # free it before the next scratch array (less fresh memory per step)
        e_x = be.scale(e_x, rho, _dst(e_x, inplace))
        e_x = be.addcmul(e_x, delta, delta, 1.0 - rho, e_x)
        return Direction(((1.0, delta, None),), spec, be), ScaleByAdadeltaState(
            state.count + 1, spec.unflatten(e_g), spec.unflatten(e_x)
        )

    return _scaling(init, direction, "scale_by_adadelta", rho=rho, eps=eps)


class ScaleByLionState(NamedTuple):
    """``mu``: the momentum (an exponential average of gradients with ``b2``)."""

    count: int  # type: ignore[assignment]
    mu: Any


def scale_by_lion(
    b1: float = 0.9,
    b2: float = 0.99,
    mu_dtype: Any = None,
    *,
    mode: str = "hard",
    smooth_beta: float = 1.0,
) -> Transform:
    """The sign update of Lion (EvoLved Sign Momentum).

    :math:`u_t = \\operatorname{sign}(c_t)` with :math:`c_t = \\beta_1 m_{t-1} +
    (1-\\beta_1) g_t`, then :math:`m_t = \\beta_2 m_{t-1} + (1-\\beta_2) g_t`
    (:math:`m_0 = 0`). optax's variants: ``mode="smooth"`` takes
    :math:`\\tanh(\\beta_s c_t)` (:math:`\\beta_s` = ``smooth_beta``), ``"refined"``
    keeps :math:`c_t` where :math:`|c_t| < 1` and its sign elsewhere.

    Args:
      b1: interpolation factor of the update, in [0, 1).
      b2: decay of the momentum, in [0, 1).
      mu_dtype: the dtype of the momentum (``None``: the params').
      mode: ``"hard"`` (the paper's sign), ``"smooth"`` or ``"refined"``.
      smooth_beta: the slope of ``"smooth"``, > 0.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_lion()
    >>> t.update(np.array([0.3, -2.0, 0.0]), t.init(np.zeros(3)))[0]
    array([ 1., -1.,  0.])

    Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
    Algorithm 2.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    if mode not in ("hard", "smooth", "refined"):
        raise ValueError(f"mode: expected 'hard', 'smooth' or 'refined', got {mode!r}")
    check_nonnegative("smooth_beta", smooth_beta)
    dtype = _dtype_name("mu_dtype", mu_dtype)

    def init(params: Params) -> ScaleByLionState:
        return ScaleByLionState(0, tree.zeros_like(params, dtype=dtype))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        m = spec.flatten_up_to(state.mu)
        if dtype is not None:
            m, inplace = _as_dtype(be, m, g), False
        out = be.scale(g, 1.0 - b1)
        out = be.axpy(b1, m, out, out)
        if mode == "hard":
            out = be.sign(out, out)
        elif mode == "smooth":
            out = [be.xp.tanh(smooth_beta * x) for x in out]
        else:
            out = [be.xp.where(abs(x) < 1.0, x, be.xp.sign(x)) for x in out]
        mu = be.scale(g, 1.0 - b2)  # b2 m + (1 - b2) g, then into m's buffer
        mu = be.axpy(b2, m, mu, mu)
        if inplace:
            mu = be.clone(mu, m)
        if dtype is not None:
            mu = be.cast(mu, dtype)
        return spec.unflatten(out), ScaleByLionState(state.count + 1, spec.unflatten(mu))

    hp: dict[str, Any] = {"b1": b1, "b2": b2}
    if dtype is not None or mode != "hard":
        hp.update(mu_dtype=dtype, mode=mode, smooth_beta=smooth_beta)
    return _builtin(init, update, "scale_by_lion", **hp)


class ScaleByRpropState(NamedTuple):
    """``prev``: the previous (masked) gradient; ``step_size``: per-element steps."""

    count: int  # type: ignore[assignment]
    prev: Any
    step_size: Any


def scale_by_rprop(
    learning_rate: float = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
) -> Transform:
    """Resilient backpropagation (torch.optim.Rprop); the update carries its minus sign.

    Per element, with :math:`s_t = \\operatorname{sign}(g_t g_{t-1}')`: the step size
    :math:`\\delta_t = \\operatorname{clip}(\\delta_{t-1}\\cdot\\{\\eta_+, \\eta_-, 1\\}
    [s_t > 0, s_t < 0, s_t = 0], \\delta_{\\min}, \\delta_{\\max})`; where
    :math:`s_t < 0` the gradient is zeroed (:math:`g_t' = 0`, else :math:`g_t' = g_t`);
    :math:`u_t = -\\operatorname{sign}(g_t')\\,\\delta_t`. :math:`\\delta_0` =
    ``learning_rate``, :math:`(\\eta_-, \\eta_+)` = ``etas``,
    :math:`(\\delta_{\\min}, \\delta_{\\max})` = ``step_sizes``.

    Args:
      learning_rate: the initial step size, >= 0.
      etas: multiplicative decrease and increase factors, ``0 < etaminus < 1 < etaplus``.
      step_sizes: minimal and maximal step sizes.

    Returns:
      A :class:`fnopt.Transform` (no learning-rate transform goes after it).

    >>> import numpy as np
    >>> t = scale_by_rprop(0.1)
    >>> s = t.init(np.zeros(2))
    >>> u, s = t.update(np.array([0.5, -2.0]), s)
    >>> u, s = t.update(np.array([0.5, -2.0]), s)  # same signs: steps grow by 1.2
    >>> np.round(u, 4)
    array([-0.12,  0.12])

    Riedmiller and Braun, "A Direct Adaptive Method for Faster Backpropagation
    Learning: The RPROP Algorithm", ICNN 1993.
    """
    check_nonnegative("learning_rate", learning_rate)
    etaminus, etaplus = etas
    if not 0.0 < etaminus < 1.0 < etaplus or not math.isfinite(etaplus):
        raise ValueError(f"etas: expected 0 < etaminus < 1 < etaplus, got {etas}")
    lo, hi = step_sizes
    check_nonnegative("step_sizes[0]", lo)
    check_nonnegative("step_sizes[1]", hi)
    if lo > hi:
        raise ValueError(f"step_sizes: expected min <= max, got {step_sizes}")

    def init(params: Params) -> ScaleByRpropState:
        return ScaleByRpropState(0, tree.zeros_like(params), tree.full_like(params, learning_rate))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        prev, step = spec.flatten_up_to(state.prev), spec.flatten_up_to(state.step_size)
        s = be.mul(g, prev)
        s = be.sign(s, s)
        abs_s = be.abs(s)
        pos = be.add(abs_s, s)
        pos = be.scale(pos, 0.5, pos)  # 1 where s > 0, else 0 (exact)
        neg = be.sub(abs_s, s)
        neg = be.scale(neg, 0.5, neg)  # 1 where s < 0, else 0 (exact)
        # factor = etaplus | etaminus | 1; each term but one is an exact zero
        factor = be.scale(pos, etaplus, pos)
        factor = be.add(factor, be.scale(neg, etaminus), factor)
        abs_s = be.add_scalar(be.scale(abs_s, -1.0, abs_s), 1.0, abs_s)
        factor = be.add(factor, abs_s, factor)
        step = be.mul(step, factor, _dst(step, inplace))
        step = be.clip(step, lo, hi, step)
        keep = be.scale(neg, -1.0, neg)
        keep = be.add_scalar(keep, 1.0, keep)
        g_kept = be.mul(g, keep, _dst(prev, inplace))  # prev is read above, not after
        out = be.sign(g_kept)
        out = be.scale(be.mul(out, step, out), -1.0, out)
        return spec.unflatten(out), ScaleByRpropState(
            state.count + 1, spec.unflatten(g_kept), spec.unflatten(step)
        )

    return _builtin(
        init, update, "scale_by_rprop",
        learning_rate=learning_rate, etas=etas, step_sizes=step_sizes,
    )


class ScaleByBeliefState(NamedTuple):
    """``mu``: first moment; ``nu``: running variance of :math:`g_t - m_t`."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def scale_by_belief(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16) -> Transform:
    """Rescale updates by AdaBelief's "belief" in the gradient (the paper's algorithm).

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        s_t = \\beta_2 s_{t-1} + (1-\\beta_2)(g_t - m_t)^2 + \\epsilon,\\quad
        u_t = \\frac{m_t / (1-\\beta_1^t)}{\\sqrt{s_t / (1-\\beta_2^t)} + \\epsilon}

    Args:
      b1, b2: decays in [0, 1).
      eps: :math:`\\epsilon` >= 0, added to :math:`s_t` and to the denominator.

    Returns:
      A :class:`fnopt.Transform`.

    >>> import numpy as np
    >>> t = scale_by_belief(eps=0.0)
    >>> np.round(t.update(np.array([0.5, -2.0]), t.init(np.zeros(2)))[0], 4)
    array([ 1.1111, -1.1111])

    Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients", NeurIPS 2020, Algorithm 2.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleByBeliefState:
        return ScaleByBeliefState(0, tree.zeros_like(params), tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        mu = be.lerp(mu, g, 1.0 - b1, _dst(mu, inplace))
        r = be.sub(g, mu)
        nu = be.scale(nu, b2, _dst(nu, inplace))
        nu = be.add_scalar(be.addcmul(nu, r, r, 1.0 - b2, nu), eps, nu)
        denom = be.scale(nu, 1.0 / (1.0 - b2**t))
        denom = be.add_scalar(be.sqrt(denom, denom), eps, denom)
        out = be.scale(mu, 1.0 / (1.0 - b1**t))
        out = be.div(out, denom, out)
        return spec.unflatten(out), ScaleByBeliefState(t, spec.unflatten(mu), spec.unflatten(nu))

    return _builtin(init, update, "scale_by_belief", b1=b1, b2=b2, eps=eps)


