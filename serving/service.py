"""The LeadLens BentoML service: lead scores with reasons, SHAP breakdowns, dropout risk, the rep
report and model information, behind API keys and limits.

Importing this module reads nothing: configuration (LEADLENS_HOME, LEADLENS_CONFIG) is read when
a worker starts (`LeadLens.__init__`), the API keys when the guard is built at the same moment.
Worker count and concurrency are BentoML settings: `leadlens serve` passes `serve.workers` and
`serve.max_concurrency` through `BENTOML_CONFIG_OVERRIDES`. Models load in a background thread;
`/readyz` answers 503 until they are loaded and warmed. On shutdown the model poller stops and the
warehouse is closed. Scoring goes through `serving.scorer.Scorer`, the code the CLI uses.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import NotFound, ServiceUnavailable

from core.settings import Runtime, load_runtime
from core.timestamps import to_utc_naive
from serving.guard import WRITE_KEYS_ENV, WRITE_KEYS_FILE_ENV, Guard, Limits, load_keys
from serving.lead_features import UnknownLead
from serving.lead_table import LeadTable
from serving.schemas import (
    ActivityIn,
    DropoutIn,
    ExplainIn,
    LeadIn,
    NextStepsIn,
    RepsIn,
    ScoreIn,
    use_date_window,
)
from serving.scorer import Scorer
from serving.state import Served, ServingState

log = logging.getLogger("leadlens.serving")

def _as_of(value: Any, served: Served) -> pd.Timestamp:
    if value is None:
        return served.as_of
    return to_utc_naive(value)


def _prepared(state: ServingState, served: Served, kind: str, leads: list[LeadIn],
              as_of: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Ready model inputs when every lead is an open lead asked for by id at the served as_of:
    the scored-leads table already holds their features (computed by the warehouse path, held
    equal to the online path by the parity test), so no query and no DataFrame per request."""
    table = state.ready_table(served)
    if table is None or as_of != table.as_of or not all(lead.by_id for lead in leads):
        return None
    # every lead here is by id, so each has a lead_id (`LeadIn` refuses neither id nor fields)
    return table.prepared(kind, [lead.lead_id for lead in leads if lead.lead_id is not None])


def _from_table(table: LeadTable | None, kind: str, scorer: Scorer, leads: list[LeadIn],
                as_of: pd.Timestamp, explain: int,
                book: np.ndarray | None) -> list[dict[str, Any]] | None:
    """Answer rows from the scored-leads table when every lead is an open lead asked for by
    id at the table's as_of (reasons phrased once per table); else None."""
    if table is None or as_of != table.as_of or not all(lead.by_id for lead in leads):
        return None
    return table.answers(kind, scorer, [lead.lead_id for lead in leads
                                        if lead.lead_id is not None], explain, book)


def _features(served: Served, leads: list[LeadIn], as_of: pd.Timestamp) -> pd.DataFrame:
    """Feature rows in request order: known leads from the warehouse, described leads online."""
    by_id = [i for i, lead in enumerate(leads) if lead.by_id]
    described = [i for i, lead in enumerate(leads) if not lead.by_id]
    cols = served.source.columns
    frames: list[pd.DataFrame] = []
    if by_id:
        try:
            # a lead by id has a lead_id (`LeadIn` refuses neither id nor fields): none dropped
            ids = [lid for i in by_id if (lid := leads[i].lead_id) is not None]
            frames.append(served.source.for_ids(ids, as_of)[cols])
        except UnknownLead as err:
            raise NotFound(f"leads[{by_id[err.position]}]: lead_id is not in the warehouse") \
                from None
    if described:
        records, acts = [], []
        for i in described:
            lead = leads[i]
            records.append({"lead_id": lead.lead_id, "created_at": lead.created_at,
                            "owner_rep_id": lead.owner_rep_id, "source": lead.source,
                            **lead.attributes})
            acts.append([a.model_dump() for a in (lead.activities or [])])
        frames.append(served.source.for_payload(records, acts, as_of)[cols])
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    # back into request order: rows arrive as [by_id..., described...]
    position = np.argsort(np.array(by_id + described), kind="stable")
    return pd.concat(frames, ignore_index=True).take(position).reset_index(drop=True)


