"""The `--engine spark` jobs: features and batch scores of a CRM's contract tables on Spark.

Each reads the tables under a folder or URI (checked as `leadlens ingest` checks them:
`ingest.spark_tables`), computes the warehouse's features on Spark (`features.spark_engine`),
scores with the champion per partition when asked (`serving.spark_scoring`), writes Parquet,
and keeps the rows it could not use beside the output with their reasons.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from core.names import CONVERSION, registered_name
from core.settings import Runtime
from core.spark_session import spark_session
from features.engagement import feature_columns
from features.spark_engine import open_pairs, spark_features
from ingest.spark_tables import (
    SparkInputError,
    SparkTables,
    data_end,
    default_as_of,
    keep_aside,
    read_reps,
    read_tables,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from training.pipeline import TrainReport

Say = Callable[[str], None]


@dataclass
class SparkRun:
    """What a Spark job read and wrote: the moment, rows written, rows kept aside by reason."""

    as_of: pd.Timestamp
    rows: int
    rejected: dict[str, int]
    rejected_at: str | None
    coverage: dict[str, float] = field(default_factory=dict)
    """Scores: the share of leads outside the model's training range, per input."""


def where_it_runs(spark: SparkSession) -> str:
    """The master the session runs on, for the log."""
    if os.environ.get("SPARK_REMOTE"):
        return f"Spark Connect {os.environ['SPARK_REMOTE']}"
    return str(spark.conf.get("spark.master", "spark"))


def _tables(spark: SparkSession, runtime: Runtime, location: str,
            as_of: pd.Timestamp | None) -> tuple[SparkTables, pd.Timestamp]:
    tables = read_tables(spark, location, runtime.settings.ingest)
    tables.register()
    return tables, (pd.Timestamp(as_of) if as_of is not None
                    else default_as_of(spark, location))


def _written(spark: SparkSession, frame: DataFrame, out: str, tables: SparkTables,
             when: pd.Timestamp, coverage: dict[str, float] | None = None) -> SparkRun:
    """Write `frame` as Parquet to `out` and the rows kept aside beside it; what was done."""
    frame.write.mode("overwrite").parquet(out)
    rows = spark.read.parquet(out).count()  # from the files' metadata
    rejected, where = keep_aside(tables, out)
    return SparkRun(when, rows, rejected, where, coverage or {})


def features_job(runtime: Runtime, location: str, as_of: pd.Timestamp | None, which: str,
                 out: str, say: Say) -> SparkRun:
    """`leadlens features --engine spark`: the features of the leads (open or all) at `as_of`
    (default: the export's `cutoff.txt`, else just after the latest data), as Parquet."""
    spark = spark_session(runtime.settings.spark)
    tables, when = _tables(spark, runtime, location, as_of)
    say(f"computing the features of the {which} leads as of {when} on "
        f"{where_it_runs(spark)} from {location}")
    frame = spark_features(spark, tables.attributes, open_pairs(spark, when, which),
                           runtime.settings.engagement)
    return _written(spark, frame, out, tables, when)


def score_job(runtime: Runtime, location: str, as_of: pd.Timestamp | None, explain: int,
              out: str, say: Say) -> SparkRun:
    """`leadlens score --engine spark`: every lead open at `as_of` scored by the champion, with
    `explain` reasons, as Parquet (the columns of `leadlens score`, and `as_of`)."""
    from serving.models import load_champion
    from serving.spark_scoring import score_features

    spark = spark_session(runtime.settings.spark)
    tables, when = _tables(spark, runtime, location, as_of)
    scorer = load_champion(runtime, CONVERSION, list(tables.attributes))
    have = feature_columns(runtime.settings.engagement, list(tables.attributes))
    missing = [f for f in scorer.bundle.features if f not in have]
    if missing:
        raise SparkInputError(f"{location}: the champion needs lead column {missing[0]!r}, "
                              "which the leads table does not have")
    say(f"scoring the leads open at {when} on {where_it_runs(spark)} with "
        f"{registered_name(CONVERSION)} v{scorer.version}")
    feats = spark_features(spark, tables.attributes, open_pairs(spark, when, "open"),
                           runtime.settings.engagement)
    scored, coverage = score_features(feats, scorer, explain)
    return _written(spark, scored, out, tables, when, coverage)


@dataclass
class SparkTraining:
    """What `train_job` did: the training report and the rows kept aside."""

    report: TrainReport
    rejected: dict[str, int]
    rejected_at: str | None


def train_job(runtime: Runtime, location: str, until: pd.Timestamp | None,
              kinds: tuple[str, ...], say: Say) -> SparkTraining:
    """`leadlens train --engine spark`: examples and labels on Spark, each model fitted here on
    a stratified sample of leads (`spark.train_sample_rows`), judged on Spark on every example
    (`training.spark_source`), tracked and registered as `leadlens train` does. The rows that
    cannot be used are kept aside under the home folder (`spark-train_rejected`)."""
    from training.pipeline import train_models
    from training.spark_source import SparkData

    spark = spark_session(runtime.settings.spark)
    tables = read_tables(spark, location, runtime.settings.ingest)
    reps, bad_reps = read_reps(spark, location, runtime.settings.ingest)
    tables.register()
    reps.createOrReplaceTempView("reps")
    tables = SparkTables(tables.leads, tables.activities, tables.attributes,
                         tables.rejected.unionByName(bad_reps))
    # kept aside first: a training that fails still leaves them to look at
    rejected, where = keep_aside(tables, str(runtime.home / "spark-train"))
    say(f"training from {location} on {where_it_runs(spark)}")
    source = SparkData(spark, location, tables.attributes, lambda: data_end(spark, location),
                       runtime.settings.spark.train_sample_rows)
    report = train_models(runtime, until, kinds, say, source=source)
    return SparkTraining(report, rejected, where)
