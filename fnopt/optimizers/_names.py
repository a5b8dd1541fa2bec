"""torch.optim and optax spellings of optimizer arguments: the ones that mean the same
as an fnopt argument are accepted (``lr``, ``betas``, rmsprop's ``alpha``), the ones
fnopt has no use for are refused with a message that names what to do instead."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from fnopt import backend as _backend
from fnopt._base import as_scalar_hyperparam

F = TypeVar("F", bound=Callable[..., Any])

# torch.optim options that choose kernels: fnopt chooses its own
_KERNEL_FLAGS = ("foreach", "fused", "capturable")


def _is_torch_params(x: Any) -> bool:
    """Whether ``x`` is what torch.optim takes as its first argument (parameters or
    parameter groups) rather than a learning rate: ``model.parameters()`` (an
    iterator), a module, a list of tensors/arrays or of group dicts, one group dict,
    or a tensor with more than one element."""
    if isinstance(x, Iterator) or _backend.is_torch_module(x):
        return True
    if isinstance(x, Mapping):
        return "params" in x
    if isinstance(x, (list, tuple)):
        return bool(x) and all(
            _backend.is_array(e) or (isinstance(e, Mapping) and "params" in e) for e in x
        )
    be = _backend.of_leaf(x)
    return be is not None and be.size(x) > 1


def _first_contact(name: str) -> TypeError:
    """The error for ``fnopt.<name>(model.parameters(), lr=...)``: fnopt's form."""
    return TypeError(
        f"{name}: fnopt optimizers do not take the parameters; {name}(learning_rate, "
        f"...) builds a pure optimizer and the loop gets the params. Where torch.optim "
        f"takes model.parameters(), write:\n"
        f"    params = fnopt.torch.params_of(model)\n"
        f"    result = fnopt.fixed_point(fnopt.{name}(lr=0.1), params, grad_fn, stop=...)\n"
        f"    fnopt.torch.load_into(model, result.params)\n"
        f"Parameter groups (a list of dicts) are fnopt.partition({{'a': fnopt.{name}(0.1), "
        f"'b': fnopt.{name}(0.01)}}, labels) with labels a pytree of 'a'/'b' like params."
    )


def _renames(params: list[str], extra: dict[str, str]) -> dict[str, str]:
    names = {"lr": "learning_rate", **extra}
    if "momentum" not in params and "momentum" in extra.values():
        names = {k: v for k, v in names.items() if v != "momentum"}
    return {k: v for k, v in names.items() if v in params and k not in params}


def torch_spellings(extra: dict[str, str] | None = None) -> Callable[[F], F]:
    """Let an optimizer factory take torch.optim's spellings of its arguments.

    ``lr`` means ``learning_rate``; ``betas=(b1, b2)`` means ``b1``, ``b2``; ``extra``
    maps further names (e.g. rmsprop's ``alpha`` to ``decay``). ``foreach``, ``fused``
    and ``capturable`` are refused with a TypeError saying fnopt picks its kernels,
    ``differentiable`` points to ``fixed_point(differentiable=True)``. Giving both
    spellings of one argument is a TypeError.
    """

    def decorate(factory: F) -> F:
        sig = inspect.signature(factory)
        params = list(sig.parameters)
        renames = _renames(params, extra or {})
        has_betas = "b1" in params and "b2" in params

        @functools.wraps(factory)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > 1:
                raise TypeError(
                    f"{factory.__name__}: options after {params[0]!r} are keyword-only "
                    f"(one rule across fnopt: e.g. {factory.__name__}({args[0]!r}, "
                    f"{params[1] if len(params) > 1 else 'option'}=...)); got {len(args)} "
                    "positional arguments")
            first = kwargs.pop("params") if "params" in kwargs and "params" not in params \
                else args[0] if args else None
            if first is not None and _is_torch_params(first):
                raise _first_contact(factory.__name__)
            if args and params[0] == "learning_rate":
                args = (as_scalar_hyperparam(args[0]),)
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs or (new == params[0] and args):
                        raise TypeError(f"{factory.__name__}: got both {old!r} (torch.optim's "
                                        f"name) and {new!r}; pass {new!r} only")
                    kwargs[new] = kwargs.pop(old)
            if "betas" in kwargs and has_betas:
                betas = kwargs.pop("betas")
                if "b1" in kwargs or "b2" in kwargs:
                    raise TypeError(f"{factory.__name__}: got both 'betas' and b1/b2; pass "
                                    "b1 and b2 only")
                try:
                    kwargs["b1"], kwargs["b2"] = betas
                except (TypeError, ValueError):
                    raise ValueError(f"betas: expected a pair (b1, b2), got {betas!r}") from None
            for flag in _KERNEL_FLAGS:
                if flag in kwargs:
                    raise TypeError(
                        f"{factory.__name__}: {flag!r} is a torch.optim kernel choice; fnopt "
                        "picks its kernels itself (fixed_point runs updates in place on its "
                        "own buffers): drop the argument")
            if "differentiable" in kwargs and "differentiable" not in params:
                raise TypeError(
                    f"{factory.__name__}: 'differentiable' is an option of the loop in "
                    "fnopt: fnopt.fixed_point(..., differentiable=True)")
            if "learning_rate" in kwargs:
                kwargs["learning_rate"] = as_scalar_hyperparam(kwargs["learning_rate"])
            return factory(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
