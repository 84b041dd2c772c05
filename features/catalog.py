"""The declared engagement features: the data dictionary.

The list depends only on the configuration (the look-back windows), never on the values in the
data. Both paths compute exactly these columns: the batch path in the warehouse
(`features.engagement`) and the online path for one lead from a request (`features.online`).

Definitions shared by both paths:
- a *touch* is an outbound activity (the rep reaching the lead); a *response* is an inbound one,
  or an outbound call whose outcome is one of `response_outcomes` (default `connected`: the lead
  picked up and talked);
- only activities strictly before `as_of` count; a window of N days holds activities with
  `as_of - N days <= occurred_at < as_of`;
- a lead is *engaged* at time t once it has responded, or held a meeting, strictly before t;
- a touch *re-engages* a dormant lead when the lead's previous activity (either direction) was at
  least `dormant_days` earlier;
- past rates of the owner rep and of the source use only leads resolved (converted or lost) in
  the `history_days` before `as_of` (`as_of - history_days <= resolved < as_of`: a rolling
  window, never a count that grows with the calendar), and are shrunk toward the overall rate
  over the same window with weight `RATE_PRIOR_WEIGHT` leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.settings import EngagementConfig

ACTIVITY_TYPE_PLURALS: dict[str, str] = {
    "call": "calls",
    "email": "emails",
    "meeting": "meetings",
    "proposal": "proposals",
    "other": "others",
}
DIRECTION_SHORT: dict[str, str] = {"outbound": "out", "inbound": "in"}

RATE_PRIOR_WEIGHT = 10.0
"""Pseudo-leads at the overall past rate added to each rep's and source's record."""

# Weights of the time-decayed engagement score, per activity.
SCORE_WEIGHT_RESPONSE = 3.0
SCORE_WEIGHT_HELD_MEETING = 5.0
SCORE_WEIGHT_PROPOSAL = 2.0
SCORE_WEIGHT_TOUCH = 1.0

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Feature:
    """One model input as the data dictionary describes it: name, meaning, unit and kind."""

    name: str
    description: str
    unit: str
    kind: Kind = "numeric"


def window_label(days: int | None) -> str:
    """A window's suffix in feature names: `7d`, or `all` for no window."""
    return "all" if days is None else f"{days}d"


def count_features(cfg: EngagementConfig) -> list[Feature]:
    """Activity counts per type, direction and window."""
    out = []
    for type_, plural in ACTIVITY_TYPE_PLURALS.items():
        for direction, short in DIRECTION_SHORT.items():
            for days in (*cfg.windows_days, None):
                span = "ever" if days is None else f"in the last {days} days"
                out.append(Feature(
                    f"{plural}_{short}_{window_label(days)}",
                    f"{direction} {type_} activities {span} before as_of",
                    "count",
                ))
    return out


def engagement_features(cfg: EngagementConfig) -> list[Feature]:
    """Every engagement feature, in output order (lead attributes come after these)."""
    return [
        *count_features(cfg),
        Feature("outbound_touches", "outbound touches so far (the follow-up count)", "count"),
        Feature("inbound_responses", "inbound activities so far", "count"),
        Feature("has_responded", "1 if the lead has responded at least once (an inbound "
                "activity or a connected call)", "0/1"),
        Feature("touches_before_first_response",
                "outbound touches up to the first response (all touches if none yet)", "count"),
        Feature("days_since_first_touch", "days from the first touch to as_of (empty if none)",
                "days"),
        Feature("days_since_last_touch", "days from the last touch to as_of (empty if none)",
                "days"),
        Feature("days_since_last_response",
                "days from the last response to as_of (empty if none)", "days"),
        Feature("days_since_last_activity",
                "days from the last activity in either direction to as_of (empty if none)",
                "days"),
        Feature("mean_gap_days", "mean gap between consecutive touches (empty if < 2 touches)",
                "days"),
        Feature("longest_gap_days",
                "longest gap between consecutive touches (empty if < 2 touches)", "days"),
        Feature("meeting_held", "1 if a meeting was held (outcome 'held')", "0/1"),
        Feature("followups_after_meeting", "touches after the first held meeting", "count"),
        Feature("proposals_sent", "outbound proposals so far", "count"),
        Feature("proposal_amount_max", "largest proposal amount (empty if none)", "dollars"),
        Feature("proposal_amount_total", "total of proposal amounts", "dollars"),
        Feature("reengagements",
                f"touches after {cfg.dormant_days}+ days without any activity on the lead",
                "count"),
        Feature("engagement_score",
                f"time-decayed activity score (half-life {cfg.decay_half_life_days:g} days; "
                f"response {SCORE_WEIGHT_RESPONSE:g}, held meeting "
                f"{SCORE_WEIGHT_HELD_MEETING:g}, proposal {SCORE_WEIGHT_PROPOSAL:g}, "
                f"other touch {SCORE_WEIGHT_TOUCH:g})", "points"),
        Feature("lead_age_days", "days from the lead's creation to as_of", "days"),
        Feature("rep_past_conversion_rate",
                f"owner rep's conversion rate on leads resolved in the {cfg.history_days} days "
                "before as_of (shrunk)", "share"),
        Feature("rep_past_followup_depth",
                f"mean touches the owner rep gave leads resolved in the {cfg.history_days} days "
                "before as_of (empty if none)", "count"),
        Feature("source_past_conversion_rate",
                f"conversion rate of this source on leads resolved in the {cfg.history_days} "
                "days before as_of (shrunk)", "share"),
        Feature("source", "the lead's channel", "category", "categorical"),
    ]


def attribute_feature(name: str, kind: str) -> Feature:
    """A lead attribute column passed through as a feature."""
    return Feature(name, "lead attribute from the CRM export", "as exported",
                   "numeric" if kind == "numeric" else "categorical")


def format_data_dictionary(cfg: EngagementConfig, attributes: dict[str, str] | None = None) -> str:
    """The feature list as a Markdown table (what `leadlens features --list` prints)."""
    rows = ["| feature | unit | description |", "|---|---|---|"]
    feats = engagement_features(cfg) + [attribute_feature(n, k) for n, k in
                                        (attributes or {}).items()]
    rows += [f"| `{f.name}` | {f.unit} | {f.description} |" for f in feats]
    if not attributes:
        rows.append("| *lead attributes* | as exported | every other leads column "
                    "(industry, company_size, ...), numeric or categorical |")
    return "\n".join(rows)
