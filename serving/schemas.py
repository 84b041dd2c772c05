"""Request bodies: strict (unknown fields fail), bounded, and never echoed in errors."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from core.contract import ACTIVITY_TYPES, DIRECTIONS
from core.date_window import DateWindow
from core.settings import MAX_BATCH_LIMIT

MAX_LEADS = MAX_BATCH_LIMIT
"""The schema's hard ceiling; `serve.max_batch` (at most this) is the limit in force."""
MAX_ACTIVITIES = 5000


_WINDOW: list[DateWindow] = [DateWindow()]
"""The plausible-date window request timestamps must fall in; the service sets it from
`ingest.earliest_date` and `ingest.max_days_ahead` when a worker starts (`use_date_window`)."""


def use_date_window(window: DateWindow) -> None:
    """Validate request timestamps against `window` from now on (the config's, at start)."""
    _WINDOW[0] = window


_DIGITS = re.compile(r"^\s*[+-]?\d+(\.\d+)?\s*$")


def _not_epoch(value: Any) -> Any:
    """Refuse a number, or text of digits only, as a moment: pydantic would read `20260101`
    as Unix seconds (a day in 1970)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("an ISO-8601 timestamp such as 2026-01-01T00:00:00 (numbers are not "
                         "read as Unix time)")
    if isinstance(value, str) and _DIGITS.match(value):
        raise ValueError("an ISO-8601 timestamp such as 2026-01-01T00:00:00 "
                         f"('{value.strip()[:8]}...' has no separators)")
    return value


def _plausible(value: datetime) -> datetime:
    """A moment inside the plausible-date window (ingestion quarantines the rest)."""
    problem = _WINDOW[0].problem(value)
    if problem:
        raise ValueError(problem)
    return value


Moment = Annotated[datetime, BeforeValidator(_not_epoch), AfterValidator(_plausible)]
"""A request timestamp: ISO-8601 text inside the plausible-date window (default 1990 to
tomorrow)."""


def _finite_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Attributes whose numbers are finite floats (ingestion quarantines the rest)."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        try:
            ok = math.isfinite(float(v))
        except OverflowError:
            ok = False
        if not ok:
            raise ValueError(f"attribute '{name[:64]}': not a finite number within the range "
                             "of a double")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class ActivityIn(_Strict):
    """One activity of a lead described by its fields (as in the activities table)."""

    activity_id: str | None = Field(None, max_length=128)
    occurred_at: Moment
    type: Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
    direction: Literal[DIRECTIONS] = "outbound"  # type: ignore[valid-type]
    outcome: str | None = Field(None, max_length=64)
    amount: float | None = Field(None, ge=0, allow_inf_nan=False)


class LeadIn(_Strict):
    """A lead known to the warehouse (`lead_id` only), or described by its fields."""

    lead_id: str | None = Field(None, min_length=1, max_length=128)
    created_at: Moment | None = None
    owner_rep_id: str | None = Field(None, max_length=128)
    source: str | None = Field(None, max_length=128)
    attributes: Annotated[dict[str, float | int | str | None],
                          AfterValidator(_finite_attributes)] = Field(default_factory=dict,
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
    as_of: Moment | None = None


class ExplainIn(_Strict):
    """`POST /explain`: one lead and the moment to explain it at."""

    lead: LeadIn
    as_of: Moment | None = None


class NextStepsIn(_Strict):
    """`POST /next_steps`: an open lead by id and the moment to plan from."""

    lead_id: str = Field(min_length=1, max_length=128)
    as_of: Moment | None = None


class DropoutIn(_Strict):
    """`POST /dropout_risk`: leads, how many reasons each, and the moment to score at."""

    leads: list[LeadIn] = Field(min_length=1, max_length=MAX_LEADS)
    explain: int = Field(3, ge=0, le=20)
    as_of: Moment | None = None


class RepsIn(_Strict):
    """`POST /reps`: a period (or `from` and `to` dates) and optionally one team."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True,
                              populate_by_name=True)
    period: str | None = Field(None, max_length=32, pattern=r"^\d{4}(-\d{2}|-?[Qq][1-4])?$")
    date_from: date | None = Field(None, alias="from")
    date_to: date | None = Field(None, alias="to")
    team: str | None = Field(None, max_length=128)
