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

from core.contract import ACTIVITIES, LEADS, REPS
from core.settings import IngestConfig
from core.warehouse import UpsertCounts, Warehouse
from ingest.flat_export import MappedLeads, apply_mapping, read_export
from ingest.readers import read_table_file
from ingest.source_mapping import SourceMapping
from ingest.tombstones import apply_tombstones, validate_tombstones
from ingest.validation import (
    ContractError,
    MappingFailure,
    TableResult,
    describe_row_error,
    validate_table,
)

ProgressFn = Callable[[str], None]


class IngestError(RuntimeError):
    """The ingest was refused; nothing was loaded. The message says which file and why."""


@dataclass
class IngestSummary:
    """What an ingest did: each table's validation, the rows loaded, the quarantine files."""

    results: dict[str, TableResult]
    loaded: dict[str, UpsertCounts] = field(default_factory=dict)
    quarantine_files: dict[str, Path] = field(default_factory=dict)
    mapping: MappedLeads | None = None
    """What a source mapping left out and noted (flat exports only)."""
    deleted: dict[str, int] = field(default_factory=dict)
    """Rows a tombstone file removed, per table (a deleted lead's activities included)."""


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
    tombstones: Path | None = None,
) -> IngestSummary:
    """Validate and load the given files (`tombstones`: rows to delete,
    `ingest.tombstones`); raise `IngestError` (nothing loaded) when refused."""
    say = progress or (lambda _msg: None)
    files = {"reps": reps, "leads": leads, "activities": activities, "tombstones": tombstones}
    if all(p is None for p in files.values()):
        raise IngestError("nothing to ingest: give at least one of --leads, --activities, "
                          "--reps, --tombstones")
    return ingest_frames(warehouse, config, quarantine_dir, _read_files(files, say),
                         {k: str(v) for k, v in files.items() if v is not None}, say)


def _read_files(files: dict[str, Path | None], say: ProgressFn) -> dict[str, pd.DataFrame]:
    raws: dict[str, pd.DataFrame] = {}
    for name, path in files.items():
        if path is not None:
            say(f"reading {name} from {path}")
            try:
                raws[name] = read_table_file(path)
            except ContractError as err:
                raise IngestError(str(err)) from None
    return raws


