"""The dashboard's leads list: every open lead scored once per served model version, then
filtered and paged per request (reasons are computed for the page only).

Scoring 20k open leads takes about a second (one batch feature query, two vectorised model
calls, with compiled trees when `serve.engine` says so) and their TreeSHAP values a few more
(`serve.table_threads` threads, default every core); it runs when the models load or swap, never
on a request, on the model thread at a lowered CPU priority (`serving.state`), so requests keep
their share of the cores while it runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from core.grades import grade
from core.reason_text import at_risk_text
from serving.lead_features import FeatureSource
from serving.scorer import Scorer

FILTERS = {"rep": "owner_rep_id", "team": "team", "source": "source", "grade": "grade"}
AT_RISK_DROPOUT = 0.5
"""A lead is at risk when it is likely to convert (grade B or better) and its rep is more likely
than not to stop following it up (dropout risk at least this), after at least one touch."""
SHAP_MAX = 100_000
"""Up to this many open leads, their TreeSHAP values are computed with the table (a few
seconds for 10k leads, in the background), so reasons for open leads are a lookup."""
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class LeadTable:
    """Open leads at `as_of`, best score first, with what each served model was given."""

    as_of: pd.Timestamp
    frame: pd.DataFrame  # lead_id, owner_rep_id, team, source, created_at, score, grade, dropout
    inputs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = field(
        default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    explained: dict[str, dict[int, tuple[float, list[dict[str, Any]], int]]] = field(
        default_factory=dict, compare=False, repr=False)
    """Per model and row: its score from TreeSHAP, its reasons and how many were asked for,
    filled the first time a lead is asked for (again only when more reasons are asked for), so
    reasons are phrased once per table, not per request."""
    """Share of these leads outside the conversion model's training range, per input."""
    """Per served model: its design matrix, the plain values (`Scorer.inputs`) and the TreeSHAP
    values of these rows (None above `SHAP_MAX` rows), in the row order of `frame`."""

    @cached_property
    def filter_choices(self) -> dict[str, list[str]]:
        """The values each filter of the leads list can take (computed once per table)."""
        def distinct(column: str) -> list[str]:
            return sorted(self.frame[column].dropna().astype(str).unique().tolist())
        return {"reps": distinct("owner_rep_id"), "teams": distinct("team"),
                "sources": distinct("source"), "grades": ["A", "B", "C", "D"]}

    @cached_property
    def book(self) -> np.ndarray:
        """The open leads' conversion scores, ascending: what a percentile is measured in."""
        return np.sort(self.frame["score"].to_numpy(dtype=float))

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {str(i): n for n, i in enumerate(self.frame["lead_id"])}

    def rows_of(self, lead_ids: list[str]) -> list[int] | None:
        """Row positions of these leads, in order, when every one is an open lead of the
        table (else None: the caller computes their features)."""
        pos = self._positions
        try:
            return [pos[i] for i in lead_ids]
        except KeyError:
            return None

    def answers(self, kind: str, scorer: Scorer, lead_ids: list[str], explain: int,
                book: np.ndarray | None) -> list[dict[str, Any]] | None:
        """`Scorer.score_matrix`'s answer rows for these open leads, from the table (each
        lead's reasons phrased once, at its first request); None as `rows_of`."""
        at = self.rows_of(lead_ids)
        if at is None or kind not in self.inputs:
            return None
        scores, reasons = self.explained_at(kind, scorer, at, explain)
        return scorer.answers(scores, reasons if explain > 0 else None, book)

    def explained_at(self, kind: str, scorer: Scorer, at: list[int], k: int
                     ) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        """Scores (from TreeSHAP) and top-k reasons of the rows at `at`, phrased once per row
        (again only when more reasons are asked for than before)."""
        cache = self.explained.setdefault(kind, {})
        missing = sorted({p for p in at if p not in cache or cache[p][2] < k})
        if missing:
            x, values, contrib = self.inputs[kind]
            done = scorer.explain_matrix(x[missing], values[missing],
                                         contrib[missing] if contrib is not None else None)
            for p, e in zip(missing, done, strict=True):
                cache[p] = (e.score, scorer.reasons(e, k), k)
        return (np.array([cache[p][0] for p in at], dtype=float),
                [cache[p][1][:k] for p in at])

    def prepared(self, kind: str, lead_ids: list[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """Model `kind`'s ready inputs for these leads, or None (see `rows_of`)."""
        at = self.rows_of(lead_ids)
        if at is None or kind not in self.inputs:
            return None
        x, values, contrib = self.inputs[kind]
        return x[at], values[at], (contrib[at] if contrib is not None else None)


def build_lead_table(source: FeatureSource, scorers: dict[str, Scorer],
                     as_of: pd.Timestamp) -> LeadTable:
    """Score every lead open at `as_of` with the conversion (and, if served, dropout) model."""
    ids = source.open_lead_ids(as_of)
    conversion = scorers["conversion"]
    if not ids:
        empty = pd.DataFrame(columns=["lead_id", "owner_rep_id", "team", "source",
                                      "created_at", "score", "grade", "dropout_risk",
                                      "outbound_touches", "days_since_last_touch",
                                      "risk_index", "at_risk"])
        return LeadTable(as_of, empty)
    feats = source.for_ids(ids, as_of)
    encoded = {kind: s.inputs(feats) for kind, s in scorers.items()}  # encoded once per model

    def probability(kind: str) -> np.ndarray:
        return scorers[kind].bundle.calibrator(scorers[kind].raw_scores(encoded[kind][0]))

    frame = source.directory(ids)
    frame["score"] = probability("conversion")
    frame["grade"] = grade(frame["score"].to_numpy(), conversion.serve.grade_cutoffs)
    frame["dropout_risk"] = probability("dropout") if "dropout" in scorers else np.nan
    frame["outbound_touches"] = feats["outbound_touches"].to_numpy(dtype=float)
    frame["days_since_last_touch"] = feats["days_since_last_touch"].to_numpy(dtype=float)
    frame["risk_index"] = frame["score"] * frame["dropout_risk"]
    frame["at_risk"] = ((frame["outbound_touches"] > 0)
                        & (frame["score"] >= conversion.serve.grade_cutoffs[1])
                        & (frame["dropout_risk"] >= AT_RISK_DROPOUT)).to_numpy()
    order = np.argsort(-frame["score"].to_numpy(), kind="stable")
    threads = conversion.serve.table_threads or (os.cpu_count() or 1)
    inputs = {}
    for kind, (x, values) in encoded.items():
        x, values = x[order], values[order]
        contrib = (scorers[kind].bundle.contributions(x, num_threads=threads)
                   if len(x) <= SHAP_MAX else None)
        inputs[kind] = (x, values, contrib)
    return LeadTable(as_of, frame.iloc[order].reset_index(drop=True), inputs,
                     conversion.bundle.coverage(feats))


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), 4)


