"""First-order building blocks (:class:`fnopt.Transform`), composable with :func:`chain`.

Each factory captures its hyperparameters and returns ``Transform(init, update)``;
``update(grads, state, params) -> (updates, state)`` is pure. Updates are *added* to
params by :func:`fnopt.descent`, so the transform that applies the learning rate
carries the minus sign.

The ``scale_by_*`` transforms turn a gradient into a direction *before* the learning
rate: e.g. :func:`scale_by_adam` returns :math:`\\hat m_t / (\\sqrt{\\hat v_t} +
\\epsilon)` and :func:`scale_by_learning_rate` then multiplies by :math:`-\\eta`. Their
arithmetic follows ``torch.optim`` (eps placement, bias correction, first-step
conventions), so a chain built from them reproduces torch.optim's trajectory.

The math is written once over the flat list of leaves with the list-level ops of the
backend chosen from the leaves (:mod:`fnopt.backend`): ``torch._foreach_*`` on torch,
vectorised ufuncs on NumPy. States are ``NamedTuple`` pytrees whose buffers have the
structure of params.

One expression, two destinations: every built-in ``update`` also takes ``inplace``
(declared by ``Transform.inplace``). Each state buffer's first write is
``op(..., out=buf if inplace else None)`` and later ops work on arrays the update made
itself, so with ``inplace=True`` (the caller gave the state up, as
``Descent.apply(..., out=...)`` does) the same arithmetic lands in the old buffers and
gives bitwise the same numbers. ``chain`` and the wrappers pass ``inplace`` to the
transforms that declare it and call user transforms without it. No update writes into
the ``updates`` or ``params`` passed in. ``Transform.update_params`` adds the updates
to params: a learning-rate scale does it in one pass (``p + coef * u``), and a chain
that torch has a fused kernel for runs it (recognised in one place,
:func:`_fused_update_params`, from the declared names and hyperparameters).
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np
import optree

from fnopt import backend as _backend
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
    as_transform,
    call_update,
    check_bool,
    check_callable,
    check_nonnegative,
    check_unit_interval,
)

__all__ = [
    "chain",
    "identity",
    "scale",
    "scale_by_learning_rate",
    "trace",
    "add_decayed_weights",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adagrad",
    "scale_by_adadelta",
    "scale_by_lion",
    "scale_by_rprop",
    "scale_by_factored_rms",
    "scale_by_param_block_rms",
    "scale_by_muon",
    "scale_by_trust_ratio",
    "scale_by_belief",
    "polyak_average",
    "clip",
    "clip_by_global_norm",
    "masked",
    "partition",
    "apply_if_finite",
    "accumulate",
    "lookahead",
    "inject_hyperparams",
    "EmptyState",
    "ScaleByLearningRateState",
    "TraceState",
    "ScaleByAdamState",
    "ScaleByAdamaxState",
    "ScaleByNadamState",
    "ScaleByRadamState",
    "ScaleByRmsState",
    "ScaleByStddevState",
    "ScaleByAdagradState",
    "ScaleByAdadeltaState",
    "ScaleByLionState",
    "ScaleByRpropState",
    "ScaleByFactoredRmsState",
    "ScaleByMuonState",
    "ScaleByBeliefState",
    "PolyakAverageState",
    "MaskedState",
    "PartitionState",
    "ApplyIfFiniteState",
    "AccumulateState",
    "LookaheadState",
    "InjectHyperparamsState",
    "InjectHyperparamsOptState",
]


# -- helpers ---------------------------------------------------------------------------


def _flat(t: Any) -> tuple[list[Any], Any, _backend.Backend]:
    """Leaves, treespec and backend of a pytree."""
    leaves, spec = optree.tree_flatten(t)
    return leaves, spec, _backend.of_leaves(leaves)


def _numel(x: Any) -> int:
    return math.prod(tuple(x.shape))


def _dst(buffers: list[Any], inplace: bool) -> list[Any] | None:
    """The destination of a state buffer's first write: the buffer itself when the
    caller gave the state up (``inplace``), else ``None`` (a new array)."""
    return buffers if inplace else None


def _builtin(
    init: Any, update: Any, name: str, update_params: Any = None, **hyperparams: Any
) -> Transform:
    """A built-in transform: its ``update`` takes ``inplace`` (see :class:`Transform`),
    and it declares its factory's name and arguments."""
    return Transform(
        init, update, inplace=True, name=name, hyperparams=hyperparams,
        update_params=update_params,
    )


def _lifts(combinator: Callable[..., Transform]) -> Callable[..., Transform]:
    """Let ``combinator`` take first-order optimizers (:class:`fnopt.Descent`, e.g.
    ``fnopt.adam(1e-3)``) wherever it takes transforms: it composes their lifted
    transforms, and when any argument was one, the result is lifted the same way, so
    ``chain(clip_by_global_norm(1.0), adam(1e-3))`` is an optimizer too."""

    def unwrap(x: Any, found: list[bool]) -> Any:
        if isinstance(x, Descent):
            found.append(True)
            return x.inner
        if isinstance(x, Mapping) and any(isinstance(v, Descent) for v in x.values()):
            return {k: unwrap(v, found) for k, v in x.items()}
        return x

    @functools.wraps(combinator)
    def wrapper(*args: Any, **kwargs: Any) -> Transform:
        found: list[bool] = []
        args = tuple(unwrap(a, found) for a in args)
        kwargs = {k: unwrap(v, found) for k, v in kwargs.items()}
        out = combinator(*args, **kwargs)
        return Descent(out) if found else out

    return wrapper


def _check_transform(t: Any, name: str) -> None:
    if not isinstance(t, Transform):
        raise TypeError(f"{name}: expected a Transform, got {type(t).__name__}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")


