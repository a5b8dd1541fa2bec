"""docs/migration/torch-optim-table.md is complete and current: every torch.optim
optimizer and lr_scheduler class of the installed torch and every constructor argument
has a row (scripts/torch_optim_table.py generates it; issue 21)."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib

import pytest

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location(
        "torch_optim_table", ROOT / "scripts" / "torch_optim_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_script_maps_every_class_of_the_installed_torch():
    # render() raises KeyError for a class or scheduler argument without a row
    text = _script().render()
    assert "| `SGD` | `momentum` |" in text and "| `OneCycleLR` | `max_lr` |" in text


def test_every_class_and_argument_has_a_row():
    text = (ROOT / "docs" / "migration" / "torch-optim-table.md").read_text(encoding="utf-8")
    rows = {tuple(c.strip().strip("`") for c in line.split("|")[1:3])
            for line in text.splitlines() if line.startswith("| `")}
    table = _script()
    import torch.optim.lr_scheduler as lrs

    expected = set()
    for mod, names in ((torch.optim, table.optimizer_classes()),
                       (lrs, table.scheduler_classes())):
        for name in names:
            expected.add((name, ""))
            params = inspect.signature(getattr(mod, name).__init__).parameters
            expected |= {(name, a) for a, p in params.items() if a != "self"
                         and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    assert len(table.optimizer_classes()) >= 15 and len(table.scheduler_classes()) >= 15
    assert expected <= rows, sorted(expected - rows)
