"""What the service serves, and how it changes: load the `@champion` models, warm them, keep a
copy in the BentoML model store (so a restart works without MLflow), and swap atomically when
`@champion` moves, after validating the new version."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.model_bundle import ModelBundle, coverage_warning, load_bundle, synthetic_rows
from core.names import REGISTERED_NAMES, VersionTag
from core.registry import champion_version, configure, load_version, skip_reason
from core.settings import Runtime
from core.warehouse_snapshots import current_warehouse, snapshot_id
from serving.lead_features import FeatureSource
from serving.lead_table import LeadTable, build_lead_table
from serving.push import merge_pushed
from serving.scorer import Scorer, feature_labels

log = logging.getLogger("leadlens.serving")
SERVED = ("conversion", "dropout")
OPTIONAL = ("dropout",)
"""Served when promoted: a CRM export without an activity log has no dropout model; the service
answers everything else and picks the model up when it is promoted."""


@dataclass(frozen=True)
class Served:
    """One immutable snapshot of what is served; replaced whole, never edited."""

    scorers: dict[str, Scorer]
    source: FeatureSource
    as_of: pd.Timestamp
    origin: str  # "mlflow" or "bentoml store"
    notes: tuple[str, ...] = field(default_factory=tuple)


BACKGROUND_NICE = 10
"""How much lower (Linux nice) the model loader and table builder run than the requests."""


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux schedules threads separately); elsewhere, or
    when not permitted, leave it."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid)
                       + BACKGROUND_NICE)
    except (AttributeError, OSError) as err:
        log.info("model thread keeps its priority (%s)", type(err).__name__)


def _skip_note(kind: str) -> str:
    """Why the latest training skipped this model, as a suffix for a note (empty if it did
    not, or the registry cannot say)."""
    try:
        why = skip_reason(kind)
    except Exception:  # a note's detail: never a reason to fail loading
        return ""
    return f" (the latest training skipped it: {why})" if why else ""


def make_scorer(bundle: ModelBundle, runtime: Runtime, labels: dict[str, str]) -> Scorer:
    """A scorer for `bundle` with the configured engine (`serve.engine`): compiled trees are
    built (or read from `$LEADLENS_HOME/compiled`) here, off the request path."""
    scorer = Scorer(bundle, runtime.settings.serve, labels)
    if runtime.settings.serve.engine == "compiled":
        from serving.compiled_trees import compiled_raw_score

        scorer.engine = compiled_raw_score(bundle, runtime.home / "compiled")
    return scorer


def _validate(bundle: ModelBundle, columns: list[str]) -> None:
    """A version must take only features we compute, score made-up rows to finite
    probabilities, and explain them."""
    missing = [f for f in bundle.features if f not in columns]
    if missing:
        raise ValueError(f"needs features this warehouse lacks: {', '.join(missing)}")
    rows = synthetic_rows(bundle)
    p = bundle.predict(rows)
    if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise ValueError("scores outside [0, 1]")
    contrib = bundle.contributions(bundle.matrix(rows))
    if not np.allclose(contrib.sum(axis=1), bundle.raw_score(bundle.matrix(rows)), atol=1e-6):
        raise ValueError("SHAP values do not add up to the raw score")


def _stored(name: str) -> list[Any]:
    """The copies of `name` in the BentoML model store (BentoML raises when there are none)."""
    import bentoml

    try:
        return list(bentoml.models.list(name))
    except bentoml.exceptions.NotFound:
        return []


def _store_copy(bundle: ModelBundle, name: str, version: int) -> None:
    """Keep the bundle in the BentoML model store, labelled with its registry version (BentoML
    picks its own version strings); a version already there is not stored again."""
    import bentoml

    if any(m.info.labels.get("mlflow_version") == str(version) for m in _stored(name)):
        return
    with bentoml.models.create(name, labels={"mlflow_version": str(version)},
                               metadata={"registered_name": name}) as model:
        bundle.save(Path(model.path))
    log.info("stored %s v%s in the BentoML model store", name, version)


REPORT_CACHE_SIZE = 32
"""Rep reports a worker keeps (period, team and as_of each make one)."""
LAST_SERVED_FILE = "last-served.json"
"""In the home: the registry version last served per model (the fallback's first choice)."""


def _remember(home: Path, name: str, version: int) -> None:
    path = home / LAST_SERVED_FILE
    try:
        seen = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        seen = {}
    seen[name] = int(version)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(seen), encoding="utf-8")
    os.replace(tmp, path)


def _last_served(home: Path, name: str) -> int | None:
    try:
        value = json.loads((home / LAST_SERVED_FILE).read_text(encoding="utf-8")).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) else None


