"""The embedded DuckDB warehouse: the contract tables, stored once, upserted by id.

Timestamps are stored as naive `TIMESTAMP` values in UTC, so no session time zone can shift
them. Lead attributes (the contract's "any other column") become columns of `leads`, typed
`DOUBLE` or `VARCHAR` when first seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd

from core.contract import LEADS, TABLES, Table

_SQL_TYPES = {"id": "VARCHAR", "text": "VARCHAR", "choice": "VARCHAR", "timestamp": "TIMESTAMP",
              "amount": "DOUBLE"}
_ATTRIBUTE_SQL = {"numeric": "DOUBLE", "text": "VARCHAR"}


def _ddl(table: Table) -> str:
    cols = [f'"{c.name}" {_SQL_TYPES[c.kind]}' for c in table.columns]
    cols[0] += " PRIMARY KEY"
    return f'CREATE TABLE IF NOT EXISTS {table.name} ({", ".join(cols)})'


@dataclass(frozen=True)
class UpsertCounts:
    """Rows an upsert added and rows it replaced."""

    inserted: int
    updated: int


def single_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row of a query that always returns one (an aggregate without GROUP BY)."""
    rows = result.fetchall()  # all of it: a half-read result blocks the connection
    if not rows:
        raise RuntimeError("the query returned no row")
    return tuple(rows[0])


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type, in table order."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def attribute_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Lead attribute columns (every leads column outside the contract), `numeric` or `text`."""
    contract = set(LEADS.column_names)
    return {name: ("numeric" if dtype == "DOUBLE" else "text")
            for name, dtype in table_columns(con, LEADS.name).items() if name not in contract}


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file (DuckDB allows one writer, or readers only)."""


class Warehouse:
    """A DuckDB database file holding the CRM tables. Use as a context manager."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> Warehouse:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Open the DuckDB file; a missing read-only warehouse says to run `leadlens ingest`."""
        if self._con is not None:
            return
        if self.read_only and not self.path.exists():
            raise FileNotFoundError(
                f"{self.path}: no warehouse yet; run `leadlens ingest` (or `make demo`) first"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.IOException as err:
            if "lock" not in str(err).lower():
                raise
            raise WarehouseBusy(
                f"{self.path}: in use by another process"
                + (" (a warehouse snapshot is written by one process only, "
                   "`core.warehouse_snapshots`)" if not self.read_only else
                   " that is writing to it; try again when it has finished")) from None
        if not self.read_only:
            self.ensure_schema()

    def close(self) -> None:
        """Close the connection (if open)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The open connection; raises RuntimeError when the warehouse is not open."""
        if self._con is None:
            raise RuntimeError("the warehouse is not open")
        return self._con

    def ensure_schema(self) -> None:
        """Create the contract tables that do not exist yet, and add contract columns a table
        created by an earlier release lacks (e.g. `reps.role`)."""
        for table in TABLES.values():
            self.con.execute(_ddl(table))
            have = {r[0] for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [table.name]).fetchall()}
            for c in table.columns:
                if c.name not in have:
                    self.con.execute(f'ALTER TABLE {table.name} ADD COLUMN "{c.name}" '
                                     f"{_SQL_TYPES[c.kind]}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> DuckDB type of `table`, in table order."""
        return table_columns(self.con, table)

    def attribute_types(self) -> dict[str, str]:
        """Lead attribute columns already stored, as `numeric` or `text`."""
        return attribute_types(self.con)

    def lead_ids(self) -> pd.Index:
        """Every stored lead_id, as strings."""
        ids = self.con.execute("SELECT lead_id FROM leads").fetchnumpy()["lead_id"]
        return pd.Index(ids, dtype="string")

    def count(self, table: str) -> int:
        """Rows in a contract table."""
        sql = f"SELECT count(*) FROM {TABLES[table].name}"  # noqa: S608 (contract table name)
        return int(single_row(self.con.execute(sql))[0])

    def upsert(
        self, table: str, frame: pd.DataFrame, attribute_types: dict[str, str] | None = None
    ) -> UpsertCounts:
        """Insert new rows and update known ids; columns absent from `frame` keep their values."""
        spec = TABLES[table]
        if frame.empty:
            return UpsertCounts(0, 0)
        existing = self.columns(spec.name)
        for name, kind in (attribute_types or {}).items():
            if name not in existing:
                self.con.execute(
                    f'ALTER TABLE {spec.name} ADD COLUMN "{name}" {_ATTRIBUTE_SQL[kind]}'
                )
        self.con.register("_incoming", frame)
        try:
            updated = single_row(self.con.execute(
                f'SELECT count(*) FROM {spec.name} WHERE "{spec.key}" IN '  # noqa: S608 (contract names)
                f'(SELECT "{spec.key}" FROM _incoming)'
            ))[0]
            # column names: the contract's, or attribute names normalised at validation to
            # letters, digits and underscores (`normalise_column_name`); the values come from
            # the registered frame, never from the SQL text
            cols = ", ".join(f'"{c}"' for c in frame.columns)
            self.con.execute(
                f"INSERT OR REPLACE INTO {spec.name} ({cols}) SELECT {cols} FROM _incoming"  # noqa: S608 (normalised column names)
            )
        finally:
            self.con.unregister("_incoming")
        return UpsertCounts(inserted=len(frame) - int(updated), updated=int(updated))

    def read(self, table: str) -> pd.DataFrame:
        """A whole table as a frame (fine for small tables and tests)."""
        return self.con.execute(f"SELECT * FROM {TABLES[table].name}").df()  # noqa: S608 (contract table name)
