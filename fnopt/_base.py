"""Core types (Transform, Optimizer, GradFn) and boundary validation.

Conventions every optimizer follows:

* An :class:`Optimizer` is ``(init, step)`` plus a flag ``value_at`` saying where the
  loss recorded in the state was evaluated: ``"input"`` — at the params passed *into*
  the step (first-order methods evaluate the gradient there and then move), or
  ``"output"`` — at the params the step *returns* (line searches evaluate there anyway).
  :func:`fnopt.fixed_point` uses it to pair each iterate with its own loss.
* Every optimizer state is a ``NamedTuple`` with at least the fields ``count`` (steps
  taken, a Python int), ``value`` (last loss, 0-d array/tensor) and ``grad_norm`` (last
  gradient norm, 0-d array/tensor).
* A state field named ``learning_rate`` anywhere inside a state holds the learning rate
  used by the last step (see :func:`learning_rate_of`).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol, TypeGuard

import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import tree as _tree

PyTree = Any
Params = Any
Updates = Any
State = Any
Schedule = Callable[[int], Any]
ScalarOrSchedule = float | Schedule


class GradFn(Protocol):
    """``grad_fn(params, *batch) -> (value, grads)``."""

    def __call__(self, params: Params, /, *batch: Any) -> tuple[Any, Params]: ...


class TransformInitFn(Protocol):
    def __call__(self, params: Params, /) -> State: ...


class TransformUpdateFn(Protocol):
    def __call__(
        self, updates: Updates, state: State, params: Params | None = None, /
    ) -> tuple[Updates, State]: ...


class UpdateParamsFn(Protocol):
    """``update_params(grads, state, params, *, out=None) -> (new_params, new_state)``."""

    def __call__(
        self, grads: Updates, state: State, params: Params, /, *, out: Params | None = None
    ) -> tuple[Params, State]: ...


class DirectionFn(Protocol):
    """``direction(updates, state, params, *, inplace) -> (Direction, new_state)``: the
    updates as a sum of quotients (see :class:`fnopt.transforms.Direction`)."""

    def __call__(
        self, updates: Updates, state: State, params: Params | None, /, *, inplace: bool
    ) -> tuple[Any, State]: ...


class ExtendDirectionFn(Protocol):
    """``extend_direction(direction, state, params, *, inplace) -> (direction,
    new_state)``: the direction with this transform's addition appended as terms."""

    def __call__(
        self, direction: Any, state: State, params: Params | None, /, *, inplace: bool
    ) -> tuple[Any, State]: ...


class ApplyDirectionFn(Protocol):
    """``apply_direction(direction, state, params, *, out=None) -> (new_params,
    new_state)``: ``params`` plus this transform's update of ``direction``."""

    def __call__(
        self, direction: Any, state: State, params: Params, /, *, out: Params | None = None
    ) -> tuple[Params, State]: ...


