"""A delta export in a folder, loaded as one warehouse snapshot: `leads`, `activities`, `reps`
and `tombstones` files (`.csv`, `.csv.gz` or `.parquet`, each optional) and, optionally, a
`cutoff.txt` holding when the export was taken (ISO-8601). New and changed rows merge in by id;
loading the same folder again changes nothing."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from core.settings import Runtime
from core.timestamps import record_cutoff
from core.warehouse import Warehouse
from core.warehouse_snapshots import new_snapshot
from ingest.load import IngestError, IngestSummary, ProgressFn, ingest_files

ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}"
                       r"([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
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
    text = path.read_text(encoding="utf-8").strip()
    try:
        if not ISO_START.match(text):
            raise ValueError(text)
        ts = pd.Timestamp(text)
    except ValueError:
        raise IngestError(f"{path}: {text[:40]!r} is not an ISO-8601 timestamp") from None
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def load_delta_folder(runtime: Runtime, folder: Path,
                      progress: ProgressFn | None = None) -> IngestSummary:
    """Validate and merge one delta folder into a new warehouse snapshot, published whole when
    everything (its cutoff included) is loaded; IngestError (nothing published) otherwise."""
    files = delta_files(folder)
    if not files:
        raise IngestError(f"{folder}: no leads, activities, reps or tombstones file")
    cutoff = folder_cutoff(folder)
    with new_snapshot(runtime.home) as path, Warehouse(path) as wh:
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


def claim(folder: Path) -> Path | None:
    """Take a dropped folder for loading by renaming it (atomic: of two loaders, one wins);
    the claimed path, or None when another loader took it first."""
    claimed = folder.with_name(f".loading-{folder.name}-{os.getpid()}")
    try:
        os.rename(folder, claimed)
    except FileNotFoundError:
        return None
    return claimed


def load_dropped(runtime: Runtime, folder: Path, progress: ProgressFn | None = None
                 ) -> tuple[IngestSummary | None, str | None]:
    """Claim and load one dropped delta folder, then move it to `loaded/` (or, refused, to
    `failed/` with a `reason.txt`); (summary, None), (None, reason), or (None, None) when
    another loader took the folder first."""
    taken = claim(folder)
    if taken is None:
        return None, None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        summary = load_delta_folder(runtime, taken, progress)
    except (IngestError, OSError) as err:
        target = folder.parent / "failed" / f"{folder.name}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(taken, target)
        (target / "reason.txt").write_text(str(err) + "\n", encoding="utf-8")
        return None, f"{err} (moved to {target})"
    target = folder.parent / "loaded" / f"{folder.name}-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(taken, target)
    return summary, None
