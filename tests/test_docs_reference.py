"""The documentation site's API reference covers every public name, and documents only
names that exist.

The reference pages are written from the package's ``__all__`` by
``docs/_ext/fnopt_reference.py`` (Sphinx calls it at every build). These tests write the
pages into a temporary folder and read the reStructuredText back — no Sphinx build —
and also check every name the hand-written pages (``docs/**/*.md``) refer to.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import fnopt_reference as ref  # noqa: E402

_ENTRY = re.compile(r"^\s{3}(fnopt[\w.]*)\s*$", re.M)          # autosummary lines
_DATA = re.compile(r"^\.\. py:data:: (fnopt[\w.]*)\s*$", re.M)
_ROLE = re.compile(r"\{(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj)\}`~?([\w.]+)`")


def _resolve(path: str) -> object | None:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return None
            obj = getattr(obj, attr)
        return obj
    return None


@pytest.fixture(scope="module")
def documented(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("api")
    slugs = ref.write_pages(out)
    names: set[str] = set()
    for slug in slugs:
        text = (out / f"{slug}.rst").read_text()
        names |= set(_ENTRY.findall(text)) | set(_DATA.findall(text))
    index = (out / "index.rst").read_text()
    assert all(f"   {s}" in index for s in slugs), "a group page is missing from the index"
    return names


def test_every_public_name_has_a_concept_group() -> None:
    unsorted = [e.name for e in ref.entries() if e.group == ref.DEFAULT_GROUP]
    assert not unsorted, (
        "no group for these public names: add their defining module to RULES (or the "
        f"name to OVERRIDES) in docs/_ext/fnopt_reference.py: {unsorted}")
    slugs = {slug for slug, _, _ in ref.GROUPS}
    assert set(ref.RULES.values()) | set(ref.OVERRIDES.values()) <= slugs


def test_every_name_in_a_public_all_has_a_reference_entry(documented: set[str]) -> None:
    names = ref.public_names()
    assert len(names) > 200  # fnopt.__all__ alone has well over a hundred names
    missing = [q for q, obj in names.items() if not ref.covered(q, obj, documented)]
    assert not missing, f"public names with no reference entry: {missing}"


def test_the_public_modules_include_the_documented_subpackages() -> None:
    modules = set(ref.public_modules())
    for name in ("fnopt", "fnopt.tree", "fnopt.schedules", "fnopt.stop", "fnopt.grad",
                 "fnopt.testing", "fnopt.torch", "fnopt.distributed", "fnopt.implicit",
                 "fnopt.cli", "fnopt.checkpoint", "fnopt.transforms"):
        assert name in modules, name
    assert "fnopt.transform" not in modules  # no old import paths (no shim modules)


def test_the_reference_documents_only_names_that_exist(documented: set[str]) -> None:
    ghosts = sorted(n for n in documented if _resolve(n) is None)
    assert not ghosts, f"the reference documents names that do not exist: {ghosts}"
    private = sorted(n for n in documented if any(p.startswith("_") for p in n.split(".")))
    assert not private, private


def test_each_object_is_documented_once_under_its_shortest_public_path(
        documented: set[str]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for name in sorted(documented):
        obj = _resolve(name)
        if isinstance(obj, types.ModuleType) or not callable(obj):
            continue
        key = (id(obj), name.rsplit(".", 1)[1])
        assert key not in seen, f"{name} and {seen[key]} document the same object"
        seen[key] = name
    assert "fnopt.adam" in documented and "fnopt.optimizers.adam" not in documented


def test_a_name_no_rule_places_is_reported_not_dropped() -> None:
    # the default group exists, so such a name still gets a page (and the first test fails)
    def new_alias() -> None: ...

    new_alias.__module__ = "fnopt.optimizers.first_order"  # picked up with no edit
    assert ref.group_of("fnopt.new_alias", new_alias) == "optimizers"
    assert ref.group_of("fnopt.schedules.new_schedule", new_alias) == "schedules"
    new_alias.__module__ = "fnopt.somewhere_new"
    assert ref.group_of("fnopt.new_alias", new_alias) == ref.DEFAULT_GROUP


def test_names_the_hand_written_pages_refer_to_exist() -> None:
    pages = [p for p in DOCS.rglob("*.md")
             if "_build" not in p.parts and "jupyter_execute" not in p.parts]
    assert len(pages) >= 10
    broken = []
    for page in pages:
        for target in _ROLE.findall(page.read_text()):
            if target.startswith("fnopt") and _resolve(target) is None:
                broken.append(f"{page.relative_to(DOCS)}: {target}")
    assert not broken, broken


def test_every_guarantee_names_tests_that_exist() -> None:
    """docs/guarantees.md: each ``tests/<file>.py[::test]`` it cites exists."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "guarantees.md").read_text(encoding="utf-8")
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    assert len(cited) > 20
    missing = []
    for path, name in cited:
        source = root / path
        if not source.exists():
            missing.append(path)
        elif name and f"def {name}(" not in source.read_text(encoding="utf-8"):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/guarantees.md cites tests that do not exist: {missing}"
