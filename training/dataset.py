"""Examples joined with their point-in-time features, their split and context columns."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pandas as pd

from core.settings import EngagementConfig
from features.engagement import batch_features, feature_columns
from features.labels import Examples
from training.examples import TimeSplit

_CHUNK = 250_000

EXAMPLE_CONTEXT = ("lead_id", "as_of", "detail", "label", "split", "horizon_end")
"""The example columns kept beside the features."""
OWNERS_SQL = """
    SELECT l.lead_id, l.owner_rep_id, r.team
    FROM leads l LEFT JOIN reps r ON r.rep_id = l.owner_rep_id
"""
"""Each lead's owner rep and team (context columns, never model inputs); DuckDB and Spark."""


def build_dataset(
    con: duckdb.DuckDBPyConnection,
    examples: Examples,
    split: TimeSplit,
    cfg: EngagementConfig,
    attributes: list[str],
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Features for every usable example, with `split` set."""
    ex = examples.frame.copy()
    ex["split"] = split.assign(ex)
    return with_features(con, ex, cfg, attributes, progress)


def with_features(
    con: duckdb.DuckDBPyConnection,
    ex: pd.DataFrame,
    cfg: EngagementConfig,
    attributes: list[str],
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Labelled (lead_id, as_of) rows with their point-in-time features, owner rep and team
    (the context columns are never model inputs)."""
    parts = []
    for start in range(0, len(ex), _CHUNK):
        chunk = ex.iloc[start:start + _CHUNK]
        parts.append(batch_features(con, chunk[["lead_id", "as_of"]], cfg, attributes))
        if progress is not None:
            progress(len(chunk))
    cols = feature_columns(cfg, attributes)
    feats = (pd.concat(parts, ignore_index=True) if parts
             else pd.DataFrame(columns=["lead_id", "as_of", *cols]))
    owners = con.execute(OWNERS_SQL).df()
    keep = [c for c in EXAMPLE_CONTEXT if c in ex.columns]
    out = pd.concat([ex[keep].reset_index(drop=True), feats[cols].reset_index(drop=True)],
                    axis=1)
    return out.merge(owners, on="lead_id", how="left", validate="many_to_one")
