"""Apply a source mapping to a flat export: one row per lead in, contract leads rows out.

The output goes through the same validation as any leads file. Rows the mapping cannot use
(an outcome value it does not know, a date that does not match its format, a month that is not
a month) are handed to the validator as failures, so they are quarantined with the rest,
counted, and named by row and column.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.timestamps import to_utc_naive
from ingest.readers import read_table_file
from ingest.row_order_dates import NotInTimeOrder, month_numbers, reconstruct
from ingest.source_mapping import DateRule, OutcomeRule, Sentinel, SourceMapping
from ingest.validation import ContractError, MappingFailure, parse_timestamps


class MappingError(ContractError):
    """The mapping does not fit the export; the message names the key and the column."""


@dataclass
class MappedLeads:
    """A flat export mapped onto contract leads, with the rows and columns the mapping left out."""

    frame: pd.DataFrame
    """Contract leads columns plus the attributes kept, in file order."""
    failures: list[MappingFailure] = field(default_factory=list)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    """Why -> export columns left out (leaky, personal, other)."""
    notes: list[str] = field(default_factory=list)


def read_export(path: Path | str, mapping: SourceMapping) -> pd.DataFrame:
    """Read a flat export as text, with the mapping's separator when it names one."""
    return read_table_file(path, separator=mapping.read.separator)


def _need(raw: pd.DataFrame, key: str, column: str | None, source: str) -> None:
    if column is not None and column not in raw.columns:
        shown = ", ".join(map(str, raw.columns[:30])) + (" ..." if raw.shape[1] > 30 else "")
        raise MappingError(f"{source}: mapping key '{key}' names column '{column}', which the "
                           f"export does not have (its columns: {shown})")


GLOB_CHARS = frozenset("*?[")


def excluded_columns(columns: list[str], names: tuple[str, ...], key: str, source: str,
                     strict: bool = True) -> list[str]:
    """The export columns an `exclude` list names: exact names, or globs (`Asymmetrique*`,
    matched case-sensitively). With `strict` (ingest), a name that is not a column and a glob
    that matches none are refused naming the key, so a typo cannot keep a leaky column as an
    input; scoring files may lack excluded columns."""
    found: list[str] = []
    for name in names:
        if GLOB_CHARS & set(name):
            hits = [c for c in columns if fnmatch.fnmatchcase(str(c), name)]
            if not hits and strict:
                raise MappingError(f"{source}: mapping key '{key}': the pattern '{name}' "
                                   "matches no column of the export")
        else:
            hits = [name] if name in columns else []
            if not hits and strict:
                _need(pd.DataFrame(columns=columns), key, name, source)
        found += [h for h in hits if h not in found]
    return found


def _is_sentinel(values: pd.Series, sentinels: tuple[Sentinel, ...]) -> np.ndarray:
    text = values.astype("string").str.strip()
    hit = text.isin([str(s) for s in sentinels]).fillna(False).to_numpy(dtype=bool).copy()
    numbers = [float(s) for s in sentinels if _as_float(s) is not None]
    if numbers:
        as_num = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        hit |= np.isin(as_num, numbers)
    return hit


def _as_float(value: Sentinel) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _dates(raw: pd.DataFrame, rule: DateRule, key: str, failures: list[MappingFailure],
           notes: list[str], whole_file: bool = True) -> pd.Series:
    if rule.value is not None or rule.spread is not None:
        return _made_dates(raw, rule, key, notes)
    if rule.from_row_order is not None:
        r = rule.from_row_order
        months = raw[r.month_column]
        bad = (month_numbers(months) == 0) & months.notna().to_numpy()
        if bad.any():
            failures.append(MappingFailure(bad, "unmapped_value", r.month_column,
                                           f"'{r.month_column}' is not a month ({key})"))
        try:
            out, month_notes = reconstruct(
                months, r.first_year, raw[r.weekday_column] if r.weekday_column else None,
                r.day_start_hour, r.day_end_hour)
        except NotInTimeOrder as err:
            raise MappingError(f"mapping key '{key}.from_row_order', column "
                               f"'{r.month_column}': {err}") from None
        last = out.dropna().max() if out.notna().any() else None
        if (whole_file and r.last_year is not None and last is not None
                and last.year != r.last_year):
            raise MappingError(
                f"mapping key '{key}.from_row_order.last_year', column '{r.month_column}': "
                f"the months put the last row in {last.year}, not {r.last_year}: the rows are "
                f"not in time order, or some months are missing")
        notes += [f"{key}: {n}" for n in month_notes]
        return out
    if rule.column is None:  # unreachable: a DateRule has exactly one of the two
        raise MappingError(f"mapping key '{key}': neither `column` nor `from_row_order`")
    values = raw[rule.column]
    if rule.format is None:
        return values  # ISO-8601 text: the validator parses and reports it
    parsed = pd.to_datetime(values, format=rule.format, errors="coerce")
    bad = (parsed.isna() & values.astype("string").str.strip().fillna("").ne("")).to_numpy()
    if bad.any():
        failures.append(MappingFailure(bad, "bad_timestamp", rule.column,
                                       f"'{rule.column}' does not match {rule.format} ({key})"))
    return parsed.astype("datetime64[us]")


