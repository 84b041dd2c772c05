"""Batch scoring: a file of leads (with or without their activities), or every open lead in the
warehouse. The same feature paths and the same `Scorer` as the service."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from serving.lead_features import FeatureSource
from serving.scorer import Scorer

Say = Callable[[str], None]
_CHUNK = 50_000


def _frame(lead_ids: list[str], rows: list[dict], explain: int) -> pd.DataFrame:
    out = pd.DataFrame({
        "lead_id": lead_ids,
        "score": [r["score"] for r in rows],
        "grade": [r["grade"] for r in rows],
        "percentile": [r["percentile"] for r in rows],
        "model_version": [r["model_version"] for r in rows],
    })
    for k in range(explain):
        out[f"reason_{k + 1}"] = [
            (f"{r['reasons'][k]['label']} = {r['reasons'][k]['value']}: "
             f"{r['reasons'][k]['points']:+.1f} points") if len(r["reasons"]) > k else None
            for r in rows]
    return out


def score_leads(source: FeatureSource, scorer: Scorer, leads: pd.DataFrame,
                activities: pd.DataFrame | None, as_of: pd.Timestamp,
                explain: int = 0) -> pd.DataFrame:
    """Score leads given by their fields (and activities, if any) as of `as_of`."""
    if "lead_id" not in leads.columns:
        raise ValueError("the leads file needs a lead_id column")
    by_lead = ({k: g for k, g in activities.groupby("lead_id", sort=False)}
               if activities is not None and len(activities) else {})
    empty = pd.DataFrame(columns=["occurred_at", "type"])
    records = leads.to_dict("records")
    acts = [by_lead.get(r["lead_id"], empty) for r in records]
    feats = source.for_payload(records, acts, as_of)
    rows = scorer.score_rows(feats, explain)
    out = _frame([str(r["lead_id"]) for r in records], rows, explain)
    out.attrs["coverage"] = scorer.bundle.coverage(feats)
    return out


def score_open(source: FeatureSource, scorer: Scorer, as_of: pd.Timestamp, explain: int = 0,
               say: Say | None = None) -> pd.DataFrame:
    """Score every lead open at `as_of` in the warehouse, in chunks."""
    ids = source.open_lead_ids(as_of)
    parts = []
    outside: dict[str, float] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        feats = source.for_ids(chunk, as_of)
        parts.append(_frame(chunk, scorer.score_rows(feats, explain), explain))
        for name, share in scorer.bundle.coverage(feats).items():
            outside[name] = outside.get(name, 0.0) + share * len(chunk)
        if say is not None:
            say(f"scored {start + len(chunk):,} of {len(ids):,} open leads")
    out = pd.concat(parts, ignore_index=True) if parts else _frame([], [], explain)
    out.attrs["coverage"] = {k: v / len(ids) for k, v in outside.items()} if ids else {}
    return out
