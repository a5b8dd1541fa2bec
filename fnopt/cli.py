"""The ``fnopt`` command line: run a task, compare optimizers, run the demo tour.

::

    fnopt run rosenbrock --optimizer lbfgs --backend torch --tol 1e-10
    fnopt compare rosenbrock --optimizers sgd,adam,lbfgs --out plots
    fnopt tour --out demo-output --fast

    fnopt run my_module:loss --x0 1,2 -o adam --opt b1=0.8    # your own objective
    fnopt --version

Optimizers are looked up by name in the :mod:`fnopt` namespace when the command runs
(any public factory that returns an :class:`fnopt.Optimizer`), with a default learning
rate per task and optimizer that ``--lr`` overrides; ``--opt KEY=VALUE`` (repeatable)
passes any other argument of the factory (the value read as a Python literal, else as
a string). The task is one of :data:`TASKS` or ``MODULE:FUNCTION`` (or
``path/to/file.py:FUNCTION``): a loss ``f(x) -> scalar`` started from ``--x0``, with
gradients by central finite differences on NumPy or ``torch.func`` on torch (a
function returning a pair ``(loss, gradient)`` gives its own gradient; an
:class:`fnopt.objectives.Objective` there is used as it is).

Exit codes: 0 on success; 1 when a run or a demo fails (the run itself, e.g. a NaN
loss); 2 with a one-line message (no traceback) for every bad argument and for an
optimizer that cannot run on the task (checked with one trial step before the run:
e.g. ``muon`` on a vector, a least-squares method on a scalar loss).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fnopt import backend as _backend

__all__ = ["main", "available_optimizers", "make_optimizer", "make_task", "TASKS"]

TASKS = ("rosenbrock", "linear", "mlp", "iris")
_MAX_DIM = 10_000_000  # --dim: a Rosenbrock of 80 MB in float64

# Learning rates that work from each task's standard start (tried by hand on each task).
# Keys: task -> optimizer -> lr; "*" is the fallback for optimizers not listed.
_LR: dict[str, dict[str, float]] = {
    "rosenbrock": {"*": 1e-3, "sgd": 1e-3, "asgd": 1e-3, "adam": 2e-2, "adamw": 2e-2,
                   "nadam": 1e-3, "adamax": 2e-2, "radam": 2e-2, "rmsprop": 1e-3,
                   "adagrad": 0.3, "lion": 1e-3},
    "linear": {"*": 1e-2, "sgd": 5e-2, "adam": 0.1, "adamw": 0.1, "rmsprop": 1e-2,
               "adagrad": 0.5},
    "mlp": {"*": 1e-2, "sgd": 0.5, "adam": 1e-2, "adagrad": 0.1},
    "iris": {"*": 1e-2, "sgd": 0.5, "adam": 1e-2, "adagrad": 0.1},
}
# Argument names under which an optimizer factory may ask for the task's Hessian.
_HESSIAN_ARGS = ("hessian", "hessian_fn", "hess")


class UsageError(Exception):
    """A bad command-line choice; reported as ``fnopt <cmd>: error: ...`` with exit 2."""


# -- tasks ---------------------------------------------------------------------------


@attrs.frozen
class CliTask:
    """A task as the command line runs it: the :class:`fnopt.tasks.Task`, its start
    point, and an optional extra report line computed from the final params."""

    task: Any
    start: Any
    report: Callable[[Any], str] | None = None


def make_task(name: str, backend: str = "numpy", dtype: str = "float64",
              seed: int | None = None, dim: int = 2,
              x0: Sequence[float] | None = None) -> CliTask:
    """Build one of :data:`TASKS` on a backend, started from its standard point (or
    from ``task.init(seed)`` when ``seed`` is given, or from ``x0``), or the user's
    objective ``"MODULE:FUNCTION"`` started from ``x0``.

    >>> make_task("rosenbrock").task.name
    'rosenbrock'
    >>> make_task("rosenbrock", x0=[0.5, 0.25]).start
    array([0.5 , 0.25])
    """
    if ":" in name:
        if seed is not None:
            raise UsageError("--seed: only the built-in tasks have random starts; give --x0")
        return _user_task(name, backend, dtype, x0)
    ct = _builtin_task(name, backend, dtype, seed, dim)
    if x0 is None:
        return ct
    start = ct.start
    if not _backend.is_array(start) or int(np.prod(start.shape)) != len(x0):
        size = int(np.prod(start.shape)) if _backend.is_array(start) else "a tree of"
        raise UsageError(f"--x0: task {name!r} has {size} parameters, got {len(x0)} values")
    return attrs.evolve(ct, start=_backend.array(np.asarray(x0, dtype=dtype).reshape(
        start.shape), backend))


@attrs.frozen
class _UserTask:
    """The user's loss function as the command line runs it (a task's fields)."""

    name: str
    loss: Callable[[Any], Any]
    grad_fn: Any
    hessian: Any = None
    solution: Any = None


def _user_task(spec: str, backend: str, dtype: str, x0: Sequence[float] | None) -> CliTask:
    """``MODULE:FUNCTION`` (or ``file.py:FUNCTION``) as a task started from ``x0``."""
    from fnopt import grad

    mod_name, _, fn_name = spec.rpartition(":")
    obj = getattr(_import_user_module(mod_name), fn_name, None) if fn_name else None
    if obj is None:
        raise UsageError(f"task: {mod_name!r} has no {fn_name!r} (give MODULE:FUNCTION)")
    if hasattr(obj, "grad_fn") and hasattr(obj, "init_params"):  # an fnopt objective
        start = obj.init_params if x0 is None else np.asarray(x0, dtype=dtype)
        return CliTask(obj, _backend.array(start, backend) if x0 is not None else start)
    if not callable(obj):
        raise UsageError(f"task: {spec!r} is a {type(obj).__name__}, not a function")
    if x0 is None:
        raise UsageError(f"--x0: required for your own objective {spec!r} (e.g. --x0 1,2)")
    start = _backend.array(np.asarray(x0, dtype=dtype), backend)
    try:
        first = obj(start)
    except Exception as exc:
        raise UsageError(f"task: {spec}(x0) raised {_one_line(exc)}") from None
    loss: Callable[[Any], Any] = obj
    if isinstance(first, tuple) and len(first) == 2:  # already (value, grads)
        provider = obj

        def loss(x: Any) -> Any:
            return obj(x)[0]
    elif backend == "torch":
        provider = grad.torch_func(obj)
    else:
        provider = grad.finite_differences(obj)
    try:
        value, _ = provider(start)
        float(value)
    except Exception as exc:
        raise UsageError(f"task: {spec}(x0) must return a scalar loss (or a pair (loss, "
                         f"gradient)); it gave {_one_line(exc)}") from None
    return CliTask(_UserTask(fn_name, loss, provider), start)


def _import_user_module(name: str) -> Any:
    """The module ``name`` (dotted, importable from the current directory) or the
    Python file ``name`` (ending in ``.py``)."""
    try:
        if name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(name).stem, name)
            if spec is None or spec.loader is None or not Path(name).is_file():
                raise UsageError(f"task: no Python file {name!r}")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())  # as `python -m` does for the current directory
        return importlib.import_module(name)
    except UsageError:
        raise
    except Exception as exc:  # ImportError, or the module raising as it loads
        raise UsageError(f"task: cannot import {name!r} ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _builtin_task(name: str, backend: str, dtype: str, seed: int | None,
                  dim: int) -> CliTask:
    from fnopt import datasets
    from fnopt.objectives import tasks

    report = None
    if name == "rosenbrock":
        task = tasks.rosenbrock(backend, dim=dim, dtype=dtype)  # type: ignore[arg-type]
    elif name == "linear":
        x, y = tasks.make_linear_data(backend=backend, dtype=dtype)  # type: ignore[arg-type]
        task = tasks.linear_regression(x, y)
    elif name == "mlp":
        task = tasks.mlp((5, 8, 1), activation="tanh", backend=backend,  # type: ignore[arg-type]
                         dtype=dtype)
    elif name == "iris":
        data = datasets.iris(backend=backend, dtype=dtype)  # type: ignore[arg-type]
        x_tr, x_te, y_tr, y_te = datasets.train_test_split(data.x, data.y, 0.2, seed=0)
        mean = x_tr.mean(0)
        std = ((x_tr - mean) ** 2).mean(0) ** 0.5  # ddof=0 on both backends
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
        task = tasks.mlp((4, 16, 3), activation="tanh", loss="cross_entropy",
                         backend=backend, dtype=dtype,  # type: ignore[arg-type]
                         data=(x_tr, y_tr))
        task = attrs.evolve(task, name="iris_mlp")

        predict = task.predict
        assert predict is not None

        def report(params: Any) -> str:
            pred = _backend.to_numpy(predict(params, x_te)).argmax(axis=1)
            hits = int((pred == _backend.to_numpy(y_te)).sum())
            return f"held-out accuracy {hits / len(pred):.3f} ({hits}/{len(pred)})"
    else:
        raise UsageError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    start = task.init_params if seed is None else task.init(seed)
    return CliTask(task, start, report)


# -- optimizers ------------------------------------------------------------------------


def available_optimizers() -> list[str]:
    """Names of the optimizer factories in the :mod:`fnopt` namespace right now.

    >>> "sgd" in available_optimizers()
    True
    """
    import fnopt

    names = []
    for name, obj in fnopt.testing.optimizer_factories().items():
        sig = inspect.signature(obj)
        required = [
            p.name for p in sig.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        # skip building blocks such as descent(transform) or line_search(direction)
        if all(r == "learning_rate" or r in _HESSIAN_ARGS for r in required):
            names.append(name)
    return sorted(names)


def make_optimizer(name: str, task_name: str, lr: float | None = None,
                   hessian: Any = None,
                   options: dict[str, Any] | None = None) -> tuple[Any, float | None]:
    """Build the optimizer ``name`` with defaults for ``task_name`` and the factory
    arguments ``options`` (``--opt KEY=VALUE``).

    Returns ``(optimizer, learning_rate used or None)``. Raises :class:`UsageError`
    for names that are not (yet) optimizers in :mod:`fnopt`, for ``lr`` given to
    an optimizer without a learning rate, or for options the factory does not take
    or refuses.

    >>> opt, lr = make_optimizer("sgd", "rosenbrock")
    >>> lr
    0.001
    """
    import fnopt

    avail = available_optimizers()
    if name not in avail:
        raise UsageError(
            f"unknown optimizer {name!r}; available in this fnopt: {', '.join(avail)}"
        )
    factory = getattr(fnopt, name)
    sig = inspect.signature(factory)
    options = dict(options or {})
    if "learning_rate" in options:
        if lr is not None:
            raise UsageError("--opt learning_rate=...: give the learning rate once (--lr)")
        lr = options.pop("learning_rate")
    _check_options(name, sig, options)
    kwargs: dict[str, Any] = dict(options)
    used: float | None = None
    if "learning_rate" in sig.parameters:
        p = sig.parameters["learning_rate"]
        table = _LR.get(task_name, {"*": 1e-3})
        if lr is not None:
            used = lr
        elif name in table or p.default is p.empty:
            used = table.get(name, table["*"])
        elif isinstance(p.default, int | float):
            used = float(p.default)  # the optimizer's own default
        if used is not None:
            kwargs["learning_rate"] = used
    elif lr is not None:
        raise UsageError(f"optimizer {name!r} takes no learning rate; drop --lr")
    for pname, p in sig.parameters.items():
        if pname in kwargs or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if pname in _HESSIAN_ARGS and (p.default is p.empty or hessian is not None):
            if hessian is None:
                raise UsageError(f"optimizer {name!r} needs a Hessian, which this task lacks")
            kwargs[pname] = hessian
        elif p.default is p.empty:
            raise UsageError(
                f"optimizer {name!r} needs argument {pname!r}, which the command line "
                f"cannot supply"
            )
    try:
        return factory(**kwargs), used
    except Exception as exc:  # the factory refuses these arguments
        raise UsageError(f"optimizer {name!r}: {_one_line(exc)}") from None


def _check_options(name: str, sig: inspect.Signature, options: dict[str, Any]) -> None:
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    named = [p for p, v in sig.parameters.items()
             if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]
    for key in options:
        if key not in named and not takes_any:
            raise UsageError(f"--opt: optimizer {name!r} has no option {key!r}; its "
                             f"options: {', '.join(named) or 'none'}")


def _parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    """``["b1=0.8", "nesterov=True"]`` as ``{"b1": 0.8, "nesterov": True}`` (values
    read as Python literals, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise UsageError(f"--opt: expected KEY=VALUE (e.g. b1=0.8), got {item!r}")
        if key in out:
            raise UsageError(f"--opt: {key!r} given twice")
        try:
            out[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[key] = text.strip()
    return out


def _check_pair(name: str, opt: Any, ct: CliTask) -> None:
    """One trial step from the start: an optimizer that cannot run on this task (muon
    on a vector, a least-squares method on a scalar loss) is a usage error."""
    from fnopt import StepFailed

    try:
        opt.step(ct.start, ct.task.grad_fn, opt.init(ct.start))
    except StepFailed:  # it ran, and stopped: the run will say why
        pass
    except Exception as exc:
        import fnopt

        hint = ""
        if getattr(getattr(fnopt, name, None), "__module__", "") == "fnopt.optimizers.lsq":
            hint = (" (a least-squares method steps on residuals and their Jacobian; the "
                    "task is a scalar loss: use fnopt.least_squares from Python)")
        raise UsageError(f"optimizer {name!r} cannot run on task {ct.task.name!r}: "
                         f"{_one_line(exc)}{hint}") from None


# -- running ---------------------------------------------------------------------------


def _stop(args: argparse.Namespace) -> Any:
    from fnopt import stop

    rule = stop.max_iters(args.max_iters)
    if args.tol:
        rule = stop.grad_norm_below(args.tol) | rule
    if args.loss_below is not None:
        rule = stop.loss_below(args.loss_below) | rule
    if args.time_limit is not None:
        rule = rule | stop.time_limit(args.time_limit)
    return rule


def _progress(quiet: bool, label: str = "") -> Callable[[Any], None]:
    """A callback printing a progress line at iterations 0, 1, 2, 5, 10, 20, 50, ..."""
    marks = {0}
    for e in range(12):
        marks.update({10**e, 2 * 10**e, 5 * 10**e})

    def callback(info: Any) -> None:
        if not quiet and info.iteration in marks:
            print(
                f"{label}iter {info.iteration:>7d}  loss {info.value:.6e}  "
                f"|grad| {info.grad_norm:.3e}  {info.elapsed:8.3f} s",
                flush=True,
            )

    return callback


def _warm_up(ct: CliTask) -> None:
    """Call ``grad_fn`` once before timing: torch.func's first call in a process pays a
    one-time set-up cost (about 2 s here) that would otherwise land in the first run
    (the trial step of :func:`_check_pair` has usually paid it already)."""
    t0 = time.perf_counter()
    ct.task.grad_fn(ct.start)
    secs = time.perf_counter() - t0
    if secs > 0.1:
        print(f"(warm-up: the first gradient call took {secs:.2f} s; not counted below)")


def _solve(opt: Any, ct: CliTask, rule: Any, callback: Callable[[Any], Any]) -> Any:
    from fnopt import fixed_point

    return fixed_point(opt, ct.start, ct.task.grad_fn, stop=rule, callback=callback,
                       record=True)


def _fmt_params(params: Any) -> str | None:
    arr = _backend.to_numpy(params) if not isinstance(params, dict) else None
    if arr is None or arr.size > 8:
        return None
    return np.array2string(arr, precision=8, separator=", ")


def _cmd_run(args: argparse.Namespace) -> int:
    ct = make_task(args.task, args.backend, args.dtype, args.seed, args.dim, args.x0)
    opt, lr = make_optimizer(args.optimizer, args.task, args.lr,
                             getattr(ct.task, "hessian", None), _parse_options(args.opt))
    rule = _stop(args)
    _check_pair(args.optimizer, opt, ct)
    lr_txt = "" if lr is None else f", learning_rate={lr:g}"
    print(f"fnopt run: {ct.task.name} ({args.backend}, {args.dtype}) with "
          f"{args.optimizer}{lr_txt}; stop when {rule!r}", flush=True)
    _warm_up(ct)
    res = _solve(opt, ct, rule, _progress(args.quiet))
    status = "converged" if res.converged else "not converged"
    print(f"done: {status}")
    print(f"  iterations   {res.iterations}")
    print(f"  loss         {res.value:.6e}")
    print(f"  |grad|       {res.grad_norm:.3e}")
    print(f"  reason       {res.reason}: {res.message}")
    print(f"  evaluations  {res.n_evals}")
    print(f"  time         {res.elapsed:.3f} s")
    shown = _fmt_params(res.params)
    if shown is not None:
        print(f"  params       {shown}")
    if ct.report is not None:
        print(f"  {ct.report(res.params)}")
    return 0 if not res.reason.is_failure else 1


def _cmd_compare(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    if not names:
        raise UsageError("--optimizers: give at least one name, e.g. sgd,adam")
    if len(set(names)) != len(names):
        raise UsageError(f"--optimizers: names repeat in {args.optimizers!r}")
    ct = make_task(args.task, args.backend, args.dtype, args.seed, args.dim, args.x0)
    options = _parse_options(args.opt)
    opts = [(n, *make_optimizer(n, args.task, args.lr, getattr(ct.task, "hessian", None),
                                options)) for n in names]
    rule = _stop(args)
    if not args.no_plots:
        _check_out_dir(args.out)
    for name, opt, _ in opts:
        _check_pair(name, opt, ct)
    print(f"fnopt compare: {ct.task.name} ({args.backend}, {args.dtype}); "
          f"stop when {rule!r}", flush=True)
    _warm_up(ct)
    two_d = _np_or_none(ct.start) is not None
    rows, curves, paths = [], {}, {}
    failed = False
    for name, opt, lr in opts:
        trail: list[np.ndarray] = (
            [_backend.to_numpy(ct.start).astype(float).copy()] if two_d else []
        )

        def keep(info: Any, trail: list[np.ndarray] = trail) -> None:
            if two_d and info.iteration > 0:
                trail.append(_backend.to_numpy(info.params).astype(float).copy())

        res = _solve(opt, ct, rule, keep)
        failed = failed or res.reason.is_failure
        if res.history is not None:
            curves[name] = res.history.loss
        if two_d and trail:
            paths[name] = np.stack(trail)
        rows.append([name, "-" if lr is None else f"{lr:g}", str(res.iterations),
                     str(res.n_evals), f"{res.value:.3e}", f"{res.grad_norm:.2e}",
                     str(res.reason), f"{res.elapsed * 1e3:.1f}"])
    head = ["optimizer", "lr", "iters", "evals", "loss", "|grad|", "reason", "ms"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if not args.no_plots:
        from fnopt import plots

        out = Path(args.out)
        files = [plots.loss_curves(curves, out / f"{args.task}-loss.png",
                                   title=f"{ct.task.name}: loss against iteration")]
        if paths:
            # draw the contours from the NumPy twin of the task (the same function)
            loss = make_task(args.task, "numpy", "float64", args.seed, args.dim,
                             args.x0).task.loss

            def loss_np(p: np.ndarray) -> float:
                return float(loss(p))

            files.append(plots.paths_on_contour(
                loss_np, paths, out / f"{args.task}-paths.png",
                solution=None if ct.task.solution is None else _backend.to_numpy(ct.task.solution),
                title=f"{ct.task.name}: optimizer paths",
            ))
        for f in files:
            print(f"saved {f}")
    return 1 if failed else 0


def _check_out_dir(folder: str) -> None:
    """``--out`` must be a folder this process can create and write in (checked before
    any run, so a run's results are not lost at the end)."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".fnopt-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out: cannot write into {folder!r} ({_one_line(exc)})") from None


def _np_or_none(x: Any) -> np.ndarray | None:
    """``x`` as NumPy when it is a single array of shape (2,), else None."""
    if not _backend.is_array(x):
        return None
    return _backend.to_numpy(x) if tuple(x.shape) == (2,) else None


def _find_demos(folder: str | None) -> Path:
    if folder is not None:
        path = Path(folder)
        if not path.is_dir():
            raise UsageError(f"--demos: {folder!r} is not a folder")
        return path
    for cand in (Path.cwd() / "demos", Path(__file__).resolve().parent.parent / "demos"):
        if cand.is_dir():
            return cand
    raise UsageError("no demos/ folder found; run from the fnopt checkout or pass --demos DIR")


def _load_demo(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"fnopt_demo_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cmd_tour(args: argparse.Namespace) -> int:
    folder = _find_demos(args.demos)
    demos = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        known = {p.stem for p in demos}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise UsageError(
                f"--only: no demo named {', '.join(missing)}; have {', '.join(sorted(known))}"
            )
        demos = [p for p in demos if p.stem in wanted]
    if not demos:
        raise UsageError(f"no demos found in {folder}")
    out = Path(args.out)
    _check_out_dir(args.out)
    print(f"fnopt tour: {len(demos)} demo(s) from {folder} -> {out}"
          f"{' (fast)' if args.fast else ''}", flush=True)
    summary = []
    sys.path.insert(0, str(folder))
    try:
        for path in demos:
            print(f"\n=== {path.stem} ===", flush=True)
            argv = ["--out", str(out / path.stem)] + (["--fast"] if args.fast else [])
            t0 = time.perf_counter()
            try:
                mod = _load_demo(path)
                main_fn = getattr(mod, "main", None)
                if not callable(main_fn):
                    raise TypeError(f"{path.name} has no main(argv) function")
                main_fn(argv)
                ok = True
            except SystemExit as exc:  # a demo's argparse or sys.exit
                ok = exc.code in (0, None)
                if not ok:
                    print(f"{path.stem} exited with status {exc.code}", file=sys.stderr)
            except Exception:
                traceback.print_exc()
                ok = False
            summary.append((path.stem, ok, time.perf_counter() - t0))
    finally:
        sys.path.remove(str(folder))
    print("\n=== tour summary ===")
    for name, ok, secs in summary:
        print(f"  {'ok    ' if ok else 'FAILED'}  {name:<24s} {secs:7.2f} s")
    n_failed = sum(not ok for _, ok, _ in summary)
    pngs = sorted(out.rglob("*.png")) if out.is_dir() else []
    print(f"{len(summary) - n_failed}/{len(summary)} demos ok; {len(pngs)} PNG file(s) in {out}")
    return 1 if n_failed else 0


# -- argument parsing --------------------------------------------------------------------


def _number(kind: type, low: float, *, strict: bool = False,
            high: float = math.inf) -> Callable[[str], Any]:
    """An argparse ``type`` that parses ``kind`` (float or int) and requires a finite value
    ``> low`` (``strict``) or ``>= low``, and ``<= high``."""
    noun = "a number" if kind is float else "an integer"
    bounded = ("a finite number" if kind is float else "an integer") + (
        f" {'>' if strict else '>='} {low:g}"
    ) + ("" if math.isinf(high) else f" and <= {high:g}")

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not (math.isfinite(v) and (v > low if strict else v >= low) and v <= high):
            raise argparse.ArgumentTypeError(f"expected {bounded}, got {text!r}")
        return v

    return parse


def _finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _vector(text: str) -> list[float]:
    """``"1,2.5,-3"`` as finite floats (``--x0``)."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1,2, got "
                                         f"{text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite comma-separated numbers, got "
                                         f"{text!r}")
    return values


def _task_name(text: str) -> str:
    if text in TASKS or (":" in text and text.rpartition(":")[2].isidentifier()):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(TASKS)}, or MODULE:FUNCTION for "
        "your own loss)"
    )


_positive_float = _number(float, 0.0, strict=True)
_nonneg_float = _number(float, 0.0)
_nonneg_int = _number(int, 0)
_dim = _number(int, 2, high=_MAX_DIM)


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", type=_task_name, metavar="task",
                   help=f"the problem to solve: {', '.join(TASKS)}, or MODULE:FUNCTION "
                   "(or FILE.py:FUNCTION), your own loss f(x) started from --x0")
    p.add_argument("--x0", type=_vector, default=None, metavar="X",
                   help="start point as comma-separated numbers, e.g. 1,2 (required for "
                   "MODULE:FUNCTION)")
    p.add_argument("--opt", action="append", default=None, metavar="KEY=VALUE",
                   help="another argument of the optimizer factory, e.g. --opt b1=0.8 "
                   "(repeatable; VALUE is read as a Python literal)")
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="array library (default: numpy)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="floating-point type (default: float64)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: a per-task, per-optimizer value)")
    p.add_argument("--tol", type=_nonneg_float, default=1e-6,
                   help="stop when the gradient norm is <= TOL, like scipy's gtol "
                   "(default: 1e-6; 0 turns it off)")
    p.add_argument("--loss-below", type=_finite_float, default=None, metavar="VALUE",
                   help="stop when the loss is <= VALUE")
    p.add_argument("--max-iters", type=_nonneg_int, default=10_000, metavar="N",
                   help="stop after N steps (default: 10000)")
    p.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS",
                   help="stop after this many seconds")
    p.add_argument("--seed", type=_nonneg_int, default=None,
                   help="start from task.init(SEED) instead of the standard start")
    p.add_argument("--dim", type=_dim, default=2,
                   help=f"number of variables for rosenbrock (default: 2, at most "
                   f"{_MAX_DIM:,})")


