"""Personal data inside free text: email addresses and phone numbers masked before storage.

Used at ingestion (`ingest.validation`) and on leads described in a request (`serving`). A
column named for personal data is dropped whole (`core.contract.is_personal_column`); this
catches what hides in other columns, such as an email address typed into `notes`. Every text
value outside the id and date columns is scanned before validation, so neither the warehouse nor
a quarantine file (nor anything built from them: model vocabularies, MLflow artifacts, reports,
answers) can hold the original. Counted per column in the ingest summary.

Phone numbers are recognised when written as phone numbers: a leading `+`, an area code in
brackets, or three groups of digits split by spaces, dots or dashes (`+44 20 7946 0958`,
`(555) 013-2468`, `020 7946 0958`). A bare run of digits is left alone: it is more often an id,
an amount or a count than a phone number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}"
    r"|\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]\d{3,4}"
    r"|\d{2,5}[\s.-]\d{3,4}[\s.-]\d{3,4})(?![\w])")
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
_HINT = re.compile(r"@|\d[\s.)-]")


def mask_text(value: str) -> str:
    """One text value with its email addresses and phone numbers masked."""
    if not _HINT.search(value):
        return value
    return PHONE.sub(PHONE_MASK, EMAIL.sub(EMAIL_MASK, value))


def mask_fields(record: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """A copy of `record` with the text values of `fields` masked (`mask_text`): a lead
    described in a request is masked like an ingested one, so an answer never echoes it."""
    out = dict(record)
    for f in fields:
        v = out.get(f)
        if isinstance(v, str):
            out[f] = mask_text(v)
    return out


def mask_free_text(frame: pd.DataFrame, skip: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """`frame` with email addresses and phone numbers in its text columns (all but `skip`)
    replaced by `[email]` and `[phone]`, and the number of values masked per column."""
    out = frame
    counts: dict[str, int] = {}
    for col in frame.columns:
        if col in skip:
            continue
        values = frame[col]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.astype("string")
        maybe = text.str.contains(_HINT, na=False)
        if not maybe.any():
            continue
        part = text[maybe]
        masked = part.str.replace(EMAIL, EMAIL_MASK, regex=True).str.replace(
            PHONE, PHONE_MASK, regex=True)
        changed = masked != part
        if changed.any():
            if out is frame:
                out = frame.copy()
            out.loc[changed[changed].index, col] = masked[changed]
            counts[col] = int(changed.sum())
    return out, counts
