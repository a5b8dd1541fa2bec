"""Bridge between ``torch.nn.Module`` and fnopt's pure params.

:func:`params_of` takes a module's parameters out as a dict pytree (fresh, detached
copies named as in ``named_parameters``); :func:`fnopt.grad.module` turns the module
and a loss into a ``grad_fn`` over such a dict; :func:`load_into` writes optimized
params back into the module.

This module imports torch; ``import fnopt`` does not (``fnopt.torch`` is loaded on
first attribute access, or with ``import fnopt.torch``).

>>> import torch, fnopt
>>> model = torch.nn.Linear(2, 1).double()
>>> params = fnopt.torch.params_of(model)
>>> sorted(params), params["weight"].requires_grad
(['bias', 'weight'], False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["params_of", "load_into", "buffers_of"]


def _check_module(module: Any) -> None:
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")


def params_of(module: torch.nn.Module, *, trainable_only: bool = True) -> dict[str, torch.Tensor]:
    """The module's parameters as a dict pytree of detached copies.

    Keys are the names from ``module.named_parameters()`` (e.g. ``"0.weight"`` for an
    ``nn.Sequential``); the values are fresh tensors (same dtype and device, no
    autograd history) that share no memory with the module, so optimizing them never
    touches the model until :func:`load_into`.

    Args:
      module: a ``torch.nn.Module``.
      trainable_only: skip parameters with ``requires_grad=False`` (the default,
        matching what ``torch.optim`` would update).

    Returns:
      ``{name: tensor}`` in ``named_parameters`` order.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))
    >>> list(params_of(net))
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """
    _check_module(module)
    return {
        name: p.detach().clone()
        for name, p in module.named_parameters()
        if p.requires_grad or not trainable_only
    }


def buffers_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's buffers (e.g. BatchNorm running statistics) as detached copies.

    >>> import torch
    >>> list(buffers_of(torch.nn.BatchNorm1d(2)))
    ['running_mean', 'running_var', 'num_batches_tracked']
    """
    _check_module(module)
    return {name: b.detach().clone() for name, b in module.named_buffers()}


def load_into(module: torch.nn.Module, params: Mapping[str, Any]) -> torch.nn.Module:
    """Copy ``params`` (a dict as made by :func:`params_of`) into ``module``'s parameters.

    This is the one deliberate mutation in the bridge: the module's parameter tensors
    are overwritten in place (so an existing ``torch.optim`` optimizer or hook that
    holds them sees the new values); ``params`` is only read. Every key must name a
    parameter of the module and every shape must match; nothing is written unless all
    of them do. Parameters not in ``params`` are left as they are.

    Args:
      module: the ``torch.nn.Module`` to update.
      params: ``{name: tensor or array}`` with names from ``named_parameters``.

    Returns:
      ``module`` itself, for chaining.

    >>> import torch
    >>> net = torch.nn.Linear(1, 1)
    >>> _ = load_into(net, {"weight": torch.tensor([[2.0]]), "bias": torch.tensor([0.5])})
    >>> net(torch.tensor([[1.0]])).item()
    2.5
    """
    _check_module(module)
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params: expected a dict of name -> tensor (see params_of), got "
            f"{type(params).__name__}"
        )
    own = dict(module.named_parameters())
    unknown = [k for k in params if k not in own]
    if unknown:
        raise ValueError(
            f"params: {unknown!r} are not parameters of the module (it has {list(own)!r})"
        )
    values = {}
    for name, value in params.items():
        target = own[name]
        v = torch.as_tensor(value)
        if tuple(v.shape) != tuple(target.shape):
            raise ValueError(
                f"params: leaf {name!r} has shape {tuple(v.shape)}, the module's parameter "
                f"has {tuple(target.shape)}"
            )
        if not (v.is_floating_point() or v.is_complex()):
            raise TypeError(f"params: leaf {name!r} has non-float dtype {v.dtype}")
        values[name] = v
    with torch.no_grad():
        for name, v in values.items():
            own[name].copy_(v)
    return module


class _Swap:
    """Runs a module's ``forward`` with other tensors in place of its parameters.

    Built once per module (the map from each parameter name to the submodules and
    attribute names that hold it, tied aliases included); each call puts the given
    tensors into those ``_parameters`` slots, calls the module and puts the module's own
    tensors back, also when ``forward`` raises. This is what
    ``torch.func.functional_call`` does, without re-resolving names and ties on every
    call (about a tenth of a small network's forward pass). Buffers are the module's
    live buffers, so BatchNorm running statistics update as in a plain forward pass.
    """

    __slots__ = ("module", "names", "slots")

    def __init__(self, module: torch.nn.Module) -> None:
        first: dict[int, str] = {}
        slots: dict[str, list[tuple[torch.nn.Module, str]]] = {}
        for name, p in module.named_parameters(remove_duplicate=False):
            canonical = first.setdefault(id(p), name)
            owner, _, attr = name.rpartition(".")
            slots.setdefault(canonical, []).append((module.get_submodule(owner), attr))
        self.module = module
        self.slots = slots
        self.names = frozenset(slots)

    def __call__(self, params: Mapping[str, torch.Tensor], inputs: Any) -> Any:
        saved: list[tuple[dict[str, Any], str, Any]] = []
        try:
            for name, tensor in params.items():
                for owner, attr in self.slots[name]:
                    table: dict[str, Any] = owner._parameters
                    saved.append((table, attr, table[attr]))
                    table[attr] = tensor
            return self.module(inputs)
        finally:
            for table, attr, own in reversed(saved):
                table[attr] = own
