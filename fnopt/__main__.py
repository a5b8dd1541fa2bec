"""``python -m fnopt`` and the ``fnopt`` console script (see :mod:`fnopt.cli`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the command line and return its exit code.

    Output piped into a program that stops reading (``fnopt run ... | head``) ends the
    command quietly instead of with a ``BrokenPipeError`` traceback.
    """
    from fnopt.cli import main as cli_main

    try:
        code = cli_main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the interpreter's final
        # flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
