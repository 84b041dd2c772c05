"""Reading CRM export files (CSV or Parquet, chosen by extension) into raw frames."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

from ingest.validation import ContractError

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


def sniff_separator(header_line: str) -> str:
    """`;` when the header has more semicolons than commas outside quotes, else `,`."""
    counts = {";": 0, ",": 0}
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    return ";" if counts[";"] > counts[","] else ","


def read_table_file(path: Path | str, separator: str | None = None) -> pd.DataFrame:
    """Read a CSV (every value as text) or Parquet file; unreadable files raise `ContractError`.

    CSV: UTF-8 (a byte-order mark is fine), `,` or `;` separated (or `separator`), quoted
    fields, any line ends; gzip-compressed when the name ends in `.gz` (`leads.csv.gz`).
    """
    path = Path(path)
    gzipped = path.suffix.lower() == ".gz"
    suffix = Path(path.stem).suffix.lower() if gzipped else path.suffix.lower()
    if not path.is_file():
        raise ContractError(f"{path}: no such file")
    try:
        if suffix in PARQUET_SUFFIXES and not gzipped:
            return pd.read_parquet(path)
        if suffix in CSV_SUFFIXES:
            opener = gzip.open if gzipped else open
            with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
                header = fh.readline()
            if not header.strip():
                raise ContractError(f"{path}: the file is empty (no header row)")
            return pd.read_csv(
                path,
                sep=separator or sniff_separator(header),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8-sig",
                engine="c",
                compression="gzip" if gzipped else None,
            )
    except ContractError:
        raise
    except (UnicodeDecodeError, ValueError, OSError, EOFError, pd.errors.ParserError) as err:
        raise ContractError(f"{path}: cannot read the file ({type(err).__name__}: {err})") from None
    raise ContractError(
        f"{path}: unknown file type '{suffix}'; use .csv, .csv.gz or .parquet"
    )
