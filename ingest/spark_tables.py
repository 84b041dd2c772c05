"""Contract tables read on Spark and checked by the rules of `leadlens ingest`.

`--engine spark` reads `leads` and `activities` from Parquet, CSV or gzipped CSV under a folder
or URI and applies what `ingest.validation` applies before anything reaches the warehouse, so
that Spark computes the features a user would get after `leadlens ingest` of the same files:
- column names normalised (`core.contract.normalise_column_name`); two that collide refused;
- text stripped, empty text missing, ids written as 12.0 read as "12"; choices lower-cased and
  `direction` outbound when missing; timestamps as UTC without a zone (an offset converted, a
  date alone midnight);
- personal-data columns dropped by name unless kept (`ingest.keep_columns`) or holding only
  yes/no values; email addresses and phone numbers in other text masked (`core.free_text`);
- a lead attribute is numeric when at least 95% of its values are finite numbers (booleans are
  text), and a row whose value is not a number is kept aside;
- a row is kept aside, with its reason, when a required field is empty, a value is of the wrong
  kind, a timestamp is outside the believable window (`ingest.earliest_date`,
  `ingest.max_days_ahead`), a choice is outside the contract, an amount is negative, a lead is
  both converted and lost or resolved before it was created, an id repeats an earlier row (the
  first in file order is kept), or an activity names an unknown lead;
- a table with more than `ingest.max_quarantine_share` of its rows kept aside is refused.
The rows kept aside hold the table, the row's id and the reason, nothing else.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from core.contract import ACTIVITIES, LEADS, REPS, Table, is_personal_column, normalise_column_name
from core.free_text import EMAIL, EMAIL_MASK, PHONE, PHONE_MASK
from core.settings import IngestConfig
from core.timestamps import as_of_after, end_of, parse_cutoff
from ingest.readers import sniff_separator
from ingest.validation import NUMERIC_MAJORITY, YES_NO

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_ORDER = "__order"
_REASON = "__reason"


class SparkInputError(ValueError):
    """Contract tables that cannot be used (missing, a required column absent, names that
    collide, too many rows kept aside); the message names the table and the column."""


@dataclass
class SparkTables:
    """The contract tables as Spark frames, typed and checked; the rows kept aside."""

    leads: DataFrame
    activities: DataFrame
    attributes: dict[str, str]  # lead attribute -> numeric | text, as the warehouse has them
    rejected: DataFrame  # table, row_id, reason

    def register(self) -> None:
        """Make `leads` and `activities` the session's views the feature SQL reads."""
        self.leads.createOrReplaceTempView("leads")
        self.activities.createOrReplaceTempView("activities")


def _read(spark: SparkSession, location: str, table: Table) -> DataFrame:
    """`<table>.parquet`, else `<table>.csv`, else `<table>.csv.gz` under `location` (a file or a
    folder of parts), with its rows numbered in file order and its column names normalised."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    base = location.rstrip("/")
    tried = []
    for ext in ("parquet", "csv", "csv.gz"):
        path = f"{base}/{table.name}.{ext}"
        tried.append(path)
        try:
            if ext == "parquet":
                frame = spark.read.parquet(path)
            else:
                first = spark.read.text(path).first()
                head = str(first[0]) if first is not None else ""
                sep = sniff_separator(head)
                frame = (spark.read.option("header", True).option("inferSchema", False)
                         .option("multiLine", True).option("escape", '"').option("sep", sep)
                         .csv(path))
        except AnalysisException as err:
            if "PATH_NOT_FOUND" in str(err) or "Path does not exist" in str(err):
                continue
            raise SparkInputError(f"{path}: {str(err).splitlines()[0]}") from None
        names = [normalise_column_name(c) for c in frame.columns]
        seen: dict[str, str] = {}
        for raw, name in zip(frame.columns, names, strict=True):
            if name in seen:
                raise SparkInputError(f"{path}: columns {seen[name]!r} and {raw!r} both read as "
                                      f"{name!r}")
            seen[name] = raw
        # numbered straight after the scan, which is deterministic: the first of repeated ids
        return frame.toDF(*names).withColumn(_ORDER, F.monotonically_increasing_id())
    raise SparkInputError(f"no {table.name} table: looked for {', '.join(tried)}")


def _text(source: DataFrame, name: str) -> Column:
    """A column as stripped text, empty as missing (a whole number written as 12.0: "12";
    booleans as True/False, as pandas writes them)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, DoubleType, FloatType

    col = F.col(f"`{name}`")
    kind = source.schema[name].dataType
    if isinstance(kind, (DoubleType, FloatType)):  # NaN is missing, as in pandas
        col = F.when(F.isnan(col), F.lit(None)).when(
            col == F.floor(col), col.cast("long").cast("string")).otherwise(col.cast("string"))
    elif isinstance(kind, BooleanType):
        col = F.when(col, F.lit("True")).when(~col, F.lit("False"))
    text = F.regexp_replace(col.cast("string"), r"^\s+|\s+$", "")
    return F.when(text != "", text)


