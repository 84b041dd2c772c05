"""`leadlens evaluate`: LightGBM against logistic regression on the warehouse's data, under a
time-ordered split and under k-fold random cross-validation, side by side.

The time-ordered split is what production meets (train on the past, score the future); random
cross-validation is what most published results on public data report. Showing both makes the
gap between them visible instead of hiding it.

Both setups use the models `leadlens train` fits (`training.fit`: LightGBM with early stopping
and isotonic calibration, and the logistic-regression baseline), on the same point-in-time
features. LightGBM picks its number of rounds by early stopping on a holdout of its training
rows (the latest ones in the time split, a random share in cross-validation), then both models
are fitted on all the training rows. Only ranking is compared (ROC AUC, PR AUC, lift), so the
scores are not calibrated here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from core.model_bundle import encode
from core.settings import Settings
from core.warehouse import Warehouse
from features.engagement import feature_columns
from training.dataset import build_dataset
from training.evaluate import score_metrics
from training.examples import time_split
from training.fit import LogisticBaseline, fit_lightgbm, refit_lightgbm
from training.sources import examples_for
from training.specs import SPECS

Say = Callable[[str], None]
METRICS = ("roc_auc", "pr_auc", "lift_top10")


def _fit_and_score(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame,
                   features: list[str], categorical: list[str],
                   settings: Settings) -> dict[str, dict[str, float]]:
    cfg = settings.train.lightgbm
    rounds = fit_lightgbm("compare", train, valid, features, categorical, cfg
                          ).meta["best_iteration"]
    full = pd.concat([train, valid])
    booster, cats = refit_lightgbm(full, features, categorical, cfg, rounds)
    logistic = LogisticBaseline(features, categorical).fit(full, valid)
    y = test["label"].to_numpy()
    # a dense matrix in, an ndarray out (LightGBM's return type also covers sparse input)
    lgb_scores = cast(np.ndarray, booster.predict(encode(test, features, cats)))
    return {"lightgbm": score_metrics(y, lgb_scores),
            "logistic": score_metrics(y, logistic.predict_uncalibrated(test))}


@dataclass(frozen=True)
class CompareSetup:
    """How `compare_models` splits: CV folds, test and early-stopping holdout shares, seed."""

    folds: int = 5
    test_share: float = 0.2
    holdout_share: float = 0.1
    seed: int = 0


def compare_models(wh: Warehouse, settings: Settings, until: pd.Timestamp, kind: str = "conversion",
                   setup: CompareSetup = CompareSetup(), say: Say = print) -> pd.DataFrame:
    """One row per (setup, model, fold) with ROC AUC, PR AUC and lift in the top 10%.

    Time split: the first `1 - test_share` of leads by creation train (their latest
    `holdout_share` of all leads for early stopping and calibration), the rest test.
    Cross-validation: `folds` stratified folds, grouped by lead; a random `holdout_share` of
    each fold's training leads for early stopping and calibration.
    """
    folds, test_share, holdout_share = setup.folds, setup.test_share, setup.holdout_share
    seed = setup.seed
    spec = SPECS[kind]
    attr_types = wh.attribute_types()
    attributes = list(attr_types)
    examples = examples_for(kind, wh.con, settings, until)
    split = time_split(examples.frame, (1 - test_share - holdout_share, holdout_share,
                                        test_share), until)
    say(f"[evaluate] {len(examples.frame):,} {kind} examples; computing features")
    data = build_dataset(wh.con, examples, split, settings.engagement, attributes)
    features = spec.select(feature_columns(settings.engagement, []), attributes)
    categorical = [c for c in ["source", *[a for a, k in attr_types.items() if k != "numeric"]]
                   if c in features]
    rows = []

    say("[evaluate] time-ordered split")
    parts = {s: data[data["split"] == s] for s in ("train", "validation", "test")}
    for model, m in _fit_and_score(parts["train"], parts["validation"], parts["test"],
                                   features, categorical, settings).items():
        rows.append({"setup": "time split", "model": model, "fold": 0,
                     "test_rows": int(m["rows"]), **{k: m[k] for k in METRICS}})

    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    for fold, (fit_idx, test_idx) in enumerate(cv.split(data, data["label"], data["lead_id"])):
        say(f"[evaluate] cross-validation fold {fold + 1} of {folds}")
        fit_part = data.iloc[fit_idx]
        leads = fit_part["lead_id"].unique()
        held = set(rng.choice(leads, int(len(leads) * holdout_share / (1 - 1 / folds)),
                              replace=False))
        is_held = fit_part["lead_id"].isin(held)
        scores = _fit_and_score(fit_part[~is_held], fit_part[is_held], data.iloc[test_idx],
                                features, categorical, settings)
        for model, m in scores.items():
            rows.append({"setup": f"{folds}-fold random CV", "model": model, "fold": fold + 1,
                         "test_rows": int(m["rows"]), **{k: m[k] for k in METRICS}})
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean (and, for CV, standard deviation) per setup and model."""
    grouped = results.groupby(["setup", "model"], sort=False)
    out = grouped[list(METRICS)].mean()
    sd = grouped[list(METRICS)].std().fillna(0.0).add_suffix("_sd")
    return pd.concat([out, sd], axis=1).reset_index()


def format_table(summary: pd.DataFrame) -> str:
    """The comparison as a Markdown table (what the README shows)."""
    lines = ["| setup | model | ROC AUC | PR AUC | lift at 10% |", "|---|---|---|---|---|"]
    for r in summary.itertuples():
        def cell(name: str, r: Any = r) -> str:
            v, sd = getattr(r, name), getattr(r, f"{name}_sd")
            return f"{v:.3f}" + (f" ± {sd:.3f}" if sd > 0 else "")
        lines.append(f"| {r.setup} | {r.model} | {cell('roc_auc')} | {cell('pr_auc')} | "
                     f"{cell('lift_top10')} |")
    return "\n".join(lines)
