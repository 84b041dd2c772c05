"""Score history: what each refresh scored for every open lead, a trend per lead, and why a
score moved between two refreshes.

Each refresh writes one Parquet file, `history/scores-<as_of>.parquet` under the home (written
whole, then renamed: readers never see half a file; the same `as_of` again replaces it, so a
refresh run twice keeps one record). A row: lead_id, as_of, score, grade, model_version and the
top reasons as compact JSON (`[[reason family, points], ...]`). No names, emails or phone
numbers: ids, scores and feature-family names only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.settings import HistoryConfig

DIRECTORY = "history"
COLUMNS = ["lead_id", "as_of", "score", "grade", "model_version", "reasons"]
TRENDS = ("Improving", "Steady", "Declining", "Not enough info")


def history_dir(home: Path) -> Path:
    """Where a home's score history lives."""
    return Path(home) / DIRECTORY


def compact_reasons(reasons: list[dict[str, Any]]) -> str:
    """Reasons as `[[family, points], ...]` JSON (the family: the reason's leading feature)."""
    return json.dumps([[r.get("feature", ""), round(float(r["points"]), 3)] for r in reasons],
                      separators=(",", ":"))


def record_scores(home: Path, as_of: pd.Timestamp, scored: pd.DataFrame) -> Path:
    """Store one refresh's scores (`scored`: lead_id, score, grade, model_version, reasons as
    `compact_reasons` text); returns the file written."""
    missing = [c for c in COLUMNS if c not in scored.columns and c != "as_of"]
    if missing:
        raise ValueError(f"score history rows need {', '.join(missing)}")
    frame = scored.assign(as_of=pd.Timestamp(as_of))[COLUMNS].copy()
    frame["lead_id"] = frame["lead_id"].astype(str)
    frame["score"] = frame["score"].astype("float64")
    frame["model_version"] = frame["model_version"].astype("Int64")
    frame = frame.sort_values("lead_id", kind="stable")  # row groups by id: lookups prune
    directory = history_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"scores-{pd.Timestamp(as_of):%Y%m%dT%H%M%S}.parquet"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def _files(home: Path) -> list[str]:
    return sorted(str(p) for p in history_dir(home).glob("scores-*.parquet"))


def lead_history(home: Path, lead_id: str) -> pd.DataFrame:
    """Every recorded score of one lead, oldest first (empty when none)."""
    files = _files(home)
    if not files:
        return pd.DataFrame(columns=COLUMNS)
    with duckdb.connect() as con:
        return con.execute(
            "SELECT lead_id, as_of, score, grade, model_version, reasons "
            "FROM read_parquet($files) WHERE lead_id = $id ORDER BY as_of",
            {"files": files, "id": str(lead_id)}).df()


def refreshes(home: Path) -> pd.DataFrame:
    """Per recorded refresh: as_of, open leads scored, mean score (oldest first)."""
    files = _files(home)
    if not files:
        return pd.DataFrame(columns=["as_of", "leads", "mean_score"])
    with duckdb.connect() as con:
        return con.execute(
            "SELECT as_of, count(*) AS leads, avg(score) AS mean_score "
            "FROM read_parquet($files) GROUP BY as_of ORDER BY as_of", {"files": files}).df()


@dataclass(frozen=True)
class Trend:
    """A lead's trend over its last refreshes."""

    label: str  # one of TRENDS
    change_points: float | None  # percentage points from the window's first to its last score
    points: int  # refreshes in the window


def trend(history: pd.DataFrame, cfg: HistoryConfig) -> Trend:
    """Improving / Declining when the score moved over the last `cfg.trend_points` refreshes
    by at least `cfg.trend_min_points` percentage points and `cfg.trend_min_relative` of the
    earlier score; Steady otherwise; Not enough info with fewer refreshes recorded."""
    window = history.tail(cfg.trend_points)
    if len(window) < cfg.trend_points:
        return Trend("Not enough info", None, len(window))
    first, last = float(window["score"].iloc[0]), float(window["score"].iloc[-1])
    change = (last - first) * 100.0
    moved = abs(change) >= cfg.trend_min_points and abs(last - first) >= (
        cfg.trend_min_relative * first)
    label = "Steady" if not moved else ("Improving" if change > 0 else "Declining")
    return Trend(label, round(change, 3), len(window))


def why_moved(before: pd.Series, after: pd.Series) -> list[dict[str, Any]]:
    """Between two recorded refreshes of a lead: each reason's change of points (a reason
    outside one refresh's top reasons counts 0 there, `in_top` says where it was), largest
    change first."""
    old = {f: p for f, p in json.loads(before["reasons"] or "[]")}
    new = {f: p for f, p in json.loads(after["reasons"] or "[]")}
    moves = [{"feature": f, "points_before": old.get(f), "points_after": new.get(f),
              "change": round(new.get(f, 0.0) - old.get(f, 0.0), 3),
              "in_top": "both" if f in old and f in new else ("before" if f in old else "after")}
             for f in dict.fromkeys([*new, *old])]
    return sorted(moves, key=lambda m: -abs(m["change"]))


def activities_between(con: duckdb.DuckDBPyConnection, lead_id: str, start: pd.Timestamp,
                        end: pd.Timestamp) -> list[dict[str, Any]]:
    """The lead's activities in [start, end): when, type, direction and outcome (no notes)."""
    cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'activities'"
    ).fetchall()}
    extra = [c for c in ("direction", "outcome") if c in cols]
    rows = con.execute(
        f"SELECT occurred_at, type{''.join(', ' + c for c in extra)} FROM activities "  # noqa: S608 (contract columns)
        "WHERE lead_id = $id AND occurred_at >= $s AND occurred_at < $e ORDER BY occurred_at",
        {"id": lead_id, "s": start.to_pydatetime(), "e": end.to_pydatetime()}).fetchall()
    names = ["occurred_at", "type", *extra]
    return [{k: (str(v) if v is not None else None) for k, v in zip(names, r, strict=True)}
            for r in rows]


def _version(row: Any) -> int | None:
    value = row["model_version"]
    return None if pd.isna(value) else int(value)


def lead_story(home: Path, con: duckdb.DuckDBPyConnection | None, lead_id: str,
               cfg: HistoryConfig) -> dict[str, Any]:
    """A lead's recorded scores, its trend, and its last move explained: each reason's change
    of points and the activities between the two refreshes (`con`: the warehouse, or None to
    leave the activities out)."""
    hist = lead_history(home, lead_id)
    t = trend(hist, cfg)
    out: dict[str, Any] = {
        "lead_id": str(lead_id),
        "history": [{"as_of": str(r.as_of), "score": round(float(r.score), 6),
                     "grade": r.grade, "model_version": _version(r._asdict())}
                    for r in hist.itertuples()],
        "trend": t.label, "trend_change_points": t.change_points,
        "last_move": None}
    if len(hist) >= 2:
        before, after = hist.iloc[-2], hist.iloc[-1]
        out["last_move"] = {
            "from": str(before["as_of"]), "to": str(after["as_of"]),
            "change_points": round((float(after["score"]) - float(before["score"])) * 100, 3),
            "model_changed": _version(before) != _version(after),
            "reasons": why_moved(before, after),
            "activities": (activities_between(con, str(lead_id), pd.Timestamp(before["as_of"]),
                                               pd.Timestamp(after["as_of"]))
                           if con is not None else None)}
    return out
