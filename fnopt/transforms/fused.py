"""Torch fused kernels for recognised chains (an acceleration; the generic path is the
definition)."""


from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from fnopt._base import (
    Params,
    ScalarOrSchedule,
    State,
    Transform,
    Updates,
)
from fnopt.transforms._common import (
    _flat,
)
from fnopt.transforms.adaptive import ScaleByAdagradState, ScaleByAdamState
from fnopt.transforms.scaling import ScaleByLearningRateState, TraceState

# -- fused kernels -----------------------------------------------------------------------
#
# The one place that recognises chains torch has a fused kernel for. It reads the
# transforms' declared names and hyperparameters (``Transform.name``/``hyperparams``);
# the kernels are :meth:`fnopt.backend.Backend.fused_adam_` and friends. The generic path
# (each transform's own update) is the definition; tests hold the kernels to it.

FusedFn = Callable[[Updates, State, Params, Any], "tuple[Params, State] | None"]


def _fused_update_params(transforms: tuple[Transform, ...]) -> tuple[FusedFn, bool] | None:
    """For ``chain(*transforms)`` of the shape ``[scale(-1)] [add_decayed_weights]
    core [add_decayed_weights] scale_by_learning_rate`` with core ``scale_by_adam``
    (the second weight decay only for it: AdamW), ``trace`` or ``scale_by_adagrad``,
    or none (plain SGD), an ``update_params`` running torch's fused kernel; it returns
    ``None`` at a step the kernel cannot take (NumPy leaves, an autograd graph, a
    tensor learning rate), and the chain then runs its transforms; and whether it runs
    only when the destination is the params themselves (plain SGD). ``None`` when the
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
    fn = functools.partial(
        _run_fused, kind, core, i, hps[core] if core is not None else {},
        hps[i]["learning_rate"], opts,
    )
    plain = kind == "sgd" and not (opts["weight_decay"] or opts["maximize"])
    return fn, plain


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _run_fused(
    kind: str, core: int | None, lr_at: int, hp: Mapping[str, Any],
    learning_rate: ScalarOrSchedule, opts: dict[str, Any],
    grads: Updates, state: State, params: Params, out: Params | None,
) -> tuple[Params, State] | None:
    """One fused step of a recognised chain (see :func:`_fused_update_params`): the
    params into ``out`` (or copies), the state buffers in place (or copies); ``None``
    (nothing written but ``out``, which the generic path then writes whole) where the
    kernel is not correct for the inputs it would get: ``be.can_fuse``, asked with
    exactly those inputs, after the copies."""
    if (out is not params) and kind == "sgd" and core is None and not (
        opts["weight_decay"] or opts["maximize"]
    ):
        # plain sgd into new arrays or another buffer: one pass (p - lr g written
        # there) beats a copy, then the kernel
        return None
    g, spec, be = _flat(grads)
    if not be.has_fused:  # NumPy: the generic path, at once
        return None
    lr_state = state[lr_at]
    lr = learning_rate(lr_state.count) if callable(learning_rate) else learning_rate
    if not _is_number(lr):
        return None
    lp = spec.flatten_up_to(params)
    s: Any = state[core] if core is not None else None
    if out is None:  # new arrays: the copies (their layouts) are the kernel's inputs
        p = be.clone(lp)
        bufs = _kernel_buffers(kind, s, hp, spec, be, inplace=False)
        ok = be.can_fuse(p, g, *(b for b in bufs if b is not None))
    else:  # decided before anything is written: ``out`` may overlap the inputs
        p = spec.flatten_up_to(out)
        bufs = _kernel_buffers(kind, s, hp, spec, be, inplace=True)
        ok = be.can_fuse(p, g, *(b for b in bufs if b is not None)) and (
            out is params or not be.overlaps(p, lp)
        )
        if ok and out is not params:
            be.clone(lp, p)
    if not ok:
        return None  # layouts, dtypes, devices or memory the kernel cannot take
    new = list(state)
    if kind == "scale_by_adam":
        mu, nu, nu_max = bufs
        be.fused_adam_(
            p, g, mu, nu, nu_max, count=s.count + 1, lr=float(lr), b1=hp["b1"], b2=hp["b2"],
            eps=hp["eps"], **opts,
        )
        new[core] = ScaleByAdamState(  # type: ignore[index]
            s.count + 1, spec.unflatten(mu), spec.unflatten(nu),
            None if nu_max is None else spec.unflatten(nu_max),
        )
    elif kind == "scale_by_adagrad":
        (sums,) = bufs
        be.fused_adagrad_(
            p, g, sums, lr=float(lr), eps=hp["eps"], weight_decay=opts["weight_decay"],
            maximize=opts["maximize"],
        )
        new[core] = ScaleByAdagradState(s.count + 1, spec.unflatten(sums))  # type: ignore[index]
    else:  # sgd, with momentum (trace) or without
        momentum = bufs[0] if bufs else []
        be.fused_sgd_(
            p, g, momentum, lr=float(lr), momentum=hp.get("decay", 0.0),
            dampening=hp.get("dampening", 0.0), nesterov=hp.get("nesterov", False),
            weight_decay=opts["weight_decay"], maximize=opts["maximize"],
            first=s is not None and s.count == 0,
        )
        if s is not None:
            new[core] = TraceState(s.count + 1, spec.unflatten(momentum))  # type: ignore[index]
    new[lr_at] = ScaleByLearningRateState(lr_state.count + 1, lr)
    return (spec.unflatten(p) if out is None else out), tuple(new)


def _kernel_buffers(
    kind: str, s: Any, hp: Mapping[str, Any], spec: Any, be: Any, inplace: bool
) -> list[Any]:
    """The state buffers the kernel of ``kind`` updates, as leaf lists: the state's
    own (``inplace``: the caller gave the state up) or copies. Adam: ``[mu, nu,
    nu_max or None]``; Adagrad: ``[sums]``; SGD: ``[momentum]``, or ``[]`` without."""

    def buffers(t: Any) -> list[Any]:
        leaves = spec.flatten_up_to(t)
        return leaves if inplace else be.clone(leaves)

    if kind == "scale_by_adam":
        return [buffers(s.mu), buffers(s.nu), buffers(s.nu_max) if hp["amsgrad"] else None]
    if kind == "scale_by_adagrad":
        return [buffers(s.sum_of_squares)]
    return [buffers(s.trace)] if s is not None else []
