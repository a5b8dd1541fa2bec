"""Steps that can donate their buffers: the in-place form of a first-order update.

A first-order step is *evaluate* (one ``grad_fn`` call at the params passed in) then
*update* (gradient -> new params and state). A :class:`DonatingStep` keeps the two
apart and writes the update **once**, with a ``donate`` flag:

* ``donate=False`` (the default, the pure step): the first write to each buffer makes a
  new array; the params and state passed in are only read;
* ``donate=True``: the update overwrites the params and state buffers passed in (the
  caller gives them up) and returns them.

Both run the same kernels (``op`` and ``op_`` of :mod:`fnopt.backend` differ only in
the destination), so they give bitwise the same numbers.

:func:`fnopt.fixed_point` uses the split to run on buffers it owns: it copies the
caller's params (and state) once, evaluates the gradient at :math:`x_k`, checks the
stopping criteria on :math:`(x_k, f(x_k))`, and only then updates its buffers in place
to :math:`x_{k+1}`; see :func:`loop_can_donate` for when it does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import optree

from fnopt import backend as _backend
from fnopt import stop as _stop
from fnopt import transform as _t
from fnopt import tree
from fnopt._base import DescentState, GradFn, Optimizer, Params, ScalarOrSchedule, State

__all__ = [
    "DonatingStep",
    "UpdateFn",
    "adam_step",
    "clone_buffers",
    "loop_can_donate",
    "sgd_step",
]


class UpdateFn(Protocol):
    """``update(params, grads, state, value, grad_norm, donate) -> (params, state)``."""

    def __call__(
        self, params: Params, grads: Any, state: State, value: Any, grad_norm: Any,
        donate: bool, /,
    ) -> tuple[Params, State]: ...


class DonatingStep:
    """An optimizer step ``step(params, grad_fn, state, *batch, donate=False)`` whose
    update can run in place on donated buffers.

    Args:
      update: ``update(params, grads, state, value, grad_norm, donate)`` returning the
        new ``(params, state)``; ``value`` and ``grad_norm`` are the loss and gradient
        norm at ``params`` (to record in the state). With ``donate=True`` it may
        overwrite every buffer of ``params`` and ``state`` (never ``grads``).

    Calling the step evaluates ``grad_fn`` once and applies ``update``. With
    ``donate=True`` the params and state passed in are consumed: do not use them
    afterwards (they hold the new values, or garbage if the step raised).

    >>> import numpy as np, fnopt
    >>> opt = fnopt.sgd(0.1)
    >>> p = np.array([1.0])
    >>> q, s = opt.step(p, lambda x: (x @ x, 2 * x), opt.init(p), donate=True)
    >>> q is p, q
    (True, array([0.8]))
    """

    __slots__ = ("update",)

    def __init__(self, update: UpdateFn) -> None:
        self.update = update

    def __call__(
        self, params: Params, grad_fn: GradFn, state: State, *batch: Any, donate: bool = False
    ) -> tuple[Params, State]:
        value, grads = grad_fn(params, *batch)
        return self.update(params, grads, state, value, tree.global_norm(grads), donate)


def clone_buffers(state: State) -> State:
    """A copy of ``state`` whose arrays/tensors are fresh copies (other leaves, such as
    Python numbers, are shared)."""

    def copy(x: Any) -> Any:  # Python numbers and NumPy scalars are immutable: shared
        return _backend.of_leaves([x]).clone([x])[0] if _backend.is_array(x) else x

    return optree.tree_map(copy, state, none_is_leaf=False)


# The built-in criteria that read only the iterate's number, loss, gradient norm and
# time: with them the loop may overwrite the previous iterate.
_PARAMS_FREE = (
    _stop._MaxIters,
    _stop._LossBelow,
    _stop._GradNormBelow,
    _stop._LossChangeBelow,
    _stop._TimeLimit,
)


def _reads_only_scalars(criterion: _stop.Criterion) -> bool:
    if isinstance(criterion, (_stop.AnyOf, _stop.AllOf)):
        return _reads_only_scalars(criterion.left) and _reads_only_scalars(criterion.right)
    return type(criterion) in _PARAMS_FREE


def loop_can_donate(
    opt: Any,
    *,
    stop: _stop.Criterion,
    data: Any,
    callback: Callable[..., Any] | None,
    differentiable: bool,
) -> bool:
    """Whether :func:`fnopt.fixed_point` runs ``opt`` on loop-owned buffers.

    It does when ``opt`` is an :class:`fnopt.Optimizer` with a :class:`DonatingStep`,
    the run is deterministic to replay (no ``data`` iterable), nothing outside the loop
    can hold on to an intermediate iterate (no ``callback``; criteria that read only
    scalars, e.g. not :func:`fnopt.stop.param_change_below`), and no autograd graph is
    kept (``differentiable=False``). Otherwise it runs the pure step: same Result,
    new arrays each step.

    Replaying an overwritten iterate assumes ``grad_fn`` is deterministic (the same
    params give the same numbers). One difference remains: if the in-place update itself
    raises, the Result holds the iterate it started from (its loss is known), where the
    pure path, whose step raised before the check, holds the one before.
    """
    return (
        isinstance(opt, Optimizer)
        and isinstance(opt.step, DonatingStep)
        and data is None
        and callback is None
        and not differentiable
        and _reads_only_scalars(stop)
    )


# ``State(a, b)`` without the Python-level ``NamedTuple.__new__`` (per-step cost on tiny
# problems): the same object.
_new: Callable[..., Any] = tuple.__new__


# -- the donating forms of the named optimizers ---------------------------------------
#
# Each keeps the state layout of the chain that builds the optimizer in
# :mod:`fnopt.optimizers` (``DescentState(count, value, grad_norm, inner)`` with one
# state per block of the chain, the learning rate last), so ``init``, checkpoints and
# ``learning_rate_of`` see no difference. When autograd must record the step (a tensor
# that requires grad, as in ``fixed_point(differentiable=True)``) the pure step runs the
# chain itself: in-place and fused kernels have no backward.


def _needs_graph(leaves: list[Any], lr: Any) -> bool:
    return any(map(_backend._needs_grad, leaves)) or _backend._needs_grad(lr)


def _chain_update(chain: Any) -> Callable[..., tuple[Params, State]]:
    def update(params: Params, grads: Any, state: State, value: Any, grad_norm: Any) -> Any:
        updates, inner = chain.update(grads, state.inner, params)
        return tree.add(params, updates), DescentState(state.count + 1, value, grad_norm, inner)

    return update


def _start(
    params: Params,
    grads: Any,
    state: State,
    learning_rate: ScalarOrSchedule,
    maximize: bool,
    donate: bool,
) -> tuple[Any, ...] | None:
    """What both donating updates begin with: ``(param leaves, spec, backend, inner
    states, learning-rate state, lr, grad leaves)`` with the gradient negated under
    ``maximize``; ``None`` when autograd must record the step (run the chain instead)."""
    lp, spec = tree._flatten(params)
    be = _backend.of_leaves(lp)
    inner = state.inner
    lr_state = inner[-1]
    lr: Any = learning_rate(lr_state.count) if callable(learning_rate) else learning_rate
    lg = spec.flatten_up_to(grads)
    if be is _backend.TORCH and not donate and _needs_graph(lp + lg, lr):
        return None
    if maximize:
        lg = be.scale(lg, -1.0)
    return lp, spec, be, inner, lr_state, lr, lg


def sgd_step(
    chain: Any,
    learning_rate: ScalarOrSchedule,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool,
) -> DonatingStep:
    """The step of :func:`fnopt.sgd` (``chain`` is the chain it is built from).

    torch.optim.SGD's foreach arithmetic: ``g += wd p``; ``b = g`` at the first step,
    then ``b *= mu; b += (1 - tau) g``; ``d = g + mu b`` (Nesterov) or ``b``;
    ``p += -lr d``.
    """
    graph_update = _chain_update(chain)

    def update(
        params: Params, grads: Any, state: State, value: Any, grad_norm: Any, donate: bool
    ) -> tuple[Params, State]:
        start = _start(params, grads, state, learning_rate, maximize, donate)
        if start is None:
            return graph_update(params, grads, state, value, grad_norm)
        lp, spec, be, inner, lr_state, lr, lg = start
        if weight_decay:
            lg = be.axpy(weight_decay, lp, lg)
        if momentum:
            trace = inner[-2]
            buf = spec.flatten_up_to(trace.trace)
            if trace.count == 0:
                if donate:
                    be.copy_(buf, lg)
                else:
                    buf = be.clone(lg)
            else:
                buf = be.scale_(buf, momentum) if donate else be.scale(buf, momentum)
                be.axpy_(1.0 - dampening, lg, buf)  # ``buf`` is this step's own now
            direction = be.axpy(momentum, buf, lg) if nesterov else buf
            head = (*inner[:-2], _t.TraceState(trace.count + 1, spec.unflatten(buf)))
        else:
            direction = lg
            head = inner[:-1]
        new_p = be.axpy_(-lr, direction, lp) if donate else be.axpy(-lr, direction, lp)
        new_inner = (*head, _new(_t.ScaleByLearningRateState, (lr_state.count + 1, lr)))
        new_state = _new(DescentState, (state.count + 1, value, grad_norm, new_inner))
        return spec.unflatten(new_p), new_state

    return DonatingStep(update)


def adam_step(
    chain: Any,
    learning_rate: ScalarOrSchedule,
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
) -> DonatingStep:
    """The step of :func:`fnopt.adam` with coupled (L2) weight decay.

    One fused kernel per step: ``torch._fused_adam_`` on torch (torch.optim.Adam's
    ``fused=True`` arithmetic), the same update with ``out=`` ufuncs on NumPy. The pure
    step copies params and moments once and runs the kernel on the copies.
    """
    graph_update = _chain_update(chain)

    def update(
        params: Params, grads: Any, state: State, value: Any, grad_norm: Any, donate: bool
    ) -> tuple[Params, State]:
        start = _start(params, grads, state, learning_rate, maximize, donate)
        if start is None:
            return graph_update(params, grads, state, value, grad_norm)
        lp, spec, be, inner, lr_state, lr, lg = start
        moments = inner[-2]
        mu = spec.flatten_up_to(moments.mu)
        nu = spec.flatten_up_to(moments.nu)
        nu_max = spec.flatten_up_to(moments.nu_max) if amsgrad else None
        if not donate:
            lp, mu, nu = be.clone(lp), be.clone(mu), be.clone(nu)
            nu_max = be.clone(nu_max) if nu_max is not None else None
        count = moments.count + 1
        be.adam_(
            lp, lg, mu, nu, nu_max,
            count=count, lr=float(lr), b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
        )
        new_inner = list(inner)
        new_inner[-2] = _t.ScaleByAdamState(
            count,
            spec.unflatten(mu),
            spec.unflatten(nu),
            spec.unflatten(nu_max) if nu_max is not None else None,
        )
        new_inner[-1] = _t.ScaleByLearningRateState(lr_state.count + 1, lr)
        new_state = DescentState(state.count + 1, value, grad_norm, tuple(new_inner))
        return spec.unflatten(lp), new_state

    return DonatingStep(update)
