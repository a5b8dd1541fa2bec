"""Sphinx configuration of fnopt's documentation site (``./run docs`` builds it)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "_ext"))

import fnopt_reference  # noqa: E402

import fnopt  # noqa: E402

# The per-group reference pages, written from the package's __all__ on every build.
fnopt_reference.write_pages(HERE / "api")

project = "fnopt"
author = "the fnopt authors"
copyright = "2026, the fnopt authors"  # noqa: A001 (Sphinx reads this name)
release = fnopt.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
    "fnopt_sphinx",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "migration/*-table.md",
                    "benchmarks/results.md"]
templates_path = ["_templates"]

# Reference: one page per public name, from its docstring.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False
add_module_names = False

# Nitpicky: every cross-reference must resolve. Without network there is no
# intersphinx, so references into other libraries and to private annotation
# aliases are the only ones excused.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|torch|optree|attrs|attr|scipy|matplotlib|hypothesis|enum)(\..*)?"),
    (r"py:.*", r"(typing|typing_extensions|collections\.abc|types|abc|os|pathlib|io|logging|"
               r"contextlib|concurrent\.futures|threading|signal)\..*"),
    (r"py:.*", r"(Array|ArrayLike|NDArray|Tensor|PyTree|Params|Updates|State|Grads|Schedule|"
               r"ScalarOrSchedule|Scalar|Leaf|Tree|Device|DType|Dtype|Any|Callable|T|P|R|S)"),
    (r"py:.*", r"(.*\.)?_[A-Za-z].*"),  # private helpers and aliases
    (r"py:exc", r"ValueError / TypeError"),  # a Raises: line naming two classes
    (r"py:class", r"(int|float|bool|str|bytes|object|complex|tuple|list|dict|None|type)"),
]

# Tutorials: executed at every build, never cached; a failing cell fails the build.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 180
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"fnopt {release}"
html_static_path: list[str] = []
html_copy_source = False  # no _sources/ copies: a faster build, nothing a reader needs
html_theme_options = {"navigation_with_keys": True}
