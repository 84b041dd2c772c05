"""Timestamps as LeadLens holds them: naive UTC, one normaliser, and one answer to "what is now?".

Everything in the warehouse is naive UTC (a value without an offset is read as UTC). The default
`as_of` of the CLI, the service and the rep report is the same moment: one second after the latest
timestamp the warehouse holds, so every activity of the export counts ("strictly before as_of").
"""

from __future__ import annotations

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


def data_end(con: duckdb.DuckDBPyConnection) -> pd.Timestamp:
    """The latest timestamp the warehouse holds (activities, creations, resolutions)."""
    row = con.execute("""
        SELECT greatest(
            (SELECT max(occurred_at) FROM activities),
            (SELECT max(created_at) FROM leads),
            (SELECT max(converted_at) FROM leads),
            (SELECT max(closed_lost_at) FROM leads))
    """).fetchone()
    if row is None or row[0] is None:
        raise ValueError("the warehouse holds no leads yet: run `leadlens ingest` first")
    return pd.Timestamp(row[0])


def default_as_of(con: duckdb.DuckDBPyConnection) -> pd.Timestamp:
    """The `as_of` used when none is given: just after the latest data (CLI and service)."""
    return data_end(con) + AFTER_DATA
