"""Ingestion: read export files, validate every row, load the valid ones, quarantine the rest.

All-or-nothing: an unreadable file, a missing required column, or a table whose quarantined
share exceeds the configured limit fails the whole ingest and loads nothing. Otherwise every
table is loaded in one transaction and `loaded + quarantined == read` holds for each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from features.contract import ACTIVITIES, LEADS, REPS
from features.readers import read_table_file
from features.settings import IngestConfig
from features.validation import ContractError, TableResult, describe_row_error, validate_table
from features.warehouse import UpsertCounts, Warehouse

ProgressFn = Callable[[str], None]


class IngestError(RuntimeError):
    """The ingest was refused; nothing was loaded. The message says which file and why."""


@dataclass
class IngestSummary:
    results: dict[str, TableResult]
    loaded: dict[str, UpsertCounts] = field(default_factory=dict)
    quarantine_files: dict[str, Path] = field(default_factory=dict)


def _write_quarantine(result: TableResult, directory: Path, stamp: str) -> Path | None:
    if result.quarantine.empty:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}-{result.table}.csv"
    result.quarantine.to_csv(path, index=False)
    return path


def ingest_files(
    warehouse: Warehouse,
    config: IngestConfig,
    quarantine_dir: Path,
    leads: Path | None = None,
    activities: Path | None = None,
    reps: Path | None = None,
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Validate and load the given files; raise `IngestError` (nothing loaded) when refused."""
    say = progress or (lambda _msg: None)
    files = {"reps": reps, "leads": leads, "activities": activities}
    if all(p is None for p in files.values()):
        raise IngestError("nothing to ingest: give at least one of --leads, --activities, --reps")

    raws: dict[str, pd.DataFrame] = {}
    for name, path in files.items():
        if path is not None:
            say(f"reading {name} from {path}")
            try:
                raws[name] = read_table_file(path)
            except ContractError as err:
                raise IngestError(str(err)) from None
    return ingest_frames(warehouse, config, quarantine_dir, raws,
                         {k: str(v) for k, v in files.items() if v is not None}, say)


def ingest_frames(
    warehouse: Warehouse,
    config: IngestConfig,
    quarantine_dir: Path,
    raws: dict[str, pd.DataFrame],
    sources: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Like `ingest_files`, for frames already in memory (keyed `reps`, `leads`, `activities`)."""
    say = progress or (lambda _msg: None)
    sources = sources or {name: f"<{name}>" for name in raws}
    personal = config.personal_data_columns
    results: dict[str, TableResult] = {}
    try:
        if "reps" in raws:
            say("validating reps")
            results["reps"] = validate_table(REPS, raws["reps"], sources["reps"], personal)
        if "leads" in raws:
            say("validating leads")
            results["leads"] = validate_table(
                LEADS, raws["leads"], sources["leads"], personal,
                stored_attribute_types=warehouse.attribute_types(),
            )
        if "activities" in raws:
            say("validating activities")
            known = warehouse.lead_ids()
            if "leads" in results:
                known = known.union(pd.Index(results["leads"].valid["lead_id"], dtype="string"))
            results["activities"] = validate_table(
                ACTIVITIES, raws["activities"], sources["activities"], personal,
                known_lead_ids=known,
            )
    except ContractError as err:
        raise IngestError(str(err)) from None

    summary = IngestSummary(results=results)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for name, result in results.items():
        path = _write_quarantine(result, quarantine_dir, stamp)
        if path is not None:
            summary.quarantine_files[name] = path

    for name, result in results.items():
        if result.quarantine_share > config.max_quarantine_share:
            examples = "\n".join(
                "  " + describe_row_error(result, i) for i in range(min(5, result.rows_quarantined))
            )
            raise IngestError(
                f"{result.source}: {result.rows_quarantined} of {result.rows_read} {name} rows "
                f"({result.quarantine_share:.1%}) break the contract, more than the allowed "
                f"{config.max_quarantine_share:.1%}; nothing was loaded.\n"
                f"  by rule: {result.quarantined_by_rule}\n{examples}\n"
                f"  all of them: {summary.quarantine_files[name]}"
            )

    say("loading into the warehouse")
    with warehouse.transaction():
        for name in ("reps", "leads", "activities"):
            if name in results:
                r = results[name]
                summary.loaded[name] = warehouse.upsert(name, r.valid, r.attribute_columns)
    return summary


def format_summary(summary: IngestSummary) -> str:
    """The ingest summary printed by the CLI: per table, read, loaded, quarantined per rule."""
    lines = []
    for name, r in summary.results.items():
        loaded = summary.loaded.get(name, UpsertCounts(0, 0))
        lines.append(
            f"{name:<11} read {r.rows_read:>9,}  loaded {len(r.valid):>9,} "
            f"({loaded.inserted:,} new, {loaded.updated:,} updated)  "
            f"quarantined {r.rows_quarantined:>7,}"
        )
        for rule, count in r.quarantined_by_rule.items():
            lines.append(f"{'':<13}{rule}: {count:,}")
        if r.dropped_personal:
            lines.append(f"{'':<13}personal-data columns dropped: {', '.join(r.dropped_personal)}")
        if r.ignored_columns:
            lines.append(f"{'':<13}columns not in the contract, ignored: "
                         f"{', '.join(r.ignored_columns)}")
        if name in summary.quarantine_files:
            lines.append(f"{'':<13}quarantine file: {summary.quarantine_files[name]}")
    return "\n".join(lines)