def _text(v: Any) -> str | None:
    return None if v is None or pd.isna(v) else str(v)


def leads_page(table: LeadTable, scorer: Scorer, filters: dict[str, str], page: int,
               per_page: int, reasons: int = 3) -> dict[str, Any]:
    """One page of the leads list, filtered (exact matches; `at_risk=1`: only leads at risk),
    best score first or (`sort=risk`) highest score x dropout risk first, with each row's top
    reasons and, for a lead at risk, the one line that says why."""
    frame = table.frame
    mask = np.ones(len(frame), dtype=bool)
    for key, column in FILTERS.items():
        value = filters.get(key)
        if value:
            mask &= (frame[column].astype("string") == value).fillna(False).to_numpy()
    if filters.get("at_risk") == "1" and "at_risk" in frame:
        mask &= frame["at_risk"].to_numpy(dtype=bool)
    picked = np.flatnonzero(mask)
    if filters.get("sort") == "risk" and "risk_index" in frame:
        risk = frame["risk_index"].to_numpy(dtype=float)[picked]
        picked = picked[np.argsort(-np.nan_to_num(risk, nan=-1.0), kind="stable")]
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    pages = max(1, -(-len(picked) // per_page))
    page = max(1, min(page, pages))
    rows_at = picked[(page - 1) * per_page: page * per_page]
    _scores, explained = table.explained_at("conversion", scorer, rows_at.tolist(), reasons)
    rows = []
    for pos, top in zip(rows_at, explained, strict=True):
        r = frame.iloc[pos]
        rows.append({"lead_id": str(r["lead_id"]), "score": _num(r["score"]),
                     "grade": str(r["grade"]), "owner_rep_id": _text(r["owner_rep_id"]),
                     "team": _text(r["team"]), "source": _text(r["source"]),
                     "created_at": _text(r["created_at"]), "dropout_risk": _num(r["dropout_risk"]),
                     "reasons": top,
                     "at_risk": bool(r.get("at_risk", False)),
                     "risk_reason": (at_risk_text(r["score"], r["dropout_risk"],
                                                  _num(r["outbound_touches"]),
                                                  _num(r["days_since_last_touch"]))
                                     if r.get("at_risk", False) else None)})
    return {
        "as_of": str(table.as_of), "total": len(picked), "page": page,
        "per_page": per_page, "pages": pages, "rows": rows,
        "filters": table.filter_choices,
    }
