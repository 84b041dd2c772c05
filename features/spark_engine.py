"""Engagement features on Apache Spark, for CRMs larger than one machine.

The features are the warehouse's own query (`features.engagement.feature_sql`) generated for
the Spark SQL dialect: one definition, two engines. Inputs are contract tables (`leads`,
`activities`) as Parquet or CSV under a folder or URI (`file:`, `hdfs:`, `s3a:`, ...); they are
typed as the contract says, rows that cannot be used are kept aside with their reason (never
dropped silently), personal-data columns are dropped as at ingestion, and timestamps become UTC
without a zone, as in the warehouse.

`local[*]` by default; a cluster through `spark.master`, or Spark Connect through the
`SPARK_REMOTE` environment variable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from core.contract import ACTIVITIES, LEADS, Table, is_personal_column
from core.settings import EngagementConfig, SparkConfig
from core.timestamps import AFTER_DATA
from features.catalog import engagement_features
from features.engagement import SPARK, feature_columns, feature_sql, open_leads_condition

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

MIN_JAVA = 17
INSTALL_JAVA = ("Spark needs Java 17 or later: install it (Debian/Ubuntu: `apt-get install "
                "openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) or point JAVA_HOME "
                "at one, or use a Spark Connect server through SPARK_REMOTE")


class SparkUnavailable(RuntimeError):
    """Spark cannot start here; the message says what to install."""


class SparkInputError(ValueError):
    """A contract table that cannot be read (missing, or a required column absent)."""


def java_problem() -> str | None:
    """Why a local Spark cannot start (no Java, or one older than 17), or None."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return "no `java` found. " + INSTALL_JAVA
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True,  # noqa: S603 (the JDK's own launcher)
                               timeout=30).stderr
    except (OSError, subprocess.SubprocessError) as err:
        return f"`{java} -version` failed ({err}). " + INSTALL_JAVA
    found = re.search(r'version "(\d+)', shown)
    if found is None or int(found.group(1)) < MIN_JAVA:
        return f"{java} is too old or unknown ({shown.splitlines()[:1]}). " + INSTALL_JAVA
    return None


def spark_session(cfg: SparkConfig) -> SparkSession:
    """A Spark session as `cfg` says: Spark Connect when SPARK_REMOTE is set; under
    `spark-submit` (`leadlens/spark_main.py`) the master and memory spark-submit was given;
    else `cfg.master` (a local Spark needs Java 17). The session's time zone is UTC, as the
    warehouse's."""
    remote = os.environ.get("SPARK_REMOTE")
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started the JVM
    if not remote and not submitted:
        problem = java_problem()
        if problem:
            raise SparkUnavailable(problem)
    # PySpark 4 warns that it does not fully support pandas 3; the paths LeadLens uses (Arrow
    # in and out of mapInPandas, toPandas) are covered by the parity tests
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("pyspark is not installed: pip install 'leadlens[spark]'") from None
    builder = SparkSession.builder.appName(cfg.app_name)
    if remote:
        builder = builder.remote(remote)
    elif not submitted:
        builder = builder.master(cfg.master)
    conf = {"spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true"}
    if not remote and not submitted:  # otherwise the cluster's (or spark-submit's) settings
        conf |= {"spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
                 "spark.driver.memory": cfg.driver_memory, "spark.ui.enabled": "false",
                 "spark.ui.showConsoleProgress": "false", "spark.log.level": "ERROR"}
    if not remote and not submitted and cfg.master.startswith("local"):
        # a local Spark's Python workers run this interpreter (and its packages), not the
        # first `python3` on the PATH (PySpark reads the variable when the session starts);
        # a cluster says which Python its workers run
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@dataclass
class SparkTables:
    """The contract tables as Spark frames, typed; the rows kept aside with their reason."""

    leads: DataFrame
    activities: DataFrame
    attributes: dict[str, str]  # lead attribute -> numeric | text, as the warehouse has them
    rejected: DataFrame  # table, the row's id, reason

    def register(self) -> None:
        """Make `leads` and `activities` the session's views the feature SQL reads."""
        self.leads.createOrReplaceTempView("leads")
        self.activities.createOrReplaceTempView("activities")


def _read(spark: SparkSession, location: str, table: Table) -> DataFrame:
    """`<location>/<table>.parquet`, else `<location>/<table>.csv` (a file or a folder of parts)."""
    from pyspark.errors import AnalysisException

    base = location.rstrip("/")
    tried = []
    for ext in ("parquet", "csv"):
        path = f"{base}/{table.name}.{ext}"
        tried.append(path)
        try:
            if ext == "parquet":
                frame = spark.read.parquet(path)
            else:
                frame = spark.read.option("header", True).option("inferSchema", False).csv(path)
        except AnalysisException as err:
            if "PATH_NOT_FOUND" in str(err) or "Path does not exist" in str(err):
                continue
            raise SparkInputError(f"{path}: {str(err).splitlines()[0]}") from None
        return frame.toDF(*[c.strip().lower() for c in frame.columns])
    raise SparkInputError(f"no {table.name} table: looked for {' and '.join(tried)}")


