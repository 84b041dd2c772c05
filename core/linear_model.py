"""A logistic regression in the shape of a LightGBM booster, so a bundle can hold either.

It reads the same design matrix (`core.model_bundle.encode`: numeric columns as they are,
categoricals as vocabulary codes) and scores log-odds as a sum of one term per input:
- numeric: `weight * z + missing_weight * is_missing`, with `z` the value clipped to its
  `low`-`high` range (set at fitting), missing filled with the training median, then
  standardised;
- categorical: one weight per vocabulary code, and one for missing or unseen.
Its contributions are exact SHAP values for an additive model: each term minus its mean over the
training rows, the base value holding the intercept plus those means (rows sum to the raw score).
Stored as plain JSON (`linear.json`), never a pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LINEAR_FILE = "linear.json"


@dataclass(frozen=True)
class NumericTerm:
    """One numeric input's term."""

    low: float
    high: float
    median: float
    mean: float
    scale: float
    weight: float
    missing_weight: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The term's log-odds for a column of values."""
        missing = np.isnan(x)
        z = (np.clip(np.where(missing, self.median, x), self.low, self.high) - self.mean)
        return self.weight * z / self.scale + self.missing_weight * missing


@dataclass(frozen=True)
class CategoryTerm:
    """One categorical input's term: a weight per vocabulary code, one for missing/unseen."""

    weights: tuple[float, ...]
    missing_weight: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The term's log-odds for a column of codes (NaN = missing or unseen)."""
        table = np.append(np.asarray(self.weights, dtype=np.float64), self.missing_weight)
        idx = np.where(np.isnan(x), len(self.weights), x).astype(np.int64)
        idx = np.where((idx < 0) | (idx > len(self.weights)), len(self.weights), idx)
        return table[idx]


@dataclass(frozen=True)
class LinearModel:
    """Logistic regression over the bundle's design matrix, with the booster's interface that
    LeadLens uses (`predict` with `raw_score` or `pred_contrib`, `feature_name`,
    `current_iteration`, `feature_importance`, `save_model`)."""

    names: tuple[str, ...]
    terms: tuple[NumericTerm | CategoryTerm, ...]
    intercept: float
    term_means: tuple[float, ...]

    def _terms(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(self.names))
        return np.column_stack([t(x[:, j]) for j, t in enumerate(self.terms)]) \
            if self.terms else np.zeros((len(x), 0))

    def predict(self, x: np.ndarray, raw_score: bool = False, pred_contrib: bool = False,
                num_threads: int = 0) -> np.ndarray:
        """Log-odds (`raw_score`), exact additive SHAP values with the base value last
        (`pred_contrib`), else probabilities. `num_threads` is accepted and unused."""
        del num_threads
        t = self._terms(x)
        if pred_contrib:
            means = np.asarray(self.term_means)
            base = self.intercept + means.sum()
            return np.column_stack([t - means, np.full(len(t), base)])
        raw = self.intercept + t.sum(axis=1)
        return raw if raw_score else 1.0 / (1.0 + np.exp(-raw))

    def feature_name(self) -> list[str]:
        """The input names, in design-matrix order."""
        return list(self.names)

    def current_iteration(self) -> int:
        """One fitted model (the booster's rounds; 1 for a regression)."""
        return 1

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Each input's largest absolute weight (a rough importance for the plots)."""
        del importance_type
        out = []
        for t in self.terms:
            if isinstance(t, NumericTerm):
                out.append(max(abs(t.weight), abs(t.missing_weight)))
            else:
                out.append(max([abs(w) for w in t.weights] + [abs(t.missing_weight)]))
        return np.asarray(out)

    def to_json(self) -> dict[str, Any]:
        """The model as `linear.json` holds it."""
        terms = []
        for name, t in zip(self.names, self.terms, strict=True):
            if isinstance(t, NumericTerm):
                terms.append({"name": name, "type": "numeric", **t.__dict__})
            else:
                terms.append({"name": name, "type": "categorical", "weights": list(t.weights),
                              "missing_weight": t.missing_weight})
        return {"intercept": self.intercept, "term_means": list(self.term_means),
                "terms": terms}

    def save_model(self, path: str) -> None:
        """Write `linear.json` beside where a booster would write `model.txt`."""
        Path(path).with_name(LINEAR_FILE).write_text(json.dumps(self.to_json(), indent=1),
                                                     encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        """Read `linear.json`; a malformed file raises ValueError naming what is wrong."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            terms: list[NumericTerm | CategoryTerm] = []
            for t in data["terms"]:
                if t["type"] == "numeric":
                    terms.append(NumericTerm(*(float(t[k]) for k in (
                        "low", "high", "median", "mean", "scale", "weight", "missing_weight"))))
                else:
                    terms.append(CategoryTerm(tuple(float(w) for w in t["weights"]),
                                              float(t["missing_weight"])))
            model = cls(tuple(str(t["name"]) for t in data["terms"]), tuple(terms),
                        float(data["intercept"]),
                        tuple(float(m) for m in data["term_means"]))
        except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a LeadLens linear model ({err})") from None
        values = [model.intercept, *model.term_means] + [
            v for t in model.terms for v in (t.__dict__.values() if isinstance(t, NumericTerm)
                                             else (*t.weights, t.missing_weight))]
        if len(model.term_means) != len(model.terms) or not np.isfinite(values).all() or any(
                isinstance(t, NumericTerm) and not t.scale > 0 for t in model.terms):
            raise ValueError(f"{path}: not a LeadLens linear model (inconsistent or "
                             "non-finite values)")
        return model
