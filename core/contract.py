"""The CRM data contract, version 1: the tables LeadLens reads and what each column means.

This module is the single source of truth for column names, kinds and allowed values; the
validator, the warehouse schema, the simulator and the README all follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONTRACT_VERSION = 1

ColumnKind = Literal["id", "text", "timestamp", "amount", "choice"]

ACTIVITY_TYPES: tuple[str, ...] = ("call", "email", "meeting", "proposal", "other")
DIRECTIONS: tuple[str, ...] = ("outbound", "inbound")
DEFAULT_DIRECTION = "outbound"


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: ColumnKind
    required: bool
    meaning: str
    choices: tuple[str, ...] = ()
    default: str | None = None


@dataclass(frozen=True)
class Table:
    """One contract table: its id column, its columns, and whether extra columns are kept."""

    name: str
    key: str
    columns: tuple[Column, ...]
    keeps_extra_columns: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in contract order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """The names of the required columns, in contract order."""
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        """The column called `name`; raises KeyError if the table has none."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


LEADS = Table(
    name="leads",
    key="lead_id",
    keeps_extra_columns=True,
    columns=(
        Column("lead_id", "id", True, "unique id"),
        Column("created_at", "timestamp", True, "when the lead entered the CRM"),
        Column("owner_rep_id", "text", False, "the rep the lead is assigned to"),
        Column("source", "text", False, "channel: web, referral, event, outbound, partner, ..."),
        Column("converted_at", "timestamp", False, "when the lead converted (won)"),
        Column("closed_lost_at", "timestamp", False, "when it was disqualified or lost"),
        Column("deal_amount", "amount", False, "value of the won deal (>= 0)"),
    ),
)

ACTIVITIES = Table(
    name="activities",
    key="activity_id",
    columns=(
        Column("activity_id", "id", True, "unique id"),
        Column("lead_id", "id", True, "the lead touched; must exist among the leads"),
        Column("rep_id", "text", False, "who performed it"),
        Column("occurred_at", "timestamp", True, "when"),
        Column("type", "choice", True, "what kind of touch", choices=ACTIVITY_TYPES),
        Column(
            "direction",
            "choice",
            False,
            "who initiated it",
            choices=DIRECTIONS,
            default=DEFAULT_DIRECTION,
        ),
        Column("outcome", "text", False, "connected, no_answer, voicemail, replied, held, ..."),
        Column("amount", "amount", False, "a proposal's dollar value (>= 0)"),
    ),
)

REPS = Table(
    name="reps",
    key="rep_id",
    columns=(
        Column("rep_id", "id", True, "unique id"),
        Column("team", "text", False, "the rep's team"),
        Column("hired_at", "timestamp", False, "when the rep was hired"),
        Column("monthly_quota", "amount", False, "won revenue expected per month (>= 0)"),
        Column("role", "text", False, "the rep's role or stage (e.g. sales, validation): reps "
               "are compared within team and role"),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (REPS, LEADS, ACTIVITIES)}

# Columns whose names mark personal data; matched on name tokens (see `is_personal_column`).
DEFAULT_PERSONAL_DATA_COLUMNS: tuple[str, ...] = (
    "name",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "mobile",
    "address",
    "street",
    "zip",
    "postcode",
    "ssn",
    "birthday",
    "date_of_birth",
    "linkedin",
    "ip",
)


def normalise_column_name(name: str) -> str:
    """Lower-case a column name and turn every run of non-alphanumerics into one underscore."""
    out: list[str] = []
    for ch in name.strip().lower():
        if ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "_":
            out.append("_")
    return "".join(out).strip("_")


def is_personal_column(name: str, personal: tuple[str, ...] | list[str]) -> bool:
    """True when a column name marks personal data.

    A name matches when, normalised, it equals a listed name, or starts or ends with one as a
    whole token: `email`, `contact_email`, `phone_number` and `Email Address` all match; `ip`
    matches `ip_address` but not `zipcode` or `shipping`.
    """
    norm = normalise_column_name(name)
    for p in personal:
        p = normalise_column_name(p)
        if norm == p or norm.startswith(p + "_") or norm.endswith("_" + p):
            return True
    return False
