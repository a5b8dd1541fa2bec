"""How :func:`fnopt.fixed_point` takes steps: a runner produces the next iterate to
check (:meth:`evaluate`) and, once the loop decides to go on, moves to it
(:meth:`advance`).

* :class:`FirstOrder` runs a :class:`fnopt.Descent` (every first-order alias and
  chain): it evaluates ``grad_fn`` itself, so the loss and gradient at :math:`x_k`
  are checked *before* the update, and the update is ``opt.apply``. On loop-owned
  buffers it writes :math:`x_{k+1}` into a second params buffer (ping-pong), so
  :math:`x_k` survives one more step (the last finite iterate, the best one), and the
  optimizer state is updated in place, after copying the buffers the update overwrites
  (none for plain ``sgd``), so the state paired with :math:`x_k` survives too
  (:meth:`FirstOrder.paired_state`). With ``check_every > 1`` there is no copy per
  step: the loop's copy of the last checked iterate (params and state) is the one
  it returns after a non-finite loss or a failed update.
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
from fnopt._base import Descent, GuardedGradFn, Params, State, _checked_output
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


class Counter(GuardedGradFn):
    """``grad_fn`` as the loop calls it (:class:`fnopt._base.GuardedGradFn`: it cannot
    modify the params, its output is checked at every call), counted: ``n`` calls so
    far. A bad first output is re-raised as the ``ValueError``/``TypeError`` it is;
    a residual provider's :class:`Linearization` is checked by the least-squares
    optimizer that asked for it."""

    __slots__ = ()

    def check(self, out: Any, g: Any) -> Any:
        if self.n > 1 and type(out) is tuple:
            return _checked_output(out, g, self.what)
        if isinstance(out, Linearization):  # residual providers
            return out
        try:
            return _checked_output(out, g, self.what)
        except (TypeError, ValueError) as exc:
            if self.n == 1:
                raise _BadGradFn(exc) from exc
            raise


class FirstOrder:
    """Runs a :class:`fnopt.Descent`: evaluate at :math:`x_k`, check, then update."""

    __slots__ = (
        "be",
        "checked",
        "due",
        "every",
        "first",
        "gnorm",
        "grad_ctx",
        "grads",
        "grads_at_x",
        "k",
        "kept",
        "kept_first",
        "nan",
        "need_gnorm",
        "opt",
        "owned_bufs",
        "pending",
        "prev_s",
        "s",
        "snap",
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
        check_every: int = 1,
        due: Callable[[int], bool] | None = None,
    ) -> None:
        self.opt, self.grads, self.k = opt, grads, start
        # losses are read to the host at every ``every``-th iteration (and where ``due``
        # says, e.g. a checkpoint); in between they wait in ``pending`` on the device
        self.every, self.due, self.first = check_every, due, start
        self.pending: list[tuple[int, Any]] = []
        self.checked = True  # whether the last evaluate read its loss
        self.be = _backend.of(params)
        if owned:  # the loop's own copy x_k, and a second buffer for x_{k+1} (written
            # whole by each ``advance`` before anything reads it: zeros, not a copy),
            # laid out alike: the caller's layout where it is dense, else contiguous
            self.x = _tree.clone(params)
            self.spare = _tree.zeros_like(self.x)
            self.s = state
        else:  # a copy: grad_fn is never handed the caller's arrays
            self.x, self.s, self.spare = _tree.clone(params), state, None
        # the state before the last update and copies of the buffers it overwrote in
        # place (``kept``: those buffers, found at the first update; ``None`` before)
        self.prev_s: Any = None
        self.kept: list[Any] | None = None
        self.kept_first: list[Any] = []
        self.snap: list[Any] = []
        self.nan = self.be.scalar(math.nan, _tree.leaves(params)[0])
        self.value: Any = None
        self.gnorm: Any = None
        self.grads_at_x: Any = None
        self.need_gnorm = need_gnorm
        self.to_float = to_float
        ctx = self.be.grad_mode(differentiable)
        self.grad_ctx = None if isinstance(ctx, contextlib.nullcontext) else ctx
        # the buffers only this loop holds: what torch's fused kernels need of them is
        # checked once (``Backend.can_fuse``), only the user's grads at every step
        self.owned_bufs = None
        if owned and self.be.has_fused:
            mine = [*_tree.leaves(self.x), *_tree.leaves(self.spare),
                    *(x for x in optree.tree_leaves(state) if _backend.is_array(x))]
            self.owned_bufs = _backend.OwnedBuffers(mine)

    def evaluate(self, batch: tuple[Any, ...]) -> Iterate:
        """The loss and gradient at the current params (one ``grad_fn`` call)."""
        self.value, g = self.grads(self.x, *batch)
        self.grads_at_x = g
        if self.every != 1:
            return self.evaluate_deferred(g)
        if self.need_gnorm:
            self.gnorm = _tree.global_norm(g)
            gnorm = self.to_float(self.gnorm)
        else:  # not computed: NaN (a float at once)
            self.gnorm, gnorm = self.nan, math.nan
        return _new(Iterate, (self.x, self.s, self.to_float(self.value), gnorm, self.k))

    def evaluate_deferred(self, g: Any) -> Iterate:
        """:meth:`evaluate` with ``check_every > 1``: the loss waits on the device;
        at a check it and every loss since the last check are read at once (one
        device-to-host read), and the iterate's value is the first of them that is not
        finite, if any (``checked`` says whether this iterate was read)."""
        k = self.k
        self.pending.append((k, self.value))
        self.gnorm = _tree.global_norm(g) if self.need_gnorm else self.nan
        if k % self.every and k != self.first and not (self.due is not None and self.due(k)):
            self.checked = False
            return _new(Iterate, (self.x, self.s, math.nan, math.nan, k))
        self.checked = True
        at, value = self.read_pending()
        gnorm = self.to_float(self.gnorm) if self.need_gnorm and at == k else math.nan
        return _new(Iterate, (self.x, self.s, value, gnorm, at))

    def read_pending(self) -> tuple[int, float]:
        """The losses not read yet, read now (one device-to-host read): ``(iteration,
        loss)`` of the first that is not finite, else of the newest; ``(-1, nan)``
        when there are none."""
        pending, self.pending = self.pending, []
        if not pending:
            return -1, math.nan
        i, value = self.be.first_non_finite([v for _, v in pending])
        return pending[i][0], value

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
        x, s = self.x, self.s
        if self.spare is not None and self.every == 1:  # keep what the update overwrites
            self.before_update(s)  # (check_every > 1: the copy at each check stands in)
        if self.grad_ctx is None and self.owned_bufs is None:  # nothing to switch (NumPy)
            self.x, self.s = self.opt.apply(
                x, self.value, self.grads_at_x, s, grad_norm=self.gnorm, out=self.spare
            )
        else:
            token = _backend.OWNED.set(self.owned_bufs)
            try:
                with self.grad_ctx or contextlib.nullcontext():
                    self.x, self.s = self.opt.apply(
                        x, self.value, self.grads_at_x, s, grad_norm=self.gnorm,
                        out=self.spare,
                    )
            finally:
                _backend.OWNED.reset(token)
        if self.spare is not None:
            self.spare = x
            if self.kept is None:
                self.find_kept()
        self.grads_at_x = None
        self.k += 1

    def before_update(self, s: State) -> None:
        """Copy the state's buffers the update will overwrite (all its arrays before the
        first update, when they are not known yet) into ``snap``."""
        self.prev_s = s
        if self.kept is None:
            arrays = [x for x in optree.tree_leaves(s) if _backend.is_array(x)]
            self.kept_first, self.snap = arrays, self.be.clone(arrays) if arrays else []
        elif self.kept:
            self.be.clone(self.kept, self.snap)

    def find_kept(self) -> None:
        """After the first update: the buffers it overwrote are the arrays that the new
        state still holds (the same objects); copy only those from now on."""
        now = {id(x) for x in optree.tree_leaves(self.s)}
        pairs = [(a, c) for a, c in zip(self.kept_first, self.snap)
                 if id(a) in now and a is not self.nan]
        self.kept = [a for a, _ in pairs]
        self.snap = [c for _, c in pairs]

    def paired_state(self, it: Iterate) -> State:
        """The state paired with ``it``'s params. On loop-owned buffers the state an
        update started from (``prev_s``) had its buffers overwritten: it is rebuilt from
        the copies taken before that update, so a stop at :math:`x_k` after the update
        to :math:`x_{k+1}` (a non-finite loss there), or an update that raised, still
        returns and saves the pair that belongs together."""
        if self.spare is None or it.state is not self.prev_s:
            return it.state
        kept = self.kept_first if self.kept is None else self.kept
        copies = {id(a): c for a, c in zip(kept, self.snap)}
        return optree.tree_map(lambda x: copies.get(id(x), x), it.state,
                               none_is_leaf=False)


class Stepper:
    """Runs a step function ``step(params, grad_fn, state, *batch)``; its state records
    ``value`` and ``grad_norm`` at its input (``value_at="input"``) or output."""

    checked = True  # every loss is read (a step function reads it itself)

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
        self.x, self.s = _tree.clone(params), state  # grad_fn never sees the caller's arrays
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

    def paired_state(self, it: Iterate) -> State:
        return it.state  # pure steps: every state stays as it was made

    def advance(self) -> None:
        assert self.pending is not None
        self.x, self.s = self.pending
        self.pending = None
        self.k += 1