SERVICE_NAME = "leadlens"
API_PATHS = ("/score", "/explain", "/dropout_risk", "/reps", "/next_steps")
EXPENSIVE_PATHS = ("/reps", "/ui/api/reps")
"""Routes bounded per API key (`serve.max_expensive_per_key`): the rep report costs seconds."""
DEFAULT_WORKERS = 2
"""`serve.workers`' default; `leadlens serve` overrides it (and the concurrency limit) from the
config through `BENTOML_CONFIG_OVERRIDES` (see `bentoml_overrides`)."""


BENTOML_DEFAULTS: dict[str, Any] = {
    # no BentoML concurrency limit (it counts a request from its first byte): the guard's;
    # BentoML's timeout (which must be set) only backs up the guard's
    "traffic": {"timeout": 120},
    # BentoML's traffic metrics label by raw path before the key check (unbounded series);
    # the guard's are labelled by route (`serving.http_metrics`)
    "metrics": {"enabled": False},
    "logging": {"access": {"enabled": False}},
    # nothing exports traces; the OpenTelemetry middleware still built a span per request
    "tracing": {"excluded_urls": [".*"]},
}


def bentoml_overrides(runtime: Runtime) -> dict[str, Any]:
    """The BentoML settings this service takes from the LeadLens config."""
    serve = runtime.settings.serve
    return {"services": {SERVICE_NAME: {
        **BENTOML_DEFAULTS,
        "workers": serve.workers,
        "traffic": {"timeout": serve.request_timeout_seconds + 5},
        "logging": {"access": {"enabled": serve.access_log}}}}}


