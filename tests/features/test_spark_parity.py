"""The feature SQL on Apache Spark (local mode) equals the warehouse's, feature by feature.

Needs Java 17: without it these tests fail with how to install it (they are not skipped)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import EngagementConfig, IngestConfig, SimulateConfig, SparkConfig
from core.spark_session import spark_session
from core.warehouse import Warehouse
from features.engagement import batch_features, select_pairs
from features.spark_engine import open_pairs, spark_features
from ingest.load import ingest_frames
from ingest.spark_tables import SparkInputError, read_tables
from leadlens.simulator.crm import simulate_crm
from tests.features.test_parity import _random_pairs

CFG = EngagementConfig()
INGEST = IngestConfig()


def assert_same_frames(duck: pd.DataFrame, spark: pd.DataFrame, key: list[str]) -> None:
    """Every column equal: numbers to a relative 1e-9 with the same nulls, text exactly."""
    assert list(duck.columns) == list(spark.columns)
    a = duck.sort_values(key).reset_index(drop=True)
    b = spark.sort_values(key).reset_index(drop=True)
    assert len(a) == len(b)
    wrong = []
    for col in a.columns:
        if pd.api.types.is_float_dtype(a[col]):
            x, y = a[col].to_numpy(float), b[col].to_numpy(float)
            same_null = np.isnan(x) == np.isnan(y)
            close = np.isclose(x, y, rtol=1e-9, atol=0) | np.isnan(x)
            if not (same_null.all() and close.all()):
                wrong.append((col, int((~same_null).sum()), int((~close).sum())))
        else:
            left = a[col].astype(object).where(a[col].notna(), None).astype(str).tolist()
            right = b[col].astype(object).where(b[col].notna(), None).astype(str).tolist()
            if left != right:
                wrong.append((col, "differs", sum(u != v for u, v in zip(left, right, strict=True))))
    assert not wrong, f"columns that differ (column, null mismatches, value mismatches): {wrong}"


@pytest.fixture(scope="module")
def spark():
    return spark_session(SparkConfig(master="local[2]", shuffle_partitions=4,
                                     driver_memory="1g"))


@pytest.fixture(scope="module")
def crm_both(tmp_path_factory):
    """One messy CRM export, ingested into a real warehouse by `leadlens ingest`'s rules and
    written as contract files for Spark (leads as Parquet, activities as CSV): stray spaces and
    capitals, a missing direction, a repeated lead id, a lead both won and lost, a date in
    2099, a text that is not a timestamp, an unknown lead, a choice outside the contract, a
    number column with one word in it, a personal column, a personal-looking yes/no flag, an
    email address in free text and a quoted line break in a CSV field."""
    crm = simulate_crm(SimulateConfig(leads=1500, reps=10, months=10, seed=8))
    leads = crm.leads.assign(contact_email="someone@example.com",
                             do_not_email=np.where(np.arange(len(crm.leads)) % 3, "no", "yes"),
                             notes=np.where(np.arange(len(crm.leads)) % 7 == 0,
                                            "write to a.buyer@example.com", "met at the fair"))
    leads["industry"] = "  " + leads["industry"].astype(str) + " "
    leads["company_size"] = leads["company_size"].astype(object)
    leads.loc[4, "company_size"] = "n/a"  # kept aside: a number column
    both = leads.index[leads["converted_at"].notna()][0]
    leads.loc[both, "closed_lost_at"] = leads.loc[both, "converted_at"]  # won and lost
    twice = leads.iloc[[9]].assign(source="event")  # the same id again: the first wins
    leads = pd.concat([leads, twice], ignore_index=True)
    acts = crm.activities.copy()
    acts["occurred_at"] = pd.to_datetime(acts["occurred_at"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    acts.loc[acts.index[::50], "type"] = " Call "
    acts.loc[acts.index[3::70], "direction"] = None
    acts.loc[acts.index[5::90], "outcome"] = "no answer,\nleft a message"
    lead = leads["lead_id"].iat[20]
    bad = pd.DataFrame([
        {"activity_id": "BAD-TIME", "lead_id": lead, "occurred_at": "yesterday", "type": "call",
         "direction": "outbound"},
        {"activity_id": "BAD-LEAD", "lead_id": "NO-SUCH-LEAD",
         "occurred_at": "2025-01-02T10:00:00Z", "type": "call", "direction": "outbound"},
        {"activity_id": "BAD-TYPE", "lead_id": lead, "occurred_at": "2025-01-02T10:00:00+02:00",
         "type": "fax", "direction": "outbound"},
        {"activity_id": "BAD-DATE", "lead_id": lead, "occurred_at": "2099-01-02T10:00:00Z",
         "type": "call", "direction": "outbound"}])
    acts = pd.concat([acts, bad], ignore_index=True)
    home = tmp_path_factory.mktemp("spark-home")
    wh = Warehouse(home / "warehouse.duckdb")
    wh.open()
    ingest_frames(wh, INGEST, home / "q", {"reps": crm.reps, "leads": leads, "activities": acts})
    data = home / "export"
    data.mkdir()
    as_text = leads["company_size"].map(lambda v: None if pd.isna(v) else str(v))
    leads.assign(company_size=as_text).to_parquet(data / "leads.parquet", index=False)
    acts.to_csv(data / "activities.csv", index=False)
    yield wh, data, leads["lead_id"].iat[both]
    wh.close()


def _runtime(home, spark_cfg: SparkConfig):
    from core.settings import Runtime, Settings

    return Runtime(Settings(spark=spark_cfg), home, None)


LOCAL = SparkConfig(master="local[2]", shuffle_partitions=4, driver_memory="1g")


def test_every_feature_equals_the_warehouses_on_random_pairs(spark, crm_both):
    wh, data, _ = crm_both
    tables = read_tables(spark, str(data), INGEST)
    # typed and kept as `leadlens ingest` keeps them: personal column dropped, the yes/no flag
    # and free text kept (masked), a number column numeric despite one word
    assert tables.attributes == wh.attribute_types()
    assert "contact_email" not in tables.leads.columns
    notes = {r["notes"] for r in tables.leads.select("notes").distinct().collect()}
    assert notes == {"write to [email]", "met at the fair"}
    tables.register()
    pairs = _random_pairs(wh, 600, seed=3)
    duck = batch_features(wh.con, pairs, CFG, list(wh.attribute_types()))
    given = spark.createDataFrame(pairs.assign(pair_id=range(len(pairs)))).selectExpr(
        "CAST(pair_id AS BIGINT) AS pair_id", "lead_id", "CAST(as_of AS TIMESTAMP_NTZ) AS as_of")
    computed = spark_features(spark, tables.attributes, given, CFG).toPandas()
    computed["as_of"] = pd.to_datetime(computed["as_of"]).astype("datetime64[us]")
    key = ["lead_id", "as_of"]
    duck, computed = duck.drop_duplicates(key), computed.drop_duplicates(key)
    assert len(duck) > 500
    assert_same_frames(duck, computed[duck.columns], key)


def test_the_open_book_on_spark_equals_the_warehouses_and_bad_rows_are_kept_aside(
        crm_both, tmp_path):
    from leadlens.jobs.spark_jobs import features_job

    wh, data, both = crm_both
    as_of = pd.Timestamp("2025-06-15T12:00:00")
    out = tmp_path / "features"
    run = features_job(_runtime(tmp_path, LOCAL), str(data), as_of, "open", str(out),
                       say=lambda _m: None)
    on_spark = pd.read_parquet(out)
    duck = batch_features(wh.con, select_pairs(wh.con, as_of, "open"), CFG,
                          list(wh.attribute_types()))
    on_spark["as_of"] = on_spark["as_of"].astype("datetime64[us]")
    assert run.rows == len(duck) > 100
    assert_same_frames(duck, on_spark[duck.columns], ["lead_id"])
    # the rows that cannot be used are counted with their reason and kept beside the output
    kept = pd.read_parquet(run.rejected_at)
    assert set(kept.columns) == {"table", "row_id", "reason"}  # the reason, no other values
    by_id = dict(zip(kept["row_id"], kept["reason"], strict=False))
    assert by_id["BAD-TIME"] == "column 'occurred_at': not ISO-8601"
    assert by_id["BAD-LEAD"] == "column 'lead_id': no such lead"
    assert by_id["BAD-TYPE"].startswith("column 'type': allows only call, email")
    assert by_id["BAD-DATE"].startswith("column 'occurred_at': before 1990-01-01 or after")
    assert by_id[both] == "column 'converted_at': a lead is either converted or lost"
    assert kept.loc[kept["table"] == "leads", "reason"].tolist().count(
        "column 'lead_id': repeats an earlier row") == 1
    assert "column 'company_size': attribute 'company_size' holds numbers" in set(kept["reason"])
    assert sum(run.rejected.values()) == len(kept)


def test_a_missing_required_column_is_named(spark, tmp_path):
    pd.DataFrame({"Lead ID": ["L1"], "source": ["web"]}).to_parquet(tmp_path / "leads.parquet")
    pd.DataFrame({"activity_id": ["A1"]}).to_parquet(tmp_path / "activities.parquet")
    with pytest.raises(SparkInputError, match="leads: required column 'created_at' is missing"):
        read_tables(spark, str(tmp_path), INGEST)


def test_open_pairs_keep_the_leads_open_at_as_of(spark, crm_both):
    wh, data, _ = crm_both
    read_tables(spark, str(data), INGEST).register()
    as_of = pd.Timestamp("2025-03-01")
    ids = sorted(r["lead_id"] for r in open_pairs(spark, as_of).select("lead_id").collect())
    assert ids == select_pairs(wh.con, as_of, "open")["lead_id"].tolist()


def test_spark_submit_runs_the_cli_as_a_spark_application(crm_both, tmp_path):
    """`spark-submit leadlens/spark_main.py features --engine spark ...`: the master comes from
    spark-submit; the output is the same open book."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pyspark

    wh, data, _ = crm_both
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    entry = Path(__file__).resolve().parents[2] / "leadlens" / "spark_main.py"
    out = tmp_path / "submitted"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "LEADLENS_HOME": str(tmp_path)}
    env.pop("LEADLENS_CONFIG", None)
    done = subprocess.run([str(submit), "--master", "local[2]", "--driver-memory", "1g",
                           "--conf", "spark.sql.session.timeZone=UTC", str(entry), "features",
                           "--engine", "spark", "--data", str(data), "--as-of",
                           "2025-06-15T12:00:00", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = len(select_pairs(wh.con, pd.Timestamp("2025-06-15T12:00:00"), "open"))
    assert f"{expected:,} open leads as of 2025-06-15 12:00:00" in done.stdout
    assert "rows kept aside (not used)" in done.stdout
    assert len(pd.read_parquet(out)) == expected
