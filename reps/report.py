"""The rep report: the five metrics with peer context, observed against expected conversions and
dropouts, quota attainment, leads at risk, and flags (`reps.judgement`).

Expected figures come from rep-blind models only (`leadlens-lead-quality` at assignment,
`leadlens-dropout-expected` after each touch), so what a rep did after assignment is what the
comparison measures. One implementation, used by the CLI, the service and the dashboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.model_bundle import ModelBundle
from core.names import DROPOUT_EXPECTED, LEAD_QUALITY, registered_name
from core.periods import Period
from core.reason_text import at_risk_text
from core.settings import Settings
from core.timestamps import default_as_of
from core.warehouse import attribute_types
from features.engagement import DAY, batch_features, select_pairs
from features.labels import check_label_settings, dropout_examples
from reps.judgement import COACHING_NOTE, judge
from reps.metrics import lead_depths, rep_metrics

FIVE_METRICS = {
    "new_leads": "new leads identified",
    "calls_to_new_leads": "calls to new leads",
    "calls_to_previous_leads": "calls to previous leads",
    "followups_to_engaged_leads": "follow-ups to engaged leads",
    "proposals": "proposals generated",
}
LEADS_PER_FLAG = 10


@dataclass
class JudgingModels:
    """The rep-blind models the expectations come from, and (optionally) the two scoring
    models for leads at risk."""

    lead_quality: ModelBundle
    dropout_expected: ModelBundle | None
    conversion: ModelBundle | None = None
    dropout: ModelBundle | None = None
    missing: dict[str, str] = field(default_factory=dict)
    """Registered name -> why that model is missing (the skip reason training recorded)."""


@dataclass
class RepReport:
    """The judged rep report for one period, with the evidence behind its flags."""

    period: Period
    as_of: pd.Timestamp
    reps: pd.DataFrame  # one row per rep, judged
    leads: pd.DataFrame  # the rep's period leads with expected p (evidence for flags)
    touches: pd.DataFrame  # judged touches with expected dropout p
    at_risk: pd.DataFrame
    models: dict[str, int | None] = field(default_factory=dict)
    note: str = COACHING_NOTE
    missing: list[str] = field(default_factory=list)
    """What the report could not judge and why (e.g. dropouts without a dropout model)."""

    def records(self) -> list[dict[str, Any]]:
        """JSON-ready, one dict per rep (the format the service and dashboard share)."""
        return [_record(row, self) for _, row in self.reps.iterrows()]


def period_leads(con: duckdb.DuckDBPyConnection, period: Period, as_of: pd.Timestamp,
                 model: ModelBundle) -> pd.DataFrame:
    """Leads created in the period, each with its rep-blind probability of converting within
    the horizon, the part of it expected by `as_of`, and whether it converted by then."""
    # a stored model is untrusted: only names that are columns of this warehouse reach the SQL
    known = set(attribute_types(con))
    unknown = [a for a in model.features if a != "source" and a not in known]
    if unknown:
        raise LookupError(f"the lead-quality model needs lead attributes this warehouse lacks: "
                          f"{', '.join(unknown)}; retrain it on this warehouse")
    attrs = [a for a in model.features if a != "source"]
    cols = "".join(f', "{a}"' for a in attrs)
    sql = f"""
        SELECT lead_id, owner_rep_id AS rep_id, created_at, converted_at, source{cols}
        FROM leads
        WHERE created_at >= $start AND created_at < $end AND created_at < $as_of
          AND owner_rep_id IS NOT NULL
    """  # noqa: S608 (attribute names checked against the warehouse above; values bound)
    leads = con.execute(sql, {"start": period.start.to_pydatetime(),
                              "end": period.end.to_pydatetime(),
                              "as_of": as_of.to_pydatetime()}).df()
    horizon_days = int(model.meta["labels"]["horizon_days"])  # as the model learned it
    cdf = np.asarray(model.meta.get("conversion_day_cdf") or [1.0] * (horizon_days + 1))
    elapsed = ((as_of - leads["created_at"]).dt.total_seconds() / DAY).clip(0, horizon_days)
    leads["p_convert"] = model.predict(leads) if len(leads) else np.array([])
    share_by_now = cdf[np.minimum(np.floor(elapsed.to_numpy()).astype(int), len(cdf) - 1)]
    leads["expected"] = leads["p_convert"] * share_by_now
    deadline = leads["created_at"] + pd.to_timedelta(elapsed, unit="D")
    leads["converted"] = (leads["converted_at"].notna() & (leads["converted_at"] < deadline)
                          & (leads["converted_at"] < as_of)).astype(int)
    return leads[["lead_id", "rep_id", "created_at", "p_convert", "expected", "converted"]]


def judged_touches(con: duckdb.DuckDBPyConnection, period: Period, as_of: pd.Timestamp,
                   settings: Settings, model: ModelBundle, owners: pd.DataFrame,
                   attributes: list[str]) -> pd.DataFrame:
    """Touches 1..N in the period whose window is over, with the dropout label and the
    rep-blind probability of a dropout for a lead in that state. `owners`: lead_id, rep_id."""
    ex = dropout_examples(con, settings.train, as_of).frame
    touch_at = ex["as_of"] - pd.Timedelta(seconds=1)
    ex = ex[(touch_at >= period.start) & (touch_at < period.end)].reset_index(drop=True)
    ex = ex.merge(owners, on="lead_id", how="left")
    ex = ex[ex["rep_id"].notna()].reset_index(drop=True)
    if ex.empty:
        return ex.assign(p_dropout=pd.Series(dtype=float))
    feats = batch_features(con, ex[["lead_id", "as_of"]], settings.engagement, attributes)
    ex["p_dropout"] = model.predict(feats)
    return ex[["lead_id", "rep_id", "as_of", "detail", "label", "p_dropout"]]


def leads_at_risk(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp, settings: Settings,
                  conversion: ModelBundle, dropout: ModelBundle, top: int,
                  owners: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """Open, already-touched leads ranked by conversion score x dropout risk, top N per rep,
    each with the one line that says why (`core.reason_text.at_risk_text`)."""
    pairs = select_pairs(con, as_of, "open")
    if pairs.empty:
        return pd.DataFrame(columns=["rep_id", "lead_id", "conversion_score", "dropout_risk",
                                     "reason"])
    feats = batch_features(con, pairs, settings.engagement, attributes)
    feats = feats[feats["outbound_touches"] > 0].reset_index(drop=True)
    out = feats[["lead_id"]].merge(owners, on="lead_id", how="left")
    out["conversion_score"] = conversion.predict(feats)
    out["dropout_risk"] = dropout.predict(feats)
    out["risk_index"] = out["conversion_score"] * out["dropout_risk"]
    out["reason"] = [at_risk_text(c, d, t, g) for c, d, t, g in zip(
        out["conversion_score"], out["dropout_risk"], feats["outbound_touches"],
        feats["days_since_last_touch"].astype(float).where(
            feats["days_since_last_touch"].notna(), None), strict=True)]
    out = out.sort_values("risk_index", ascending=False)
    return out.groupby("rep_id", sort=False).head(top).reset_index(drop=True)


def peer_context(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per rep and metric: the team median and the rep's percentile within the team."""
    out = metrics[["rep_id"]].copy()
    team = metrics["team"].astype("string").fillna("(no team)")
    for col in FIVE_METRICS:
        values = metrics[col].astype(float)
        out[f"{col}_team_median"] = values.groupby(team).transform("median")
        out[f"{col}_percentile"] = values.groupby(team).rank(pct=True) * 100
    return out


