"""The API reference's lists, computed from the package's ``__all__``.

Every public name is collected from ``fnopt.__all__`` and the ``__all__`` of every
public submodule, deduplicated (a name re-exported under a shorter path is documented
once, under the shortest), and sorted into a concept *group* by :data:`RULES` (the
module that defines it) and :data:`OVERRIDES` (single names). ``write_pages`` writes one
autosummary page per group into ``docs/api/`` when Sphinx starts (``conf.py`` calls it),
so a new name in an ``__all__`` reaches the site with no edit here unless its defining
module matches no rule: then it lands in the group ``unsorted`` and
``tests/test_docs_reference.py`` fails, naming it.

Imported by ``docs/conf.py`` and by the test; it needs only fnopt and the standard
library.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from dataclasses import dataclass
from pathlib import Path

# (slug, title, one-paragraph introduction), in the order of the reference's contents.
GROUPS: list[tuple[str, str, str]] = [
    ("core", "Core types",
     "The protocols every piece implements: a :class:`fnopt.Transform` maps gradients to "
     "updates, an :class:`fnopt.Optimizer` steps params with a ``grad_fn``, and a "
     ":class:`fnopt.Descent` (what every first-order alias returns) is both."),
    ("transforms", "Transforms",
     "optax-shaped building blocks ``init(params) -> state``, "
     "``update(grads, state, params) -> (updates, state)``: scalings, clipping, "
     "combinators and wrappers, projections. Compose them with :func:`fnopt.chain` and "
     "lift a chain to an optimizer with :func:`fnopt.descent`."),
    ("optimizers", "Optimizers",
     "Named optimizers: the first-order aliases (each one ``chain`` of transforms, "
     "torch.optim's defaults), the recent methods, line searches, quasi-Newton and "
     "Newton methods, and L-BFGS-B."),
    ("loop", "Loop and criteria",
     ":func:`fnopt.fixed_point` drives any optimizer until a criterion from "
     ":mod:`fnopt.stop` holds and returns a :class:`fnopt.Result` that says why; "
     "callbacks, minibatch data and many problems at once (:func:`fnopt.batched`)."),
    ("gradients", "Gradients",
     "Gradient providers ``grad_fn(params, *batch) -> (value, grads)``: hand-written, "
     "``torch.func``, autograd, finite differences; Hessians, residuals and Jacobians; "
     ":func:`fnopt.grad.check` compares two providers."),
    ("least_squares", "Least squares and scipy front doors",
     "Nonlinear least squares (Gauss-Newton, Levenberg-Marquardt, trust-region "
     "reflective) and the scipy-shaped front doors :func:`fnopt.minimize`, "
     ":func:`fnopt.least_squares` and :func:`fnopt.curve_fit`."),
    ("schedules", "Schedules",
     "Learning-rate schedules ``count -> rate``; every ``learning_rate`` takes one."),
    ("tree", "Tree",
     "Pytree arithmetic on NumPy arrays or torch tensors (optree underneath)."),
    ("checkpoints", "Checkpoints",
     "Save and load params, optimizer state and loop position; resume bitwise."),
    ("testing", "Testing kit",
     "Hypothesis strategies and a conformance check for your own optimizer."),
    ("objectives", "Objectives, tasks and datasets",
     "One :class:`fnopt.objectives.Objective` type for the tutorial tasks, the test "
     "problems with known minima and the datasets shipped with the package."),
    ("torch", "Torch bridge",
     "``torch.nn.Module`` parameters as a pytree and back (import ``fnopt.torch``)."),
    ("distributed", "Distributed",
     "Data-parallel runs over ``torch.distributed``."),
    ("implicit", "Implicit differentiation",
     "Differentiate through a solver's answer (the implicit function theorem)."),
    ("backend", "Backend",
     "Where NumPy and torch differ; the one place that branches on the backend."),
    ("plots", "Plots",
     "Matplotlib pictures of a run. Needs ``import fnopt.plots`` (matplotlib is "
     "imported only then)."),
    ("cli", "Command line",
     "``python -m fnopt`` (or ``fnopt``): run a task, the demo tour."),
    ("unsorted", "Unsorted",
     "Names no rule in ``docs/_ext/fnopt_reference.py`` places yet."),
]
DEFAULT_GROUP = "unsorted"

# Defining module (longest prefix wins) -> group.
RULES: dict[str, str] = {
    "fnopt": "core",
    "fnopt._base": "core",
    "fnopt.transforms": "transforms",
    "fnopt.optimizers": "optimizers",
    "fnopt.optimizers.lsq": "least_squares",
    "fnopt.optimizers._lsq_kernels": "least_squares",
    "fnopt._lsq_api": "least_squares",
    "fnopt.minimize": "least_squares",
    "fnopt.loop": "loop",
    "fnopt.stop": "loop",
    "fnopt.callbacks": "loop",
    "fnopt.data": "loop",
    "fnopt.batched": "loop",
    "fnopt.grad": "gradients",
    "fnopt.schedules": "schedules",
    "fnopt.tree": "tree",
    "fnopt.checkpoint": "checkpoints",
    "fnopt.testing": "testing",
    "fnopt.objectives": "objectives",
    "fnopt.datasets": "objectives",
    "fnopt.torch": "torch",
    "fnopt.distributed": "distributed",
    "fnopt.implicit": "implicit",
    "fnopt.backend": "backend",
    "fnopt.plots": "plots",
    "fnopt.cli": "cli",
    "fnopt.__main__": "cli",
}

# Documented name -> group, for a name its defining module would misplace.
OVERRIDES: dict[str, str] = {
    "fnopt.descent": "core",
    "fnopt.learning_rate_of": "core",
}


@dataclass(frozen=True)
class Entry:
    """One documented name: ``name`` is the fully qualified path it is documented under."""

    name: str
    kind: str  # "module", "class", "exception", "function", "data"
    group: str


def _private(modname: str) -> bool:
    return any(part.startswith("_") for part in modname.split(".")[1:])


def public_modules() -> list[str]:
    """``fnopt`` and every submodule that is not private (no ``_`` component)."""
    import fnopt

    names = ["fnopt"]
    for info in pkgutil.walk_packages(fnopt.__path__, "fnopt."):
        if _private(info.name):
            continue
        names.append(info.name)
    return sorted(names)


def public_names() -> dict[str, object]:
    """Every ``module.name`` listed in a public module's ``__all__``, with its object."""
    out: dict[str, object] = {}
    for modname in public_modules():
        mod = importlib.import_module(modname)
        for name in getattr(mod, "__all__", ()):
            out[f"{modname}.{name}"] = getattr(mod, name)
    return out


