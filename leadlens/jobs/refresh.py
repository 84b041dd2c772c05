"""`leadlens refresh`: the scheduled job that keeps a home current, one idempotent run.

1. Load the delta folders found in the drop folder (`$LEADLENS_HOME/drop/<name>/`, in name
   order), each as one published warehouse snapshot (`ingest.delta_folder`); a loaded folder
   is removed and leaves a manifest of its counts in `drop/loaded/`; a refused one stays in
   place with a `reason.txt` and the folders after it wait (loading past it could let older
   rows overwrite newer ones). Rows pushed to the service and not merged yet are merged too.
2. Score every open lead with the `@champion` conversion model and record it in the score
   history (`monitoring.score_history`; the same as_of again replaces its record).
3. Monitor (`monitoring.monitor`) and keep the report.
4. Retrain and promote when a drift or performance alarm fired (`retrain.on_alarm`) or the
   champion's data ends `retrain.every_days` or more before the data; the promotion gates still
   decide what is served.

One run at a time per home (a lock file); a second run exits at once with `BUSY`. The outcome
says "alarm" (the job ran, an alarm fired) apart from "failed" (something could not be done).
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.model_bundle import ModelBundle
from core.names import CONVERSION, REGISTERED_NAMES
from core.settings import Runtime
from core.timestamps import default_as_of
from core.warehouse import Warehouse
from core.warehouse_snapshots import snapshot_id
from ingest.delta_folder import load_dropped, reclaim_stale
from ingest.load import format_summary
from monitoring.monitor import monitor, save_report
from monitoring.score_history import record_scores

Say = Callable[[str], None]
OK, FAILED, ALARM, BUSY = 0, 1, 3, 75
"""Exit statuses: done; something failed; done but an alarm fired; another run holds the lock."""
RETRAIN_CHECKS = ("feature_drift", "score_drift", "realised_auc", "realised_ece")
"""Alarms that call for retraining (stale data or coverage do not: new models would not help)."""


class RefreshBusy(RuntimeError):
    """Another refresh of this home is running."""


@dataclass
class RefreshResult:
    """What one refresh did."""

    loaded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    snapshot: str | None = None
    as_of: str | None = None
    history_rows: int = 0
    report: dict[str, Any] | None = None
    retrained: str | None = None
    promoted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        """OK, FAILED or ALARM (see the module docstring)."""
        if self.failed or self.errors:
            return FAILED
        return ALARM if self.report and self.report.get("alarms") else OK


@contextmanager
def refresh_lock(home: Path) -> Iterator[None]:
    """Hold the home's refresh lock; RefreshBusy at once when another run holds it."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "refresh.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefreshBusy(f"{home / 'refresh.lock'}: another refresh is running") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def drop_dir(home: Path) -> Path:
    """Where deltas are dropped for the next refresh."""
    return home / "drop"


def _load_drops(runtime: Runtime, result: RefreshResult, say: Say) -> None:
    from serving.push import PREFIX, merge_pushed

    drop = drop_dir(runtime.home)
    for name in reclaim_stale(drop):
        say(f"{name}: given back from a loader that died mid-load")
    folders = sorted(p for p in drop.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and not p.name.startswith(PREFIX)
                     and p.name not in ("loaded", "failed")) if drop.is_dir() else []
    for i, folder in enumerate(folders):
        say(f"loading delta {folder.name}")
        summary, refused = load_dropped(runtime, folder, say)
        if refused is not None:
            result.failed.append(f"{folder.name}: {refused.splitlines()[0]}")
            result.waiting = [f.name for f in folders[i + 1:]]
            say(f"delta {folder.name} refused: {refused}")
            return
        if summary is not None:  # None: another loader took it
            say(format_summary(summary))
            result.loaded.append(folder.name)
    merged, refused_pushes = merge_pushed(runtime)
    for line in refused_pushes:
        say(line)
    if merged:
        result.loaded.append(f"{merged} pushed batches")


