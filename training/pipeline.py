"""`leadlens train`: examples -> features -> fit -> evaluate -> audit -> MLflow -> registry.

One parent run per training, a nested run per model. Registration adds a version; it never
moves `@champion` (that is `leadlens promote`'s job).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import duckdb
import mlflow
import numpy as np
import pandas as pd

from core.calibration_metrics import bootstrap_ece, calibration_curve
from core.grades import grade_outcomes
from core.model_bundle import OUTSIDE_RANGE_SHARE, ModelBundle
from core.names import RunTag, VersionTag
from core.settings import Runtime, Settings, TrainConfig
from core.warehouse import Warehouse, attribute_types
from features.engagement import feature_columns
from features.labels import label_settings
from training import plots
from training.evaluate import (
    age_band,
    group_auc,
    paired_bootstrap,
    score_metrics,
)
from training.examples import SPLITS, TimeSplit
from training.fit import (
    LogisticBaseline,
    RuleBaseline,
    fit_lightgbm,
    prefer_simpler,
    select_and_refit,
)
from training.leakage import (
    leakage_audit,
    missing_by_outcome,
    shap_shares,
    single_feature_auc,
)
from training.model_card import CardFacts, model_card
from training.replay import ReplayFrames
from training.sources import (
    LocalTest,
    NotEnoughData,
    Prepared,
    TestRows,
    TrainingData,
    WarehouseData,
    free_text_attributes,
)
from training.specs import SPECS, ModelSpec
from training.tracking import (
    flatten,
    log_and_register,
    log_examples,
    setup,
    sigterm_as_interrupt,
    tracked_run,
)

Say = Callable[[str], None]


@dataclass
class ModelResult:
    """One trained and evaluated model: bundle, split, counts, test metrics, leakage audit."""

    spec: ModelSpec
    bundle: ModelBundle
    split: TimeSplit
    counts: pd.DataFrame
    excluded: dict[str, int]
    metrics: dict[str, dict[str, float]]
    audit: pd.DataFrame
    test: pd.DataFrame  # the out-of-time test rows with their features and `score`
    used: dict[str, pd.DataFrame] = field(default_factory=dict)  # split -> lead_id, as_of, label
    version: int | None = None
    run_id: str | None = None
    rule_note: str = ""  # why the rule baseline is uninformative, when it is
    replay: dict[str, float] | None = None  # replay noise figures (calendar models)


@dataclass
class TrainReport:
    """What `train_models` did: the parent run, each model's result, and the models skipped."""

    until: pd.Timestamp
    parent_run_id: str
    results: dict[str, ModelResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why


def _count(split: str, frame: pd.DataFrame) -> dict[str, object]:
    y = frame["label"]
    return {"split": split, "examples": len(frame), "positives": int(y.sum()),
            "negatives": int(len(frame) - y.sum())}


def class_counts(data: pd.DataFrame) -> pd.DataFrame:
    """Examples, positives and negatives per split, one row per split."""
    return pd.DataFrame([_count(s, data[data["split"] == s]) for s in SPLITS])


def check_enough(spec: ModelSpec, counts: pd.DataFrame, min_train: int, min_eval: int) -> None:
    """Refuse to train on too little data, saying what exists and what is needed."""
    problems = []
    for row in counts.itertuples():
        need = min_train if row.split == "train" else min_eval
        if row.positives < need or row.negatives < need:
            problems.append(f"{row.split}: {row.positives} positives and {row.negatives} "
                            f"negatives (need at least {need} of each)")
    if problems:
        raise NotEnoughData(f"not enough data to train the {spec.kind} model: "
                            + "; ".join(problems)
                            + ". Ingest more history, or lower train.min_per_class / "
                              "train.min_per_class_eval in the config.")


def uses_replay(spec: ModelSpec, settings: Settings) -> bool:
    """Whether this model is trained and judged by the replay (calendar snapshots)."""
    return spec.examples == "snapshots" and settings.train.conversion_examples == "calendar"


def train_one(spec: ModelSpec, source: TrainingData, settings: Settings, prepared: Prepared,
              work_dir: Path, say: Say,
              free: list[str]) -> tuple[ModelResult, dict[str, Path], CardFacts]:
    """Fit and evaluate one model on a time split (no MLflow); returns the result, its plots
    and its card. `free`: the free-text attributes left out."""
    cfg = settings.train
    attr_types = source.attribute_types()
    examples, split, data = prepared.examples, prepared.split, prepared.data
    until = split.until
    judged_rows = prepared.judged()
    train = data[data["split"] == "train"]
    valid = data[data["split"] == "validation"]
    counts = pd.DataFrame([_count("train", train), _count("validation", valid),
                           _labels_count("test", judged_rows)])
    check_enough(spec, counts, cfg.min_per_class, cfg.min_per_class_eval)
    features, categorical = inputs_from(spec, settings, attr_types, free)
    say(f"[{spec.kind}] fitting LightGBM on {len(train):,} rows, "
        f"{len(features)} features")
    bundle = fit_lightgbm(spec.kind, train, valid, features, categorical, cfg.lightgbm,
                          meta={"until": str(until), **split.as_params(),
                                "labels": label_settings(cfg)})
    bundle, aucs = (prefer_simpler(bundle, train, valid, cfg)
                    if cfg.linear_candidate else (bundle, {}))
    if aucs:
        bundle.meta["candidates"] = {k: round(v, 5) for k, v in aucs.items()}
        say(f"[{spec.kind}] validation AUC: "
            + ", ".join(f"{k} {v:.4f}" for k, v in aucs.items())
            + f"; serving {bundle.meta.get('settings', {}).get('model', 'lightgbm')}")
    if spec.examples == "creation":
        bundle.meta["conversion_day_cdf"] = conversion_day_cdf(source, train, cfg.horizon_days)
    say(f"[{spec.kind}] baselines and evaluation")
    logistic = LogisticBaseline(features, categorical).fit(train, valid)
    rule = RuleBaseline(spec.kind).fit(valid)
    test, scores = judged_rows.score({"lightgbm": bundle.predict, "logistic": logistic.predict,
                                      "rule": rule.predict})
    judged = _judge(spec, bundle, (train, test, judged_rows.featured), scores,
                    Inputs(features, categorical, list(attr_types)), cfg, work_dir, say)
    bundle.meta["grade_outcomes"] = grade_outcomes(test["label"].to_numpy(), scores["lightgbm"],
                                                   settings.serve.grade_cutoffs)
    bundle.meta["test_noise"] = test_noise(test["label"].to_numpy(), scores)
    result = ModelResult(
        spec=spec, bundle=bundle, split=split, counts=counts, excluded=examples.excluded,
        metrics=judged.metrics, audit=judged.audit,
        test=test.assign(score=scores["lightgbm"]),
        used={"train": train[["lead_id", "as_of", "label"]],
              "validation": valid[["lead_id", "as_of", "label"]],
              "test": test[["lead_id", "as_of", "label"]]},
        rule_note=rule.constant_note(),
    )
    card_args = CardFacts(window=split.as_params(), counts=counts, excluded=examples.excluded,
                          metrics=judged.metrics, calibration=judged.curve,
                          group_aucs=judged.groups, audit=judged.audit, features=features,
                          best_iteration=bundle.meta["best_iteration"])
    return result, judged.figs, card_args


def model_inputs(spec: ModelSpec, settings: Settings,
                 con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
    """The model's feature columns and which of them are categorical, in a warehouse."""
    free = free_text_attributes(con, settings.train.max_category_share)
    return inputs_from(spec, settings, attribute_types(con), free)


def inputs_from(spec: ModelSpec, settings: Settings, attributes: dict[str, str],
                free: list[str]) -> tuple[list[str], list[str]]:
    """The model's feature columns and which of them are categorical (the `free` text
    attributes left out: `training.sources.free_text_attributes`)."""
    attr_types = {a: k for a, k in attributes.items() if a not in set(free)}
    features = spec.select(feature_columns(settings.engagement, []), list(attr_types))
    categorical = ["source", *[a for a, k in attr_types.items() if k != "numeric"]]
    return features, [c for c in categorical if c in features]


class Inputs(NamedTuple):
    """A model's inputs: every feature, the categorical ones, and the warehouse's lead
    attributes (the export's own columns)."""

    features: list[str]
    categorical: list[str]
    attributes: list[str]


@dataclass
class _Judged:
    metrics: dict[str, dict[str, float]]
    curve: pd.DataFrame
    groups: dict[str, pd.DataFrame]
    audit: pd.DataFrame
    figs: dict[str, Path]


def _judge(spec: ModelSpec, bundle: ModelBundle,
           rows: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
           scores: dict[str, np.ndarray], inputs: Inputs, cfg: TrainConfig, work_dir: Path,
           say: Say) -> _Judged:
    """Metrics of every scorer on the test rows, the calibration curve the dashboard draws, AUC
    per source and team, the leakage audit and the plots; tables written to `work_dir`.
    `rows`: the training rows, every test row (`JUDGED_COLUMNS`) and the test rows with their
    features (SHAP and the audit; on Spark a sample)."""
    features, categorical, attributes = inputs
    train, test, featured = rows
    y = test["label"].to_numpy()
    # the reliability diagram the dashboard draws: (mean score, observed rate, rows) per bin,
    # of the scores judged (on the replay, the replayed model's)
    curve = calibration_curve(y, scores["lightgbm"])
    bundle.meta["calibration_curve"] = [
        [round(float(b.mean_score), 5), round(float(b.observed), 5), int(b.rows)]
        for b in curve.itertuples()]
    metrics = {name: score_metrics(y, p) for name, p in scores.items()}
    groups = {"source": _by_group(y, scores, test["source"]),
              "team": group_auc(y, scores["lightgbm"], test["team"])}
    if "lead_age_days" in test:
        groups["lead age"] = _by_group(y, scores, age_band(test["lead_age_days"]))
    rng = np.random.default_rng(0)
    sample = featured.iloc[np.sort(rng.choice(len(featured), min(len(featured),
                                                                  cfg.shap_sample),
                                              replace=False))]
    x_sample = bundle.matrix(sample)
    contrib = bundle.contributions(x_sample)
    audit = leakage_audit(single_feature_auc(train, featured, features, categorical),
                          shap_shares(contrib, features), cfg.leakage_auc,
                          cfg.leakage_shap_share, cfg.leakage_shap_min_features,
                          missing_by_outcome(train, featured,
                                             [f for f in features if f in attributes]),
                          cfg.leakage_missing_gap, set(attributes))
    flagged = audit[audit["flagged"]]
    bundle.meta["leakage"] = {r.feature: {"reason": r.reason, "blocking": bool(r.blocking)}
                              for r in flagged.itertuples()}
    for row in flagged.itertuples():
        say(f"[{spec.kind}] POSSIBLE LEAKAGE: {row.feature} {row.reason}")
    title = spec.registered_name
    figs = {
        "roc_pr": plots.roc_pr(y, scores, title, work_dir / "plots" / "roc_pr.png"),
        "calibration": plots.calibration(y, scores, title,
                                         work_dir / "plots" / "calibration.png"),
        "shap_summary": plots.shap_summary(contrib, x_sample, features, title,
                                           work_dir / "plots" / "shap_summary.png"),
        "importance": plots.importance(
            pd.Series(bundle.booster.feature_importance("gain"), index=features), title,
            work_dir / "plots" / "feature_importance.png"),
    }
    (work_dir / "group_auc_source.csv").write_text(groups["source"].to_csv(index=False))
    (work_dir / "group_auc_team.csv").write_text(groups["team"].to_csv(index=False))
    (work_dir / "leakage_audit.csv").write_text(audit.to_csv(index=False))
    return _Judged(metrics, curve, groups, audit, figs)


def _by_group(y: np.ndarray, scores: dict[str, np.ndarray], groups: pd.Series) -> pd.DataFrame:
    """AUC per group for the model (`roc_auc`) and each baseline (`<name>_roc_auc`)."""
    out = group_auc(y, scores["lightgbm"], groups)
    for name, p in scores.items():
        if name != "lightgbm":
            out[f"{name}_roc_auc"] = group_auc(y, p, groups)["roc_auc"].to_numpy()
    return out


def train_by_replay(spec: ModelSpec, source: TrainingData, settings: Settings,
                    frames: ReplayFrames, work_dir: Path, say: Say,
                    free: list[str]) -> tuple[ModelResult, dict[str, Path], CardFacts]:
    """The conversion model on calendar snapshots: a fit at the replay origin judged on the
    leads open then (the test), and the production fit at the data's end (training.replay).
    `free`: the free-text attributes left out."""
    cfg = settings.train
    o = frames.origins
    at_replay, at_until = frames.sets("replay"), frames.sets("until")
    book = frames.test if frames.test is not None else LocalTest(
        frames.replay_book.reset_index(drop=True))
    counts = pd.DataFrame([_count("train", at_replay.train),
                           _count("validation", at_replay.valid), _labels_count("test", book)])
    check_enough(spec, counts, cfg.min_per_class, cfg.min_per_class_eval)
    attributes = source.attribute_types()
    features, categorical = inputs_from(spec, settings, attributes, free)
    split = TimeSplit(o.validation, o.replay, o.until)
    meta = {"until": str(o.until), **split.as_params(), "labels": label_settings(cfg),
            "replay_origin": str(o.replay)}
    say(f"[{spec.kind}] replay at {o.replay:%Y-%m-%d}: {len(at_replay.train):,} snapshots to "
        f"train, {len(at_replay.valid):,} leads open at {o.validation:%Y-%m-%d} to choose "
        f"among {cfg.search_trials + 1} settings, {int(counts['examples'].iloc[2]):,} leads "
        "open to judge")
    judged_model, _ = select_and_refit(spec.kind, at_replay, features, categorical, cfg, meta,
                                       say)
    logistic = LogisticBaseline(features, categorical).fit(at_replay.refit, at_replay.valid)
    rule = RuleBaseline(spec.kind).fit(at_replay.valid)
    test, scores = book.score({"lightgbm": judged_model.predict,
                               "logistic": logistic.predict, "rule": rule.predict})
    y = test["label"].to_numpy()
    replay = test_noise(y, scores)
    numeric = [f for f in features if f not in categorical]
    outside = book.outside(at_replay.refit, numeric)
    clock_like = {f: v for f, v in outside.items() if v > OUTSIDE_RANGE_SHARE}
    for f, v in sorted(clock_like.items(), key=lambda kv: -kv[1]):
        say(f"[{spec.kind}] WARNING: {f} is clock-like: {v:.0%} of the replay's leads lie "
            "outside its training range")
    diff, lo, hi = (replay["auc_vs_logistic"], replay["auc_vs_logistic_low"],
                    replay["auc_vs_logistic_high"])
    ece_lo, ece_hi = replay["ece_low"], replay["ece_high"]
    say(f"[{spec.kind}] production fit on {len(at_until.refit):,} snapshots (settings chosen "
        f"on the leads open at {o.replay:%Y-%m-%d})")
    bundle, candidates = select_and_refit(spec.kind, at_until, features, categorical, cfg, meta,
                                          say)
    judged = _judge(spec, bundle, (at_until.refit, test, book.featured), scores,
                    Inputs(features, categorical, list(attributes)), cfg, work_dir,
                    say)
    bundle.meta["grade_outcomes"] = grade_outcomes(test["label"].to_numpy(), scores["lightgbm"],
                                                   settings.serve.grade_cutoffs)
    bundle.meta["test_noise"] = replay
    bundle.meta["clock_like"] = {f: round(v, 4) for f, v in clock_like.items()}
    bundle.meta["training_range"] = {
        f: [float(at_until.refit[f].min()), float(at_until.refit[f].max())]
        for f in COVERAGE_FEATURES if f in at_until.refit and at_until.refit[f].notna().any()}
    (work_dir / "candidates.csv").write_text(candidates.to_csv(index=False))
    result = ModelResult(
        spec=spec, bundle=bundle, split=split, counts=counts, excluded={},
        metrics=judged.metrics, audit=judged.audit, test=test.assign(score=scores["lightgbm"]),
        used={"train": at_until.refit[["lead_id", "as_of", "label"]],
              "validation": at_replay.valid[["lead_id", "as_of", "label"]],
              "test": test[["lead_id", "as_of", "label"]]},
        rule_note=rule.constant_note(), replay=replay)
    facts = CardFacts(
        window=split.as_params(), counts=counts, excluded={}, metrics=judged.metrics,
        calibration=judged.curve, group_aucs=judged.groups, audit=judged.audit,
        features=features, best_iteration=bundle.meta["best_iteration"], candidates=candidates,
        replay={"origin": f"{o.replay:%Y-%m-%d}",
                "positives / negatives judged": f"{replay['positives']} / "
                                                f"{replay['negatives']}",
                "AUC minus the logistic baseline's (90% paired bootstrap)":
                    f"{diff:+.4f} ({lo:+.4f} to {hi:+.4f})",
                "ECE (90% bootstrap)": f"{judged.metrics['lightgbm']['ece']:.4f} "
                                       f"({ece_lo:.4f} to {ece_hi:.4f})",
                "clock-like inputs (over 20% of the replay's leads outside the training "
                "range)": ", ".join(f"{f} ({v:.0%})" for f, v in clock_like.items()) or "none"})
    return result, judged.figs, facts


def test_noise(y: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, float]:
    """What the test's size allows: the model's AUC minus the logistic baseline's with a 90%
    paired bootstrap interval, the ECE's 90% interval, and the classes judged (the promotion
    gates read these from the bundle)."""
    diff, lo, hi = paired_bootstrap(y, scores["lightgbm"], scores["logistic"])
    ece_lo, ece_hi = bootstrap_ece(y, scores["lightgbm"])
    return {"auc_vs_logistic": round(diff, 5), "auc_vs_logistic_low": round(lo, 5),
            "auc_vs_logistic_high": round(hi, 5), "ece_low": round(ece_lo, 5),
            "ece_high": round(ece_hi, 5), "positives": int(y.sum()),
            "negatives": int(len(y) - y.sum())}


COVERAGE_FEATURES = ("lead_age_days", "days_since_last_touch")
"""The inputs whose training range a bundle records, so scoring can say how much of what it
scores lies outside it."""


def conversion_day_cdf(source: TrainingData, train: pd.DataFrame,
                       horizon_days: int) -> list[float]:
    """Among training leads that converted within the horizon, the share converted by each day
    0..horizon after creation; lets a rep report compare leads whose horizon is still running."""
    won = train.loc[train["label"] == 1, "lead_id"]
    if won.empty:
        return [1.0] * (horizon_days + 1)
    days = source.conversion_days(won)
    grid = np.arange(horizon_days + 1)
    return [float(v) for v in np.searchsorted(np.sort(days), grid, side="right") / len(days)]


def _labels_count(split: str, rows: TestRows) -> dict[str, object]:
    pos, neg = rows.labels()
    return {"split": split, "examples": pos + neg, "positives": pos, "negatives": neg}


def train_models(runtime: Runtime, until: pd.Timestamp | None = None,
                 kinds: tuple[str, ...] = tuple(SPECS), say: Say = print,
                 source: TrainingData | None = None) -> TrainReport:
    """Train, evaluate, log and register every model in `kinds` (see the module docstring),
    from the warehouse, or from `source` (Spark: `training.spark_source`)."""
    if source is not None:
        return _train(runtime, source, until, kinds, say)
    with Warehouse(runtime.warehouse_path, read_only=True) as wh:
        return _train(runtime, WarehouseData(wh), until, kinds, say)


def _train(runtime: Runtime, source: TrainingData, until: pd.Timestamp | None,
           kinds: tuple[str, ...], say: Say) -> TrainReport:
    settings = runtime.settings
    experiment_id = setup(runtime)
    with sigterm_as_interrupt():
        until = pd.Timestamp(until) if until is not None else source.end()
        with tracked_run(f"train-until-{until:%Y-%m-%d}", experiment_id,
                         tags={RunTag.UNTIL: str(until)}) as parent:
            mlflow.log_params({"until": str(until), "models": ",".join(kinds),
                               **source.run_params()})
            mlflow.log_params(flatten("", {
                "train": settings.train.model_dump(), "engagement":
                settings.engagement.model_dump()}))
            report = TrainReport(until, parent.info.run_id)
            prepared: dict[str, Prepared] = {}
            has_activities = source.has_activities()
            free = source.free_text(settings.train.max_category_share)
            if free:
                say(f"left out as free text (more distinct values than "
                    f"{settings.train.max_category_share:.0%} of the leads that have one; "
                    f"train.max_category_share): {', '.join(free)}")
            for kind in kinds:
                spec = SPECS[kind]
                if spec.examples == "touches" and not has_activities:
                    report.skipped[kind] = (f"the {source.holder} holds no activity log; this "
                                            "model learns from outbound touches")
                    # a run that says why, so `leadlens promote` can tell the real cause
                    with tracked_run(kind, experiment_id, nested=True,
                                     tags={RunTag.MODEL: kind,
                                           RunTag.SKIPPED: report.skipped[kind]}):
                        pass
                    say(f"[{kind}] skipped: {report.skipped[kind]}")
                    continue
                with tempfile.TemporaryDirectory(prefix=f"leadlens-{kind}-") as tmp, \
                        tracked_run(kind, experiment_id, nested=True,
                                    tags={RunTag.MODEL: kind}) as run:
                    # a model without enough data is skipped with its reason; the rest train
                    try:
                        if uses_replay(spec, settings):
                            frames = source.replay(settings, until, say)
                            result, figs, card_args = train_by_replay(spec, source, settings,
                                                                      frames, Path(tmp), say,
                                                                      free)
                        else:
                            if spec.examples not in prepared:
                                prepared[spec.examples] = source.prepared(spec, settings, until,
                                                                          say)
                            result, figs, card_args = train_one(spec, source, settings,
                                                                prepared[spec.examples],
                                                                Path(tmp), say, free)
                    except NotEnoughData as err:
                        report.skipped[kind] = str(err)
                        mlflow.set_tag(RunTag.SKIPPED, str(err)[:4000])
                        say(f"[{kind}] skipped: {err}")
                        continue
                    note = source.sample_note(spec.examples)
                    if note:
                        mlflow.set_tag(RunTag.SAMPLE, note)
                    _log(result, figs, card_args, Path(tmp), source.source, say)
                    result.run_id = run.info.run_id
                    report.results[kind] = result
            if report.skipped:
                mlflow.set_tag(RunTag.SKIPPED, ",".join(report.skipped))
    return report


def _log(result: ModelResult, figs: dict[str, Path], card_args: CardFacts, work: Path,
         source: str, say: Say) -> None:
    spec = result.spec
    mlflow.log_params({"kind": spec.kind, "registered_name": spec.registered_name,
                       **result.split.as_params(),
                       "best_iteration": result.bundle.meta["best_iteration"],
                       "n_features": len(result.bundle.features)})
    for row in result.counts.itertuples():
        mlflow.log_metrics({f"{row.split}_examples": row.examples,
                            f"{row.split}_positives": row.positives})
    digests = {}
    for s, part in result.used.items():
        digests[s] = log_examples(part, f"{spec.kind}-{s}", s, source)
    for scorer, m in result.metrics.items():
        mlflow.log_metrics({f"test_{scorer}_{k}": v for k, v in m.items()
                            if np.isfinite(v)})
    flagged = result.audit[result.audit["flagged"]]
    mlflow.set_tag(RunTag.LEAKAGE_FLAGS, ",".join(flagged["feature"]) or "none")
    for path in figs.values():
        mlflow.log_artifact(str(path), artifact_path="plots")
    for name in ("leakage_audit.csv", "group_auc_source.csv", "group_auc_team.csv"):
        mlflow.log_artifact(str(work / name), artifact_path="evaluation")
    result.bundle.meta["test_metrics"] = {
        k: round(v, 4) for k, v in result.metrics["lightgbm"].items() if np.isfinite(v)}
    version = log_and_register(result.bundle, work, spec.registered_name)
    result.version = version
    card = model_card(spec, version=version, facts=card_args)
    (work / "model_card.md").write_text(card, encoding="utf-8")
    mlflow.log_artifact(str(work / "model_card.md"))
    _tag_version(result, version, digests)
    lgb_m = result.metrics["lightgbm"]
    say(f"[{spec.kind}] registered {spec.registered_name} v{version}: test AUC "
        f"{lgb_m['roc_auc']:.3f} (logistic {result.metrics['logistic']['roc_auc']:.3f}, "
        f"rule {result.metrics['rule']['roc_auc']:.3f}), ECE {lgb_m['ece']:.3f}")


def _tag_version(result: ModelResult, version: int, digests: dict[str, str]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    m = result.metrics["lightgbm"]
    tags = {
        VersionTag.KIND: result.spec.kind,
        **result.split.as_params(),
        VersionTag.TEST_ROC_AUC: f"{m['roc_auc']:.6f}",
        VersionTag.TEST_PR_AUC: f"{m['pr_auc']:.6f}",
        VersionTag.TEST_ECE: f"{m['ece']:.6f}",
        VersionTag.TEST_BRIER: f"{m['brier']:.6f}",
        VersionTag.TEST_ROWS: str(int(m["rows"])),
        VersionTag.TEST_DIGEST: digests.get("test", ""),
        VersionTag.LEAKAGE_FLAGS: ",".join(result.audit.loc[result.audit["flagged"], "feature"])
        or "none",
    }
    for k, v in tags.items():
        client.set_model_version_tag(result.spec.registered_name, str(version), k, v)
