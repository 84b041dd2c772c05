"""Row-level validation of CRM tables against the contract: frames in, frames out, no I/O.

Every row read ends up in exactly one of two frames: `valid` (typed, ready to load) or
`quarantine` (its row number, the first rule it breaks, the column, a message, and its values).
Messages name the row, column and rule but never repeat submitted values: those stay in the
quarantine file beside the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.contract import LEADS, Column, Table, is_personal_column, normalise_column_name
from core.date_window import DateWindow
from core.free_text import mask_free_text
from core.settings import IngestConfig


class ContractError(ValueError):
    """A whole file cannot be used (missing required column, clashing column names, ...)."""


# Rules in the order they are checked; a row is quarantined for the first one it breaks.
RULES: dict[str, str] = {
    "unmapped_value": "a value the source mapping does not recognise",
    "missing_value": "a required value is empty",
    "duplicate_id": "the id appears earlier in the same file (the first row is kept)",
    "bad_timestamp": "not an ISO-8601 timestamp",
    "implausible_date": "a timestamp before ingest.earliest_date or more than "
                        "ingest.max_days_ahead days after the ingest",
    "not_allowed_value": "value outside the allowed set",
    "bad_number": "not a finite number",
    "negative_amount": "amount must be >= 0",
    "both_outcomes": "converted_at and closed_lost_at are both set",
    "outcome_before_created": "outcome timestamp earlier than created_at",
    "unknown_lead": "lead_id matches no lead in this ingest or the warehouse",
}



@dataclass(frozen=True)
class MappingFailure:
    """Rows a source mapping could not use (`ingest.flat_export`), failed before any rule."""

    rows: np.ndarray  # bool, one per row of the export
    rule: str
    column: str
    message: str


@dataclass
class TableResult:
    """The outcome of validating one table."""

    table: str
    source: str
    rows_read: int
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    dropped_personal: list[str] = field(default_factory=list)
    kept_personal_named: dict[str, str] = field(default_factory=dict)
    """Columns whose name looks personal but were kept -> why (yes/no values, or
    `ingest.keep_columns`)."""
    masked_free_text: dict[str, int] = field(default_factory=dict)
    """Column -> values in which an email address or phone number was masked."""
    ignored_columns: list[str] = field(default_factory=list)
    attribute_columns: dict[str, str] = field(default_factory=dict)

    @property
    def rows_quarantined(self) -> int:
        """Rows that failed a rule."""
        return len(self.quarantine)

    @property
    def quarantined_by_rule(self) -> dict[str, int]:
        """Quarantined rows per rule broken, in the order of `RULES`."""
        counts = self.quarantine["rule"].value_counts()
        return {rule: int(counts[rule]) for rule in RULES if rule in counts.index}

    @property
    def quarantine_share(self) -> float:
        """Quarantined rows as a share of the rows read (0 for an empty file)."""
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse ISO-8601 timestamps to naive UTC.

    A date alone means midnight; an offset is converted to UTC; no offset is taken as UTC.
    Unparsable values become NaT (callers tell them apart from empty values).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_any_dtype(values.dtype):
        out = values
    else:
        out = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
        out = out.dt.tz_localize(None)
    return out.astype("datetime64[us]")


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped text, with empty strings and nulls as missing."""
    if pd.api.types.is_float_dtype(values.dtype):
        # ids written by a spreadsheet as 12.0 are the text "12"
        as_int = values.dropna()
        if (as_int == np.floor(as_int)).all():
            values = values.astype("Int64")
    out = values.astype("string").str.strip()
    return out.mask(out == "")


