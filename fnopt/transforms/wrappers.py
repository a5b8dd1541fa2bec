"""Wrappers that change when or how an inner transform applies:
:func:`apply_if_finite`, :func:`accumulate`, :func:`lookahead` and
:func:`inject_hyperparams`."""


from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

from fnopt import tree
from fnopt._base import (
    Descent,
    GradFn,
    Optimizer,
    Params,
    State,
    Transform,
    Updates,
    as_transform,
    call_update,
    check_bool,
    check_callable,
    check_int,
    check_unit_interval,
    passes_extra_args,
)
from fnopt.transforms._common import (
    _builtin,
    _check_transform,
    _dtype_name,
    _lifts,
)
from fnopt.transforms.combine import identity


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
      A :class:`fnopt.Transform` with state :class:`ApplyIfFiniteState`. Inside
      :func:`fnopt.fixed_point` a skipped step does not stop the run: the params stay
      where they were and the loop goes on (it stops with ``non_finite`` only when the
      *loss* is not finite, or when ``max_consecutive_errors`` lets a non-finite
      update through).

    >>> import numpy as np, fnopt
    >>> t = fnopt.apply_if_finite(fnopt.scale_by_adam())
    >>> u, s = t.update(np.array([np.nan]), t.init(np.zeros(1)))
    >>> u, s.total_notfinite, s.inner.count
    (array([0.]), 1, 0)
    """
    _check_transform(transform, "transform")
    if max_consecutive_errors is not None:
        check_int("max_consecutive_errors", max_consecutive_errors, 0)

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
        init, passes_extra_args(update), "apply_if_finite", transform=transform,
        max_consecutive_errors=max_consecutive_errors,
    )


class AccumulateState(NamedTuple):
    """``count``: calls so far; ``acc``: the gradient sum since the last step;
    ``inner``: the wrapped transform's state."""

    count: int  # type: ignore[assignment]
    acc: Any
    inner: Any


@_lifts
def accumulate(k: Any, transform: Any = None, *, average: bool = True) -> Transform:
    """Gradient accumulation: every ``k``-th call applies ``transform`` to the mean
    (or sum) of the last ``k`` gradients; the other calls return zero updates and leave
    the inner state as it is.

    Pass the rest of the pipeline as ``transform``
    (``accumulate(4, chain(scale_by_adam(), scale_by_learning_rate(1e-3)))``): a
    stateful transform chained *after* ``accumulate`` would see the zero updates.

    Args:
      k: number of calls per step, >= 1.
      transform: applied on every ``k``-th call (default: :func:`identity`). The
        order ``accumulate(transform, k)`` (optax's ``MultiSteps(opt, k)``) is accepted
        too. (:class:`fnopt.MultiSteps` is optax's wrapper itself.)
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
    if isinstance(k, Transform) and not isinstance(transform, Transform):
        k, transform = transform, k  # optax's order: (optimizer, k)
        if k is None:
            raise TypeError("accumulate: got a transform but no k; call accumulate(k, "
                            "transform) or accumulate(transform, k)")
    check_int("k", k, 1)
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
        init, passes_extra_args(update), "accumulate", k=k, transform=inner_t, average=average
    )


class LookaheadState(NamedTuple):
    """``slow``: the slow weights; ``inner``: the fast optimizer's state."""

    count: int  # type: ignore[assignment]
    slow: Any
    inner: Any