def _typed_column(source: DataFrame, name: str, kind: str) -> Column:
    """A contract column as the warehouse types it: timestamps as UTC without a zone (text
    parsed as ISO-8601), amounts as doubles, the rest as text; an absent one as nulls."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    if name not in source.columns:
        return F.lit(None).cast({"timestamp": "timestamp_ntz",
                                 "amount": "double"}.get(kind, "string"))
    col = F.col(f"`{name}`")
    if kind == "timestamp":
        if isinstance(source.schema[name].dataType, StringType):
            col = F.try_to_timestamp(col)  # null when not a timestamp: the row is kept aside
        return col.cast("timestamp_ntz")
    if kind == "amount":
        return col.try_cast("double")
    return col.cast("string")


def _reason(source: DataFrame, table: Table, typed: dict[str, Column]) -> Column:
    """The first reason a row cannot be used (naming the column), or null."""
    from pyspark.sql import functions as F

    checks: list[tuple[Column, str]] = []
    for col in table.columns:
        if col.name not in source.columns:
            continue
        given = F.trim(F.col(f"`{col.name}`").cast("string"))
        value = typed[col.name]
        if col.required:
            checks.append((given.isNull() | (given == ""),
                           f"column '{col.name}': required but empty"))
        if col.kind in ("timestamp", "amount"):
            what = "an ISO-8601 timestamp" if col.kind == "timestamp" else "a number"
            checks.append((given.isNotNull() & (given != "") & value.isNull(),
                           f"column '{col.name}': not {what}"))
        if col.kind == "amount":
            checks.append((value < 0, f"column '{col.name}': negative"))
        if col.choices:
            checks.append((value.isNotNull() & ~F.lower(value).isin(*col.choices),
                           f"column '{col.name}': not one of {', '.join(col.choices)}"))
    reason = F.lit(None).cast("string")
    for cond, text in reversed(checks):
        reason = F.when(F.coalesce(cond, F.lit(False)), F.lit(text)).otherwise(reason)
    return reason


def _checked(spark: SparkSession, location: str, table: Table, personal: tuple[str, ...],
             keep: tuple[str, ...]) -> tuple[DataFrame, DataFrame]:
    """One contract table typed and checked: (usable rows, rejected rows: table, row_id,
    reason). Personal-data columns are dropped; a row whose id repeats is kept aside."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    source = _read(spark, location, table)
    missing = [c for c in table.required if c not in source.columns]
    if missing:
        raise SparkInputError(f"{location}: {table.name}: required column {missing[0]!r} is "
                              f"missing (columns: {', '.join(source.columns)})")
    typed = {c.name: _typed_column(source, c.name, c.kind) for c in table.columns}
    if table.name == ACTIVITIES.name:  # as at ingestion: lower-case choices, outbound default
        typed["type"] = F.lower(typed["type"])
        typed["direction"] = F.coalesce(F.lower(typed["direction"]), F.lit("outbound"))
    extra = [c for c in source.columns if table.keeps_extra_columns
             and c not in table.column_names
             and (c in keep or not is_personal_column(c, personal))]
    repeats = F.count(F.lit(1)).over(Window.partitionBy(F.col(table.key)))
    reason = F.when(repeats > 1, F.lit(f"column '{table.key}': the same id on several rows")
                    ).otherwise(_reason(source, table, typed))
    marked = source.select(*[v.alias(k) for k, v in typed.items()],
                           *[F.col(f"`{c}`") for c in extra], reason.alias("__reason"))
    good = marked.where(F.col("__reason").isNull()).drop("__reason")
    bad = marked.where(F.col("__reason").isNotNull()).select(
        F.lit(table.name).alias("table"), F.col(table.key).alias("row_id"),
        F.col("__reason").alias("reason"))
    return good, bad


