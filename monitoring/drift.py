"""Drift measures on frames (no model, no warehouse): the population stability index of a
numeric or categorical input, and the realised discrimination and calibration of scores whose
outcomes are now known.

PSI = sum over bins of (current share - reference share) * ln(current / reference). Numeric
inputs are binned at the reference's deciles (moved to the midpoints between the distinct values
around them, ties merged), missing values in a bin of their own; categories are bins, a
category unseen in the reference joins an "other" bin. Shares are
floored at 1e-4 so an empty bin stays finite. Usual reading: below 0.1 stable, 0.1 to 0.25 a
moderate shift, above 0.25 a large one (`monitor.psi_warn`, `monitor.psi_alarm`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from core.calibration_metrics import (
    bootstrap_ece,
    calibration_curve,
    expected_calibration_error,
)

FLOOR = 1e-4
BINS = 10


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.maximum(ref_counts / max(ref_counts.sum(), 1), FLOOR)
    cur = np.maximum(cur_counts / max(cur_counts.sum(), 1), FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _edges(seen: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges at the reference's quantiles, each moved to the midpoint between the distinct
    reference values around it: a value seen in the reference sits inside a bin, never on an
    edge, so a feature with few distinct values (a rate shared by every lead of a source or
    rep) does not change bins when it moves by a hair."""
    distinct = np.unique(seen)
    if len(distinct) < 2:
        return np.empty(0)
    q = np.quantile(seen, np.linspace(0, 1, bins + 1)[1:-1])
    k = np.clip(np.searchsorted(distinct, q, side="right") - 1, 0, len(distinct) - 2)
    return np.unique((distinct[k] + distinct[k + 1]) / 2)


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float:
    """PSI of a numeric input, binned at the reference's quantiles (missing: its own bin)."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    edges = _edges(ref[~np.isnan(ref)], bins)

    def counts(v: np.ndarray) -> np.ndarray:
        known = v[~np.isnan(v)]
        binned = np.bincount(np.searchsorted(edges, known, side="right"),
                             minlength=len(edges) + 1)
        return np.append(binned, np.isnan(v).sum()).astype(float)

    return _psi(counts(ref), counts(cur))


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    """PSI of a categorical input (missing is a category; unseen categories share a bin)."""
    ref = reference.astype("string").fillna("<missing>")
    cur = current.astype("string").fillna("<missing>")
    cats = list(ref.value_counts().index)
    cur = cur.where(cur.isin(cats), "<other>")
    order = [*cats, "<other>"]
    return _psi(ref.value_counts().reindex(order, fill_value=0).to_numpy(dtype=float),
                cur.value_counts().reindex(order, fill_value=0).to_numpy(dtype=float))


def psi_frame(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
              categorical: list[str]) -> dict[str, float]:
    """PSI per input present in both frames."""
    out = {}
    for f in numeric:
        if f in reference and f in current:
            out[f] = round(psi_numeric(pd.to_numeric(reference[f], errors="coerce").to_numpy(
                dtype=float), pd.to_numeric(current[f], errors="coerce").to_numpy(dtype=float)),
                5)
    for f in categorical:
        if f in reference and f in current:
            out[f] = round(psi_categorical(reference[f], current[f]), 5)
    return out


def _bootstrap_auc(y: np.ndarray, p: np.ndarray, reps: int = 200, level: float = 0.90,
                   seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval of the ROC AUC (resamples with one class only are skipped)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            values.append(roc_auc_score(y[i], p[i]))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def realised(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC AUC and ECE, each with its 90% bootstrap interval, the calibration curve (per
    equal-width score bin: mean score, observed rate, rows), mean score and observed rate of scores
    whose outcomes are known (AUC None when only one class occurred)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return {"rows": 0, "positives": 0, "auc": None, "auc_low": None, "auc_high": None,
                "calibration": [], "ece": None, "ece_low": None,
                "ece_high": None, "mean_score": None, "observed_rate": None}
    lo, hi = bootstrap_ece(y, p, reps=200)
    both = 0 < y.sum() < len(y)
    auc_lo, auc_hi = _bootstrap_auc(y, p) if both else (None, None)
    return {"rows": len(y), "positives": int(y.sum()),
            "auc": float(roc_auc_score(y, p)) if both else None,
            "auc_low": auc_lo, "auc_high": auc_hi,
            "ece": expected_calibration_error(y, p), "ece_low": lo, "ece_high": hi,
            "calibration": [[round(float(r.mean_score), 5), round(float(r.observed), 5),
                             int(r.rows)] for r in calibration_curve(y, p).itertuples()],
            "mean_score": float(p.mean()), "observed_rate": float(y.mean())}