def ingest_flat(
    warehouse: Warehouse,
    config: IngestConfig,
    quarantine_dir: Path,
    leads: Path,
    mapping: SourceMapping,
    activities: Path | None = None,
    reps: Path | None = None,
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Ingest a flat leads export through a source mapping (activities and reps optional, in
    contract form); raise `IngestError` (nothing loaded) when refused."""
    say = progress or (lambda _msg: None)
    say(f"reading leads from {leads} (through the source mapping)")
    try:
        mapped = apply_mapping(read_export(leads, mapping), mapping, str(leads))
    except ContractError as err:
        raise IngestError(str(err)) from None
    others = {"reps": reps, "activities": activities}
    raws = {"leads": mapped.frame, **_read_files(others, say)}
    sources = {"leads": str(leads), **{k: str(v) for k, v in others.items() if v is not None}}
    summary = ingest_frames(warehouse, config, quarantine_dir, raws, sources, say,
                            lead_failures=mapped.failures)
    summary.mapping = mapped
    return summary


def _validate_all(warehouse: Warehouse, config: IngestConfig, raws: dict[str, pd.DataFrame],
                  sources: dict[str, str], say: ProgressFn,
                  lead_failures: list[MappingFailure] | None) -> dict[str, TableResult]:
    results: dict[str, TableResult] = {}
    try:
        if "reps" in raws:
            say("validating reps")
            results["reps"] = validate_table(REPS, raws["reps"], sources["reps"], config)
        if "leads" in raws:
            say("validating leads")
            results["leads"] = validate_table(
                LEADS, raws["leads"], sources["leads"], config,
                stored_attribute_types=warehouse.attribute_types(),
                prior_failures=lead_failures or (),
            )
        if "activities" in raws:
            say("validating activities")
            known = warehouse.lead_ids()
            if "leads" in results:
                known = known.union(pd.Index(results["leads"].valid["lead_id"], dtype="string"))
            results["activities"] = validate_table(
                ACTIVITIES, raws["activities"], sources["activities"], config,
                known_lead_ids=known,
            )
        if "tombstones" in raws:
            say("validating tombstones")
            results["tombstones"] = validate_tombstones(raws["tombstones"],
                                                        sources["tombstones"])
    except ContractError as err:
        raise IngestError(str(err)) from None
    return results


def ingest_frames(
    warehouse: Warehouse,
    config: IngestConfig,
    quarantine_dir: Path,
    raws: dict[str, pd.DataFrame],
    sources: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    lead_failures: list[MappingFailure] | None = None,
) -> IngestSummary:
    """Like `ingest_files`, for frames already in memory (keyed `reps`, `leads`, `activities`).

    `lead_failures` are lead rows a source mapping could not use; they are quarantined."""
    say = progress or (lambda _msg: None)
    sources = sources or {name: f"<{name}>" for name in raws}
    results = _validate_all(warehouse, config, raws, sources, say, lead_failures)

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
        if "tombstones" in results:  # after the upserts: a deletion wins over a row it names
            summary.deleted = apply_tombstones(warehouse, results["tombstones"].valid)
    return summary


def _tombstone_lines(summary: IngestSummary, r: TableResult) -> list[str]:
    lines = [f"{r.table:<11} read {r.rows_read:>9,}  deleted "
             + ", ".join(f"{n:,} {t}" for t, n in summary.deleted.items())
             + f"  quarantined {r.rows_quarantined:>7,}"]
    lines += [f"{'':<13}{rule}: {count:,}" for rule, count in r.quarantined_by_rule.items()]
    if r.table in summary.quarantine_files:
        lines.append(f"{'':<13}quarantine file: {summary.quarantine_files[r.table]}")
    return lines


def format_summary(summary: IngestSummary) -> str:
    """The ingest summary printed by the CLI: per table, read, loaded, quarantined per rule."""
    lines = []
    if summary.mapping is not None:
        for why, cols in summary.mapping.excluded.items():
            lines.append(f"source mapping: left out as {why}: {', '.join(cols)}")
        lines += [f"source mapping: {n}" for n in summary.mapping.notes]
    for name, r in summary.results.items():
        loaded = summary.loaded.get(name, UpsertCounts(0, 0))
        if name == "tombstones":
            lines += _tombstone_lines(summary, r)
            continue
        lines.append(
            f"{name:<11} read {r.rows_read:>9,}  loaded {len(r.valid):>9,} "
            f"({loaded.inserted:,} new, {loaded.updated:,} updated)  "
            f"quarantined {r.rows_quarantined:>7,}"
        )
        for rule, count in r.quarantined_by_rule.items():
            lines.append(f"{'':<13}{rule}: {count:,}")
        if r.dropped_personal:
            lines.append(f"{'':<13}dropped as personal data (by name, "
                         f"ingest.personal_data_columns): {', '.join(r.dropped_personal)}")
        if r.masked_free_text:
            lines.append(f"{'':<13}email addresses or phone numbers masked in free text: "
                         + ", ".join(f"{c} ({n:,} values)"
                                     for c, n in r.masked_free_text.items()))
        if r.kept_personal_named:
            lines.append(f"{'':<13}kept although the name looks personal: " + ", ".join(
                f"{c} ({why})" for c, why in r.kept_personal_named.items()))
        if r.ignored_columns:
            lines.append(f"{'':<13}columns not in the contract, ignored: "
                         f"{', '.join(r.ignored_columns)}")
        if name in summary.quarantine_files:
            lines.append(f"{'':<13}quarantine file: {summary.quarantine_files[name]}")
    return "\n".join(lines)
