"""Generate docs/migration/torch-optim-table.md: every torch.optim optimizer and
lr_scheduler class of the installed torch, and every constructor argument, with the
fnopt name, the difference, or "not supported" and why.

The optimizer rows are probed: each argument is passed to the fnopt function at torch's
default value, and a refusal is quoted (its first sentence) as the reason. The
scheduler rows are written by hand (:data:`SCHEDULERS`, :data:`SCHEDULER_ARGS`); a
class or argument of the installed torch that has no row is an error, so
tests/test_torch_optim_table.py can check that the table is complete and current.

Usage: ``python scripts/torch_optim_table.py [--check]`` (``--check``: exit 1 when the
file differs from what would be generated).
"""

from __future__ import annotations

import inspect
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.optim.lr_scheduler as lrs

import fnopt
from fnopt.optimizers.torch_lbfgs import torch_lbfgs

OUT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "migration" / "torch-optim-table.md"

# torch.optim class -> (fnopt call, the factory probed, what differs)
OPTIMIZERS: dict[str, tuple[str, Callable[..., Any] | None, str]] = {
    "Adadelta": ("fnopt.adadelta", fnopt.adadelta, "same trajectory"),
    "Adafactor": ("fnopt.adafactor", fnopt.adafactor, "same trajectory (torch's variant)"),
    "Adagrad": ("fnopt.adagrad", fnopt.adagrad, "same trajectory"),
    "Adam": ("fnopt.adam", fnopt.adam, "same trajectory; `amsgrad=True` or `fnopt.amsgrad`"),
    "Adamax": ("fnopt.adamax", fnopt.adamax, "same trajectory"),
    "AdamW": ("fnopt.adamw", fnopt.adamw, "same trajectory"),
    "ASGD": ("fnopt.asgd", fnopt.asgd, "same trajectory; the averaged params are in the state"),
    "LBFGS": ("fnopt.lbfgs(lr=..., ...)", torch_lbfgs,
              "any torch-only argument (lr, max_iter, ...) selects torch's method "
              "(`fnopt.optimizers.torch_lbfgs.torch_lbfgs`); `fnopt.lbfgs()` without them is "
              "fnopt's line-search L-BFGS"),
    "Muon": ("fnopt.muon", fnopt.muon,
             "Newton-Schulz in the params' dtype by default; `ns_dtype=\"bfloat16\"` runs it "
             "as torch does (the same trajectory); matrices only: route other leaves with "
             "`fnopt.partition`"),
    "NAdam": ("fnopt.nadam", fnopt.nadam, "same trajectory"),
    "RAdam": ("fnopt.radam", fnopt.radam, "same trajectory"),
    "RMSprop": ("fnopt.rmsprop", fnopt.rmsprop, "same trajectory"),
    "Rprop": ("fnopt.rprop", fnopt.rprop, "same trajectory"),
    "SGD": ("fnopt.sgd", fnopt.sgd, "same trajectory"),
    "SparseAdam": ("not supported", None,
                   "fnopt optimizes dense arrays; sparse tensors are refused with a message "
                   "(use `fnopt.adam` on dense gradients)"),
}

# every optimizer's first argument
PARAMS_ROW = ("params", "not an argument: params are passed to `opt.init(params)` and "
              "`opt.step(params, grad_fn, state)` (from a module: `fnopt.torch.params_of`); "
              "param groups: `fnopt.partition`")

_LAST = ("last_epoch", "not needed: a schedule is a pure function of the step count; to "
         "resume, pass `start_iteration=` to `fixed_point` (the state's count drives it)")
_OPT = ("optimizer", "not needed: pass the schedule as the optimizer's `learning_rate` "
        "(e.g. `fnopt.sgd(fnopt.schedules.cosine_decay(0.1, 100))`)")
_EPOCH = ("stepped per optimizer step; for torch's per-epoch `scheduler.step()` wrap it in "
          "`fnopt.schedules.per_epoch(schedule, len(loader))`")

