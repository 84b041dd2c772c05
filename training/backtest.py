"""`leadlens backtest`: the replay repeated at earlier origins, one row per origin, so a data
scientist sees how stable the model's lead over its baselines is before trusting one figure."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from core.settings import Settings
from core.warehouse import Warehouse
from training.evaluate import paired_bootstrap, score_metrics
from training.fit import LogisticBaseline, RuleBaseline, select_and_refit
from training.pipeline import model_inputs
from training.replay import replay_frames
from training.specs import SPECS

COLUMNS = ("data_end", "replay_origin", "open_leads", "positives", "model", "lightgbm_auc",
           "logistic_auc", "rule_auc", "auc_vs_logistic", "auc_vs_logistic_low",
           "auc_vs_logistic_high", "lightgbm_pr_auc", "lightgbm_lift_top10", "lightgbm_ece")


def backtest(wh: Warehouse, settings: Settings, until: pd.Timestamp, origins: int,
             every_days: int, say: Callable[[str], None] = print) -> pd.DataFrame:
    """The conversion model's replay at `origins` data ends, `every_days` apart back from
    `until`: what a model trained then would have done on the leads open then."""
    spec = SPECS["conversion"]
    features, categorical = model_inputs(spec, settings, wh.con)
    rows = []
    for k in range(origins):
        end = until - pd.Timedelta(days=k * every_days)
        say(f"[backtest] data ending {end:%Y-%m-%d}: snapshots and open books")
        frames = replay_frames(wh.con, settings, end, list(wh.attribute_types()))
        sets = frames.sets("replay")
        book = frames.replay_book
        y = book["label"].to_numpy()
        if min(sets.train["label"].sum(), sets.valid["label"].sum(), y.sum()) < 1 \
                or y.min() == y.max():
            say(f"[backtest] {end:%Y-%m-%d}: too few outcomes to replay; stopping here")
            break
        model, _ = select_and_refit(spec.kind, sets, features, categorical, settings.train)
        logistic = LogisticBaseline(features, categorical).fit(sets.refit, sets.valid)
        rule = RuleBaseline(spec.kind).fit(sets.valid)
        scores = {"lightgbm": model.predict(book), "logistic": logistic.predict(book),
                  "rule": rule.predict(book)}
        m = {name: score_metrics(y, p) for name, p in scores.items()}
        diff, lo, hi = paired_bootstrap(y, scores["lightgbm"], scores["logistic"])
        rows.append({
            "data_end": f"{end:%Y-%m-%d}", "replay_origin": f"{frames.origins.replay:%Y-%m-%d}",
            "open_leads": len(book), "positives": int(y.sum()),
            "model": model.meta.get("settings", {}).get("model", "lightgbm"),
            "lightgbm_auc": m["lightgbm"]["roc_auc"], "logistic_auc": m["logistic"]["roc_auc"],
            "rule_auc": m["rule"]["roc_auc"], "auc_vs_logistic": diff,
            "auc_vs_logistic_low": lo, "auc_vs_logistic_high": hi,
            "lightgbm_pr_auc": m["lightgbm"]["pr_auc"],
            "lightgbm_lift_top10": m["lightgbm"]["lift_top10"],
            "lightgbm_ece": m["lightgbm"]["ece"]})
        say(f"[backtest] {end:%Y-%m-%d}: AUC {m['lightgbm']['roc_auc']:.3f} (logistic "
            f"{m['logistic']['roc_auc']:.3f}), ECE {m['lightgbm']['ece']:.3f}")
    return pd.DataFrame(rows, columns=list(COLUMNS))


def format_backtest(frame: pd.DataFrame) -> str:
    """The backtest as a Markdown table, one row per origin."""
    lines = ["| data end | replay origin | open leads | positives | served | AUC | logistic | "
             "rule | AUC - logistic (90%) | PR AUC | lift@10% | ECE |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        lines.append(
            f"| {r.data_end} | {r.replay_origin} | {r.open_leads:,} | {r.positives:,} | "
            f"{r.model} | {r.lightgbm_auc:.3f} | {r.logistic_auc:.3f} | {r.rule_auc:.3f} | "
            f"{r.auc_vs_logistic:+.3f} ({r.auc_vs_logistic_low:+.3f} to "
            f"{r.auc_vs_logistic_high:+.3f}) | {r.lightgbm_pr_auc:.3f} | "
            f"{r.lightgbm_lift_top10:.2f} | {r.lightgbm_ece:.3f} |")
    return "\n".join(lines)
