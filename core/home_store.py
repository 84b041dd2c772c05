"""A LeadLens home that can be moved or copied: the embedded MLflow store's paths follow it.

MLflow's SQLite store records absolute artifact locations (the experiment's, each run's, each
logged model's). A home copied elsewhere would read, and train into, the original's folders.
`rebase` points every such location recorded under another home's `mlartifacts/` at this home's
own, once, when the store is opened (an idempotent update; the files were copied with the home).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("leadlens.home")

ARTIFACTS = "mlartifacts"
COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
           ("model_versions", "storage_location"), ("logged_models", "artifact_location"))
"""Every column of MLflow's SQLite schema that holds an artifact location."""


def local_store_home(tracking_uri: str) -> Path | None:
    """The home of an embedded store (`sqlite:///<home>/mlflow.db`), else None."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    db = Path(tracking_uri[len(prefix):])
    return db.parent if db.name == "mlflow.db" else None


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


_CHECKED: set[Path] = set()
"""Homes whose store this process has already checked (a home does not move under a running
process; `configure` runs at every model poll)."""


def rebase(home: Path, experiment: str) -> int:
    """Point the store's artifact locations at `home/mlartifacts` when the experiment was made
    in another folder; returns the number of rows changed (0 when nothing moved). Checked once
    per home and process, once the store exists."""
    db = home / "mlflow.db"
    if home in _CHECKED or not db.exists():
        return 0
    _CHECKED.add(home)
    new = (home.resolve() / ARTIFACTS).as_uri()
    with sqlite3.connect(db, timeout=30) as con:
        tables = _tables(con)
        if "experiments" not in tables:
            return 0
        row = con.execute("SELECT artifact_location FROM experiments WHERE name = ?",
                          (experiment,)).fetchone()
        old = row[0] if row else None
        if not old or not old.startswith("file://") or not old.endswith("/" + ARTIFACTS) \
                or old == new:
            return 0
        changed = 0
        for table, column in COLUMNS:
            if table not in tables:
                continue
            # every value under the old prefix, and only those: `old` followed by nothing or "/"
            sql = (f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 (fixed names)
                   f"WHERE {column} = ? OR substr({column}, 1, ?) = ?")
            changed += con.execute(sql, (new, len(old) + 1, old, len(old) + 1,
                                         old + "/")).rowcount
    log.warning("home moved: %d MLflow artifact location(s) rebased from %s to %s", changed,
                old, new)
    return changed