_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Transform:
    """A first-order building block, shaped like an optax ``GradientTransformation``.

    ``init(params) -> state``; ``update(grads, state, params) -> (updates, state)``.
    Updates are *added* to params, so a descent direction carries its minus sign.
    A Transform is an immutable pair; it unpacks as ``init, update = t``.

    fnopt's own transforms declare more (user transforms need none of it):

    * ``inplace=True``: ``update`` also takes a keyword ``inplace``. With
      ``inplace=True`` the caller gives ``state`` up: the update may overwrite the
      array buffers of ``state`` (and return them in the new state) instead of
      allocating new ones, and its result may share memory with the new state. The
      arithmetic is the same expression with another destination, so both give
      bitwise the same numbers. It never writes into ``updates`` or ``params``.
      Combinators pass the keyword to the transforms that declare it and call the
      others (user transforms, optax-shaped) without it.
    * ``name`` and ``hyperparams``: what the factory was called with (e.g.
      ``"scale_by_adam"``, ``{"b1": 0.9, ...}``), read to recognise chains that torch
      has a fused kernel for.
    * ``update_params``: see :meth:`update_params`.
    * ``direction`` (a scaling whose update ends in a division, e.g. RMSprop's
      :math:`g / (\\sqrt{v} + \\epsilon)`): the same update, its last division left
      undone: a :class:`fnopt.transforms.Direction` (a short sum of terms
      :math:`c_i\\,n_i / d_i`), which ``update`` evaluates.
    * ``apply_direction`` (a scale such as :func:`fnopt.scale_by_learning_rate`):
      params plus its update of such a direction, so that a :func:`fnopt.chain` ending
      ``[..., scaling, scale_by_learning_rate]`` writes :math:`p - \\eta\\,c\\,n/d`
      in one ``addcdiv`` pass per term instead of a division, a scale and an add.
    * ``extend_direction`` (a transform that adds a term, such as
      :func:`fnopt.add_decayed_weights`): appends it to a direction, so that the fold
      also runs through ``[..., scaling, add_decayed_weights, scale_by_learning_rate]``
      (decoupled weight decay).

    Attributes:
      init, update: the pair.
      inplace: whether ``update`` takes the ``inplace`` keyword.
      name: the factory's name, or ``None``.
      hyperparams: a read-only mapping of the factory's arguments.
    """

    __slots__ = ("_update_params", "apply_direction", "direction", "extend_direction",
                 "hyperparams", "init", "inplace", "name", "update")
    init: TransformInitFn
    update: TransformUpdateFn
    inplace: bool
    name: str | None
    hyperparams: Mapping[str, Any]
    _update_params: UpdateParamsFn | None
    direction: DirectionFn | None
    extend_direction: ExtendDirectionFn | None
    apply_direction: ApplyDirectionFn | None

    def __init__(
        self,
        init: TransformInitFn,
        update: TransformUpdateFn,
        *,
        inplace: bool = False,
        name: str | None = None,
        hyperparams: Mapping[str, Any] | None = None,
        update_params: UpdateParamsFn | None = None,
        direction: DirectionFn | None = None,
        apply_direction: ApplyDirectionFn | None = None,
        extend_direction: ExtendDirectionFn | None = None,
    ) -> None:
        object.__setattr__(self, "init", init)
        object.__setattr__(self, "update", update)
        object.__setattr__(self, "inplace", bool(inplace))
        object.__setattr__(self, "name", name)
        hp = _EMPTY if hyperparams is None else MappingProxyType(dict(hyperparams))
        object.__setattr__(self, "hyperparams", hp)
        object.__setattr__(self, "_update_params", update_params)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "apply_direction", apply_direction)
        object.__setattr__(self, "extend_direction", extend_direction)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __iter__(self) -> Any:
        return iter((self.init, self.update))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(init={self.init!r}, update={self.update!r})"

    def update_params(
        self, grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        """``params + update(grads, state, params)``: the new params and state.

        With ``out=None`` it is pure (new arrays). With ``out`` (a params-shaped tree of
        buffers the caller owns; it may be ``params`` itself) the new params are written
        into ``out`` and the caller gives ``state`` up (``update`` runs with
        ``inplace=True`` where declared). A transform may declare its own form (a
        learning-rate scale adds ``-lr * g`` in one pass; a chain that torch has a fused
        kernel for runs it); the default is ``update`` followed by an add.
        """
        own = self._update_params
        if own is not None:
            return own(grads, state, params, out=out)
        updates, new_state = call_update(self, grads, state, params, out is not None)
        return _tree.add(params, updates, out=out), new_state


# The loss of the step being applied, for transforms that read it (optax's "extra args":
# ``reduce_on_plateau``): set by :meth:`Descent.apply` for the duration of its update,
# read by :func:`call_update` for the transforms that declare ``takes_value``.
_STEP_LOSS: contextvars.ContextVar[Any] = contextvars.ContextVar("fnopt_step_loss", default=None)


# The extra keyword arguments of the combinator update being run (optax's
# ``update(g, s, p, loss=...)``), for the user transforms inside whose ``update`` takes
# them by name or through ``**kwargs``: set by :func:`passes_extra_args`.
_EXTRA_ARGS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fnopt_extra_args", default=None)


@functools.lru_cache(maxsize=512)
def _keyword_names(update: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword arguments ``update`` names after ``(updates, state, params)``;
    ``None`` where it takes ``**kwargs`` (any name)."""
    try:
        params = list(inspect.signature(update).parameters.values())
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params[3:] if p.kind in (
        inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD))


def _extra_args_for(update: Callable[..., Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The items of ``extra`` that ``update`` takes: all of them where it has
    ``**kwargs``, else those it names after ``(updates, state, params)``."""
    try:
        named = _keyword_names(update)
    except TypeError:  # an unhashable callable
        return {}
    if named is None:
        return extra
    return {k: v for k, v in extra.items() if k in named}


def call_update(
    t: Transform, updates: Updates, state: State, params: Params | None, inplace: bool
) -> tuple[Updates, State]:
    """``t.update(updates, state, params)``, in place where ``inplace`` and ``t``
    declares it (``t.inplace``), with ``value=`` the step's loss where ``t`` declares
    ``takes_value`` in its hyperparams, and with the extra keyword arguments of the
    enclosing combinator call that ``t.update`` takes (optax's extra args: a user
    transform's ``update(u, s, p, *, loss, **extra)``); the one place combinators
    decide."""
    if t.hyperparams.get("takes_value") is True:
        return t.update(updates, state, params, value=_STEP_LOSS.get())  # type: ignore[call-arg]
    extra = _EXTRA_ARGS.get()
    if extra:
        kwargs = _extra_args_for(t.update, extra)
        if kwargs:
            return t.update(updates, state, params, **kwargs)
    if inplace and t.inplace:
        return t.update(updates, state, params, inplace=True)  # type: ignore[call-arg]
    return t.update(updates, state, params)


def passes_extra_args(update: Callable[..., Any]) -> Callable[..., Any]:
    """A combinator's ``update`` that also takes optax's extra arguments
    (``update(grads, state, params, value=loss)``): ``value`` is handed to every
    transform inside that reads the loss (``reduce_on_plateau``, ``scale_by_polyak``:
    they declare ``takes_value``); other extra arguments are accepted and unused, as
    optax's ``chain`` does for transforms that take none."""

    @functools.wraps(update)
    def wrapped(updates: Updates, state: State, params: Params | None = None, *,
                inplace: bool = False, **extra_args: Any) -> tuple[Updates, State]:
        if not extra_args:
            return update(updates, state, params, inplace=inplace)
        value = extra_args.get("value")
        token = None if value is None else _STEP_LOSS.set(value)
        token_extra = _EXTRA_ARGS.set(extra_args)
        try:
            return update(updates, state, params, inplace=inplace)
        finally:
            _EXTRA_ARGS.reset(token_extra)
            if token is not None:
                _STEP_LOSS.reset(token)

    return wrapped


def reads_step_loss(t: Any) -> bool:
    """Whether ``t`` or a transform composed inside it (a :class:`Descent`'s ``inner``,
    or one a combinator declares in its hyperparams, as fnopt's combinators do) declares
    ``takes_value``; a factory wrapped by ``inject_hyperparams`` counts too (its
    transforms are built at every step). A wrapper that hides its inner transforms
    (declares none) is not looked into: it cannot pass the loss on anyway, since only
    fnopt's combinators hand ``value=`` to the transforms they call."""
    if isinstance(t, Descent):  # a lifted transform: what it wraps
        return t._reads_loss
    if not isinstance(t, Transform):
        return False
    hp = t.hyperparams
    if hp.get("takes_value") is True or "factory" in hp:
        return True
    return any(_holds_loss_reader(v) for v in hp.values())


def _holds_loss_reader(v: Any) -> bool:
    if isinstance(v, Transform):
        return reads_step_loss(v)
    if isinstance(v, Mapping):
        return any(_holds_loss_reader(x) for x in v.values())
    if isinstance(v, (tuple, list)):
        return any(_holds_loss_reader(x) for x in v)
    return False


class StepFn(Protocol):
    def __call__(
        self, params: Params, grad_fn: GradFn, state: State, /, *batch: Any
    ) -> tuple[Params, State]: ...


class Optimizer(NamedTuple):
    """An optimizer: ``init(params) -> state`` and a pure
    ``step(params, grad_fn, state, *batch) -> (params, state)``.

    ``value_at`` is ``"input"`` when the loss and gradient norm stored in the state after
    a step were evaluated at the params passed in, ``"output"`` when at those returned.
    """

    init: Callable[[Params], State]
    step: StepFn
    value_at: Literal["input", "output"] = "input"


class DescentState(NamedTuple):
    """State of a first-order optimizer made by :func:`fnopt.descent`.

    Attributes:
      count: number of steps taken.
      value: the loss at the params passed into the last step.
      grad_norm: the gradient norm there.
      inner: the state of the wrapped :class:`Transform`.
    """

    count: int  # type: ignore[assignment]
    value: Any
    grad_norm: Any
    inner: Any


class Descent(Transform):
    """A first-order optimizer that is also a :class:`Transform`.

    Every first-order alias (:func:`fnopt.sgd`, :func:`fnopt.adam`, ...) and
    :func:`fnopt.descent` return one. As a transform it composes like any other
    (``chain(clip_by_global_norm(1.0), adam(1e-3))``, ``partition``, ``masked``, ...);
    as an optimizer it has ``init(params) -> state`` and a pure
    ``step(params, grad_fn, state, *batch) -> (params, state)`` that evaluates
    ``grad_fn`` once at the params given and adds the updates.

    Attributes:
      init: ``init(params) -> state``; the state is a :class:`DescentState` (or another
        NamedTuple with the fields ``count``, ``value``, ``grad_norm``).
      update: ``update(grads, state, params) -> (updates, state)``, the transform view.
      inner: the transform being lifted (what combinators compose).
      value_at: ``"input"``: the loss recorded in the state is the one at the params
        passed *into* the step.
    """

    __slots__ = ("_apply_fn", "_reads_loss", "inner")
    inner: Transform
    _apply_fn: UpdateParamsFn
    _reads_loss: bool
    value_at: Literal["input"] = "input"

    def __init__(
        self,
        inner: Transform,
        init: TransformInitFn | None = None,
        update: TransformUpdateFn | None = None,
        update_params: UpdateParamsFn | None = None,
    ) -> None:
        if init is None or update is None:
            init, update, update_params = _descent_fns(inner)
        super().__init__(init, update, inplace=True, update_params=update_params)
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "_apply_fn", update_params_fn(self))  # what apply runs
        object.__setattr__(self, "_reads_loss", reads_step_loss(inner))

    def step(
        self, params: Params, grad_fn: GradFn, state: State, /, *batch: Any
    ) -> tuple[Params, State]:
        """One step: ``(f, g) = grad_fn(params, *batch)``, then :meth:`apply`.
        ``grad_fn`` is called as :func:`call_grad_fn` says (it cannot modify
        ``params``; its output is checked)."""
        value, grads = call_grad_fn(grad_fn, params, batch)
        return self.apply(params, value, grads, state)

    def apply(
        self,
        params: Params,
        value: Any,
        grads: Params,
        state: State,
        *,
        grad_norm: Any = None,
        out: Params | None = None,
    ) -> tuple[Params, State]:
        """The update half of :meth:`step`, given the loss and gradient at ``params``.

        Returns ``(params + updates, state)`` with ``value`` and ``grad_norm`` (computed
        from ``grads`` when not given) recorded in the state.

        Args:
          out: the destination. ``None`` (the default): pure, new arrays, nothing
            passed in is modified. A params-shaped tree of buffers the caller owns
            (:func:`fnopt.fixed_point` passes its own; it may be ``params`` itself):
            the new params are written into ``out``, and the array buffers of
            ``state`` are overwritten too (the caller gives ``state`` up; use the
            returned state). Both destinations run the same arithmetic and give
            bitwise the same numbers; ``grads`` is only read. Any memory layout
            works, and ``grads`` may share memory with ``params`` or ``out`` (a
            gradient that is the params themselves, new params written over the
            gradient's buffer): the accelerated paths (torch's fused kernels, the
            folded division) run only on inputs they are correct for.

        >>> import numpy as np, fnopt
        >>> opt = fnopt.adam(0.1)
        >>> p = np.array([1.0, -2.0])
        >>> s = opt.init(p)
        >>> q, s2 = opt.apply(p, p @ p, 2 * p, s)  # pure: p and s unchanged
        >>> r, s3 = opt.apply(p, p @ p, 2 * p, s, out=p)  # into p; s given up
        >>> r is p, bool((q == r).all())
        (True, True)
        """
        if grad_norm is None:
            grad_norm = _tree.global_norm(grads)
        if self._reads_loss:  # a transform inside reads the step's loss (plateau)
            token = _STEP_LOSS.set(value)
            try:
                new_params, new = self._apply_fn(grads, state, params, out=out)
            finally:
                _STEP_LOSS.reset(token)
        else:
            new_params, new = self._apply_fn(grads, state, params, out=out)
        value = _as_0d(value, grad_norm)
        if type(new) is DescentState:  # the common state: built directly (tiny problems)
            return new_params, _new(DescentState, (new.count, value, grad_norm, new.inner))
        return new_params, new._replace(value=value, grad_norm=grad_norm)


# ``tuple.__new__`` builds a NamedTuple without its Python-level ``__new__`` (per step).
_new: Callable[..., Any] = tuple.__new__


def update_params_fn(t: Transform) -> UpdateParamsFn:
    """The function :meth:`Transform.update_params` runs for ``t``: its own
    (declared) one, called directly by the per-step paths, or the default method."""
    own = t._update_params
    return t.update_params if own is None else own


def _as_0d(value: Any, like: Any) -> Any:
    """``value`` as a 0-d array/tensor (a NumPy scalar or Python float from a user's
    ``grad_fn`` becomes a 0-d array of ``like``'s dtype; arrays of either backend pass
    through: a loss is never moved between backends here)."""
    if _backend.is_array(value):
        return value
    return _backend.of_value(like).as_0d(value, like)


def _descent_fns(
    inner: Transform,
) -> tuple[TransformInitFn, TransformUpdateFn, UpdateParamsFn]:
    """``init``/``update``/``update_params`` of :func:`fnopt.descent` over ``inner``:
    the state is a :class:`DescentState` wrapping the inner state."""

    def init(params: Params) -> DescentState:
        # float32/64 (bfloat16/float16: torch.optim's arithmetic in the params' dtype),
        # one backend, non-empty: named errors
        be = check_params(params, low_precision=True)
        nan = be.scalar(float("nan"), _tree.leaves(params)[0])
        return DescentState(0, nan, nan, inner.init(params))

    @passes_extra_args
    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, DescentState]:
        out, new_inner = call_update(inner, updates, state.inner, params, inplace)
        return out, DescentState(state.count + 1, state.value, state.grad_norm, new_inner)

    inner_update_params = update_params_fn(inner)

    def update_params(
        grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, DescentState]:
        new_params, new_inner = inner_update_params(grads, state.inner, params, out=out)
        return new_params, _new(
            DescentState, (state.count + 1, state.value, state.grad_norm, new_inner)
        )

    return init, update, update_params


