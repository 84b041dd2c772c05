"""A straightforward pandas implementation of the engagement features: the benchmark's peer.

It computes the same columns as `features.engagement.batch_features` from in-memory frames
(merge, groupby, merge_asof), so the benchmark can check both give the same answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.settings import EngagementConfig
from features.catalog import (
    ACTIVITY_TYPE_PLURALS,
    DIRECTION_SHORT,
    RATE_PRIOR_WEIGHT,
    SCORE_WEIGHT_HELD_MEETING,
    SCORE_WEIGHT_PROPOSAL,
    SCORE_WEIGHT_RESPONSE,
    SCORE_WEIGHT_TOUCH,
    engagement_features,
    window_label,
)
from features.engagement import DAY


def _epoch(s: pd.Series) -> np.ndarray:
    return s.astype("datetime64[us]").astype("int64").to_numpy() / 1e6


def _past(pairs: pd.DataFrame, resolved: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """Resolved leads (count, won, depth) of the same group strictly before each pair's
    `as_of_s` (cumulative)."""
    r = resolved.sort_values("resolved_s")
    if by is None:
        r = r.assign(n=1.0).assign(n=lambda f: f["n"].cumsum(), won_c=r["won"].cumsum(),
                                   depth_c=r["depth"].cumsum())
        p = pairs[["pair_id", "as_of_s"]].sort_values("as_of_s")
        out = pd.merge_asof(p, r[["resolved_s", "n", "won_c", "depth_c"]], left_on="as_of_s",
                            right_on="resolved_s", allow_exact_matches=False)
    else:
        r = r.dropna(subset=[by]).copy()
        r["n"] = r.groupby(by).cumcount() + 1.0
        r["won_c"] = r.groupby(by)["won"].cumsum()
        r["depth_c"] = r.groupby(by)["depth"].cumsum()
        p = pairs[["pair_id", "as_of_s", by]].dropna(subset=[by]).sort_values("as_of_s")
        out = pd.merge_asof(p, r[[by, "resolved_s", "n", "won_c", "depth_c"]], by=by,
                            left_on="as_of_s", right_on="resolved_s",
                            allow_exact_matches=False)
    return out.set_index("pair_id")[["n", "won_c", "depth_c"]]


def pandas_features(leads: pd.DataFrame, acts: pd.DataFrame, pairs: pd.DataFrame,
                    cfg: EngagementConfig) -> pd.DataFrame:
    """Features for `pairs` (lead_id, as_of) from `leads` and `acts` frames (contract columns)."""
    a = acts[["activity_id", "lead_id", "occurred_at", "type", "direction", "outcome",
              "amount"]].copy()
    a["ts"] = _epoch(a["occurred_at"])
    a["held"] = (a["type"] == "meeting") & (a["outcome"].fillna("").str.lower() == "held")
    said = {o.lower() for o in cfg.response_outcomes}
    a["response"] = (a["direction"] == "inbound") | (
        (a["direction"] == "outbound") & (a["type"] == "call")
        & a["outcome"].fillna("").str.lower().isin(said))
    a = a.sort_values(["lead_id", "ts", "activity_id"])
    a["gap_any"] = a.groupby("lead_id")["ts"].diff()
    a["gap_dir"] = a.groupby(["lead_id", "direction"])["ts"].diff()
    first_resp = a[a["response"]].groupby("lead_id")["ts"].min()
    first_held = a[a["held"]].groupby("lead_id")["ts"].min()
    fr = a["lead_id"].map(first_resp)
    fh = a["lead_id"].map(first_held)
    a["before_response"] = fr.isna() | (a["ts"] <= fr)
    a["after_meeting"] = fh.notna() & (fh < a["ts"])
    out_m = a["direction"] == "outbound"

    p = pairs[["lead_id", "as_of"]].reset_index(drop=True).copy()
    p["pair_id"] = np.arange(len(p))
    p["as_of_s"] = _epoch(p["as_of"])
    j = p[["pair_id", "lead_id", "as_of_s"]].merge(a, on="lead_id")
    j = j[j["ts"] < j["as_of_s"]]
    age = j["as_of_s"] - j["ts"]
    o = j["direction"] == "outbound"
    cols: dict[str, pd.Series] = {}
    for type_, plural in ACTIVITY_TYPE_PLURALS.items():
        for direction, short in DIRECTION_SHORT.items():
            base = (j["type"] == type_) & (j["direction"] == direction)
            for days in (*cfg.windows_days, None):
                m = base if days is None else base & (age <= days * DAY)
                cols[f"{plural}_{short}_{window_label(days)}"] = m
    weight = np.where(j["response"], SCORE_WEIGHT_RESPONSE,
                      np.where(j["held"], SCORE_WEIGHT_HELD_MEETING,
                               np.where(j["type"] == "proposal", SCORE_WEIGHT_PROPOSAL,
                                        SCORE_WEIGHT_TOUCH)))
    prop = o & (j["type"] == "proposal")
    cols.update({
        "outbound_touches": o,
        "inbound_responses": ~o,
        "responses": j["response"],
        "touches_before_first_response": o & j["before_response"],
        "meeting_held": j["held"],
        "followups_after_meeting": o & j["after_meeting"],
        "proposals_sent": prop,
        "reengagements": o & (j["gap_any"] >= cfg.dormant_days * DAY),
    })
    frame = pd.DataFrame({k: v.astype("float64") for k, v in cols.items()})
    frame["pair_id"] = j["pair_id"].to_numpy()
    frame["engagement_score"] = weight * np.exp(
        -np.log(2) * age.to_numpy() / (cfg.decay_half_life_days * DAY))
    frame["proposal_amount_total"] = np.where(prop, j["amount"].fillna(0.0), 0.0)
    frame["proposal_amount"] = np.where(prop, j["amount"], np.nan)
    frame["out_ts"] = np.where(o, j["ts"], np.nan)
    frame["in_ts"] = np.where(j["response"], j["ts"], np.nan)
    frame["any_ts"] = j["ts"].to_numpy()
    frame["gap_out"] = np.where(o, j["gap_dir"], np.nan)
    g = frame.groupby("pair_id")
    sums = g[[*cols, "engagement_score", "proposal_amount_total"]].sum()
    agg = g.agg(first_touch=("out_ts", "min"), last_touch=("out_ts", "max"),
                last_response=("in_ts", "max"), last_activity=("any_ts", "max"),
                longest=("gap_out", "max"),
                proposal_amount_max=("proposal_amount", "max"))
    res = pd.DataFrame(index=pd.RangeIndex(len(p), name="pair_id"))
    res = res.join(sums).join(agg)
    res[list(sums.columns)] = res[list(sums.columns)].fillna(0.0)
    t0 = p["as_of_s"].to_numpy()
    n_out = res["outbound_touches"].to_numpy()
    res["has_responded"] = (res["responses"] > 0).astype("float64")
    res["meeting_held"] = (res["meeting_held"] > 0).astype("float64")
    res["days_since_first_touch"] = (t0 - res["first_touch"]) / DAY
    res["days_since_last_touch"] = (t0 - res["last_touch"]) / DAY
    res["days_since_last_response"] = (t0 - res["last_response"]) / DAY
    res["days_since_last_activity"] = (t0 - res["last_activity"]) / DAY
    res["mean_gap_days"] = np.where(
        n_out >= 2, (res["last_touch"] - res["first_touch"]) / DAY / (n_out - 1), np.nan)
    res["longest_gap_days"] = res["longest"] / DAY

    lead = leads.set_index("lead_id")
    p["owner_rep_id"] = p["lead_id"].map(lead["owner_rep_id"])
    p["source"] = p["lead_id"].map(lead["source"])
    res["lead_age_days"] = (t0 - _epoch(p["lead_id"].map(lead["created_at"]))) / DAY
    res["source"] = p["source"].to_numpy()

    lr = leads[leads["converted_at"].notna() | leads["closed_lost_at"].notna()].copy()
    end = lr["converted_at"].fillna(lr["closed_lost_at"])
    lr["resolved_s"] = _epoch(end)
    lr["won"] = lr["converted_at"].notna().astype("float64")
    oa = a[out_m][["lead_id", "ts"]].merge(lr[["lead_id", "resolved_s"]], on="lead_id")
    depth = oa[oa["ts"] < oa["resolved_s"]].groupby("lead_id").size()
    lr["depth"] = lr["lead_id"].map(depth).fillna(0.0)
    start = p.assign(as_of_s=p["as_of_s"] - cfg.history_days * DAY)

    def window(by: str | None) -> pd.DataFrame:  # resolved in [as_of - history, as_of)
        end = _past(p, lr, by).reindex(res.index).fillna(0.0)
        begin = _past(start, lr, by).reindex(res.index).fillna(0.0)
        return end - begin

    overall = window(None)
    prior = (overall["won_c"] / overall["n"]).where(overall["n"] > 0)
    m = RATE_PRIOR_WEIGHT
    for by, name in (("owner_rep_id", "rep"), ("source", "source")):
        past = window(by)
        n = past["n"]
        rate = (past["won_c"] + m * prior) / (n + m)
        res[f"{name}_past_conversion_rate"] = rate.where(p[by].notna().to_numpy())
        if name == "rep":
            res["rep_past_followup_depth"] = (past["depth_c"] / n).where(n > 0)
    names = [f.name for f in engagement_features(cfg)]
    res = res[names].reset_index(drop=True)
    res.insert(0, "as_of", p["as_of"].astype("datetime64[us]"))
    res.insert(0, "lead_id", p["lead_id"])
    return res
