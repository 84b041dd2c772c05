"""Engagement features for every lead at one point in time, and the data dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from leadlens.cli.common import Obj, open_warehouse, report_rejected, say, timestamp

if TYPE_CHECKING:
    import pandas as pd


@click.command()
@click.option("--list", "list_only", is_flag=True,
              help="Print the declared feature list (the data dictionary) and exit.")
@click.option("--as-of", "as_of", default=None,
              help="Point in time (ISO-8601, UTC); only activities strictly before it count. "
              "With --engine spark it may be left out: the export's cutoff.txt under --data, "
              "else just after the latest data.")
@click.option("--leads", "which", type=click.Choice(["open", "all"]), default="open",
              show_default=True, help="Leads open at as_of, or every lead created by then.")
@click.option("--out", default=None,
              help="Output file (.parquet or .csv); with --engine spark a Parquet folder or URI.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb",
              show_default=True, help="spark: the same feature definitions on Apache Spark, "
              "reading the contract tables under --data (config section `spark`).")
@click.option("--data", default=None, help="With --engine spark: a folder or URI holding "
              "leads.parquet (or .csv) and activities.parquet (or .csv), contract columns.")
@click.pass_obj
def features(obj: Obj, list_only: bool, as_of: str | None, which: str, out: str | None,
             engine: str, data: str | None) -> None:
    """Engagement features for every lead at one point in time."""

    from features.catalog import format_data_dictionary
    from features.engagement import batch_features, select_pairs

    cfg = obj.runtime.settings.engagement
    if list_only:
        attrs = None
        if obj.runtime.warehouse_path.exists():
            with open_warehouse(obj) as wh:
                attrs = wh.attribute_types()
        click.echo(format_data_dictionary(cfg, attrs))
        return
    if engine == "spark":
        _spark_features(obj, data, timestamp(as_of, "--as-of"), which, out)
        return
    if as_of is None or out is None:
        raise click.UsageError("give --as-of and --out (or --list)")
    ts = timestamp(as_of, "--as-of")
    path = Path(out)
    with open_warehouse(obj) as wh:
        pairs = select_pairs(wh.con, ts, which)
        say(f"computing features for {len(pairs):,} {which} leads as of {ts}")
        frame = batch_features(wh.con, pairs, cfg, list(wh.attribute_types()))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    click.echo(f"{len(frame):,} leads x {frame.shape[1] - 2} features -> {out}")


def _spark_features(obj: Obj, data: str | None, as_of: pd.Timestamp | None, which: str,
                    out: str | None) -> None:
    from core.spark_session import SparkUnavailable
    from ingest.spark_tables import SparkInputError
    from leadlens.jobs.spark_jobs import features_job

    if data is None or out is None:
        raise click.UsageError("--engine spark needs --data (the contract tables) and --out")
    try:
        run = features_job(obj.runtime, data, as_of, which, out, say)
    except (SparkUnavailable, SparkInputError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{run.rows:,} {which} leads as of {run.as_of} -> {out}")
    report_rejected(run.rejected, run.rejected_at)
