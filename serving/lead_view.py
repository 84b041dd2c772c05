"""One lead for a manager: its score and SHAP breakdown (with the waterfall chart), its activity
timeline, and which next step would raise its score most, as the model computes it.

The what-if: each candidate step (another call or email, a held meeting, a proposal at the median
amount of past proposals) is added to the
lead's real activity list one minute after `as_of`, and the lead is scored through the online
feature path one minute later, with and without it; the difference is the step's effect in
probability points. Used by the dashboard and by `leadlens explain --format html`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.grades import grade
from serving.lead_features import FeatureSource
from serving.render.svg_charts import Step, waterfall
from serving.scorer import Scorer

STEP_DELAY = pd.Timedelta(minutes=1)
CAVEAT = ("Each step is added to this lead's real history and the lead is scored again: what "
          "the model learned from past leads, not a promise that the step causes the change.")


class NotOpen(ValueError):
    """The lead was won or lost before `as_of`: there is no next step to take."""


def _is_open(record: dict[str, Any], as_of: pd.Timestamp) -> bool:
    def before(v: Any) -> bool:
        return v is not None and not pd.isna(v) and pd.Timestamp(v) < as_of
    return (before(record.get("created_at")) and not before(record.get("converted_at"))
            and not before(record.get("closed_lost_at")))


def next_steps(source: FeatureSource, scorer: Scorer, lead_id: str,
               as_of: pd.Timestamp) -> dict[str, Any]:
    """For an open lead: each candidate next step rescored through the online path, largest
    gain first, with the caveat. Raises `UnknownLead`, or `NotOpen` for a won or lost lead."""
    record, acts = source.record_and_activities(lead_id, as_of)
    if not _is_open(record, as_of):
        raise NotOpen(f"lead {lead_id} is not open at {as_of} (won, lost or not yet created)")
    score, actions = _actions(source, scorer, record, acts, as_of)
    return {"lead_id": lead_id, "as_of": str(as_of), "model_version": scorer.version,
            "score": round(score, 6), "steps": sorted(actions, key=lambda a: -a["points"]),
            "caveat": CAVEAT}


def _actions(source: FeatureSource, scorer: Scorer, record: dict[str, Any],
             acts: pd.DataFrame, as_of: pd.Timestamp) -> tuple[float, list[dict[str, Any]]]:
    """The lead's score without a step (two minutes after `as_of`), and each step's."""
    at = as_of + STEP_DELAY
    when = at + STEP_DELAY
    amount = source.typical_proposal_amount(as_of)
    owner = record.get("owner_rep_id")
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("call", "another call", {"type": "call", "outcome": None, "amount": None}),
        ("email", "another email", {"type": "email", "outcome": None, "amount": None}),
        ("meeting", "a held meeting", {"type": "meeting", "outcome": "held", "amount": None})]
    if amount is not None:
        steps.append(("proposal", f"a proposal of ${amount:,.0f}",
                      {"type": "proposal", "outcome": "sent", "amount": amount}))
    base = acts.to_dict("records")
    lists = [base] + [[*base, {"activity_id": f"what-if-{key}", "lead_id": record["lead_id"],
                               "rep_id": owner, "occurred_at": at, "direction": "outbound",
                               **fields}] for key, _label, fields in steps]
    feats = source.for_payload([record] * len(lists), lists, when)
    scores = scorer.bundle.predict(feats, num_threads=1)
    return float(scores[0]), [
        {"action": key, "label": label, "score_after": round(float(scores[i + 1]), 4),
         "points": round(float(scores[i + 1] - scores[0]) * 100, 2)}
        for i, (key, label, _f) in enumerate(steps)]


def _timeline(acts: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in acts.itertuples():
        amount = getattr(r, "amount", None)
        out.append({"occurred_at": str(r.occurred_at), "type": r.type,
                    "direction": r.direction,
                    "outcome": None if pd.isna(r.outcome) else str(r.outcome),
                    "amount": None if amount is None or pd.isna(amount) else float(amount),
                    "rep_id": None if pd.isna(r.rep_id) else str(r.rep_id)})
    return out


def lead_view(source: FeatureSource, scorers: dict[str, Scorer], lead_id: str,
              as_of: pd.Timestamp, top: int = 5) -> dict[str, Any]:
    """Everything the lead page shows; raises `UnknownLead` for an unknown id."""
    conversion = scorers["conversion"]
    record, acts = source.record_and_activities(lead_id, as_of)
    feats = source.for_payload([record], [acts], as_of)  # what `for_ids` computes, no re-read
    e = conversion.explain(feats)[0]
    contributions = sorted(conversion.breakdown(e), key=lambda c: -abs(c["points"]))
    dropout = scorers.get("dropout")
    _score, actions = _actions(source, conversion, record, acts, as_of)
    best = max(actions, key=lambda a: a["points"]) if actions else None
    directory = source.directory([lead_id]).iloc[0]
    return {
        "lead_id": lead_id, "as_of": str(as_of), "model_version": conversion.version,
        "score": round(e.score, 6), "base_score": round(e.base_score, 6),
        "grade": str(grade(np.array([e.score]), conversion.serve.grade_cutoffs)[0]),
        "owner_rep_id": record.get("owner_rep_id"), "source": record.get("source"),
        "team": None if pd.isna(directory["team"]) else str(directory["team"]),
        "created_at": str(record.get("created_at")),
        "dropout_risk": (round(float(dropout.bundle.predict(feats, num_threads=1)[0]), 4)
                         if dropout is not None else None),
        "reasons": conversion.reasons(e, top),
        "contributions": contributions,
        "waterfall_svg": waterfall(e.base_score, e.score,
                                   [Step(r["text"], r["points"])
                                    for r in conversion.reasons(e, len(contributions))],
                                   title=f"Lead {lead_id}: what moved its score"),
        "timeline": _timeline(acts),
        "actions": actions,
        "best_action": best if best is not None and best["points"] > 0 else None,
    }
