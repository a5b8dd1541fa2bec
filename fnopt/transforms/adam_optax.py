"""Adam as optax writes it, for the options torch.optim has no form of: ``eps_root``
(inside the square root), Nesterov's momentum (optax's NAdam/NAdamW) and AMSGrad's
maximum of the *bias-corrected* second moment (:func:`scale_by_amsgrad`).

:func:`fnopt.scale_by_adam` keeps torch.optim's arithmetic (and its fused kernels);
it hands the options above to :func:`optax_adam` here."""


from __future__ import annotations

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
from fnopt.transforms._common import _as_dtype, _builtin, _dst, _dtype_name, _flat
from fnopt.transforms.adaptive import ScaleByAdamState


class ScaleByAmsgradState(NamedTuple):
    """``mu``, ``nu``: the moments; ``nu_max``: the running maximum of the
    bias-corrected second moment."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any
    nu_max: Any


def optax_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    amsgrad: bool = False,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> Transform:
    """optax's ``scale_by_adam`` (``amsgrad=False``) or ``scale_by_amsgrad``.

    .. math::
        \\hat m_t = \\frac{m_t}{1-\\beta_1^t}\\ \\text{or, Nesterov,}\\
        \\beta_1\\frac{m_t}{1-\\beta_1^{t+1}} + (1-\\beta_1)\\frac{g_t}{1-\\beta_1^t},
        \\quad \\hat v_t = \\frac{v_t}{1-\\beta_2^t},\\quad
        u_t = \\frac{\\hat m_t}{\\sqrt{\\hat v_t + \\epsilon_r} + \\epsilon}

    with :math:`\\hat v_t` replaced by :math:`\\max_{s\\le t}\\hat v_s` for AMSGrad.
    Use it through :func:`fnopt.scale_by_adam` (``eps_root=``, ``nesterov=``) or
    :func:`scale_by_amsgrad`.
    """
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    check_nonnegative("eps_root", eps_root)
    for name, flag in (("nesterov", nesterov), ("amsgrad", amsgrad),
                       ("bias_correction_mu", bias_correction_mu),
                       ("bias_correction_nu", bias_correction_nu)):
        check_bool(name, flag)
    dtype = _dtype_name("mu_dtype", mu_dtype)

    def init(params: Params) -> Any:
        z = tree.zeros_like
        if amsgrad:
            return ScaleByAmsgradState(0, z(params, dtype=dtype), z(params), z(params))
        return ScaleByAdamState(0, z(params, dtype=dtype), z(params), None)

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        mu = be.lerp(mu, g if dtype is None else _as_dtype(be, g, mu), 1.0 - b1,
                     _dst(mu, inplace and dtype is None))
        nu = be.scale(nu, b2, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - b2, nu)
        m32 = mu if dtype is None else _as_dtype(be, mu, g)
        if nesterov:  # b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)
            m_hat = be.axpy((1.0 - b1) / (1.0 - b1**t), g,
                            be.scale(m32, b1 / (1.0 - b1 ** (t + 1))))
        else:
            m_hat = be.scale(m32, 1.0 / (1.0 - b1**t) if bias_correction_mu else 1.0)
        v_hat = be.scale(nu, 1.0 / (1.0 - b2**t) if bias_correction_nu else 1.0)
        if amsgrad:
            v_hat = be.maximum(spec.flatten_up_to(state.nu_max), v_hat,
                               _dst(spec.flatten_up_to(state.nu_max), inplace))
        den = be.add_scalar(be.sqrt(be.add_scalar(v_hat, eps_root)), eps)
        out = be.div(m_hat, den, m_hat)
        new = (t, spec.unflatten(mu), spec.unflatten(nu))
        if amsgrad:
            return spec.unflatten(out), ScaleByAmsgradState(*new, spec.unflatten(v_hat))
        return spec.unflatten(out), ScaleByAdamState(*new, None)

    name = "scale_by_amsgrad" if amsgrad else "optax_adam"
    return _builtin(init, update, name, b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                    mu_dtype=dtype, nesterov=nesterov, amsgrad=amsgrad,
                    bias_correction_mu=bias_correction_mu,
                    bias_correction_nu=bias_correction_nu)


def scale_by_amsgrad(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> Transform:
    """AMSGrad as optax.scale_by_amsgrad: Adam with the running maximum of the
    *bias-corrected* second moment,
    :math:`u_t = \\hat m_t / (\\sqrt{\\max_{s\\le t} \\hat v_s + \\epsilon_r} + \\epsilon)`.
    (torch's ``amsgrad=True`` — :func:`fnopt.scale_by_adam` — takes the maximum of
    the uncorrected :math:`v` instead; the two differ from the second step on.)

    Args:
      b1, b2: moment decays in [0, 1).
      eps: added outside the square root; eps_root: inside it.
      mu_dtype: the dtype of the first moment (``None``: the params').
      bias_correction_mu, bias_correction_nu: whether to correct each moment.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleByAmsgradState`.

    >>> import numpy as np
    >>> t = scale_by_amsgrad()
    >>> u, s = t.update(np.array([0.5, -2.0]), t.init(np.zeros(2)))
    >>> np.round(u, 6)
    array([ 1., -1.])

    Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018.
    """
    return optax_adam(b1, b2, eps, eps_root, mu_dtype, amsgrad=True,
                      bias_correction_mu=bias_correction_mu,
                      bias_correction_nu=bias_correction_nu)
