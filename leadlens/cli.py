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
@click.pass_obj
def ingest(obj: _Obj, leads: Path | None, activities: Path | None, reps: Path | None) -> None:
    """Validate a CRM export and load the valid rows; quarantine the rest with reasons."""
    from features.ingest import IngestError, format_summary, ingest_files
    from features.warehouse import Warehouse

    rt = obj.runtime
    try:
        with Warehouse(rt.warehouse_path) as wh:
            summary = ingest_files(
                wh, rt.settings.ingest, rt.quarantine_dir,
                leads=leads, activities=activities, reps=reps, progress=_say,
            )
    except IngestError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_summary(summary))
    click.echo(f"Warehouse: {rt.warehouse_path}")


@main.command()
@click.pass_obj
def summary(obj: _Obj) -> None:
    """What the warehouse holds: rows, dates, conversion rate, follow-ups per lead."""
    from features.crm_summary import format_crm_summary, summarize_crm
    from features.warehouse import Warehouse

    try:
        with Warehouse(obj.runtime.warehouse_path, read_only=True) as wh:
            click.echo(format_crm_summary(summarize_crm(wh)))
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None


if __name__ == "__main__":  # pragma: no cover
    main()
