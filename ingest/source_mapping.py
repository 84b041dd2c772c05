"""Source mapping configs (`configs/sources/<name>.yaml`): how a flat CRM export maps onto the
contract's leads table.

A mapping is validated once, when it is read; every error names the file and the key. Whether
the columns it names exist is checked against the export itself (`ingest.flat_export`), and
those errors name the key and the column.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.settings import ConfigError, format_config_errors, iso_text, read_yaml

Sentinel = str | int | float


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _exactly_one(first: object, second: object, names: str) -> None:
    """Refuse a rule that gives both of two alternatives, or neither."""
    if (first is None) == (second is None):
        raise ValueError(f"give exactly one of {names}")


class ReadOptions(_Part):
    """The mapping key `read`: how to read the export file."""

    separator: str | None = None
    """`,` or `;`; detected from the header when left out."""

    @field_validator("separator")
    @classmethod
    def _sep(cls, v: str | None) -> str | None:
        if v is not None and v not in (",", ";", "\t", "|"):
            raise ValueError("one of ',', ';', '|' or a tab")
        return v


class LeadIdRule(_Part):
    """The mapping key `lead_id`: an id column, or ids numbered in file order."""

    column: str | None = None
    """The export column holding a unique lead id ..."""
    row_number: bool = False
    """... or number the rows 1, 2, ... in file order (for exports without ids)."""
    prefix: str = ""
    """Put before a numbered id (e.g. `bank-`)."""

    @model_validator(mode="after")
    def _one(self) -> LeadIdRule:
        _exactly_one(self.column, self.row_number or None, "`column` or `row_number: true`")
        return self


class RowOrderDates(_Part):
    """Dates for an export without dates that is in time order and carries a month column."""

    month_column: str
    """Month names or numbers (`may`, `May`, `5`); a year begins when the month goes back."""
    first_year: int = Field(ge=1900, le=2200)
    """The year of the first row."""
    last_year: int | None = Field(None, ge=1900, le=2200)
    """The year of the last row, when known: a file whose months do not add up to it is
    refused (it is not in time order, or months are missing)."""
    weekday_column: str | None = None
    """Weekday names (`mon`...): each run of equal weekdays is one calling day, placed on the
    next date with that weekday; without it the rows are spread evenly over their month."""
    day_start_hour: int = Field(9, ge=0, le=23)
    day_end_hour: int = Field(18, ge=1, le=24)
    """A day's rows are spread evenly over these working hours, in file order."""


class SpreadDates(_Part):
    """Dates for an export without dates: rows spread evenly from `start` to `end` in file
    order (the first row at `start`, the last at `end`)."""

    start: str
    end: str

    @field_validator("start", "end", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return iso_text(v, "spread")

    @model_validator(mode="after")
    def _ordered(self) -> SpreadDates:
        start, end = self.start, self.end
        if datetime.datetime.fromisoformat(end) <= datetime.datetime.fromisoformat(start):
            raise ValueError("`end` must come after `start`")
        return self


class DateRule(_Part):
    """A date key (`created_at`, ...): a column (ISO-8601 or a format), or dates from row order;
    `created_at` also takes one `value` for every row (a snapshot export) or rows `spread`
    evenly between two dates in file order."""

    column: str | None = None
    format: str | None = None
    """A `strftime` format such as `%d/%m/%Y`; ISO-8601 when left out."""
    from_row_order: RowOrderDates | None = None
    value: str | None = None
    """One date for every row: the day a snapshot export was taken (no time split possible)."""
    spread: SpreadDates | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, v: Any) -> Any:
        return iso_text(v, "value")

    @model_validator(mode="after")
    def _one(self) -> DateRule:
        given = [k for k in ("column", "from_row_order", "value", "spread")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `column`, `from_row_order`, `value` or "
                             "`spread`")
        if self.format is not None and self.column is None:
            raise ValueError("`format` goes with `column`")
        return self


class OutcomeRule(_Part):
    """Derive `converted_at` / `closed_lost_at` from an outcome column without dates."""

    column: str
    won: tuple[Sentinel, ...]
    """Values meaning converted (e.g. `yes`, `Closed Won`)."""
    lost: tuple[Sentinel, ...] | None = None
    """Values meaning lost; default: every other non-empty value. Empty means still open."""
    known_after_days: float = Field(1.0, ge=0)
    """The outcome is dated this many days after the lead's creation. Keep `train.horizon_days`
    above it (the label is "converted within the horizon")."""

    @field_validator("won")
    @classmethod
    def _won(cls, v: tuple[Sentinel, ...]) -> tuple[Sentinel, ...]:
        if not v:
            raise ValueError("at least one value meaning converted")
        return v


class ColumnRef(_Part):
    """A contract column taken from an export column, or one constant value for every row."""

    column: str | None = None
    value: str | None = None
    """A constant for every row instead of a column (e.g. `source: {value: telemarketing}`)."""

    @model_validator(mode="after")
    def _one(self) -> ColumnRef:
        _exactly_one(self.column, self.value, "`column` or `value`")
        return self


class MissingValues(_Part):
    """The mapping key `missing`: values that mean missing, everywhere or per column."""

    everywhere: tuple[Sentinel, ...] = ()
    """Values read as missing in every column (e.g. `unknown`)."""
    columns: dict[str, tuple[Sentinel, ...]] = {}
    """Per-column sentinels (e.g. `pdays: [999]`)."""


class Exclusions(_Part):
    """The mapping key `exclude`: export columns never kept, by why they are left out."""

    leaky: tuple[str, ...] = ()
    """Known only after the outcome (e.g. a call's duration): never a feature."""
    personal: tuple[str, ...] = ()
    """Personal data: dropped at ingestion, never stored."""
    other: tuple[str, ...] = ()
    """Anything else to leave out."""


class SourceMapping(_Part):
    """One export format mapped onto the leads table of the contract."""

    description: str = ""
    read: ReadOptions = ReadOptions()
    lead_id: LeadIdRule
    created_at: DateRule
    converted_at: DateRule | None = None
    closed_lost_at: DateRule | None = None
    outcome: OutcomeRule | None = None
    owner_rep_id: ColumnRef | None = None
    source: ColumnRef | None = None
    deal_amount: ColumnRef | None = None
    rename: dict[str, str] = {}
    """Export column -> attribute name, for the columns kept as lead attributes."""
    missing: MissingValues = MissingValues()
    exclude: Exclusions = Exclusions()

    @model_validator(mode="after")
    def _outcome(self) -> SourceMapping:
        if self.outcome is not None and (self.converted_at or self.closed_lost_at):
            raise ValueError("give either `outcome` or `converted_at`/`closed_lost_at`, not both")
        return self


def parse_source_mapping(data: Any, path: Path | None = None) -> SourceMapping:
    """Validate a mapping (as read from YAML); errors name the file and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a source mapping is a YAML mapping of keys")
    try:
        return SourceMapping.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_config_errors(path, err, "source mapping")) from None


def load_source_mapping(path: Path | str) -> SourceMapping:
    """Read and validate `configs/sources/<name>.yaml`."""
    return parse_source_mapping(read_yaml(path, "source mapping"), Path(path))