@bentoml.service(
    name=SERVICE_NAME,
    http={"host": "127.0.0.1", "port": 3000},
    workers=DEFAULT_WORKERS,
    **BENTOML_DEFAULTS,
)
class LeadLens:
    """Scores and explanations for marketing and managers; the rep report; model info."""

    def __init__(self) -> None:
        _quiet_validation_logs()
        rt = load_runtime()
        use_date_window(rt.settings.ingest.date_window())
        self.state = ServingState(rt)
        self._thread = threading.Thread(target=self.state.run,
                                        args=(rt.settings.serve.poll_seconds,),
                                        name="leadlens-models", daemon=True)
        self._thread.start()
        _LIVE["state"] = self.state

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Stop polling for a new champion and close the warehouse."""
        self.state.stop()
        self._thread.join(timeout=10)
        self.state.close()
        if _LIVE.get("state") is self.state:
            del _LIVE["state"]

    def __is_ready__(self) -> bool:
        return self.state.ready

    def _served(self) -> Served:
        served = self.state.current
        if served is None:
            raise ServiceUnavailable("models are still loading; see /readyz")
        return served

    def _check_batch(self, leads: list[LeadIn]) -> None:
        limit = self.state.runtime.settings.serve.max_batch
        if len(leads) > limit:
            raise bentoml.exceptions.InvalidArgument(
                f"leads: {len(leads)} in one request; at most {limit} (serve.max_batch)")

    @bentoml.api(route="/score", input_spec=ScoreIn)
    def score(self, leads: list[LeadIn], explain: int = 0, as_of: Any = None) -> dict:
        """Calibrated conversion score, grade, percentile among the open leads at the served
        as_of, and top reasons per lead."""
        self._check_batch(leads)
        served = self._served()
        when = _as_of(as_of, served)
        scorer = served.scorers["conversion"]
        table = self.state.ready_table(served)
        book = table.book if table is not None else None  # built seconds after start
        rows = _from_table(table, "conversion", scorer, leads, when, explain, book)
        if rows is None:
            rows = scorer.score_rows(_features(served, leads, when), explain, book)
        for lead, row in zip(leads, rows, strict=True):
            row["lead_id"] = lead.lead_id
        return {"as_of": str(when), "results": rows}

    @bentoml.api(route="/explain", input_spec=ExplainIn)
    def explain(self, lead: LeadIn, as_of: Any = None) -> dict:
        """The full SHAP breakdown of one lead's score, for a waterfall chart."""
        served = self._served()
        when = _as_of(as_of, served)
        scorer = served.scorers["conversion"]
        ready = _prepared(self.state, served, "conversion", [lead], when)
        e = (scorer.explain_matrix(*ready) if ready is not None
             else scorer.explain(_features(served, [lead], when)))[0]
        return {"lead_id": lead.lead_id, "as_of": str(when), "model_version": scorer.version,
                "base_score": round(e.base_score, 6), "score": round(e.score, 6),
                "contributions": scorer.breakdown(e)}

    @bentoml.api(route="/next_steps", input_spec=NextStepsIn)
    def next_steps(self, lead_id: str, as_of: Any = None) -> dict:
        """For an open lead, the candidate next steps (call, email, held meeting, proposal at
        the median amount), each rescored, largest gain first: what the model learned, not a
        promise."""
        from serving.lead_view import NotOpen, next_steps

        served = self._served()
        when = _as_of(as_of, served)
        try:
            return next_steps(served.source, served.scorers["conversion"], lead_id, when)
        except UnknownLead:
            raise NotFound("lead_id is not in the warehouse") from None
        except NotOpen as err:
            raise bentoml.exceptions.InvalidArgument(str(err)) from None

    @bentoml.api(route="/dropout_risk", input_spec=DropoutIn)
    def dropout_risk(self, leads: list[LeadIn], explain: int = 3, as_of: Any = None) -> dict:
        """Probability that the rep drops each lead before the next follow-up, with reasons."""
        self._check_batch(leads)
        served = self._served()
        when = _as_of(as_of, served)
        scorer = served.scorers.get("dropout")
        if scorer is None:
            # 404, not 503: it will not appear by waiting, and BentoML hides 5xx messages
            why = next((n for n in served.notes if n.startswith("not serving dropout")),
                       "not serving dropout")
            raise NotFound(f"no dropout model is being served: {why}")
        rows = (_from_table(self.state.ready_table(served), "dropout", scorer, leads, when,
                            explain, None)
                or scorer.score_rows(_features(served, leads, when), explain))
        out = [{"lead_id": lead.lead_id, "dropout_risk": r["score"],
                "model_version": r["model_version"], "reasons": r.get("reasons", [])}
               for lead, r in zip(leads, rows, strict=True)]
        return {"as_of": str(when), "results": out}

    @bentoml.api(route="/reps", input_spec=RepsIn)
    def reps(self, period: str | None = None, date_from: Any = None, date_to: Any = None,
             team: str | None = None) -> dict:
        """The rep report for a period (the same report as `leadlens reps --format json`)."""
        self._served()
        try:
            return _rep_report(self.state, period, date_from, date_to, team)[0]
        except ValueError:  # the parser's message repeats the value: say what works instead
            raise bentoml.exceptions.InvalidArgument(
                f"period, from, to: {PERIOD_FORMS}") from None
        except LookupError as err:
            raise ServiceUnavailable(str(err)) from None


PERIOD_FORMS = ("give a month (2025-03), a quarter (2025-Q1) or a year (2025) as period, or "
                "from and to together as YYYY-MM-DD dates")


def _rep_report(state: ServingState, period: str | None, date_from: Any, date_to: Any,
                team: str | None) -> tuple[dict, Any]:
    """The rep report as JSON (and the report itself), for `POST /reps` and the dashboard.
    ValueError: a bad period; LookupError: a judging model is missing."""
    import copy
    import json

    from core.periods import resolve_period
    from core.warehouse import Warehouse
    from reps import report_format as rep_report_format
    from reps.report import build_report

    served = state.current
    if served is None:  # callers check first; once loaded, never None again
        raise LookupError("models are still loading")
    p = resolve_period(period, date_from, date_to, lambda: served.as_of)

    def build() -> tuple[dict, Any]:
        judging = state.judging()
        rt = state.runtime
        with Warehouse(served.source.path, read_only=True) as wh:  # the snapshot served
            report = build_report(wh.con, p, rt.settings, judging, team=team)
        return json.loads(rep_report_format.to_json(report)), report

    out, report = state.rep_report((str(p.start), str(p.end), team, str(served.as_of),
                                    str(served.source.path)), build)
    return copy.deepcopy(out), report


