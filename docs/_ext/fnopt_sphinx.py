"""Sphinx glue for fnopt's reference.

Docstrings refer to names the way their module sees them (``:func:`save``` inside
``fnopt.checkpoint``, ``:mod:`fnopt.transforms.wrappers``` for an implementation
module), while the reference documents each object once, under its shortest public path
(``fnopt.save``). This resolver follows such a reference to the object it names and
links the page that documents that object; a reference to something that does not exist
stays unresolved, so the nitpicky build still fails on it.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

import fnopt_reference
from docutils import nodes
from sphinx.application import Sphinx

_BY_ID: dict[int, str] = {}
_BY_TAIL: dict[str, list[str]] = {}
_MODULES: set[str] = set()


def _index() -> None:
    if _BY_ID:
        return
    for entry in fnopt_reference.entries():
        mod, _, name = entry.name.rpartition(".")
        if entry.kind == "module":
            _MODULES.add(entry.name)
            continue
        _BY_TAIL.setdefault(name, []).append(entry.name)
        obj = getattr(importlib.import_module(mod), name)
        if entry.kind != "data":
            _BY_ID.setdefault(id(obj), entry.name)
        if entry.kind in ("class", "exception"):  # bare method names link their class
            for attr in vars(obj):
                if not attr.startswith("_"):
                    _BY_TAIL.setdefault(attr, []).append(entry.name)
            for attr in getattr(obj, "__annotations__", {}):
                _BY_TAIL.setdefault(f"{name}.{attr}", []).append(entry.name)
    for names in _BY_TAIL.values():
        names.sort(key=fnopt_reference._rank)


def _lookup(path: str) -> Any:
    """The object at a dotted path (module, then attributes), or ``None``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def _documented_module(name: str) -> str | None:
    while name:
        if name in _MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _canonical(
    target: str, modname: str | None, clsname: str | None, refdoc: str
) -> str | None:
    target = target.lstrip("~.")
    candidates = [target]
    documented = _lookup(refdoc.rpartition("/")[2])  # api/generated/<name>: its module
    home = getattr(documented, "__module__", None)
    if isinstance(home, str) and home.startswith("fnopt"):
        candidates.append(f"{home}.{target}")
    if modname:
        if clsname:
            candidates.insert(0, f"{modname}.{clsname}.{target}")
        candidates.insert(0 if "." not in target else 1, f"{modname}.{target}")
    for path in candidates:
        if not path.startswith("fnopt"):
            continue
        obj = _lookup(path)
        if obj is None:
            continue
        if isinstance(obj, types.ModuleType):
            return _documented_module(obj.__name__)
        if id(obj) in _BY_ID:
            return _BY_ID[id(obj)]
    for path in candidates:  # a method or attribute, perhaps set in __init__: its class
        if not path.startswith("fnopt") or "." not in path:
            continue
        owner, _, attr = path.rpartition(".")
        owner_obj = _lookup(owner)
        known = hasattr(owner_obj, attr) or f"{attr}:" in (getattr(owner_obj, "__doc__", "") or "")
        if isinstance(owner_obj, type) and id(owner_obj) in _BY_ID and known:
            return _BY_ID[id(owner_obj)]
    for path in candidates:
        if path.startswith("fnopt") and _lookup(path) is not None:
            return ""  # exists, but is not public: shown as text, not linked
    tail = target.rpartition(".")[2]
    for key in (target, tail):
        if key in _BY_TAIL and (key == target or target.startswith("fnopt.")):
            return _BY_TAIL[key][0]  # a bare name from a docstring: the shortest public path
    return None


def _resolve(app: Sphinx, env: Any, node: Any, contnode: nodes.Element) -> Any:
    if node.get("refdomain") != "py":
        return None
    _index()
    name = _canonical(
        node["reftarget"], node.get("py:module"), node.get("py:class"), node["refdoc"]
    )
    if name is None:
        return None
    if name == "":
        return contnode
    domain = env.get_domain("py")
    typ = "mod" if name in _MODULES else "obj"
    return domain.resolve_xref(env, node["refdoc"], app.builder, typ, name, node, contnode)


def _summary_safe(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                  lines: list[str]) -> None:
    # autosummary ends a summary at the first "...": inside a literal on the first line
    # (``a -> ... -> b``) that would cut the literal in two
    if lines and "``" in lines[0] and "..." in lines[0]:
        lines[0] = lines[0].replace("...", "\u2026")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", _resolve)
    app.connect("autodoc-process-docstring", _summary_safe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
