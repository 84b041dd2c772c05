"""Scores, grades and reasons: the one implementation the service, the CLI and the reports use.

Reasons come from LightGBM's exact TreeSHAP (log-odds). They are shown in probability points:
each feature's log-odds contribution times the secant slope of the calibrated score between the
base value and this lead's raw score, so the points add up exactly to `score - base_score`
(what a waterfall chart needs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from core.grades import grade
from core.model_bundle import ModelBundle
from core.reason_text import family_of, phrase
from core.settings import EngagementConfig, ServeConfig
from features.catalog import engagement_features


def feature_labels(cfg: EngagementConfig, attributes: list[str]) -> dict[str, str]:
    """Readable label per feature: the data dictionary's description."""
    labels = {f.name: f.description for f in engagement_features(cfg)}
    labels.update({a: a.replace("_", " ") for a in attributes})
    return labels


def percentiles(scores: np.ndarray, book: np.ndarray | None) -> np.ndarray:
    """Each score's percentile in the open book: the share (0-100] of the open leads scored
    (`book`, their scores sorted ascending) whose score is at most this one; NaN without a
    book."""
    if book is None or len(book) == 0:
        return np.full(len(scores), np.nan)
    return 100.0 * np.searchsorted(book, scores, side="right") / len(book)


@dataclass(frozen=True)
class Explained:
    """One row's explanation: base score, score, and per-feature points and log-odds."""

    base_score: float
    score: float
    points: np.ndarray  # per feature, probability points, sums to score - base_score
    row: np.ndarray  # the lead's feature values (objects), read only for the reasons shown
    raw: np.ndarray  # per feature, log-odds contributions (orders reasons where points tie)

    def value(self, j: int) -> Any:
        """Feature `j`'s value as plain JSON-ready Python (None when missing)."""
        return _plain(self.row[j])


