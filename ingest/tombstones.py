"""Deletions in a delta export: a tombstone file names rows to remove, one per line.

Columns: `table` (`leads`, `activities` or `reps`) and `id` (the row's key: lead_id,
activity_id or rep_id). A deleted lead takes its activities with it. A row naming another
table or no id is quarantined with its reason, like any other row; an id the warehouse does not
hold deletes nothing, so applying the same file twice changes nothing the second time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.contract import TABLES
from core.warehouse import Warehouse, single_row
from ingest.validation import ContractError, TableResult

TABLE_NAMES = ("leads", "activities", "reps")


def validate_tombstones(raw: pd.DataFrame, source: str) -> TableResult:
    """Check a tombstone file; `valid` holds unique (table, id) pairs."""
    missing = [c for c in ("table", "id") if c not in raw.columns]
    if missing:
        raise ContractError(f"{source}: a tombstone file needs the columns `table` and `id`; "
                            f"missing: {', '.join(missing)}")
    table = raw["table"].astype("string").str.strip().str.lower()
    ids = raw["id"].astype("string").str.strip()
    no_id = (ids.isna() | (ids == "")).to_numpy()
    bad_table = ~table.isin(TABLE_NAMES).fillna(False).to_numpy()
    failed = no_id | bad_table
    rows = np.flatnonzero(failed)
    quarantine = pd.DataFrame({
        "row": rows + 1,
        "column": np.where(no_id[rows], "id", "table"),
        "rule": np.where(no_id[rows], "missing_value", "not_allowed_value"),
        "message": np.where(no_id[rows], "a required value is empty",
                            f"table must be one of {', '.join(TABLE_NAMES)}"),
        "value_table": raw["table"].astype("string").iloc[rows].to_numpy(),
        "value_id": raw["id"].astype("string").iloc[rows].to_numpy(),
    })
    valid = pd.DataFrame({"table": table[~failed], "id": ids[~failed]}).drop_duplicates()
    return TableResult("tombstones", source, len(raw), valid.reset_index(drop=True), quarantine)


def apply_tombstones(warehouse: Warehouse, valid: pd.DataFrame) -> dict[str, int]:
    """Delete the named rows (inside the caller's transaction); rows deleted per table, a
    deleted lead's activities counted under `activities`."""
    con = warehouse.con
    deleted = {name: 0 for name in TABLE_NAMES}
    for name in ("activities", "leads", "reps"):  # a lead's own activities go with it below
        ids = valid.loc[valid["table"] == name, "id"].tolist()
        if not ids:
            continue
        spec = TABLES[name]
        where = f'"{spec.key}" IN (SELECT unnest($ids))'
        if name == "leads":
            deleted["activities"] += int(single_row(con.execute(
                "SELECT count(*) FROM activities WHERE lead_id IN (SELECT unnest($ids))",
                {"ids": ids}))[0])
            con.execute("DELETE FROM activities WHERE lead_id IN (SELECT unnest($ids))",
                        {"ids": ids})
        deleted[name] += int(single_row(con.execute(
            f"SELECT count(*) FROM {spec.name} WHERE {where}", {"ids": ids}))[0])  # noqa: S608 (contract names)
        con.execute(f"DELETE FROM {spec.name} WHERE {where}", {"ids": ids})  # noqa: S608 (contract names)
    return deleted
