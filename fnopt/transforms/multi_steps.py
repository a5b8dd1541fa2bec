"""Gradient accumulation with optax's semantics: :class:`MultiSteps`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import (
    Descent,
    Params,
    State,
    Transform,
    Updates,
    as_transform,
    call_update,
    check_bool,
    check_params,
    passes_extra_args,
)
from fnopt.transforms._common import _check_transform, _dtype_name


class MultiStepsState(NamedTuple):
    """optax's ``MultiStepsState``, with the fields every fnopt optimizer state has.

    Attributes:
      mini_step: mini-steps accumulated since the last real step (0 right after one).
      gradient_step: real steps taken (updates of the wrapped optimizer).
      inner_opt_state: the wrapped optimizer's state.
      acc_grads: the running mean (or sum) of the gradients since the last real step.
      skip_state: what ``should_skip_update_fn`` returned last (``()`` without one).
      count: calls so far (mini-steps included); value, grad_norm: the loss and gradient
        norm of the last call (recorded when stepped as an optimizer).
    """

    mini_step: int
    gradient_step: int
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()
    count: int = 0  # type: ignore[assignment]
    value: Any = None
    grad_norm: Any = None


def _every_k(every_k_schedule: int | Callable[[int], int]) -> Callable[[int], int]:
    if callable(every_k_schedule):
        return every_k_schedule
    if isinstance(every_k_schedule, bool) or not isinstance(every_k_schedule, int):
        raise TypeError("every_k_schedule: expected an int >= 1 or a function "
                        f"gradient_step -> int, got {type(every_k_schedule).__name__}")
    if every_k_schedule < 1:
        raise ValueError(f"every_k_schedule: expected an int >= 1, got {every_k_schedule}")
    return lambda step: every_k_schedule


class MultiSteps(Descent):
    """Accumulate gradients over mini-steps, then step the wrapped optimizer (optax's
    ``MultiSteps``).

    Each call adds the gradient to a running mean (``use_grad_mean=True``, optax's
    Welford form :math:`a \\leftarrow a + (g - a)/(i+1)`) or sum; it returns zero
    updates until ``k = every_k_schedule(gradient_step)`` mini-steps are in, and on the
    ``k``-th passes the accumulated gradient through ``opt`` and returns its updates;
    then the accumulator restarts. A mini-step that ``should_skip_update_fn(updates,
    gradient_step, params) -> (skip, skip_state)`` rejects leaves the state as it was
    (but ``skip_state``).

    A :class:`MultiSteps` is an optimizer (``fixed_point``, ``opt.step``) and a
    transform (``init``/``update``/``chain``), like every fnopt alias; its state is a
    :class:`MultiStepsState`.

    Args:
      opt: the wrapped transform or first-order optimizer.
      every_k_schedule: mini-steps per real step: an int >= 1, or a function of the
        real step count.
      use_grad_mean: average (default) or sum the gradients.
      should_skip_update_fn: optional ``(updates, gradient_step, params) -> (bool,
        skip_state)``.
      accumulator_dtype: the dtype of the accumulator; ``None`` (default): the params'.
        (optax's default is float32.)

    >>> import numpy as np, fnopt
    >>> opt = fnopt.MultiSteps(fnopt.sgd(1.0), every_k_schedule=2)
    >>> p, s = np.array([0.0]), opt.init(np.array([0.0]))
    >>> u1, s = opt.update(np.array([1.0]), s, p)
    >>> u2, s = opt.update(np.array([3.0]), s, p)
    >>> u1, u2, bool(opt.has_updated(s))
    (array([0.]), array([-2.]), True)
    """

    __slots__ = ("_inner_opt",)
    _inner_opt: Transform

    def __init__(
        self,
        opt: Transform,
        every_k_schedule: int | Callable[[int], int],
        use_grad_mean: bool = True,
        should_skip_update_fn: Callable[..., tuple[Any, Any]] | None = None,
        accumulator_dtype: Any = None,
    ) -> None:
        _check_transform(opt, "opt")
        check_bool("use_grad_mean", use_grad_mean)
        if should_skip_update_fn is not None and not callable(should_skip_update_fn):
            raise TypeError("should_skip_update_fn: expected a callable or None")
        inner = as_transform(opt)
        view = _multi_steps_transform(inner, _every_k(every_k_schedule), use_grad_mean,
                                      should_skip_update_fn,
                                      _dtype_name("accumulator_dtype", accumulator_dtype))

        def init(params: Params) -> MultiStepsState:
            check_params(params)
            return view.init(params)

        super().__init__(view, init, view.update)
        object.__setattr__(self, "_inner_opt", opt)

    @property
    def inner_opt(self) -> Transform:
        """The wrapped optimizer."""
        return self._inner_opt

    def gradient_transformation(self) -> Transform:
        """The transform view (optax's ``MultiSteps.gradient_transformation()``)."""
        return self.inner

    @staticmethod
    def has_updated(state: MultiStepsState) -> bool:
        """Whether the last call stepped the wrapped optimizer."""
        return bool(state.mini_step == 0 and state.gradient_step > 0)


def _multi_steps_transform(
    inner: Transform, every_k: Callable[[int], int], mean: bool,
    skip_fn: Callable[..., tuple[Any, Any]] | None, dtype: str | None,
) -> Transform:
    """The transform :class:`MultiSteps` lifts."""

    def init(params: Params) -> MultiStepsState:
        skip_state: Any = ()
        if skip_fn is not None:
            _, skip_state = skip_fn(tree.zeros_like(params), 0, params)
        return MultiStepsState(0, 0, inner.init(params), tree.zeros_like(params, dtype=dtype),
                               skip_state, 0)

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        if skip_fn is not None:
            skip, skip_state = skip_fn(updates, state.gradient_step, params)
            if bool(skip):
                return tree.zeros_like(updates), state._replace(skip_state=skip_state)
        else:
            skip_state = state.skip_state
        k = int(every_k(state.gradient_step))
        acc = state.acc_grads
        if dtype is not None:
            acc = tree.map(lambda a, g: _backend.of_value(g).cast_like(a, g), acc, updates)
        if mean:  # a + (g - a) / (i + 1)
            acc = tree.axpy(1.0 / (state.mini_step + 1), tree.sub(updates, acc), acc)
        else:
            acc = tree.add(acc, updates)
        count = state.count + 1
        if state.mini_step + 1 < k:
            stored = acc if dtype is None else tree.map(
                lambda a, z: _backend.of_value(z).cast_like(a, z), acc, state.acc_grads)
            return tree.zeros_like(updates), state._replace(
                mini_step=state.mini_step + 1, acc_grads=stored, skip_state=skip_state,
                count=count)
        out, inner_state = call_update(inner, acc, state.inner_opt_state, params, inplace)
        return out, state._replace(
            mini_step=0, gradient_step=state.gradient_step + 1, inner_opt_state=inner_state,
            acc_grads=tree.zeros_like(state.acc_grads), skip_state=skip_state, count=count)

    return Transform(init, passes_extra_args(update), inplace=True, name="MultiSteps",
                     hyperparams={"opt": inner})


def skip_not_finite(updates: Updates, gradient_step: int, params: Params | None) -> Any:
    """optax's ``skip_not_finite`` for ``MultiSteps(should_skip_update_fn=...)``: skip a
    mini-step whose updates hold a NaN or inf. The skip state is optax's dict
    ``{"should_skip": bool, "num_not_finite": int}`` (the NaN/inf elements counted).

    >>> import numpy as np
    >>> skip_not_finite([np.array([1.0, np.inf]), np.array(np.nan)], 0, None)
    (True, {'should_skip': True, 'num_not_finite': 2})
    """
    del gradient_step, params
    leaves = tree.leaves(updates)
    num = 0 if tree.all_finite(leaves) else _backend.of_leaves(leaves).count_non_finite(leaves)
    return num > 0, {"should_skip": num > 0, "num_not_finite": num}
