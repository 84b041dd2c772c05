"""Plots for the model card: ROC/PR, calibration, SHAP summary, feature importance (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from core.calibration_metrics import calibration_curve


def _pyplot() -> Any:
    """pyplot on the file-only backend (chosen here, not at import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_pr(y: np.ndarray, scores: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """ROC and precision-recall curves of each scorer, side by side, saved as PNG to `path`."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        a.plot(fpr, tpr, label=name)
        prec, rec, _ = precision_recall_curve(y, p)
        b.plot(rec, prec, label=name)
    a.plot([0, 1], [0, 1], ls=":", c="grey")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    b.axhline(float(np.mean(y)), ls=":", c="grey", label="base rate")
    b.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    a.legend(loc="lower right")
    b.legend(loc="upper right")
    fig.suptitle(title)
    return _save(fig, path)


def calibration(y: np.ndarray, scores: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """Reliability diagram of each scorer (mean score against observed rate per bin), as PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="perfect")
    for name, p in scores.items():
        curve = calibration_curve(y, p)
        ax.plot(curve["mean_score"], curve["observed"], marker="o", label=name)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate",
           title=f"{title}: calibration (out-of-time test)")
    ax.legend(loc="upper left")
    return _save(fig, path)


def shap_summary(contributions: np.ndarray, x: np.ndarray, features: list[str], title: str,
                 path: Path, top: int = 20) -> Path:
    """SHAP beeswarm of the `top` features (log-odds; the base-value column dropped), as PNG."""
    plt = _pyplot()
    import shap

    shap.summary_plot(contributions[:, :-1], x, feature_names=features, max_display=top,
                      show=False, plot_size=(8, 0.35 * top + 1.5))
    fig = plt.gcf()
    fig.suptitle(f"{title}: SHAP (log-odds), out-of-time test sample")
    return _save(fig, path)


def importance(gains: pd.Series, title: str, path: Path, top: int = 25) -> Path:
    """Bar chart of the `top` features by total gain, as PNG."""
    plt = _pyplot()
    top_gains = gains.sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top_gains) + 1.2))
    ax.barh(top_gains.index, top_gains.to_numpy())
    ax.set(xlabel="total gain", title=f"{title}: feature importance")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
