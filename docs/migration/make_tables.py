"""Write the migration guides' name tables from the installed peers.

    python docs/migration/make_tables.py            # all tables
    python docs/migration/make_tables.py torch      # only torch-optim-table.md

The list of peer names comes from the installed packages (torch.optim and its
lr_scheduler; optax's and scipy.optimize's public names), never typed by hand. For
torch.optim each constructor argument is *tried* on the fnopt factory with torch's
default value: what fnopt accepts is listed as supported, and a refusal is listed with
fnopt's own error message as the reason. The fnopt counterpart of each peer name is the
hand-kept mapping below; a peer name missing from it shows as "not yet mapped" so a new
peer release is visible in the table.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path

import fnopt

HERE = Path(__file__).resolve().parent

# torch.optim class -> (fnopt factory name or None, note)
TORCH_OPTIMIZERS: dict[str, tuple[str | None, str]] = {
    "SGD": ("sgd", "torch.optim semantics (dampening, nesterov, L2 weight decay)."),
    "Adam": ("adam", "`amsgrad=`, `decoupled_weight_decay=` as torch."),
    "AdamW": ("adamw", "Decoupled weight decay, torch's default 1e-2."),
    "Adamax": ("adamax", ""),
    "NAdam": ("nadam", "`momentum_decay`, `decoupled_weight_decay` as torch."),
    "RAdam": ("radam", ""),
    "RMSprop": ("rmsprop", "torch's `alpha` is fnopt's `decay` (both spellings accepted)."),
    "Adagrad": ("adagrad", ""),
    "Adadelta": ("adadelta", ""),
    "ASGD": ("asgd", ""),
    "Rprop": ("rprop", ""),
    "Adafactor": ("adafactor", "torch's Adafactor semantics."),
    "Muon": ("muon", "2-D params only (as torch); Newton-Schulz runs in the params' dtype "
                     "(torch: bfloat16), so float64 results agree with torch's only when "
                     "torch's iteration is run at full precision."),
    "LBFGS": ("lbfgs", "A step is one L-BFGS iteration with a line search (torch: up to "
                       "`max_iter` inner iterations per `step(closure)`); drive it with "
                       "`fixed_point`."),
    "SparseAdam": (None, "not supported: fnopt has no sparse gradients (every leaf is a "
                         "dense array); use `adam` on dense gradients."),
}

# torch.optim.lr_scheduler class -> (fnopt counterpart, note)
TORCH_SCHEDULERS: dict[str, tuple[str | None, str]] = {
    "LambdaLR": ("any callable `count -> rate`", "Pass `lambda k: base_lr * f(k)` as "
                 "`learning_rate`: every schedule is a plain function of the step count."),
    "MultiplicativeLR": (None, "not supported as such: write the product as a function "
                         "of the count (`lambda k: lr * prod(...)`)."),
    "StepLR": ("fnopt.schedules.exponential_decay", "`exponential_decay(lr, "
               "transition_steps=step_size, decay_rate=gamma, staircase=True)`."),
    "MultiStepLR": ("fnopt.schedules.piecewise_constant", "`piecewise_constant(lr, "
                    "{m: gamma for m in milestones})`."),
    "ConstantLR": ("fnopt.schedules.piecewise_constant", "`piecewise_constant(lr * factor, "
                   "{total_iters: 1 / factor})`."),
    "LinearLR": ("fnopt.schedules.linear", "`linear(lr * start_factor, lr * end_factor, "
                 "total_iters)`."),
    "ExponentialLR": ("fnopt.schedules.exponential_decay", "`exponential_decay(lr, 1, gamma)`."),
    "PolynomialLR": ("fnopt.schedules.polynomial", "`polynomial(lr, 0.0, power, total_iters)`."),
    "CosineAnnealingLR": ("fnopt.schedules.cosine_decay", "`cosine_decay(lr, T_max, "
                          "alpha=eta_min / lr)`."),
    "CosineAnnealingWarmRestarts": ("fnopt.schedules.join_schedules", "restarts: "
                                    "`join_schedules([cosine_decay(...)] * n, boundaries)`."),
    "CyclicLR": (None, "not supported: write the triangle as a function of the count."),
    "OneCycleLR": ("fnopt.schedules.cosine_onecycle_schedule", "`cosine_onecycle_schedule("
                   "total_steps, max_lr, pct_start, div_factor, final_div_factor)`; no "
                   "momentum cycling."),
    "SequentialLR": ("fnopt.schedules.join_schedules", "`join_schedules(schedules, "
                     "milestones)`."),
    "ChainedScheduler": (None, "not supported as such: multiply the schedules' values in "
                         "one function."),
    "ReduceLROnPlateau": ("fnopt.transforms.plateau.reduce_on_plateau", "a transform placed "
                          "last in a chain (`chain(adam(lr), reduce_on_plateau(...))`); it "
                          "reads the loss the step evaluated."),
    "LRScheduler": (None, "the base class: any callable `count -> rate` is a schedule."),
}

# arguments every scheduler has, and what they become in fnopt
SCHEDULER_ARGS = {
    "optimizer": "not an argument: the schedule is given as the optimizer's `learning_rate`.",
    "last_epoch": "the state's `count` (resume with `fixed_point(state=..., "
                  "start_iteration=...)`).",
    "verbose": "not supported (deprecated in torch).",
}

DISPLAY = {"lr": "`learning_rate` (`lr` accepted)", "betas": "`b1`, `b2` (`betas` accepted)"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _first_sentence(message: str) -> str:
    message = message.split("; ")[0] if len(message) > 160 else message
    return message


def _torch_arg_row(factory: object, name: str, default: object, fnopt_params: dict) -> str:
    shown = "required" if default is inspect.Parameter.empty else f"`{default!r}`"
    if name in fnopt_params:
        ours = fnopt_params[name].default
        same = ours is inspect.Parameter.empty or ours == default or default is None
        note = "same" if same else f"default differs: fnopt `{ours!r}`"
        return f"| `{name}` | {shown} | `{name}` | {note} |"
    kwargs = {} if default is inspect.Parameter.empty else {name: default}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            factory(**kwargs)  # type: ignore[operator]
    except (TypeError, ValueError) as err:
        return f"| `{name}` | {shown} | not supported | {_cell(_first_sentence(str(err)))} |"
    return f"| `{name}` | {shown} | {DISPLAY.get(name, 'accepted (torch spelling)')} | same |"


def torch_table() -> str:
    import torch.optim as optim
    import torch.optim.lr_scheduler as sched

    classes = sorted(n for n, c in vars(optim).items() if isinstance(c, type)
                     and issubclass(c, optim.Optimizer) and c is not optim.Optimizer)
    out = [f"<!-- generated by docs/migration/make_tables.py from torch {_version('torch')}"
           "; do not edit by hand -->", "", "### Optimizers", "",
           "| torch.optim | fnopt | note |", "|---|---|---|"]
    for name in classes:
        ours, note = TORCH_OPTIMIZERS.get(name, (None, "not yet mapped"))
        link = f"{{func}}`fnopt.{ours}`" if ours else "not supported"
        out.append(f"| `torch.optim.{name}` | {link} | {_cell(note)} |")
    for name in classes:
        ours, _ = TORCH_OPTIMIZERS.get(name, (None, ""))
        if ours is None:
            continue
        factory = getattr(fnopt, ours)
        fnopt_params = dict(inspect.signature(inspect.unwrap(factory)).parameters)
        out += ["", f"#### `torch.optim.{name}` → `fnopt.{ours}`", "",
                "| torch argument | torch default | fnopt | difference |", "|---|---|---|---|",
                "| `params` | required | not an argument | params are passed to "
                "`opt.init(params)` / `fixed_point(opt, params, grad_fn)` "
                "(`fnopt.torch.params_of(model)`). |"]
        sig = inspect.signature(getattr(optim, name).__init__)
        for arg, p in sig.parameters.items():
            if arg in ("self", "params"):
                continue
            out.append(_torch_arg_row(factory, arg, p.default, fnopt_params))
    scheds = sorted(n for n, c in vars(sched).items() if isinstance(c, type)
                    and (issubclass(c, sched.LRScheduler) or n == "ReduceLROnPlateau")
                    and not n.startswith("_"))
    out += ["", "### Learning-rate schedulers", "",
            "A schedule in fnopt is a function `count -> rate` passed as `learning_rate`; "
            "there is no scheduler object and no `scheduler.step()`.", "",
            "| torch.optim.lr_scheduler | fnopt | how |", "|---|---|---|"]
    for name in scheds:
        ours, note = TORCH_SCHEDULERS.get(name, (None, "not yet mapped"))
        shown = (f"{{func}}`{ours}`" if ours and ours.startswith("fnopt.") else
                 (ours or "not supported"))
        out.append(f"| `{name}` | {shown} | {_cell(note)} |")
    out += ["", "Constructor arguments of the schedulers:", "",
            "| scheduler | argument | torch default | fnopt |", "|---|---|---|---|"]
    for name in scheds:
        sig = inspect.signature(getattr(sched, name).__init__)
        for arg, p in sig.parameters.items():
            if arg == "self":
                continue
            default = "required" if p.default is inspect.Parameter.empty else f"`{p.default!r}`"
            how = SCHEDULER_ARGS.get(arg, "an argument of the fnopt counterpart above "
                                          "(see its reference page)"
                                     if TORCH_SCHEDULERS.get(name, (None,))[0] else
                                     "not supported (see the row above)")
            out.append(f"| `{name}` | `{arg}` | {_cell(default)} | {_cell(how)} |")
    return "\n".join(out) + "\n"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "(not installed)"


def _names_table(title: str, names: list[str], fnopt_of: dict[str, str]) -> str:
    def ours(n: str) -> str:
        return "{func}`fnopt." + fnopt_of[n] + "`" if n in fnopt_of else "not yet mapped"

    rows = [f"| `{title}.{n}` | {ours(n)} |" for n in names]
    return "\n".join([f"| {title} | fnopt |", "|---|---|", *rows])


def optax_table() -> str:
    """optax's public names with the fnopt name where fnopt has the same name."""
    import optax

    names = sorted(n for n in getattr(optax, "__all__", dir(optax)) if not n.startswith("_"))
    ours = {n: n for n in names if n in fnopt.__all__}
    ours.update({n: f"schedules.{n}" for n in names if n in fnopt.schedules.__all__})
    ours.update({n: f"transforms.{n}" for n in names
                 if n in fnopt.transforms.__all__ and n not in ours})
    head = (f"<!-- started by docs/migration/make_tables.py from optax {_version('optax')}: "
            "every optax name, with fnopt's name where it has the same one; the rest "
            "await their row -->\n\n")
    return head + _names_table("optax", names, ours) + "\n"


