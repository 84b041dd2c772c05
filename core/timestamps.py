"""Timestamps as LeadLens holds them: naive UTC, one normaliser, and one answer to "what is now?".

Everything in the warehouse is naive UTC (a value without an offset is read as UTC). The default
`as_of` of the CLI, the service and the rep report is the same moment: the export's cutoff when one
was recorded at ingest, else one second after the latest timestamp the warehouse holds, so every
activity of the export counts ("strictly before as_of"); rows newer than a recorded cutoff (pushed
by the CRM since the export, up to `ingest.max_days_ahead` after the clock) move it past them.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pandas as pd

AFTER_DATA = pd.Timedelta(seconds=1)


def to_utc_naive(value: Any) -> pd.Timestamp:
    """A timestamp-like value as a naive UTC `pd.Timestamp` (an offset is converted, a value
    without one is taken as UTC). Raises ValueError for text that is not a timestamp."""
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError(f"{value!r} is not a timestamp")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}"
                           r"([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_cutoff(text: str) -> pd.Timestamp:
    """An export's cutoff written as text (`cutoff.txt`): strict ISO-8601, as naive UTC.
    ValueError for anything else."""
    text = text.strip()
    if not ISO_TIMESTAMP.match(text):
        raise ValueError(f"{text[:40]!r} is not an ISO-8601 timestamp")
    return to_utc_naive(text)


CUTOFFS_TABLE = "export_cutoffs"


def latest_timestamp(con: duckdb.DuckDBPyConnection) -> pd.Timestamp:
    """The latest timestamp the warehouse holds (activities, creations, resolutions)."""
    row = con.execute("""
        SELECT greatest(
            (SELECT max(occurred_at) FROM activities),
            (SELECT max(created_at) FROM leads),
            (SELECT max(converted_at) FROM leads),
            (SELECT max(closed_lost_at) FROM leads))
    """).fetchall()
    if not row or row[0][0] is None:
        raise ValueError("the warehouse holds no leads yet: run `leadlens ingest` first")
    return pd.Timestamp(row[0][0])


def export_cutoff(con: duckdb.DuckDBPyConnection) -> pd.Timestamp | None:
    """The cutoff recorded with the latest export (`leadlens ingest --as-of`), if any."""
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                        [CUTOFFS_TABLE]).fetchall()
    if not found[0][0]:
        return None
    row = con.execute(f"SELECT max(cutoff) FROM {CUTOFFS_TABLE}").fetchall()  # noqa: S608 (constant)
    return pd.Timestamp(row[0][0]) if row and row[0][0] is not None else None


def record_cutoff(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp) -> None:
    """Record when the export was taken. Refused (ValueError) when the warehouse holds a
    timestamp at or after it: an export cannot know what happened after it was taken."""
    latest = latest_timestamp(con)
    if latest >= cutoff:
        raise ValueError(f"the warehouse holds a timestamp at or after the cutoff {cutoff} "
                         f"(the latest is {latest}): the cutoff is when the export was taken, "
                         "after everything in it")
    con.execute(f"CREATE TABLE IF NOT EXISTS {CUTOFFS_TABLE} "
                "(cutoff TIMESTAMP, recorded_at TIMESTAMP)")
    if export_cutoff(con) == cutoff:  # the same export again: nothing new to record
        return
    con.execute(f"INSERT INTO {CUTOFFS_TABLE} VALUES (?, now())",  # noqa: S608 (constant)
                [cutoff.to_pydatetime()])


def data_end(con: duckdb.DuckDBPyConnection) -> pd.Timestamp:
    """Where the data ends: the export's recorded cutoff, else the latest timestamp it holds
    (training's default `until`); rows newer than the cutoff (pushed by the CRM since the
    export) move it to them."""
    return end_of(export_cutoff(con), latest_timestamp(con))


def end_of(cutoff: pd.Timestamp | None, latest: pd.Timestamp) -> pd.Timestamp:
    """Where data whose export cutoff is `cutoff` (None: unknown) and whose latest timestamp is
    `latest` ends: the cutoff, else the latest timestamp; rows newer than the cutoff move it."""
    return latest if cutoff is None or latest >= cutoff else cutoff


def as_of_after(cutoff: pd.Timestamp | None, latest: pd.Timestamp) -> pd.Timestamp:
    """The default `as_of` for data whose export cutoff is `cutoff` (None: unknown) and whose
    latest timestamp is `latest`: the cutoff, else just after the latest data, so every row
    counts; rows newer than the cutoff (pushed by the CRM since the export) count too."""
    end = end_of(cutoff, latest)
    return end + AFTER_DATA if end == latest else end


def default_as_of(con: duckdb.DuckDBPyConnection) -> pd.Timestamp:
    """The `as_of` used when none is given (CLI and service): `as_of_after` the warehouse's
    recorded cutoff and latest timestamp."""
    return as_of_after(export_cutoff(con), latest_timestamp(con))
