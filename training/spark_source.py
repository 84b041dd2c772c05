"""Training data from Spark, for CRMs beyond one machine.

- **Examples and labels on Spark**: the warehouse's own example queries (`features.labels`,
  generated for the Spark dialect), over the session's `leads`, `activities` and `reps` views.
- **A stratified sample of leads for the fit**: leads are drawn within strata of (creation
  month, converted by `until` or not), the same share of each stratum, so each period and the
  outcome rate keep their shares of the full data (calibration fitted on the sample holds for
  the full data; no reweighting). A lead is drawn whole, with every example it has, so the
  per-lead snapshot cap and the replay's origins select exactly what they would on the full
  data. The share is the one that brings the model's examples to `spark.train_sample_rows`
  (all of them when fewer); the features of the sampled examples are computed on Spark, from
  the full tables (a rep's track record counts every lead), and brought to this machine.
- **The evaluation on the full data**: the replay's test book (every lead open at the replay
  origin) or the test period's examples are featured and scored on Spark (`mapInPandas`, the
  fitted model and both baselines shipped with the task); only each row's label, groups and
  scores come back for the metrics. The SHAP summary and the leakage audit read the sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.settings import EngagementConfig, Settings, TrainConfig
from features.engagement import SPARK, feature_columns, type_features
from features.labels import (
    Examples,
    calendar_dates,
    creation_from,
    creation_sql,
    dropout_from,
    dropout_sql,
    open_leads_sql,
    tidy_examples,
)
from features.spark_engine import spark_features
from training.dataset import EXAMPLE_CONTEXT, OWNERS_SQL
from training.replay import Origins, ReplayFrames
from training.sources import (
    JUDGED_COLUMNS,
    NotEnoughData,
    Predict,
    Prepared,
    free_text_of,
    split_or_refuse,
)
from training.specs import ModelSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Say = Callable[[str], None]
SCORE = "score_"
"""Prefix of the scorers' columns in the Spark evaluation's output."""


@dataclass
class SparkData:
    """Training data read by Spark from contract tables registered as the session's views
    `leads`, `activities` and `reps` (`ingest.spark_tables`)."""

    spark: SparkSession
    location: str
    attributes: dict[str, str]
    data_end: Callable[[], pd.Timestamp]
    """Where the data ends (read only when training is given no `until`)."""
    sample_rows: int
    seed: int = 0
    sampled: dict[str, str] = field(default_factory=dict)
    """Per example kind: how many examples and leads the fit saw of how many."""
    _views: int = 0

    @property
    def source(self) -> str:
        """`TrainingData.source`."""
        return self.location

    holder = "export"

    def attribute_types(self) -> dict[str, str]:
        """`TrainingData.attribute_types`."""
        return dict(self.attributes)

    def free_text(self, max_share: float) -> list[str]:
        """`TrainingData.free_text`: one pass over the leads on Spark."""
        from pyspark.sql import functions as F

        text = [a for a, kind in self.attributes.items() if kind != "numeric"]
        if not text:
            return []
        leads = self.spark.table("leads")
        row = leads.agg(*[F.struct(F.countDistinct(F.col(f"`{a}`")).alias("d"),
                                   F.count(F.col(f"`{a}`")).alias("n")).alias(a)
                          for a in text]).first()
        if row is None:  # an aggregate always has its row
            raise RuntimeError("the attribute counts returned no row")
        return free_text_of(text, [(int(row[a]["d"]), int(row[a]["n"])) for a in text],
                            max_share)

    def has_activities(self) -> bool:
        """`TrainingData.has_activities`."""
        return bool(self.spark.table("activities").limit(1).count())

    def end(self) -> pd.Timestamp:
        """`TrainingData.end`."""
        return self.data_end()

    def run_params(self) -> dict[str, str]:
        """`TrainingData.run_params`: the engine and the sample's size."""
        return {"engine": "spark", "spark_train_sample_rows": str(self.sample_rows)}

    def sample_note(self, examples: str) -> str | None:
        """`TrainingData.sample_note`."""
        return self.sampled.get(examples)

    def conversion_days(self, lead_ids: pd.Series) -> np.ndarray:
        """`TrainingData.conversion_days`."""
        ids = self.spark.createDataFrame(pd.DataFrame({"lead_id": lead_ids.astype(str)}),
                                         "lead_id string")
        days: pd.DataFrame = (self.spark.table("leads").join(ids, "lead_id", "left_semi")
                .selectExpr("(unix_micros(converted_at) - unix_micros(created_at)) "
                            "/ 86400e6 AS d").toPandas())
        return days["d"].to_numpy(float)

    # -- examples and the sample ------------------------------------------------------------

    def _rows(self, which: str, cfg: TrainConfig, until: pd.Timestamp,
              dates: list[pd.Timestamp] | None = None) -> DataFrame:
        """The example query `which` (snapshots, creation, touches) run on Spark."""
        if which == "touches":
            return self.spark.sql(dropout_sql(cfg, until, SPARK))
        if which == "creation":
            return self.spark.sql(creation_sql(cfg, until, SPARK))
        snaps = pd.DataFrame({"as_of": pd.to_datetime(dates or []).astype("datetime64[us]")})
        # a view per call: a query made earlier keeps reading its own dates
        self._views += 1
        view = f"snapshot_dates_{self._views}"
        self.spark.createDataFrame(snaps, "as_of timestamp_ntz").createOrReplaceTempView(view)
        return self.spark.sql(open_leads_sql(cfg, until, SPARK, view))

    def _sample_leads(self, rows: DataFrame, usable: str, until: pd.Timestamp,
                      what: str, say: Say) -> DataFrame:
        """The leads of the fit's sample (`lead_id`): the share of every stratum that brings
        the `usable` rows to `sample_rows` (module docstring), the first of each stratum by a
        seeded hash of the lead id (so a smaller sample is part of a larger one)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        counted = rows.where(usable).agg(F.count(F.lit(1)).alias("rows"),
                                         F.countDistinct("lead_id").alias("leads")).first()
        total, leads_with = ((int(counted["rows"]), int(counted["leads"])) if counted
                             else (0, 0))
        u = SPARK.timestamp(until)
        leads = self.spark.sql(f"""
            SELECT lead_id, date_trunc('MONTH', created_at) AS month,
                   coalesce(converted_at < {u}, false) AS won
            FROM leads WHERE created_at < {u}
        """)  # noqa: S608 (a timestamp literal)
        if total <= self.sample_rows:
            self.sampled[what] = f"all {total:,} examples of {leads_with:,} leads"
            say(f"{total:,} {what} examples: all of them fit on this machine")
            return leads.select("lead_id")
        share = self.sample_rows / total
        stratum = Window.partitionBy("month", "won")
        # a stratum of n leads gives floor(n x share + u) of them, u uniform in [0, 1) drawn
        # per stratum from a seeded hash: n x share on average, never a lead off, so every
        # lead has the same chance (the strata make the shares exact, they favour no outcome);
        # which leads: the first by a seeded hash of the id
        offset = F.pmod(F.xxhash64("month", "won", F.lit(self.seed + 1)),
                        F.lit(1_000_003)) / F.lit(1_000_003.0)
        ranked = leads.select(
            "lead_id",
            F.row_number().over(stratum.orderBy(F.xxhash64("lead_id", F.lit(self.seed)),
                                                "lead_id")).alias("rank"),
            F.floor(F.count(F.lit(1)).over(stratum) * F.lit(share) + offset).alias("take"))
        chosen = ranked.where(F.col("rank") <= F.col("take")).select(
            "lead_id").localCheckpoint(eager=True)
        self.sampled[what] = (f"{share:.2%} of the leads of every (creation month, converted) "
                              f"stratum: about {self.sample_rows:,} of {total:,} examples "
                              f"({leads_with:,} leads)")
        say(f"{total:,} {what} examples: fitting on a stratified sample of {share:.1%} of the "
            f"leads (spark.train_sample_rows {self.sample_rows:,})")
        return chosen

    def _collected(self, rows: DataFrame, sample: DataFrame) -> pd.DataFrame:
        """The example rows of the sampled leads, on this machine, in time order."""
        frame: pd.DataFrame = rows.join(sample, "lead_id", "left_semi").toPandas()
        return frame.sort_values(["as_of", "lead_id"], kind="stable").reset_index(drop=True)

    # -- features ----------------------------------------------------------------------------

    def _pairs(self, frame: pd.DataFrame) -> DataFrame:
        return self.spark.createDataFrame(pd.DataFrame({
            "pair_id": np.arange(len(frame), dtype=np.int64),
            "lead_id": frame["lead_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(frame["as_of"]).astype("datetime64[us]").to_numpy(),
        }), "pair_id long, lead_id string, as_of timestamp_ntz")

    def _owners(self) -> DataFrame:
        return self.spark.sql(OWNERS_SQL)

    def featured(self, ex: pd.DataFrame, cfg: EngagementConfig) -> pd.DataFrame:
        """`training.dataset.with_features` on Spark: the rows of `ex` with their features,
        owner rep and team, in the order of `ex`."""
        keep = [c for c in EXAMPLE_CONTEXT if c in ex.columns]
        if ex.empty:  # the columns `with_features` gives, no rows
            cols = feature_columns(cfg, list(self.attributes))
            return ex[keep].reset_index(drop=True).assign(
                **{c: pd.Series(dtype=float) for c in cols},
                owner_rep_id=pd.Series(dtype=object), team=pd.Series(dtype=object))
        feats = spark_features(self.spark, self.attributes, self._pairs(ex), cfg,
                               keep_pair_id=True)
        got: pd.DataFrame = feats.drop("lead_id", "as_of").toPandas()
        got = got.sort_values("pair_id")
        if len(got) != len(ex):
            raise ValueError(f"{len(ex) - len(got):,} examples have no lead in the leads table")
        got = type_features(got.drop(columns="pair_id").reset_index(drop=True), cfg)
        out = pd.concat([ex[keep].reset_index(drop=True), got], axis=1)
        owners = self._owners().join(
            self.spark.createDataFrame(ex[["lead_id"]].drop_duplicates().astype(str),
                                       "lead_id string"), "lead_id", "left_semi").toPandas()
        return out.merge(owners, on="lead_id", how="left", validate="many_to_one")

    # -- what training asks ------------------------------------------------------------------

    def prepared(self, spec: ModelSpec, settings: Settings, until: pd.Timestamp,
                 say: Say) -> Prepared:
        """`TrainingData.prepared`: the sample's examples with their split and features; the
        test period's examples of every lead, judged on Spark."""
        from pyspark import StorageLevel

        cfg = settings.train
        # as `training.sources.examples_for`: a conversion model outside the replay (flat
        # exports: `train.conversion_examples: creation`) learns from leads at creation
        which = "creation" if spec.examples == "snapshots" else spec.examples
        # read four times (counted, sampled, left-out reasons, the test period): made once
        rows = self._rows(which, cfg, until).persist(StorageLevel.MEMORY_AND_DISK)
        usable = (f"label IS NOT NULL AND horizon_end <= {SPARK.timestamp(until)}")
        sample = self._sample_leads(rows, usable, until, which, say)
        frame = self._collected(rows, sample)
        made = (dropout_from(frame, until) if which == "touches"
                else creation_from(frame, until))
        examples = Examples(made.frame, self._left_out(which, rows, until, made))
        if examples.frame.empty:
            raise NotEnoughData(f"no usable {spec.kind} examples before {until}")
        split = split_or_refuse(examples, settings, until)
        say(f"[{spec.kind}] {len(examples.frame):,} examples in the sample; computing their "
            "features on Spark")
        ex = examples.frame.assign(split=split.assign(examples.frame))
        data = self.featured(ex, settings.engagement)
        test_rows = rows.where(usable).where(
            f"created_at >= {SPARK.timestamp(split.test_from)}")
        test = SparkTest(self, test_rows, data[data["split"] == "test"].reset_index(drop=True),
                         settings.engagement)
        return Prepared(examples, split, data[data["split"] != "test"].reset_index(drop=True),
                        test)

    @staticmethod
    def _left_out(which: str, rows: DataFrame, until: pd.Timestamp,
                  made: Examples) -> dict[str, int]:
        """The examples left out, counted on the full data by the reasons `dropout_from` and
        `creation_from` give, and the usable ones the fit's sample did not take."""
        from pyspark.sql import functions as F

        late = F.col("horizon_end") > F.expr(SPARK.timestamp(until))
        known = F.col("label").isNotNull()
        reasons = ({"lead resolved inside the window": ~known,
                    "window runs past the data": known & late} if which == "touches"
                   else {"horizon runs past the data": late})
        row = rows.agg(F.count(F.lit(1)).alias("all"), *[
            F.count(F.when(cond, 1)).alias(f"r{i}")
            for i, cond in enumerate(reasons.values())]).first()
        if row is None:  # an aggregate always has its row
            raise RuntimeError("the example counts returned no row")
        counts = {why: int(row[f"r{i}"]) for i, why in enumerate(reasons)}
        usable = int(row["all"]) - sum(counts.values())
        if set(counts) != set(made.excluded):  # the two engines give the same reasons
            raise RuntimeError(f"reasons differ: {sorted(counts)} and {sorted(made.excluded)}")
        return {**counts, "usable, not in the fit's sample (judged on Spark when in the test "
                          "period)": usable - len(made.frame)}

    def replay(self, settings: Settings, until: pd.Timestamp, say: Say) -> ReplayFrames:
        """`TrainingData.replay`: snapshots and books of the sampled leads with their
        features; the replay book of every lead, judged on Spark."""
        cfg = settings.train
        origins = Origins.of(until, cfg.horizon_days)
        first = self.spark.sql(
            f"SELECT min(created_at) AS t FROM leads WHERE created_at < {SPARK.timestamp(until)}"  # noqa: S608 (a timestamp literal)
        ).first()
        start = None if first is None or first["t"] is None else pd.Timestamp(first["t"])
        from pyspark import StorageLevel

        # counted for the sample's share, then the sample's rows collected: made once
        snaps = self._rows("snapshots", cfg, until, calendar_dates(start, cfg, until)).persist(
            StorageLevel.MEMORY_AND_DISK)
        sample = self._sample_leads(snaps, "label IS NOT NULL", until, "snapshots", say)
        h = pd.Timedelta(days=cfg.horizon_days)
        frame = tidy_examples(self._collected(snaps, sample))
        books = []
        for origin in (origins.validation, origins.replay):
            book = self._rows("snapshots", cfg, origin + h, [origin])
            books.append((book, tidy_examples(self._collected(book, sample))))
        full_book = books[1][0]
        say(f"[conversion] {len(frame):,} snapshots of the sampled leads; computing their "
            "features on Spark")
        eng = settings.engagement
        replay_book = self.featured(books[1][1], eng)
        return ReplayFrames(origins, self.featured(frame, eng), self.featured(books[0][1], eng),
                            replay_book, cfg.max_snapshots_per_lead,
                            test=SparkTest(self, full_book, replay_book, eng))