# torch scheduler -> (fnopt, what differs)
SCHEDULERS: dict[str, tuple[str, str]] = {
    "LambdaLR": ("a callable `count -> lr` as `learning_rate`", "any function of the step "
                 "count is a schedule; multiply by the base rate yourself"),
    "MultiplicativeLR": ("not supported", "its factor compounds on the previous rate (a "
                         "stateful product); write the closed form as a callable schedule"),
    "StepLR": ("fnopt.schedules.exponential_decay(lr, step_size, gamma, staircase=True)",
               _EPOCH),
    "MultiStepLR": ("fnopt.schedules.piecewise_constant(lr, {m: gamma for m in milestones})",
                    _EPOCH),
    "ConstantLR": ("fnopt.schedules.piecewise_constant(lr * factor, {total_iters: 1 / factor})",
                   _EPOCH),
    "LinearLR": ("fnopt.schedules.linear(lr * start_factor, lr * end_factor, total_iters)",
                 _EPOCH),
    "ExponentialLR": ("fnopt.schedules.exponential_decay(lr, 1, gamma)", _EPOCH),
    "SequentialLR": ("fnopt.schedules.join_schedules(schedules, milestones)", _EPOCH),
    "CosineAnnealingLR": ("fnopt.schedules.cosine_decay(lr, T_max, alpha=eta_min / lr)",
                          _EPOCH + "; torch's closed form past `T_max` (rising again) is not "
                          "followed: the rate stays at `eta_min`"),
    "ChainedScheduler": ("a callable multiplying schedules' factors", "no combinator; "
                         "`lambda t: s1(t) * s2(t) / lr` composes two multiplicative schedules"),
    "ReduceLROnPlateau": ("fnopt.reduce_on_plateau(factor, patience=..., ...)",
                          "a transform last in a chain: `fnopt.chain(fnopt.sgd(lr), "
                          "fnopt.reduce_on_plateau(...))`; on a validation metric: "
                          "`value_fn=val_loss, every=len(loader)`"),
    "CyclicLR": ("not supported", "no cyclic schedule yet; a callable schedule can express it "
                 "(momentum cycling is not available)"),
    "CosineAnnealingWarmRestarts": ("not supported", "no restart schedule yet; "
                                    "`join_schedules` of cosine_decay pieces expresses it"),
    "OneCycleLR": ("fnopt.schedules.cosine_onecycle_schedule(total_steps, max_lr, pct_start, "
                   "div_factor, final_div_factor)", "cosine annealing only; momentum is not "
                   "cycled"),
    "PolynomialLR": ("fnopt.schedules.polynomial(lr, 0.0, power, total_iters)", _EPOCH),
}

# (scheduler, argument) -> fnopt spelling / difference / not supported and why
SCHEDULER_ARGS: dict[tuple[str, str], str] = {
    ("LambdaLR", "lr_lambda"): "the callable itself, times the base rate",
    ("MultiplicativeLR", "lr_lambda"): "not supported (see the class)",
    ("StepLR", "step_size"): "`transition_steps`",
    ("StepLR", "gamma"): "`decay_rate`",
    ("MultiStepLR", "milestones"): "the keys of `boundaries_and_scales`",
    ("MultiStepLR", "gamma"): "the values of `boundaries_and_scales`",
    ("ConstantLR", "factor"): "the initial value `lr * factor`",
    ("ConstantLR", "total_iters"): "the boundary",
    ("LinearLR", "start_factor"): "`init_value = lr * start_factor`",
    ("LinearLR", "end_factor"): "`end_value = lr * end_factor`",
    ("LinearLR", "total_iters"): "`transition_steps`",
    ("ExponentialLR", "gamma"): "`decay_rate` (with `transition_steps=1`)",
    ("SequentialLR", "schedulers"): "`schedules` (each a schedule; later ones start from 0 "
                                    "at their boundary)",
    ("SequentialLR", "milestones"): "`boundaries`",
    ("CosineAnnealingLR", "T_max"): "`decay_steps`",
    ("CosineAnnealingLR", "eta_min"): "`alpha = eta_min / lr` (a fraction of the rate)",
    ("ChainedScheduler", "schedulers"): "not supported as an argument (see the class)",
    ("ReduceLROnPlateau", "mode"): "`mode`",
    ("ReduceLROnPlateau", "factor"): "`factor`",
    ("ReduceLROnPlateau", "patience"): "`patience`",
    ("ReduceLROnPlateau", "threshold"): "`threshold`",
    ("ReduceLROnPlateau", "threshold_mode"): "`threshold_mode`",
    ("ReduceLROnPlateau", "cooldown"): "`cooldown`",
    ("ReduceLROnPlateau", "min_lr"): "`min_scale = min_lr / lr` (a fraction of the rate)",
    ("ReduceLROnPlateau", "eps"): "`eps` as a fraction of the rate (`eps / lr`)",
    ("CyclicLR", "base_lr"): "not supported (see the class)",
    ("CyclicLR", "max_lr"): "not supported (see the class)",
    ("CyclicLR", "step_size_up"): "not supported (see the class)",
    ("CyclicLR", "step_size_down"): "not supported (see the class)",
    ("CyclicLR", "mode"): "not supported (see the class)",
    ("CyclicLR", "gamma"): "not supported (see the class)",
    ("CyclicLR", "scale_fn"): "not supported (see the class)",
    ("CyclicLR", "scale_mode"): "not supported (see the class)",
    ("CyclicLR", "cycle_momentum"): "not supported: fnopt schedules drive the rate only",
    ("CyclicLR", "base_momentum"): "not supported: fnopt schedules drive the rate only",
    ("CyclicLR", "max_momentum"): "not supported: fnopt schedules drive the rate only",
    ("CosineAnnealingWarmRestarts", "T_0"): "not supported (see the class)",
    ("CosineAnnealingWarmRestarts", "T_mult"): "not supported (see the class)",
    ("CosineAnnealingWarmRestarts", "eta_min"): "not supported (see the class)",
    ("OneCycleLR", "max_lr"): "`peak_value`",
    ("OneCycleLR", "total_steps"): "`transition_steps`",
    ("OneCycleLR", "epochs"): "not needed: pass `transition_steps = epochs * steps_per_epoch`",
    ("OneCycleLR", "steps_per_epoch"): "not needed: pass `transition_steps = epochs * "
                                       "steps_per_epoch`",
    ("OneCycleLR", "pct_start"): "`pct_start`",
    ("OneCycleLR", "anneal_strategy"): "`'cos'` only (`cosine_onecycle_schedule`); `'linear'`: "
                                       "not supported",
    ("OneCycleLR", "cycle_momentum"): "not supported: fnopt schedules drive the rate only",
    ("OneCycleLR", "base_momentum"): "not supported: fnopt schedules drive the rate only",
    ("OneCycleLR", "max_momentum"): "not supported: fnopt schedules drive the rate only",
    ("OneCycleLR", "div_factor"): "`div_factor`",
    ("OneCycleLR", "final_div_factor"): "`final_div_factor`",
    ("OneCycleLR", "three_phase"): "not supported: two phases only",
    ("PolynomialLR", "total_iters"): "`transition_steps`",
    ("PolynomialLR", "power"): "`power`",
}


