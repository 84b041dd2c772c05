"""The managers' dashboard: its static page (served without a key: it holds no data) and the
JSON endpoints it reads (behind the key, like every other endpoint).

Everything the page needs comes from this service: no CDN, no external fonts, charts as SVG
drawn on the server (`serving.render.svg_charts`), so it works offline. The endpoints are plain ASGI
handlers the guard routes to (GET with query parameters); heavy work runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import pandas as pd

from monitoring.monitor import reports
from monitoring.score_history import activities_between, lead_story
from serving.lead_features import UnknownLead
from serving.lead_table import leads_page
from serving.lead_view import lead_view
from serving.render.svg_charts import calibration, time_series
from serving.responses import json_reply
from serving.state import ServingState

UI_DIR = Path(__file__).parent / "ui"
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/style.css": ("style.css", "text/css; charset=utf-8"),
}
Handler = Callable[[dict, Any, Any], Awaitable[None]]


class BadQuery(ValueError):
    """A query parameter that cannot be used (the message names it, never its value)."""


async def _reply(send: Any, status: int, body: bytes, content_type: str,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Any, status: int, payload: Any) -> None:
    await json_reply(send, status, payload, [(b"cache-control", b"no-store")])


def static_routes() -> dict[str, Handler]:
    """`/` and its script and style, read once at start."""
    routes: dict[str, Handler] = {}
    for path, (name, kind) in STATIC.items():
        body = (UI_DIR / name).read_bytes()

        async def serve(scope: dict, receive: Any, send: Any, body: bytes = body,
                        kind: str = kind) -> None:
            if scope.get("method") not in ("GET", "HEAD"):
                await _json(send, 405, {"error": "use GET"})
                return
            await _reply(send, 200, body, kind, [(b"cache-control", b"no-cache")])
        routes[path] = serve
    return routes


KNOWN = frozenset({"page", "per_page", "rep", "team", "source", "grade", "id", "period",
                   "at_risk", "sort"})


def _query(scope: dict) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    out = {}
    for key, values in raw.items():
        if len(values[-1]) > 128:
            name = f"'{key}'" if key in KNOWN else "(one the page does not use)"
            raise BadQuery(f"query parameter {name} is longer than 128 characters")
        out[key] = values[-1]
    return out


def _int(query: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    value = query.get(key) or str(default)
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadQuery(f"query parameter '{key}' must be a whole number from {low} to {high}")
    return int(value)


def api_routes(get_state: Callable[[], ServingState | None],
               reps_json: Callable[[ServingState, dict[str, str]], dict]) -> dict[str, Handler]:
    """The dashboard's JSON endpoints. `reps_json` builds the rep report (the service owns it,
    so the dashboard and `POST /reps` share one implementation)."""

    def leads(state: ServingState, q: dict[str, str]) -> dict:
        page = _int(q, "page", 1, 1, 10**9)
        per_page = _int(q, "per_page", 25, 1, 200)
        if q.get("sort", "") not in ("", "score", "risk"):
            raise BadQuery("query parameter 'sort' must be score or risk")
        if q.get("at_risk", "") not in ("", "0", "1"):
            raise BadQuery("query parameter 'at_risk' must be 0 or 1")
        served, table = state.scored_leads()
        out = leads_page(table, served.scorers["conversion"], q, page, per_page)
        dropout = served.scorers.get("dropout")
        out["model_version"] = served.scorers["conversion"].version
        out["dropout_version"] = dropout.version if dropout is not None else None
        return out

    handlers = {"/ui/api/leads": leads, "/ui/api/lead": _lead_with_history,
                "/ui/api/model": _model_with_monitoring, "/ui/api/reps": reps_json,
                "/leads/{id}/history": _history}
    return {path: partial(_api, fn, get_state) for path, fn in handlers.items()}


def _lead(state: ServingState, q: dict[str, str]) -> dict:
    """The lead page (`serving.lead_view`)."""
    served = state.current
    if served is None:  # `_api` answers 503 before; once loaded, never None again
        raise LookupError("models are still loading")
    if not q.get("id"):
        raise BadQuery("query parameter 'id' (a lead_id) is required")
    return lead_view(served.source, served.scorers, q["id"], served.as_of)


def _model(state: ServingState, _q: dict[str, str]) -> dict:
    """The model page: what is served, calibration, grades, versions."""
    from core.registry import version_records

    served = state.current
    if served is None:  # `_api` answers 503 before; once loaded, never None again
        raise LookupError("models are still loading")
    info = state.model_info(served)
    for kind, m in info["models"].items():
        meta = served.scorers[kind].bundle.meta
        curve = meta.get("calibration_curve")
        where = ("the replay (leads open at " + str(meta["replay_origin"])[:10] + ")"
                 if meta.get("replay_origin") else "the out-of-time test")
        if kind == "conversion":
            m["grades"] = _grade_meaning(state, served, meta)
        m["calibration_svg"] = (calibration([tuple(b) for b in curve],
                                            f"{m['registered_name']} v{m['version']}: "
                                            f"calibration on {where}")
                                if curve else None)
    versions: list[dict[str, object]] = []
    try:
        versions = [asdict(r) for r in version_records()]
    except Exception as err:  # the registry is optional for the page
        info["notes"] = [*info.get("notes", []),
                         f"model registry unreachable ({type(err).__name__})"]
    info["versions"] = versions
    return info


def _history(state: ServingState, q: dict[str, str]) -> dict:
    """`GET /leads/{id}/history`: 404 when no refresh recorded the lead."""
    story = lead_history_view(state, q["id"])
    if not story["history"]:
        raise UnknownLead(0)
    return story


def _lead_with_history(state: ServingState, q: dict[str, str]) -> dict:
    """The lead page, with its score over time."""
    out = _lead(state, q)
    out["history"] = lead_history_view(state, q["id"])
    out["history_svg"] = time_series(
        {"score": [(h["as_of"][:10], h["score"] * 100) for h in out["history"]["history"]]},
        f"Lead {q['id']}: score at each refresh ({out['history']['trend']})", unit="%")
    return out


def _model_with_monitoring(state: ServingState, q: dict[str, str]) -> dict:
    """The model page, with the monitoring time series."""
    out = _model(state, q)
    kept = reports(state.runtime.home)  # read once for both charts
    out["monitoring_svg"] = monitoring_chart(kept, state.runtime.settings.monitor.psi_alarm)
    realised = kept[-1].get("realised", {}) if kept else {}
    out["realised_calibration_svg"] = (calibration(
        [tuple(b) for b in realised["calibration"]],
        f"Realised calibration: leads open at {str(realised.get('origin'))[:10]}, judged on "
        "what happened since") if realised.get("calibration") else None)
    return out


def lead_history_view(state: ServingState, lead_id: str) -> dict[str, Any]:
    """A lead's recorded scores, trend and last move (`monitoring.score_history.lead_story`),
    each moved reason with its plain label."""
    served = state.current
    if served is None:
        raise LookupError("models are still loading")
    # the history files are read without the warehouse connection (requests keep it); only
    # the activities between the last two refreshes need it
    story = lead_story(state.runtime.home, None, lead_id, state.runtime.settings.history)
    move = story["last_move"]
    if move is not None:
        with served.source.connection() as con:
            move["activities"] = activities_between(con, lead_id, pd.Timestamp(move["from"]),
                                                    pd.Timestamp(move["to"]))
    labels = served.scorers["conversion"].labels
    if story["last_move"] is not None:
        for m in story["last_move"]["reasons"]:
            m["label"] = labels.get(m["feature"], m["feature"])
    return story


def monitoring_chart(kept: list[dict[str, Any]], psi_alarm: float) -> str:
    """The kept monitoring reports as time series: score PSI, the largest judged input PSI,
    and realised ECE, against the alarm threshold."""
    def largest(r: dict[str, Any]) -> float | None:
        judged = [v for f, v in r.get("feature_psi", {}).items()
                  if f not in r.get("few_values", [])]
        return max(judged) if judged else None

    return time_series({
        "score PSI": [(r["as_of"][:10], r.get("score_psi")) for r in kept],
        "largest input PSI": [(r["as_of"][:10], largest(r)) for r in kept],
        "realised ECE": [(r["as_of"][:10], r.get("realised", {}).get("ece")) for r in kept]},
        "Monitoring: drift and realised calibration at each refresh",
        threshold=psi_alarm, threshold_label="PSI alarm")


def _grade_meaning(state: ServingState, served: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Per grade: its share of the open leads being served and the conversion rate it had on
    the model's test (the replay or the out-of-time test), graded by the training cut-offs."""
    from core.grades import GRADES

    table = state.ready_table(served)
    counts: dict[str, int] = ({str(k): int(v) for k, v in
                               table.frame["grade"].value_counts().items()}
                              if table is not None else {})
    total = sum(counts.values())
    outcomes = meta.get("grade_outcomes") or {}
    tested = outcomes.get("grades", {})
    rows = [{"grade": g,
             "open_share": round(counts.get(g, 0) / total, 4) if total else None,
             "test_rate": tested.get(g, {}).get("rate"),
             "test_rows": tested.get(g, {}).get("rows")} for g in GRADES]
    served_cutoffs = [float(c) for c in served.scorers["conversion"].serve.grade_cutoffs]
    return {"rows": rows, "cutoffs": served_cutoffs,
            "test_cutoffs": outcomes.get("cutoffs"),
            "same_cutoffs": outcomes.get("cutoffs") in (None, served_cutoffs)}


async def _api(fn: Callable[[ServingState, dict[str, str]], dict],
               get_state: Callable[[], ServingState | None], scope: dict, receive: Any,
               send: Any) -> None:
    if scope.get("method") not in ("GET", "HEAD"):
        await _json(send, 405, {"error": "use GET"})
        return
    state = get_state()
    if state is None or state.current is None:
        await _json(send, 503, {"error": "models are still loading; see /readyz"})
        return
    try:
        query = {**_query(scope), **scope.get("path_params", {})}
        payload = await anyio.to_thread.run_sync(fn, state, query)
    except BadQuery as err:
        await _json(send, 400, {"error": str(err)})
        return
    except UnknownLead:
        await _json(send, 404, {"error": "no lead with that lead_id in the warehouse"})
        return
    except LookupError as err:  # a model the page needs is not trained or promoted
        await _json(send, 503, {"error": str(err)})
        return
    await _json(send, 200, payload)
