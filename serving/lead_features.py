"""Feature rows for the leads a request or a batch names: by id (from the warehouse) or by their
fields and activity list (computed online, no warehouse round trip per lead). Both paths are the
same definitions (`features.engagement` and `features.online` agree, a parity test checks)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from features.engagement import batch_features, feature_columns, select_pairs
from features.labels import data_end
from features.online import OutcomeHistory, online_features
from features.settings import EngagementConfig
from features.warehouse import Warehouse

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
        self._wh = Warehouse(warehouse_path, read_only=True)
        self._wh.open()
        self.attributes = list(self._wh.attribute_types())
        self.history = OutcomeHistory.from_warehouse(self._wh.con)
        self._lock = threading.Lock()

    @property
    def columns(self) -> list[str]:
        return feature_columns(self.cfg, self.attributes)

    def close(self) -> None:
        self._wh.close()

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

    def data_end(self) -> pd.Timestamp:
        """The latest timestamp in the warehouse: the moment the CRM export was taken."""
        with self._lock:
            return data_end(self._wh.con)

    def open_lead_ids(self, as_of: pd.Timestamp) -> list[str]:
        with self._lock:
            return select_pairs(self._wh.con, as_of, "open")["lead_id"].tolist()

    def for_payload(self, leads: Sequence[Mapping[str, Any]],
                    activities: Sequence[Sequence[Mapping[str, Any]]],
                    as_of: pd.Timestamp) -> pd.DataFrame:
        """Features computed online from each lead's fields and its activity list."""
        rows = [online_features(lead, acts, as_of, self.history, self.cfg, self.attributes)
                for lead, acts in zip(leads, activities, strict=True)]
        frame = pd.DataFrame(rows, columns=self.columns)
        return frame
