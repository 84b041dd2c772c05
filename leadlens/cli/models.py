"""Training, promotion, comparison with the baseline, and the registry listing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from leadlens.cli.common import Obj, open_warehouse, say, timestamp

if TYPE_CHECKING:
    import pandas as pd

    from training.pipeline import TrainReport

MODEL_KINDS = ("conversion", "dropout", "lead_quality", "dropout_expected")


@click.command()
@click.option("--until", default=None,
              help="Train as of this time (ISO-8601, UTC): later outcomes are unknown. "
              "Default: the latest timestamp in the warehouse (with --engine spark: the "
              "export's cutoff.txt, else its latest timestamp).")
@click.option("--model", "models", type=click.Choice(MODEL_KINDS), multiple=True,
              help="Train only these models (repeatable; default: all four).")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb",
              show_default=True,
              help="spark: examples, labels and the evaluation on Spark from --data, each fit "
              "on a stratified sample of leads (spark.train_sample_rows).")
@click.option("--data", default=None, help="With --engine spark: a folder or URI holding "
              "the contract tables (leads, activities, reps) as Parquet or CSV.")
@click.pass_obj
def train(obj: Obj, until: str | None, models: tuple[str, ...], engine: str,
          data: str | None) -> None:
    """Train, evaluate and register the models; one MLflow run with a nested run per model."""
    from core.names import CONVERSION

    rt = obj.runtime
    for line in rt.derived:  # settings that follow a flat export (core.export_profile)
        say(f"setting {line}")
    try:
        report = _trained(obj, timestamp(until, "--until"), models or MODEL_KINDS, engine, data)
    except KeyboardInterrupt:
        say("training interrupted: the MLflow run is marked KILLED; no alias moved")
        sys.exit(130)
    click.echo(f"MLflow run {report.parent_run_id} (until {report.until}); tracking store "
               f"{rt.mlflow_uri}")
    for r in report.results.values():
        m = r.metrics
        flags = r.audit.loc[r.audit["flagged"], "feature"].tolist()
        click.echo(f"  {r.spec.registered_name} v{r.version}: test AUC "
                   f"{m['lightgbm']['roc_auc']:.3f} (logistic {m['logistic']['roc_auc']:.3f}, "
                   f"rule {m['rule']['roc_auc']:.3f}{r.rule_note}), "
                   f"ECE {m['lightgbm']['ece']:.3f}"
                   + (f"; possible leakage: {', '.join(flags)}" if flags else ""))
    for kind, why in report.skipped.items():
        click.echo(f"  {kind}: not trained ({why})")
    if CONVERSION in report.skipped:  # the model marketing is served: without it, a failure
        raise click.ClickException(report.skipped[CONVERSION])
    if report.results:
        click.echo("Promote with `leadlens promote` (each model must pass the gates).")


def _trained(obj: Obj, until: pd.Timestamp | None, kinds: tuple[str, ...], engine: str,
             data: str | None) -> TrainReport:
    """Train from the warehouse, or from `data` on Spark (the rows kept aside reported)."""
    rt = obj.runtime
    if engine == "spark":
        from core.spark_session import SparkUnavailable
        from ingest.spark_tables import SparkInputError
        from leadlens.cli.common import report_rejected
        from leadlens.jobs.spark_jobs import train_job

        if data is None:
            raise click.UsageError("--engine spark needs --data (the contract tables)")
        try:
            run = train_job(rt, data, until, kinds, say)
        except (SparkUnavailable, SparkInputError) as err:
            raise click.ClickException(str(err)) from None
        report_rejected(run.rejected, run.rejected_at)
        return run.report
    from training.pipeline import train_models

    if data is not None:
        raise click.UsageError("--data is read by --engine spark; the warehouse path reads "
                               "what `leadlens ingest` loaded")
    if not rt.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {rt.warehouse_path}: run `leadlens ingest`")
    return train_models(rt, until, kinds, say=say)


@click.command()
@click.option("--model", "models", type=click.Choice(MODEL_KINDS), multiple=True,
              help="Model to promote (repeatable; default: all four).")
@click.option("--version", type=click.IntRange(min=1), default=None,
              help="Promote this version (a version below the champion is a rollback). "
              "Default: the latest.")
@click.option("--force", is_flag=True, help="Move the alias even if the gates fail.")
@click.option("--reason", default=None, help="Why --force was needed (recorded on the version).")
@click.pass_obj
def promote(obj: Obj, models: tuple[str, ...], version: int | None, force: bool,
            reason: str | None) -> None:
    """Move @champion to a candidate that passes the gates; otherwise say why not."""
    from training.promote import PromotionError
    from training.promote import promote as run_promote

    if version is not None and len(models) != 1:
        raise click.UsageError("--version needs exactly one --model")
    failed = False
    for kind in models or MODEL_KINDS:
        if not models and not _has_versions(obj, kind):
            click.echo(f"{kind}: no versions to promote; skipped ({_why_untrained(obj, kind)})")
            continue
        try:
            decision = run_promote(obj.runtime, kind, version, force, reason)
        except PromotionError as err:
            raise click.ClickException(str(err)) from None
        click.echo(decision.summary())
        failed |= not decision.promoted and decision.champion != decision.candidate
    if failed:
        sys.exit(2)


@click.command()
@click.option("--model", "kind", type=click.Choice(["conversion", "lead_quality"]),
              default="conversion", show_default=True, help="Which model's examples and inputs.")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True,
              help="Folds of the random cross-validation.")
@click.option("--test-share", type=click.FloatRange(0.05, 0.5), default=0.2, show_default=True,
              help="The latest leads held out as the time-ordered test.")
@click.option("--until", default=None, help="Outcomes after this time are unknown "
              "(default: the latest timestamp in the warehouse).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every fold's figures to this CSV.")
@click.pass_obj
def evaluate(obj: Obj, kind: str, folds: int, test_share: float, until: str | None,
             out: Path | None) -> None:
    """LightGBM against logistic regression: time-ordered split and random cross-validation."""
    from core.timestamps import data_end
    from training.compare import CompareSetup, compare_models, format_table, summarise

    with open_warehouse(obj) as wh:
        when = timestamp(until, "--until") or data_end(wh.con)
        results = compare_models(wh, obj.runtime.settings, when, kind,
                                 CompareSetup(folds=folds, test_share=test_share), say=say)
    if out is not None:
        results.to_csv(out, index=False)
    click.echo(format_table(summarise(results)))


@click.command()
@click.option("--origins", type=click.IntRange(1, 24), default=3, show_default=True,
              help="How many replays, each at an earlier data end.")
@click.option("--every", "every", default="30d", show_default=True,
              help="Time between the replays' data ends, in days (`30d` or `30`).")
@click.option("--retrain", is_flag=True, help="Walk forward instead: at each origin, oldest "
              "first, AUC and ECE of a model retrained then and of the first origin's model "
              "never retrained, to choose retrain.every_days from evidence.")
@click.option("--until", default=None, help="The latest data end (default: the latest "
              "timestamp in the warehouse).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the rows to this CSV too.")
@click.pass_obj
def backtest(obj: Obj, origins: int, every: str, retrain: bool, until: str | None,
             out: Path | None) -> None:
    """Replay the conversion model at earlier origins: one row per origin (model against the
    logistic regression and the rule, with the difference's 90% interval); with --retrain,
    walk forward with and without retraining."""
    from core.timestamps import data_end
    from training.backtest import backtest as run_backtest
    from training.backtest import format_backtest, format_walk_forward, walk_forward

    text = every.strip().lower().removesuffix("d")
    if not text.isdigit() or not 1 <= int(text) <= 365:
        raise click.BadParameter(f"{every!r}: days from 1 to 365, as `30d` or `30`",
                                 param_hint="--every")
    every_days = int(text)
    if obj.runtime.settings.train.conversion_examples != "calendar":
        raise click.UsageError("backtest replays calendar snapshots; this config trains on "
                               "one example per lead at creation (use `leadlens evaluate`)")
    with open_warehouse(obj) as wh:
        when = timestamp(until, "--until") or data_end(wh.con)
        rows = (walk_forward if retrain else run_backtest)(
            wh, obj.runtime.settings, when, origins, every_days, say=say)
    if out is not None:
        rows.to_csv(out, index=False)
    click.echo(format_walk_forward(rows) if retrain else format_backtest(rows))


def _why_untrained(obj: Obj, kind: str) -> str:
    """The real cause a model has no versions, as the latest training recorded it."""
    from core.registry import skip_reason
    from training.tracking import setup

    setup(obj.runtime)
    why = skip_reason(kind)
    return why or "not trained yet: run `leadlens train`"


def _has_versions(obj: Obj, kind: str) -> bool:
    from core.names import REGISTERED_NAMES
    from core.registry import model_versions
    from training.tracking import setup

    setup(obj.runtime)
    return bool(model_versions(REGISTERED_NAMES[kind]))


@click.command()
@click.pass_obj
def models(obj: Obj) -> None:
    """Registered model versions, their aliases and out-of-time test metrics."""
    from core.names import REGISTERED_NAMES
    from core.registry import version_records
    from training.tracking import setup

    setup(obj.runtime)
    click.echo(f"Tracking store: {obj.runtime.mlflow_uri}")
    records = version_records()
    for kind, name in REGISTERED_NAMES.items():
        mine = [r for r in records if r.kind == kind]
        click.echo(f"{name} ({kind}): " + ("no versions" if not mine else ""))
        for r in mine:
            alias = f" @{','.join(r.aliases)}" if r.aliases else ""
            click.echo(f"  v{r.version}{alias}: AUC {_fmt(r.test_roc_auc)}, "
                       f"ECE {_fmt(r.test_ece)}, trained until {r.until or '?'}"
                       + (f", promoted {r.promoted_at}" if r.promoted_at else "")
                       + (f" (forced: {r.forced_reason})" if r.forced_reason else "")
                       + (f", leakage flags: {r.leakage_flags}"
                          if r.leakage_flags != "none" else ""))


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "?"
