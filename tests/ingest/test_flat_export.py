"""Flat exports through source mappings: the bank marketing sample, dates rebuilt from row order,
odd real-file values, and errors that name the config key and the column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from core.settings import ConfigError
from ingest.flat_export import apply_mapping
from ingest.load import IngestError, ingest_flat
from ingest.row_order_dates import reconstruct
from ingest.source_mapping import load_source_mapping, parse_source_mapping
from ingest.validation import ContractError

REPO = Path(__file__).resolve().parents[2]
BANK_MAPPING = REPO / "configs" / "sources" / "bank_marketing.yaml"
BANK_SAMPLE = REPO / "tests" / "data" / "bank_marketing" / "bank-additional-every10th.csv"


def _raw_sample() -> pd.DataFrame:
    return pd.read_csv(BANK_SAMPLE, sep=";", dtype=str, keep_default_na=False)


def test_bank_sample_ingests_whole_with_leaky_column_left_out(warehouse, ingest_config, tmp_path):
    mapping = load_source_mapping(BANK_MAPPING)
    summary = ingest_flat(warehouse, ingest_config, tmp_path / "q", BANK_SAMPLE, mapping)
    raw = _raw_sample()
    leads = summary.results["leads"]
    assert leads.rows_read == len(raw) == 4119
    assert leads.rows_quarantined == 0
    assert summary.mapping.excluded == {"leaky": ["duration"]}
    cols = warehouse.con.execute("SELECT * FROM leads LIMIT 0").df().columns
    assert "duration" not in cols and "y" not in cols
    assert {"emp_var_rate", "euribor3m", "pdays", "poutcome"} <= set(cols)
    stored = warehouse.con.execute("""
        SELECT count(converted_at) AS won, count(closed_lost_at) AS lost,
               count(pdays) AS pdays_known, count(job) AS job_known,
               count(*) FILTER (WHERE source = 'cellular') AS cellular
        FROM leads""").fetchone()
    assert stored[0] == (raw["y"] == "yes").sum()
    assert stored[1] == (raw["y"] == "no").sum()
    assert stored[2] == (raw["pdays"] != "999").sum()  # 999 = never contacted -> missing
    assert stored[3] == (raw["job"] != "unknown").sum()  # 'unknown' -> missing everywhere
    assert stored[4] == (raw["contact"] == "cellular").sum()
    # the rebuilt creation times keep the file's order and the rows' weekdays
    got = warehouse.con.execute("""
        SELECT CAST(substr(lead_id, 6) AS INTEGER) AS n, created_at, day_of_week, month,
               converted_at, closed_lost_at
        FROM leads ORDER BY n""").df()
    assert got["created_at"].is_monotonic_increasing
    assert (got["created_at"].dt.strftime("%a").str.lower() == got["day_of_week"]).all()
    assert (got["created_at"].dt.strftime("%b").str.lower() == got["month"]).all()
    assert got["created_at"].iloc[0].year == 2008 and got["created_at"].iloc[-1].year == 2010
    outcome = got["converted_at"].fillna(got["closed_lost_at"])
    assert ((outcome - got["created_at"]) == pd.Timedelta(days=1)).all()


def test_row_order_dates_roll_the_year_and_place_weekday_runs():
    months = pd.Series(["nov", "nov", "nov", "dec", "mar", "mar"])
    weekdays = pd.Series(["mon", "mon", "wed", "tue", "fri", "mon"])
    times, notes = reconstruct(months, 2008, weekdays, 9, 17)
    assert notes == []
    assert [t.date().isoformat() for t in times] == [
        "2008-11-03", "2008-11-03", "2008-11-05", "2008-12-02", "2009-03-06", "2009-03-09"]
    # two rows on one day are spread over the working hours, in order
    assert times[0] == pd.Timestamp("2008-11-03 11:00") and times[1] == pd.Timestamp(
        "2008-11-03 15:00")


def test_row_order_dates_fall_back_when_weekdays_overflow_the_month():
    # five Mondays cannot fit in February 2010: spread evenly instead, and say so
    months = pd.Series(["feb"] * 10)
    weekdays = pd.Series(["mon", "sun"] * 5)
    times, notes = reconstruct(months, 2010, weekdays)
    assert len(notes) == 1 and "2010-02" in notes[0]
    assert times.is_monotonic_increasing
    assert times.min() >= pd.Timestamp("2010-02-01") and times.max() < pd.Timestamp("2010-03-01")


def test_a_shuffled_file_is_refused_not_given_made_up_dates(warehouse, ingest_config, tmp_path):
    shuffled = _raw_sample().sample(frac=1.0, random_state=3)
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, sep=";", index=False)
    with pytest.raises(IngestError) as err:
        ingest_flat(warehouse, ingest_config, tmp_path / "q", path,
                    load_source_mapping(BANK_MAPPING))
    assert "created_at.from_row_order" in str(err.value) and "'month'" in str(err.value)
    assert "not in time order" in str(err.value)


def _mapping(**overrides) -> dict:
    base = yaml.safe_load(BANK_MAPPING.read_text())
    base.update(overrides)
    return base


def test_real_file_quirks_crlf_quotes_odd_values_are_handled_or_reported(
        warehouse, ingest_config, tmp_path):
    # comma-separated, CRLF line ends, a BOM, quoted fields holding the separator, dates in a
    # day-first format, one date that does not parse, one outcome the mapping does not know,
    # one typo in a numeric column, a sentinel and an email column
    text = (
        "\ufeffCustomer ID,Created,Stage,Employees,Notes,Contact Email,Region\r\n"
        'C1,31/01/2025,Won,120,"calls, emails and a meeting",a@x.com,north\r\n'
        'C2,01/02/2025,Lost,n/a,"said ""no"" twice",b@x.com,south\r\n'
        "C3,2025-02-03,Lost,40,,c@x.com,north\r\n"
        "C4,04/02/2025,Maybe,12,,d@x.com,south\r\n"
        "C5,05/02/2025,Lost,1x2,,e@x.com,north\r\n"
        "C6,06/02/2025,,80,,f@x.com,south\r\n"
        + "".join(f"D{i},07/02/2025,Lost,{i},,g{i}@x.com,east\r\n" for i in range(40))
    )
    path = tmp_path / "crm export.csv"
    path.write_bytes(text.encode("utf-8"))
    mapping = parse_source_mapping({
        "lead_id": {"column": "Customer ID"},
        "created_at": {"column": "Created", "format": "%d/%m/%Y"},
        "outcome": {"column": "Stage", "won": ["Won"], "lost": ["Lost"], "known_after_days": 3},
        "missing": {"columns": {"Employees": ["n/a"]}},
        "exclude": {"personal": ["Contact Email"], "other": ["Notes"]},
        "rename": {"Employees": "company_size"},
    })
    summary = ingest_flat(warehouse, ingest_config.model_copy(
        update={"max_quarantine_share": 0.2}), tmp_path / "q", path, mapping)
    leads = summary.results["leads"]
    assert leads.rows_read == 46
    q = leads.quarantine.set_index("row")
    assert q.loc[3, "rule"] == "bad_timestamp" and q.loc[3, "column"] == "Created"
    assert q.loc[4, "rule"] == "unmapped_value" and q.loc[4, "column"] == "Stage"
    assert q.loc[5, "rule"] == "bad_number" and q.loc[5, "column"] == "company_size"
    assert leads.rows_quarantined == 3 and len(leads.valid) == 43
    rows = warehouse.con.execute(
        "SELECT lead_id, created_at, converted_at, closed_lost_at, company_size FROM leads "
        "ORDER BY lead_id").df().set_index("lead_id")
    assert rows.loc["C1", "created_at"] == pd.Timestamp("2025-01-31")
    assert rows.loc["C1", "converted_at"] == pd.Timestamp("2025-02-03")
    assert pd.isna(rows.loc["C2", "company_size"])  # 'n/a' is missing, not a typo
    assert pd.isna(rows.loc["C6", "converted_at"]) and pd.isna(rows.loc["C6", "closed_lost_at"])
    cols = warehouse.con.execute("SELECT * FROM leads LIMIT 0").df().columns
    assert not any("email" in c or "notes" in c for c in cols)
    assert summary.quarantine_files["leads"].exists()


def test_mapping_errors_name_the_key_and_the_column(warehouse, ingest_config, tmp_path):
    bad = parse_source_mapping(_mapping(outcome={"column": "yy", "won": ["yes"]}))
    with pytest.raises(IngestError) as err:
        ingest_flat(warehouse, ingest_config, tmp_path / "q", BANK_SAMPLE, bad)
    assert "outcome.column" in str(err.value) and "'yy'" in str(err.value)
    assert warehouse.con.execute("SELECT count(*) FROM leads").fetchone()[0] == 0

    bad = parse_source_mapping(_mapping(rename={"agee": "age_years"}))
    with pytest.raises(IngestError, match=r"rename\.agee.*'agee'"):
        ingest_flat(warehouse, ingest_config, tmp_path / "q", BANK_SAMPLE, bad)


@pytest.mark.parametrize("change, key", [
    ({"lead_id": {"column": "id", "row_number": True}}, "lead_id"),
    ({"created_at": {"from_row_order": {"month_column": "month"}}}, "first_year"),
    ({"outcome": {"column": "y", "won": []}}, "outcome.won"),
    ({"colour": "blue"}, "colour"),
    ({"read": {"separator": "#"}}, "read.separator"),
])
def test_invalid_mapping_configs_name_the_key(tmp_path, change, key):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(_mapping(**change)))
    with pytest.raises(ConfigError) as err:
        load_source_mapping(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_scoring_inputs_need_no_outcome_column():
    mapping = load_source_mapping(BANK_MAPPING)
    raw = _raw_sample().drop(columns=["y"]).head(50)
    mapped = apply_mapping(raw, mapping, "new.csv", with_outcome=False)
    assert len(mapped.frame) == 50 and not mapped.failures
    assert "converted_at" not in mapped.frame and "duration" not in mapped.frame


def test_outcomes_are_dated_from_any_iso_form_of_created_at():
    raw = pd.DataFrame({"id": ["a", "b", "c"],
                        "created": ["2024-01-05", "2024-01-05T10:00:00",
                                    "2024-01-05T10:00:00+02:00"],
                        "won": ["yes", "no", "yes"]})
    mapping = parse_source_mapping({
        "lead_id": {"column": "id"}, "created_at": {"column": "created"},
        "outcome": {"column": "won", "won": ["yes"], "lost": ["no"], "known_after_days": 1}})
    out = apply_mapping(raw, mapping, "x.csv").frame
    assert out["converted_at"].notna().tolist() == [True, False, True]
    assert out["closed_lost_at"].notna().tolist() == [False, True, False]
    assert out.loc[0, "converted_at"] == pd.Timestamp("2024-01-06")
    assert out.loc[2, "converted_at"] == pd.Timestamp("2024-01-06 08:00")  # UTC


def test_exclusions_refuse_unknown_names_support_globs_and_empty_columns_go():
    raw = pd.DataFrame({"id": ["a", "b", "c"], "created": ["2024-01-05"] * 3,
                        "won": ["yes", "no", "no"], "Lead Quality": ["High", "Low", "Low"],
                        "Asymmetrique Activity Index": ["01", "02", "03"],
                        "Asymmetrique Profile Score": ["15", "16", "17"],
                        "region": ["n", "s", "n"], "Unnamed: 9": [None, None, None]})
    base = {"lead_id": {"column": "id"}, "created_at": {"column": "created"},
            "outcome": {"column": "won", "won": ["yes"], "lost": ["no"], "known_after_days": 1}}
    # a typo in an exclusion no longer keeps the leaky column as an input
    typo = parse_source_mapping({**base, "exclude": {"leaky": ["Lead Qualty"]}})
    with pytest.raises(ContractError, match=r"exclude\.leaky.*'Lead Qualty'"):
        apply_mapping(raw, typo, "x.csv")
    nothing = parse_source_mapping({**base, "exclude": {"other": ["Asym*Rank"]}})
    with pytest.raises(ContractError, match=r"exclude\.other.*'Asym\*Rank' matches no column"):
        apply_mapping(raw, nothing, "x.csv")
    good = parse_source_mapping({**base, "exclude": {"leaky": ["Lead Quality", "Asymmetrique*"]}})
    mapped = apply_mapping(raw, good, "x.csv")
    assert mapped.excluded == {
        "leaky": ["Lead Quality", "Asymmetrique Activity Index", "Asymmetrique Profile Score"],
        "empty": ["Unnamed: 9"]}
    assert "region" in mapped.frame and "Unnamed: 9" not in mapped.frame
    assert not {"Lead Quality", "Asymmetrique Profile Score"} & set(mapped.frame.columns)
    # scoring files may lack excluded columns, and a column empty in a small batch is kept
    scored = apply_mapping(raw.drop(columns=["Lead Quality", "won"]), good, "new.csv",
                           with_outcome=False)
    assert "Unnamed: 9" in scored.frame and "empty" not in scored.excluded