def build_report(con: duckdb.DuckDBPyConnection, period: Period, settings: Settings,
                 models: JudgingModels, team: str | None = None) -> RepReport:
    """Everything the rep report shows for `period`, judged."""
    for kind, model in ((LEAD_QUALITY, models.lead_quality),
                        (DROPOUT_EXPECTED, models.dropout_expected)):
        if model is not None:
            check_label_settings(model.meta, settings.train, registered_name(kind))
    as_of = default_as_of(con)
    metrics = rep_metrics(con, period, settings.engagement, team=team)
    leads = period_leads(con, period, as_of, models.lead_quality)
    owners = con.execute("SELECT lead_id, owner_rep_id AS rep_id FROM leads").df()
    attributes = list(attribute_types(con))
    missing = []
    if models.dropout_expected is not None:
        touches = judged_touches(con, period, as_of, settings, models.dropout_expected, owners,
                                 attributes)
    else:
        name = registered_name(DROPOUT_EXPECTED)
        why = models.missing.get(name, "not trained")
        missing.append(f"dropouts not judged: no {name} model ({why})")
        touches = pd.DataFrame({"lead_id": pd.Series(dtype=object),
                                "rep_id": pd.Series(dtype=object),
                                "as_of": pd.Series(dtype="datetime64[ns]"),
                                "detail": pd.Series(dtype=float),
                                "label": pd.Series(dtype=float),
                                "p_dropout": pd.Series(dtype=float)})
    conv = leads.groupby("rep_id").agg(leads=("lead_id", "size"),
                                       period_conversions=("converted", "sum"),
                                       expected_conversions=("expected", "sum"))
    drops = touches.groupby("rep_id").agg(touches_judged=("lead_id", "size"),
                                          dropouts=("label", "sum"),
                                          expected_dropouts=("p_dropout", "sum"))
    frame = metrics.merge(conv, left_on="rep_id", right_index=True, how="left")
    frame = frame.merge(drops, left_on="rep_id", right_index=True, how="left")
    for c in ("leads", "period_conversions", "expected_conversions", "touches_judged",
              "dropouts", "expected_dropouts"):
        frame[c] = frame[c].fillna(0.0)
    frame["reached_fifth"] = (frame["reached_fifth_followup_share"].fillna(0.0)
                              * frame["depth_judged_leads"]).round()
    judged = judge(frame.rename(columns={"conversions": "conversions_in_period",
                                         "period_conversions": "conversions"}), settings.reps)
    judged = judged.merge(peer_context(metrics), on="rep_id", how="left")
    at_risk = (leads_at_risk(con, as_of, settings, models.conversion, models.dropout,
                             settings.reps.leads_at_risk, owners, attributes)
               if models.conversion is not None and models.dropout is not None
               else pd.DataFrame(columns=["rep_id", "lead_id", "conversion_score",
                                          "dropout_risk"]))
    # the per-lead depths (a second pass over the activities) only when a depth flag needs
    # its leads listed
    depth_flagged = any(f["metric"] == "followup_depth" for fl in judged["flags"] for f in fl)
    depths = lead_depths(con, period, settings.engagement) if depth_flagged else None
    short = (depths[depths["judged"] & (depths["depth"] < settings.engagement.fifth_followup)]
             if depths is not None else pd.DataFrame(columns=["lead_id", "rep_id"]))
    _attach_evidence(judged, leads, touches, short)
    return RepReport(period, as_of, judged, leads, touches, at_risk, models={
        registered_name(LEAD_QUALITY): models.lead_quality.meta.get("version"),
        registered_name(DROPOUT_EXPECTED): (models.dropout_expected.meta.get("version")
                                            if models.dropout_expected is not None else None),
    }, missing=missing)


