"""Request bodies: strict (unknown fields fail), bounded, and never echoed in errors."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.contract import ACTIVITY_TYPES, DIRECTIONS
from core.settings import MAX_BATCH_LIMIT

MAX_LEADS = MAX_BATCH_LIMIT
"""The schema's hard ceiling; `serve.max_batch` (at most this) is the limit in force."""
MAX_ACTIVITIES = 5000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class ActivityIn(_Strict):
    """One activity of a lead described by its fields (as in the activities table)."""

    activity_id: str | None = Field(None, max_length=128)
    occurred_at: datetime
    type: Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
    direction: Literal[DIRECTIONS] = "outbound"  # type: ignore[valid-type]
    outcome: str | None = Field(None, max_length=64)
    amount: float | None = Field(None, ge=0, allow_inf_nan=False)


class LeadIn(_Strict):
    """A lead known to the warehouse (`lead_id` only), or described by its fields."""

    lead_id: str | None = Field(None, min_length=1, max_length=128)
    created_at: datetime | None = None
    owner_rep_id: str | None = Field(None, max_length=128)
    source: str | None = Field(None, max_length=128)
    attributes: dict[str, float | int | str | None] = Field(default_factory=dict,
                                                            max_length=200)
    activities: list[ActivityIn] | None = Field(None, max_length=MAX_ACTIVITIES)

    @model_validator(mode="after")
    def _known_or_described(self) -> LeadIn:
        described = self.created_at is not None
        if not described and (self.activities is not None or self.owner_rep_id or self.source
                              or self.attributes):
            raise ValueError("a lead given by its fields needs created_at")
        if not described and self.lead_id is None:
            raise ValueError("give lead_id (a lead in the warehouse) or the lead's fields")
        return self

    @property
    def by_id(self) -> bool:
        """True for a lead given by its lead_id only (no fields)."""
        return self.created_at is None


class ScoreIn(_Strict):
    """`POST /score`: leads to score, how many reasons each, and the moment to score at."""

    leads: list[LeadIn] = Field(min_length=1, max_length=MAX_LEADS)
    explain: int = Field(0, ge=0, le=20)
    as_of: datetime | None = None


class ExplainIn(_Strict):
    """`POST /explain`: one lead and the moment to explain it at."""

    lead: LeadIn
    as_of: datetime | None = None


class DropoutIn(_Strict):
    """`POST /dropout_risk`: leads, how many reasons each, and the moment to score at."""

    leads: list[LeadIn] = Field(min_length=1, max_length=MAX_LEADS)
    explain: int = Field(3, ge=0, le=20)
    as_of: datetime | None = None


class RepsIn(_Strict):
    """`POST /reps`: a period (or `from` and `to` dates) and optionally one team."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True,
                              populate_by_name=True)
    period: str | None = Field(None, max_length=32, pattern=r"^\d{4}(-\d{2}|-?[Qq][1-4])?$")
    date_from: date | None = Field(None, alias="from")
    date_to: date | None = Field(None, alias="to")
    team: str | None = Field(None, max_length=128)
