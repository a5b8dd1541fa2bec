"""Composition: :func:`identity`, :func:`chain`, :func:`named_chain`, :func:`masked` and
:func:`partition`.

Each combinator also takes first-order optimizers (``fnopt.adam(1e-3)``) where it takes
transforms, and then returns an optimizer (see ``_lifts``)."""


from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import optree

from fnopt import tree
from fnopt._base import (
    Descent,
    Params,
    State,
    Transform,
    Updates,
    as_transform,
    call_update,
    passes_extra_args,
    update_params_fn,
)
from fnopt.transforms._common import (
    _builtin,
    _check_transform,
    _lifts,
    _stateless,
)
from fnopt.transforms.fused import _fused_update_params

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

    fused, fused_in_place_only = _fused_update_params(transforms) or (None, False)
    # [..., scaling, *extensions, lr]: the scaling's last division folded into the add
    # to params (extensions: terms appended, e.g. decoupled weight decay)
    apply_direction = transforms[-1].apply_direction if transforms else None
    at = len(transforms) - 2
    while at > 0 and transforms[at].extend_direction is not None:
        at -= 1
    direction = transforms[at].direction if at >= 0 else None
    extensions = [f for t in transforms[at + 1:-1] if (f := t.extend_direction) is not None]
    last_update_params = update_params_fn(transforms[-1] if transforms else identity())

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
        if fused is not None and (out is params or not fused_in_place_only):
            done = fused(grads, state, params, out)
            if done is not None:
                return done
        if not transforms:
            return tree.add(params, grads, out=out), state
        inplace = out is not None
        if direction is not None and apply_direction is not None:  # folded (see above)
            updates, head = update(grads, state[:at], params, inplace=inplace)
            d, s_dir = direction(updates, state[at], params, inplace=inplace)
            ext = []
            for extend, s in zip(extensions, state[at + 1:-1]):
                d, s = extend(d, s, params, inplace=inplace)
                ext.append(s)
            new_params, last = apply_direction(d, state[-1], params, out=out)
            return new_params, (*head, s_dir, *ext, last)
        # all but the last transform, then the last one adds its updates to params
        # (a learning-rate scale in one pass)
        if len(transforms) == 1:
            new_params, last = last_update_params(grads, state[0], params, out=out)
            return new_params, (last,)
        updates, head = update(grads, state[:-1], params, inplace=inplace)
        new_params, last = last_update_params(updates, state[-1], params, out=out)
        return new_params, (*head, last)

    return _builtin(init, passes_extra_args(update), "chain", update_params,
                    transforms=transforms)


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


def masked(transform: Transform, mask: Any) -> Transform:
    """Apply ``transform`` only to the leaves where ``mask`` is true.

    What the other leaves get depends on what is masked:

    * a transform (``masked(add_decayed_weights(1e-4), mask)``, optax's use inside a
      chain): they pass through unchanged (optax's rule), and the transforms after it
      in the chain treat them as any gradient;
    * a first-order optimizer (``masked(fnopt.adam(0.1), mask)``, a
      :class:`fnopt.Descent`): the result is an optimizer whose step leaves them where
      they are (frozen: their update is zero), since passing their raw gradient
      through would be added to the params and climb the loss.

    :func:`fnopt.descent` of a pass-through ``masked`` (a transform masked, nothing
    after it) is refused with a ValueError for the same reason: mask an optimizer, or
    chain a learning rate after ``masked``.

    Args:
      transform: the transform or first-order optimizer to apply to the selected
        leaves. It sees them as a list (in leaf order), with the matching params.
      mask: a pytree of bools with the structure of params (or a prefix of it: a bool
        for a whole subtree), or a function ``params -> mask``.

    Returns:
      A :class:`fnopt.Transform` with state :class:`MaskedState` (a
      :class:`fnopt.Descent` around it when ``transform`` is an optimizer).

    >>> import numpy as np, fnopt
    >>> p = {"w": np.ones(2), "b": np.ones(1)}
    >>> t = fnopt.masked(fnopt.add_decayed_weights(0.1), {"w": True, "b": False})
    >>> u, _ = t.update(fnopt.tree.zeros_like(p), t.init(p), p)
    >>> u["w"], u["b"]
    (array([0.1, 0.1]), array([0.]))
    >>> opt = fnopt.masked(fnopt.sgd(0.5), {"w": True, "b": False})
    >>> q, _ = opt.step(p, lambda p: (0.0, {"w": np.ones(2), "b": np.ones(1)}), opt.init(p))
    >>> q["w"], q["b"]  # b is frozen
    (array([0.5, 0.5]), array([1.]))
    """
    frozen = isinstance(transform, Descent)
    transform = as_transform(transform)
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
        out = tree.zeros_like(u) if frozen else list(u)
        for i, v in zip(idx, sub):
            out[i] = v
        return spec.unflatten(out), MaskedState(inner)

    t = _builtin(init, passes_extra_args(update), "masked", transform=transform, mask=mask,
                 frozen=frozen)
    return Descent(t) if frozen else t


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

    return _builtin(init, passes_extra_args(update), "partition", transforms=transforms,
                    labels=labels)




def named_chain(*transforms: tuple[str, Transform]) -> Transform:
    """:func:`chain` whose state is a dict ``name -> state`` (optax.named_chain).

    Args:
      transforms: ``(name, transform)`` pairs, names distinct strings; a first-order
        optimizer (``fnopt.adam(...)``) may stand for a transform, and the result is
        then an optimizer too.

    Returns:
      A :class:`fnopt.Transform` (a :class:`fnopt.Descent` when a pair held one).

    >>> import numpy as np, fnopt
    >>> t = fnopt.named_chain(("clip", fnopt.clip(1.0)), ("sgd", fnopt.scale(-0.1)))
    >>> s = t.init(np.zeros(1))
    >>> sorted(s)
    ['clip', 'sgd']
    >>> t.update(np.array([5.0]), s)[0]
    array([-0.1])
    """
    names: list[str] = []
    parts: list[Any] = []
    for i, pair in enumerate(transforms):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(f"named_chain: argument {i} must be a pair (name, transform), "
                            f"got {type(pair).__name__}")
        if pair[0] in names:
            raise ValueError(f"named_chain: the name {pair[0]!r} is used twice")
        names.append(pair[0])
        parts.append(pair[1])
    inner = chain(*parts)
    lifted = isinstance(inner, Descent)
    t = as_transform(inner)
    inner_update_params = update_params_fn(t)

    def init(params: Params) -> dict[str, Any]:
        return dict(zip(names, t.init(params)))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        out, new = call_update(t, updates, tuple(state[n] for n in names), params, inplace)
        return out, dict(zip(names, new))

    def update_params(
        grads: Updates, state: State, params: Params, *, out: Params | None = None
    ) -> tuple[Params, State]:
        new_params, new = inner_update_params(grads, tuple(state[n] for n in names), params,
                                              out=out)
        return new_params, dict(zip(names, new))

    named = _builtin(init, passes_extra_args(update), "named_chain", update_params,
                     transforms=tuple(zip(names, t.hyperparams["transforms"])))
    return Descent(named) if lifted else named
