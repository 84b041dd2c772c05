from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.settings import IngestConfig
from ingest.load import IngestError, format_summary, ingest_files
from tests.conftest import ACTIVITIES_CSV, LEADS_CSV, REPS_CSV, write

LENIENT = IngestConfig(max_quarantine_share=1.0)
LEAD_HEADER = LEADS_CSV.splitlines()[0]
ACT_HEADER = ACTIVITIES_CSV.splitlines()[0]


def _ingest(wh, tmp_path: Path, config: IngestConfig = LENIENT, **texts: str):
    paths = {name: write(tmp_path / f"{name}.csv", text) for name, text in texts.items()}
    return ingest_files(wh, config, tmp_path / "quarantine", **paths)


def test_clean_export_loads_every_row_with_exact_accounting(warehouse, tmp_path, crm_files):
    s = ingest_files(warehouse, IngestConfig(), tmp_path / "q", **crm_files)
    for name, expected in (("reps", 2), ("leads", 3), ("activities", 4)):
        r = s.results[name]
        assert r.rows_read == expected
        assert len(r.valid) + r.rows_quarantined == r.rows_read
        assert warehouse.count(name) == expected
        assert s.loaded[name].inserted == expected
    assert s.quarantine_files == {}


def test_timestamps_are_stored_in_utc(warehouse, tmp_path, crm_files):
    ingest_files(warehouse, IngestConfig(), tmp_path / "q", **crm_files)
    got = dict(warehouse.con.execute("SELECT lead_id, created_at FROM leads").fetchall())
    assert got["L1"] == pd.Timestamp("2025-01-01 00:00:00")  # a date alone means midnight
    assert got["L2"] == pd.Timestamp("2025-01-02 07:00:00")  # +02:00 converted to UTC
    assert got["L3"] == pd.Timestamp("2025-01-03 08:30:00")  # no offset is taken as UTC


def test_direction_defaults_to_outbound_and_choices_are_case_insensitive(warehouse, tmp_path):
    acts = ACT_HEADER + "\nA9,L1,R1,2025-01-02,CALL,,,\n"
    _ingest(warehouse, tmp_path, leads=LEADS_CSV, activities=acts)
    row = warehouse.con.execute("SELECT type, direction FROM activities").fetchone()
    assert row == ("call", "outbound")


def test_personal_data_columns_are_dropped_everywhere(warehouse, tmp_path):
    leads = LEAD_HEADER + ",Phone Number\n" + "L1,2025-01-01,R1,web,,,,x,5,a@example.com,555\n"
    leads += "L2,not-a-date,R1,web,,,,x,5,b@example.com,556\n"
    s = _ingest(warehouse, tmp_path, leads=leads)
    assert s.results["leads"].dropped_personal == ["email", "phone_number"]
    cols = warehouse.columns("leads")
    assert "email" not in cols and "phone_number" not in cols
    assert {"industry", "company_size"} <= set(cols)
    quarantine = s.quarantine_files["leads"].read_text()
    assert "example.com" not in quarantine and "556" not in quarantine
    assert ("dropped as personal data (by name, ingest.personal_data_columns): email, "
            "phone_number") in format_summary(s)


def test_a_consent_flag_is_not_personal_data_and_keep_columns_overrides(warehouse, tmp_path):
    leads = (LEAD_HEADER + ",Do Not Email,Phone Verified,Mobile Carrier\n"
             + "L1,2025-01-01,R1,web,,,,x,5,a@example.com,Yes,1,acme\n"
             + "L2,2025-01-02,R1,web,,,,x,5,b@example.com,No,0,bell\n")
    s = _ingest(warehouse, tmp_path, leads=leads)
    r = s.results["leads"]
    assert r.dropped_personal == ["email", "mobile_carrier"]
    assert r.kept_personal_named == {"do_not_email": "yes/no values",
                                     "phone_verified": "yes/no values"}
    assert {"do_not_email", "phone_verified"} <= set(warehouse.columns("leads"))
    assert ("kept although the name looks personal: do_not_email (yes/no values), "
            "phone_verified (yes/no values)") in format_summary(s)
    kept = _ingest(warehouse, tmp_path, leads=leads,
                   config=IngestConfig(keep_columns=("Mobile Carrier",)))
    assert kept.results["leads"].kept_personal_named["mobile_carrier"] == "ingest.keep_columns"
    assert "mobile_carrier" in warehouse.columns("leads")


