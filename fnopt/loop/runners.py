"""How :func:`fnopt.fixed_point` takes steps: a runner produces the next iterate to
check (:meth:`evaluate`) and, once the loop decides to go on, moves to it
(:meth:`advance`).

* :class:`FirstOrder` runs a :class:`fnopt.Descent` (every first-order alias and
  chain): it evaluates ``grad_fn`` itself, so the loss and gradient at :math:`x_k`
  are checked *before* the update, and the update is ``opt.apply``. On loop-owned
  buffers it writes :math:`x_{k+1}` into a second params buffer (ping-pong), so
  :math:`x_k` survives one more step (the last finite iterate, the best one), and the
  optimizer state is updated in place.
* :class:`Stepper` runs any other step function ``step(params, grad_fn, state,
  *batch)`` (line searches, second-order methods, bare steps): pure steps, new arrays.

Neither calls ``grad_fn`` more often than the optimizer asks, and neither ever calls it
again to recover an iterate.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import optree

from fnopt import backend as _backend
from fnopt import tree as _tree
from fnopt._base import Descent, GradFn, Params, State, check_grad_fn_output
from fnopt.grad.residuals import Linearization  # least-squares optimizers' grad_fn
from fnopt.loop.result import Iterate, _BadGradFn

__all__ = ["Counter", "FirstOrder", "Stepper", "clone_buffers"]

# ``Iterate(...)`` runs a Python-level ``NamedTuple.__new__``; ``tuple.__new__`` makes
# the same object at half the cost (once per iteration on tiny problems).
_new: Callable[..., Any] = tuple.__new__


def clone_buffers(state: State) -> State:
    """A copy of ``state`` whose arrays/tensors are fresh copies (other leaves, such as
    Python numbers, are shared)."""

    def copy(x: Any) -> Any:  # Python numbers and NumPy scalars are immutable: shared
        return _backend.of_leaves([x]).clone([x])[0] if _backend.is_array(x) else x

    return optree.tree_map(copy, state, none_is_leaf=False)


class Counter:
    """``grad_fn`` counted: ``n`` calls so far. The first output is validated (a bad
    one is re-raised as the ``ValueError``/``TypeError`` it is)."""

    __slots__ = ("grad_fn", "n")

    def __init__(self, grad_fn: GradFn) -> None:
        self.grad_fn = grad_fn
        self.n = 0

    def __call__(self, params: Params, *batch: Any) -> tuple[Any, Any]:
        self.n += 1
        out = self.grad_fn(params, *batch)
        if self.n == 1 and not isinstance(out, Linearization):  # residual providers
            try:
                return check_grad_fn_output(out, params)
            except (TypeError, ValueError) as exc:
                raise _BadGradFn(exc) from exc
        return out


class FirstOrder:
    """Runs a :class:`fnopt.Descent`: evaluate at :math:`x_k`, check, then update."""

    __slots__ = (
        "be",
        "gnorm",
        "grad_ctx",
        "grads",
        "grads_at_x",
        "k",
        "nan",
        "need_gnorm",
        "opt",
        "s",
        "spare",
        "to_float",
        "value",
        "x",
    )

    def __init__(
        self,
        opt: Descent,
        params: Params,
        state: State,
        grads: Counter,
        *,
        start: int,
        owned: bool,
        need_gnorm: bool,
        to_float: Callable[[Any], float],
        differentiable: bool,
    ) -> None:
        self.opt, self.grads, self.k = opt, grads, start
        self.be = _backend.of(params)
        if owned:  # the loop's own copy x_k, and a second buffer for x_{k+1} (written
            # whole by each ``advance`` before anything reads it: zeros, not a copy),
            # laid out alike: the caller's layout where it is dense, else contiguous
            self.x = _tree.clone(params)
            self.spare = _tree.zeros_like(self.x)
            self.s = state
        else:
            self.x, self.s, self.spare = params, state, None
        self.nan = self.be.scalar(math.nan, _tree.leaves(params)[0])
        self.value: Any = None
        self.gnorm: Any = None
        self.grads_at_x: Any = None
        self.need_gnorm = need_gnorm
        self.to_float = to_float
        ctx = self.be.grad_mode(differentiable)
        self.grad_ctx = None if isinstance(ctx, contextlib.nullcontext) else ctx

    def evaluate(self, batch: tuple[Any, ...]) -> Iterate:
        """The loss and gradient at the current params (one ``grad_fn`` call)."""
        self.value, g = self.grads(self.x, *batch)
        self.grads_at_x = g
        if self.need_gnorm:
            self.gnorm = _tree.global_norm(g)
            gnorm = self.to_float(self.gnorm)
        else:  # not computed: NaN (a float at once)
            self.gnorm, gnorm = self.nan, math.nan
        return _new(Iterate, (self.x, self.s, self.to_float(self.value), gnorm, self.k))

    def grad_norm_now(self) -> float:
        """The gradient norm at the current params (computed now if it was skipped)."""
        if self.grads_at_x is None:
            return math.nan
        return self.to_float(_tree.global_norm(self.grads_at_x))

    def overwrites(self) -> Any:
        """The params buffer the next :meth:`advance` writes into (``None``: new arrays)."""
        return self.spare

    def advance(self) -> None:
        """:math:`x_{k+1}` = ``opt.apply`` at :math:`x_k` (into the spare buffer)."""
        x = self.x
        if self.grad_ctx is None:  # nothing to switch (NumPy)
            self.x, self.s = self.opt.apply(
                x, self.value, self.grads_at_x, self.s, grad_norm=self.gnorm, out=self.spare
            )
        else:
            with self.grad_ctx:
                self.x, self.s = self.opt.apply(
                    x, self.value, self.grads_at_x, self.s, grad_norm=self.gnorm,
                    out=self.spare,
                )
        if self.spare is not None:
            self.spare = x
        self.grads_at_x = None
        self.k += 1


class Stepper:
    """Runs a step function ``step(params, grad_fn, state, *batch)``; its state records
    ``value`` and ``grad_norm`` at its input (``value_at="input"``) or output."""

    __slots__ = (
        "at_input",
        "grad_ctx",
        "grads",
        "k",
        "pending",
        "s",
        "step",
        "to_float",
        "x",
    )

    def __init__(
        self,
        step: Callable[..., tuple[Params, State]],
        value_at: str,
        params: Params,
        state: State,
        grads: Counter,
        *,
        start: int,
        to_float: Callable[[Any], float],
        differentiable: bool,
    ) -> None:
        self.step, self.grads, self.k = step, grads, start
        self.x, self.s = params, state
        self.pending: tuple[Any, Any] | None = None
        self.at_input = value_at == "input"
        self.to_float = to_float
        self.grad_ctx = _backend.of(params).grad_mode(differentiable)

    def evaluate(self, batch: tuple[Any, ...]) -> Iterate:
        """Take the step; the iterate to check is its input (``value_at="input"``) or
        its output."""
        with self.grad_ctx:
            x1, s1 = self.step(self.x, self.grads, self.s, *batch)
        self.pending = (x1, s1)
        v, g = self.to_float(s1.value), self.to_float(s1.grad_norm)
        if self.at_input:
            return _new(Iterate, (self.x, self.s, v, g, self.k))
        return _new(Iterate, (x1, s1, v, g, self.k + 1))

    def grad_norm_now(self) -> float:
        return math.nan

    def overwrites(self) -> Any:
        return None

    def advance(self) -> None:
        assert self.pending is not None
        self.x, self.s = self.pending
        self.pending = None
        self.k += 1
