"""The living service's commands: `refresh` (the scheduled job), `monitor` and `history`."""

from __future__ import annotations

import json
import sys

import click

from leadlens.cli.common import Obj, say, timestamp


@click.command()
@click.option("--now", default=None, help="The clock for freshness (ISO-8601, UTC; default: "
              "the wall clock). A replay of past exports passes each export's time.")
@click.option("--retrain/--no-retrain", default=None,
              help="Force or forbid retraining (default: on a drift or performance alarm, or "
              "every retrain.every_days).")
@click.pass_obj
def refresh(obj: Obj, now: str | None, retrain: bool | None) -> None:
    """Load dropped deltas, rescore and record the history, monitor, retrain when due.

    Exit status: 0 done; 3 done, an alarm fired; 1 something failed; 75 another refresh of
    this home is running."""
    from leadlens.jobs.refresh import BUSY, RefreshBusy
    from leadlens.jobs.refresh import refresh as run

    try:
        result = run(obj.runtime, timestamp(now, "--now"), retrain, say)
    except RefreshBusy as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(BUSY)
    lines = [f"loaded deltas: {', '.join(result.loaded) or 'none'}"]
    lines += [f"REFUSED delta {f}" for f in result.failed]
    if result.waiting:
        lines.append(f"waiting for the next run: {', '.join(result.waiting)}")
    if result.as_of:
        lines.append(f"snapshot {result.snapshot}, as_of {result.as_of}: "
                     f"{result.history_rows:,} open leads recorded in the score history")
    if result.report is not None:
        lines.append(f"alarms: {len(result.report['alarms'])}"
                     + "".join(f"\n  {a['check']}: {a['detail']}"
                               for a in result.report["alarms"]))
    if result.retrained:
        lines.append(f"retrained ({result.retrained}); promoted: "
                     f"{', '.join(result.promoted) or 'nothing'}")
    lines += [f"FAILED: {e}" for e in result.errors]
    click.echo("\n".join(lines))
    sys.exit(result.status)


@click.command(name="monitor")
@click.option("--now", default=None, help="The clock for freshness (default: the wall clock).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def monitor_cmd(obj: Obj, now: str | None, fmt: str) -> None:
    """Drift, realised performance, freshness and coverage of the @champion conversion model
    on the current data; the report is kept for the service and the dashboard. Exit status 3
    when an alarm fires."""
    from core.names import CONVERSION
    from leadlens.jobs.refresh import monitor_snapshot
    from serving.models import champion_bundle

    rt = obj.runtime
    try:
        bundle = champion_bundle(rt, CONVERSION)
        report, path = monitor_snapshot(rt, bundle, rt.warehouse_path,
                                        now=timestamp(now, "--now"))
    except (LookupError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    if fmt == "json":
        click.echo(json.dumps(report, indent=1, default=str))
    else:
        r = report["realised"]
        top = sorted(report["feature_psi"].items(), key=lambda kv: -kv[1])[:5]
        click.echo("\n".join([
            f"model v{report['model_version']} (data until {report['model_until']}), as_of "
            f"{report['as_of']}: {report['open_leads']:,} open leads",
            "feature PSI (largest): " + ", ".join(f"{f} {v:.3f}" for f, v in top),
            f"score PSI: {report['score_psi']}",
            ("realised: " + (f"{r['rows']:,} leads open at {r['origin']}, {r['positives']} "
                             f"converted; AUC {r['auc']}, ECE {r['ece']}" if "rows" in r
                             else r.get("note", ""))),
            f"hours since the newest activity: {report['hours_since_activity']}",
            f"outside the training range: {report['outside_training_range']}",
            f"warnings: {'; '.join(report['warnings']) or 'none'}",
            f"alarms: {len(report['alarms'])}",
            *[f"  {a['check']}: {a['detail']}" for a in report["alarms"]],
            f"report: {path}"]))
    sys.exit(3 if report["alarms"] else 0)


@click.command()
@click.argument("lead_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def history(obj: Obj, lead_id: str, fmt: str) -> None:
    """A lead's recorded scores (one per refresh), its trend, and why it last moved."""
    from core.warehouse import Warehouse
    from monitoring.score_history import lead_story

    rt = obj.runtime
    with Warehouse(rt.warehouse_path, read_only=True) as wh:
        story = lead_story(rt.home, wh.con, lead_id, rt.settings.history)
    if not story["history"]:
        raise click.ClickException(f"{lead_id}: no recorded score (run `leadlens refresh`)")
    if fmt == "json":
        click.echo(json.dumps(story, indent=1))
        return
    lines = [f"{lead_id}: trend {story['trend']}"]
    lines += [f"  {h['as_of']}  {h['score'] * 100:5.1f}%  {h['grade']}  v{h['model_version']}"
              for h in story["history"]]
    move = story["last_move"]
    if move is not None:
        lines.append(f"last move {move['from']} -> {move['to']}: {move['change_points']:+.1f} "
                     "points" + (" (a new model)" if move["model_changed"] else ""))
        lines += [f"  {m['feature']}: {m['change']:+.1f} points" for m in move["reasons"][:5]]
        acts = move["activities"] or []
        lines.append(f"  activities in between: {len(acts)}" + "".join(
            f"\n    {a['occurred_at']} {a['type']}" for a in acts[:10]))
    click.echo("\n".join(lines))