def optimizer_classes() -> list[str]:
    return sorted(n for n in torch.optim.__all__
                  if inspect.isclass(c := getattr(torch.optim, n))
                  and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer)


def scheduler_classes() -> list[str]:
    base = lrs.LRScheduler
    return [n for n in lrs.__all__
            if inspect.isclass(c := getattr(lrs, n)) and c is not base
            and (issubclass(c, base) or n == "ReduceLROnPlateau")]


def _args(cls: type) -> list[tuple[str, Any]]:
    sig = inspect.signature(cls.__init__)
    return [(k, p.default) for k, p in sig.parameters.items()
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    cut = text.find(". ")
    return (text if cut < 0 else text[:cut + 1]).replace("|", "\\|")


def _probe(factory: Callable[..., Any], name: str, default: Any) -> str:
    """What fnopt does with ``name=default`` (torch's default)."""
    kw = {} if default is inspect.Parameter.empty else {name: default}
    if not kw:
        return "required in torch; fnopt: see the call"
    try:
        factory(**kw)
    except (TypeError, ValueError) as exc:
        return "not supported: " + _first_sentence(str(exc))
    return "same name and meaning"


def optimizer_rows() -> list[str]:
    lines = ["#### Optimizers (torch.optim)", "",
             "| torch.optim | argument | fnopt | difference / reason |", "|---|---|---|---|"]
    for cls_name in optimizer_classes():
        if cls_name not in OPTIMIZERS:
            raise KeyError(f"torch.optim.{cls_name} has no row in OPTIMIZERS")
        call, factory, note = OPTIMIZERS[cls_name]
        lines.append(f"| `{cls_name}` | | `{call}` | {note} |")
        for arg, default in _args(getattr(torch.optim, cls_name)):
            if arg == "params":
                lines.append(f"| `{cls_name}` | `params` | | {PARAMS_ROW[1]} |")
                continue
            what = "not supported (see the class)" if factory is None else _probe(
                factory, arg, default)
            lines.append(f"| `{cls_name}` | `{arg}` | | {what} |")
    return lines


def scheduler_rows() -> list[str]:
    lines = ["#### Learning-rate schedulers (torch.optim.lr_scheduler)", "",
             "Every fnopt schedule is a pure function `count -> rate` given as "
             "`learning_rate=`; it advances with each optimizer step.", "",
             "| lr_scheduler | argument | fnopt | difference / reason |", "|---|---|---|---|"]
    for cls_name in scheduler_classes():
        if cls_name not in SCHEDULERS:
            raise KeyError(f"lr_scheduler.{cls_name} has no row in SCHEDULERS")
        call, note = SCHEDULERS[cls_name]
        lines.append(f"| `{cls_name}` | | `{call}` | {note} |")
        for arg, _ in _args(getattr(lrs, cls_name)):
            if arg == "optimizer":
                text = _OPT[1]
            elif arg == "last_epoch":
                text = _LAST[1]
            elif (cls_name, arg) in SCHEDULER_ARGS:
                text = SCHEDULER_ARGS[(cls_name, arg)]
            else:
                raise KeyError(f"lr_scheduler.{cls_name}({arg}=) has no row in SCHEDULER_ARGS")
            lines.append(f"| `{cls_name}` | `{arg}` | | {text} |")
    return lines


def render() -> str:
    head = [
        "### Migrating from torch.optim",
        "",
        f"Generated by `scripts/torch_optim_table.py` from torch {torch.__version__.split('+')[0]}"
        " (every optimizer and lr_scheduler class and constructor argument); "
        "tests/test_torch_optim_table.py checks it is complete. Optimizer arguments are "
        "probed: fnopt is called with torch's default value and a refusal is quoted.",
        "",
        "fnopt accepts torch's spellings (`lr`, `betas`, `alpha`, ...). Parity: "
        "tests/peers/test_peer_torch_optim.py runs torch's own `optim_db` configurations "
        "against fnopt (float64 trajectories equal to torch's).",
        "",
    ]
    return "\n".join(head + optimizer_rows() + [""] + scheduler_rows()) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python scripts/torch_optim_table.py")
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