def _check_real(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")


_MU_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _dtype_name(name: str, dtype: Any) -> str | None:
    """A floating dtype given as a name, a NumPy dtype or a torch dtype, as its name
    (``"float32"``); ``None`` stays ``None``."""
    if dtype is None:
        return None
    text = dtype if isinstance(dtype, str) else str(getattr(dtype, "name", dtype))
    text = text.replace("torch.", "")
    if text not in _MU_DTYPES:
        raise ValueError(f"{name}: expected None or one of {_MU_DTYPES}, got {dtype!r}")
    return text


def _as_dtype(be: _backend.Backend, xs: list[Any], like: list[Any]) -> list[Any]:
    """``xs`` leaf by leaf in the dtype of ``like`` (leaves that agree are kept)."""
    return [
        x if x.dtype == y.dtype else be.cast([x], _dtype_name("dtype", y.dtype) or "")[0]
        for x, y in zip(xs, like)
    ]


class EmptyState(NamedTuple):
    """State of a stateless transform."""


def _stateless(
    fn: Callable[[Updates, Params | None], Updates], name: str, **hyperparams: Any
) -> Transform:
    """A transform without state; ``fn`` returns new arrays, so in place or not is the
    same."""

    def init(params: Params) -> EmptyState:
        del params
        return EmptyState()

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del inplace  # nothing to overwrite: the state has no buffers
        return fn(updates, params), state

    return _builtin(init, update, name, **hyperparams)


# -- composition -----------------------------------------------------------------------


def identity() -> Transform:
    """The transform that returns the gradients unchanged."""
    return _stateless(lambda updates, params: updates, "identity")


@_lifts
def chain(*transforms: Transform) -> Transform:
    """Apply ``transforms`` one after the other; the state is the tuple of their states.

    >>> import numpy as np, fnopt
    >>> t = fnopt.chain(fnopt.scale(2.0), fnopt.scale_by_learning_rate(0.1))
    >>> u, _ = t.update(np.array([1.0]), t.init(np.zeros(1)))
    >>> u
    array([-0.2])
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, Transform):
            raise TypeError(
                f"chain: argument {i} must be a Transform, got {type(t).__name__}"
            )

    fused = _fused_update_params(transforms)

    def init(params: Params) -> tuple[Any, ...]:
        return tuple(t.init(params) for t in transforms)

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        new_states = []
        for t, s in zip(transforms, state):
            updates, s = call_update(t, updates, s, params, inplace)
            new_states.append(s)
        return updates, tuple(new_states)

    def update_params(
        grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        if fused is not None:
            done = fused(grads, state, params, out)
            if done is not None:
                return done
        if not transforms:
            return tree.add(params, grads, out=out), state
        # all but the last transform, then the last one adds its updates to params
        # (a learning-rate scale in one pass)
        updates, head = update(grads, state[:-1], params, inplace=out is not None)
        new_params, last = transforms[-1].update_params(updates, state[-1], params, out=out)
        return new_params, (*head, last)

    return _builtin(init, update, "chain", update_params, transforms=transforms)


# -- scaling ---------------------------------------------------------------------------


def scale(step_size: float) -> Transform:
    """Multiply updates by a constant: :math:`u \\leftarrow s\\,u` (``s = step_size``).

    >>> import numpy as np
    >>> scale(-1.0).update(np.array([2.0]), EmptyState())[0]
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
    sign = -1.0 if flip_sign else 1.0

    def init(params: Params) -> ScaleByLearningRateState:
        del params
        lr0 = learning_rate(0) if callable(learning_rate) else learning_rate
        return ScaleByLearningRateState(0, lr0)

    def rate(state: State) -> tuple[Any, ScaleByLearningRateState]:
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        return sign * lr, ScaleByLearningRateState(state.count + 1, lr)

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

    return _builtin(
        init, update, "scale_by_learning_rate", update_params,
        learning_rate=learning_rate, flip_sign=flip_sign,
    )


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

    >>> import numpy as np
    >>> add_decayed_weights(0.5).update(np.array([1.0]), EmptyState(), np.array([2.0]))[0]
    array([2.])
    """
    check_nonnegative("weight_decay", weight_decay)

    def fn(updates: Updates, params: Params | None) -> Updates:
        if params is None:
            raise ValueError("add_decayed_weights: update needs params")
        return tree.axpy(weight_decay, params, updates)

    return _stateless(fn, "add_decayed_weights", weight_decay=weight_decay)


# -- adaptive scalings -----------------------------------------------------------------


class ScaleByAdamState(NamedTuple):
    """``mu``, ``nu``: first and second moment estimates; ``nu_max``: the running
    maximum of ``nu`` (AMSGrad; ``None`` without it)."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    amsgrad: bool = False,
    mu_dtype: Any = None,
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
    check_bool("amsgrad", amsgrad)
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_nonnegative("eps", eps)
    mu_dtype = _dtype_name("mu_dtype", mu_dtype)

    def init(params: Params) -> ScaleByAdamState:
        zeros = tree.zeros_like
        return ScaleByAdamState(
            0, zeros(params, dtype=mu_dtype), zeros(params), zeros(params) if amsgrad else None
        )

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
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
        out = be.scale(mu, 1.0 / bc1)
        if mu_dtype is not None:
            out = _as_dtype(be, out, g)
        out = be.div(out, denom, out)
        return spec.unflatten(out), ScaleByAdamState(
            t,
            spec.unflatten(mu),
            spec.unflatten(nu),
            spec.unflatten(nu_max) if amsgrad else None,
        )

    return _builtin(
        init, update, "scale_by_adam", b1=b1, b2=b2, eps=eps, amsgrad=amsgrad,
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

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        mu = be.lerp(mu, g, 1.0 - b1, _dst(mu, inplace))
        nu = be.scale(nu, b2, _dst(nu, inplace))
        g_abs = be.abs(g)
        nu = be.maximum(nu, be.add_scalar(g_abs, eps, g_abs), nu)
        out = be.scale(mu, 1.0 / (1.0 - b1**t))
        out = be.div(out, nu, out)
        return spec.unflatten(out), ScaleByAdamaxState(t, spec.unflatten(mu), spec.unflatten(nu))

    return _builtin(init, update, "scale_by_adamax", b1=b1, b2=b2, eps=eps)


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

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
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
        out = be.div(g, denom)
        out = be.addcdiv(be.scale(out, c_g, out), mu, denom, c_m, out)
        return spec.unflatten(out), ScaleByNadamState(
            t, spec.unflatten(mu), spec.unflatten(nu), mu_product
        )

    return _builtin(
        init, update, "scale_by_nadam", b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay
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

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
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
        m_hat = be.scale(mu, 1.0 / bc1)
        if rho_t > 5.0:
            rect = (
                (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
            ) ** 0.5
            denom = be.sqrt(nu)
            denom = be.add_scalar(denom, eps, denom)
            m_hat = be.div(be.scale(m_hat, bc2**0.5 * rect, m_hat), denom, m_hat)
        return spec.unflatten(m_hat), ScaleByRadamState(t, spec.unflatten(mu), spec.unflatten(nu))

    return _builtin(init, update, "scale_by_radam", b1=b1, b2=b2, eps=eps)


class ScaleByRmsState(NamedTuple):
    """``nu``: running average of squared gradients."""

    count: int  # type: ignore[assignment]
    nu: Any


class ScaleByStddevState(NamedTuple):
    """``mu``: running average of gradients; ``nu``: of squared gradients."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8, *, centered: bool = False) -> Transform:
    """Rescale updates by the root mean square of past gradients (RMSprop).

    :math:`v_t = \\alpha v_{t-1} + (1-\\alpha) g_t^2`,
    :math:`u_t = g_t / (\\sqrt{v_t} + \\epsilon)`, with :math:`\\alpha` = ``decay``
    (torch's ``alpha``), ``eps`` outside the root, :math:`v_0 = 0` (torch's
    conventions). ``centered=True`` is :func:`scale_by_stddev`.

    Args:
      decay: smoothing constant in [0, 1].
      eps: added outside the square root, >= 0.
      centered: divide by the estimated standard deviation instead.

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
    if centered:
        return scale_by_stddev(decay, eps)
    check_unit_interval("decay", decay, closed=True)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleByRmsState:
        return ScaleByRmsState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        nu = spec.flatten_up_to(state.nu)
        nu = be.scale(nu, decay, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - decay, nu)
        denom = be.sqrt(nu)
        out = be.div(g, be.add_scalar(denom, eps, denom))
        return spec.unflatten(out), ScaleByRmsState(state.count + 1, spec.unflatten(nu))

    return _builtin(init, update, "scale_by_rms", decay=decay, eps=eps)


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

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        mu, nu = spec.flatten_up_to(state.mu), spec.flatten_up_to(state.nu)
        nu = be.scale(nu, decay, _dst(nu, inplace))
        nu = be.addcmul(nu, g, g, 1.0 - decay, nu)
        mu = be.lerp(mu, g, 1.0 - decay, _dst(mu, inplace))
        std = be.addcmul(nu, mu, mu, -1.0)
        std = be.add_scalar(be.sqrt(std, std), eps, std)
        out = be.div(g, std)
        return spec.unflatten(out), ScaleByStddevState(
            state.count + 1, spec.unflatten(mu), spec.unflatten(nu)
        )

    return _builtin(init, update, "scale_by_stddev", decay=decay, eps=eps)


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

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        acc = spec.flatten_up_to(state.sum_of_squares)
        acc = be.addcmul(acc, g, g, 1.0, _dst(acc, inplace))
        denom = be.sqrt(acc)
        out = be.div(g, be.add_scalar(denom, eps, denom))
        return spec.unflatten(out), ScaleByAdagradState(state.count + 1, spec.unflatten(acc))

    return _builtin(
        init, update, "scale_by_adagrad",
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

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
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
        e_x = be.scale(e_x, rho, _dst(e_x, inplace))
        e_x = be.addcmul(e_x, delta, delta, 1.0 - rho, e_x)
        return spec.unflatten(delta), ScaleByAdadeltaState(
            state.count + 1, spec.unflatten(e_g), spec.unflatten(e_x)
        )

    return _builtin(init, update, "scale_by_adadelta", rho=rho, eps=eps)


class ScaleByLionState(NamedTuple):
    """``mu``: the momentum (an exponential average of gradients with ``b2``)."""

    count: int  # type: ignore[assignment]
    mu: Any


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> Transform:
    """The sign update of Lion (EvoLved Sign Momentum).

    :math:`u_t = \\operatorname{sign}(\\beta_1 m_{t-1} + (1-\\beta_1) g_t)`, then
    :math:`m_t = \\beta_2 m_{t-1} + (1-\\beta_2) g_t` (:math:`m_0 = 0`).

    Args:
      b1: interpolation factor of the update, in [0, 1).
      b2: decay of the momentum, in [0, 1).

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

    def init(params: Params) -> ScaleByLionState:
        return ScaleByLionState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        m = spec.flatten_up_to(state.mu)
        out = be.scale(g, 1.0 - b1)
        out = be.sign(be.axpy(b1, m, out, out), out)
        mu = be.scale(g, 1.0 - b2)  # b2 m + (1 - b2) g, then into m's buffer
        mu = be.axpy(b2, m, mu, mu)
        if inplace:
            mu = be.clone(mu, m)
        return spec.unflatten(out), ScaleByLionState(state.count + 1, spec.unflatten(mu))

    return _builtin(init, update, "scale_by_lion", b1=b1, b2=b2)


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


class ScaleByFactoredRmsState(NamedTuple):
    """Second-moment estimates: ``v_row`` (shape ``(..., m, 1)``) and ``v_col``
    (``(..., 1, n)``) for leaves with two or more dimensions, ``v`` (the leaf's shape)
    for the others; the unused slots hold 0-d zeros."""

    count: int  # type: ignore[assignment]
    v_row: Any
    v_col: Any
    v: Any


def _eps_for(x: Any, eps: float | None) -> float:
    if eps is not None:
        return eps
    return float(np.finfo(str(x.dtype).replace("torch.", "")).eps)


def scale_by_factored_rms(
    beta2_decay: float = -0.8, eps: float | None = None, d: float = 1.0
) -> Transform:
    """Adafactor's normalisation: divide by a factored second-moment estimate, then
    clip the update's RMS (torch.optim.Adafactor arithmetic).

    With :math:`\\beta_{2,t} = 1 - t^{c}` (:math:`c` = ``beta2_decay``), for a leaf of
    two or more dimensions (the last two factored):
    :math:`R_t = \\beta_{2,t} R_{t-1} + (1-\\beta_{2,t})\\,\\text{mean}_{-1}(g_t^2)`,
    :math:`C_t` likewise over axis -2,
    :math:`\\hat V_t = R_t C_t / \\max(\\text{mean}_{-2}(R_t), \\epsilon_1)`; for other
    leaves :math:`\\hat V_t = \\beta_{2,t}\\hat V_{t-1} + (1-\\beta_{2,t})g_t^2`. Then
    :math:`u_t = g_t / \\sqrt{\\max(\\hat V_t, \\epsilon_1^2)}` divided by
    :math:`\\max(1, \\text{RMS}(u_t)/d)`, leaf by leaf.

    Args:
      beta2_decay: :math:`c` <= 0.
      eps: :math:`\\epsilon_1` >= 0; ``None`` (torch's default) uses the machine epsilon
        of each leaf's dtype.
      d: the RMS clipping threshold >= 1.

    Returns:
      A :class:`fnopt.Transform`. (One host synchronisation per leaf on GPUs is
      avoided: the per-leaf RMS stays a 0-d array.)

    >>> import numpy as np
    >>> t = scale_by_factored_rms()
    >>> u, s = t.update(np.array([[3.0, 4.0]]), t.init(np.zeros((1, 2))))
    >>> u.shape, s.v_row.shape, s.v_col.shape
    ((1, 2), (1, 1), (1, 2))

    Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
    ICML 2018.
    """
    _check_real("beta2_decay", beta2_decay)
    if beta2_decay > 0:
        raise ValueError(f"beta2_decay: expected a number <= 0, got {beta2_decay}")
    if eps is not None:
        check_nonnegative("eps", eps)
    check_nonnegative("d", d)
    if d < 1:
        raise ValueError(f"d: expected a number >= 1, got {d}")

    def init(params: Params) -> ScaleByFactoredRmsState:
        leaves, spec, be = _flat(params)
        zeros = be.zeros_like(leaves)
        rows, cols, vs = [], [], []
        for x, z in zip(leaves, zeros):
            zero = be.scalar(0.0, x)
            if x.ndim > 1:
                rows.append(be.mean([z], -1)[0])
                cols.append(be.mean([z], -2)[0])
                vs.append(zero)
            else:
                rows.append(zero)
                cols.append(be.clone([zero])[0])
                vs.append(z)
        return ScaleByFactoredRmsState(
            0, spec.unflatten(rows), spec.unflatten(cols), spec.unflatten(vs)
        )

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        w = float(t) ** beta2_decay  # 1 - beta2_t
        rows = spec.flatten_up_to(state.v_row)
        cols = spec.flatten_up_to(state.v_col)
        vs = spec.flatten_up_to(state.v)
        fac = [i for i, x in enumerate(g) if x.ndim > 1]
        vec = [i for i, x in enumerate(g) if x.ndim <= 1]
        var: list[Any] = [None] * len(g)
        if fac:
            gf = [g[i] for i in fac]
            sq = be.mul(gf, gf)
            old_rows, old_cols = [rows[i] for i in fac], [cols[i] for i in fac]
            new_rows = be.lerp(old_rows, be.mean(sq, -1), w, _dst(old_rows, inplace))
            new_cols = be.lerp(old_cols, be.mean(sq, -2), w, _dst(old_cols, inplace))
            row_means = be.mean(new_rows, -2)
            floors = [
                be.clip([m], _eps_for(x, eps), math.inf)[0] for m, x in zip(row_means, gf)
            ]
            est = be.div(be.mul(new_rows, new_cols), floors)
            for j, i in enumerate(fac):
                rows[i], cols[i], var[i] = new_rows[j], new_cols[j], est[j]
        if vec:
            gv = [g[i] for i in vec]
            old_vs = [vs[i] for i in vec]
            new_vs = be.lerp(old_vs, be.mul(gv, gv), w, _dst(old_vs, inplace))
            for j, i in enumerate(vec):
                vs[i] = var[i] = new_vs[j]
        floored = [be.clip([v], _eps_for(x, eps) ** 2, math.inf)[0] for v, x in zip(var, g)]
        u = be.div(g, be.sqrt(floored))
        rms = [n / (math.sqrt(_numel(x)) * d) for n, x in zip(be.norms(u), u)]
        out = be.div(u, [r.clip(min=1.0) for r in rms])
        return spec.unflatten(out), ScaleByFactoredRmsState(
            t, spec.unflatten(rows), spec.unflatten(cols), spec.unflatten(vs)
        )

    return _builtin(
        init, update, "scale_by_factored_rms", beta2_decay=beta2_decay, eps=eps, d=d
    )


def scale_by_param_block_rms(min_scale: float = 1e-3) -> Transform:
    """Scale each leaf's update by the RMS of that leaf of the params (Adafactor's
    relative step size): :math:`u \\leftarrow u\\,\\max(\\epsilon_2, \\text{RMS}(p))`
    with :math:`\\epsilon_2` = ``min_scale``.

    >>> import numpy as np
    >>> t = scale_by_param_block_rms()
    >>> t.update(np.array([1.0, 1.0]), EmptyState(), np.array([3.0, 4.0]))[0].round(4)
    array([3.5355, 3.5355])
    """
    check_nonnegative("min_scale", min_scale)

    def fn(updates: Updates, params: Params | None) -> Updates:
        if params is None:
            raise ValueError("scale_by_param_block_rms: update needs params")
        u, spec, be = _flat(updates)
        p = spec.flatten_up_to(params)
        scales = [
            (n / math.sqrt(_numel(x))).clip(min=min_scale) for n, x in zip(be.norms(p), p)
        ]
        return spec.unflatten(be.mul(u, scales))

    return _stateless(fn, "scale_by_param_block_rms", min_scale=min_scale)


class ScaleByMuonState(NamedTuple):
    """``mu``: the momentum buffer."""

    count: int  # type: ignore[assignment]
    mu: Any


def _newton_schulz(x: Any, be: _backend.Backend, coeffs: tuple[float, float, float],
                   steps: int, eps: float) -> Any:
    """The quintic Newton-Schulz iteration towards the orthogonal factor of ``x``."""
    a, b, c = coeffs
    tall = x.shape[0] > x.shape[1]
    m = x.T if tall else x
    m = m / be.norms([m])[0].clip(min=eps)
    for _ in range(steps):
        gram = m @ m.T
        m = a * m + (b * gram + c * (gram @ gram)) @ m
    return m.T if tall else m


_MUON_LR_ADJUST = ("original", "match_rms_adamw")


def scale_by_muon(
    momentum: float = 0.95,
    *,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    ns_steps: int = 5,
    eps: float = 1e-7,
    adjust_lr_fn: str | None = None,
) -> Transform:
    """Muon's direction for matrix leaves: momentum, then orthogonalisation by
    Newton-Schulz iterations (torch.optim.Muon arithmetic, in the params' dtype where
    torch uses bfloat16).

    :math:`b_t = \\mu b_{t-1} + (1-\\mu) g_t`, :math:`d_t = (1-\\mu) g_t + \\mu b_t`
    with Nesterov (else :math:`b_t`), :math:`u_t = s\\,\\text{NS}(d_t)` where NS runs
    ``ns_steps`` iterations :math:`X \\leftarrow aX + (bA + cA^2)X`, :math:`A = XX^T`,
    from :math:`X_0 = d_t / \\max(\\|d_t\\|_F, \\epsilon)` (on the transpose of a tall
    matrix), and :math:`s = \\sqrt{\\max(1, m/n)}` for an :math:`m\\times n` leaf
    (``adjust_lr_fn="original"``/``None``), or :math:`0.2\\sqrt{\\max(m, n)}`
    (``"match_rms_adamw"``).

    Args:
      momentum: :math:`\\mu` in [0, 1].
      nesterov: Nesterov momentum (torch's default).
      ns_coefficients: :math:`(a, b, c)`.
      ns_steps: number of iterations, 0 <= ns_steps < 100.
      eps: floor of the norm, >= 0.
      adjust_lr_fn: ``None``/``"original"`` or ``"match_rms_adamw"``.

    Returns:
      A :class:`fnopt.Transform`; every leaf must be a matrix (use
      :func:`partition` to send the other leaves elsewhere).

    >>> import numpy as np
    >>> t = scale_by_muon(ns_steps=20, ns_coefficients=(1.5, -0.5, 0.0))
    >>> u, _ = t.update(np.diag([3.0, 0.5]), t.init(np.zeros((2, 2))))
    >>> np.round(u, 3)
    array([[1., 0.],
           [0., 1.]])

    Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024;
    Liu et al., "Muon is Scalable for LLM Training", 2025 (``match_rms_adamw``).
    """
    check_bool("nesterov", nesterov)
    check_unit_interval("momentum", momentum, closed=True)
    _check_int("ns_steps", ns_steps, 0)
    if ns_steps >= 100:
        raise ValueError(f"ns_steps: expected fewer than 100 iterations, got {ns_steps}")
    if len(ns_coefficients) != 3:
        raise ValueError(f"ns_coefficients: expected three numbers, got {ns_coefficients}")
    for k in ns_coefficients:
        _check_real("ns_coefficients", k)
    check_nonnegative("eps", eps)
    if adjust_lr_fn is not None and adjust_lr_fn not in _MUON_LR_ADJUST:
        raise ValueError(
            f"adjust_lr_fn: expected None or one of {_MUON_LR_ADJUST}, got {adjust_lr_fn!r}"
        )
    coeffs = (float(ns_coefficients[0]), float(ns_coefficients[1]), float(ns_coefficients[2]))

    def ratio(shape: tuple[int, ...]) -> float:
        m, n = shape[0], shape[1]
        if adjust_lr_fn == "match_rms_adamw":
            return 0.2 * math.sqrt(max(m, n))
        return math.sqrt(max(1.0, m / n))

    def init(params: Params) -> ScaleByMuonState:
        leaves = optree.tree_leaves(params)
        for path, x in zip(optree.tree_paths(params), leaves):
            if x.ndim != 2:
                where = "".join(f"[{k!r}]" for k in path) or "<root>"
                raise ValueError(
                    f"params: leaf {where} has shape {tuple(x.shape)}; scale_by_muon "
                    f"needs matrices (route other leaves with fnopt.partition)"
                )
        return ScaleByMuonState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        mu = spec.flatten_up_to(state.mu)
        mu = be.lerp(mu, g, 1.0 - momentum, _dst(mu, inplace))
        d = be.lerp(g, mu, momentum) if nesterov else mu
        out = [
            be.scale([_newton_schulz(x, be, coeffs, ns_steps, eps)], ratio(tuple(x.shape)))[0]
            for x in d
        ]
        return spec.unflatten(out), ScaleByMuonState(state.count + 1, spec.unflatten(mu))

    return _builtin(
        init, update, "scale_by_muon", momentum=momentum, nesterov=nesterov,
        ns_coefficients=coeffs, ns_steps=ns_steps, eps=eps, adjust_lr_fn=adjust_lr_fn,
    )


def scale_by_trust_ratio(
    min_norm: float = 0.0, trust_coefficient: float = 1.0, eps: float = 0.0
) -> Transform:
    """Scale each leaf's update by the trust ratio :math:`\\|p\\| / \\|u\\|` (LARS, LAMB).

    :math:`u \\leftarrow u \\cdot c\\,\\|p\\| / (\\|u\\| + \\epsilon)` leaf by leaf, with
    :math:`c` = ``trust_coefficient``; a leaf whose params or update norm is
    ``<= min_norm`` is left unscaled (optax's semantics). The norms are read on the host
    (one synchronisation per leaf on a GPU).

    Args:
      min_norm: the norm at or below which a leaf is not scaled, >= 0.
      trust_coefficient: :math:`c` >= 0.
      eps: added to the update norm, >= 0.

    Returns:
      A :class:`fnopt.Transform`; its ``update`` needs params.

    >>> import numpy as np
    >>> t = scale_by_trust_ratio()
    >>> t.update(np.array([0.0, 2.0]), t.init(np.zeros(2)), np.array([3.0, 4.0]))[0]
    array([0., 5.])

    You et al., "Large Batch Training of Convolutional Networks", 2017.
    """
    check_nonnegative("min_norm", min_norm)
    check_nonnegative("trust_coefficient", trust_coefficient)
    check_nonnegative("eps", eps)

    def fn(updates: Updates, params: Params | None) -> Updates:
        if params is None:
            raise ValueError("scale_by_trust_ratio: update needs params")
        u, spec, be = _flat(updates)
        p = spec.flatten_up_to(params)
        ratios = []
        for pn, un in zip(be.norms(p), be.norms(u)):
            pf, uf = be.to_float(pn), be.to_float(un)
            ok = pf > min_norm and uf > min_norm
            ratios.append(trust_coefficient * pf / (uf + eps) if ok else 1.0)
        return spec.unflatten([be.scale([x], r)[0] for x, r in zip(u, ratios)])

    return _stateless(
        fn, "scale_by_trust_ratio", min_norm=min_norm, trust_coefficient=trust_coefficient,
        eps=eps,
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


# -- clipping ---------------------------------------------------------------------------


def clip(max_delta: float) -> Transform:
    """Clip every element of the updates to ``[-max_delta, max_delta]``.

    >>> import numpy as np
    >>> clip(1.0).update(np.array([-3.0, 0.5, 2.0]), EmptyState())[0]
    array([-1. ,  0.5,  1. ])
    """
    check_nonnegative("max_delta", max_delta)

    def fn(updates: Updates, params: Params | None) -> Updates:
        u, spec, be = _flat(updates)
        return spec.unflatten(be.clip(u, -max_delta, max_delta))

    return _stateless(fn, "clip", max_delta=max_delta)


def clip_by_global_norm(max_norm: float) -> Transform:
    """Rescale the updates so their global norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_`` does.

    :math:`u \\leftarrow u \\cdot \\min(1, c / (\\|u\\| + 10^{-6}))` with :math:`c` =
    ``max_norm`` and :math:`\\|u\\|` the Euclidean norm over all leaves (torch's
    :math:`10^{-6}` is kept so the two agree to round-off). No host synchronisation.

    >>> import numpy as np
    >>> u, _ = clip_by_global_norm(1.0).update(np.array([3.0, 4.0]), EmptyState())
    >>> np.round(u, 6)
    array([0.6, 0.8])
    """
    check_nonnegative("max_norm", max_norm)

    def fn(updates: Updates, params: Params | None) -> Updates:
        u, spec, be = _flat(updates)
        norm = be.sq_norm(u) ** 0.5
        coef = (max_norm / (norm + 1e-6)).clip(max=1.0)
        return spec.unflatten(be.scale(u, coef))

    return _stateless(fn, "clip_by_global_norm", max_norm=max_norm)


# -- wrappers ---------------------------------------------------------------------------


class MaskedState(NamedTuple):
    """``inner``: the state of the wrapped transform (over the selected leaves)."""

    inner: Any


def _leaf_labels(labels: Any, params: Params, name: str) -> list[Any]:
    """``labels`` (a pytree prefix of params, or ``params -> labels``) as one label
    per leaf of ``params``."""
    if callable(labels):
        labels = labels(params)
    try:
        full = optree.tree_broadcast_prefix(labels, params)
    except ValueError as exc:
        raise ValueError(f"{name}: does not match the structure of params: {exc}") from None
    return optree.tree_structure(params).flatten_up_to(full)


@_lifts
def masked(transform: Transform, mask: Any) -> Transform:
    """Apply ``transform`` only to the leaves where ``mask`` is true; the others pass
    through unchanged.

    Args:
      transform: the transform to apply to the selected leaves. It sees them as a
        list (in leaf order), with the matching params.
      mask: a pytree of bools with the structure of params (or a prefix of it: a bool
        for a whole subtree), or a function ``params -> mask``.

    Returns:
      A :class:`fnopt.Transform` with state :class:`MaskedState`.

    >>> import numpy as np, fnopt
    >>> p = {"w": np.ones(2), "b": np.ones(1)}
    >>> t = fnopt.masked(fnopt.add_decayed_weights(0.1), {"w": True, "b": False})
    >>> u, _ = t.update(fnopt.tree.zeros_like(p), t.init(p), p)
    >>> u["w"], u["b"]
    (array([0.1, 0.1]), array([0.]))
    """
    _check_transform(transform, "transform")
    if not callable(mask):
        optree.tree_leaves(mask)  # fail early on something that is not a pytree

    def select(params: Params) -> list[int]:
        return [i for i, m in enumerate(_leaf_labels(mask, params, "mask")) if m]

    def init(params: Params) -> MaskedState:
        leaves = optree.tree_leaves(params)
        return MaskedState(transform.init([leaves[i] for i in select(params)]))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        u, spec = optree.tree_flatten(updates)
        idx = select(updates if params is None else params)
        p_sel = None if params is None else [spec.flatten_up_to(params)[i] for i in idx]
        sub, inner = call_update(transform, [u[i] for i in idx], state.inner, p_sel, inplace)
        out = list(u)
        for i, v in zip(idx, sub):
            out[i] = v
        return spec.unflatten(out), MaskedState(inner)

    return _builtin(init, update, "masked", transform=transform, mask=mask)


class PartitionState(NamedTuple):
    """``inner``: a dict ``label -> state`` of the transform for that label."""

    inner: dict[Any, Any]


@_lifts
def partition(transforms: Mapping[Hashable, Transform], labels: Any) -> Transform:
    """Apply a different transform to each group of leaves (parameter groups).

    Args:
      transforms: a mapping ``label -> Transform``.
      labels: a pytree of labels with the structure of params (or a prefix of it), or
        a function ``params -> labels``. Every label must be a key of ``transforms``.

    Returns:
      A :class:`fnopt.Transform` with state :class:`PartitionState`. Each transform
      sees its leaves as a list (in leaf order).

    >>> import numpy as np, fnopt
    >>> p = {"w": np.ones(2), "b": np.ones(1)}
    >>> t = fnopt.partition({"decay": fnopt.chain(fnopt.add_decayed_weights(0.1),
    ...                                           fnopt.scale_by_learning_rate(1.0)),
    ...                      "plain": fnopt.scale_by_learning_rate(1.0)},
    ...                     {"w": "decay", "b": "plain"})
    >>> u, _ = t.update(fnopt.tree.zeros_like(p), t.init(p), p)
    >>> u["w"], u["b"]
    (array([-0.1, -0.1]), array([-0.]))
    """
    if not isinstance(transforms, Mapping):
        raise TypeError(f"transforms: expected a mapping label -> Transform, got "
                        f"{type(transforms).__name__}")
    for k, t in transforms.items():
        _check_transform(t, f"transforms[{k!r}]")
    keys = list(transforms)

    def groups(params: Params) -> dict[Any, list[int]]:
        out: dict[Any, list[int]] = {k: [] for k in keys}
        for i, lab in enumerate(_leaf_labels(labels, params, "labels")):
            if lab not in out:
                raise ValueError(f"labels: label {lab!r} has no transform; known: {keys}")
            out[lab].append(i)
        return out

    def init(params: Params) -> PartitionState:
        leaves = optree.tree_leaves(params)
        return PartitionState(
            {k: transforms[k].init([leaves[i] for i in idx]) for k, idx in groups(params).items()}
        )

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        u, spec = optree.tree_flatten(updates)
        p_leaves = None if params is None else spec.flatten_up_to(params)
        out = list(u)
        new_inner = {}
        for k, idx in groups(updates if params is None else params).items():
            p_sel = None if p_leaves is None else [p_leaves[i] for i in idx]
            sub, new_inner[k] = call_update(
                transforms[k], [u[i] for i in idx], state.inner[k], p_sel, inplace
            )
            for i, v in zip(idx, sub):
                out[i] = v
        return spec.unflatten(out), PartitionState(new_inner)

    return _builtin(init, update, "partition", transforms=transforms, labels=labels)


class ApplyIfFiniteState(NamedTuple):
    """``notfinite_count``: consecutive skipped steps; ``last_finite``: whether the
    last gradient was finite; ``total_notfinite``: all skipped steps."""

    count: int  # type: ignore[assignment]
    inner: Any
    notfinite_count: int
    last_finite: bool
    total_notfinite: int


@_lifts
def apply_if_finite(transform: Transform, max_consecutive_errors: int | None = None) -> Transform:
    """Skip steps whose gradient has a NaN or inf: the updates are zero and the inner
    state is left as it was; the skips are counted in the state.

    Args:
      transform: the transform to protect.
      max_consecutive_errors: after this many consecutive skips the non-finite update
        is applied anyway (so a diverged run shows up); ``None`` never gives up.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ApplyIfFiniteState`. (The state
      of :func:`fnopt.descent` still records the non-finite gradient norm, so
      :func:`fnopt.fixed_point` stops with reason ``non_finite`` at such a step; the
      skip matters when steps are driven by hand.)

    >>> import numpy as np, fnopt
    >>> t = fnopt.apply_if_finite(fnopt.scale_by_adam())
    >>> u, s = t.update(np.array([np.nan]), t.init(np.zeros(1)))
    >>> u, s.total_notfinite, s.inner.count
    (array([0.]), 1, 0)
    """
    _check_transform(transform, "transform")
    if max_consecutive_errors is not None:
        _check_int("max_consecutive_errors", max_consecutive_errors, 0)

    def init(params: Params) -> ApplyIfFiniteState:
        return ApplyIfFiniteState(0, transform.init(params), 0, True, 0)

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        finite = tree.all_finite(updates)
        give_up = (
            max_consecutive_errors is not None
            and state.notfinite_count >= max_consecutive_errors
        )
        if finite or give_up:
            out, inner = call_update(transform, updates, state.inner, params, inplace)
        else:
            out, inner = tree.zeros_like(updates), state.inner
        bad = 0 if finite else 1
        return out, ApplyIfFiniteState(
            state.count + 1,
            inner,
            0 if finite else state.notfinite_count + 1,
            finite,
            state.total_notfinite + bad,
        )

    return _builtin(
        init, update, "apply_if_finite", transform=transform,
        max_consecutive_errors=max_consecutive_errors,
    )


class AccumulateState(NamedTuple):
    """``count``: calls so far; ``acc``: the gradient sum since the last step;
    ``inner``: the wrapped transform's state."""

    count: int  # type: ignore[assignment]
    acc: Any
    inner: Any


@_lifts
def accumulate(k: int, transform: Transform | None = None, *, average: bool = True) -> Transform:
    """Gradient accumulation: every ``k``-th call applies ``transform`` to the mean
    (or sum) of the last ``k`` gradients; the other calls return zero updates and leave
    the inner state as it is.

    Pass the rest of the pipeline as ``transform``
    (``accumulate(4, chain(scale_by_adam(), scale_by_learning_rate(1e-3)))``): a
    stateful transform chained *after* ``accumulate`` would see the zero updates.

    Args:
      k: number of calls per step, >= 1.
      transform: applied on every ``k``-th call (default: :func:`identity`).
      average: apply ``transform`` to the mean (default) or the sum of the gradients.

    Returns:
      A :class:`fnopt.Transform` with state :class:`AccumulateState`.

    >>> import numpy as np
    >>> t = accumulate(2)
    >>> s = t.init(np.zeros(1))
    >>> u1, s = t.update(np.array([1.0]), s)
    >>> u2, s = t.update(np.array([3.0]), s)
    >>> u1, u2
    (array([0.]), array([2.]))
    """
    check_bool("average", average)
    _check_int("k", k, 1)
    inner_t = identity() if transform is None else transform
    _check_transform(inner_t, "transform")

    def init(params: Params) -> AccumulateState:
        return AccumulateState(0, tree.zeros_like(params), inner_t.init(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        acc = tree.add(state.acc, updates, out=state.acc if inplace else None)
        if (state.count + 1) % k:
            return tree.zeros_like(updates), AccumulateState(state.count + 1, acc, state.inner)
        g = tree.scale(1.0 / k, acc) if average and k > 1 else acc
        out, inner = call_update(inner_t, g, state.inner, params, inplace)
        # the sum restarts at zero: in its own buffer, unless ``out`` may share it
        zero = tree.full_like(acc, 0.0, out=acc if inplace and g is not acc else None)
        return out, AccumulateState(state.count + 1, zero, inner)

    return _builtin(
        init, update, "accumulate", k=k, transform=inner_t, average=average
    )


class LookaheadState(NamedTuple):
    """``slow``: the slow weights; ``inner``: the fast optimizer's state."""

    count: int  # type: ignore[assignment]
    slow: Any
    inner: Any


@_lifts
def lookahead(transform: Transform, sync_period: int = 5, alpha: float = 0.5) -> Transform:
    """Lookahead: the params are the fast weights, updated by ``transform``; every
    ``sync_period`` steps the slow weights move towards them and the fast weights are
    reset to the slow ones.

    On a synchronisation step :math:`\\phi \\leftarrow \\phi + \\alpha(\\theta' - \\phi)`
    and the update sets :math:`\\theta \\leftarrow \\phi`, where :math:`\\theta'` is the
    fast weight after the inner update. :math:`k` = ``sync_period``, :math:`\\alpha` =
    ``alpha``.

    Args:
      transform: the inner ("fast") transform.
      sync_period: :math:`k` >= 1.
      alpha: the slow step size in [0, 1].

    Returns:
      A :class:`fnopt.Transform` with state :class:`LookaheadState`; its ``update``
      needs params.

    >>> import numpy as np
    >>> t = lookahead(scale_by_learning_rate(1.0), sync_period=2, alpha=0.5)
    >>> p, s = np.array([0.0]), t.init(np.array([0.0]))
    >>> for _ in range(2):  # fast weights 1, 2; then halfway back to the slow weight 0
    ...     u, s = t.update(np.array([-1.0]), s, p)
    ...     p = p + u
    >>> p
    array([1.])

    Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back", NeurIPS 2019.
    """
    _check_transform(transform, "transform")
    _check_int("sync_period", sync_period, 1)
    check_unit_interval("alpha", alpha, closed=True)

    def init(params: Params) -> LookaheadState:
        return LookaheadState(0, tree.clone(params), transform.init(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        if params is None:
            raise ValueError("lookahead: update needs params")
        out, inner = call_update(transform, updates, state.inner, params, inplace)
        count = state.count + 1
        slow = state.slow
        if count % sync_period == 0:  # slow <- slow + alpha (fast - slow)
            fast = tree.add(params, out)
            step = tree.sub(fast, slow, out=fast)
            slow = tree.axpy(alpha, step, slow, out=slow if inplace else None)
            out = tree.sub(slow, params)
        return out, LookaheadState(count, slow, inner)

    return _builtin(
        init, update, "lookahead", transform=transform, sync_period=sync_period, alpha=alpha
    )


# -- hyperparameters in the state -------------------------------------------------------


class InjectHyperparamsState(NamedTuple):
    """``hyperparams``: a dict ``name -> value`` read at every step (change it with
    ``state._replace(hyperparams={...})``); ``inner``: the wrapped state."""

    count: int  # type: ignore[assignment]
    hyperparams: dict[str, Any]
    inner: Any


class InjectHyperparamsOptState(NamedTuple):
    """Like :class:`InjectHyperparamsState` for a factory returning an Optimizer;
    ``value`` and ``grad_norm`` are copied from the inner optimizer state."""

    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    hyperparams: dict[str, Any]
    inner: Any


def _is_hyperparam(v: Any) -> bool:
    return (isinstance(v, numbers.Real) and not isinstance(v, bool)) or (
        callable(v) and not isinstance(v, (Transform, Optimizer))
    )


def inject_hyperparams(
    factory: Callable[..., Transform | Optimizer],
) -> Callable[..., Transform | Optimizer]:
    """Wrap a factory so its numeric hyperparameters live in the state.

    ``inject_hyperparams(fnopt.adam)(learning_rate=1e-3)`` returns an optimizer (or a
    transform, if the factory returns one) whose state has a dict ``hyperparams``. At
    every step the factory is called again with the values found there, so they can
    be read and changed between steps (``state._replace(hyperparams=...)``) without
    rebuilding anything; the inner state carries over. A hyperparameter given as a
    schedule ``count -> value`` is evaluated at the step count each step and its value
    written into ``hyperparams``. Other arguments (flags, transforms) are fixed.

    Args:
      factory: e.g. :func:`fnopt.adam`, :func:`scale_by_adam` or a user function.

    Returns:
      A function taking the factory's arguments.

    >>> import numpy as np, fnopt
    >>> opt = fnopt.inject_hyperparams(fnopt.sgd)(learning_rate=0.1)
    >>> grad_fn = lambda p: (p @ p, 2 * p)
    >>> p, s = opt.step(np.array([1.0]), grad_fn, opt.init(np.array([1.0])))
    >>> s = s._replace(hyperparams={**s.hyperparams, "learning_rate": 0.25})
    >>> p, s = opt.step(p, grad_fn, s)
    >>> p, s.hyperparams["learning_rate"]
    (array([0.4]), 0.25)
    """
    check_callable(factory, "factory")
    try:
        sig: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None

    def wrapped(*args: Any, **kwargs: Any) -> Transform | Optimizer:
        if sig is not None:
            bound = sig.bind(*args, **kwargs)
            if any(
                sig.parameters[n].kind is inspect.Parameter.VAR_POSITIONAL
                for n in bound.arguments
            ):
                raise TypeError("inject_hyperparams: factories with *args are not supported")
            named = {}
            for n, v in bound.arguments.items():
                if sig.parameters[n].kind is inspect.Parameter.VAR_KEYWORD:
                    named.update(v)
                else:
                    named[n] = v
        else:
            if args:
                raise TypeError("inject_hyperparams: pass the arguments by keyword")
            named = dict(kwargs)
        hyper = {k: v for k, v in named.items() if _is_hyperparam(v)}
        static = {k: v for k, v in named.items() if k not in hyper}
        schedules = {k: v for k, v in hyper.items() if callable(v)}

        def values(hp: dict[str, Any], count: int) -> dict[str, Any]:
            return {k: (schedules[k](count) if k in schedules else v) for k, v in hp.items()}

        def build(hp: dict[str, Any]) -> Any:
            return factory(**static, **hp)

        hp0 = values(hyper, 0)
        proto = build(hp0)  # validates the arguments now

        def view(hp: dict[str, Any]) -> Transform:  # what the wrapped factory composes
            return as_transform(build(hp))

        def t_init(params: Params) -> InjectHyperparamsState:
            return InjectHyperparamsState(0, dict(hp0), as_transform(proto).init(params))

        def t_update(
            updates: Updates, state: State, params: Params | None = None, *,
            inplace: bool = False,
        ) -> tuple[Updates, State]:
            hp = values(state.hyperparams, state.count)
            out, inner = call_update(view(hp), updates, state.inner, params, inplace)
            return out, InjectHyperparamsState(state.count + 1, hp, inner)

        def t_update_params(
            grads: Updates, state: State, params: Params, *, out: Params | None = None
        ) -> tuple[Params, State]:
            hp = values(state.hyperparams, state.count)
            new_params, inner = view(hp).update_params(grads, state.inner, params, out=out)
            return new_params, InjectHyperparamsState(state.count + 1, hp, inner)

        t_view = Transform(
            t_init, t_update, inplace=True, name="inject_hyperparams",
            hyperparams={"factory": factory, **named}, update_params=t_update_params,
        )

        if isinstance(proto, Descent):  # an alias: the result is one too
            return _injected_descent(proto, t_view, values, build, hp0)

        if isinstance(proto, Transform):
            return t_view

        if isinstance(proto, Optimizer):

            def o_init(params: Params) -> InjectHyperparamsOptState:
                inner = proto.init(params)
                return InjectHyperparamsOptState(
                    0, inner.value, inner.grad_norm, dict(hp0), inner
                )

            def o_step(
                params: Params, grad_fn: GradFn, state: State, *batch: Any
            ) -> tuple[Params, InjectHyperparamsOptState]:
                hp = values(state.hyperparams, state.count)
                new_params, inner = build(hp).step(params, grad_fn, state.inner, *batch)
                return new_params, InjectHyperparamsOptState(
                    state.count + 1, inner.value, inner.grad_norm, hp, inner
                )

            return Optimizer(o_init, o_step, proto.value_at)

        raise TypeError(
            f"factory: must return a Transform or an Optimizer, got {type(proto).__name__}"
        )

    wrapped.__name__ = f"inject_hyperparams({getattr(factory, '__name__', 'factory')})"
    wrapped.__doc__ = factory.__doc__
    return wrapped



def _injected_descent(
    proto: Descent,
    view: Transform,
    values: Callable[[dict[str, Any], int], dict[str, Any]],
    build: Callable[[dict[str, Any]], Any],
    hp0: dict[str, Any],
) -> Descent:
    """:func:`inject_hyperparams` of an alias: a :class:`fnopt.Descent` whose state is an
    :class:`InjectHyperparamsOptState` around the alias's own state; each step rebuilds
    the alias from the values in the state (``values(hyperparams, count)``)."""

    def init(params: Params) -> InjectHyperparamsOptState:
        inner = proto.init(params)
        return InjectHyperparamsOptState(0, inner.value, inner.grad_norm, dict(hp0), inner)

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False,
    ) -> tuple[Updates, State]:
        hp = values(state.hyperparams, state.count)
        out, inner = call_update(build(hp), updates, state.inner, params, inplace)
        return out, InjectHyperparamsOptState(
            state.count + 1, state.value, state.grad_norm, hp, inner
        )

    def update_params(
        grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        hp = values(state.hyperparams, state.count)
        new_params, inner = build(hp).update_params(grads, state.inner, params, out=out)
        return new_params, InjectHyperparamsOptState(
            state.count + 1, state.value, state.grad_norm, hp, inner
        )

    return Descent(view, init, update, update_params)


# -- fused kernels -----------------------------------------------------------------------
#
# The one place that recognises chains torch has a fused kernel for. It reads the
# transforms' declared names and hyperparameters (``Transform.name``/``hyperparams``);
# the kernels are :meth:`fnopt.backend.Backend.fused_adam_` and friends. The generic path
# (each transform's own update) is the definition; tests hold the kernels to it.

FusedFn = Callable[[Updates, State, Params, Any], "tuple[Params, State] | None"]


def _fused_update_params(transforms: tuple[Transform, ...]) -> FusedFn | None:
    """For ``chain(*transforms)`` of the shape ``[scale(-1)] [add_decayed_weights]
    core [add_decayed_weights] scale_by_learning_rate`` with core ``scale_by_adam``
    (the second weight decay only for it: AdamW), ``trace`` or ``scale_by_adagrad``,
    or none (plain SGD), an ``update_params`` running torch's fused kernel; it returns
    ``None`` at a step the kernel cannot take (NumPy leaves, an autograd graph, a
    tensor learning rate), and the chain then runs its transforms. ``None`` when the
    chain has another shape."""
    names = [t.name for t in transforms]
    hps = [t.hyperparams for t in transforms]
    n, i = len(transforms), 0
    opts: dict[str, Any] = {"maximize": False, "weight_decay": 0.0, "decoupled": False}
    if i < n and names[i] == "scale" and hps[i]["step_size"] == -1.0:
        opts["maximize"], i = True, i + 1
    if i < n and names[i] == "add_decayed_weights":
        opts["weight_decay"], i = hps[i]["weight_decay"], i + 1
    core: int | None = None
    if i < n and names[i] in ("scale_by_adam", "trace", "scale_by_adagrad"):
        core, i = i, i + 1
        if names[core] == "scale_by_adam" and not opts["weight_decay"] and i < n and (
            names[i] == "add_decayed_weights"
        ):
            opts["weight_decay"], opts["decoupled"], i = hps[i]["weight_decay"], True, i + 1
    if i != n - 1 or names[i] != "scale_by_learning_rate" or not hps[i]["flip_sign"]:
        return None
    if not _is_number(opts["weight_decay"]):
        return None
    kind = "sgd" if core is None else str(names[core])
    if kind == "scale_by_adam" and hps[core]["mu_dtype"] is not None:  # type: ignore[index]
        return None
    if kind == "trace" and not hps[core]["decay"] > 0:  # type: ignore[index]
        return None
    return functools.partial(
        _run_fused, kind, core, i, hps[core] if core is not None else {},
        hps[i]["learning_rate"], opts,
    )


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _run_fused(
    kind: str, core: int | None, lr_at: int, hp: Mapping[str, Any],
    learning_rate: ScalarOrSchedule, opts: dict[str, Any],
    grads: Updates, state: State, params: Params, out: Params | None,
) -> tuple[Params, State] | None:
    """One fused step of a recognised chain (see :func:`_fused_update_params`): the
    params into ``out`` (or copies), the state buffers in place (or copies)."""
    g, spec, be = _flat(grads)
    if not be.has_fused:  # NumPy: the generic path, at once
        return None
    lp = spec.flatten_up_to(params)
    if not be.can_fuse(lp, g):
        return None
    lr_state = state[lr_at]
    lr = learning_rate(lr_state.count) if callable(learning_rate) else learning_rate
    if not _is_number(lr):
        return None
    inplace = out is not None
    if (out is not params) and kind == "sgd" and core is None and not (
        opts["weight_decay"] or opts["maximize"]
    ):
        # plain sgd into new arrays or another buffer: one pass (p - lr g written
        # there) beats a copy, then the kernel
        return None
    if out is None:
        p = be.clone(lp)
    else:
        p = spec.flatten_up_to(out)
        if out is not params:
            be.clone(lp, p)

    def buffers(t: Any) -> list[Any]:  # a state buffer: its own (in place) or a copy
        leaves = spec.flatten_up_to(t)
        return leaves if inplace else be.clone(leaves)

    new = list(state)
    s: Any = state[core] if core is not None else None
    if kind == "scale_by_adam":
        mu, nu = buffers(s.mu), buffers(s.nu)
        nu_max = buffers(s.nu_max) if hp["amsgrad"] else None
        be.fused_adam_(
            p, g, mu, nu, nu_max, count=s.count + 1, lr=float(lr), b1=hp["b1"], b2=hp["b2"],
            eps=hp["eps"], **opts,
        )
        new[core] = ScaleByAdamState(  # type: ignore[index]
            s.count + 1, spec.unflatten(mu), spec.unflatten(nu),
            None if nu_max is None else spec.unflatten(nu_max),
        )
    elif kind == "scale_by_adagrad":
        sums = buffers(s.sum_of_squares)
        be.fused_adagrad_(
            p, g, sums, lr=float(lr), eps=hp["eps"], weight_decay=opts["weight_decay"],
            maximize=opts["maximize"],
        )
        new[core] = ScaleByAdagradState(s.count + 1, spec.unflatten(sums))  # type: ignore[index]
    else:  # sgd, with momentum (trace) or without
        bufs = buffers(s.trace) if s is not None else []
        be.fused_sgd_(
            p, g, bufs, lr=float(lr), momentum=hp.get("decay", 0.0),
            dampening=hp.get("dampening", 0.0), nesterov=hp.get("nesterov", False),
            weight_decay=opts["weight_decay"], maximize=opts["maximize"],
            first=s is not None and s.count == 0,
        )
        if s is not None:
            new[core] = TraceState(s.count + 1, spec.unflatten(bufs))  # type: ignore[index]
    new[lr_at] = ScaleByLearningRateState(lr_state.count + 1, lr)
    return (spec.unflatten(p) if out is None else out), tuple(new)