@pytest.mark.parametrize(
    ("table", "row", "rule", "column"),
    [
        ("leads", ",2025-01-05,R1,web,,,,x,5,e", "missing_value", "lead_id"),
        ("leads", "L9,,R1,web,,,,x,5,e", "missing_value", "created_at"),
        ("leads", "L1,2025-01-05,R1,web,,,,x,5,e", "duplicate_id", "lead_id"),
        ("leads", "L9,05/01/2025,R1,web,,,,x,5,e", "bad_timestamp", "created_at"),
        ("leads", "L9,2025-01-05,R1,web,2025-13-01,,,x,5,e", "bad_timestamp", "converted_at"),
        ("leads", "L9,1900-01-05,R1,web,,,,x,5,e", "implausible_date", "created_at"),
        ("leads", "L9,9999-01-05,R1,web,,,,x,5,e", "implausible_date", "created_at"),
        ("activities", "A9,L1,R1,2999-01-05,call,outbound,,", "implausible_date", "occurred_at"),
        ("leads", "L9,2025-01-05,R1,web,2025-02-01,,abc,x,5,e", "bad_number", "deal_amount"),
        ("leads", "L9,2025-01-05,R1,web,2025-02-01,,inf,x,5,e", "bad_number", "deal_amount"),
        ("leads", "L9,2025-01-05,R1,web,2025-02-01,,-5,x,5,e", "negative_amount", "deal_amount"),
        ("leads", "L9,2025-01-05,R1,web,2025-02-01,2025-02-02,,x,5,e", "both_outcomes",
         "converted_at"),
        ("leads", "L9,2025-01-05,R1,web,,2025-01-04,,x,5,e", "outcome_before_created",
         "closed_lost_at"),
        ("activities", "A9,L1,R1,2025-01-05,fax,outbound,,", "not_allowed_value", "type"),
        ("activities", "A9,L1,R1,2025-01-05,call,sideways,,", "not_allowed_value", "direction"),
        ("activities", "A9,L1,R1,2025-01-05,,outbound,,", "missing_value", "type"),
        ("activities", "A9,L404,R1,2025-01-05,call,outbound,,", "unknown_lead", "lead_id"),
        ("activities", "A1,L1,R1,2025-01-05,call,outbound,,", "duplicate_id", "activity_id"),
        ("activities", "A9,L1,R1,2025-01-05,proposal,outbound,,-1", "negative_amount", "amount"),
        ("reps", "R9,east,2023-01-01,-100", "negative_amount", "monthly_quota"),
        ("reps", "R1,east,2023-01-01,100", "duplicate_id", "rep_id"),
    ],
)
def test_each_rule_quarantines_the_bad_row_and_keeps_the_rest(
    warehouse, tmp_path, table, row, rule, column
):
    texts = {"reps": REPS_CSV, "leads": LEADS_CSV, "activities": ACTIVITIES_CSV}
    texts[table] = texts[table].rstrip("\n") + "\n" + row + "\n"
    s = _ingest(warehouse, tmp_path, **texts)
    r = s.results[table]
    good_rows = len(texts[table].strip().splitlines()) - 2
    assert r.rows_read == good_rows + 1
    assert r.rows_quarantined == 1
    assert warehouse.count(table) == good_rows
    q = pd.read_csv(s.quarantine_files[table])
    assert q.loc[0, "row"] == good_rows + 1  # rows are counted from 1, header excluded
    assert q.loc[0, "rule"] == rule
    assert q.loc[0, "column"] == column
    assert r.quarantined_by_rule == {rule: 1}