@_lifts
def lookahead(
    transform: Transform,
    sync_period: int = 5,
    alpha: float | None = None,
    *,
    slow_step_size: float | None = None,
    reset_state: bool = False,
) -> Transform:
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
      alpha: the slow step size in [0, 1] (default 0.5); ``slow_step_size`` is
        optax's name for it (give one of the two).
      reset_state: re-initialise the inner transform's state at each
        synchronisation (optax's ``reset_state``).

    Returns:
      A :class:`fnopt.Transform` with state :class:`LookaheadState`; its ``update``
      needs params.

    >>> import numpy as np, fnopt
    >>> t = lookahead(fnopt.scale_by_learning_rate(1.0), sync_period=2, alpha=0.5)
    >>> p, s = np.array([0.0]), t.init(np.array([0.0]))
    >>> for _ in range(2):  # fast weights 1, 2; then halfway back to the slow weight 0
    ...     u, s = t.update(np.array([-1.0]), s, p)
    ...     p = p + u
    >>> p
    array([1.])

    Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back", NeurIPS 2019.
    """
    _check_transform(transform, "transform")
    check_int("sync_period", sync_period, 1)
    check_bool("reset_state", reset_state)
    if alpha is not None and slow_step_size is not None:
        raise TypeError("lookahead: got both alpha and slow_step_size (optax's name); "
                        "pass one")
    if slow_step_size is not None:
        check_unit_interval("slow_step_size", slow_step_size, closed=True)
        alpha = slow_step_size
    elif alpha is None:
        alpha = 0.5
    check_unit_interval("alpha", alpha, closed=True)
    step_size = float(alpha)

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
            slow = tree.axpy(step_size, step, slow, out=slow if inplace else None)
            out = tree.sub(slow, params)
            if reset_state:
                inner = transform.init(slow)
        return out, LookaheadState(count, slow, inner)

    return _builtin(
        init, passes_extra_args(update), "lookahead", transform=transform,
        sync_period=sync_period, alpha=step_size, reset_state=reset_state
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
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., Transform | Optimizer]:
    """Wrap a factory so its numeric hyperparameters live in the state.

    ``inject_hyperparams(fnopt.adam)(learning_rate=1e-3)`` returns an optimizer (or a
    transform, if the factory returns one) whose state has a dict ``hyperparams``. At
    every step the factory is called again with the values found there, so they can
    be read and changed between steps (``state._replace(hyperparams=...)``) without
    rebuilding anything; the inner state carries over. A hyperparameter given as a
    schedule ``count -> value`` is evaluated at the step count each step and its value
    written into ``hyperparams``. Other arguments (flags, transforms) are fixed. The
    factory's numeric defaults are recorded too (``hyperparams`` holds every numeric
    argument, passed or not, as optax's state does).

    Args:
      factory: e.g. :func:`fnopt.adam`, :func:`scale_by_adam` or a user function.
      static_args: names of numeric arguments to keep fixed rather than inject
        (optax's ``static_args``).
      hyperparam_dtype: the dtype of the injected float hyperparameters (e.g.
        ``"float32"``; optax's ``hyperparam_dtype``); ``None``: Python floats.

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
    static_names = {static_args} if isinstance(static_args, str) else set(static_args)
    cast = _hyperparam_cast(hyperparam_dtype)
    try:
        sig: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        unknown = static_names - set(sig.parameters)
        if unknown:  # as optax: refused when wrapping, before any call
            raise ValueError(f"static_args: {sorted(unknown)} are not arguments of the factory")

    def wrapped(*args: Any, **kwargs: Any) -> Transform | Optimizer:
        named = _named_arguments(sig, args, kwargs)
        hyper = {k: cast(v) for k, v in named.items()
                 if _is_hyperparam(v) and k not in static_names}
        static = {k: v for k, v in named.items() if k not in hyper}
        schedules = {k: v for k, v in hyper.items() if callable(v)}

        def values(hp: dict[str, Any], count: int) -> dict[str, Any]:
            return {k: (schedules[k](count) if k in schedules else v) for k, v in hp.items()}

        def build(hp: dict[str, Any]) -> Any:
            return factory(**static, **hp)

        hp0 = values(hyper, 0)
        proto = build(hp0)  # validates the arguments now
        if isinstance(proto, Transform):
            t_view = _injected_transform(proto, values, build, hp0, factory, named)
            if isinstance(proto, Descent):  # an alias: the result is one too
                return _injected_descent(proto, t_view, values, build, hp0)
            return t_view
        if isinstance(proto, Optimizer):
            return _injected_optimizer(proto, values, build, hp0)
        raise TypeError(
            f"factory: must return a Transform or an Optimizer, got {type(proto).__name__}"
        )

    wrapped.__name__ = f"inject_hyperparams({getattr(factory, '__name__', 'factory')})"
    wrapped.__doc__ = factory.__doc__
    return wrapped




def _hyperparam_cast(dtype: Any) -> Callable[[Any], Any]:
    """``value -> value`` in ``dtype`` (a NumPy scalar) for Python/NumPy floats; other
    values (ints, schedules) as they are; the identity for ``dtype=None``."""
    if dtype is None:
        return lambda v: v
    name = _dtype_name("hyperparam_dtype", dtype)
    if name == "bfloat16":
        raise ValueError("hyperparam_dtype: bfloat16 has no NumPy scalar; use float32")
    scalar = np.dtype(name).type

    def cast(v: Any) -> Any:
        is_float = isinstance(v, (float, np.floating)) and not isinstance(v, bool)
        return scalar(v) if is_float else v

    return cast


def _named_arguments(
    sig: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The factory's arguments by name (``**kwargs`` flattened in); positional ones need
    a signature to name them."""
    if sig is None:
        if args:
            raise TypeError("inject_hyperparams: pass the arguments by keyword")
        return dict(kwargs)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()  # the defaults are recorded too (optax's state holds them)
    if any(
        sig.parameters[n].kind is inspect.Parameter.VAR_POSITIONAL for n in bound.arguments
    ):
        raise TypeError("inject_hyperparams: factories with *args are not supported")
    named: dict[str, Any] = {}
    for n, v in bound.arguments.items():
        if sig.parameters[n].kind is inspect.Parameter.VAR_KEYWORD:
            named.update(v)
        else:
            named[n] = v
    return named


_Values = Callable[[dict[str, Any], int], dict[str, Any]]


def _injected_transform(
    proto: Transform, values: _Values, build: Callable[[dict[str, Any]], Any],
    hp0: dict[str, Any], factory: Callable[..., Any], named: dict[str, Any],
) -> Transform:
    """:func:`inject_hyperparams` of a transform factory: an
    :class:`InjectHyperparamsState` around the inner state; each update rebuilds the
    transform from the values in the state."""

    def view(hp: dict[str, Any]) -> Transform:  # what the wrapped factory composes
        return as_transform(build(hp))

    def init(params: Params) -> InjectHyperparamsState:
        return InjectHyperparamsState(0, dict(hp0), as_transform(proto).init(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *,
        inplace: bool = False,
    ) -> tuple[Updates, State]:
        hp = values(state.hyperparams, state.count)
        out, inner = call_update(view(hp), updates, state.inner, params, inplace)
        return out, InjectHyperparamsState(state.count + 1, hp, inner)

    def update_params(
        grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        hp = values(state.hyperparams, state.count)
        new_params, inner = view(hp).update_params(grads, state.inner, params, out=out)
        return new_params, InjectHyperparamsState(state.count + 1, hp, inner)

    return Transform(
        init, passes_extra_args(update), inplace=True, name="inject_hyperparams",
        hyperparams={"factory": factory, **named}, update_params=update_params,
    )


def _injected_optimizer(
    proto: Optimizer, values: _Values, build: Callable[[dict[str, Any]], Any],
    hp0: dict[str, Any],
) -> Optimizer:
    """:func:`inject_hyperparams` of a line-search / second-order factory: each step
    rebuilds the optimizer from the values in the state."""

    def init(params: Params) -> InjectHyperparamsOptState:
        inner = proto.init(params)
        return InjectHyperparamsOptState(0, inner.value, inner.grad_norm, dict(hp0), inner)

    def step(
        params: Params, grad_fn: GradFn, state: State, *batch: Any
    ) -> tuple[Params, InjectHyperparamsOptState]:
        hp = values(state.hyperparams, state.count)
        new_params, inner = build(hp).step(params, grad_fn, state.inner, *batch)
        return new_params, InjectHyperparamsOptState(
            state.count + 1, inner.value, inner.grad_norm, hp, inner
        )

    return Optimizer(init, step, proto.value_at)


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

    return Descent(view, init, passes_extra_args(update), update_params)


