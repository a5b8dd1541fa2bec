"""``python -m fnopt`` and the ``fnopt`` console script (see :mod:`fnopt.cli`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the command line and return its exit code."""
    from fnopt.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