def scipy_tables() -> dict[str, str]:
    """scipy.optimize.minimize's and least_squares' arguments and result fields."""
    import scipy.optimize as so

    out = {}
    for fname, ours in (("minimize", fnopt.minimize), ("least_squares", fnopt.least_squares)):
        theirs = inspect.signature(getattr(so, fname)).parameters
        mine = inspect.signature(ours).parameters
        rows = [f"<!-- started by docs/migration/make_tables.py from scipy "
                f"{_version('scipy')} -->", "",
                f"| scipy.optimize.{fname} argument | scipy default | fnopt |", "|---|---|---|"]
        for arg, p in theirs.items():
            default = "required" if p.default is inspect.Parameter.empty else f"`{p.default!r}`"
            if arg in mine:
                d = mine[arg].default
                same = d is inspect.Parameter.empty or repr(d) == repr(p.default)
                how = "same" if same else f"default differs: fnopt `{d!r}`"
            else:
                how = "not supported"
            rows.append(f"| `{arg}` | {_cell(default)} | {_cell(how)} |")
        out[fname] = "\n".join(rows) + "\n"
    return out


def main(argv: list[str]) -> None:
    which = set(argv) or {"torch", "optax", "scipy"}
    if "torch" in which:
        (HERE / "torch-optim-table.md").write_text(torch_table())
    if "optax" in which:
        (HERE / "optax-table.md").write_text(optax_table())
    if "scipy" in which:
        tables = scipy_tables()
        (HERE / "scipy-minimize-table.md").write_text(tables["minimize"])
        (HERE / "scipy-least-squares-table.md").write_text(tables["least_squares"])


if __name__ == "__main__":
    main(sys.argv[1:])
