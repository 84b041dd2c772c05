"""Export files: CSV, gzipped CSV and Parquet; a broken file is named, not half-read."""

from __future__ import annotations

import gzip

import pytest

from ingest.readers import read_table_file
from ingest.validation import ContractError

CSV = "lead_id;created_at\nL1;2025-01-01\nL2;2025-01-02\n"


def test_gzipped_csv_reads_like_the_plain_file(tmp_path):
    plain = tmp_path / "leads.csv"
    plain.write_text(CSV, encoding="utf-8")
    packed = tmp_path / "leads.csv.gz"
    packed.write_bytes(gzip.compress(CSV.encode()))
    a, b = read_table_file(plain), read_table_file(packed)
    assert list(b.columns) == ["lead_id", "created_at"] and len(b) == 2
    assert a.equals(b)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    bad = tmp_path / "leads.csv.gz"
    bad.write_bytes(gzip.compress((CSV * 2000).encode())[:200])
    with pytest.raises(ContractError, match=r"leads\.csv\.gz: cannot read the file"):
        read_table_file(bad)


def test_unknown_type_names_what_works(tmp_path):
    odd = tmp_path / "leads.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(ContractError, match=r"use \.csv, \.csv\.gz or \.parquet"):
        read_table_file(odd)