def _dashboard_reps(state: ServingState, query: dict[str, str]) -> dict:
    from reps.report import FIVE_METRICS
    from serving.dashboard import BadQuery
    from serving.render.rep_page import oe_chart_svg

    try:
        out, report = _rep_report(state, query.get("period") or None, None, None,
                                  query.get("team") or None)
    except ValueError:
        raise BadQuery(f"query parameter 'period': {PERIOD_FORMS}") from None
    out["metric_labels"] = FIVE_METRICS
    out["oe_chart_svg"] = oe_chart_svg(report)
    return out


_LIVE: dict[str, ServingState] = {}


async def _model_app(scope: dict, receive: Any, send: Any) -> None:
    """GET /model: versions, training window and test metrics of the models being served
    (served by the guard, after the key check: BentoML's router would redirect `/model` to
    `/model/`)."""
    from serving.responses import json_reply

    if scope["type"] != "http":
        return
    payload: dict[str, Any]
    if scope.get("method") not in ("GET", "HEAD"):
        status, payload = 405, {"error": "use GET"}
    else:
        state = _LIVE.get("state")
        status, payload = 200, (state.model_info() if state else {"ready": False})
    await json_reply(send, status, payload)


def _known_fields() -> frozenset[str]:
    names: set[str] = set()
    for model in (ScoreIn, ExplainIn, DropoutIn, RepsIn, LeadIn, ActivityIn, NextStepsIn):
        for name, f in model.model_fields.items():
            names.add(name)
            if f.alias:
                names.add(f.alias)
    return frozenset(names)


class _ClientErrorsAtInfo(logging.Filter):
    """BentoML logs every refused request at ERROR with a traceback (which, for a validation
    failure, names submitted keys). A client's mistake is not the service's error: a 4xx is
    logged at INFO, one line, no traceback, no submitted values; 5xx stay ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if err is None:
            return True
        code = getattr(getattr(err, "error_code", None), "value", None)
        if type(err).__name__ == "ValidationError":
            code, what = 400, "failed validation (details withheld: they hold input)"
        elif isinstance(code, int) and code < 500:
            what = f"refused: {type(err).__name__}"
        else:
            return True
        path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = "%s %s (%d)", (path, what, code)
        return True


_VALIDATION_FILTER = _ClientErrorsAtInfo()


def _quiet_validation_logs() -> None:
    logging.getLogger("bentoml._internal.server.http_app").addFilter(_VALIDATION_FILTER)


class ServiceGuard(Guard):
    """The guard with its configuration read when the worker builds its app, not at import:
    API keys from the environment, the limits from the LeadLens config."""

    def __init__(self, app: Any) -> None:
        from monitoring.monitor import latest_report, prometheus_text
        from serving.dashboard import api_routes, static_routes
        from serving.push import push_routes

        routes = {"/model": _model_app,
                  **api_routes(lambda: _LIVE.get("state"), _dashboard_reps),
                  **push_routes(lambda: _LIVE.get("state"))}
        serve = load_runtime().settings.serve
        limits = Limits(max_body_bytes=serve.max_body_bytes,
                        max_concurrency=serve.max_concurrency,
                        max_expensive_per_key=serve.max_expensive_per_key,
                        body_timeout_seconds=serve.body_timeout_seconds,
                        request_timeout_seconds=serve.request_timeout_seconds,
                        drain_seconds=serve.drain_seconds)
        home = load_runtime().home
        super().__init__(app, keys=load_keys(), limits=limits, known_fields=_known_fields(),
                         routes=routes, public=static_routes(), api_paths=API_PATHS,
                         expensive=EXPENSIVE_PATHS)
        self.extra_metrics = lambda: prometheus_text(latest_report(home))
        self.write_keys = load_keys(var=WRITE_KEYS_ENV, file_var=WRITE_KEYS_FILE_ENV,
                                    required=False)


# added by @bentoml.service at run time; its typing does not show it on the class
LeadLens.add_asgi_middleware(ServiceGuard)  # type: ignore[attr-defined]
