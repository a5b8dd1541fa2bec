"""Run a quick subset of the benchmarks and write ``docs/benchmarks/results.md``, the
text the site's benchmarks page includes (machine and date named at its top).

    .venv/bin/python docs/benchmarks/make_page.py            # ~1-3 minutes
    .venv/bin/python docs/benchmarks/make_page.py --full     # the scripts' full runs

The tables are the scripts' own Markdown output, unedited; commit the file after a run.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results.md"
SCRIPTS = [
    ("One optimizer step", "bench_steps.py"),
    ("The loop", "bench_loop.py"),
]


def _machine() -> str:
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, NumPy "
            f"{numpy.__version__}, torch {torch.__version__}")


def main(argv: list[str]) -> None:
    quick = "--full" not in argv
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!-- written by docs/benchmarks/make_page.py; do not edit by hand -->",
        "",
        f"**Run:** {when}, {'quick subset (`--quick`)' if quick else 'full run'}.  ",
        f"**Machine:** {_machine()}.",
        "",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for title, script in SCRIPTS:
        cmd = [sys.executable, str(ROOT / "benchmarks" / script)] + (["--quick"] if quick else [])
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              check=True)
        parts += [f"## {title} (`benchmarks/{script}`)", "", done.stdout.strip(), ""]
    OUT.write_text("\n".join(parts) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
