"""Layout rules of the package (DESIGN.md, issue 12): no function in ``fnopt/`` is
over about 100 lines, measured from its ``def`` line to its last line (docstring
included, decorator lines not counted)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fnopt"
MAX_LINES = 100


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, length in lines)`` of every function and method
    in ``source``, nested ones included (a nested function counts in its parent too)."""
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                assert child.end_lineno is not None
                out.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out


def test_function_lengths_are_measured_def_to_last_line() -> None:
    src = "class A:\n    def f(self):\n        '''doc'''\n        return 1\n\n\ndef g():\n" + (
        "    x = 1\n" * 5
    )
    assert function_lengths(src) == [("A.f", 2, 3), ("g", 7, 6)]


def test_package_files_found() -> None:
    files = list(PACKAGE.rglob("*.py"))
    assert PACKAGE / "__init__.py" in files
    assert len(files) > 10


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_over_100_lines(path: Path) -> None:
    long = [f"{name} (line {line}): {n} lines"
            for name, line, n in function_lengths(path.read_text(encoding="utf-8"))
            if n > MAX_LINES]
    assert not long, f"{path.relative_to(PACKAGE.parent)}: functions over {MAX_LINES} " \
                     f"lines: {long}"