def as_transform(t: Any) -> Transform:
    """The transform a combinator composes: the lifted ``inner`` of a :class:`Descent`,
    or ``t`` itself."""
    return t.inner if isinstance(t, Descent) else t


def is_optimizer(x: Any) -> TypeGuard[Optimizer | Descent]:
    """Whether ``x`` can be stepped: an :class:`Optimizer` or a :class:`Descent`."""
    return isinstance(x, (Optimizer, Descent))


# -- validation ----------------------------------------------------------------------

_ALLOWED = ("float32", "float64")
# taken where torch.optim takes them: by the first-order optimizers (their arithmetic in
# the params' dtype, as torch.optim's foreach steps), the loop and checkpoints
_LOW_PRECISION = ("bfloat16", "float16")


def _dtype_name(x: Any) -> str:
    return _backend.dtype_name(x.dtype)


def check_params(params: Params, *, what: str = "params",
                 low_precision: bool = False) -> _backend.Backend:
    """Validate a params pytree; return its backend.

    Rejects empty trees, leaves that are not arrays (a Python or NumPy scalar leaf gets
    a message saying to pass a 0-d array), mixed backends, torch tensors on the
    ``meta`` device (no data), non-float32/64 dtypes (bfloat16 and float16 too, unless
    ``low_precision``: the first-order optimizers take them) and zero-size leaves,
    naming the leaf path and the dtype.
    """
    leaves = optree.tree_leaves(params)
    if not leaves:
        raise ValueError(f"{what}: empty pytree (no arrays to optimize)")
    for i, leaf in enumerate(leaves):
        if not _backend.is_array(leaf):
            path = _fmt(optree.tree_paths(params)[i])
            raise TypeError(
                f"{what}: leaves must be numpy.ndarray or torch.Tensor; leaf {path} "
                f"{_not_array_hint(leaf)}"
            )
    be = _backend.of_leaves(leaves, what=what)
    paths = None
    for i, leaf in enumerate(leaves):
        name = _dtype_name(leaf)
        bad: str | None = None
        error: type[Exception] = ValueError
        if name not in _ALLOWED and not (low_precision and name in _LOW_PRECISION):
            bad, error = _dtype_problem(name, low_precision), TypeError
        elif (layout := be.layout_problem(leaf)) is not None:
            bad, error = layout, TypeError
        elif be.size(leaf) == 0:
            bad = "has zero size; every leaf needs at least one element"
        elif be.is_meta(leaf):
            bad = (
                "is on the 'meta' device (a tensor without data); materialise it first "
                "(e.g. module.to_empty(device='cpu') and initialise the weights) and "
                "pass tensors on 'cpu' or 'cuda'"
            )
        if bad is not None:
            paths = paths or [_fmt(p) for p in optree.tree_paths(params)]
            raise error(f"{what}: leaf {paths[i]} {bad}")
    return be