def test_the_plausible_date_window_is_configurable(warehouse, tmp_path):
    """`ingest.earliest_date` moves the window: a 2025 lead is refused when 2025-01-03 is the
    earliest believable date, and the message names the setting."""
    config = IngestConfig(max_quarantine_share=1.0, earliest_date="2025-01-03")
    s = _ingest(warehouse, tmp_path, config, reps=REPS_CSV, leads=LEADS_CSV)
    r = s.results["leads"]
    assert r.quarantined_by_rule == {"implausible_date": 2}  # L1 and L2 are earlier
    q = pd.read_csv(s.quarantine_files["leads"])
    assert "ingest.earliest_date" in q.loc[0, "message"]


def test_duplicate_keeps_the_first_row(warehouse, tmp_path):
    leads = LEAD_HEADER + "\nL1,2025-01-01,R1,web,,,,first,5,e\nL1,2025-01-01,R1,web,,,,second,5,e\n"
    _ingest(warehouse, tmp_path, leads=leads)
    assert warehouse.con.execute("SELECT industry FROM leads").fetchall() == [("first",)]


def test_allowed_values_are_listed_and_submitted_values_never_echoed(warehouse, tmp_path):
    acts = ACT_HEADER + "\nA9,L1,R1,2025-01-05,carrier-pigeon,outbound,,\n"
    s = _ingest(warehouse, tmp_path, leads=LEADS_CSV, activities=acts)
    message = pd.read_csv(s.quarantine_files["activities"]).loc[0, "message"]
    assert "call, email, meeting, proposal, other" in message
    assert "carrier-pigeon" not in message


def test_activity_may_refer_to_a_lead_stored_by_an_earlier_ingest(warehouse, tmp_path):
    _ingest(warehouse, tmp_path, leads=LEADS_CSV)
    s = _ingest(warehouse, tmp_path, activities=ACTIVITIES_CSV)
    assert s.results["activities"].rows_quarantined == 0
    assert warehouse.count("activities") == 4


def test_activities_of_a_quarantined_lead_are_quarantined_too(warehouse, tmp_path):
    leads = LEAD_HEADER + "\nL1,yesterday,R1,web,,,,x,5,e\n"
    acts = ACT_HEADER + "\nA1,L1,R1,2025-01-02,call,outbound,,\n"
    s = _ingest(warehouse, tmp_path, leads=leads, activities=acts)
    assert s.results["activities"].quarantined_by_rule == {"unknown_lead": 1}


def test_reingest_updates_rows_and_never_duplicates(warehouse, tmp_path):
    _ingest(warehouse, tmp_path, leads=LEADS_CSV)
    changed = LEADS_CSV.replace("L3,2025-01-03 08:30:00,R2,event,,2025-03-01",
                                "L3,2025-01-03 08:30:00,R1,event,,2025-03-01")
    changed += "L4,2025-02-01,R2,web,,,,retail,9,d@example.com\n"
    s = _ingest(warehouse, tmp_path, leads=changed)
    assert (s.loaded["leads"].inserted, s.loaded["leads"].updated) == (1, 3)
    assert warehouse.count("leads") == 4
    owner = warehouse.con.execute("SELECT owner_rep_id FROM leads WHERE lead_id='L3'").fetchone()
    assert owner == ("R1",)


def test_too_many_bad_rows_fails_and_loads_nothing(warehouse, tmp_path):
    bad = LEAD_HEADER + "\n" + "\n".join(f"L{i},bad-date,R1,web,,,,x,5,e" for i in range(5))
    good = "\n".join(f"M{i},2025-01-01,R1,web,,,,x,5,e" for i in range(20))
    with pytest.raises(IngestError) as err:
        _ingest(warehouse, tmp_path, config=IngestConfig(max_quarantine_share=0.05),
                reps=REPS_CSV, leads=bad + "\n" + good + "\n")
    msg = str(err.value)
    assert "leads.csv" in msg and "5 of 25" in msg and "nothing was loaded" in msg
    assert "row 1, column 'created_at': bad_timestamp" in msg
    assert warehouse.count("leads") == 0
    assert warehouse.count("reps") == 0  # the valid reps file is not loaded either