def _from_store(name: str, prefer: int | None = None) -> tuple[ModelBundle, int]:
    """The copy of `name` in the BentoML model store of the version last served (`prefer`),
    else the newest copy."""
    models = sorted(_stored(name), key=lambda m: m.creation_time, reverse=True)
    if not models:
        raise LookupError(f"{name}: not in the BentoML model store either")
    chosen = [m for m in models if m.info.labels.get("mlflow_version") == str(prefer)]
    m = (chosen or models)[0]
    bundle = load_bundle(Path(m.path))
    version = int(m.info.labels.get("mlflow_version", 0))
    bundle.meta["version"] = version
    return bundle, version


def _warmed(source: FeatureSource, scorers: dict[str, Scorer]) -> pd.Timestamp:
    """The source's default as_of, after scoring a few of its open leads with every scorer (the
    first real request should not pay for lazy initialisation; a broken source fails here)."""
    as_of = source.default_as_of()
    ids = source.open_lead_ids(as_of)[:5]
    if ids:
        probe = source.for_ids(ids, as_of)
        for s in scorers.values():
            s.score_rows(probe, explain=3)
    return as_of


class ServingState:
    """Holds the current `Served` snapshot; loading and swapping happen off the request path."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.current: Served | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._judging: Any = None
        self._judging_lock = threading.Lock()
        self._table: tuple[Served, LeadTable] | None = None
        self._table_lock = threading.Lock()
        self._reports: OrderedDict[tuple, Any] = OrderedDict()
        self._reports_lock = threading.Lock()
        self._retired: list[tuple[float, FeatureSource]] = []
        self._refused_warehouse: Path | None = None

    def scored_leads(self) -> tuple[Served, LeadTable]:
        """The open leads scored by the models being served (the dashboard's list), built once
        per snapshot: right after a load or swap by the background thread, or by the first
        request that needs it sooner."""
        with self._table_lock:
            served = self.current
            if served is None:
                raise LookupError("models are still loading")
            if self._table is None or self._table[0] is not served:
                self._table = (served, build_lead_table(served.source, served.scorers,
                                                        served.as_of))
            return self._table

    def rep_report(self, key: tuple, build: Callable[[], Any]) -> Any:
        """The rep report for `key` (period, team, as_of): built once, then served from a
        small cache, since the warehouse, the judging models and the settings do not change
        while this worker serves. One build at a time per worker: the report costs seconds
        of CPU, and a burst of them must not starve scoring."""
        with self._reports_lock:
            if key in self._reports:
                self._reports.move_to_end(key)
                return self._reports[key]
            value = build()
            self._reports[key] = value
            while len(self._reports) > REPORT_CACHE_SIZE:
                self._reports.popitem(last=False)
            return value

    def judging(self) -> Any:
        """The rep-blind models the rep report needs (`JudgingModels`), loaded once; raises
        LookupError naming what to train when one is missing."""
        from reps.report import judging_models_from_registry

        with self._judging_lock:
            if self._judging is None:
                self._judging, _notes = judging_models_from_registry()
            return self._judging

    @property
    def ready(self) -> bool:
        """True once models are loaded and being served."""
        return self.current is not None

    def _load(self, kind: str, version: int | None = None) -> tuple[ModelBundle, int, str]:
        name = REGISTERED_NAMES[kind]
        try:
            v = version if version is not None else champion_version(name)
            if v is None:
                raise LookupError(f"{name} has no @champion: run `leadlens promote`")
            bundle = load_version(name, v, cache_dir=self.runtime.home / "model-cache")
            try:
                _store_copy(bundle, name, v)
                _remember(self.runtime.home, name, v)
            except Exception as err:  # the store is a fallback; serving goes on without it
                log.warning("could not keep %s v%s in the BentoML store: %s", name, v, err)
            return bundle, v, "mlflow"
        except LookupError:
            raise
        except Exception as err:
            log.warning("MLflow unreachable for %s (%s); trying the BentoML store",
                        name, type(err).__name__)
            bundle, v = _from_store(name, _last_served(self.runtime.home, name))
            return bundle, v, "bentoml store"

    def load(self) -> Served:
        """Load and warm everything; the service is ready only after this returns."""
        configure(self.runtime.mlflow_uri)
        settings = self.runtime.settings
        source = FeatureSource(self.runtime.warehouse_path, settings.engagement)
        labels = feature_labels(settings.engagement, source.attributes)
        scorers, origins, notes = {}, set(), []
        for kind in SERVED:
            try:
                bundle, _v, origin = self._load(kind)
                _validate(bundle, source.columns)
            except Exception as err:
                if kind not in OPTIONAL:
                    raise
                notes.append(f"not serving {kind}: {err}{_skip_note(kind)}")
                log.warning("%s", notes[-1])
                continue
            scorers[kind] = make_scorer(bundle, self.runtime, labels)
            origins.add(origin)
        as_of = _warmed(source, scorers)
        served = Served(scorers, source, as_of, " and ".join(sorted(origins)), tuple(notes))
        self.current = served
        if "bentoml store" in served.origin:
            log.warning("started from the BentoML model store: MLflow was unreachable")
        return served

    def poll_once(self) -> list[str]:
        """New data first (rows pushed since the last poll merged, a newer warehouse snapshot
        taken up), then swap in any model whose `@champion` moved; a version that fails
        validation is refused and the old one keeps serving. Returns what happened to models."""
        current = self.current
        if current is None:
            return []
        self._close_retired()
        self._merge_pushed()
        moved = self._poll_warehouse(current)
        if moved is not None:
            current = moved
        events, scorers = [], dict(current.scorers)
        for kind in SERVED:
            name = REGISTERED_NAMES[kind]
            try:
                v = champion_version(name)
            except Exception as err:
                events.append(f"{name}: registry unreachable ({type(err).__name__})")
                continue
            serving = scorers[kind].version if kind in scorers else None
            if v is None or v == serving:
                continue
            try:
                bundle = load_version(name, v, cache_dir=self.runtime.home / "model-cache")
                _validate(bundle, current.source.columns)
            except Exception as err:
                events.append(f"{name}: refused v{v} ({type(err).__name__}: {err}); " + (
                    f"still serving v{serving}" if serving is not None else "not served"))
                continue
            try:  # the fallback keeps the latest champion seen, not the one loaded at start
                _store_copy(bundle, name, v)
                _remember(self.runtime.home, name, v)
            except Exception as err:
                log.warning("could not keep %s v%s in the BentoML store: %s", name, v, err)
            old = scorers.get(kind)
            if old is None:
                scorers[kind] = make_scorer(bundle, self.runtime, feature_labels(
                    self.runtime.settings.engagement, current.source.attributes))
                events.append(f"{name}: now serving v{v} (was not served)")
                continue
            scorers[kind] = make_scorer(bundle, self.runtime, old.labels)
            events.append(f"{name}: now serving v{v} (was v{old.version})")
        if any("now serving" in e for e in events):
            notes = tuple(n for n in current.notes if not any(
                n.startswith(f"not serving {k}:") for k in scorers))
            new = Served(scorers, current.source, current.as_of, current.origin, notes)
            # the new snapshot's scored leads are built before it is published, so requests
            # keep their fast path across a swap
            table = self._build_table(new)
            with self._table_lock:
                if table is not None:
                    self._table = (new, table)
                self.current = new
        for e in events:
            # WARNING: a swap or a refusal must reach the service log whatever its level
            log.warning("model poll: %s", e)
        return events

    def _poll_warehouse(self, current: Served) -> Served | None:
        """Publish a snapshot reading the newest warehouse snapshot, when `leadlens ingest`
        published one: opened and checked (every served model's features, a probe scored),
        its scored-leads table built, then swapped in whole with `as_of` moved to the new
        data. A snapshot that fails a check is refused with a log line (retried at the next
        poll only if a newer one appears) and the old one keeps serving."""
        try:
            path = current_warehouse(self.runtime.home)
        except Exception as err:
            log.warning("warehouse poll: %s; still serving snapshot %s", err,
                        snapshot_id(current.source.path))
            return None
        if path == current.source.path or path == self._refused_warehouse:
            return None
        try:
            source = FeatureSource(path, self.runtime.settings.engagement)
        except Exception as err:
            self._refused_warehouse = path
            log.warning("warehouse poll: refused snapshot %s (%s: %s); still serving %s",
                        snapshot_id(path), type(err).__name__, err,
                        snapshot_id(current.source.path))
            return None
        try:
            labels = feature_labels(self.runtime.settings.engagement, source.attributes)
            scorers = {}
            for kind, old in current.scorers.items():
                _validate(old.bundle, source.columns)
                scorers[kind] = Scorer(old.bundle, old.serve, labels)
                scorers[kind].engine = old.engine
            as_of = _warmed(source, scorers)
        except Exception as err:
            source.close()
            self._refused_warehouse = path
            log.warning("warehouse poll: refused snapshot %s (%s: %s); still serving %s",
                        snapshot_id(path), type(err).__name__, err,
                        snapshot_id(current.source.path))
            return None
        new = Served(scorers, source, as_of, current.origin, current.notes)
        table = self._build_table(new)
        with self._table_lock:
            if table is not None:
                self._table = (new, table)
            self.current = new
        self._retired.append((time.monotonic(), current.source))
        log.warning("warehouse poll: now serving snapshot %s (as_of %s, was %s as_of %s)",
                    snapshot_id(path), as_of, snapshot_id(current.source.path), current.as_of)
        return new

    def _merge_pushed(self) -> None:
        """Merge rows pushed since the last poll into a new snapshot (`serving.push`)."""
        try:
            merged, refused = merge_pushed(self.runtime, self.runtime.settings.serve.poll_seconds)
            for line in refused:
                log.warning("%s", line)
            if merged:
                log.info("%d pushed batches merged", merged)
        except Exception:  # the batches stay in the drop folder for the next poll
            log.exception("merging pushed rows failed; trying again next time")

    def _close_retired(self, force: bool = False) -> None:
        """Close the connections of snapshots replaced long enough ago that no request can
        still be reading them (longer than a request may take)."""
        grace = self.runtime.settings.serve.request_timeout_seconds + 5
        keep = []
        for since, source in self._retired:
            if force or time.monotonic() - since > grace:
                source.close()  # waits for a query still running on it
            else:
                keep.append((since, source))
        self._retired = keep

    def run(self, poll_seconds: float) -> None:
        """Load (retrying), then poll until stopped. Runs in a background thread, at a lower
        CPU priority than the threads answering requests (`BACKGROUND_NICE`)."""
        _lower_priority()
        while not self._stop.is_set() and self.current is None:
            try:
                self.load()
                self.error = None
            except Exception as err:
                self.error = f"{type(err).__name__}: {err}"
                log.error("models not loaded yet: %s", self.error)
                self._stop.wait(min(poll_seconds, 5.0))
        self._prepare_table()
        while not self._stop.wait(poll_seconds):
            try:
                self.poll_once()
            except Exception:  # one bad poll must not end hot swapping for good
                log.exception("polling @champion failed; trying again next time")

    def ready_table(self, served: Served) -> LeadTable | None:
        """The scored-leads table of this snapshot if it is built already (never builds)."""
        entry = self._table
        return entry[1] if entry is not None and entry[0] is served else None

    def _build_table(self, served: Served) -> LeadTable | None:
        try:
            return build_lead_table(served.source, served.scorers, served.as_of)
        except Exception as err:  # requests compute per lead; the dashboard retries
            log.warning("scored leads not built: %s", err)
            return None

    def _prepare_table(self) -> None:
        try:
            self.scored_leads()
        except Exception as err:  # the dashboard retries on its first request
            log.warning("leads table not prepared: %s", err)

    def stop(self) -> None:
        """Stop the background loader and poller (it ends within one wait)."""
        self._stop.set()

    def close(self) -> None:
        """Close the warehouse connection of what is being served."""
        served = self.current
        if served is not None:
            served.source.close()
        self._close_retired(force=True)

    def model_info(self, served: Served | None = None) -> dict[str, Any]:
        """What is served (this snapshot, default the current one)."""
        served = served if served is not None else self.current
        if served is None:
            return {"ready": False, "error": self.error}
        # each worker process polls and swaps on its own: for a few seconds after a promotion
        # two workers may answer with different versions; `worker` says which one answered
        out: dict[str, Any] = {"ready": True, "origin": served.origin, "worker": os.getpid(),
                               "as_of": str(served.as_of), "models": {},
                               "warehouse_snapshot": snapshot_id(served.source.path),
                               "notes": list(served.notes),
                               "scored_leads_ready": self.ready_table(served) is not None}
        from monitoring.monitor import latest_report

        report = latest_report(self.runtime.home)
        if report is not None:
            out["monitoring"] = {k: report.get(k) for k in (
                "as_of", "now", "model_version", "alarms", "score_psi", "hours_since_activity",
                "outside_training_range")}
            out["monitoring"]["realised"] = {k: report.get("realised", {}).get(k) for k in (
                "origin", "rows", "positives", "auc", "ece", "note")}
        table = self.ready_table(served)
        if table is not None:
            out["coverage"] = {
                "open_leads": len(table.frame),
                "outside_training_range": {k: round(v, 4) for k, v in table.coverage.items()},
                "warning": coverage_warning(table.coverage)}
        for kind, s in served.scorers.items():
            meta = s.bundle.meta
            out["models"][kind] = {
                "registered_name": REGISTERED_NAMES[kind], "version": s.version,
                "trained_until": meta.get(VersionTag.UNTIL),
                "valid_from": meta.get(VersionTag.VALID_FROM),
                "test_from": meta.get(VersionTag.TEST_FROM),
                "best_iteration": meta.get("best_iteration"),
                "test_metrics": meta.get("test_metrics", {}),
            }
        return out