def _dtype_problem(name: str, low_precision: bool) -> str:
    """Why a leaf of dtype ``name`` is refused."""
    if name in _LOW_PRECISION:
        return (f"has dtype {name}; this method needs float32 or float64 (its line search, "
                "solver or differences are not meaningful in low precision); bfloat16 and "
                "float16 params are taken by the first-order optimizers (fnopt.sgd, "
                "fnopt.adam, ... and chains of transforms)")
    if name.startswith("complex"):
        return (f"has dtype {name}; complex params are not supported: optimize the real "
                "and imaginary parts as real leaves (torch.view_as_real(x), or a "
                "{'re': x.real, 'im': x.imag} pytree), as torch.optim does internally")
    allowed = "float32, float64, bfloat16 or float16" if low_precision else "float32 or float64"
    return f"has dtype {name}; expected {allowed}"


def _not_array_hint(leaf: Any) -> str:
    """What a params leaf that is not an array is, and what to pass instead."""
    if isinstance(leaf, np.generic):
        return (
            f"is a NumPy scalar ({type(leaf).__name__}), not an array; pass a 0-d "
            f"array instead: np.asarray(x) (e.g. np.array(1.0)) or a torch tensor"
        )
    if isinstance(leaf, numbers.Number):
        return (
            f"is a Python {type(leaf).__name__}; pass a 0-d array instead: "
            f"np.array({leaf!r}) (float64) or torch.tensor({leaf!r})"
        )
    return f"is {type(leaf).__name__}"


def _fmt(path: tuple[Any, ...]) -> str:
    return "".join(f"[{k!r}]" for k in path) if path else "<root>"


class OutputValueError(ValueError):
    """A user function (loss, gradient, Hessian, HVP) returned a value of the wrong
    shape, structure or size. It is a ``ValueError``, and :func:`fnopt.fixed_point`
    lets it through unchanged (not as an ``OptimizationError``)."""


class OutputTypeError(TypeError):
    """A user function returned a value of the wrong type, dtype or backend. It is a
    ``TypeError``, and :func:`fnopt.fixed_point` lets it through unchanged."""


def _is_np_scalar_like(p: Any, g: Any) -> bool:
    """Whether ``g`` is a NumPy scalar standing for the 0-d NumPy array leaf ``p``."""
    return isinstance(g, np.generic) and type(p) is np.ndarray and p.ndim == 0