def _made_dates(raw: pd.DataFrame, rule: DateRule, key: str, notes: list[str]) -> pd.Series:
    """`created_at` for an export without dates: one `value` for every row, or rows `spread`
    evenly between two dates in file order."""
    if key != "created_at":
        raise MappingError(f"mapping key '{key}': `value` and `spread` date `created_at` "
                           "only (an outcome needs its own date or `known_after_days`)")
    if rule.value is not None:
        when = to_utc_naive(rule.value)
        notes.append(f"created_at: every lead dated {when} (a snapshot export): leads cannot be "
                     "split by time, so `leadlens train` refuses; score with a model trained "
                     "elsewhere, or date rows with `spread` if the file is in time order")
        return pd.Series(when, index=raw.index, dtype="datetime64[us]")
    if rule.spread is None:  # unreachable: called with one of the two
        raise MappingError(f"mapping key '{key}': neither `value` nor `spread`")
    start, end = to_utc_naive(rule.spread.start), to_utc_naive(rule.spread.end)
    n = len(raw)
    notes.append(f"created_at: {n:,} rows spread evenly from {start} to {end} in file order: the "
                 "time split is a split by file order, honest only if the file is in time "
                 "order (otherwise the test measures ranking within one period)")
    # whole microseconds, the first row exactly at `start` and the last exactly at `end`
    micros = np.linspace(start.value // 1000, end.value // 1000, n).round().astype("int64")
    return pd.Series(pd.to_datetime(micros, unit="us"), index=raw.index,
                     dtype="datetime64[us]")


def _check_references(raw: pd.DataFrame, m: SourceMapping, source: str,
                      with_outcome: bool) -> dict[str, str | None]:
    """Mapping key -> export column named; MappingError for a column the export lacks."""
    refs = {
        "lead_id.column": m.lead_id.column,
        "created_at.column": m.created_at.column,
        "created_at.from_row_order.month_column":
            m.created_at.from_row_order.month_column if m.created_at.from_row_order else None,
        "created_at.from_row_order.weekday_column":
            m.created_at.from_row_order.weekday_column if m.created_at.from_row_order else None,
        "owner_rep_id.column": m.owner_rep_id.column if m.owner_rep_id else None,
        "source.column": m.source.column if m.source else None,
        "deal_amount.column": m.deal_amount.column if m.deal_amount else None,
    }
    if with_outcome:
        refs |= {
            "outcome.column": m.outcome.column if m.outcome else None,
            "converted_at.column": m.converted_at.column if m.converted_at else None,
            "closed_lost_at.column": m.closed_lost_at.column if m.closed_lost_at else None,
        }
    for key, col in refs.items():
        _need(raw, key, col, source)
    for col in m.rename:
        _need(raw, f"rename.{col}", col, source)
    for col in m.missing.columns:
        _need(raw, f"missing.columns.{col}", col, source)
    return refs


def _blank_missing(raw: pd.DataFrame, m: SourceMapping) -> pd.DataFrame:
    """A copy of the export with the mapping's missing-value sentinels made missing."""
    work = raw.copy()
    for col in work.columns:
        sentinels = (*m.missing.everywhere, *m.missing.columns.get(col, ()))
        if sentinels:
            hit = _is_sentinel(work[col], sentinels)
            if hit.any():
                work[col] = work[col].mask(hit)
    return work


def apply_mapping(raw: pd.DataFrame, mapping: SourceMapping, source: str,
                  with_outcome: bool = True) -> MappedLeads:
    """Map a flat export onto the leads contract (see the module docstring).

    `with_outcome=False` is for scoring new leads: the outcome column may be absent, and the
    file may be a slice (`last_year` is not checked).
    """
    m = mapping
    refs = _check_references(raw, m, source, with_outcome)
    work = _blank_missing(raw, m)

    failures: list[MappingFailure] = []
    notes: list[str] = []
    out = _contract_columns(work, m, with_outcome, failures, notes)

    used = {c for c in refs.values() if c is not None}
    if m.outcome is not None:
        used.add(m.outcome.column)
    excluded = _keep_attributes(work, m, used, source, with_outcome, out)
    return MappedLeads(out.reset_index(drop=True), failures,
                       {k: v for k, v in excluded.items() if v}, notes)


def _contract_columns(work: pd.DataFrame, m: SourceMapping, with_outcome: bool,
                      failures: list[MappingFailure], notes: list[str]) -> pd.DataFrame:
    """The contract's columns of the leads rows: id, dates, outcome, owner, source, amount."""
    out = pd.DataFrame(index=work.index)
    if m.lead_id.row_number:
        out["lead_id"] = [f"{m.lead_id.prefix}{i + 1}" for i in range(len(work))]
    else:
        out["lead_id"] = work[m.lead_id.column]
    out["created_at"] = _dates(work, m.created_at, "created_at", failures, notes,
                               whole_file=with_outcome)
    for name in ("converted_at", "closed_lost_at"):
        rule = getattr(m, name)
        if rule is not None and with_outcome:
            out[name] = _dates(work, rule, name, failures, notes)
    if m.outcome is not None and with_outcome:
        _outcome(work, m.outcome, out, failures)
    for name in ("owner_rep_id", "source", "deal_amount"):
        ref = getattr(m, name)
        if ref is not None:
            out[name] = work[ref.column] if ref.column is not None else ref.value
    return out


def _keep_attributes(work: pd.DataFrame, m: SourceMapping, used: set[str], source: str,
                     with_outcome: bool, out: pd.DataFrame) -> dict[str, list[str]]:
    """Copy every export column the mapping neither uses nor excludes into `out` as a lead
    attribute (renamed as mapped); returns the excluded columns by why."""
    excluded = {why: excluded_columns(list(work.columns), getattr(m.exclude, why),
                                      f"exclude.{why}", source, strict=with_outcome)
                for why in ("leaky", "personal", "other")}
    if with_outcome:  # a column empty in the whole export carries nothing (a trailing comma)
        taken = used | {c for cols in excluded.values() for c in cols}
        excluded["empty"] = [c for c in work.columns
                             if c not in taken and work[c].isna().all()]
    left_out = used | {c for cols in excluded.values() for c in cols}
    order = m.created_at.from_row_order
    # row-order date columns stay as attributes (season, weekday) unless excluded
    if order is not None:
        left_out -= {order.month_column, order.weekday_column}
    for col in work.columns:
        if col not in left_out:
            name = m.rename.get(col, col)
            if name in out.columns:
                raise MappingError(f"{source}: mapping key 'rename.{col}': attribute name "
                                   f"'{name}' clashes with a contract column")
            out[name] = work[col]
    return excluded


def _outcome(work: pd.DataFrame, rule: OutcomeRule, out: pd.DataFrame,
             failures: list[MappingFailure]) -> None:
    values = work[rule.column]
    present = values.astype("string").str.strip().fillna("").ne("").to_numpy()
    won = _is_sentinel(values, rule.won) & present
    if rule.lost is not None:
        lost = _is_sentinel(values, rule.lost) & present
        unknown = present & ~won & ~lost
        if unknown.any():
            failures.append(MappingFailure(
                unknown, "unmapped_value", rule.column,
                f"'{rule.column}' is neither a won nor a lost value of the mapping (outcome)"))
    else:
        lost = present & ~won
    # parsed as the validator parses created_at (ISO-8601, any mix of forms), so an outcome
    # is dated exactly when its row's creation time is valid
    when = parse_timestamps(out["created_at"]) + pd.Timedelta(days=rule.known_after_days)
    out["converted_at"] = when.where(won)
    out["closed_lost_at"] = when.where(lost)
