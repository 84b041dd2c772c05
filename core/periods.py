"""Reporting periods: a month (`2025-03`), a quarter (`2025-Q1`), a year (`2025`) or a range."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

AVG_MONTH_DAYS = 365.25 / 12


@dataclass(frozen=True)
class Period:
    """The half-open interval [start, end) in UTC, with a label and its length in months."""

    label: str
    start: pd.Timestamp
    end: pd.Timestamp
    months: float


def parse_period(text: str) -> Period:
    """`YYYY-MM`, `YYYY-Qn` or `YYYY`; anything else raises a `ValueError` saying what works."""
    text = text.strip()
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        start = pd.Timestamp(int(m[1]), int(m[2]), 1)
        return Period(text, start, start + pd.DateOffset(months=1), 1.0)
    if m := re.fullmatch(r"(\d{4})-?[Qq]([1-4])", text):
        start = pd.Timestamp(int(m[1]), 3 * int(m[2]) - 2, 1)
        return Period(f"{m[1]}-Q{m[2]}", start, start + pd.DateOffset(months=3), 3.0)
    if re.fullmatch(r"\d{4}", text):
        start = pd.Timestamp(int(text), 1, 1)
        return Period(text, start, start + pd.DateOffset(years=1), 12.0)
    raise ValueError(
        f"period {text!r}: use a month (2025-03), a quarter (2025-Q1) or a year (2025)"
    )


def date_range(start: str, end: str) -> Period:
    """From `start` (inclusive) to `end` (inclusive day): dates as YYYY-MM-DD."""
    try:
        s, e = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    except ValueError as err:
        raise ValueError(f"dates must be YYYY-MM-DD ({err})") from None
    if e <= s:
        raise ValueError(f"--to {end} is before --from {start}")
    return Period(f"{start}..{end}", s, e, (e - s).days / AVG_MONTH_DAYS)


def last_full_quarter(latest: pd.Timestamp) -> Period:
    """The last quarter that ends at or before `latest`."""
    q_start = pd.Timestamp(latest.year, 3 * ((latest.month - 1) // 3) + 1, 1)
    if latest >= q_start + pd.DateOffset(months=3) - pd.Timedelta(microseconds=1):
        start = q_start
    else:
        start = q_start - pd.DateOffset(months=3)
    return parse_period(f"{start.year}-Q{(start.month - 1) // 3 + 1}")


def resolve_period(period: str | None, date_from: object, date_to: object,
                   latest: Callable[[], pd.Timestamp],
                   names: tuple[str, str, str] = ("period", "from", "to")) -> Period:
    """The period a report asks for: a date range, a named period, or else the last full
    quarter before `latest()` (called only then). `names` are how the caller spells the three
    options in its error messages."""
    p_name, f_name, t_name = names
    if date_from or date_to:
        if not (date_from and date_to) or period:
            raise ValueError(f"give {f_name} and {t_name} together, without {p_name}")
        return date_range(str(date_from), str(date_to))
    if period:
        return parse_period(period)
    return last_full_quarter(latest())