def check_grads(params: Params, grads: Params, *, what: str = "grads") -> Params:
    """Check that ``grads`` has the structure, shapes and dtypes of ``params``; return
    it normalised.

    Where ``params`` has a 0-d NumPy array leaf, ``grads`` may hold a NumPy scalar of
    the same dtype (``2 * p["b"]`` or ``(r * x).mean()`` give ``np.float64``): it is
    returned as a 0-d array. Every other mismatch raises :class:`OutputValueError`
    (structure, shape) or :class:`OutputTypeError` (type, dtype) naming the leaf path.

    >>> import numpy as np
    >>> check_grads({"b": np.array(0.0)}, {"b": np.float64(2.0)})
    {'b': array(2.)}
    """
    p_leaves, p_spec = optree.tree_flatten(params)
    g_leaves, g_spec = optree.tree_flatten(grads)
    if p_spec != g_spec:
        raise OutputValueError(
            f"{what}: structure {g_spec} does not match params structure {p_spec}"
        )
    fixed: list[Any] | None = None
    paths = None  # leaf by leaf first, so that a wrong leaf type is named by its path
    for i, (p, g) in enumerate(zip(p_leaves, g_leaves)):
        if not _backend.same_type(p, g):
            if _is_np_scalar_like(p, g) and g.dtype == p.dtype:
                fixed = fixed or list(g_leaves)
                fixed[i] = np.asarray(g)
                continue
            if _is_np_scalar_like(p, g):
                msg = f"has dtype {g.dtype}, params leaf has {_dtype_name(p)}"
            else:
                msg = f"is {type(g).__name__}, params leaf is {type(p).__name__}"
                if type(p) is np.ndarray:
                    msg += f" (return an array, e.g. np.asarray(g, dtype=np.{p.dtype}))"
        elif tuple(p.shape) != tuple(g.shape):
            msg = f"has shape {tuple(g.shape)}, params leaf has {tuple(p.shape)}"
        elif p.dtype != g.dtype:
            msg = f"has dtype {_dtype_name(g)}, params leaf has {_dtype_name(p)}"
        elif (problem := _backend.of_value(g).layout_problem(g)) is not None:
            msg = problem
        else:
            continue
        paths = paths or [_fmt(q) for q in optree.tree_paths(params)]
        err = OutputValueError if "shape" in msg else OutputTypeError
        raise err(f"{what}: leaf {paths[i]} {msg}")
    try:
        _backend.of_leaves(g_leaves, what=what)
    except TypeError as exc:
        raise OutputTypeError(str(exc)) from None
    return grads if fixed is None else g_spec.unflatten(fixed)


def check_loss(value: Any, *, what: str = "loss") -> Any:
    """Return ``value`` as a 0-d array/tensor or raise naming ``what``.

    A NumPy scalar or a Python real becomes a 0-d array; a non-scalar raises
    :class:`OutputValueError`, a complex or non-numeric value :class:`OutputTypeError`.
    """
    if not (_backend.is_leaf(value) or (
        isinstance(value, numbers.Real) and not isinstance(value, bool)
    )):
        raise OutputTypeError(
            f"{what}: must be a 0-d array or tensor, got {type(value).__name__}"
        )
    be = _backend.of_value(value)
    arr = be.as_0d(value, None)
    if arr.ndim != 0:
        raise OutputValueError(
            f"{what}: must be a scalar (0-d {be.noun}), got shape {tuple(arr.shape)}"
        )
    if be.is_complex(arr):
        raise OutputTypeError(f"{what}: must be real, got dtype {_dtype_name(arr)}")
    if not _dtype_name(arr).startswith(_REAL_DTYPES):
        raise OutputTypeError(
            f"{what}: must have a real number dtype (float or int), got dtype "
            f"{_dtype_name(arr)}"
        )
    return be.to_floating(arr)


_REAL_DTYPES = ("float", "bfloat", "int", "uint")


def check_grad_fn_output(out: Any, params: Params, *, what: str = "grad_fn") -> tuple[Any, Any]:
    """Validate ``grad_fn``'s return value, a ``(value, grads)`` pair matching params;
    return it normalised (the loss a 0-d array/tensor, NumPy-scalar gradient leaves 0-d
    arrays; see :func:`check_loss` and :func:`check_grads`)."""
    if not (isinstance(out, tuple) and len(out) == 2):
        got = f"a tuple of length {len(out)}" if isinstance(out, tuple) else type(out).__name__
        raise OutputTypeError(f"{what}: must return a (value, grads) pair, got {got}")
    value = check_loss(out[0], what=f"{what} value")
    grads = check_grads(params, out[1], what=f"{what} grads")
    leaves = optree.tree_leaves(params)
    if leaves and _backend.is_leaf(out[0]):
        be_value, be_params = _backend.of_value(out[0]), _backend.of_value(leaves[0])
        if be_value is not be_params:
            raise OutputTypeError(
                f"{what} value: is a {be_value.title} {be_value.noun} but the params are "
                f"{be_params.title}"
            )
    return value, grads


# -- calling a user's function -------------------------------------------------------
#
# Every call fnopt makes to a user's function of the params (``grad_fn``, a Hessian,
# HVP or residual provider) goes through :func:`guarded_call`, and every ``grad_fn``
# call through :func:`call_grad_fn` (or a :class:`GuardedGradFn`, the loop's): the
# function cannot modify the params unnoticed, its output is checked at every call,
# and a caller that keeps the output across further calls asks for its own copy.


class ParamsModifiedError(OutputValueError):
    """A user function (``grad_fn``, a Hessian, HVP or residual function) wrote into
    the params fnopt passed it.

    NumPy params are passed as read-only views of the same memory, so the write itself
    raises (NumPy's ``ValueError``, re-raised as this error naming the function; the
    arrays are unchanged). Torch has no read-only tensors: the leaves' version counters
    are compared around the call and a write is reported after it returns (the tensors
    it was given have then been written: in :func:`fnopt.fixed_point` these are the
    loop's own copies, never the caller's; with ``opt.step`` by hand, the tensors
    passed to the step). It is an :class:`OutputValueError`, so
    :func:`fnopt.fixed_point` lets it through unchanged."""


def _read_only_hint(what: str) -> str:
    return (
        f"fnopt passes the params to {what} as read-only views, so that it cannot "
        f"modify them; {what} must not write into its params: compute into new arrays, "
        f"or copy a leaf first (p = p.copy()) where a library needs a writeable array"
    )


class _Guard:
    """One params tree as a user's function is handed it: ``leaves``, ``spec`` (the
    treedef; ``None`` for a bare array, whose identity alone says it is the same
    params), ``be`` (the backend), ``handed`` (read-only views on NumPy, the tree
    itself on torch) and ``tracked`` (torch: writes are found by version counters)."""

    __slots__ = ("be", "handed", "layouts", "leaves", "params", "spec", "tracked")

    def __init__(self, params: Params, leaves: list[Any], spec: Any, be: _backend.Backend,
                 handed: Params) -> None:
        self.params, self.leaves, self.spec, self.be = params, leaves, spec, be
        self.handed = handed
        self.tracked = be.versions(leaves[:1]) is not None
        # whether a leaf of this backend can have a layout fnopt refuses (torch: sparse)
        self.layouts = type(be).layout_problem is not _backend.Backend.layout_problem


