"""`leadlens backtest`: the replay repeated at earlier origins, one row per origin, so a data
scientist sees how stable the model's lead over its baselines is before trusting one figure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
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


def _fitted_replays(wh: Warehouse, settings: Settings, ends: list[pd.Timestamp],
                    say: Callable[[str], None], tag: str) -> Iterator[tuple[Any, ...]]:
    """Per data end, in the order given: (end, frames, training sets, book, labels, the model
    selected and refit on what was known at the replay origin); a data end with too few
    outcomes is skipped with a line."""
    spec = SPECS["conversion"]
    features, categorical = model_inputs(spec, settings, wh.con)
    for end in ends:
        say(f"[{tag}] data ending {end:%Y-%m-%d}: snapshots and open books")
        frames, sets, book, y = _replay_at(wh, settings, end)
        if _too_few(sets, y):
            say(f"[{tag}] {end:%Y-%m-%d}: too few outcomes to replay; skipped")
            continue
        model, _ = select_and_refit(spec.kind, sets, features, categorical, settings.train)
        yield end, frames, sets, book, y, model


def _replay_at(wh: Warehouse, settings: Settings, end: pd.Timestamp
               ) -> tuple[Any, Any, pd.DataFrame, np.ndarray]:
    """The replay frames for data ending at `end`: (frames, training sets at the replay origin,
    the book open then, its labels)."""
    frames = replay_frames(wh.con, settings, end, list(wh.attribute_types()))
    book = frames.replay_book
    return frames, frames.sets("replay"), book, book["label"].to_numpy()


def _too_few(sets: Any, y: np.ndarray) -> bool:
    """Too few outcomes to fit, choose or judge."""
    return bool(min(sets.train["label"].sum(), sets.valid["label"].sum(), y.sum()) < 1
                or y.min() == y.max())


def backtest(wh: Warehouse, settings: Settings, until: pd.Timestamp, origins: int,
             every_days: int, say: Callable[[str], None] = print) -> pd.DataFrame:
    """The conversion model's replay at `origins` data ends, `every_days` apart back from
    `until`: what a model trained then would have done on the leads open then."""
    spec = SPECS["conversion"]
    features, categorical = model_inputs(spec, settings, wh.con)
    rows = []
    ends = [until - pd.Timedelta(days=k * every_days) for k in range(origins)]
    for end, frames, sets, book, y, model in _fitted_replays(wh, settings, ends, say,
                                                              "backtest"):
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


WALK_COLUMNS = ("step", "origin", "open_leads", "positives", "trained_until",
                "retrained_auc", "retrained_ece", "frozen_auc", "frozen_ece")


def walk_forward(wh: Warehouse, settings: Settings, until: pd.Timestamp, steps: int,
                 every_days: int, say: Callable[[str], None] = print) -> pd.DataFrame:
    """Walk forward through `steps` origins `every_days` apart, the last a horizon before
    `until`: at each, the leads open then are scored by a model retrained on what was known
    then, and by the model trained at the first origin and never retrained (frozen); both are
    judged on who converted within the horizon. AUC and ECE per step, for each."""
    frozen = None
    rows: list[dict[str, object]] = []
    ends = [until - pd.Timedelta(days=k * every_days) for k in reversed(range(steps))]
    for _end, frames, _sets, book, y, model in _fitted_replays(wh, settings, ends, say,
                                                                "walk-forward"):
        if frozen is None:
            frozen = (model, frames.origins.replay)
        now = score_metrics(y, model.predict(book))
        then = score_metrics(y, frozen[0].predict(book))
        rows.append({"step": len(rows) + 1, "origin": f"{frames.origins.replay:%Y-%m-%d}",
                     "open_leads": len(book), "positives": int(y.sum()),
                     "trained_until": f"{frozen[1]:%Y-%m-%d}",
                     "retrained_auc": now["roc_auc"], "retrained_ece": now["ece"],
                     "frozen_auc": then["roc_auc"], "frozen_ece": then["ece"]})
        say(f"[walk-forward] {frames.origins.replay:%Y-%m-%d}: retrained AUC "
            f"{now['roc_auc']:.3f} ECE {now['ece']:.3f}; frozen AUC {then['roc_auc']:.3f} "
            f"ECE {then['ece']:.3f}")
    return pd.DataFrame(rows, columns=list(WALK_COLUMNS))


def format_walk_forward(frame: pd.DataFrame) -> str:
    """The walk-forward as a Markdown table, one row per step."""
    lines = ["| step | origin | open leads | positives | retrained AUC | retrained ECE | "
             "frozen AUC | frozen ECE |", "|---|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        lines.append(f"| {r.step} | {r.origin} | {r.open_leads:,} | {r.positives:,} | "
                     f"{r.retrained_auc:.3f} | {r.retrained_ece:.3f} | {r.frozen_auc:.3f} | "
                     f"{r.frozen_ece:.3f} |")
    if len(frame):
        lines.append(f"\nfrozen: the model trained on what was known at "
                     f"{frame['trained_until'].iloc[0]}, never retrained")
    return "\n".join(lines)