class Scorer:
    """A loaded model with what it takes to turn feature rows into answers."""

    def __init__(self, bundle: ModelBundle, serve: ServeConfig, labels: dict[str, str]) -> None:
        self.bundle = bundle
        self.serve = serve
        self.labels = labels
        self.engine: Callable[[np.ndarray], np.ndarray] | None = None
        """Raw scores from compiled trees (`serving.compiled_trees`), when in use."""

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        """Raw (log-odds) scores of a design matrix, from the compiled trees when in use."""
        return self.engine(x) if self.engine is not None else self.bundle.raw_score(
            x, num_threads=1)

    @property
    def version(self) -> int | None:
        """The registered version of the model, if it came from the registry."""
        return self.bundle.meta.get("version")

    def scores(self, feats: pd.DataFrame) -> np.ndarray:
        """Calibrated scores, one per feature row."""
        return np.asarray(self.bundle.calibrator(self.raw_scores(self.bundle.matrix(feats))))

    def inputs(self, feats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The model's design matrix for `feats` and the same cells as plain values (what
        reasons show), in the model's feature order."""
        return (np.ascontiguousarray(self.bundle.matrix(feats)),
                feats[list(self.bundle.features)].astype(object).to_numpy())

    def explain(self, feats: pd.DataFrame, x: np.ndarray | None = None) -> list[Explained]:
        """Per row: base score, score, and each feature's contribution in probability points."""
        x = self.bundle.matrix(feats) if x is None else x
        return self.explain_matrix(x, feats[list(self.bundle.features)].astype(object).to_numpy())

    def explain_matrix(self, x: np.ndarray, values: np.ndarray,
                       contrib: np.ndarray | None = None) -> list[Explained]:
        """`explain` for prepared inputs (see `inputs`); `contrib`: their TreeSHAP values when
        already computed (`ModelBundle.contributions`)."""
        # one lead: one thread (no pool start-up); a batch: every core
        if contrib is None:
            contrib = self.bundle.contributions(x, num_threads=1 if len(x) <= 64 else 0)
        raw = contrib.sum(axis=1)
        base_raw = contrib[:, -1]
        cal = self.bundle.calibrator
        score, base = cal(raw), cal(base_raw)
        gap = raw - base_raw
        slope = np.where(np.abs(gap) > 1e-9, (score - base) / np.where(gap == 0, 1, gap), 0.0)
        points = contrib[:, :-1] * slope[:, None]
        return [Explained(float(base[i]), float(score[i]), points[i], values[i],
                          contrib[i, :-1]) for i in range(len(x))]

    def reasons(self, e: Explained, k: int) -> list[dict[str, Any]]:
        """The k reasons that moved this lead's score most, largest first, each in plain words
        (`text`). Related features are one reason (`core.reason_text`): its points are the
        sum of theirs, `feature` the one that moved the score most, `features` all of them.
        Features that did not move the score at all are never reasons. Where calibration is
        flat around a lead (its points are all zero), the log-odds order the reasons."""
        fam_points = np.bincount(self._family_index, weights=e.points,
                                 minlength=len(self._families))
        fam_raw = np.bincount(self._family_index, weights=np.abs(e.raw),
                              minlength=len(self._families))
        order = np.lexsort((-fam_raw, -np.abs(fam_points)))
        values = _RowValues(e, self._positions)
        out: list[dict[str, Any]] = []
        for f in order:
            if fam_raw[f] == 0.0:
                continue
            if len(out) == k:
                break
            members = self._families[f][1]
            lead = max(members, key=lambda j: (abs(e.points[j]), abs(e.raw[j])))
            reason = self._reason(e, lead)
            pts = float(fam_points[f]) * 100.0
            reason.update(points=round(pts, 3), direction="raises" if pts > 0 else (
                "lowers" if pts < 0 else "neutral"), text=phrase(self._families[f][0], values))
            if len(members) > 1:
                reason["features"] = [self.bundle.features[j] for j in members]
            out.append(reason)
        return out

    @cached_property
    def _families(self) -> list[tuple[str, list[int]]]:
        """The reasons this model's features make up: (family, feature positions)."""
        groups: dict[str, list[int]] = {}
        for j, name in enumerate(self.bundle.features):
            groups.setdefault(family_of(name), []).append(j)
        return list(groups.items())

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {name: j for j, name in enumerate(self.bundle.features)}

    @cached_property
    def _family_index(self) -> np.ndarray:
        index = np.zeros(len(self.bundle.features), dtype=np.int64)
        for f, (_name, members) in enumerate(self._families):
            index[members] = f
        return index

    def breakdown(self, e: Explained) -> list[dict[str, Any]]:
        """Every feature's contribution to this lead's score, in the model's feature order."""
        return [self._reason(e, j) for j in range(len(self.bundle.features))]

    def _reason(self, e: Explained, j: int) -> dict[str, Any]:
        name = self.bundle.features[j]
        pts = float(e.points[j]) * 100.0
        return {"feature": name, "label": self.labels.get(name, name), "value": e.value(j),
                "points": round(pts, 3),
                "direction": "raises" if pts > 0 else ("lowers" if pts < 0 else "neutral")}

    def score_rows(self, feats: pd.DataFrame, explain: int = 0,
                   book: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Score, grade, percentile in the open book (`book`: the open leads' scores sorted
        ascending; None: no percentile), model version, and top reasons."""
        x = self.bundle.matrix(feats)
        values = (feats[list(self.bundle.features)].astype(object).to_numpy() if explain > 0
                  else None)
        return self.score_matrix(x, values, explain, book)

    def score_matrix(self, x: np.ndarray, values: np.ndarray | None, explain: int = 0,
                     book: np.ndarray | None = None,
                     contrib: np.ndarray | None = None) -> list[dict[str, Any]]:
        """`score_rows` for prepared inputs (see `inputs`; `values` needed with `explain`;
        `contrib` as in `explain_matrix`)."""
        return self.answers(*self.scores_and_reasons(x, values, explain, contrib), book)

    def scores_and_reasons(self, x: np.ndarray, values: np.ndarray | None, explain: int = 0,
                           contrib: np.ndarray | None = None,
                           ) -> tuple[np.ndarray, list[list[dict[str, Any]]] | None]:
        """The calibrated scores (unrounded) and, with `explain`, each row's top reasons."""
        if explain <= 0:
            return np.asarray(self.bundle.calibrator(self.raw_scores(x))), None
        if values is None:  # every caller passes them with `explain`
            raise TypeError("scores_and_reasons: `values` is needed with `explain`")
        explained = self.explain_matrix(x, values, contrib)
        return (np.array([e.score for e in explained]),
                [self.reasons(e, explain) for e in explained])

    def answers(self, s: np.ndarray, reasons: list[list[dict[str, Any]]] | None,
                book: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The answer rows for scores `s` and (optionally) each row's reasons."""
        grades = grade(s, self.serve.grade_cutoffs)
        pct = percentiles(s, book)
        rows: list[dict[str, Any]] = [
            {"score": round(float(s[i]), 6), "grade": str(grades[i]),
             "percentile": round_percentile(pct[i]),
             "model_version": self.version} for i in range(len(s))]
        if reasons is not None:
            for row, r in zip(rows, reasons, strict=True):
                row["reasons"] = r
        return rows


class _RowValues(Mapping[str, Any]):
    """One lead's feature values by name, each read only when a phrase asks for it."""

    def __init__(self, e: Explained, positions: dict[str, int]) -> None:
        self._e, self._positions = e, positions

    def __getitem__(self, name: str) -> Any:
        return self._e.value(self._positions[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return v if isinstance(v, (str, int, bool)) else str(v)


def round_percentile(value: float) -> float | None:
    """A percentile as answers give it: one decimal by Python's rounding, None when unknown."""
    return None if np.isnan(value) else round(float(value), 1)