def _guard_of(params: Params) -> _Guard:
    leaves, spec = optree.tree_flatten(params)
    be = _backend.of_value(leaves[0]) if leaves else _backend.NUMPY
    ro = be.read_only(leaves)
    if len(leaves) == 1 and leaves[0] is params:  # a bare array
        return _Guard(params, leaves, None, be, ro[0])
    same = _same_objects(ro, leaves)
    return _Guard(params, leaves, spec, be, params if same else spec.unflatten(ro))


def _same_objects(xs: list[Any], ys: list[Any]) -> bool:
    """Whether two lists hold the same objects (a loop: no generator per call)."""
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys):  # noqa: SIM110 (a generator per call leaves traced memory)
        if x is not y:
            return False
    return True


def guarded_call(
    fn: Callable[..., Any], params: Params, args: tuple[Any, ...] = (), *,
    what: str = "grad_fn",
) -> Any:
    """``fn(params, *args)``, called so that ``fn`` cannot modify ``params`` unnoticed.

    NumPy leaves are passed as read-only views (a write raises; it is re-raised as
    :class:`ParamsModifiedError` naming ``what``, NumPy's message kept); torch leaves
    as they are, their version counters compared around the call (a write raises
    :class:`ParamsModifiedError` naming ``what`` and the leaf). The output is returned
    unchecked. A :class:`GuardedGradFn` guards itself and is called as it is.

    >>> import numpy as np
    >>> def grad_fn(p):
    ...     p *= 2.0  # writes into its params
    ...     return p @ p, p
    >>> guarded_call(grad_fn, np.ones(2))
    Traceback (most recent call last):
    ...
    fnopt._base.ParamsModifiedError: grad_fn raised ValueError: output array is read-only; ...
    """
    if isinstance(fn, GuardedGradFn):
        return fn(params, *args)
    return _call_guarded(fn, _guard_of(params), args, what)


def _call_guarded(fn: Callable[..., Any], g: _Guard, args: tuple[Any, ...], what: str) -> Any:
    """:func:`guarded_call` with the guard of the params made."""
    versions = g.be.versions(g.leaves) if g.tracked else None
    try:
        out = fn(g.handed, *args)
    except ValueError as exc:
        _raise_if_read_only(exc, g, what)
        raise
    if versions is not None:
        after = g.be.versions(g.leaves)
        if after is not None and after != versions:
            i = next(i for i, (a, b) in enumerate(zip(after, versions)) if a != b)
            path = _fmt(optree.tree_paths(g.params)[i])
            raise ParamsModifiedError(
                f"{what}: modified its params in place (leaf {path} was written during "
                f"the call); {what} must not write into its params: compute new tensors "
                f"(out-of-place operations, or p = p.clone() first)"
            )
    return out


def _raise_if_read_only(exc: ValueError, g: _Guard, what: str) -> None:
    """Raise :class:`ParamsModifiedError` for NumPy's error on a write into the
    read-only views ``fn`` was handed (other errors: return, the caller re-raises)."""
    if g.handed is not g.params and "read-only" in str(exc) and not isinstance(
        exc, OutputValueError
    ):
        raise ParamsModifiedError(
            f"{what} raised ValueError: {exc}; {_read_only_hint(what)}"
        ) from exc


_NP_FLOAT_SCALARS = (np.float64, np.float32)


def _value_ok(value: Any, leaf0: Any, be: _backend.Backend) -> Any:
    """``value`` as fnopt's own 0-d array when it is, cheaply, a 0-d array of the
    params' type and dtype (or a NumPy float scalar for NumPy params); else ``None``."""
    vt = type(value)
    if vt is type(leaf0) or _backend.same_type(value, leaf0):
        if value.ndim == 0 and value.dtype == leaf0.dtype:
            return be.copy(value)
        return None
    if vt in _NP_FLOAT_SCALARS and type(leaf0) is np.ndarray:
        return np.asarray(value)  # a new 0-d array (a scalar is immutable)
    return None


def _grads_ok(g: _Guard, grads: Any) -> bool:
    """Whether ``grads`` has, cheaply checked, the structure, leaf types, shapes and
    dtypes of the guarded params (else :func:`check_grads` says what is wrong)."""
    if g.spec is None:  # a bare array
        p = g.params
        return type(grads) is type(p) and grads.shape == p.shape and (
            grads.dtype == p.dtype) and (not g.layouts or g.be.layout_problem(grads) is None)
    g_leaves, g_spec = optree.tree_flatten(grads)
    if g_spec != g.spec:
        return False
    for p, x in zip(g.leaves, g_leaves):
        if not (
            (type(x) is type(p) or _backend.same_type(p, x))
            and x.shape == p.shape
            and x.dtype == p.dtype
            and (not g.layouts or g.be.layout_problem(x) is None)
        ):
            return False
    return True


def _checked_output(out: Any, g: _Guard, what: str) -> tuple[Any, Any]:
    """``grad_fn``'s output checked against the guarded params (every call; the
    common case costs a few comparisons per leaf); the loss is fnopt's own copy."""
    if type(out) is tuple and len(out) == 2 and g.leaves:
        value = _value_ok(out[0], g.leaves[0], g.be)
        if value is not None and _grads_ok(g, out[1]):
            return value, out[1]
    value, grads = check_grad_fn_output(out, g.params, what=what)
    if _backend.is_array(value) and value is out[0]:
        value = _backend.of_value(value).copy(value)
    return value, grads


