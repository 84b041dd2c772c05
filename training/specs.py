"""What each LeadLens model predicts and which features it may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core import names

ExampleKind = Literal["snapshots", "touches", "creation"]

LEAD_STATE = (
    "outbound_touches",
    "inbound_responses",
    "has_responded",
    "days_since_last_response",
    "meeting_held",
    "proposals_sent",
    "proposal_amount_max",
    "lead_age_days",
)
"""Where a lead stands after a touch, as the lead made it: what a rep-blind model of follow-up
may know (no rep, no rep history, no pace of the rep's own touches)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model LeadLens trains: its kind, registered name, examples and what it is for."""

    kind: names.ModelKind
    registered_name: str
    examples: ExampleKind
    question: str
    label: str
    intended_use: str

    def select(self, engagement: list[str], attributes: list[str]) -> list[str]:
        """The feature columns this model is fitted on."""
        if self.kind == "lead_quality":
            # rep-blind and activity-blind: only what the lead brought when it was assigned
            return ["source", *attributes]
        if self.kind == "dropout_expected":
            return [*LEAD_STATE, "source", *attributes]
        return [*engagement, *attributes]


CONVERSION = ModelSpec(
    names.CONVERSION, names.registered_name(names.CONVERSION), "snapshots",
    "Will this open lead convert?",
    "converted within the horizon after the snapshot",
    "Rank open leads for marketing and reps. Not for judging reps: it knows the rep's track "
    "record and activity (use the lead-quality model for that).",
)
DROPOUT = ModelSpec(
    names.DROPOUT, names.registered_name(names.DROPOUT), "touches",
    "Will the rep stop following this lead up too early?",
    "no further outbound touch within the window after this touch while the lead stayed open",
    "Warn managers and reps about leads likely to be dropped. Not a judgement of the rep.",
)
LEAD_QUALITY = ModelSpec(
    names.LEAD_QUALITY, names.registered_name(names.LEAD_QUALITY), "creation",
    "How likely is a lead like this to convert, whoever works it?",
    "converted within the horizon after creation",
    "Expected conversions for fair rep comparison. Sees only the lead's own attributes and "
    "source at assignment: no rep id, no rep track record, no activity.",
)

DROPOUT_EXPECTED = ModelSpec(
    names.DROPOUT_EXPECTED, names.registered_name(names.DROPOUT_EXPECTED), "touches",
    "How likely is a lead in this state to be dropped, whoever works it?",
    "no further outbound touch within the window after this touch while the lead stayed open",
    "Expected dropouts for judging a rep's follow-up discipline. Sees the lead's attributes and "
    "where it stands (touch number, responses, meetings, proposals), never the rep.",
)

SPECS: dict[str, ModelSpec] = {
    s.kind: s for s in (CONVERSION, DROPOUT, LEAD_QUALITY, DROPOUT_EXPECTED)}
