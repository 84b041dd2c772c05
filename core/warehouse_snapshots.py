"""Warehouse snapshots: every write makes a new DuckDB file and publishes it whole, so readers
(a running service, training, reports) never wait for a writer and never see half a load.

Layout under the home: `warehouse/NNNNNN-<UTC stamp>.duckdb` files and `warehouse/CURRENT`, the
name of the published one. A writer (`new_snapshot`) takes the home's write lock, copies the
published snapshot to a new file, lets the caller write into it, and on success replaces
`CURRENT` atomically (`os.replace`); on failure the new file is removed and nothing changes.
Published snapshots are never written again. The newest `KEEP` are kept; older ones are removed
(a reader that still has one open keeps reading it: POSIX unlinks names, not open files).

A home from an earlier release has a single `warehouse.duckdb`; it is read as before until the
first write, which copies it into the first snapshot and removes it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("leadlens.warehouse")

DIRECTORY = "warehouse"
POINTER = "CURRENT"
LEGACY = "warehouse.duckdb"
KEEP = 3
"""Published snapshots kept (the current one and the two before it)."""
_NAME = re.compile(r"^(\d{6})-(\d{8}T\d{6}\d{6}Z)\.duckdb$")


class SnapshotError(RuntimeError):
    """The home's warehouse pointer is damaged, or the write lock could not be taken."""


def snapshot_dir(home: Path) -> Path:
    """Where a home's warehouse snapshots live."""
    return Path(home) / DIRECTORY


def current_warehouse(home: Path) -> Path:
    """The DuckDB file readers should open: the published snapshot, else (a home written by an
    earlier release, or none yet) `home/warehouse.duckdb`."""
    pointer = snapshot_dir(home) / POINTER
    try:
        name = pointer.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return Path(home) / LEGACY
    except (OSError, UnicodeDecodeError) as err:
        raise SnapshotError(f"{pointer}: unreadable ({err})") from None
    if not _NAME.match(name):
        raise SnapshotError(f"{pointer}: holds {name[:80]!r}, not a snapshot name; "
                            "write the name of a file in that folder, or run `leadlens ingest`")
    path = snapshot_dir(home) / name
    if not path.exists():
        raise SnapshotError(f"{pointer}: names {name}, which does not exist")
    return path


def snapshot_id(path: Path) -> str:
    """A short name for a warehouse file in logs and answers (`000007` or `legacy`)."""
    m = _NAME.match(Path(path).name)
    return m.group(1) if m else "legacy"


@contextmanager
def _write_lock(home: Path, wait_seconds: float) -> Iterator[None]:
    directory = snapshot_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".write.lock").open("a") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SnapshotError(
                        f"{directory}: another ingest or refresh is writing the warehouse; "
                        f"waited {wait_seconds:g} s, try again when it has finished") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _next_name(home: Path) -> str:
    numbers = [int(m.group(1)) for p in snapshot_dir(home).iterdir()
               if (m := _NAME.match(p.name))]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{max(numbers, default=0) + 1:06d}-{stamp}.duckdb"


def _publish(home: Path, path: Path) -> None:
    pointer = snapshot_dir(home) / POINTER
    tmp = pointer.with_name(f".{POINTER}.{os.getpid()}.tmp")
    tmp.write_text(path.name + "\n", encoding="ascii")
    os.replace(tmp, pointer)


def _prune(home: Path, keep: int) -> None:
    snaps = sorted(p for p in snapshot_dir(home).iterdir() if _NAME.match(p.name))
    for old in snaps[:-keep]:
        for p in (old, old.with_name(old.name + ".wal")):
            p.unlink(missing_ok=True)
    legacy = Path(home) / LEGACY
    if legacy.exists():
        for p in (legacy, legacy.with_name(LEGACY + ".wal")):
            p.unlink(missing_ok=True)
        log.info("the single-file warehouse of an earlier release was copied into the first "
                 "snapshot and removed")


@contextmanager
def new_snapshot(home: Path, wait_seconds: float = 600.0, keep: int = KEEP) -> Iterator[Path]:
    """A new warehouse file holding a copy of the published one, for the caller to write into
    (and close) inside the block; published when the block ends without an exception, removed
    otherwise. One writer at a time per home (others wait up to `wait_seconds`)."""
    with _write_lock(home, wait_seconds):
        base = current_warehouse(home)
        target = snapshot_dir(home) / _next_name(home)
        try:
            if base.exists():
                shutil.copyfile(base, target)
                wal = base.with_name(base.name + ".wal")
                if wal.exists():  # an earlier release's file not closed cleanly
                    shutil.copyfile(wal, target.with_name(target.name + ".wal"))
            yield target
        except BaseException:
            for p in (target, target.with_name(target.name + ".wal")):
                p.unlink(missing_ok=True)
            raise
        if not target.exists():
            raise SnapshotError(f"{target}: the write created no warehouse file; nothing "
                                "was published")
        _publish(home, target)
        log.info("warehouse snapshot %s published", snapshot_id(target))
        _prune(home, keep)