def _kind(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if isinstance(obj, type):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def _defining_module(qualname: str, obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    listed_in = qualname.rsplit(".", 1)[0]
    if listed_in != "fnopt":
        return listed_in
    return getattr(obj, "__module__", None) or listed_in


def group_of(qualname: str, obj: object) -> str:
    """The group a documented name belongs to (``DEFAULT_GROUP`` when no rule fits)."""
    if qualname in OVERRIDES:
        return OVERRIDES[qualname]
    home = _defining_module(qualname, obj)
    best = ""
    for prefix in RULES:
        nested = prefix != "fnopt" and home.startswith(prefix + ".")  # "fnopt": exact only
        if (home == prefix or nested) and len(prefix) > len(best):
            best = prefix
    return RULES[best] if best else DEFAULT_GROUP


def _rank(qualname: str) -> tuple[int, str]:
    return (qualname.count("."), qualname)


def entries() -> list[Entry]:
    """The reference's entries: one per distinct public (object, name), documented under
    the shortest path that lists it; a public module is documented under its real name."""
    chosen: dict[tuple[int, str], str] = {}
    objects: dict[str, object] = {}
    for qualname, obj in public_names().items():
        if isinstance(obj, types.ModuleType):
            qualname = obj.__name__
        key = (id(obj), qualname.rsplit(".", 1)[1])
        if key not in chosen or _rank(qualname) < _rank(chosen[key]):
            chosen[key] = qualname
            objects[qualname] = obj
    homes = {q.rsplit(".", 1)[0] for q in chosen.values()}
    for modname in public_modules():  # top-level modules and those with names get a page
        if modname.count(".") > 1 and modname not in homes:
            continue
        mod = importlib.import_module(modname)
        key = (id(mod), modname.rsplit(".", 1)[-1])
        chosen.setdefault(key, modname)
        objects.setdefault(modname, mod)
    out = [
        Entry(q, _kind(objects[q]), group_of(q, objects[q])) for q in set(chosen.values())
    ]
    return sorted(out, key=lambda e: (e.kind != "module", e.name.lower()))


def covered(qualname: str, obj: object, documented: set[str]) -> bool:
    """Whether ``qualname`` (a public ``module.name``) is documented under some path."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__ in documented
    if qualname in documented:
        return True
    tail = qualname.rsplit(".", 1)[1]
    for other in documented:
        if other.rsplit(".", 1)[-1] == tail:
            mod, _, name = other.rpartition(".")
            try:
                if getattr(importlib.import_module(mod), name) is obj:
                    return True
            except (ImportError, AttributeError):
                continue
    return False


_KIND_TITLES = {
    "module": "Modules",
    "class": "Classes",
    "exception": "Exceptions",
    "function": "Functions",
    "data": "Constants",
}


def render_group(slug: str, title: str, intro: str, members: list[Entry]) -> str:
    """The reStructuredText of one group page."""
    lines = [
        ".. This page is generated by docs/_ext/fnopt_reference.py; do not edit.",
        "",
        f".. _api-{slug}:",
        "",
        title,
        "=" * len(title),
        "",
        intro,
        "",
    ]
    for kind, heading in _KIND_TITLES.items():
        names = [e.name for e in members if e.kind == kind]
        if not names:
            continue
        if kind == "data":  # a constant's own docstring is its type's: no page of its own
            lines += [heading, "-" * len(heading), ""]
            for n in names:
                mod = n.rpartition(".")[0]
                lines += [f".. py:data:: {n}", "", f"   A constant of :mod:`{mod}`.", ""]
            continue
        lines += [heading, "-" * len(heading), "", ".. autosummary::",
                  "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {n}" for n in names]
        lines.append("")
    return "\n".join(lines)


def write_pages(outdir: Path) -> list[str]:
    """Write ``<outdir>/<group>.rst`` for every non-empty group and an ``index.rst`` with
    their toctree; rewrite a file only when its text changed (keeps Sphinx incremental).
    Returns the slugs written."""
    outdir.mkdir(parents=True, exist_ok=True)
    all_entries = entries()
    slugs = []
    for slug, title, intro in GROUPS:
        members = [e for e in all_entries if e.group == slug]
        if not members:
            continue
        slugs.append(slug)
        _write_if_changed(outdir / f"{slug}.rst", render_group(slug, title, intro, members))
    index = [
        ".. This page is generated by docs/_ext/fnopt_reference.py; do not edit.",
        "",
        "API reference",
        "=============",
        "",
        "Every public name of fnopt, grouped by concept. Each page lists the names with",
        "their one-line summaries; each name has its own page with the full docstring.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ] + [f"   {s}" for s in slugs] + [""]
    _write_if_changed(outdir / "index.rst", "\n".join(index))
    return slugs


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