def _masked(text: Column) -> Column:
    """Email addresses and phone numbers replaced as `core.free_text.mask_text` does."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.regexp_replace(text, EMAIL.pattern, EMAIL_MASK),
                            PHONE.pattern, PHONE_MASK)


def _timestamp(source: DataFrame, name: str, where: str) -> Column:
    """A contract timestamp as UTC without a zone (null when the text is not one)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import (
        DateType,
        StringType,
        TimestampNTZType,
        TimestampType,
    )

    kind = source.schema[name].dataType
    col = F.col(f"`{name}`")
    if isinstance(kind, StringType):
        return _text(source, name).try_cast("timestamp_ltz").cast("timestamp_ntz")
    if isinstance(kind, (TimestampType, DateType)):
        return col.cast("timestamp_ntz")
    if isinstance(kind, TimestampNTZType):
        return col
    raise SparkInputError(f"{where}: column {name!r} holds {kind.simpleString()} values, not "
                          "timestamps: give ISO-8601 text or timestamps")


def _number(source: DataFrame, name: str) -> Column:
    """A column as a double (null when not a finite number)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    kind = source.schema[name].dataType
    value = (F.col(f"`{name}`").cast("double") if isinstance(kind, NumericType)
             else _text(source, name).try_cast("double"))
    return F.when(~F.isnan(value) & (F.abs(value) != float("inf")), value)


@dataclass
class _Checks:
    """The typed columns of one table and the (condition, reason) pairs, in rule order."""

    typed: dict[str, Column]
    checks: list[tuple[Column, str]]

    def add(self, cond: Column, reason: str) -> None:
        from pyspark.sql import functions as F

        self.checks.append((F.coalesce(cond, F.lit(False)), reason))

    def reason(self) -> Column:
        from pyspark.sql import functions as F

        out = F.lit(None).cast("string")
        for cond, text in reversed(self.checks):
            out = F.when(cond, F.lit(text)).otherwise(out)
        return out


def _ntz(moment: datetime.datetime) -> Column:
    """A naive UTC moment as a Spark literal without a zone."""
    from pyspark.sql import functions as F

    return F.expr(f"TIMESTAMP_NTZ '{moment:%Y-%m-%d %H:%M:%S}'")


def _contract_columns(source: DataFrame, table: Table, cfg: IngestConfig,
                      where: str) -> _Checks:
    from pyspark.sql import functions as F

    window = cfg.date_window()
    earliest, latest = window.earliest, window.latest()
    out = _Checks({}, [])
    for col in table.columns:
        if col.name not in source.columns:
            kind = {"timestamp": "timestamp_ntz", "amount": "double"}.get(col.kind, "string")
            out.typed[col.name] = F.lit(col.default).cast(kind)
            continue
        given = _text(source, col.name).isNotNull()
        if col.required:
            out.add(~given, f"column '{col.name}': required but empty")
        if col.kind == "timestamp":
            value = _timestamp(source, col.name, where)
            out.add(given & value.isNull(), f"column '{col.name}': not ISO-8601")
            out.add(value.isNotNull() & ((value < _ntz(earliest)) | (value > _ntz(latest))),
                    f"column '{col.name}': before {earliest:%Y-%m-%d} or after "
                    f"{latest:%Y-%m-%d %H:%M} (ingest.earliest_date, ingest.max_days_ahead)")
        elif col.kind == "amount":
            value = _number(source, col.name)
            out.add(given & value.isNull(), f"column '{col.name}': not a number")
            out.add(value < 0, f"column '{col.name}': must be >= 0")
        elif col.kind == "choice":
            value = F.lower(_text(source, col.name))
            out.add(given & ~value.isin(*col.choices),
                    f"column '{col.name}': allows only {', '.join(col.choices)}")
            if col.default is not None:
                value = F.coalesce(value, F.lit(col.default))
        elif col.kind == "id":
            value = _text(source, col.name)
        else:
            value = _masked(_text(source, col.name))
        out.typed[col.name] = value
    if table.name == LEADS.name:
        won, lost, made = (out.typed["converted_at"], out.typed["closed_lost_at"],
                           out.typed["created_at"])
        out.add(won.isNotNull() & lost.isNotNull(),
                "column 'converted_at': a lead is either converted or lost")
        for name, ts in (("converted_at", won), ("closed_lost_at", lost)):
            out.add(ts < made, f"column '{name}': before 'created_at'")
    return out


def _extra_columns(source: DataFrame, table: Table, cfg: IngestConfig) -> dict[str, str]:
    """The kept extra columns (leads only) -> numeric | text; personal ones dropped unless kept
    by name or holding only yes/no values."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType

    if not table.keeps_extra_columns:
        return {}
    keep = {normalise_column_name(k) for k in cfg.keep_columns}
    extra = [c for c in source.columns if c not in table.column_names and c != _ORDER]
    if not extra:
        return {}
    stats = source.select(*[F.struct(
        F.count(_text(source, c)).alias("given"),
        F.count(_number(source, c)).alias("numbers"),
        F.count(F.when(~F.lower(_text(source, c)).isin(*YES_NO), 1)).alias("not_yes_no"),
    ).alias(c) for c in extra]).first()
    if stats is None:  # an aggregate always has its row
        raise RuntimeError("the attribute statistics returned no row")
    kinds: dict[str, str] = {}
    for c in extra:
        given, numbers, not_yes_no = (stats[c]["given"], stats[c]["numbers"],
                                      stats[c]["not_yes_no"])
        personal = is_personal_column(c, cfg.personal_data_columns)
        if personal and c not in keep and not (given > 0 and not_yes_no == 0):
            continue
        kind = source.schema[c].dataType
        numeric = (not isinstance(kind, BooleanType)
                   and (numbers >= NUMERIC_MAJORITY * given if given else
                        isinstance(kind, NumericType)))
        kinds[c] = "numeric" if numeric else "text"
    return kinds