def _attribute_types(leads: DataFrame) -> dict[str, str]:
    """Lead attributes as the warehouse keeps them: numeric when every given value is a number
    (text columns of a CSV included), else text."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    extra = [c for c in leads.columns if c not in LEADS.column_names]
    text = [c for c in extra if not isinstance(leads.schema[c].dataType, NumericType)]
    kinds = {c: "numeric" for c in extra if c not in text}
    if text:
        counts = leads.select(*[
            F.struct(F.count(F.col(f"`{c}`")).alias("given"),
                     F.count(F.col(f"`{c}`").try_cast("double")).alias("numbers")).alias(c)
            for c in text]).first()
        if counts is None:  # an aggregate always has its one row
            raise RuntimeError("the attribute counts returned no row")
        for c in text:
            given, numbers = counts[c]["given"], counts[c]["numbers"]
            kinds[c] = "numeric" if given > 0 and given == numbers else "text"
    return {c: kinds[c] for c in extra}


def read_tables(spark: SparkSession, location: str, personal: tuple[str, ...],
                keep: tuple[str, ...] = ()) -> SparkTables:
    """The contract's leads and activities under `location`, typed and checked: rows that
    cannot be used (a required field empty, a value of the wrong kind, a repeated id, an
    activity of an unknown lead) are kept aside in `rejected` with the reason."""
    from pyspark.sql import functions as F

    leads, bad_leads = _checked(spark, location, LEADS, personal, keep)
    acts, bad_acts = _checked(spark, location, ACTIVITIES, personal, keep)
    orphans = acts.join(leads.select("lead_id"), "lead_id", "left_anti").select(
        F.lit(ACTIVITIES.name).alias("table"), F.col("activity_id").alias("row_id"),
        F.lit("column 'lead_id': not among the leads").alias("reason"))
    acts = acts.join(leads.select("lead_id"), "lead_id", "left_semi")
    attributes = _attribute_types(leads)
    leads = leads.select(*[F.col(f"`{c}`").cast("double").alias(c)
                           if attributes.get(c) == "numeric" else F.col(f"`{c}`")
                           for c in leads.columns])
    return SparkTables(leads, acts, attributes, bad_leads.unionByName(bad_acts)
                       .unionByName(orphans))


def open_pairs(spark: SparkSession, as_of: pd.Timestamp, which: str = "open") -> DataFrame:
    """(pair_id, lead_id, as_of) for the leads created at or before `as_of` (`open`: not yet
    converted or lost then), the same condition as the warehouse's `select_pairs`; needs the
    views of `SparkTables.register`."""
    if which not in ("open", "all"):
        raise ValueError(f"--leads must be 'open' or 'all', not {which!r}")
    literal = f"TIMESTAMP_NTZ '{pd.Timestamp(as_of).isoformat(sep=' ')}'"
    cond = open_leads_condition(literal, which)
    return spark.sql(f"SELECT monotonically_increasing_id() AS pair_id, lead_id, "  # noqa: S608 (a formatted timestamp)
                     f"{literal} AS as_of FROM leads WHERE {cond}")


def data_end(spark: SparkSession) -> pd.Timestamp:
    """The latest timestamp in the registered tables (created, converted, lost, activity)."""
    row = spark.sql("""
        SELECT greatest(max(created_at), max(converted_at), max(closed_lost_at),
                        (SELECT max(occurred_at) FROM activities)) AS latest FROM leads
    """).first()
    if row is None or row["latest"] is None:
        raise SparkInputError("the leads and activities hold no timestamp")
    return pd.Timestamp(row["latest"])


def spark_features(spark: SparkSession, tables: SparkTables, pairs: DataFrame,
                   cfg: EngagementConfig) -> DataFrame:
    """The features of every (lead_id, as_of) of `pairs` (with a unique `pair_id`): lead_id,
    as_of, then the catalog's features and the attributes, typed as the warehouse's path
    types them (numeric as double, the rest as text)."""
    from pyspark.sql import functions as F

    tables.register()
    pairs.createOrReplaceTempView("pair_input")
    attributes = list(tables.attributes)
    computed = spark.sql(feature_sql(cfg, attributes, SPARK, ordered=False))
    numeric = {f.name for f in engagement_features(cfg) if f.kind == "numeric"}
    numeric |= {a for a, k in tables.attributes.items() if k == "numeric"}
    out = computed.join(pairs.select("pair_id", "lead_id", "as_of"), "pair_id")
    return out.select("lead_id", "as_of", *[
        F.col(f"`{c}`").cast("double" if c in numeric else "string").alias(c)
        for c in feature_columns(cfg, attributes)])


@dataclass
class SparkRun:
    """What a Spark job read and wrote: rows kept aside (by reason) and rows written."""

    as_of: pd.Timestamp
    rows: int
    rejected: dict[str, int]
    rejected_at: str | None


def keep_aside(tables: SparkTables, out: str) -> tuple[dict[str, int], str | None]:
    """Write the rows that could not be used next to `out` (`<out>_rejected`, Parquet: table,
    row_id, reason; no other values) and count them by reason."""
    counts = {f"{r['table']}: {r['reason']}": int(r["n"]) for r in
              tables.rejected.groupBy("table", "reason").count()
              .withColumnRenamed("count", "n").collect()}
    if not counts:
        return {}, None
    where = out.rstrip("/") + "_rejected"
    tables.rejected.write.mode("overwrite").parquet(where)
    return counts, where


def write_features(spark: SparkSession, location: str, as_of: pd.Timestamp | None, which: str,
                   cfg: EngagementConfig, personal: tuple[str, ...], keep: tuple[str, ...],
                   out: str) -> SparkRun:
    """`leadlens features --engine spark`: the features of the leads (open or all) at `as_of`
    (default: just after the latest data) from the contract tables under `location`, written
    as Parquet to `out`."""
    tables = read_tables(spark, location, personal, keep)
    tables.register()
    when = pd.Timestamp(as_of) if as_of is not None else data_end(spark) + AFTER_DATA
    frame = spark_features(spark, tables, open_pairs(spark, when, which), cfg)
    frame.write.mode("overwrite").parquet(out)
    rows = spark.read.parquet(out).count()
    rejected, where = keep_aside(tables, out)
    return SparkRun(when, rows, rejected, where)
