"""Batch scoring: a file of leads (with or without their activities), or every open lead in the
warehouse. The same feature paths and the same `Scorer` as the service; percentiles are
measured in the open book at the same `as_of`, as the service's are."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from monitoring.score_history import compact_reasons
from serving.lead_features import FeatureSource
from serving.scorer import Scorer

Say = Callable[[str], None]
_CHUNK = 50_000


def answer_frame(lead_ids: list[str], rows: list[dict], explain: int) -> pd.DataFrame:
    """The answer rows as a table: lead_id, score, grade, percentile, model_version and
    `explain` reason columns (the reason in words and its points)."""
    out = pd.DataFrame({
        "lead_id": lead_ids,
        "score": [r["score"] for r in rows],
        "grade": [r["grade"] for r in rows],
        "percentile": [r["percentile"] for r in rows],
        "model_version": [r["model_version"] for r in rows],
    })
    for k in range(explain):
        out[f"reason_{k + 1}"] = [
            (f"{r['reasons'][k]['text']}: {r['reasons'][k]['points']:+.1f} points")
            if len(r["reasons"]) > k else None
            for r in rows]
    return out


def score_leads(source: FeatureSource, scorer: Scorer, leads: pd.DataFrame,
                activities: pd.DataFrame | None, as_of: pd.Timestamp,
                explain: int = 0, at_creation: bool = False) -> pd.DataFrame:
    """Score leads given by their fields (and activities, if any) as of `as_of`; with
    `at_creation`, a lead with a valid `created_at` and no activities is scored as of its
    creation (a new lead, as a flat export's model learned leads), the rest as of `as_of`. The
    `as_of` column says which moment each lead was scored at."""
    if "lead_id" not in leads.columns:
        raise ValueError("the leads file needs a lead_id column")
    by_lead = ({k: g for k, g in activities.groupby("lead_id", sort=False)}
               if activities is not None and len(activities) else {})
    empty = pd.DataFrame(columns=["occurred_at", "type"])
    records = leads.to_dict("records")
    acts = [by_lead.get(r["lead_id"], empty) for r in records]
    moments = [as_of] * len(records)
    if at_creation and "created_at" in leads.columns:
        created = pd.to_datetime(leads["created_at"], errors="coerce", utc=True, format="mixed")
        created = created.dt.tz_localize(None)
        moments = [c if (not pd.isna(c) and len(a) == 0) else as_of
                   for c, a in zip(created, acts, strict=True)]
    feats = source.for_payload(records, acts, moments)
    rows = scorer.score_rows(feats, explain, open_book(source, scorer, as_of))
    out = answer_frame([str(r["lead_id"]) for r in records], rows, explain)
    out.insert(1, "as_of", pd.Series(moments, dtype="datetime64[ns]"))
    out.attrs["coverage"] = scorer.bundle.coverage(feats)
    return out


def open_book(source: FeatureSource, scorer: Scorer, as_of: pd.Timestamp) -> np.ndarray:
    """The scores of every lead open at `as_of`, ascending: what percentiles are measured in
    (the service measures them in the same book, its scored-leads table)."""
    ids = source.open_lead_ids(as_of)
    scores = [scorer.scores(source.for_ids(ids[i:i + _CHUNK], as_of))
              for i in range(0, len(ids), _CHUNK)]
    return np.sort(np.concatenate(scores)) if scores else np.empty(0)


def score_open(source: FeatureSource, scorer: Scorer, as_of: pd.Timestamp, explain: int = 0,
               say: Say | None = None) -> pd.DataFrame:
    """Score every lead open at `as_of` in the warehouse, in chunks."""
    ids = source.open_lead_ids(as_of)
    book = open_book(source, scorer, as_of) if len(ids) > _CHUNK else None
    parts = []
    outside: dict[str, float] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        feats = source.for_ids(chunk, as_of)
        if book is None:  # one chunk: the chunk is the whole book
            book = np.sort(scorer.scores(feats))
        parts.append(answer_frame(chunk, scorer.score_rows(feats, explain, book), explain))
        for name, share in scorer.bundle.coverage(feats).items():
            outside[name] = outside.get(name, 0.0) + share * len(chunk)
        if say is not None:
            say(f"scored {start + len(chunk):,} of {len(ids):,} open leads")
    out = pd.concat(parts, ignore_index=True) if parts else answer_frame([], [], explain)
    out.attrs["coverage"] = {k: v / len(ids) for k, v in outside.items()} if ids else {}
    return out


def history_rows(source: FeatureSource, scorer: Scorer, as_of: pd.Timestamp, reasons: int,
                 say: Say | None = None) -> pd.DataFrame:
    """Every lead open at `as_of`: score, grade, model version and top reasons in compact form
    (`monitoring.score_history.compact_reasons`), what a refresh records in the history."""
    ids = source.open_lead_ids(as_of)
    parts = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows = scorer.score_rows(source.for_ids(chunk, as_of), reasons)
        parts.append(pd.DataFrame({
            "lead_id": chunk, "score": [r["score"] for r in rows],
            "grade": [r["grade"] for r in rows],
            "model_version": [r["model_version"] for r in rows],
            "reasons": [compact_reasons(r.get("reasons") or []) for r in rows]}))
        if say is not None:
            say(f"scored {start + len(chunk):,} of {len(ids):,} open leads for the history")
    return (pd.concat(parts, ignore_index=True) if parts else
            pd.DataFrame(columns=["lead_id", "score", "grade", "model_version", "reasons"]))
