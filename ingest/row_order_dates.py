"""Creation dates for an export without dates that is in time order and has a month column.

How: a row's year starts at `first_year` and goes up by one whenever the month goes back
(December -> March). Within a month, with a weekday column, each run of equal weekdays is one
calling day, placed on the first date on or after the previous calling day's next date that
falls on that weekday; a month whose runs do not fit its calendar falls back to spreading its
rows evenly over the month. A day's rows are spread evenly over the working hours in file order,
so the reconstructed times keep the file's order exactly.
"""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS |= {str(i): i for i in range(1, 13)} | {f"{i:02d}": i for i in range(1, 10)}
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_abbr)}
_WEEKDAYS |= {name.lower(): i for i, name in enumerate(calendar.day_name)}


MAX_YEARS = 50


class NotInTimeOrder(ValueError):
    """The rows cannot be in time order (their months would span an absurd number of years)."""


def month_numbers(values: pd.Series) -> np.ndarray:
    """Month names or numbers as 1..12; 0 where the value is not a month."""
    text = values.astype("string").str.strip().str.lower()
    return text.map(_MONTHS).fillna(0).astype("int64").to_numpy()


def weekday_numbers(values: pd.Series) -> np.ndarray:
    """Weekday names as 0 (Monday)..6; -1 where the value is not a weekday."""
    text = values.astype("string").str.strip().str.lower()
    return text.map(_WEEKDAYS).fillna(-1).astype("int64").to_numpy()


def _spread(day: pd.Timestamp, n: int, start_hour: int, end_hour: int) -> list[pd.Timestamp]:
    span = (end_hour - start_hour) * 3600.0
    return [day + pd.Timedelta(seconds=start_hour * 3600 + span * (j + 0.5) / n)
            for j in range(n)]


def _calling_days(first: pd.Timestamp, weekdays: np.ndarray) -> list[pd.Timestamp] | None:
    """One date per run of equal weekdays, in order; None when the runs overflow the month."""
    cursor, days = first, []
    runs = np.flatnonzero(np.r_[True, weekdays[1:] != weekdays[:-1]])
    for start in runs:
        wd = int(weekdays[start])
        if wd < 0:
            return None
        day = cursor + pd.Timedelta(days=(wd - cursor.weekday()) % 7)
        if day.month != first.month:
            return None
        days.append(day)
        cursor = day + pd.Timedelta(days=1)
    return days


def reconstruct(months: pd.Series, first_year: int, weekdays: pd.Series | None = None,
                day_start_hour: int = 9, day_end_hour: int = 18
                ) -> tuple[pd.Series, list[str]]:
    """Creation times for rows in time order (see the module docstring), NaT where the month
    is not recognised; with notes on any month that fell back to even spreading."""
    m = month_numbers(months)
    wd = weekday_numbers(weekdays) if weekdays is not None else None
    out = np.full(len(m), np.datetime64("NaT"), dtype="datetime64[us]")
    ok = np.flatnonzero(m > 0)
    notes: list[str] = []
    if len(ok) == 0:
        return pd.Series(out, index=months.index), notes
    mv = m[ok]
    years = first_year + np.r_[0, np.cumsum(mv[1:] < mv[:-1])]
    if years[-1] - first_year > MAX_YEARS:
        raise NotInTimeOrder(f"the months go back {years[-1] - first_year} times, which would "
                             f"put the last row in {years[-1]}: the rows are not in time order")
    block_starts = np.flatnonzero(np.r_[True, (mv[1:] != mv[:-1]) | (years[1:] != years[:-1])])
    block_ends = np.r_[block_starts[1:], len(ok)]
    for b0, b1 in zip(block_starts, block_ends, strict=True):
        rows = ok[b0:b1]
        first = pd.Timestamp(int(years[b0]), int(mv[b0]), 1)
        days = None if wd is None else _calling_days(first, wd[rows])
        if wd is not None and days is not None:  # days is None whenever wd is
            runs = np.flatnonzero(np.r_[True, wd[rows][1:] != wd[rows][:-1]])
            bounds = np.r_[runs, len(rows)]
            times = []
            for k, day in enumerate(days):
                times += _spread(day, int(bounds[k + 1] - bounds[k]), day_start_hour,
                                 day_end_hour)
        else:
            if wd is not None:
                notes.append(f"{first:%Y-%m}: its weekday runs do not fit the calendar; "
                             f"rows spread evenly over the month")
            month_len = pd.Timedelta(days=calendar.monthrange(first.year, first.month)[1])
            n = len(rows)
            times = [first + month_len * ((j + 0.5) / n) for j in range(n)]
        out[rows] = np.array([t.to_datetime64() for t in times], dtype="datetime64[us]")
    return pd.Series(out, index=months.index), notes
