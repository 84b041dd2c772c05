"""Leakage audit: a feature that alone predicts almost perfectly, a lead attribute whose
emptiness alone separates the outcomes, or a feature that dominates the model's attributions, is
more often a field filled in after the outcome than a discovery.

The first two are blocking on the export's own columns (`promote` refuses a candidate they flag
unless forced); on the features LeadLens derives from the activity log (point-in-time by
construction) and for the share of attributions they are notes (a strong legitimate signal can
dominate too)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def single_feature_auc(train: pd.DataFrame, test: pd.DataFrame, features: list[str],
                       categorical: list[str]) -> dict[str, float]:
    """Per feature: the ROC AUC of that feature alone, direction-free (max(auc, 1 - auc)).

    A numeric feature is used as the score itself (missing ranks lowest), so nothing is fitted
    and it is measured on the training rows and on the test rows, keeping the higher: when the
    outcome rate drifts, a leak can look ordinary in one period and near-perfect in the other
    (a call's duration on the bank marketing data: 0.78 on the test rows, 0.905 on the
    training rows). A categorical feature scores each category by its positive rate on the
    training rows and is measured on the test rows only (on the training rows it would be
    in-sample).
    """
    out: dict[str, float] = {}
    for f in features:
        if f in categorical:
            rates = train.groupby(train[f].astype("string").fillna("(none)"))["label"].mean()
            keys = test[f].astype("string").fillna("(none)")
            score = keys.map(rates).astype("float64").fillna(train["label"].mean()).to_numpy()
            out[f] = _auc(test["label"].to_numpy(), score)
        else:
            aucs = [_auc(part["label"].to_numpy(), _numeric_score(part[f]))
                    for part in (train, test)]
            out[f] = float(np.nanmax(aucs)) if not np.isnan(aucs).all() else float("nan")
    return out


def _numeric_score(values: pd.Series) -> np.ndarray:
    score = values.astype("float64").to_numpy()
    finite = np.isfinite(score)
    low = np.nanmin(score) - 1.0 if finite.any() else 0.0
    return np.where(finite, score, low)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    if len(y) == 0 or y.min() == y.max():
        return float("nan")
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def missing_by_outcome(train: pd.DataFrame, test: pd.DataFrame,
                       columns: list[str]) -> dict[str, tuple[float, float]]:
    """Per column: the share of empty values among converted and among other rows (training
    and test rows together)."""
    both = pd.concat([train, test], ignore_index=True)
    pos = both["label"].to_numpy() == 1
    out = {}
    for c in columns:
        if c not in both or pos.all() or not pos.any():
            continue
        empty = both[c].isna().to_numpy()
        out[c] = (float(empty[pos].mean()), float(empty[~pos].mean()))
    return out


def shap_shares(contributions: np.ndarray, features: list[str]) -> dict[str, float]:
    """Each feature's share of total mean |SHAP| (the bias column excluded)."""
    mean_abs = np.abs(contributions[:, :-1]).mean(axis=0)
    total = mean_abs.sum()
    shares = mean_abs / total if total > 0 else np.zeros_like(mean_abs)
    return dict(zip(features, (float(s) for s in shares), strict=True))


def leakage_audit(aucs: dict[str, float], shares: dict[str, float], auc_limit: float,
                  share_limit: float, share_min_features: int = 1,
                  missing: dict[str, tuple[float, float]] | None = None,
                  missing_gap: float = 1.0,
                  attributes: set[str] | None = None) -> pd.DataFrame:
    """One row per feature with its figures, the reason it is flagged, if it is, and whether
    the flag is `blocking`. The share rule applies only to models with at least
    `share_min_features` inputs; the emptiness rule to the columns of `missing` (lead
    attributes: an engagement feature is empty for a reason LeadLens knows, e.g. no reply).
    Only flags on `attributes` (the export's own columns; None: every feature) block: the
    features LeadLens derives from the activity log are point-in-time by construction, so a
    strong one is a strong signal, shown as a note."""
    rows = []
    use_share = len(aucs) >= share_min_features
    missing = missing or {}
    for f in aucs:
        reasons, blocking = [], False
        own_column = attributes is None or f in attributes
        if aucs[f] > auc_limit:
            reasons.append(f"alone reaches AUC {aucs[f]:.3f} (> {auc_limit:g})")
            blocking = own_column
        if f in missing and abs(missing[f][0] - missing[f][1]) >= missing_gap:
            reasons.append(f"empty for {missing[f][0]:.0%} of converted and {missing[f][1]:.0%} "
                           "of other leads: probably filled after the fact")
            blocking = True
        if use_share and shares.get(f, 0.0) > share_limit:
            reasons.append(f"holds {shares[f]:.0%} of total |SHAP| (> {share_limit:.0%})")
        rows.append({"feature": f, "single_feature_auc": aucs[f],
                     "shap_share": shares.get(f, 0.0), "flagged": bool(reasons),
                     "blocking": blocking, "reason": "; ".join(reasons)})
    return pd.DataFrame(rows).sort_values("shap_share", ascending=False, ignore_index=True)
