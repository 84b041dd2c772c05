"""The rep report and the five activity metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from leadlens.cli.common import Obj, open_warehouse, say

if TYPE_CHECKING:
    from core.periods import Period
    from core.warehouse import Warehouse


@click.command()
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
def reps(obj: Obj, metrics_only: bool, period: str | None, date_from: str | None,  # noqa: PLR0913 (one parameter per CLI option)
         date_to: str | None, team: str | None, top: int | None, flagged_only: bool, fmt: str,
         out: Path | None) -> None:
    """The rep report: five metrics against peers, observed vs expected conversions and
    dropouts (adjusted for lead quality), quota, leads at risk, and flags with evidence."""
    import pandas as pd

    from core.periods import resolve_period
    from core.timestamps import default_as_of

    with open_warehouse(obj) as wh:

        def latest() -> pd.Timestamp:
            return default_as_of(wh.con)

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


def _metrics_only(wh: Warehouse, obj: Obj, p: Period, team: str | None, top: int | None,
                  fmt: str) -> str:
    import pandas as pd

    from reps.metrics import format_rep_metrics, rep_metrics

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


def _full_report(wh: Warehouse, obj: Obj, p: Period, team: str | None, fmt: str,
                 flagged_only: bool) -> str:
    from core.registry import configure
    from reps import report_format as formats
    from reps.report import build_report, judging_models_from_registry
    from serving.render.rep_page import to_html

    configure(obj.runtime.mlflow_uri)
    try:
        models, notes = judging_models_from_registry()
        for note in notes:
            say(f"note: {note}")
        report = build_report(wh.con, p, obj.runtime.settings, models, team=team)
    except LookupError as err:  # a judging model missing, or trained under other labels
        raise click.ClickException(str(err)) from None
    if fmt == "json":
        return formats.to_json(report)
    if fmt == "csv":
        return formats.to_csv(report)
    if fmt == "html":
        return to_html(report)
    return formats.to_table(report, flagged_only)
