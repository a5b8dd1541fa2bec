"""Argument checks of :func:`fnopt.fixed_point` (state, checkpoint arguments, params)."""

from __future__ import annotations

import os
from typing import Any

import optree

from fnopt import backend as _backend
from fnopt import tree as _tree
from fnopt._base import Params


def check_state(state: Any, template: Any, where: str = "") -> None:
    """``state`` must be a state of this optimizer for these params: the NamedTuple
    classes, dict keys, ``None`` leaves, tuple lengths and array shapes of ``template``
    (``opt.init(params)``, which has the structure of every later state). Lenient only
    where leaf values legitimately change kind: numbers match numbers, and 0-d arrays
    match any dtype."""
    here = where or "<root>"

    def fail(msg: str) -> None:
        raise ValueError(
            f"state: {msg} at {here}; pass a state made by opt.init(params) (or a later "
            "step) of this optimizer for params of this structure"
        )

    if template is None:
        if state is not None:
            fail(f"expected None, got {type(state).__name__}")
        return
    if optree.is_namedtuple_instance(template):
        if type(state) is not type(template):
            fail(f"expected a {type(template).__name__}, got {type(state).__name__}")
        for f, a, b in zip(template._fields, state, template):
            check_state(a, b, f"{where}.{f}")
    elif isinstance(template, (tuple, list)):
        if not isinstance(state, (tuple, list)) or len(state) != len(template):
            fail(f"expected a {type(template).__name__} of {len(template)} items, got "
                 f"{type(state).__name__}" + (f" of {len(state)}" if isinstance(
                     state, (tuple, list)) else ""))
        for i, (a, b) in enumerate(zip(state, template)):
            check_state(a, b, f"{where}[{i}]")
    elif isinstance(template, dict):
        if not isinstance(state, dict) or set(state) != set(template):
            fail(f"expected a dict with keys {sorted(map(str, template))}")
        for key in template:
            check_state(state[key], template[key], f"{where}[{key!r}]")
    elif _backend.of_leaf(template) is not None:
        kind = _backend.of_leaf(state)
        if kind is None:
            fail(f"expected an array, got {type(state).__name__}")
        if kind is not _backend.of_leaf(template):
            fail("holds an array of the other backend than the params")
        if tuple(state.shape) != tuple(template.shape):
            fail(f"shape {tuple(state.shape)} does not match {tuple(template.shape)}")
        if template.ndim and state.dtype != template.dtype:
            fail(f"dtype {state.dtype} does not match {template.dtype}")


def check_stop_state(stop_state: Any, template: Any, where: str = "") -> None:
    """``stop_state`` must be a state of the stop criterion (``template`` =
    ``stop.init()``): the same NamedTuple classes and, for the pairs ``a | b`` and
    ``a & b`` make, the same tuple lengths; the values inside may be anything the
    criterion's later states hold."""
    here = where or "<root>"
    if optree.is_namedtuple_instance(template):
        if type(stop_state) is not type(template):
            raise ValueError(
                f"stop_state: expected a {type(template).__name__} at {here}, got "
                f"{type(stop_state).__name__}; pass the Result.stop_state or "
                "Checkpoint.stop_state of a run with the same stop criterion"
            )
    elif type(template) is tuple and template:
        if type(stop_state) is not tuple or len(stop_state) != len(template):
            raise ValueError(
                f"stop_state: expected a tuple of {len(template)} items at {here}, got "
                f"{type(stop_state).__name__}; pass the Result.stop_state or "
                "Checkpoint.stop_state of a run with the same stop criterion"
            )
        for i, (a, b) in enumerate(zip(stop_state, template)):
            check_stop_state(a, b, f"{where}[{i}]")


def check_step_count(state: Any, start_iteration: int) -> None:
    """A given ``state`` that records its step count (``state.count``, as every fnopt
    optimizer's does) must be the state of iteration ``start_iteration``: params,
    state and iteration number go together (a checkpoint holds all three)."""
    count: Any = getattr(state, "count", None)
    if isinstance(count, bool):
        return
    if _backend.is_array(count) and count.ndim == 0 and "int" in str(count.dtype):
        count = int(count)
    if not isinstance(count, int) or count == start_iteration:
        return
    raise ValueError(
        f"state: its step count is {count} but start_iteration is {start_iteration}; "
        "params, state and start_iteration must come from the same iteration (pass "
        "ck.params, ck.state and start_iteration=ck.iteration of one checkpoint, or "
        "leave start_iteration out to count the iterations from 0)"
    )


def check_checkpoint_args(every: Any, path: Any, start_iteration: Any) -> None:
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, int):
            raise TypeError(
                f"checkpoint_every: expected an int or None, got {type(every).__name__}"
            )
        if every < 1:
            raise ValueError(f"checkpoint_every: expected an int >= 1, got {every}")
        if path is None:
            raise ValueError("checkpoint_path: required when checkpoint_every is given")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint_path: expected a str or os.PathLike, got {type(path).__name__}"
        )
    if start_iteration is None:
        return
    if isinstance(start_iteration, bool) or not isinstance(start_iteration, int):
        raise TypeError(f"start_iteration: expected an int, got {type(start_iteration).__name__}")
    if start_iteration < 0:
        raise ValueError(f"start_iteration: expected an int >= 0, got {start_iteration}")


def check_finite_params(params: Params, be: _backend.Backend) -> None:
    leaves = _tree.leaves(params)
    if be.all_finite(leaves):  # all at once (one read on torch); which one only if not
        return
    for path, leaf in zip(_tree.paths(params), leaves):
        if not be.all_finite([leaf]):
            raise ValueError(f"params: leaf {path} contains NaN or inf; start from finite values")


def check_every_arg(every: Any, on_host: bool, deferrable: bool) -> int:
    """``fixed_point``'s ``check_every``: an int >= 1 (above 1 only where the loop can
    leave the losses on the device: a first-order optimizer with no callback,
    ``on_epoch`` or ``record``), or ``None`` for the default (1 on the host,
    ``DEVICE_CHECK_EVERY`` on an accelerator where the losses can wait)."""
    if every is None:
        from fnopt.loop.driver import DEVICE_CHECK_EVERY

        return 1 if on_host or not deferrable else DEVICE_CHECK_EVERY
    if isinstance(every, bool) or not isinstance(every, int):
        raise TypeError(f"check_every: expected an int or None, got {type(every).__name__}")
    if every < 1:
        raise ValueError(f"check_every: expected an int >= 1, got {every}")
    if every > 1 and not deferrable:
        raise ValueError(
            "check_every: above 1 needs a first-order optimizer and no callback, on_epoch "
            f"or record=True (they read the loss at every iteration); got {every}"
        )
    return every


def truth(name: str, value: Any) -> bool:
    """Whether the return value of the hook ``name`` (a callback) asks to stop the run;
    a value that is neither true nor false (an array of several elements) is a
    ``TypeError`` naming the hook."""
    if value is None or value is False:
        return False
    try:
        return bool(value)
    except Exception as exc:  # numpy/torch: "the truth value ... is ambiguous"
        shape = getattr(value, "shape", None)
        what = (f"an array of shape {tuple(shape)}" if shape is not None
                else f"a {type(value).__name__}")
        raise TypeError(
            f"{name}: returned {what}, which is neither true nor false; return True (or "
            "any truthy value) to stop the run, False or None to go on"
        ) from exc