def test_missing_required_column_fails_naming_file_and_column(warehouse, tmp_path):
    with pytest.raises(IngestError, match=r"activities\.csv: required column\(s\) missing: type"):
        _ingest(warehouse, tmp_path, leads=LEADS_CSV,
                activities=ACTIVITIES_CSV.replace(",type,", ",kind,"))
    assert warehouse.count("leads") == 0


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("leads.csv", b"", "empty"),
        ("leads.csv", b"\xff\xfe\x00garbage\x00\xff", "cannot read"),
        ("leads.xlsx", b"lead_id\n", "unknown file type"),
        ("leads.parquet", b"not parquet at all", "cannot read"),
    ],
)
def test_unreadable_file_fails_and_loads_nothing(warehouse, tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    reps = write(tmp_path / "reps.csv", REPS_CSV)
    with pytest.raises(IngestError, match=expected):
        ingest_files(warehouse, IngestConfig(), tmp_path / "q", leads=path, reps=reps)
    assert warehouse.count("reps") == 0


def test_missing_file_is_named(warehouse, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        ingest_files(warehouse, IngestConfig(), tmp_path / "q", leads=tmp_path / "nope.csv")


def test_parquet_and_semicolon_csv_are_read(warehouse, tmp_path):
    leads = pd.DataFrame(
        {
            "lead_id": ["P1", "P2"],
            "created_at": pd.to_datetime(["2025-01-01T12:00:00+01:00", "2025-01-02T00:00:00Z"], utc=True),
            "company_size": [10, 20],
        }
    )
    leads.to_parquet(tmp_path / "leads.parquet")
    acts = ACT_HEADER.replace(",", ";") + "\r\nA1;P1;R1;2025-01-02;call;outbound;\"left; msg\";\r\n"
    write(tmp_path / "acts.csv", acts)
    s = ingest_files(warehouse, IngestConfig(), tmp_path / "q",
                     leads=tmp_path / "leads.parquet", activities=tmp_path / "acts.csv")
    assert s.results["activities"].rows_quarantined == 0
    got = dict(warehouse.con.execute("SELECT lead_id, created_at FROM leads").fetchall())
    assert got["P1"] == pd.Timestamp("2025-01-01 11:00:00")
    assert warehouse.con.execute("SELECT outcome FROM activities").fetchone() == ("left; msg",)
    assert warehouse.attribute_types() == {"company_size": "numeric"}


def test_summary_reports_read_loaded_and_quarantined_per_rule(warehouse, tmp_path):
    acts = ACTIVITIES_CSV + "A8,L1,R1,2025-01-05,fax,,,\nA9,L404,R1,2025-01-05,call,,,\n"
    s = _ingest(warehouse, tmp_path, leads=LEADS_CSV, activities=acts)
    text = format_summary(s)
    assert "activities  read         6  loaded         4" in text
    assert "not_allowed_value: 1" in text and "unknown_lead: 1" in text
    assert str(s.quarantine_files["activities"]) in text


def test_numeric_attribute_rejects_text_once_stored_as_numeric(warehouse, tmp_path):
    _ingest(warehouse, tmp_path, leads=LEADS_CSV)
    assert warehouse.attribute_types()["company_size"] == "numeric"
    s = _ingest(warehouse, tmp_path, leads=LEAD_HEADER + "\nL9,2025-01-05,R1,web,,,,x,five,e\n")
    assert s.results["leads"].quarantined_by_rule == {"bad_number": 1}


def test_attribute_type_is_inferred_from_the_large_majority_of_values(warehouse, tmp_path):
    rows = [f"L{i},2025-01-05,R1,web,,,,x,{i},e" for i in range(40)] + ["L99,2025-01-05,R1,web,,,,x,n/a,e"]
    s = _ingest(warehouse, tmp_path, leads=LEAD_HEADER + "\n" + "\n".join(rows) + "\n")
    assert s.results["leads"].attribute_columns["company_size"] == "numeric"
    assert s.results["leads"].quarantined_by_rule == {"bad_number": 1}
    assert s.results["leads"].attribute_columns["industry"] == "text"