def _version() -> str:
    import fnopt

    return str(fnopt.__version__)


def build_parser() -> argparse.ArgumentParser:
    """The ``fnopt`` argument parser (sub-commands ``run``, ``compare``, ``tour``)."""
    parser = argparse.ArgumentParser(
        prog="fnopt",
        description="Pure-function optimizers for NumPy and PyTorch, from the command line.",
        epilog="Run 'fnopt COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"fnopt {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run", help="solve a task with one optimizer",
        description="Solve a task with one optimizer, printing progress lines and a summary.",
        epilog="example: fnopt run rosenbrock --optimizer lbfgs --backend torch --tol 1e-10",
    )
    _add_problem_args(run)
    run.add_argument("--optimizer", "-o", default="sgd",
                     help="an optimizer in the fnopt namespace (default: sgd)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    run.set_defaults(func=_cmd_run)

    cmp_ = sub.add_parser(
        "compare", help="run several optimizers on one task; print a table, save plots",
        description="Run several optimizers from the same start; print a table and save "
        "plots of loss against iteration and (for 2-D tasks) the paths on the contours.",
        epilog="example: fnopt compare rosenbrock --optimizers sgd,adam,lbfgs --out plots",
    )
    _add_problem_args(cmp_)
    cmp_.add_argument("--optimizers", default="sgd,adam,lbfgs",
                      help="comma-separated optimizer names (default: sgd,adam,lbfgs)")
    cmp_.add_argument("--out", default="fnopt-output", metavar="DIR",
                      help="folder for the PNG files (default: fnopt-output)")
    cmp_.add_argument("--no-plots", action="store_true", help="print the table only")
    cmp_.set_defaults(func=_cmd_compare)

    tour = sub.add_parser(
        "tour", help="run every demo in demos/ (the README's main job)",
        description="Run every demo script in demos/ through its main(argv), each "
        "writing its PNG files into a sub-folder of --out.",
        epilog="example: fnopt tour --out demo-output --fast",
    )
    tour.add_argument("--out", default="demo-output", metavar="DIR",
                      help="folder for the demos' output (default: demo-output)")
    tour.add_argument("--fast", action="store_true",
                      help="pass --fast to every demo (fewer iterations)")
    tour.add_argument("--only", default=None, metavar="NAMES",
                      help="comma-separated demo names to run (default: all)")
    tour.add_argument("--demos", default=None, metavar="DIR",
                      help="the demos folder (default: ./demos or the checkout's demos/)")
    tour.set_defaults(func=_cmd_tour)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    >>> main(["run", "rosenbrock", "--optimizer", "sgd", "--max-iters", "3", "--quiet"])
    fnopt run: rosenbrock (numpy, float64) with sgd, learning_rate=0.001; stop when ...
    done: not converged
      iterations   3
    ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    sub = f"fnopt {args.command}"
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"{sub}: error: {exc}\n(see '{sub} --help')", file=sys.stderr)
        return 2
    except Exception as exc:  # the run itself failed: one line, not a traceback
        print(f"{sub}: the run failed: {_one_line(exc)}", file=sys.stderr)
        return 1
