"""Shared helpers for the benchmark scripts: interleaved timing, medians, tables.

Every script measures its variants *interleaved* (round-robin, several rounds) and
reports the median, so that noise from other processes on a shared machine hits all
variants alike; ratios are taken within one run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

Timed = Callable[[], float]
"""A variant: runs once and returns the seconds per unit of work it measured."""


def interleaved(variants: dict[str, Timed], rounds: int) -> dict[str, float]:
    """Median seconds per unit for each variant, run round-robin ``rounds`` times."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for f in variants.values():  # warm-up, not recorded
        f()
    for _ in range(rounds):
        for name, f in variants.items():
            samples[name].append(f())
    return {name: statistics.median(v) for name, v in samples.items()}


def per_call(f: Callable[[], object], n: int) -> Timed:
    """A :data:`Timed` that calls ``f`` ``n`` times and returns seconds per call."""

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - t0) / n

    return run


def table(
    title: str, rows: list[tuple[str, float | None, float | None, str]], unit: str = "µs"
) -> str:
    """A Markdown table: variant, median time (in ``unit``), ratio to the reference, note."""
    out = [f"### {title}", "", f"| variant | {unit} | ratio | note |", "|---|---:|---:|---|"]
    for name, us, ratio, note in rows:
        us_s = "n/a" if us is None else (f"{us:.1f}" if us < 1000 else f"{us:,.0f}")
        r_s = "" if ratio is None else f"{ratio:.2f}×"
        out.append(f"| {name} | {us_s} | {r_s} | {note} |")
    return "\n".join(out)


def header() -> str:
    """A line naming the machine and library versions."""
    import numpy as np

    parts = [platform.processor() or platform.machine(), f"python {platform.python_version()}"]
    parts.append(f"numpy {np.__version__}")
    try:
        import torch

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        parts.append("torch not installed")
    return "; ".join(parts)


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median taken)")
    p.add_argument("--quick", action="store_true", help="fewer rounds and smaller runs")
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1: on a shared, busy machine more threads "
        "spin and wait on each other; every variant uses the same torch kernels)",
    )
    return p


def setup(args: argparse.Namespace) -> None:
    """Apply the common options (torch threads)."""
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass


def optional(name: str) -> object | None:
    """Import an optional peer (optax, torchopt, jax) or return None."""
    import importlib

    try:
        return importlib.import_module(name)
    except Exception:
        return None