def _attach_evidence(judged: pd.DataFrame, leads: pd.DataFrame, touches: pd.DataFrame,
                     short: pd.DataFrame) -> None:
    """Each flag lists the leads behind it: the most promising unconverted leads, the leads
    dropped when a drop was least expected, or (follow-up depth) the leads left short of the
    fifth follow-up while still open (`short`), the most promising first."""
    for flags, rep in zip(judged["flags"], judged["rep_id"], strict=True):
        for flag in flags:
            if flag["metric"] == "conversions":
                mine = leads[(leads.rep_id == rep) & (leads.converted == 0)]
                ids = mine.nlargest(LEADS_PER_FLAG, "p_convert")["lead_id"]
            elif flag["metric"] == "followup_depth":
                mine = short[short.rep_id == rep].merge(
                    leads[["lead_id", "p_convert"]], on="lead_id", how="left")
                ids = mine.sort_values(["p_convert", "lead_id"], ascending=[False, True],
                                       na_position="last").head(LEADS_PER_FLAG)["lead_id"]
            else:
                mine = touches[(touches.rep_id == rep) & (touches.label == 1)]
                ids = mine.nsmallest(LEADS_PER_FLAG, "p_dropout")["lead_id"].drop_duplicates()
            flag["lead_ids"] = [str(i) for i in ids]


