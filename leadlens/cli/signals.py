"""Engagement features for every lead at one point in time, and the data dictionary."""

from __future__ import annotations

from pathlib import Path

import click

from leadlens.cli.common import Obj, open_warehouse, say, timestamp


@click.command()
@click.option("--list", "list_only", is_flag=True,
              help="Print the declared feature list (the data dictionary) and exit.")
@click.option("--as-of", "as_of", default=None,
              help="Point in time (ISO-8601, UTC); only activities strictly before it count.")
@click.option("--leads", "which", type=click.Choice(["open", "all"]), default="open",
              show_default=True, help="Leads open at as_of, or every lead created by then.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (.parquet or .csv).")
@click.pass_obj
def features(obj: Obj, list_only: bool, as_of: str | None, which: str, out: Path | None) -> None:
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
    if as_of is None or out is None:
        raise click.UsageError("give --as-of and --out (or --list)")
    ts = timestamp(as_of, "--as-of")
    with open_warehouse(obj) as wh:
        pairs = select_pairs(wh.con, ts, which)
        say(f"computing features for {len(pairs):,} {which} leads as of {ts}")
        frame = batch_features(wh.con, pairs, cfg, list(wh.attribute_types()))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    click.echo(f"{len(frame):,} leads x {frame.shape[1] - 2} features -> {out}")
