"""The model card: what a reader needs before trusting a model, as Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from training.specs import ModelSpec

_HEADLINE = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top10", "capture_top10",
             "lift_top20", "capture_top20")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class CardFacts:
    """What training found that the model card reports, beside the spec and the version."""

    window: dict[str, str]
    counts: pd.DataFrame
    excluded: dict[str, int]
    metrics: dict[str, dict[str, float]]
    calibration: pd.DataFrame
    group_aucs: dict[str, pd.DataFrame]
    audit: pd.DataFrame
    features: list[str]
    best_iteration: int
    candidates: pd.DataFrame | None = None
    """The settings judged on the validation replay (replay-trained models only)."""
    replay: dict[str, str] | None = None
    """How the replay was run and what its noise allows (replay-trained models only)."""


def model_card(spec: ModelSpec, *, version: int | None, facts: CardFacts) -> str:
    """Markdown: intended use, data window, metrics against baselines, calibration, leakage."""
    metrics, audit, excluded = facts.metrics, facts.audit, facts.excluded
    flagged = audit[audit["flagged"]]
    scorers = list(metrics)
    perf = pd.DataFrame([{"metric": m, **{s: metrics[s].get(m, float("nan")) for s in scorers}}
                         for m in _HEADLINE])
    parts = [
        f"# Model card: {spec.registered_name}" + (f" v{version}" if version else ""),
        f"**Question.** {spec.question}  \n**Label.** {spec.label}.",
        f"**Intended use.** {spec.intended_use}",
        "**Not for.** Employment decisions; leads from channels or markets absent from the "
        "training window; any use that needs the lead's personal data (the model has none).",
        "## Data window",
        "Examples are (lead, as_of) snapshots with features from strictly before as_of. Leads "
        "are split by creation time, so every test lead was created after every training "
        "lead and a lead sits in one split only.",
        _table(pd.DataFrame([{"boundary": k, "time": v} for k, v in facts.window.items()])),
        _table(facts.counts),
        "Left out: " + (", ".join(f"{v:,} ({k})" for k, v in excluded.items()) or "none") + ".",
        "## Out-of-time test" if facts.replay is None else "## Replay (the test)",
        f"LightGBM ({facts.best_iteration} trees, early stopping on validation), calibration "
        "fitted on validation; the baselines are calibrated the same way."
        if facts.replay is None else
        "Trained on what was known at the replay origin, judged on every lead open then, against "
        "what happened within the horizon. " + " ".join(f"{k}: {v}." for k, v in
                                                         facts.replay.items()),
        _table(perf),
        "### Calibration (LightGBM, equal-width bins)",
        _table(facts.calibration[["bin_low", "bin_high", "rows", "mean_score", "observed"]]),
    ]
    for name, frame in facts.group_aucs.items():
        parts += [f"### ROC AUC per {name}", _table(frame)]
    if facts.candidates is not None:
        parts += ["## Candidates (validation replay)",
                  "Each setting fitted on the snapshots whose horizon closed by the validation "
                  "origin and judged on the leads open then; the chosen one was refitted on the "
                  "newest labelled snapshots.", _table(facts.candidates)]
    parts += [
        "## Leakage audit",
        "A feature that alone predicts almost perfectly, or that holds most of the model's "
        "|SHAP|, is usually a field filled in after the outcome.",
        ("**Possible leakage:** " + "; ".join(f"`{r.feature}` {r.reason}"
                                              for r in flagged.itertuples()))
        if len(flagged) else "No feature flagged.",
        _table(audit.head(15)[["feature", "single_feature_auc", "shap_share", "flagged"]]),
        "## Inputs",
        ", ".join(f"`{f}`" for f in facts.features),
        "No names, emails or phone numbers: personal columns are dropped at ingestion, and the "
        "logged signature and input example are synthetic rows.",
    ]
    return "\n\n".join(parts) + "\n"