@dataclass
class _Checked:
    """One table typed and checked: every row with its reason (null: usable), the usable rows,
    the rows kept aside (table, row_id, reason) and the kept attributes."""

    marked: DataFrame
    good: DataFrame
    bad: DataFrame
    attributes: dict[str, str]


def _checked(spark: SparkSession, location: str, table: Table, cfg: IngestConfig) -> _Checked:
    """One table typed and checked (module docstring)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    source = _read(spark, location, table)
    where = f"{location.rstrip('/')}/{table.name}"
    missing = [c for c in table.required if c not in source.columns]
    if missing:
        raise SparkInputError(f"{where}: required column {missing[0]!r} is missing (columns: "
                              f"{', '.join(c for c in source.columns if c != _ORDER)})")
    checks = _contract_columns(source, table, cfg, where)
    attributes = _extra_columns(source, table, cfg)
    for name, kind in attributes.items():
        if kind == "numeric":
            value = _number(source, name)
            checks.add(_text(source, name).isNotNull() & value.isNull(),
                       f"column '{name}': attribute '{name}' holds numbers")
        else:
            value = _masked(_text(source, name))
        checks.typed[name] = value
    key = checks.typed[table.key]
    first = F.row_number().over(Window.partitionBy(key).orderBy(F.col(_ORDER)))
    reason = F.when(key.isNotNull() & (first > 1),
                    F.lit(f"column '{table.key}': repeats an earlier row")
                    ).otherwise(checks.reason())
    marked = source.select(*[v.alias(k) for k, v in checks.typed.items()],
                           reason.alias(_REASON))
    good = marked.where(F.col(_REASON).isNull()).drop(_REASON)
    bad = marked.where(F.col(_REASON).isNotNull()).select(
        F.lit(table.name).alias("table"), F.col(table.key).alias("row_id"),
        F.col(_REASON).alias("reason"))
    return _Checked(marked, good, bad, attributes)


def read_tables(spark: SparkSession, location: str, cfg: IngestConfig) -> SparkTables:
    """The contract's leads and activities under `location`, typed and checked as
    `leadlens ingest` checks them (module docstring); the rows that cannot be used are in
    `rejected` with their reason. Refuses a table with more than `ingest.max_quarantine_share`
    of its rows kept aside."""
    from pyspark.sql import functions as F

    leads = _checked(spark, location, LEADS, cfg)
    acts = _checked(spark, location, ACTIVITIES, cfg)
    known = leads.good.select("lead_id")
    orphans = acts.good.join(known, "lead_id", "left_anti").select(
        F.lit(ACTIVITIES.name).alias("table"), F.col("activity_id").alias("row_id"),
        F.lit("column 'lead_id': no such lead").alias("reason"))
    _refuse_above_share(location, cfg.max_quarantine_share, leads, acts, orphans)
    return SparkTables(leads.good, acts.good.join(known, "lead_id", "left_semi"),
                       leads.attributes,
                       leads.bad.unionByName(acts.bad).unionByName(orphans))


def read_reps(spark: SparkSession, location: str,
              cfg: IngestConfig) -> tuple[DataFrame, DataFrame]:
    """The reps under `location` (rep_id, team; the rest of the table is not read on), checked
    as `leadlens ingest` checks them, and the rows kept aside (table, row_id, reason). An export
    without a reps table has no teams: an empty table."""
    try:
        reps = _checked(spark, location, REPS, cfg)
    except SparkInputError as err:
        if not str(err).startswith(f"no {REPS.name} table"):
            raise
        empty = spark.createDataFrame([], "rep_id string, team string")
        return empty, spark.createDataFrame([], "table string, row_id string, reason string")
    return reps.good.select("rep_id", "team"), reps.bad


def _refuse_above_share(location: str, share: float, leads: _Checked, acts: _Checked,
                        orphans: DataFrame) -> None:
    """Refuse when a table has more than `share` of its rows kept aside: one pass per table
    counts its rows and those with a reason; the activities of unknown leads are added."""
    from pyspark.sql import functions as F

    for name, checked, more in ((LEADS.name, leads, None), (ACTIVITIES.name, acts, orphans)):
        row = checked.marked.agg(F.count(F.lit(1)).alias("rows"),
                                 F.count(_REASON).alias("bad")).first()
        total, bad = (int(row["rows"]), int(row["bad"])) if row is not None else (0, 0)
        if more is not None:
            bad += more.count()
        if total and bad / total > share:
            raise SparkInputError(f"{location}: {name}: {bad:,} of {total:,} rows cannot be used "
                                  f"({bad / total:.1%}, more than ingest.max_quarantine_share "
                                  f"{share:.0%}); fix the export (the reasons: run with a "
                                  "higher share to see them kept aside)")


def keep_aside(tables: SparkTables, out: str) -> tuple[dict[str, int], str | None]:
    """Write the rows kept aside next to `out` (`<out>_rejected`, Parquet: table, row_id,
    reason; replaced at every run, empty when none) and count them by table and reason."""
    where = out.rstrip("/") + "_rejected"
    tables.rejected.write.mode("overwrite").parquet(where)
    # counted from what was written: counting `rejected` again would read the export again
    spark = tables.rejected.sparkSession
    counts = {f"{r['table']}: {r['reason']}": int(r["count"]) for r in
              spark.read.parquet(where).groupBy("table", "reason").count().collect()}
    return counts, (where if counts else None)


def export_cutoff(spark: SparkSession, location: str) -> pd.Timestamp | None:
    """The export's cutoff from `<location>/cutoff.txt` (as the simulator writes beside each
    export and a dropped delta holds: `core.timestamps.parse_cutoff`), if there is one."""
    from pyspark.errors import AnalysisException

    where = f"{location.rstrip('/')}/cutoff.txt"
    try:
        first = spark.read.text(where).first()
    except AnalysisException:
        return None
    if first is None:
        return None
    try:
        return parse_cutoff(str(first[0]))
    except ValueError as err:
        raise SparkInputError(f"{where}: {err}") from None


def latest_timestamp(spark: SparkSession) -> pd.Timestamp:
    """The latest timestamp in the registered tables (created, converted, lost, activity), as
    `core.timestamps.latest_timestamp` reads it from the warehouse."""
    row = spark.sql("""
        SELECT greatest(max(created_at), max(converted_at), max(closed_lost_at),
                        (SELECT max(occurred_at) FROM activities)) AS latest FROM leads
    """).first()
    if row is None or row["latest"] is None:
        raise SparkInputError("the leads and activities hold no timestamp")
    return pd.Timestamp(row["latest"])


def default_as_of(spark: SparkSession, location: str) -> pd.Timestamp:
    """`core.timestamps.as_of_after` the export's `cutoff.txt` and the latest data."""
    return as_of_after(export_cutoff(spark, location), latest_timestamp(spark))


def data_end(spark: SparkSession, location: str) -> pd.Timestamp:
    """`core.timestamps.end_of` the export's `cutoff.txt` and the latest data (training's
    default `until`)."""
    return end_of(export_cutoff(spark, location), latest_timestamp(spark))
