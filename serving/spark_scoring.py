"""Batch scores on Spark: the champion applied per partition (`mapInPandas`), with reasons on
request.

The same `Scorer` and bundle loader as `leadlens score` and the service: the driver loads the
champion through the registry (digest checked), ships the bundle's files with the task, and
each Python worker loads them once through `core.model_bundle.load_bundle` (checked again).
Percentiles are measured in the book scored, as `leadlens score --open` measures them: a second
light pass once every score is known.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.model_bundle import META_FILE, ModelBundle, load_bundle
from core.names import CONVERSION, registered_name
from core.settings import Runtime, ServeConfig
from core.timestamps import AFTER_DATA
from features.engagement import feature_columns
from features.spark_engine import SparkInputError, SparkRun
from serving.batch import answer_frame
from serving.scorer import Scorer, percentiles

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_LOADED: dict[str, Scorer] = {}
"""Scorers loaded in this Python worker, by the digest of their bundle's files."""


@dataclass(frozen=True)
class ShippedModel:
    """What a task needs to rebuild the scorer: the bundle's files and the scorer's settings."""

    files: dict[str, bytes]
    version: int | None
    serve: ServeConfig
    labels: dict[str, str]

    @classmethod
    def of(cls, scorer: Scorer) -> ShippedModel:
        """The files of `scorer`'s bundle (saved afresh, so they carry their digests)."""
        with tempfile.TemporaryDirectory(prefix="leadlens-ship-") as tmp:
            folder = scorer.bundle.save(Path(tmp))
            files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        return cls(files, scorer.version, scorer.serve, dict(scorer.labels))

    @property
    def digest(self) -> str:
        """One digest for the files (the bundle's metadata holds each model file's)."""
        return hashlib.sha256(self.files[META_FILE]).hexdigest()

    def scorer(self) -> Scorer:
        """The scorer, loaded once per worker through the shared loader (which refuses files
        that differ from their recorded digests)."""
        if self.digest not in _LOADED:
            with tempfile.TemporaryDirectory(prefix="leadlens-model-") as tmp:
                for name, data in self.files.items():
                    (Path(tmp) / name).write_bytes(data)
                bundle: ModelBundle = load_bundle(Path(tmp))
            bundle.meta["version"] = self.version
            _LOADED[self.digest] = Scorer(bundle, self.serve, self.labels)
        return _LOADED[self.digest]


UNROUNDED, BOOK = "_unrounded_score", "_book_score"


def _schema(explain: int, unrounded: bool = False) -> str:
    reasons = "".join(f", reason_{k + 1} string" for k in range(explain))
    return ("lead_id string, as_of timestamp_ntz, score double, grade string, "
            f"percentile double, model_version long{reasons}"
            + (f", {UNROUNDED} double, {BOOK} double" if unrounded else ""))


def _score_batches(model: ShippedModel, explain: int,
                   ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scorer = model.scorer()
        for feats in batches:
            if feats.empty:
                continue
            x, values = scorer.inputs(feats)
            scores, reasons = scorer.scores_and_reasons(x, values, explain)
            out = answer_frame([str(v) for v in feats["lead_id"]],
                               scorer.answers(scores, reasons), explain)
            out.insert(1, "as_of", feats["as_of"].to_numpy())
            out["model_version"] = out["model_version"].astype("Int64")
            # unrounded: each answer's score, and the score the open book holds (as in
            # `serving.batch.open_book`: from the raw scores, not the explanation's sum)
            out[UNROUNDED] = scores
            out[BOOK] = (scores if explain <= 0 else
                         np.asarray(scorer.bundle.calibrator(scorer.raw_scores(x))))
            yield out
    return apply


def _with_percentiles(book: np.ndarray,
                      ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in batches:
            pct = percentiles(part.pop(UNROUNDED).to_numpy(float), book)
            part.pop(BOOK)
            yield part.assign(percentile=np.round(pct, 1))
    return apply


def score_features(features: DataFrame, scorer: Scorer, explain: int = 0) -> DataFrame:
    """Score, grade, percentile in the book scored, model version and (with `explain`) the top
    reasons of every row of `features` (`features.spark_engine.spark_features`). The result
    is persisted: the percentiles need every score first."""
    from pyspark import StorageLevel

    model = ShippedModel.of(scorer)
    scored = features.mapInPandas(_score_batches(model, explain), _schema(explain, True))
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    scores: pd.DataFrame = scored.select(BOOK).toPandas()
    book = np.sort(scores[BOOK].to_numpy(float))
    return scored.mapInPandas(_with_percentiles(book), _schema(explain))


def score_to_parquet(runtime: Runtime, location: str, as_of: pd.Timestamp | None, explain: int,
                     out: str, say: Callable[[str], None]) -> SparkRun:
    """`leadlens score --engine spark`: every lead open at `as_of` (default: just after the
    latest data) in the contract tables under `location`, scored by the champion, written as
    Parquet to `out`; unusable rows kept aside next to it."""
    from features.spark_engine import (
        data_end,
        keep_aside,
        open_pairs,
        read_tables,
        spark_features,
        spark_session,
    )
    from serving.models import load_champion

    ingest = runtime.settings.ingest
    spark = spark_session(runtime.settings.spark)
    tables = read_tables(spark, location, ingest.personal_data_columns,
                         ingest.keep_columns)
    tables.register()
    when = pd.Timestamp(as_of) if as_of is not None else data_end(spark) + AFTER_DATA
    scorer = load_champion(runtime, CONVERSION, list(tables.attributes))
    missing = [f for f in scorer.bundle.features if f not in
               feature_columns(runtime.settings.engagement, list(tables.attributes))]
    if missing:
        raise SparkInputError(f"{location}: the champion needs lead column {missing[0]!r}, "
                              "which the leads table does not have")
    say(f"scoring the leads open at {when} on Spark ({spark.conf.get('spark.master', 'remote')}) "
        f"with {registered_name(CONVERSION)} v{scorer.version}")
    feats = spark_features(spark, tables, open_pairs(spark, when, "open"),
                           runtime.settings.engagement)
    scored = score_features(feats, scorer, explain)
    scored.write.mode("overwrite").parquet(out)
    rows = spark.read.parquet(out).count()
    rejected, where = keep_aside(tables, out)
    return SparkRun(when, rows, rejected, where)
