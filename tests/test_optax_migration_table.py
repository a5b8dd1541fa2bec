"""docs/migration/optax-table.md is complete, current and names only fnopt objects that
exist (the table is written by scripts/optax_migration_table.py)."""

from __future__ import annotations

import importlib.util
import pathlib
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "migration" / "optax-table.md"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "optax_migration_table", ROOT / "scripts" / "optax_migration_table.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_fnopt_name_in_the_table_exists() -> None:
    mod = script()
    for optax_name, (target, note) in mod.ROWS.items():
        assert note or target, optax_name
        if target:
            mod.resolve(target)  # AttributeError if fnopt has no such name


def test_the_table_lists_every_optax_name_and_is_current() -> None:
    optax = pytest.importorskip("optax")
    mod = script()
    names = list(optax.__all__)
    text = TABLE.read_text(encoding="utf-8")
    assert text == mod.table(names), "rerun scripts/optax_migration_table.py"
    for name in names:
        assert f"| `optax.{name}` |" in text
    assert "no entry yet" not in text
