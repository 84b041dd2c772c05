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
            # rounded as the answers round them (Python's round, not numpy's)
            yield part.assign(percentile=[None if np.isnan(v) else round(float(v), 1)
                                          for v in pct])
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

