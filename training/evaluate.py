"""Out-of-time evaluation: discrimination, calibration, lift, and AUC per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from core.calibration_metrics import expected_calibration_error


def lift_capture(y: np.ndarray, p: np.ndarray, top: float) -> tuple[float, float]:
    """Lift (rate in the top share / overall rate) and capture (share of positives there)."""
    n = max(1, round(len(y) * top))
    order = np.argsort(-p, kind="stable")[:n]
    base = y.mean()
    hit = y[order].sum()
    lift = float((hit / n) / base) if base > 0 else float("nan")
    capture = float(hit / y.sum()) if y.sum() > 0 else float("nan")
    return lift, capture


def _safe_auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def score_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every headline metric of one scorer on one set of examples."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    out = {
        "roc_auc": _safe_auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if y.sum() > 0 else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "positive_rate": float(y.mean()),
        "mean_score": float(p.mean()),
        "rows": float(len(y)),
    }
    for top in (0.1, 0.2):
        lift, capture = lift_capture(y, p, top)
        out[f"lift_top{int(top * 100)}"] = lift
        out[f"capture_top{int(top * 100)}"] = capture
    return out


def group_auc(y: np.ndarray, p: np.ndarray, groups: pd.Series,
              min_rows: int = 50) -> pd.DataFrame:
    """ROC AUC per group value (groups with fewer rows or one class get no AUC)."""
    frame = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p),
                          "g": groups.astype("string").fillna("(none)").to_numpy()})
    rows = []
    for g, part in frame.groupby("g", sort=True):
        auc = _safe_auc(part["y"].to_numpy(), part["p"].to_numpy()) \
            if len(part) >= min_rows else float("nan")
        rows.append({"group": g, "rows": len(part), "positives": int(part["y"].sum()),
                     "roc_auc": auc})
    return pd.DataFrame(rows)


AGE_BANDS = ((0, 30, "under 30 days"), (30, 90, "30-90 days"), (90, 180, "90-180 days"),
             (180, float("inf"), "180 days or more"))


def age_band(age_days: pd.Series) -> pd.Series:
    """Each lead's age band at scoring (the bands the replay reports AUC in)."""
    out = pd.Series("unknown", index=age_days.index, dtype="object")
    for lo, hi, name in AGE_BANDS:
        out[(age_days >= lo) & (age_days < hi)] = name
    return out


def paired_bootstrap(y: np.ndarray, a: np.ndarray, b: np.ndarray, reps: int = 400,
                     level: float = 0.90, seed: int = 0) -> tuple[float, float, float]:
    """AUC(a) - AUC(b) on the same rows, with a paired bootstrap interval (rows resampled
    together, so what both scorers get right or wrong together cancels)."""
    y, a, b = np.asarray(y), np.asarray(a), np.asarray(b)
    point = _safe_auc(y, a) - _safe_auc(y, b)
    rng = np.random.default_rng(seed)
    n = len(y)
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(reps)]
                       ).astype(np.float64) if n else np.zeros((0, 0))
    pos = y.astype(bool)
    usable = (weights[:, pos].sum(axis=1) > 0) & (weights[:, ~pos].sum(axis=1) > 0)
    if not usable.any():
        return point, float("nan"), float("nan")
    diffs = weighted_aucs(y, a, weights[usable]) - weighted_aucs(y, b, weights[usable])
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return float(point), float(lo), float(hi)


def weighted_aucs(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of `score` under each row of `weights` (row weights, e.g. bootstrap counts; ties
    count half): one AUC per weights row, equal to the AUC of the rows repeated that often."""
    from scipy import sparse

    values, inverse = np.unique(np.asarray(score, dtype=np.float64), return_inverse=True)
    onehot = sparse.csr_matrix((np.ones(len(inverse)), (np.arange(len(inverse)), inverse)),
                               shape=(len(inverse), len(values)))
    pos = np.asarray(y, dtype=np.float64)
    p = np.asarray(sparse.csr_matrix(weights * pos).dot(onehot).todense())
    q = np.asarray(sparse.csr_matrix(weights * (1 - pos)).dot(onehot).todense())
    below = np.cumsum(q, axis=1) - q
    num = (p * (below + 0.5 * q)).sum(axis=1)
    return np.asarray(num / (p.sum(axis=1) * q.sum(axis=1)))


def outside_training_range(train: pd.DataFrame, rows: pd.DataFrame,
                           numeric: list[str]) -> dict[str, float]:
    """Per numeric feature: the share of `rows` outside the range the training rows covered
    (missing values are neither in nor out). A feature whose later rows mostly fall outside is
    clock-like: it grows with the calendar, and trees treat everything beyond the edge alike."""
    out = {}
    for f in numeric:
        seen = pd.to_numeric(train[f], errors="coerce").dropna()
        values = pd.to_numeric(rows[f], errors="coerce").dropna()
        if seen.empty or values.empty:
            continue
        outside = (values < seen.min()) | (values > seen.max())
        out[f] = float(outside.mean())
    return out
