"""Push from the CRM: `POST /ingest/leads`, `/ingest/activities` and `/ingest/reps`, behind write
keys (`serving.guard`), with the same validation, quarantine and accounting as `leadlens ingest`.

A request's body is `{"rows": [contract rows as JSON objects]}`. Its rows are validated at once
(against the warehouse being served, plus the leads pushed and not yet merged, for activities):
the answer says how many were accepted and, per refused row, its position, column, rule and
message (never its values; the quarantine file under the home keeps them, as ingest does).
Accepted rows, personal columns dropped and free text masked as ingest does, are written as a
delta folder `drop/push-<stamp>-<id>/` and merged into a new warehouse snapshot by the
service's model thread at its next poll (`serve.poll_seconds`), in arrival order, batched: each
poll merges what arrived since the last one. `leadlens refresh` merges them too if it runs first.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.contract import TABLES
from core.settings import Runtime
from core.warehouse import Warehouse
from core.warehouse_snapshots import new_snapshot
from ingest.delta_folder import claim, load_into, unclaim, write_manifest
from ingest.load import IngestError
from ingest.validation import ContractError, validate_table
from serving.lead_features import FeatureSource
from serving.responses import json_reply

PUSHED = ("leads", "activities", "reps")
PREFIX = "push-"
MAX_ROWS = 10_000
MAX_ERRORS = 100


class PushRefused(ValueError):
    """The request body cannot be used (the message says why, never quoting values)."""


def _rows(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise PushRefused("the body is not valid JSON") from None
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows:
        raise PushRefused("the body must be {\"rows\": [one object per row, at least one]}")
    if len(rows) > MAX_ROWS:
        raise PushRefused(f"at most {MAX_ROWS:,} rows per request ({len(rows):,} sent)")
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise PushRefused(f"rows[{bad}] is not an object")
    return rows


def _text(value: Any) -> Any:
    """A JSON value as a CSV reader would see it: text, or missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def pending_lead_ids(home: Path) -> pd.Index:
    """Lead ids pushed and not merged yet, or being merged (activities pushed after their lead
    may use them)."""
    ids: list[str] = []
    drop = home / "drop"
    batches = [*drop.glob(f"{PREFIX}*/leads.csv"), *drop.glob(f".loading-{PREFIX}*/leads.csv")]
    for path in sorted(batches):
        try:
            ids += pd.read_csv(path, dtype=str, usecols=["lead_id"])["lead_id"].dropna().tolist()
        except (OSError, ValueError):
            continue
    return pd.Index(ids, dtype="string")


def accept_push(runtime: Runtime, table: str, body: bytes, source: FeatureSource
                ) -> dict[str, Any]:
    """Validate one push and queue its valid rows for the next merge; the answer's counts."""
    if table not in PUSHED:
        raise PushRefused(f"unknown table {table!r}: push leads, activities or reps")
    frame = pd.DataFrame([{k: _text(v) for k, v in r.items()} for r in _rows(body)])
    try:
        result = validate_table(
            TABLES[table], frame, f"POST /ingest/{table}", runtime.settings.ingest,
            # the served warehouse's lead ids are read only for activities, which need them
            known_lead_ids=(source.lead_ids().union(pending_lead_ids(runtime.home))
                            if table == "activities" else None),
            stored_attribute_types=source.attribute_kinds if table == "leads" else None)
    except ContractError as err:
        raise PushRefused(str(err)) from None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    batch = f"{PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    quarantine = None
    if result.rows_quarantined:
        runtime.quarantine_dir.mkdir(parents=True, exist_ok=True)
        quarantine = runtime.quarantine_dir / f"{stamp}-{table}-push.csv"
        result.quarantine.to_csv(quarantine, index=False)
    if len(result.valid):
        drop = runtime.home / "drop"
        tmp = drop / f".{batch}.{os.getpid()}.tmp"
        tmp.mkdir(parents=True)
        result.valid.to_csv(tmp / f"{table}.csv", index=False)
        os.rename(tmp, drop / batch)  # appears whole to the loader
    q = result.quarantine
    return {
        "table": table, "received": result.rows_read, "accepted": len(result.valid),
        "quarantined": result.rows_quarantined,
        "quarantined_by_rule": result.quarantined_by_rule,
        "errors": [{"row": int(r["row"]) - 1, "column": str(r["column"]), "rule": str(r["rule"]),
                    "message": str(r["message"])} for _, r in q.head(MAX_ERRORS).iterrows()],
        "dropped_personal_columns": result.dropped_personal,
        "batch": batch if len(result.valid) else None,
        "quarantine_file": quarantine.name if quarantine is not None else None,
        "merged_within_seconds": runtime.settings.serve.poll_seconds}


def merge_pushed(runtime: Runtime, wait_seconds: float = 30.0) -> tuple[int, list[str]]:
    """Merge every pushed batch waiting in the drop folder into one new warehouse snapshot, in
    arrival order, each batch in its own transaction (a row pushed twice: the later push wins;
    columns a batch did not send keep their values). Batches are claimed while the warehouse's
    write lock is held, so two loaders never reorder them. A batch the merge refuses moves to
    `drop/failed/` with its reason; the others are merged. Returns how many were merged, and
    a line per refused batch."""
    drop = runtime.home / "drop"
    if not any(p.is_dir() for p in drop.glob(f"{PREFIX}*")):
        return 0, []
    refused: list[str] = []
    merged: list[tuple[Path, str, Any]] = []
    claimed: list[tuple[Path, str]] = []
    try:
        with new_snapshot(runtime.home, wait_seconds) as path, Warehouse(path) as wh:
            for folder in sorted(p for p in drop.glob(f"{PREFIX}*") if p.is_dir()):
                taken = claim(folder)
                if taken is None:
                    continue
                claimed.append((taken, folder.name))
                try:
                    merged.append((taken, folder.name, load_into(wh, runtime, taken, None)))
                except (IngestError, OSError) as err:
                    target = drop / "failed" / folder.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(taken, target)
                    (target / "reason.txt").write_text(f"{err}\n", encoding="utf-8")
                    refused.append(f"pushed batch {folder.name} refused: {err}")
    except BaseException:
        for taken, name in claimed:
            if taken.exists():
                unclaim(taken, name)  # nothing was published: they wait for the next poll
        raise
    for taken, name, summary in merged:
        write_manifest(drop, name, summary)
        shutil.rmtree(taken, ignore_errors=True)
    return len(merged), refused


def push_routes(get_state: Any) -> dict[str, Any]:
    """ASGI handlers for `POST /ingest/{table}` (the guard has checked the write key and read
    the body within its limits)."""
    import anyio

    async def read(receive: Any) -> bytes:
        parts, more = [], True
        while more:
            message = await receive()
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(parts)

    def handler(table: str) -> Any:
        async def handle(scope: dict, receive: Any, send: Any) -> None:
            if scope.get("method") != "POST":
                await json_reply(send, 405, {"error": "use POST"})
                return
            state = get_state()
            served = state.current if state is not None else None
            if served is None:
                await json_reply(send, 503, {"error": "models are still loading; see /readyz"})
                return
            body = await read(receive)
            try:
                out = await anyio.to_thread.run_sync(
                    lambda: accept_push(state.runtime, table, body, served.source))
            except PushRefused as err:
                await json_reply(send, 400, {"error": str(err)})
                return
            await json_reply(send, 202 if out["accepted"] else 400, out)
        return handle

    return {f"/ingest/{t}": handler(t) for t in PUSHED}
