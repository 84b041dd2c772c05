"""Training from Spark (local mode): examples and labels built on Spark equal the warehouse's,
the fit sees a stratified sample of whole leads, and the evaluation reads every example.

Needs Java 17: without it these tests fail with how to install it (they are not skipped)."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from core.settings import Runtime, Settings, TrainConfig
from features.engagement import batch_features
from features.labels import (
    calendar_dates,
    calendar_examples,
    creation_examples,
    dropout_examples,
    open_book,
)
from ingest.spark_tables import read_reps, read_tables
from leadlens.jobs.spark_jobs import train_job
from tests.features.test_spark_parity import (  # noqa: F401 (fixtures)
    INGEST,
    LOCAL,
    assert_same_frames,
    crm_both,
    spark,
)
from training.dataset import with_features
from training.spark_source import SparkData
from training.specs import SPECS

TRAIN = TrainConfig(min_per_class=2, min_per_class_eval=5, search_trials=1)
KEY = ["lead_id", "as_of"]


@pytest.fixture(scope="module")
def crm(crm_both):  # noqa: F811 (a fixture)
    """The messy export of `test_spark_parity` with its reps, as CSV (their teams are what the
    evaluation groups by)."""
    wh, data, both = crm_both
    wh.con.execute("SELECT * FROM reps").df().to_csv(data / "reps.csv", index=False)
    return wh, data, both


def _source(spark, data, end, sample_rows: int) -> SparkData:  # noqa: F811 (a fixture)
    tables = read_tables(spark, str(data), INGEST)
    tables.register()
    read_reps(spark, str(data), INGEST)[0].createOrReplaceTempView("reps")
    return SparkData(spark, str(data), tables.attributes, lambda: end, sample_rows)


def _end(wh) -> pd.Timestamp:
    return pd.Timestamp(wh.con.execute("SELECT max(occurred_at) FROM activities").fetchone()[0])


def _same_examples(duck: pd.DataFrame, ours: pd.DataFrame) -> None:
    """The same examples: lead, moment, detail, label and horizon (a featured frame keeps no
    creation time)."""
    cols = [c for c in ("lead_id", "as_of", "created_at", "detail", "label", "horizon_end")
            if c in ours.columns]
    a = duck[cols].sort_values(KEY, kind="stable").reset_index(drop=True)
    b = ours[cols].sort_values(KEY, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_examples_and_labels_on_spark_equal_the_warehouses(spark, crm):  # noqa: F811
    """Every kind of example, label included, the same lead by lead on both engines (the
    sample holds every lead when the budget is large)."""
    wh, data, _ = crm
    end = _end(wh)
    source = _source(spark, data, end, sample_rows=10_000_000)
    settings = Settings(train=TRAIN)
    say = [].append
    frames = source.replay(settings, end, say)
    duck_snaps = calendar_examples(wh.con, TRAIN, end).frame
    capped = frames.sets("until").refit  # every snapshot closed by the end, capped per lead
    _same_examples(duck_snaps, capped)
    book = open_book(wh.con, TRAIN, frames.origins.replay).frame
    _same_examples(book, frames.replay_book)
    # the sample's features are computed on Spark: the warehouse's, feature by feature
    featured = with_features(wh.con, book, settings.engagement, list(wh.attribute_types()))
    assert_same_frames(featured, frames.replay_book[featured.columns], KEY)
    assert frames.test is not None and frames.test.labels() == (
        int(book["label"].sum()), int(len(book) - book["label"].sum()))
    flat = Settings(train=TRAIN.model_copy(update={"conversion_examples": "creation"}))
    for kind, made, how in (("dropout", dropout_examples, settings),
                            ("lead_quality", creation_examples, settings),
                            ("conversion", creation_examples, flat)):  # flat exports
        prepared = source.prepared(SPECS[kind], how, end, say)
        duck = made(wh.con, TRAIN, end)
        ours = pd.concat([prepared.data, prepared.judged().featured])
        _same_examples(duck.frame, ours)
        assert prepared.examples.excluded.items() >= duck.excluded.items()
        assert len(duck.frame) > 1000 and duck.frame["label"].nunique() == 2


def test_the_sample_takes_whole_leads_in_the_same_share_of_every_stratum(spark, crm):  # noqa: F811
    wh, data, _ = crm
    end = _end(wh)
    settings = Settings(train=TRAIN)
    small, large = (_source(spark, data, end, n) for n in (1_500, 3_000))
    rows = small._rows("snapshots", TRAIN, end, calendar_dates(
        pd.Timestamp(wh.con.execute("SELECT min(created_at) FROM leads").fetchone()[0]),
        TRAIN, end))
    total = rows.count()
    picked = {}
    for source in (small, large):
        chosen = source._sample_leads(rows, "label IS NOT NULL", end, "conversion", [].append)
        picked[source.sample_rows] = set(chosen.toPandas()["lead_id"])
    assert picked[1_500] < picked[3_000]  # a smaller sample is part of a larger one
    leads = wh.con.execute(f"""
        SELECT lead_id, date_trunc('month', created_at) AS month,
               coalesce(converted_at < TIMESTAMP '{end}', false) AS won
        FROM leads WHERE created_at < TIMESTAMP '{end}'
    """).df()
    for n, chosen in picked.items():
        share = n / total
        strata = leads.assign(chosen=leads["lead_id"].isin(chosen)).groupby(["month", "won"])
        for (_month, _won), part in strata:
            # the stratum's share, less than a lead off (n x share on average)
            assert abs(part["chosen"].sum() - len(part) * share) < 1
        # the conversion rate of the sampled leads is the full data's, to a lead per stratum
        won = leads[leads["lead_id"].isin(chosen)]["won"].mean()
        assert abs(won - leads["won"].mean()) < 0.01
    # a lead is drawn whole: each sampled lead keeps every snapshot it has
    frames = small.replay(settings, end, [].append)
    full = calendar_examples(wh.con, TRAIN, end).frame
    mine = full[full["lead_id"].isin(picked[1_500])]
    _same_examples(mine, frames.sets("until").refit)


def test_training_on_spark_fits_on_the_sample_and_judges_every_example(crm, tmp_path):
    wh, data, _ = crm
    settings = Settings(train=TRAIN, spark=LOCAL.model_copy(update={"train_sample_rows": 3_000}))
    runtime = Runtime(settings, tmp_path / "home", None)
    lines: list[str] = []
    run = train_job(runtime, str(data), None, ("conversion", "dropout"), lines.append)
    report = run.report
    assert set(report.results) == {"conversion", "dropout"}, report.skipped
    assert any("stratified sample" in line for line in lines)
    # the bad rows of the messy export are kept aside and counted, as `leadlens ingest` does
    assert run.rejected and sum(run.rejected.values()) >= 5 and run.rejected_at
    end = report.until
    attrs = list(wh.attribute_types())

    conv = report.results["conversion"]
    book = open_book(wh.con, TRAIN, pd.Timestamp(conv.bundle.meta["replay_origin"])).frame
    # judged on every lead open at the replay origin, fitted on fewer leads
    assert sorted(conv.test["lead_id"]) == sorted(book["lead_id"])
    assert conv.counts.set_index("split").loc["test", "positives"] == book["label"].sum()
    all_snaps = calendar_examples(wh.con, TRAIN, end).frame
    fit_leads = set(conv.used["train"]["lead_id"])
    assert 0 < len(fit_leads) < 0.8 * all_snaps["lead_id"].nunique()

    drop = report.results["dropout"]
    made = dropout_examples(wh.con, TRAIN, end)
    full = made.frame
    # what was left out is counted on the full data, by the warehouse's reasons
    assert drop.excluded.items() > made.excluded.items()
    test = full[full["created_at"] >= drop.split.test_from]
    # every test-period example, judged on Spark
    assert sorted(zip(drop.test["lead_id"], drop.test["as_of"], drop.test["label"],
                      strict=True)) == sorted(zip(test["lead_id"], test["as_of"], test["label"],
                                                  strict=True))
    fitted = len(drop.used["train"]) + len(drop.used["validation"])
    assert 0 < fitted < len(full) - len(test)  # the fit saw a sample
    # the scores made on Spark are the registered model's, lead by lead
    feats = batch_features(wh.con, drop.test[KEY], settings.engagement, attrs)
    np.testing.assert_allclose(drop.test["score"].to_numpy(), drop.bundle.predict(feats),
                               rtol=1e-9, atol=1e-12)
    assert drop.counts.set_index("split").loc["test", "examples"] == len(test)

    # tracked and registered as `leadlens train` does, with the engine and the sample recorded
    mlflow.set_tracking_uri(runtime.mlflow_uri)
    client = mlflow.MlflowClient()
    parent = client.get_run(report.parent_run_id)
    assert parent.data.params["engine"] == "spark"
    assert parent.data.params["spark_train_sample_rows"] == "3000"
    assert client.get_model_version("leadlens-conversion", str(conv.version)).tags[
        "kind"] == "conversion"
    sample = client.get_run(conv.run_id).data.tags["leadlens.sample"]
    assert "of the leads of every (creation month, converted) stratum" in sample


def test_the_cli_needs_the_data_to_train_on_spark(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from leadlens.cli import main

    monkeypatch.setenv("LEADLENS_HOME", str(tmp_path))
    out = CliRunner().invoke(main, ["train", "--engine", "spark"])
    assert out.exit_code == 2 and "--engine spark needs --data" in out.output
