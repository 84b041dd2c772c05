"""Shared helpers for the benchmark scripts: timing, peak memory, and the results log."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("results.jsonl")


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall time of the block, in seconds, as `t["seconds"]`."""
    t: dict[str, float] = {}
    start = time.perf_counter()
    yield t
    t["seconds"] = time.perf_counter() - start


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, in GiB.

    Reads VmHWM (this process's own high-water mark). `ru_maxrss` is not used where VmHWM
    exists: Linux carries it over fork and exec, so a child started by a big parent would
    report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def record(bench: str, figures: dict[str, object]) -> None:
    """Print the figures and append them, with when and where, to bench/results.jsonl."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    line = {
        "bench": bench,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **figures,
    }
    for k, v in figures.items():
        print(f"  {k}: {v}")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
