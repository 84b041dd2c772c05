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
from core.settings import ServeConfig
from serving.batch import answer_frame
from serving.scorer import Scorer, percentiles, round_percentile

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
        """One digest for the files (the bundle's metadata holds each model file's) and the
        settings the scorer answers with (grade cut-offs, labels)."""
        h = hashlib.sha256(self.files[META_FILE])
        h.update(self.serve.model_dump_json().encode())
        h.update(repr(sorted(self.labels.items())).encode())
        return h.hexdigest()

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


OUTSIDE = "_outside_"
"""Prefix of the first pass's 0/1 columns: the row lies outside the training range of an input
(`ModelBundle.coverage`)."""


def _schema(explain: int, ranges: tuple[str, ...] | None = None) -> str:
    """The output's schema; with `ranges` (the first pass), the hidden columns too."""
    reasons = "".join(f", reason_{k + 1} string" for k in range(explain))
    hidden = ("" if ranges is None else f", {UNROUNDED} double, {BOOK} double"
              + "".join(f", {OUTSIDE}{name} int" for name in ranges))
    return ("lead_id string, as_of timestamp_ntz, score double, grade string, "
            f"percentile double, model_version long{reasons}{hidden}")


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
            for name, flags in scorer.bundle.outside(feats).items():
                out[OUTSIDE + name] = flags.astype("int32")
            yield out
    return apply


def _with_percentiles(book: np.ndarray,
                      ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in batches:
            pct = percentiles(part.pop(UNROUNDED).to_numpy(float), book)
            part = part.drop(columns=[c for c in part.columns
                                      if c == BOOK or c.startswith(OUTSIDE)])
            yield part.assign(percentile=[round_percentile(v) for v in pct])
    return apply


def score_features(features: DataFrame, scorer: Scorer, explain: int = 0,
                   ) -> tuple[DataFrame, dict[str, float]]:
    """Score, grade, percentile in the book scored, model version and (with `explain`) the top
    reasons of every row of `features` (`features.spark_engine.spark_features`), and the share
    of rows outside the training range per input (as `ModelBundle.coverage`). The first pass is
    persisted: the percentiles need every score first."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    ranges = tuple(n for n in scorer.bundle.meta.get("training_range", {})
                   if n in features.columns)
    model = ShippedModel.of(scorer)
    scored = features.mapInPandas(_score_batches(model, explain), _schema(explain, ranges))
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    scores: pd.DataFrame = scored.select(BOOK).toPandas()
    book = np.sort(scores[BOOK].to_numpy(float))
    coverage: dict[str, float] = {}
    if ranges and len(book):
        row = scored.agg(*[F.avg(OUTSIDE + n).alias(n) for n in ranges]).first()
        coverage = {n: float(row[n]) for n in ranges} if row is not None else {}
    return scored.mapInPandas(_with_percentiles(book), _schema(explain)), coverage
