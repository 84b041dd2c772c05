"""`leadlens`: a thin command-line shell. Each command parses, calls one plain function, reports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from features.settings import ConfigError, Runtime, load_runtime


class _Obj:
    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            try:
                self._runtime = load_runtime(self.config)
            except ConfigError as err:
                raise click.ClickException(str(err)) from None
        return self._runtime


def _say(msg: str) -> None:
    click.echo(msg, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML config file (default: $LEADLENS_CONFIG, else built-in defaults, "
    "as in configs/leadlens.yaml).",
)
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """LeadLens: which leads to work and which reps need help.

    All state lives under $LEADLENS_HOME (default ./.leadlens).
    """
    ctx.obj = _Obj(config)


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for leads.csv, activities.csv, reps.csv and truth/.")
@click.option("--leads", type=click.IntRange(min=10), default=None, help="Number of leads.")
@click.option("--reps", type=click.IntRange(min=2), default=None, help="Number of reps.")
@click.option("--months", type=click.IntRange(1, 120), default=None, help="Months of history.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same CRM).")
@click.pass_obj
def simulate(obj: _Obj, out_dir: Path, leads: int | None, reps: int | None,
             months: int | None, seed: int | None) -> None:
    """Write a realistic simulated CRM export (defaults from the config's `simulate`)."""
    from tqdm import tqdm

    from features.simulate import simulate_crm, write_crm

    cfg = obj.runtime.settings.simulate
    overrides = {k: v for k, v in
                 {"leads": leads, "reps": reps, "months": months, "seed": seed}.items()
                 if v is not None}
    cfg = cfg.model_copy(update=overrides)
    with tqdm(desc="simulating follow-up steps", unit="step", file=sys.stderr) as bar:
        crm = simulate_crm(cfg, progress=lambda _step: bar.update(1))
    _say("writing files")
    paths = write_crm(crm, out_dir)
    click.echo(
        f"Simulated {len(crm.leads):,} leads, {len(crm.activities):,} activities, "
        f"{len(crm.reps):,} reps (seed {cfg.seed}) -> {out_dir}\n"
        f"  truth (never read by LeadLens): {paths['lead_truth'].parent}"
    )


@main.command()
@click.option("--leads", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Leads file (.csv or .parquet).")
@click.option("--activities", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Activities file (.csv or .parquet).")
@click.option("--reps", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Reps file (.csv or .parquet).")
@click.option("--source", "mapping_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Source mapping (configs/sources/NAME.yaml) for a flat leads "
              "export that is not in contract form.")
@click.pass_obj
def ingest(obj: _Obj, leads: Path | None, activities: Path | None, reps: Path | None,
           mapping_path: Path | None) -> None:
    """Validate a CRM export and load the valid rows; quarantine the rest with reasons."""
    from features.ingest import IngestError, format_summary, ingest_files, ingest_flat
    from features.source_mapping import load_source_mapping
    from features.warehouse import Warehouse, WarehouseBusy

    rt = obj.runtime
    mapping = None
    if mapping_path is not None:
        if leads is None:
            raise click.UsageError("--source maps a flat leads export: give --leads too")
        try:
            mapping = load_source_mapping(mapping_path)
        except ConfigError as err:
            raise click.ClickException(str(err)) from None
    try:
        with Warehouse(rt.warehouse_path) as wh:
            if mapping is not None:
                summary = ingest_flat(wh, rt.settings.ingest, rt.quarantine_dir, leads, mapping,
                                      activities=activities, reps=reps, progress=_say)
            else:
                summary = ingest_files(
                    wh, rt.settings.ingest, rt.quarantine_dir,
                    leads=leads, activities=activities, reps=reps, progress=_say,
                )
    except (IngestError, WarehouseBusy) as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_summary(summary))
    click.echo(f"Warehouse: {rt.warehouse_path}")


@main.command()
@click.pass_obj
def summary(obj: _Obj) -> None:
    """What the warehouse holds: rows, dates, conversion rate, follow-ups per lead."""
    from features.crm_summary import format_crm_summary, summarize_crm

    with _open_warehouse(obj) as wh:
        click.echo(format_crm_summary(summarize_crm(wh)))


def _open_warehouse(obj: _Obj):
    from features.warehouse import Warehouse

    wh = Warehouse(obj.runtime.warehouse_path, read_only=True)
    try:
        wh.open()
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    return wh


@main.command()
@click.option("--list", "list_only", is_flag=True,
              help="Print the declared feature list (the data dictionary) and exit.")
@click.option("--as-of", "as_of", default=None,
              help="Point in time (ISO-8601, UTC); only activities strictly before it count.")
@click.option("--leads", "which", type=click.Choice(["open", "all"]), default="open",
              show_default=True, help="Leads open at as_of, or every lead created by then.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (.parquet or .csv).")
@click.pass_obj
def features(obj: _Obj, list_only: bool, as_of: str | None, which: str, out: Path | None) -> None:
    """Engagement features for every lead at one point in time."""

    from features.catalog import format_data_dictionary
    from features.engagement import batch_features, select_pairs

    cfg = obj.runtime.settings.engagement
    if list_only:
        attrs = None
        if obj.runtime.warehouse_path.exists():
            with _open_warehouse(obj) as wh:
                attrs = wh.attribute_types()
        click.echo(format_data_dictionary(cfg, attrs))
        return
    if as_of is None or out is None:
        raise click.UsageError("give --as-of and --out (or --list)")
    ts = _timestamp(as_of, "--as-of")
    with _open_warehouse(obj) as wh:
        pairs = select_pairs(wh.con, ts, which)
        _say(f"computing features for {len(pairs):,} {which} leads as of {ts}")
        frame = batch_features(wh.con, pairs, cfg, list(wh.attribute_types()))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    click.echo(f"{len(frame):,} leads x {frame.shape[1] - 2} features -> {out}")


@main.command()
@click.option("--metrics-only", is_flag=True,
              help="Only the five activity metrics and outcome figures (no models needed).")
@click.option("--period", default=None, help="2025-03, 2025-Q1 or 2025 "
              "(default: the last full quarter in the data).")
@click.option("--from", "date_from", default=None, help="Start date, YYYY-MM-DD (with --to).")
@click.option("--to", "date_to", default=None, help="End date, inclusive, YYYY-MM-DD.")
@click.option("--team", default=None, help="Only this team.")
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="With --metrics-only: the N reps with the most and the N with the least "
              "won revenue.")
@click.option("--flagged-only", is_flag=True, help="Table format: only the flagged reps.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "html"]),
              default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of the terminal.")
@click.pass_obj
def reps(obj: _Obj, metrics_only: bool, period: str | None, date_from: str | None,
         date_to: str | None, team: str | None, top: int | None, flagged_only: bool, fmt: str,
         out: Path | None) -> None:
    """The rep report: five metrics against peers, observed vs expected conversions and
    dropouts (adjusted for lead quality), quota, leads at risk, and flags with evidence."""
    import pandas as pd

    from features.periods import resolve_period

    with _open_warehouse(obj) as wh:

        def latest() -> pd.Timestamp:
            ts = wh.con.execute("SELECT max(occurred_at) FROM activities").fetchone()[0]
            if ts is None:
                raise ValueError("the warehouse has no activities yet")
            return pd.Timestamp(ts)

        try:
            p = resolve_period(period, date_from, date_to, latest,
                               ("--period", "--from", "--to"))
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        if metrics_only:
            text = _metrics_only(wh, obj, p, team, top, fmt)
        else:
            if fmt == "html" and out is None:
                raise click.UsageError("--format html needs --out FILE")
            text = _full_report(wh, obj, p, team, fmt, flagged_only)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"rep report ({fmt}) -> {out}")
    else:
        click.echo(text)


def _metrics_only(wh, obj: _Obj, p, team: str | None, top: int | None, fmt: str) -> str:
    import pandas as pd

    from features.rep_metrics import format_rep_metrics, rep_metrics

    if fmt == "html":
        raise click.UsageError("--format html is for the full report (drop --metrics-only)")
    frame = rep_metrics(wh.con, p, obj.runtime.settings.engagement, team=team)
    if top is not None:
        ranked = frame.sort_values("won_revenue", ascending=False)
        frame = pd.concat([ranked.head(top), ranked.tail(top)]).drop_duplicates("rep_id")
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", indent=2)
    title = f"Rep activity metrics, {p.label} ({p.start:%Y-%m-%d} to {p.end:%Y-%m-%d})"
    if top is not None:
        title += f": top and bottom {top} by won revenue"
    return title + "\n" + format_rep_metrics(frame)


def _full_report(wh, obj: _Obj, p, team: str | None, fmt: str, flagged_only: bool) -> str:
    from features import rep_report_format as formats
    from features.model_store import configure
    from features.rep_report import build_report, judging_models_from_registry

    configure(obj.runtime.mlflow_uri)
    try:
        models, notes = judging_models_from_registry()
    except LookupError as err:
        raise click.ClickException(str(err)) from None
    for note in notes:
        _say(f"note: {note}")
    report = build_report(wh.con, p, obj.runtime.settings, models, team=team)
    if fmt == "json":
        return formats.to_json(report)
    if fmt == "csv":
        return formats.to_csv(report)
    if fmt == "html":
        return formats.to_html(report)
    return formats.to_table(report, flagged_only)


def _timestamp(value: str | None, hint: str):
    import pandas as pd

    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 timestamp",
                                 param_hint=hint) from None
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


MODEL_KINDS = ("conversion", "dropout", "lead_quality", "dropout_expected")


@main.command()
@click.option("--until", default=None,
              help="Train as of this time (ISO-8601, UTC): later outcomes are unknown. "
              "Default: the latest timestamp in the warehouse.")
@click.option("--model", "models", type=click.Choice(MODEL_KINDS), multiple=True,
              help="Train only these models (repeatable; default: all four).")
@click.pass_obj
def train(obj: _Obj, until: str | None, models: tuple[str, ...]) -> None:
    """Train, evaluate and register the models; one MLflow run with a nested run per model."""
    from training.pipeline import NotEnoughData, train_models

    rt = obj.runtime
    if not rt.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {rt.warehouse_path}: run `leadlens ingest`")
    try:
        report = train_models(rt, _timestamp(until, "--until"), models or MODEL_KINDS, say=_say)
    except NotEnoughData as err:
        raise click.ClickException(str(err)) from None
    except KeyboardInterrupt:
        _say("training interrupted: the MLflow run is marked KILLED; no alias moved")
        sys.exit(130)
    click.echo(f"MLflow run {report.parent_run_id} (until {report.until}); tracking store "
               f"{rt.mlflow_uri}")
    for r in report.results.values():
        m = r.metrics
        flags = r.audit.loc[r.audit["flagged"], "feature"].tolist()
        click.echo(f"  {r.spec.registered_name} v{r.version}: test AUC "
                   f"{m['lightgbm']['roc_auc']:.3f} (logistic {m['logistic']['roc_auc']:.3f}, "
                   f"rule {m['rule']['roc_auc']:.3f}), ECE {m['lightgbm']['ece']:.3f}"
                   + (f"; possible leakage: {', '.join(flags)}" if flags else ""))
    for kind, why in report.skipped.items():
        click.echo(f"  {kind}: not trained ({why})")
    click.echo("Promote with `leadlens promote` (each model must pass the gates).")


@main.command()
@click.option("--model", "models", type=click.Choice(MODEL_KINDS), multiple=True,
              help="Model to promote (repeatable; default: all four).")
@click.option("--version", type=click.IntRange(min=1), default=None,
              help="Promote this version (a version below the champion is a rollback). "
              "Default: the latest.")
@click.option("--force", is_flag=True, help="Move the alias even if the gates fail.")
@click.option("--reason", default=None, help="Why --force was needed (recorded on the version).")
@click.pass_obj
def promote(obj: _Obj, models: tuple[str, ...], version: int | None, force: bool,
            reason: str | None) -> None:
    """Move @champion to a candidate that passes the gates; otherwise say why not."""
    from training.promote import PromotionError
    from training.promote import promote as run_promote

    if version is not None and len(models) != 1:
        raise click.UsageError("--version needs exactly one --model")
    failed = False
    for kind in models or MODEL_KINDS:
        if not models and kind in ("dropout", "dropout_expected") \
                and not _has_versions(obj, kind):
            click.echo(f"{kind}: no versions trained (they need an activity log); skipped")
            continue
        try:
            decision = run_promote(obj.runtime, kind, version, force, reason)
        except PromotionError as err:
            raise click.ClickException(str(err)) from None
        click.echo(decision.summary())
        failed |= not decision.promoted and decision.champion != decision.candidate
    if failed:
        sys.exit(2)


@main.command()
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
def evaluate(obj: _Obj, kind: str, folds: int, test_share: float, until: str | None,
             out: Path | None) -> None:
    """LightGBM against logistic regression: time-ordered split and random cross-validation."""
    from features.labels import data_end
    from training.compare import compare_models, format_table, summarise

    with _open_warehouse(obj) as wh:
        when = _timestamp(until, "--until") or data_end(wh.con)
        results = compare_models(wh, obj.runtime.settings, when, kind, folds, test_share,
                                 say=_say)
    if out is not None:
        results.to_csv(out, index=False)
    click.echo(format_table(summarise(results)))


def _has_versions(obj: _Obj, kind: str) -> bool:
    from features.model_store import MODEL_NAMES, model_versions
    from training.tracking import setup

    setup(obj.runtime)
    return bool(model_versions(MODEL_NAMES[kind]))


@main.command()
@click.pass_obj
def models(obj: _Obj) -> None:
    """Registered model versions, their aliases and out-of-time test metrics."""
    from features.model_store import MODEL_NAMES, model_versions
    from training.tracking import setup

    setup(obj.runtime)
    click.echo(f"Tracking store: {obj.runtime.mlflow_uri}")
    for kind, name in MODEL_NAMES.items():
        versions = model_versions(name)
        click.echo(f"{name} ({kind}): " + ("no versions" if not versions else ""))
        for v in versions:
            t = v.tags
            alias = f" @{','.join(v.aliases)}" if v.aliases else ""
            click.echo(f"  v{v.version}{alias}: AUC {t.get('test_roc_auc', '?')[:6]}, "
                       f"ECE {t.get('test_ece', '?')[:6]}, trained until {t.get('until', '?')}"
                       + (f", promoted {t['promoted_at']}" if "promoted_at" in t else "")
                       + (f", leakage flags: {t['leakage_flags']}"
                          if t.get("leakage_flags", "none") != "none" else ""))


def _as_of(value: str | None, wh_path: Path) -> pd.Timestamp:  # noqa: F821  (pandas is imported lazily)
    """--as-of, or the latest timestamp in the warehouse (the data's "now")."""
    import pandas as pd

    from features.labels import data_end
    from features.warehouse import Warehouse

    ts = _timestamp(value, "--as-of")
    if ts is not None:
        return ts
    with Warehouse(wh_path, read_only=True) as wh:
        return data_end(wh.con) + pd.Timedelta(seconds=1)


def _scoring(obj: _Obj, kind: str = "conversion"):
    from serving.lead_features import FeatureSource
    from serving.models import NoChampion, load_champion

    rt: Runtime = obj.runtime
    if not rt.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {rt.warehouse_path}: run `leadlens ingest`")
    source = FeatureSource(rt.warehouse_path, rt.settings.engagement)
    try:
        scorer = load_champion(rt, kind, source.attributes)
    except NoChampion as err:
        source.close()
        raise click.ClickException(str(err)) from None
    return source, scorer


@main.command()
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Leads to score (.csv or .parquet, contract columns).")
@click.option("--activities", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Their activities (optional).")
@click.option("--open", "open_leads", is_flag=True,
              help="Score every lead open at --as-of in the warehouse instead.")
@click.option("--as-of", "as_of", default=None,
              help="Score as of this time (default: just after the latest data).")
@click.option("--explain", type=click.IntRange(0, 20), default=0,
              help="Add the top N reasons per lead.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .csv or .parquet.")
@click.option("--source", "mapping_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Source mapping for an --input in a flat export's own "
              "format (its outcome column may be absent).")
@click.pass_obj
def score(obj: _Obj, input_path: Path | None, activities: Path | None, open_leads: bool,
          as_of: str | None, explain: int, out: Path, mapping_path: Path | None) -> None:
    """Score leads with the @champion conversion model (the same code as the service)."""
    from features.readers import read_table_file as read_table
    from serving.batch import score_leads, score_open

    if open_leads == (input_path is not None):
        raise click.UsageError("give either --input FILE or --open")
    if mapping_path is not None and input_path is None:
        raise click.UsageError("--source maps an --input file")
    when = _as_of(as_of, obj.runtime.warehouse_path)
    source, scorer = _scoring(obj)
    try:
        if open_leads:
            frame = score_open(source, scorer, when, explain, say=_say)
        else:
            leads = (_mapped_leads(input_path, mapping_path) if mapping_path is not None
                     else read_table(input_path))
            acts = read_table(activities) if activities is not None else None
            frame = score_leads(source, scorer, leads, acts, when, explain)
    except (ValueError, KeyError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        source.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    click.echo(f"{len(frame):,} leads scored as of {when} with leadlens-conversion "
               f"v{scorer.version} -> {out}")


def _mapped_leads(path: Path, mapping_path: Path):  # -> pd.DataFrame
    """A flat export mapped onto contract leads for scoring; refuses rows the mapping cannot
    use, naming the first."""
    from features.contract import normalise_column_name
    from features.flat_export import apply_mapping, read_export
    from features.source_mapping import load_source_mapping

    try:
        mapping = load_source_mapping(mapping_path)
        mapped = apply_mapping(read_export(path, mapping), mapping, str(path), with_outcome=False)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    for f in mapped.failures:
        row = int(f.rows.argmax()) + 1
        raise click.ClickException(f"{path}: row {row}, column '{f.column}': {f.rule} "
                                   f"({f.message}); {int(f.rows.sum())} such rows")
    frame = mapped.frame
    frame.columns = [normalise_column_name(str(c)) for c in frame.columns]
    return frame


@main.command()
@click.argument("lead_id")
@click.option("--as-of", "as_of", default=None,
              help="Explain as of this time (default: just after the latest data).")
@click.option("--top", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "html"]), default="text",
              show_default=True, help="html: a self-contained page (waterfall chart, reasons, "
              "next steps, timeline) for email.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: standard output).")
@click.pass_obj
def explain(obj: _Obj, lead_id: str, as_of: str | None, top: int, fmt: str,
            out: Path | None) -> None:
    """Why one lead scores as it does: its score and the features that moved it most."""
    from serving.lead_features import UnknownLead

    when = _as_of(as_of, obj.runtime.warehouse_path)
    source, scorer = _scoring(obj)
    try:
        if fmt == "html":
            _explain_html(obj, source, scorer, lead_id, when, top, out)
            return
        feats = source.for_ids([lead_id], when)
    except UnknownLead:
        raise click.ClickException(f"lead {lead_id!r} is not in the warehouse") from None
    finally:
        source.close()
    e = scorer.explain(feats)[0]
    click.echo(f"Lead {lead_id} as of {when}: score {e.score:.3f} "
               f"(grade {scorer.score_rows(feats, ranked=False)[0]['grade']}), "
               f"leadlens-conversion v{scorer.version}")
    click.echo(f"  a typical lead scores {e.base_score:.3f}; what moved this one:")
    for r in scorer.reasons(e, top):
        click.echo(f"  {r['points']:+6.1f} pts  {r['label']} = {r['value']}")


def _explain_html(obj: _Obj, source, scorer, lead_id: str, when, top: int,
                  out: Path | None) -> None:
    from serving.lead_report_html import lead_html
    from serving.lead_view import lead_view
    from serving.models import NoChampion, load_champion

    scorers = {"conversion": scorer}
    try:
        scorers["dropout"] = load_champion(obj.runtime, "dropout", source.attributes)
    except NoChampion:
        pass
    page = lead_html(lead_view(source, scorers, lead_id, when, top))
    if out is None:
        click.echo(page)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
        click.echo(f"lead {lead_id} -> {out}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind (0.0.0.0 exposes the service to the network).")
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True)
@click.pass_obj
def serve(obj: _Obj, host: str, port: int) -> None:
    """Serve the @champion models over HTTP (BentoML), behind API keys."""
    import os

    from serving.guard import ApiKeyError, load_keys

    rt = obj.runtime
    try:
        load_keys()
    except ApiKeyError as err:
        raise click.ClickException(f"{err}. `make demo` writes one to "
                                   f"{rt.home / 'api-key'}") from None
    if not rt.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {rt.warehouse_path}: run `leadlens ingest`")
    env = dict(os.environ)
    env["LEADLENS_HOME"] = str(rt.home)
    env.setdefault("BENTOML_HOME", str(rt.home / "bentoml"))
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    if rt.config_path is not None:
        env["LEADLENS_CONFIG"] = str(rt.config_path)
    _say(f"serving on http://{host}:{port} (models load in the background; /readyz says when)")
    args = [sys.executable, "-m", "bentoml", "serve", "serving.service:LeadLens",
            "--host", host, "--port", str(port)]
    os.execvpe(args[0], args, env)


if __name__ == "__main__":  # pragma: no cover
    main()