class GuardedGradFn:
    """A ``grad_fn`` as fnopt calls it: with params it cannot modify unnoticed
    (:func:`guarded_call`), its output checked at every call (a ``(value, grads)``
    pair: a real 0-d loss of the params' backend, gradients with the structure,
    shapes and dtypes of the params; :class:`OutputValueError` /
    :class:`OutputTypeError` naming the leaf otherwise) and the loss returned as
    fnopt's own copy (every optimizer records it in its state). ``n`` counts the
    calls. Step functions handed one call it as any ``grad_fn``
    (:func:`call_grad_fn` does not guard it twice). The guards of the last two params
    trees are kept, so that the loop's two ping-pong buffers are wrapped once."""

    __slots__ = ("_guards", "fn", "n", "what")

    def __init__(self, fn: Callable[..., Any], what: str = "grad_fn") -> None:
        self.fn, self.what, self.n = fn, what, 0
        self._guards: tuple[_Guard, ...] = ()

    def guard(self, params: Params) -> _Guard:
        """The guard of ``params``: a kept one if ``params`` is the same bare array, or
        the same container holding the same leaf objects; else a new one."""
        if not _backend.is_array(params):
            leaves = optree.tree_leaves(params)
            for g in self._guards:
                if g.params is params and _same_objects(g.leaves, leaves):
                    return g
        g = _guard_of(params)
        self._guards = (g, *self._guards[:1])
        return g

    def __call__(self, params: Params, *batch: Any) -> Any:
        self.n += 1
        for g in self._guards:  # the loop's two buffers (bare arrays): by identity
            if g.params is params and g.spec is None:
                break
        else:
            g = self.guard(params)
        if g.tracked:
            out = _call_guarded(self.fn, g, batch, self.what)
        else:  # NumPy: read-only views, nothing to compare after the call
            try:
                out = self.fn(g.handed, *batch)
            except ValueError as exc:
                _raise_if_read_only(exc, g, self.what)
                raise
        if g.spec is None and type(out) is tuple and len(out) == 2 and self.n > 1:
            # the common case, a bare array checked inline (a few comparisons)
            value, grads = out
            p = g.params
            if type(grads) is type(p) and grads.shape == p.shape and (
                grads.dtype == p.dtype) and (not g.layouts or g.be.layout_problem(grads) is None):
                if type(value) in _NP_FLOAT_SCALARS and type(p) is np.ndarray:
                    return out  # a NumPy scalar is immutable: nothing to copy
                if type(value) is type(p) and value.ndim == 0 and value.dtype == p.dtype:
                    return g.be.copy(value), grads
        return self.check(out, g)

    def check(self, out: Any, g: _Guard) -> Any:
        """The output, checked (:func:`call_grad_fn`'s rules)."""
        return _checked_output(out, g, self.what)


def call_grad_fn(
    grad_fn: GradFn, params: Params, batch: tuple[Any, ...] = (), *, keep: bool = False,
    what: str = "grad_fn",
) -> tuple[Any, Any]:
    """``grad_fn(params, *batch)`` as every fnopt optimizer calls it: guarded
    (:func:`guarded_call`: ``grad_fn`` cannot modify ``params`` unnoticed) and its
    output checked at every call (see :class:`GuardedGradFn`); the loss is fnopt's
    own copy.

    Args:
      keep: the caller keeps the gradients across further calls of ``grad_fn`` (a
        line search's trials, a quasi-Newton pair): they are returned as fnopt's own
        copies, so that a ``grad_fn`` that refills one buffer at every call (as
        ``p.grad`` is refilled) cannot change them afterwards.

    >>> import numpy as np
    >>> buf = np.zeros(2)
    >>> def grad_fn(p):  # refills one buffer at every call
    ...     buf[:] = 2 * p
    ...     return p @ p, buf
    >>> v, g = call_grad_fn(grad_fn, np.ones(2), keep=True)
    >>> _ = grad_fn(np.zeros(2))
    >>> g
    array([2., 2.])
    """
    if isinstance(grad_fn, GuardedGradFn):
        value, grads = grad_fn(params, *batch)
    else:
        g = _guard_of(params)
        value, grads = _checked_output(_call_guarded(grad_fn, g, batch, what), g, what)
    if keep:
        leaves, spec = optree.tree_flatten(grads)
        if leaves:
            grads = spec.unflatten(_backend.of_value(leaves[0]).clone(leaves))
    return value, grads


def check_hessian(h: Any, params: Params, *, what: str = "hess_fn") -> Any:
    """Validate a Hessian over the flattened params: an ``(n, n)`` array/tensor on the
    params' backend, returned with the params' dtype. For a single parameter (``n ==
    1``) a 0-d array or NumPy scalar is accepted and returned as a ``(1, 1)`` array.
    Raises :class:`OutputValueError` (shape) or :class:`OutputTypeError` (type)."""
    leaves = optree.tree_leaves(params)
    be = _backend.of_leaves(leaves)
    n = sum(be.size(x) for x in leaves)
    if be is _backend.NUMPY and isinstance(h, np.generic):
        h = np.asarray(h)
    if not _backend.is_array(h) or _backend.of_value(h) is not be:
        raise OutputTypeError(
            f"{what}: must return a {be.name} array for {be.name} params, got "
            f"{type(h).__name__}"
        )
    if n == 1 and h.ndim == 0:
        h = h.reshape(1, 1)
    if tuple(h.shape) != (n, n):
        raise OutputValueError(
            f"{what}: expected a ({n}, {n}) Hessian for {n} parameters, got shape "
            f"{tuple(h.shape)}"
        )
    return be.astype(h, leaves[0])


# Keyword names from torch.optim / optax / scipy.optimize that a user of those libraries
# reaches for, with no exact fnopt counterpart: what to write instead.
_NO_LR = (
    "the line search picks each step, there is no learning rate; pass "
    "search=fnopt.strong_wolfe(...) or fnopt.backtracking(...) (and initial_step=)"
)
_STOP = "stopping is fixed_point's job: pass stop=fnopt.stop.{} to fnopt.fixed_point"
FOREIGN_OPTIMIZER_HINTS: dict[str, str] = {
    "lr": _NO_LR,
    "learning_rate": _NO_LR,
    "max_iter": _STOP.format("max_iters(n)"),
    "maxiter": _STOP.format("max_iters(n)"),
    "max_eval": _STOP.format("max_iters(n)") + " (each step evaluates until the search "
    "accepts; Result.n_evals counts the evaluations)",
    "tolerance_grad": _STOP.format("grad_norm_below(tol)"),
    "gtol": _STOP.format("grad_norm_below(tol)"),
    "tolerance_change": _STOP.format("loss_change_below(tol)"),
    "ftol": _STOP.format("loss_change_below(tol)"),
    "line_search_fn": "pass search=fnopt.strong_wolfe() (torch's 'strong_wolfe') or "
    "search=fnopt.backtracking()",
    "linesearch": "pass search=fnopt.strong_wolfe(...) (optax's zoom line search) or "
    "search=fnopt.backtracking(...)",
    "c1": "the line-search constants belong to the search: pass "
    "search=fnopt.strong_wolfe(c1=..., c2=...) or fnopt.backtracking(c1=...)",
    "c2": "the line-search constants belong to the search: pass "
    "search=fnopt.strong_wolfe(c1=..., c2=...)",
}


