"""Getting data in: simulate a demo CRM, ingest an export, summarise the warehouse."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.settings import ConfigError
from leadlens.cli.common import Obj, open_warehouse, say, timestamp

if TYPE_CHECKING:
    from ingest.source_mapping import SourceMapping


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for leads.csv, activities.csv, reps.csv and truth/.")
@click.option("--leads", type=click.IntRange(min=10), default=None, help="Number of leads.")
@click.option("--reps", type=click.IntRange(min=2), default=None, help="Number of reps.")
@click.option("--months", type=click.IntRange(1, 120), default=None, help="Months of history.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same CRM).")
@click.option("--world", default=None, help="A differently built CRM world instead of the demo "
              "(stage_dormancy, attributes, rep_skill, rising_base, long_cycles, small, "
              "drifting), with the truth at its cutoff in truth/.")
@click.option("--deltas", type=click.Choice(["monthly"]), default=None,
              help="With --world: write the export as initial/ (everything known 12 months "
              "before the cutoff) and deltas/01/ to deltas/12/ (each month's new and changed "
              "leads, its activities and its cutoff.txt), to upsert in order.")
@click.option("--after-days", type=click.IntRange(0, 730), default=0,
              help="With --world: go on this many days after the cutoff and write what became "
              "of the leads open at it to truth/after.csv (to judge recorded scores with; "
              "never read by LeadLens).")
@click.pass_obj
def simulate(obj: Obj, out_dir: Path, leads: int | None, reps: int | None,  # noqa: PLR0913 (one per option)
             months: int | None, seed: int | None, world: str | None,
             deltas: str | None, after_days: int) -> None:
    """Write a realistic simulated CRM export (defaults from the config's `simulate`)."""
    from tqdm import tqdm

    from leadlens.simulator.crm import simulate_crm, write_crm

    if world is not None:
        _simulate_world(out_dir, world, leads, reps, months, seed, deltas, after_days)
        return
    if deltas is not None or after_days:
        raise click.UsageError("--deltas and --after-days are for a world: give --world too")

    cfg = obj.runtime.settings.simulate
    overrides = {k: v for k, v in
                 {"leads": leads, "reps": reps, "months": months, "seed": seed}.items()
                 if v is not None}
    cfg = cfg.model_copy(update=overrides)
    with tqdm(desc="simulating follow-up steps", unit="step", file=sys.stderr) as bar:
        crm = simulate_crm(cfg, progress=lambda _step: bar.update(1))
    say("writing files")
    paths = write_crm(crm, out_dir)
    click.echo(
        f"Simulated {len(crm.leads):,} leads, {len(crm.activities):,} activities, "
        f"{len(crm.reps):,} reps (seed {cfg.seed}) -> {out_dir}\n"
        f"  truth (never read by LeadLens): {paths['lead_truth'].parent}"
    )


def _simulate_world(out_dir: Path, name: str, leads: int | None, reps: int | None,
                    months: int | None, seed: int | None, deltas: str | None = None,
                    after_days: int = 0) -> None:
    from leadlens.simulator.deltas import Export, write_monthly
    from leadlens.simulator.worlds import DELTA_MONTHS, build_world, world, write_world

    changes = {k: v for k, v in {"leads": leads, "reps": reps, "seed": seed,
                                 "days": round(months * 30.44) if months else None}.items()
               if v is not None}
    try:
        chosen = world(name, **changes)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--world") from None
    say(f"simulating the {name} world: {chosen.description}")
    crm = build_world(chosen, after_days=after_days)
    if deltas == "monthly":

        def written(export: Export) -> None:
            if export.name == "initial":
                rows = (f"{len(export.leads):,} leads, {len(export.activities):,} activities, "
                        f"{len(crm.reps):,} reps")
            else:
                rows = (f"{export.new_leads:,} new leads, {export.changed_leads:,} changed, "
                        f"{len(export.activities):,} activities")
            click.echo(f"  {export.name} (cutoff {export.cutoff.isoformat()}): {rows}")

        say(f"writing the initial export and {DELTA_MONTHS} monthly deltas to {out_dir}")
        try:
            write_monthly(crm, out_dir, written)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--months") from None
        click.echo(
            f"Simulated world {name} as monthly deltas: {len(crm.leads):,} leads, "
            f"{len(crm.activities):,} activities, {len(crm.reps):,} reps; final cutoff "
            f"{crm.cutoff} -> {out_dir}\n"
            f"  ingest initial/ then each deltas/NN/ in order, with --as-of its cutoff.txt\n"
            f"  truth at the final cutoff (never read by LeadLens): {out_dir / 'truth'} "
            f"({len(crm.truth):,} open leads)"
            + (f"; what became of them in the {after_days} days after it: truth/after.csv"
               if after_days else ""))
        return
    paths = write_world(crm, out_dir)
    click.echo(
        f"Simulated world {name}: {len(crm.leads):,} leads, {len(crm.activities):,} "
        f"activities, {len(crm.reps):,} reps; export cutoff {crm.cutoff} -> {out_dir}\n"
        f"  truth (never read by LeadLens): {paths['truth']} ({len(crm.truth):,} open leads); "
        f"ingest with --as-of {crm.cutoff.isoformat()}")


def _record_profile(home: Path, mapping: SourceMapping | None, mapping_path: Path | None,
                    activities: Path | None) -> None:
    """Record a flat export's shape for the training defaults (`core.export_profile`); an
    activity log removes it."""
    from core.export_profile import ExportProfile, write_profile

    if activities is not None:
        write_profile(home, None)
    elif mapping is not None and mapping_path is not None:
        write_profile(home, ExportProfile(
            mapping=mapping_path.name,
            known_after_days=mapping.outcome.known_after_days if mapping.outcome else None,
            losses_recorded=mapping.outcome is not None or mapping.closed_lost_at is not None))


@click.command()
@click.option("--leads", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Leads file (.csv or .parquet).")
@click.option("--activities", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Activities file (.csv or .parquet).")
@click.option("--reps", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Reps file (.csv or .parquet).")
@click.option("--source", "mapping_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Source mapping (configs/sources/NAME.yaml) for a flat leads "
              "export that is not in contract form.")
@click.option("--as-of", "as_of", default=None,
              help="When the export was taken (ISO-8601, UTC): training's `until` and the "
              "default as_of of scoring (default: the config's data.cutoff, else the latest "
              "timestamp in the data).")
@click.option("--tombstones", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Deletions (.csv or .parquet): columns `table` (leads, activities or reps) "
              "and `id`; a deleted lead takes its activities with it.")
@click.pass_obj
def ingest(obj: Obj, leads: Path | None, activities: Path | None, reps: Path | None,
           mapping_path: Path | None, as_of: str | None, tombstones: Path | None) -> None:
    """Validate a CRM export (whole or a delta) and merge the valid rows in by id; quarantine
    the rest with reasons. A running service picks the new data up at its next poll."""
    from core.timestamps import record_cutoff
    from core.warehouse import Warehouse, WarehouseBusy
    from core.warehouse_snapshots import SnapshotError, new_snapshot
    from ingest.load import IngestError, format_summary, ingest_files, ingest_flat
    from ingest.source_mapping import load_source_mapping

    rt = obj.runtime
    cutoff = timestamp(as_of, "--as-of")
    if cutoff is None and rt.settings.data.cutoff is not None:
        cutoff = timestamp(rt.settings.data.cutoff, "data.cutoff")
    mapping = None
    if mapping_path is not None:
        if tombstones is not None:
            raise click.UsageError("--tombstones deletes rows by contract id: give it in its "
                                   "own `leadlens ingest --tombstones FILE`, without --source")
        if leads is None:
            raise click.UsageError("--source maps a flat leads export: give --leads too")
        try:
            mapping = load_source_mapping(mapping_path)
        except ConfigError as err:
            raise click.ClickException(str(err)) from None
    cutoff_error = None
    try:
        # written into a new snapshot, published when the load succeeds: a running service
        # keeps reading the previous one and picks the new one up at its next poll
        with new_snapshot(rt.home) as path, Warehouse(path) as wh:
            if mapping is not None and leads is not None:  # --source needs --leads (above)
                summary = ingest_flat(wh, rt.settings.ingest, rt.quarantine_dir, leads, mapping,
                                      activities=activities, reps=reps, progress=say)
            else:
                summary = ingest_files(
                    wh, rt.settings.ingest, rt.quarantine_dir,
                    leads=leads, activities=activities, reps=reps, tombstones=tombstones,
                    progress=say,
                )
            if cutoff is not None:
                try:
                    record_cutoff(wh.con, cutoff)
                except ValueError as err:
                    cutoff_error = err
    except (IngestError, WarehouseBusy, SnapshotError) as err:
        raise click.ClickException(str(err)) from None
    if cutoff_error is not None:
        click.echo(format_summary(summary))
        raise click.ClickException(f"--as-of not recorded (the rows were loaded): "
                                   f"{cutoff_error}")
    _record_profile(rt.home, mapping, mapping_path, activities)
    click.echo(format_summary(summary))
    if cutoff is not None:
        click.echo(f"Export cutoff: {cutoff} (training's until and the default as_of)")
    click.echo(f"Warehouse: {rt.warehouse_path}")


@click.command()
@click.pass_obj
def summary(obj: Obj) -> None:
    """What the warehouse holds: rows, dates, conversion rate, follow-ups per lead."""
    from ingest.summary import format_crm_summary, summarize_crm

    with open_warehouse(obj) as wh:
        click.echo(format_crm_summary(summarize_crm(wh)))
