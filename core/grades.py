"""Grades A to D from a calibrated score, and what each grade meant on a model's test: how many
leads it held and how many of them converted."""

from __future__ import annotations

from typing import Any

import numpy as np

GRADES = ("A", "B", "C", "D")


def grade(scores: np.ndarray, cutoffs: tuple[float, float, float]) -> np.ndarray:
    """A to D by the configured lowest score of A, B and C."""
    idx = np.full(len(scores), 3)
    for g in (2, 1, 0):
        idx[scores >= cutoffs[g]] = g
    return np.asarray(GRADES)[idx]


def grade_outcomes(y: np.ndarray, scores: np.ndarray,
                   cutoffs: tuple[float, float, float]) -> dict[str, Any]:
    """Per grade on a test: its rows, conversions and conversion rate (None when empty), with
    the cut-offs they were graded by."""
    grades = grade(np.asarray(scores, dtype=float), cutoffs)
    y = np.asarray(y)
    out: dict[str, Any] = {"cutoffs": [float(c) for c in cutoffs], "grades": {}}
    for g in GRADES:
        mask = grades == g
        n, k = int(mask.sum()), int(y[mask].sum())
        out["grades"][g] = {"rows": n, "converted": k,
                            "rate": round(k / n, 4) if n else None}
    return out