def translate_kwargs(
    fn: str,
    given: dict[str, Any],
    aliases: dict[str, str],
    hints: dict[str, str] | None = None,
    defaults: dict[str, tuple[Any, Any]] | None = None,
) -> dict[str, Any]:
    """Translate keyword arguments spelled as in torch.optim, optax or scipy.optimize.

    Args:
      fn: the fnopt function's name, for messages.
      given: the extra keyword arguments it received (``**kwargs``).
      aliases: foreign name -> the fnopt argument with exactly the same meaning.
      hints: foreign name -> what to write instead (no exact counterpart).
      defaults: fnopt argument -> ``(the value it was called with, its default)``;
        an alias given next to a non-default value of its argument is a conflict.

    Returns:
      ``{fnopt argument: value}`` for the aliases used.

    Raises:
      TypeError: for a name with a hint (naming what to use), an alias given twice or
        next to its fnopt argument, or an unknown name (as Python would).

    >>> translate_kwargs("lbfgs", {"history_size": 5}, {"history_size": "memory"})
    {'memory': 5}
    """
    out: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name, value in given.items():
        if name in aliases:
            target = aliases[name]
            called_with, default = (defaults or {}).get(target, (None, None))
            if target in out or (called_with is not default and called_with != default):
                other = source.get(target, target)
                raise TypeError(
                    f"{fn}: got {name}= and {other}=, both meaning {target}= (the fnopt "
                    f"name); pass only {target}="
                )
            out[target], source[target] = value, name
        elif hints is not None and name in hints:
            raise TypeError(f"{fn}: unexpected keyword argument {name!r}: {hints[name]}")
        else:
            raise TypeError(f"{fn}() got an unexpected keyword argument {name!r}")
    return out


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` must be an int (not a bool) >= ``minimum``: a ``TypeError`` for other
    types, a ``ValueError`` for a smaller int, both naming ``name``. Returns it as a
    Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_bool(name: str, value: Any) -> None:
    """``value`` must be a bool (a flag): ``"no"`` or ``1`` are refused, not read as truth."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")


def check_callable(f: Any, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name}: expected a callable, got {type(f).__name__}")


def check_nonnegative(name: str, value: Any) -> None:
    """``value`` must be a finite real >= 0 (or a callable schedule)."""
    if callable(value):
        return
    be = _backend.of_leaf(value)
    if be is not None and value.ndim > 0 and be.size(value) != 1:
        raise ValueError(f"{name}: expected a number or a one-element array/tensor, got "
                         f"shape {tuple(value.shape)}")
    if be is not None and be.is_floating(value):
        value = be.to_float(value)  # a one-element hyperparameter (a tensor: differentiable)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")


def as_scalar_hyperparam(value: Any) -> Any:
    """A one-element array or tensor hyperparameter (torch.optim takes ``lr`` of shape
    ``[1]``) as a 0-d one of the same backend, so it scales every leaf without
    broadcasting a 0-d leaf to shape ``(1,)``; anything else unchanged. A reshape is a
    view: a recorded tensor stays differentiable."""
    be = _backend.of_leaf(value)
    if be is not None and value.ndim > 0 and be.size(value) == 1:
        return value.reshape(())
    return value


def check_positive(name: str, value: Any) -> None:
    """``value`` must be a finite real > 0."""
    check_nonnegative(name, value)
    if not callable(value) and value == 0:
        raise ValueError(f"{name}: expected a number > 0, got {value}")


def check_unit_interval(name: str, value: Any, *, closed: bool = False) -> None:
    """``value`` must lie in [0, 1) (or [0, 1] with ``closed=True``)."""
    check_nonnegative(name, value)
    if value > 1 or (value == 1 and not closed):
        raise ValueError(f"{name}: expected a number in [0, 1{']' if closed else ')'}, got {value}")


LearningRate = float | dict[Any, Any] | None


def learning_rate_of(state: State) -> LearningRate:
    """The learning rate the last step used, as torch.optim's ``param_groups[i]["lr"]``
    reads it: the ``learning_rate`` field of ``state`` (or of any NamedTuple nested in
    it), times the current scale of every :func:`fnopt.reduce_on_plateau` in the same
    optimizer, so the rate reported is the one the next step takes.

    For :func:`fnopt.partition` (parameter groups) it is a dict ``label -> rate`` (the
    rate of each group, ``None`` for a group without one); ``None`` if the state
    records no rate.

    >>> import numpy as np, fnopt
    >>> p = {"w": np.ones(2), "b": np.ones(1)}
    >>> opt = fnopt.partition({"fast": fnopt.adam(0.1), "slow": fnopt.sgd(0.01)},
    ...                       {"w": "fast", "b": "slow"})
    >>> fnopt.learning_rate_of(opt.init(p))
    {'fast': 0.1, 'slow': 0.01}
    """
    # the transforms import this module; their state classes are looked up at call time
    from fnopt.transforms.combine import PartitionState
    from fnopt.transforms.plateau import ReduceLROnPlateauState

    rate: Any = None
    groups: Any = None
    scale = 1.0
    stack = [state]
    while stack:
        s = stack.pop()
        if isinstance(s, PartitionState):
            if groups is None:
                groups = {k: learning_rate_of(v) for k, v in s.inner.items()}
        elif isinstance(s, ReduceLROnPlateauState):
            scale *= float(s.scale)
        elif isinstance(s, tuple):
            if (rate is None and optree.is_namedtuple_instance(s)
                    and "learning_rate" in optree.namedtuple_fields(s)):
                lr = s.learning_rate  # type: ignore[attr-defined]
                rate = None if lr is None else _backend.of_value(lr).to_float(lr)
            stack.extend(reversed(s))
    if rate is None and groups is not None:
        return _scaled(groups, scale)
    return _scaled(rate, scale)


def _scaled(rate: LearningRate, scale: float) -> LearningRate:
    if isinstance(rate, dict):
        return {k: _scaled(v, scale) for k, v in rate.items()}
    return None if rate is None else rate * scale if scale != 1.0 else rate
