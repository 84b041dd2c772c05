"""The feature SQL on Apache Spark (local mode) equals the warehouse's, feature by feature.

Needs Java 17: without it these tests fail with how to install it (they are not skipped)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.contract import DEFAULT_PERSONAL_DATA_COLUMNS
from core.settings import EngagementConfig, IngestConfig, SimulateConfig, SparkConfig
from core.warehouse import Warehouse
from features.engagement import batch_features, select_pairs
from features.spark_engine import (
    SparkInputError,
    open_pairs,
    read_tables,
    spark_features,
    spark_session,
    write_features,
)
from ingest.load import ingest_frames
from leadlens.simulator.crm import simulate_crm
from tests.features.test_parity import _random_pairs

CFG = EngagementConfig()
PERSONAL = DEFAULT_PERSONAL_DATA_COLUMNS


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
    """One CRM in a real warehouse and as contract files: leads as Parquet, activities as CSV
    with ISO-8601 UTC text, plus rows neither engine can use and a personal column."""
    crm = simulate_crm(SimulateConfig(leads=1500, reps=10, months=10, seed=8))
    leads = crm.leads.assign(contact_email="someone@example.com")
    bad = pd.DataFrame([
        {"activity_id": "BAD-TIME", "lead_id": leads["lead_id"].iat[0], "rep_id": None,
         "occurred_at": "yesterday", "type": "call", "direction": "outbound"},
        {"activity_id": "BAD-LEAD", "lead_id": "NO-SUCH-LEAD", "rep_id": None,
         "occurred_at": "2025-01-02T10:00:00Z", "type": "call", "direction": "outbound"},
        {"activity_id": "BAD-TYPE", "lead_id": leads["lead_id"].iat[1], "rep_id": None,
         "occurred_at": "2025-01-02T10:00:00Z", "type": "fax", "direction": "outbound"}])
    acts = crm.activities.copy()
    acts["occurred_at"] = pd.to_datetime(acts["occurred_at"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    acts = pd.concat([acts, bad], ignore_index=True)
    home = tmp_path_factory.mktemp("spark-home")
    wh = Warehouse(home / "warehouse.duckdb")
    wh.open()
    ingest_frames(wh, IngestConfig(), home / "q",
                  {"reps": crm.reps, "leads": leads, "activities": acts})
    data = home / "export"
    data.mkdir()
    leads.to_parquet(data / "leads.parquet", index=False)
    acts.to_csv(data / "activities.csv", index=False)
    yield wh, data
    wh.close()


def test_every_feature_equals_the_warehouses_on_random_pairs(spark, crm_both):
    wh, data = crm_both
    tables = read_tables(spark, str(data), PERSONAL)
    assert "contact_email" not in tables.leads.columns  # personal data dropped, as at ingestion
    assert tables.attributes == wh.attribute_types()
    pairs = _random_pairs(wh, 600, seed=3)
    duck = batch_features(wh.con, pairs, CFG, list(wh.attribute_types()))
    given = spark.createDataFrame(pairs.assign(pair_id=range(len(pairs)))).selectExpr(
        "CAST(pair_id AS BIGINT) AS pair_id", "lead_id", "CAST(as_of AS TIMESTAMP_NTZ) AS as_of")
    computed = spark_features(spark, tables, given, CFG).toPandas()
    computed["as_of"] = pd.to_datetime(computed["as_of"]).astype("datetime64[us]")
    key = ["lead_id", "as_of"]
    duck, computed = duck.drop_duplicates(key), computed.drop_duplicates(key)
    assert len(duck) > 500
    assert_same_frames(duck, computed[duck.columns], key)


def test_the_open_book_on_spark_equals_the_warehouses_and_bad_rows_are_kept_aside(
        spark, crm_both, tmp_path):
    wh, data = crm_both
    as_of = pd.Timestamp("2025-06-15T12:00:00")
    out = tmp_path / "features"
    run = write_features(spark, str(data), as_of, "open", CFG, PERSONAL, (), str(out))
    on_spark = pd.read_parquet(out)
    duck = batch_features(wh.con, select_pairs(wh.con, as_of, "open"), CFG,
                          list(wh.attribute_types()))
    on_spark["as_of"] = on_spark["as_of"].astype("datetime64[us]")
    assert run.rows == len(duck) > 100
    assert_same_frames(duck, on_spark[duck.columns], ["lead_id"])
    # the rows that cannot be used are counted with their reason and kept beside the output
    assert run.rejected == {
        "activities: column 'occurred_at': not an ISO-8601 timestamp": 1,
        "activities: column 'type': not one of call, email, meeting, proposal, other": 1,
        "activities: column 'lead_id': not among the leads": 1}
    kept = pd.read_parquet(run.rejected_at).sort_values("row_id")
    assert kept["row_id"].tolist() == ["BAD-LEAD", "BAD-TIME", "BAD-TYPE"]
    assert set(kept.columns) == {"table", "row_id", "reason"}  # the reason, no other values


def test_a_missing_required_column_is_named(spark, tmp_path):
    pd.DataFrame({"lead_id": ["L1"], "source": ["web"]}).to_parquet(tmp_path / "leads.parquet")
    pd.DataFrame({"activity_id": ["A1"]}).to_parquet(tmp_path / "activities.parquet")
    with pytest.raises(SparkInputError, match="leads: required column 'created_at' is missing"):
        read_tables(spark, str(tmp_path), PERSONAL)


def test_open_pairs_keep_the_leads_open_at_as_of(spark, crm_both):
    wh, data = crm_both
    read_tables(spark, str(data), PERSONAL).register()
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

    wh, data = crm_both
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
    assert "3 rows kept aside" in done.stdout
    assert len(pd.read_parquet(out)) == expected