def num_or_none(v: Any) -> float | None:
    """A value as float, or None when it is missing (None, NaN or pd.NA)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return float(v)


def _record(row: pd.Series, report: RepReport) -> dict[str, Any]:
    risk = report.at_risk[report.at_risk["rep_id"] == row["rep_id"]]
    return {
        "rep_id": row["rep_id"],
        "team": None if pd.isna(row["team"]) else row["team"],
        "role": None if pd.isna(row.get("role")) else row["role"],
        "compared_with": row["compared_with"],
        "owned_touch_share": num_or_none(row["owned_touch_share"]),
        "period": report.period.label,
        "metrics": {
            "new_leads": int(row["new_leads"]),
            "calls_to_new_leads": int(row["calls_to_new_leads"]),
            "calls_to_previous_leads": int(row["calls_to_previous_leads"]),
            "followups_to_engaged_leads": int(row["followups_to_engaged_leads"]),
            "proposals": {"count": int(row["proposals"]),
                          "total": num_or_none(row["proposal_total"]),
                          "mean": num_or_none(row["proposal_mean"])},
        },
        "peers": {m: {"team_median": num_or_none(row[f"{m}_team_median"]),
                      "percentile": num_or_none(row[f"{m}_percentile"])} for m in FIVE_METRICS},
        "followup_depth": {
            "new_leads_first_touched": int(row["new_leads_first_touched"]),
            "judged_leads": int(row["depth_judged_leads"]),
            "median": num_or_none(row["followup_depth_median"]),
            "reached_fifth_share": num_or_none(row["reached_fifth_followup_share"]),
            "reached_fifth_share_shrunk": num_or_none(row["reached_fifth_share_shrunk"]),
        },
        "leads": int(row["leads"]),
        "conversions": int(row["conversions"]),
        "expected_conversions": round(float(row["expected_conversions"]), 3),
        "oe_ratio": num_or_none(row["oe_ratio"]),
        "oe_interval": [num_or_none(row["oe_low"]), num_or_none(row["oe_high"])],
        "oe_ratio_shrunk": num_or_none(row["oe_ratio_shrunk"]),
        "dropouts": int(row["dropouts"]),
        "expected_dropouts": round(float(row["expected_dropouts"]), 3),
        "touches_judged": int(row["touches_judged"]),
        "dropout_ratio_shrunk": num_or_none(row["dropout_ratio_shrunk"]),
        "quota_attainment": num_or_none(row["quota_attainment"]),
        "won_revenue": num_or_none(row["won_revenue"]),
        "status": row["status"],
        "flags": row["flags"],
        "leads_at_risk": [
            {"lead_id": str(r.lead_id), "conversion_score": round(float(r.conversion_score), 4),
             "dropout_risk": round(float(r.dropout_risk), 4), "reason": r.reason}
            for r in risk.itertuples()],
    }


def judging_models_from_registry(with_scoring: bool = True) -> tuple[JudgingModels, list[str]]:
    """The `@champion` of each model (the latest version where none is promoted yet, with a
    note saying so). Raises LookupError naming what to train when the lead-quality model is
    missing; without a dropout-expected model the report judges conversions only, and the
    note says why the model is missing (the skip reason training recorded)."""
    from core.names import REGISTERED_NAMES
    from core.registry import champion_version, load_version, model_versions, skip_reason

    notes: list[str] = []
    loaded: dict[str, ModelBundle | None] = {}
    missing: dict[str, str] = {}
    kinds = ["lead_quality", "dropout_expected"] + (["conversion", "dropout"]
                                                    if with_scoring else [])
    for kind in kinds:
        name = REGISTERED_NAMES[kind]
        version = champion_version(name)
        if version is None:
            versions = model_versions(name)
            if not versions:
                why = skip_reason(kind) or "not trained yet: run `leadlens train`"
                if kind == "lead_quality":
                    raise LookupError(f"no {name} model ({why}): run `leadlens train` (and "
                                      "`leadlens promote`) first, or use --metrics-only")
                loaded[kind] = None
                missing[name] = why
                notes.append(f"{name}: no model ({why}); "
                             + ("dropouts not judged" if kind == "dropout_expected"
                                else "leads at risk left out"))
                continue
            version = versions[0].version
            notes.append(f"{name}: no @champion yet, using the latest version v{version}")
        loaded[kind] = load_version(name, version)
    lead_quality = loaded["lead_quality"]
    if lead_quality is None:  # never: a missing lead-quality model raised above
        raise LookupError("no lead-quality model")
    return JudgingModels(lead_quality, loaded["dropout_expected"], loaded.get("conversion"),
                         loaded.get("dropout"), missing), notes