def _numbers(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    return pd.to_numeric(_text(values), errors="coerce").astype("float64")


NUMERIC_MAJORITY = 0.95


def is_numeric_column(values: pd.Series) -> bool:
    """True when at least 95% of the non-empty values are finite numbers.

    A numeric column with a few typos stays numeric (the typos are quarantined as
    `bad_number`); a column of mostly words is text.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        return False
    present = _text(values).notna()
    if not present.any():
        return pd.api.types.is_numeric_dtype(values.dtype)
    nums = _numbers(values)
    finite = np.isfinite(nums[present].to_numpy(dtype="float64", na_value=np.nan))
    return bool(finite.mean() >= NUMERIC_MAJORITY)


class _RowChecker:
    """Keeps the first broken rule per row."""

    def __init__(self, n: int) -> None:
        self.rule = np.full(n, None, dtype=object)
        self.column = np.full(n, None, dtype=object)
        self.message = np.full(n, None, dtype=object)

    def fail(self, mask: np.ndarray | pd.Series, rule: str, column: str, message: str) -> None:
        mask = np.asarray(mask, dtype=bool) & (self.rule == None)  # noqa: E711 (elementwise)
        self.rule[mask] = rule
        self.column[mask] = column
        self.message[mask] = message

    @property
    def failed(self) -> np.ndarray:
        return self.rule != None  # noqa: E711 (elementwise)


def _normalise_headers(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    names = [normalise_column_name(str(c)) for c in raw.columns]
    seen: dict[str, str] = {}
    for original, norm in zip(raw.columns, names, strict=True):
        if not norm:
            raise ContractError(f"{source}: column '{original}' has no usable name")
        if norm in seen:
            raise ContractError(
                f"{source}: columns '{seen[norm]}' and '{original}' both read as '{norm}'"
            )
        seen[norm] = str(original)
    out = raw.copy()
    out.columns = names
    return out


def validate_table(
    table: Table,
    raw: pd.DataFrame,
    source: str,
    config: IngestConfig | None = None,
    known_lead_ids: pd.Index | None = None,
    stored_attribute_types: dict[str, str] | None = None,
    prior_failures: Iterable[MappingFailure] = (),
) -> TableResult:
    """Validate `raw` (one file's rows, in file order) against `table`.

    `known_lead_ids` (activities only) are the lead ids an activity may refer to.
    `stored_attribute_types` (leads only) maps attribute columns already in the warehouse to
    `numeric` or `text`, so a numeric attribute keeps rejecting text.
    `prior_failures` are rows a source mapping already could not use.
    A column whose name marks personal data (`config.personal_data_columns`) is dropped, unless
    it holds only yes/no values (a consent flag such as `Do Not Email` is not personal data) or
    is listed in `config.keep_columns`. A timestamp outside the config's plausible-date window
    quarantines its row.
    """
    config = config or IngestConfig()
    personal, keep_columns = config.personal_data_columns, config.keep_columns
    window = config.date_window()
    frame = _normalise_headers(raw, source)
    contract_names = set(table.column_names)
    dropped, kept = _personal_columns(frame, contract_names, personal, keep_columns)
    frame = frame.drop(columns=dropped)
    # personal data inside free text, masked before anything is stored or quarantined; the
    # ids (rep ids name employees as the CRM does) and dates are left as they are
    frame, masked = mask_free_text(frame, {c.name for c in table.columns
                                           if c.kind in ("id", "timestamp")}
                                   | {"rep_id", "owner_rep_id"})

    missing = [c for c in table.required if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: required column(s) missing: {', '.join(missing)} "
            f"(the {table.name} table needs {', '.join(table.required)})"
        )
    extra = [c for c in frame.columns if c not in contract_names]
    ignored = [] if table.keeps_extra_columns else extra
    attributes = extra if table.keeps_extra_columns else []

    n = len(frame)
    check = _RowChecker(n)
    for f in prior_failures:
        check.fail(f.rows, f.rule, f.column, f.message)
    typed: dict[str, pd.Series] = {}

    for col in table.columns:
        if col.required:
            present = _text(frame[col.name]).notna().to_numpy()
            check.fail(~present, "missing_value", col.name, f"column '{col.name}' is required")

    key = _text(frame[table.key])
    dup = key.notna() & key.duplicated(keep="first")
    check.fail(dup.to_numpy(), "duplicate_id", table.key, f"{table.key} repeats an earlier row")

    for col in table.columns:
        if col.name not in frame.columns:
            typed[col.name] = _empty_typed(col, n)
            continue
        typed[col.name] = _check_column(col, frame[col.name], check, window)

    attribute_types: dict[str, str] = {}
    stored = stored_attribute_types or {}
    for name in attributes:
        values = frame[name]
        kind = stored.get(name) or ("numeric" if is_numeric_column(values) else "text")
        attribute_types[name] = kind
        if kind == "numeric":
            nums = _numbers(values)
            present = _text(values).notna().to_numpy()
            bad = present & ~np.isfinite(nums.to_numpy(dtype="float64", na_value=np.nan))
            check.fail(bad, "bad_number", name, f"attribute '{name}' holds numbers")
            typed[name] = nums
        else:
            typed[name] = _text(values)

    if table.name == LEADS.name:
        _check_lead_outcomes(typed, check)
    if known_lead_ids is not None and "lead_id" in typed and table.key != "lead_id":
        unknown = typed["lead_id"].notna() & ~typed["lead_id"].isin(known_lead_ids)
        check.fail(unknown.to_numpy(), "unknown_lead", "lead_id", "no such lead")

    failed = check.failed
    valid = pd.DataFrame(typed, index=frame.index)[~failed].reset_index(drop=True)
    quarantine = _quarantine_frame(frame, check, failed)
    return TableResult(
        table=table.name,
        source=source,
        rows_read=n,
        valid=valid,
        quarantine=quarantine,
        dropped_personal=dropped,
        kept_personal_named=kept,
        masked_free_text=masked,
        ignored_columns=ignored,
        attribute_columns=attribute_types,
    )


def _personal_columns(frame: pd.DataFrame, contract_names: set[str], personal: tuple[str, ...],
                      keep_columns: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The columns to drop as personal data, and those kept despite the name (-> why)."""
    keep = {normalise_column_name(k) for k in keep_columns}
    kept: dict[str, str] = {}
    dropped = []
    for c in frame.columns:
        if c in contract_names or not is_personal_column(c, personal):
            continue
        if c in keep:
            kept[c] = "ingest.keep_columns"
        elif _yes_no(frame[c]):
            kept[c] = "yes/no values"
        else:
            dropped.append(c)
    return dropped, kept


YES_NO = frozenset({"yes", "no", "y", "n", "true", "false", "t", "f", "0", "1"})


def _yes_no(values: pd.Series) -> bool:
    """True when every non-empty value is a yes/no flag (and there is at least one)."""
    text = values.astype("string").str.strip().str.lower()
    seen = set(text[text.notna() & text.ne("")].unique())
    return bool(seen) and seen <= YES_NO


def _empty_typed(col: Column, n: int) -> pd.Series:
    if col.kind == "timestamp":
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[us]")
    if col.kind == "amount":
        return pd.Series(np.nan, index=range(n), dtype="float64")
    return pd.Series(col.default, index=range(n), dtype="string")


def _check_column(col: Column, values: pd.Series, check: _RowChecker,
                  window: DateWindow) -> pd.Series:
    present = _text(values).notna().to_numpy()
    if col.kind == "timestamp":
        parsed = parse_timestamps(values)
        bad = present & parsed.isna().to_numpy()
        check.fail(bad, "bad_timestamp", col.name, f"column '{col.name}' is not ISO-8601")
        latest = window.latest()
        outside = (parsed.notna() & ((parsed < window.earliest) | (parsed > latest))).to_numpy()
        check.fail(outside, "implausible_date", col.name,
                   f"column '{col.name}' is before {window.earliest:%Y-%m-%d} or after "
                   f"{latest:%Y-%m-%d %H:%M} (ingest.earliest_date, ingest.max_days_ahead)")
        return parsed
    if col.kind == "amount":
        nums = _numbers(values)
        finite = np.isfinite(nums.to_numpy(dtype="float64", na_value=np.nan))
        check.fail(present & ~finite, "bad_number", col.name, f"column '{col.name}' not a number")
        check.fail(present & finite & (nums.to_numpy() < 0), "negative_amount", col.name,
                   f"column '{col.name}' must be >= 0")
        return nums
    text = _text(values)
    if col.kind == "choice":
        text = text.str.lower()
        allowed = text.isin(col.choices).to_numpy(dtype=bool, na_value=False)
        check.fail(present & ~allowed, "not_allowed_value", col.name,
                   f"column '{col.name}' allows only: {', '.join(col.choices)}")
        if col.default is not None:
            text = text.fillna(col.default)
    return text


def _check_lead_outcomes(typed: dict[str, pd.Series], check: _RowChecker) -> None:
    created = typed["created_at"]
    won, lost = typed["converted_at"], typed["closed_lost_at"]
    both = (won.notna() & lost.notna()).to_numpy()
    check.fail(both, "both_outcomes", "converted_at", "a lead is either converted or lost")
    for name, ts in (("converted_at", won), ("closed_lost_at", lost)):
        early = (ts.notna() & created.notna() & (ts < created)).to_numpy()
        check.fail(early, "outcome_before_created", name, f"'{name}' is before 'created_at'")


def _quarantine_frame(frame: pd.DataFrame, check: _RowChecker, failed: np.ndarray) -> pd.DataFrame:
    rows = np.flatnonzero(failed)
    head = pd.DataFrame(
        {
            "row": rows + 1,
            "column": check.column[rows],
            "rule": check.rule[rows],
            "message": check.message[rows],
        }
    )
    values = frame.iloc[rows].reset_index(drop=True).astype("string")
    values.columns = [f"value_{c}" for c in values.columns]
    return pd.concat([head, values], axis=1)


def describe_row_error(result: TableResult, position: int) -> str:
    """One quarantined row as a user-facing line: file, row, column, rule, message."""
    q = result.quarantine.iloc[position]
    return (
        f"{result.source}: row {q['row']}, column '{q['column']}': "
        f"{q['rule']} ({q['message']})"
    )
