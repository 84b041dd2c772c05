"""Calibration measures shared by training (the replay's gates) and monitoring (realised
calibration on leads resolved since a model was trained)."""

from __future__ import annotations

import numpy as np
import pandas as pd

CALIBRATION_BINS = 10


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(total / len(y))


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Per equal-width bin: rows, mean score, observed rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": idx, "y": y, "p": p})
    out = frame.groupby("bin").agg(rows=("y", "size"), mean_score=("p", "mean"),
                                   observed=("y", "mean")).reset_index()
    out["bin_low"] = edges[out["bin"]]
    out["bin_high"] = edges[out["bin"] + 1]
    return out


def bootstrap_ece(y: np.ndarray, p: np.ndarray, reps: int = 400, level: float = 0.90,
                  seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval of the expected calibration error (its sampling noise)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    values = [expected_calibration_error(y[i], p[i])
              for i in (rng.integers(0, len(y), len(y)) for _ in range(reps))]
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)
