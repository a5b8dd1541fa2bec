"""torch.optim and optax spellings of optimizer arguments: the ones that mean the same
as an fnopt argument are accepted (``lr``, ``betas``, rmsprop's ``alpha``), the ones
fnopt has no use for are refused with a message that names what to do instead."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# torch.optim options that choose kernels: fnopt chooses its own
_KERNEL_FLAGS = ("foreach", "fused", "capturable")


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
            return factory(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
