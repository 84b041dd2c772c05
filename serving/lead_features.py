"""Feature rows for the leads a request or a batch names: by id (from the warehouse) or by their
fields and activity list (computed online, no warehouse round trip per lead). Both paths are the
same definitions (`features.engagement` and `features.online` agree, a parity test checks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.free_text import mask_fields
from core.settings import EngagementConfig
from core.timestamps import default_as_of
from core.warehouse import Warehouse, single_row
from features.engagement import batch_features, feature_columns, select_pairs
from features.online import OutcomeHistory, online_features

ONLINE_MAX = 50
"""Up to this many leads by id are computed online; more go through the batch query."""


class UnknownLead(LookupError):
    """A lead_id the warehouse does not hold; `position` is its index in the request."""

    def __init__(self, position: int) -> None:
        super().__init__(f"leads[{position}]: lead_id is not in the warehouse")
        self.position = position


class FeatureSource:
    """Read-only access to the warehouse plus the outcome history the online path needs."""

    def __init__(self, warehouse_path: Path, cfg: EngagementConfig) -> None:
        self.cfg = cfg
        self.path = Path(warehouse_path)
        """The warehouse snapshot this source reads (`core.warehouse_snapshots`)."""
        self._wh = Warehouse(warehouse_path, read_only=True)
        self._wh.open()
        self.attribute_kinds = self._wh.attribute_types()
        """Lead attribute columns as stored: `numeric` or `text` (what a push must match)."""
        self.attributes = list(self.attribute_kinds)
        self.history = OutcomeHistory.from_warehouse(self._wh.con, cfg.open_lead_expiry_days)
        self._lock = threading.Lock()

    @property
    def columns(self) -> list[str]:
        """The feature columns every path returns, in order (catalog, then attributes)."""
        return feature_columns(self.cfg, self.attributes)

    def close(self) -> None:
        """Close the warehouse connection (after any query running on it)."""
        with self._lock:
            self._wh.close()

    def lead_ids(self) -> pd.Index:
        """Every lead id in the warehouse."""
        with self._lock:
            return self._wh.lead_ids()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse connection, held alone for the block (queries run one at a time)."""
        with self._lock:
            yield self._wh.con

    def for_ids(self, lead_ids: Sequence[str], as_of: pd.Timestamp) -> pd.DataFrame:
        """Features of known leads at `as_of`; raises UnknownLead naming the first unknown.

        A few leads take the online path (their row and activities, then the in-memory
        outcome history): the batch query scans every resolved lead for the past rates, which
        pays off only for many leads. Both paths give the same features (a parity test checks).
        """
        ids = list(lead_ids)
        with self._lock:  # one DuckDB connection, queries one at a time
            cur = self._wh.con.execute(
                "SELECT * FROM leads WHERE lead_id IN (SELECT unnest($ids))", {"ids": ids})
            names = [d[0] for d in cur.description]
            found = {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
            for i, lid in enumerate(ids):
                if lid not in found:
                    raise UnknownLead(i)
            if len(ids) > ONLINE_MAX:
                pairs = pd.DataFrame({"lead_id": ids, "as_of": as_of})
                return batch_features(self._wh.con, pairs, self.cfg, self.attributes)
            acts = pd.DataFrame(self._wh.con.execute(
                "SELECT * FROM activities WHERE lead_id IN (SELECT unnest($ids)) "
                "AND occurred_at < $t", {"ids": ids, "t": as_of.to_pydatetime()}).fetchnumpy())
        if len(ids) == 1:
            return self.for_payload([found[ids[0]]], [acts], as_of)
        by_lead = dict(tuple(acts.groupby("lead_id", sort=False))) if len(acts) else {}
        empty = acts.iloc[0:0]
        return self.for_payload([found[i] for i in ids],
                                [by_lead.get(i, empty) for i in ids], as_of)

    def default_as_of(self) -> pd.Timestamp:
        """The `as_of` the CLI uses too when none is given (`core.timestamps.default_as_of`)."""
        with self._lock:
            return default_as_of(self._wh.con)

    def directory(self, lead_ids: Sequence[str]) -> pd.DataFrame:
        """Who owns each lead, its team and source, and when it was created (no personal
        data), in the order given."""
        with self._lock:
            found = self._wh.con.execute("""
                SELECT l.lead_id, l.owner_rep_id, r.team, l.source, l.created_at
                FROM leads l LEFT JOIN reps r ON r.rep_id = l.owner_rep_id
                WHERE l.lead_id IN (SELECT unnest($ids))""", {"ids": list(lead_ids)}).df()
        return (pd.DataFrame({"lead_id": list(lead_ids)})
                .merge(found, on="lead_id", how="left", validate="one_to_one"))

    def record_and_activities(self, lead_id: str, as_of: pd.Timestamp
                              ) -> tuple[dict[str, Any], pd.DataFrame]:
        """A lead's stored row and its activities before `as_of`, oldest first."""
        with self._lock:
            cur = self._wh.con.execute("SELECT * FROM leads WHERE lead_id = $id",
                                       {"id": lead_id})
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
            if row is None:
                raise UnknownLead(0)
            acts = self._wh.con.execute(
                "SELECT * FROM activities WHERE lead_id = $id AND occurred_at < $t "
                "ORDER BY occurred_at, activity_id",
                {"id": lead_id, "t": as_of.to_pydatetime()}).df()
        return dict(zip(names, row, strict=True)), acts

    def typical_proposal_amount(self, as_of: pd.Timestamp) -> float | None:
        """The median amount of the proposals sent before `as_of` (for what-if proposals)."""
        with self._lock:
            row = single_row(self._wh.con.execute(
                "SELECT median(amount) FROM activities WHERE type = 'proposal' "
                "AND amount IS NOT NULL AND occurred_at < $t",
                {"t": as_of.to_pydatetime()}))
        return None if row[0] is None else float(row[0])

    def open_lead_ids(self, as_of: pd.Timestamp) -> list[str]:
        """The ids of the leads open at `as_of`, sorted."""
        with self._lock:
            return select_pairs(self._wh.con, as_of, "open")["lead_id"].tolist()

    def for_payload(self, leads: Sequence[Mapping[str, Any]],
                    activities: Sequence[Sequence[Mapping[str, Any]]],
                    as_of: pd.Timestamp | Sequence[pd.Timestamp]) -> pd.DataFrame:
        """Features computed online from each lead's fields and its activity list, as of one
        moment or one moment per lead."""
        moments = [as_of] * len(leads) if isinstance(as_of, pd.Timestamp) else list(as_of)
        fields = ["source", *self.attributes]  # masked as ingestion masks them
        rows = [online_features(mask_fields(lead, fields), acts, when, self.history, self.cfg,
                                self.attributes)
                for lead, acts, when in zip(leads, activities, moments, strict=True)]
        frame = pd.DataFrame(rows, columns=self.columns)
        return frame
