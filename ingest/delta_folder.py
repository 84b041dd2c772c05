"""A delta export in a folder, loaded as one warehouse snapshot: `leads`, `activities`, `reps`
and `tombstones` files (`.csv`, `.csv.gz` or `.parquet`, each optional) and, optionally, a
`cutoff.txt` holding when the export was taken (ISO-8601). New and changed rows merge in by id;
loading the same folder again changes nothing."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from core.processes import process_alive
from core.settings import Runtime
from core.timestamps import parse_cutoff, record_cutoff
from core.warehouse import Warehouse
from core.warehouse_snapshots import new_snapshot
from ingest.load import IngestError, IngestSummary, ProgressFn, ingest_files

PARTS = ("leads", "activities", "reps", "tombstones")
SUFFIXES = (".csv", ".csv.gz", ".parquet")


def delta_files(folder: Path) -> dict[str, Path]:
    """The contract files of a delta folder, by table."""
    out = {}
    for part in PARTS:
        found = [folder / f"{part}{s}" for s in SUFFIXES if (folder / f"{part}{s}").is_file()]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise IngestError(f"{folder}: more than one {part} file ({names})")
        if found:
            out[part] = found[0]
    return out


def folder_cutoff(folder: Path) -> pd.Timestamp | None:
    """The delta's `cutoff.txt` as a naive UTC timestamp, or None; IngestError when unreadable."""
    path = folder / "cutoff.txt"
    if not path.is_file():
        return None
    try:
        return parse_cutoff(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise IngestError(f"{path}: {err}") from None


def load_into(wh: Warehouse, runtime: Runtime, folder: Path,
               progress: ProgressFn | None) -> IngestSummary:
    """Validate and merge one delta folder into the open warehouse (its own transaction)."""
    files = delta_files(folder)
    if not files:
        raise IngestError(f"{folder}: no leads, activities, reps or tombstones file")
    cutoff = folder_cutoff(folder)
    summary = ingest_files(wh, runtime.settings.ingest, runtime.quarantine_dir,
                           leads=files.get("leads"), activities=files.get("activities"),
                           reps=files.get("reps"), tombstones=files.get("tombstones"),
                           progress=progress)
    if cutoff is not None:
        try:
            record_cutoff(wh.con, cutoff)
        except ValueError as err:
            raise IngestError(f"{folder / 'cutoff.txt'}: {err}") from None
    return summary


def load_delta_folder(runtime: Runtime, folder: Path, progress: ProgressFn | None = None,
                      wait_seconds: float = 600.0) -> IngestSummary:
    """Validate and merge one delta folder into a new warehouse snapshot, published whole when
    everything (its cutoff included) is loaded; IngestError (nothing published) otherwise."""
    with new_snapshot(runtime.home, wait_seconds) as path, Warehouse(path) as wh:
        return load_into(wh, runtime, folder, progress)


def claim(folder: Path) -> Path | None:
    """Take a dropped folder for loading by renaming it (atomic: of two loaders, one wins);
    the claimed path, or None when another loader took it first."""
    claimed = folder.with_name(f".loading-{folder.name}-{os.getpid()}")
    try:
        os.rename(folder, claimed)
    except FileNotFoundError:
        return None
    return claimed


def unclaim(claimed: Path, name: str) -> None:
    """Give a claimed folder its name back (left for the next run)."""
    try:
        os.rename(claimed, claimed.with_name(name))
    except OSError:  # a folder of that name appeared meanwhile: keep the claim's name
        pass


def reclaim_stale(drop: Path) -> list[str]:
    """Give back the folders claimed by loaders that died mid-load (their process is gone);
    their names."""
    back = []
    for p in drop.glob(".loading-*") if drop.is_dir() else []:
        name, _, pid = p.name.removeprefix(".loading-").rpartition("-")
        if pid.isdigit() and not process_alive(int(pid)):
            unclaim(p, name)
            back.append(name)
    return back


def write_manifest(drop: Path, name: str, summary: IngestSummary) -> Path:
    """Record what a loaded folder held (counts only: the rows themselves, which may hold
    personal data, are not kept once in the warehouse) as `loaded/<name>.json`."""
    target = drop / "loaded" / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({
        "name": name, "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": {t: {"read": r.rows_read, "loaded": len(r.valid),
                       "quarantined": r.rows_quarantined,
                       "quarantined_by_rule": r.quarantined_by_rule}
                   for t, r in summary.results.items()},
        "deleted": summary.deleted,
        "quarantine_files": {t: str(p) for t, p in summary.quarantine_files.items()}},
        indent=1), encoding="utf-8")
    return target


def load_dropped(runtime: Runtime, folder: Path, progress: ProgressFn | None = None
                 ) -> tuple[IngestSummary | None, str | None]:
    """Claim and load one dropped delta folder. Loaded: a manifest in `loaded/` and the folder
    removed. Refused: the folder keeps its place with a `reason.txt`, so it is retried first
    and the deltas after it wait (loading them past it could let older rows overwrite newer
    ones). Returns (summary, None), (None, reason), or (None, None) when another loader took
    the folder first. Anything else (a lock that could not be had, a crash) gives the folder
    back and raises."""
    taken = claim(folder)
    if taken is None:
        return None, None
    try:
        summary = load_delta_folder(runtime, taken, progress)
    except (IngestError, OSError) as err:
        (taken / "reason.txt").write_text(f"{err}\n", encoding="utf-8")
        unclaim(taken, folder.name)
        return None, f"{err} (the folder stays in place with reason.txt; fix or remove it)"
    except BaseException:
        unclaim(taken, folder.name)
        raise
    write_manifest(folder.parent, folder.name, summary)
    shutil.rmtree(taken, ignore_errors=True)
    return summary, None
