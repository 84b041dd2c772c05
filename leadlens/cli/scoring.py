"""Scoring leads and explaining one, with the service's own scorer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.names import CONVERSION, registered_name
from core.settings import ConfigError, Runtime
from leadlens.cli.common import Obj, as_of_or_default, say

if TYPE_CHECKING:
    import pandas as pd

    from serving.lead_features import FeatureSource
    from serving.scorer import Scorer


def _scoring(obj: Obj, kind: str = "conversion") -> tuple[FeatureSource, Scorer]:
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


@click.command()
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Leads to score (.csv or .parquet, contract columns).")
@click.option("--activities", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Their activities (optional).")
@click.option("--open", "open_leads", is_flag=True,
              help="Score every lead open at --as-of in the warehouse instead.")
@click.option("--as-of", "as_of", default=None,
              help="Score as of this time (default: the export's cutoff, else just after the "
              "latest data; a lead of --input with a created_at and no activities: at its "
              "creation; with --engine spark the cutoff is read from cutoff.txt under --data).")
@click.option("--explain", type=click.IntRange(0, 20), default=0,
              help="Add the top N reasons per lead.")
@click.option("--out", required=True,
              help="Output .csv or .parquet; with --engine spark a Parquet folder or URI.")
@click.option("--source", "mapping_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Source mapping for an --input in a flat export's own "
              "format (its outcome column may be absent).")
@click.option("--engine", type=click.Choice(["native", "compiled", "spark"]), default="native",
              show_default=True, help="compiled: the trees compiled to native code (treelite + "
              "tl2cgen, cached per model in the home; the same scores, faster in bulk; falls "
              "back to native with a note when there is no C compiler). spark: every lead open "
              "at --as-of in the contract tables under --data, features and scores computed on "
              "Apache Spark (config section `spark`).")
@click.option("--data", default=None, help="With --engine spark: a folder or URI holding "
              "leads.parquet (or .csv) and activities.parquet (or .csv), contract columns.")
@click.pass_obj
def score(obj: Obj, input_path: Path | None, activities: Path | None, open_leads: bool,  # noqa: PLR0913 (one per option)
          as_of: str | None, explain: int, out: str, mapping_path: Path | None,
          engine: str, data: str | None) -> None:
    """Score leads with the @champion conversion model (the same code as the service)."""
    from ingest.readers import read_table_file as read_table
    from serving.batch import score_leads, score_open

    if engine == "spark":
        _score_on_spark(obj, data, as_of, explain, out, input_path, open_leads)
        return
    if open_leads == (input_path is not None):
        raise click.UsageError("give either --input FILE or --open")
    if mapping_path is not None and input_path is None:
        raise click.UsageError("--source maps an --input file")
    when = as_of_or_default(as_of, obj.runtime.warehouse_path)
    source, scorer = _scoring(obj)
    path = Path(out)
    if engine == "compiled":
        from serving.compiled_trees import compiled_raw_score

        scorer.engine = compiled_raw_score(scorer.bundle, obj.runtime.home / "compiled")
        if scorer.engine is None:
            say("note: compiled trees not available (see the log line); scoring with native "
                "LightGBM")
    try:
        if input_path is None:  # --open (exactly one of the two is given, checked above)
            frame = score_open(source, scorer, when, explain, say=say)
        else:
            leads, dated = (_mapped_leads(input_path, mapping_path) if mapping_path is not None
                            else (read_table(input_path), True))
            acts = read_table(activities) if activities is not None else None
            # without --as-of a new lead (created_at, no activities) is scored at its creation
            # (not when the mapping makes dates up: row order, spread, one value)
            frame = score_leads(source, scorer, leads, acts, when, explain,
                                at_creation=as_of is None and dated)
    except (ValueError, KeyError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        source.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    at_creation = int((frame["as_of"] != when).sum()) if "as_of" in frame else 0
    moment = (f"{at_creation:,} at their creation, the rest as of {when}" if at_creation
              else f"as of {when}")
    click.echo(f"{len(frame):,} leads scored ({moment}) with {registered_name(CONVERSION)} "
               f"v{scorer.version} -> {path}")
    _report_coverage(frame.attrs.get("coverage", {}))


def _report_coverage(coverage: dict[str, float]) -> None:
    """The share of scored leads outside the training range, and a warning above 20%."""
    from core.model_bundle import coverage_warning

    if coverage:
        click.echo("outside the training range: " + ", ".join(
            f"{v:.0%} of leads on {k}" for k, v in coverage.items()))
        warning = coverage_warning(coverage)
        if warning:
            say(f"WARNING: {warning}")


def _score_on_spark(obj: Obj, data: str | None, as_of: str | None, explain: int, out: str,
                    input_path: Path | None, open_leads: bool) -> None:
    from core.spark_session import SparkUnavailable
    from ingest.spark_tables import SparkInputError
    from leadlens.cli.common import report_rejected, timestamp
    from leadlens.jobs.spark_jobs import score_job
    from serving.models import NoChampion

    if data is None or input_path is not None or open_leads:
        raise click.UsageError("--engine spark scores the leads open in --data (the contract "
                               "tables): give --data, not --input or --open")
    try:
        run = score_job(obj.runtime, data, timestamp(as_of, "--as-of"), explain, out, say)
    except (SparkUnavailable, SparkInputError, NoChampion) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{run.rows:,} leads scored as of {run.as_of} on Spark with "
               f"{registered_name(CONVERSION)} -> {out}")
    _report_coverage(run.coverage)
    report_rejected(run.rejected, run.rejected_at)


def _mapped_leads(path: Path, mapping_path: Path) -> tuple[pd.DataFrame, bool]:
    """A flat export mapped onto contract leads for scoring, and whether its `created_at` comes
    from a date column (not made up from row order or one value); refuses rows the mapping
    cannot use, naming the first."""
    from core.contract import normalise_column_name
    from ingest.flat_export import apply_mapping, read_export
    from ingest.source_mapping import load_source_mapping

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
    return frame, mapping.created_at.column is not None


@click.command()
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
def explain(obj: Obj, lead_id: str, as_of: str | None, top: int, fmt: str,
            out: Path | None) -> None:
    """Why one lead scores as it does: its score and the features that moved it most."""
    from core.probability_text import probability_text
    from serving.lead_features import UnknownLead

    when = as_of_or_default(as_of, obj.runtime.warehouse_path)
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
    click.echo(f"Lead {lead_id} as of {when}: score {probability_text(e.score)} "
               f"(grade {scorer.score_rows(feats)[0]['grade']}), "
               f"{registered_name(CONVERSION)} v{scorer.version}")
    click.echo(f"  a typical lead scores {probability_text(e.base_score)}; what moved this one:")
    for r in scorer.reasons(e, top):
        click.echo(f"  {r['points']:+6.1f} pts  {r['text']}")


def _explain_html(obj: Obj, source: FeatureSource, scorer: Scorer, lead_id: str,
                  when: pd.Timestamp, top: int, out: Path | None) -> None:
    from serving.lead_view import lead_view
    from serving.models import NoChampion, load_champion
    from serving.render.lead_page import lead_html

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


@click.command("next-steps")
@click.argument("lead_id")
@click.option("--as-of", "as_of", default=None,
              help="Plan as of this time (default: just after the latest data).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def next_steps(obj: Obj, lead_id: str, as_of: str | None, fmt: str) -> None:
    """For an open lead: each candidate next step rescored, largest gain first (the same
    answer as `POST /next_steps`)."""
    import json

    from core.probability_text import probability_text
    from serving.lead_features import UnknownLead
    from serving.lead_view import NotOpen
    from serving.lead_view import next_steps as plan

    when = as_of_or_default(as_of, obj.runtime.warehouse_path)
    source, scorer = _scoring(obj)
    try:
        answer = plan(source, scorer, lead_id, when)
    except UnknownLead:
        raise click.ClickException(f"lead {lead_id!r} is not in the warehouse") from None
    except NotOpen as err:
        raise click.ClickException(str(err)) from None
    finally:
        source.close()
    if fmt == "json":
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"Lead {lead_id} as of {when}: score {probability_text(answer['score'])}; "
               "next steps, as the model sees them:")
    for s in answer["steps"]:
        click.echo(f"  {s['points']:+6.1f} pts  {s['label']} "
                   f"(score {probability_text(s['score_after'])})")
    click.echo(answer["caveat"])
