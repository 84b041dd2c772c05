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


def leadlens(home: Path, *args: str, env: dict[str, str] | None = None,
             ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    """Run `leadlens ARGS` with `home` as LEADLENS_HOME (and `env` added); RuntimeError with
    its standard error when the exit status is not one of `ok`."""
    import sys

    done = subprocess.run([sys.executable, "-m", "leadlens", *args], capture_output=True,
                          text=True, env={**os.environ, "LEADLENS_HOME": str(home),
                                          **(env or {})})
    if done.returncode not in ok:
        raise RuntimeError(f"leadlens {' '.join(args)}: {done.stderr[-3000:]}")
    return done


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    """Until `url` answers 200; raises if the server process exits or time runs out."""
    import httpx

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        time.sleep(0.5)
    raise RuntimeError(f"{url} never answered")


def served_home(leads: int, prefix: str):  # -> core.settings.Runtime
    """A temporary home with a simulated CRM of `leads` leads ingested and the two served
    models (conversion, dropout) trained and promoted: what the serving benches run against."""
    import sys
    import tempfile

    from core.settings import IngestConfig, Runtime, Settings, SimulateConfig
    from core.warehouse import Warehouse
    from ingest.load import ingest_frames
    from leadlens.simulator.crm import simulate_crm
    from training.pipeline import train_models
    from training.promote import promote

    home = Path(tempfile.mkdtemp(prefix=prefix))
    print(f"simulating {leads:,} leads and training the served models", file=sys.stderr)
    crm = simulate_crm(SimulateConfig(leads=leads, reps=40, months=18, seed=7))
    with Warehouse(home / "warehouse.duckdb") as wh:
        ingest_frames(wh, IngestConfig(), home / "q",
                      {"reps": crm.reps, "leads": crm.leads, "activities": crm.activities})
    runtime = Runtime(Settings(), home, None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    train_models(runtime, kinds=("conversion", "dropout"), say=lambda _m: None)
    for kind in ("conversion", "dropout"):
        promote(runtime, kind)
    return runtime


LOADGEN = Path(__file__).with_name("loadgen.py")


def loadgen(url: str, body: dict, seconds: float, key: str | None = None,
            connections: int | None = None, rps: float | None = None) -> dict:
    """Run `bench/loadgen.py` in its own process (closed loop over `connections`, or open loop
    at `rps`) and return its figures."""
    import sys

    args = [sys.executable, str(LOADGEN), url, "--body", json.dumps(body),
            "--seconds", str(seconds), "--timeout", "10"]
    if key:
        args += ["--header", f"Authorization: Bearer {key}"]
    args += ["--connections", str(connections)] if connections else ["--rps", str(rps)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def bench_home(home: Path | None, leads: int, prefix: str):  # -> core.settings.Runtime
    """The runtime of `home` (a home with promoted models), or of a new one (`served_home`)."""
    from core.settings import Runtime, Settings

    return (Runtime(Settings(), home.resolve(), None) if home is not None
            else served_home(leads, prefix))


def champion_trees_and_open_rows(runtime, rows: int):  # -> (lgb.Booster, np.ndarray)
    """The conversion champion's trees (a blend's tree part) and its design matrix of the open
    leads at the default as-of, repeated to `rows` rows."""
    import numpy as np

    from core.blend_model import BlendModel
    from core.registry import champion_version, configure, load_version
    from serving.lead_features import FeatureSource

    configure(runtime.mlflow_uri)
    bundle = load_version("leadlens-conversion", champion_version("leadlens-conversion") or 1)
    trees = bundle.booster.tree if isinstance(bundle.booster, BlendModel) else bundle.booster
    source = FeatureSource(runtime.warehouse_path, runtime.settings.engagement)
    as_of = source.default_as_of()
    x = np.ascontiguousarray(bundle.matrix(source.for_ids(source.open_lead_ids(as_of), as_of)))
    source.close()
    return trees, np.ascontiguousarray(np.resize(x, (rows, x.shape[1])))


def tree_bench_parser(doc: str | None, rows: int):  # -> argparse.ArgumentParser
    """The options of the benches that run on the champion's trees: --home, --leads, --rows."""
    import argparse

    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="a home with promoted models (default: build one)")
    ap.add_argument("--leads", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=rows)
    return ap


def bench_trees(args, prefix: str):  # -> (runtime, lgb.Booster, np.ndarray)
    """The home of `args` (or a new one), the conversion champion's trees and its open-lead
    matrix repeated to `args.rows` rows; fails when the champion has no trees."""
    import lightgbm as lgb

    runtime = bench_home(args.home, args.leads, prefix)
    trees, x = champion_trees_and_open_rows(runtime, args.rows)
    assert isinstance(trees, lgb.Booster), "the served model has no trees"
    return runtime, trees, x


def tree_rss_gib(pid: int) -> tuple[float, float]:
    """Resident memory of a process with all its children, and of the process alone, in GiB
    (0 once it has ended)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    sizes = []
    for p in procs:
        try:
            sizes.append(p.memory_info().rss)
        except psutil.NoSuchProcess:
            sizes.append(0)
    return sum(sizes) / 1024**3, sizes[0] / 1024**3


def with_peak_memories(child: subprocess.Popen) -> tuple[str, tuple[float, float]]:
    """Wait for `child`: its standard output and the peak resident memory (GiB) of its process
    tree (for Spark: the Python driver, the JVM and its workers) and of the child process alone
    (the Python driver), sampled every 0.2 s."""
    import threading

    peak = [0.0, 0.0]

    def sample() -> None:
        while child.poll() is None:
            tree, own = tree_rss_gib(child.pid)
            peak[0], peak[1] = max(peak[0], tree), max(peak[1], own)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output, _ = child.communicate()
    sampler.join()
    return output or "", (peak[0], peak[1])