@dataclass
class SparkTest:
    """Test rows on Spark (`training.sources.TestRows`): every one is featured and scored where
    it lies; `featured` is the sample's share of them, on this machine."""

    data: SparkData
    rows: DataFrame  # lead_id, as_of, label, ...: the full test population
    sample: pd.DataFrame
    cfg: EngagementConfig
    _features: DataFrame | None = None

    @property
    def featured(self) -> pd.DataFrame:
        """`TestRows.featured`: the sampled leads' test rows."""
        return self.sample

    def labels(self) -> tuple[int, int]:
        """`TestRows.labels`, counted on Spark."""
        from pyspark.sql import functions as F

        row = self.rows.agg(F.sum("label").alias("pos"), F.count(F.lit(1)).alias("n")).first()
        pos = int(row["pos"] or 0) if row is not None else 0
        n = int(row["n"]) if row is not None else 0
        return pos, n - pos

    def _with_features(self) -> DataFrame:
        """The test rows with their features, label, owner and team (computed once, kept)."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        if self._features is None:
            labelled = self.rows.select("lead_id", "as_of", "label").withColumn(
                "pair_id", F.monotonically_increasing_id()).localCheckpoint(eager=True)
            feats = spark_features(self.data.spark, self.data.attributes, labelled, self.cfg,
                                   keep_pair_id=True)
            self._features = (feats.join(labelled.select("pair_id", "label"), "pair_id")
                              .join(self.data._owners(), "lead_id", "left")
                              .persist(StorageLevel.MEMORY_AND_DISK))
        return self._features

    def score(self, scorers: dict[str, Predict]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """`TestRows.score`: the scorers applied per partition on Spark."""
        feats = self._with_features()
        names = list(scorers)
        schema = ("pair_id long, lead_id string, as_of timestamp_ntz, label int, source string, "
                  "team string, lead_age_days double"
                  + "".join(f", {SCORE}{n} double" for n in names))
        scored: pd.DataFrame = feats.mapInPandas(_scoring(scorers, self.cfg), schema).toPandas()
        scored = scored.sort_values(["as_of", "lead_id", "pair_id"], kind="stable")
        rows = scored[list(JUDGED_COLUMNS)].reset_index(drop=True)
        rows["label"] = rows["label"].astype("int8")
        rows["as_of"] = pd.to_datetime(rows["as_of"]).astype("datetime64[us]")
        rows["source"] = rows["source"].astype("string")
        return rows, {n: scored[SCORE + n].to_numpy(float) for n in names}

    def outside(self, train: pd.DataFrame, numeric: list[str]) -> dict[str, float]:
        """`TestRows.outside`, counted on Spark against the training rows' ranges."""
        from pyspark.sql import functions as F

        feats = self._with_features()
        ranges = {}
        for f in numeric:
            seen = pd.to_numeric(train[f], errors="coerce").dropna()
            if not seen.empty and f in feats.columns:
                ranges[f] = (float(seen.min()), float(seen.max()))
        if not ranges:
            return {}
        row = feats.agg(*[F.struct(
            F.count(F.col(f"`{f}`")).alias("n"),
            F.count(F.when((F.col(f"`{f}`") < lo) | (F.col(f"`{f}`") > hi), 1)).alias("out"),
        ).alias(f"r{i}") for i, (f, (lo, hi)) in enumerate(ranges.items())]).first()
        if row is None:
            return {}
        out = {}
        for i, f in enumerate(ranges):
            n = int(row[f"r{i}"]["n"])
            if n:
                out[f] = int(row[f"r{i}"]["out"]) / n
        return out


def _scoring(scorers: dict[str, Predict], cfg: EngagementConfig,
             ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Per partition: each scorer's scores of the rows, with what the evaluation reads."""
    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Score each batch."""
        for batch in batches:
            if batch.empty:
                continue
            frame = type_features(batch, cfg)
            out = frame[["pair_id", *JUDGED_COLUMNS]].copy()
            out["source"] = out["source"].astype(object)
            for name, predict in scorers.items():
                out[SCORE + name] = np.asarray(predict(frame), dtype=float)
            yield out
    return apply

