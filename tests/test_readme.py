"""The README's "API tour" runs: its python code blocks are executed in order in one
namespace, and every ``print`` followed by a ``# expected`` comment prints exactly that."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def _blocks(section: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", section, re.S | re.M)


def _expected(block: str) -> list[str]:
    """The ``# ...`` comment lines that directly follow a ``print(...)`` statement
    (possibly spanning lines); one expected output line each."""
    out: list[str] = []
    lines = block.splitlines()
    in_print = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("print("):
            in_print = True
        if in_print and not stripped.startswith("#"):
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if nxt.startswith("# "):
                out.append(nxt[2:])
                in_print = False
            elif stripped.endswith(")") and not nxt.startswith((" ", ".")):
                in_print = False
    return out


def test_tour_has_code_for_each_topic():
    section = _section("API tour")
    code = "\n".join(_blocks(section))
    for needle in ("grad.from_functions", "grad.check", "fnopt.sgd", "fixed_point",
                   "fnopt.stop.", "result.reason", "fnopt.tasks.rosenbrock",
                   "fnopt.tasks.linear_regression", "fnopt.tasks.mlp"):
        assert needle in code, needle


def test_tour_code_runs_and_prints_what_it_says():
    blocks = _blocks(_section("API tour"))
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "readme_tour"}
    for i, block in enumerate(blocks):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(block, f"README.md API tour block {i}", "exec"), namespace)
        printed = buf.getvalue().splitlines()
        expected = _expected(block)
        assert printed == expected, (i, printed, expected)
