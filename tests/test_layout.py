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


# -- backend branches live in fnopt/backend.py ---------------------------------------------

# The modules that hold the optimizer math, the loop and the objectives: none of them asks
# whether a value is a tensor (they call the Backend of the leaves). A few boundary checks
# elsewhere (a torch-only provider refusing a NumPy loss, a checkpoint naming a leaf's
# kind) keep one predicate; arithmetic never branches outside backend.py.
_NO_BACKEND_SWITCHES = ["transforms", "optimizers", "loop", "objectives", "tree.py",
                        "batched.py", "stop.py", "schedules.py", "data.py", "minimize.py",
                        "datasets"]


_BACKEND_NAMES = {"TORCH", "NUMPY", "'torch'", "'numpy'"}


def _switches(source: str) -> list[int]:
    """Lines that branch on the backend: ``is_tensor(...)``, ``isinstance(x,
    torch.Tensor)``, or a comparison with ``TORCH``/``NUMPY`` or ``"torch"``/``"numpy"``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            tensor_type = name == "isinstance" and "Tensor" in ast.unparse(node.args[1])
            if name == "is_tensor" or tensor_type:
                lines.append(node.lineno)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names = {ast.unparse(s).rsplit(".", 1)[-1] for s in sides}
            if names & _BACKEND_NAMES:
                lines.append(node.lineno)
    return lines


def test_switch_finder_sees_every_spelling() -> None:
    src = ("import torch\nif is_tensor(x):\n    pass\ny = isinstance(x, torch.Tensor)\n"
           "z = be is _backend.TORCH\nw = backend == 'numpy'\n")
    assert _switches(src) == [2, 4, 5, 6]


@pytest.mark.parametrize("where", _NO_BACKEND_SWITCHES)
def test_no_backend_switches_outside_backend(where: str) -> None:
    root = PACKAGE / where
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    assert files
    found = {str(p.relative_to(PACKAGE)): s for p in files
             if (s := _switches(p.read_text(encoding="utf-8")))}
    assert not found, f"tensor checks outside fnopt/backend.py (lines): {found}"


# -- no shims: every module is a home, none re-exports another module -----------------------

def _is_shim(source: str) -> bool:
    """A module that only forwards to another one: a star import, a module-level
    ``__getattr__`` forwarding to another module, or a ``sys.modules[__name__] = ...``."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Subscript) and ast.unparse(t) == "sys.modules[__name__]"
            for t in node.targets
        ):
            return True
    return False


def test_shim_finder_sees_both_styles() -> None:
    assert _is_shim("from fnopt.transforms import *  # noqa\n")
    assert _is_shim("import sys\nfrom fnopt import x\nsys.modules[__name__] = x\n")
    assert not _is_shim("from fnopt.transforms import chain as chain\n")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_shim_modules(path: Path) -> None:
    assert not _is_shim(path.read_text(encoding="utf-8")), (
        f"{path.relative_to(PACKAGE.parent)} only forwards to another module; "
        "import the module's home instead"
    )


def test_no_root_conftest() -> None:
    assert not (PACKAGE.parent / "conftest.py").exists()