def _days_behind(bundle_until: str, as_of: pd.Timestamp) -> float:
    return (as_of - pd.Timestamp(bundle_until)).total_seconds() / 86400


def _retrain(runtime: Runtime, result: RefreshResult, say: Say) -> None:
    from training.pipeline import train_models
    from training.promote import promote

    try:
        report = train_models(runtime, say=say)
    except Exception as err:  # reported as a failure; the champion keeps serving
        result.errors.append(f"retraining failed: {type(err).__name__}: {err}")
        return
    for kind in report.results:
        decision = promote(runtime, kind)
        say(decision.summary())
        if decision.promoted:
            result.promoted.append(f"{REGISTERED_NAMES[kind]} v{decision.candidate}")


def monitor_snapshot(runtime: Runtime, bundle: ModelBundle, path: Path,
                     as_of: pd.Timestamp | None = None, now: pd.Timestamp | None = None
                     ) -> tuple[dict[str, Any], Path]:
    """Monitor `bundle` on the warehouse file `path` at `as_of` (default: its default as_of),
    `now` the clock for freshness (default: the wall clock); the report and where it is kept.
    ValueError when the model cannot be monitored."""
    with Warehouse(path, read_only=True) as wh:
        report = monitor(wh.con, bundle, runtime.settings,
                         as_of if as_of is not None else default_as_of(wh.con),
                         now if now is not None else pd.Timestamp.now("UTC").tz_localize(None))
    return report, save_report(runtime.home, report)


def refresh(runtime: Runtime, now: pd.Timestamp | None = None, retrain: bool | None = None,
            say: Say = print) -> RefreshResult:
    """One refresh of the home (see the module docstring). `now`: the clock for freshness
    (default the wall clock; a replay passes the export's time). `retrain`: force (True) or
    forbid (False) retraining; None decides by the alarms and `retrain.every_days`.
    RefreshBusy when another run holds the lock."""
    from serving.batch import history_rows
    from serving.lead_features import FeatureSource
    from serving.models import NoChampion, champion_bundle
    from serving.scorer import Scorer, feature_labels

    settings = runtime.settings
    result = RefreshResult()
    with refresh_lock(runtime.home):
        _load_drops(runtime, result, say)
        try:
            bundle = champion_bundle(runtime, CONVERSION)
        except NoChampion as err:
            result.errors.append(str(err))
            return result
        version = bundle.meta.get("version")
        source = FeatureSource(runtime.warehouse_path, settings.engagement)
        try:
            as_of = source.default_as_of()
            result.snapshot, result.as_of = snapshot_id(source.path), str(as_of)
            scored_path = source.path
            scorer = Scorer(bundle, settings.serve,
                            feature_labels(settings.engagement, source.attributes))
            rows = history_rows(source, scorer, as_of, settings.history.reasons, say)
        finally:
            source.close()
        record_scores(runtime.home, as_of, rows)
        result.history_rows = len(rows)
        say(f"recorded {len(rows):,} open leads' scores as of {as_of} (model v{version})")
        try:  # the snapshot just scored, even if a push was merged meanwhile
            report, _path = monitor_snapshot(runtime, bundle, scored_path, as_of, now)
        except ValueError as err:
            result.errors.append(f"monitoring: {err}")
            return result
        result.report = report
        for alarm in report["alarms"]:
            say(f"ALARM {alarm['check']}: {alarm['detail']}")
        behind = _days_behind(report["model_until"], as_of)
        due = [a["check"] for a in report["alarms"] if a["check"] in RETRAIN_CHECKS]
        if retrain is None:
            if settings.retrain.on_alarm and due:
                result.retrained = f"alarm: {', '.join(due)}"
            elif behind >= settings.retrain.every_days:
                result.retrained = (f"schedule: the model's data ends {behind:.0f} days before "
                                    f"the data (retrain.every_days {settings.retrain.every_days})")
        elif retrain:
            result.retrained = "asked for (--retrain)"
        if result.retrained:
            say(f"retraining ({result.retrained})")
            _retrain(runtime, result, say)
    return result
